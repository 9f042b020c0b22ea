"""A small W3C WebDriver client for Debian's chromium and chromedriver, with
urllib only: no Selenium, nothing downloaded.

    with Browser(tmpdir) as b:
        b.get(url)
        row = b.find("tr[data-addr='127.0.0.1:8001']")
        b.send_keys(b.find("input.w", row), "3")
        b.click(b.find("button.set", row))
        png = b.screenshot()

Browser() starts `chromedriver` on a free loopback port and one headless
chromium session with a fresh profile; close() ends both."""

import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = "/usr/bin/chromium"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


class WebDriverError(RuntimeError):
    pass


def available():
    """None when chromium and chromedriver are installed, else what is missing."""
    missing = [p for p in ("chromium", "chromedriver") if not shutil.which(p)]
    return ", ".join(missing) or None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Browser:
    def __init__(self, tmpdir=None, size=(1300, 900), timeout=60):
        self.dir = tmpdir or tempfile.mkdtemp(prefix="ltcp-browser-")
        self.logpath = os.path.join(self.dir, "chromedriver.log")
        self.profile = os.path.join(self.dir, "profile")  # removed by close()
        self.sid = None
        port = _free_port()
        self.base = "http://127.0.0.1:%d" % port
        with open(self.logpath, "wb") as log:
            self.proc = subprocess.Popen(["chromedriver", "--port=%d" % port], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, preexec_fn=_die_with_parent)
        try:
            self._wait_driver(timeout)
            args = FLAGS + ["--user-data-dir=" + self.profile,
                            "--window-size=%d,%d" % size]
            caps = {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                "goog:loggingPrefs": {"browser": "ALL"}}}}
            self.sid = self._call("POST", "/session", caps, timeout=timeout)["sessionId"]
        except Exception:
            self.close()
            raise

    def _wait_driver(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise WebDriverError("chromedriver exited: " + self.log())
            try:
                if self._call("GET", "/status", timeout=2).get("ready"):
                    return
            except (OSError, WebDriverError):
                pass
            time.sleep(0.05)
        raise WebDriverError("chromedriver did not start: " + self.log())

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")[-2000:]

    def _call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            try:
                v = json.loads(e.read()).get("value", {})
                msg = "%s: %s" % (v.get("error"), v.get("message", "").splitlines()[0])
            except ValueError:
                msg = str(e)
            raise WebDriverError("%s %s: %s" % (method, path, msg)) from None

    def _session(self, method, path, body=None, timeout=30):
        return self._call(method, "/session/%s%s" % (self.sid, path), body, timeout)

    # ------------------------------------------------------------ commands

    def get(self, url):
        self._session("POST", "/url", {"url": url}, timeout=60)

    def find_all(self, css, within=None):
        path = "/element/%s/elements" % within if within else "/elements"
        return [e[ELEMENT] for e in self._session("POST", path, {"using": "css selector", "value": css})]

    def find(self, css, within=None):
        """The first element that matches css (inside `within`), or None."""
        found = self.find_all(css, within)
        return found[0] if found else None

    def click(self, el):
        self._session("POST", "/element/%s/click" % el, {})

    def clear(self, el):
        self._session("POST", "/element/%s/clear" % el, {})

    def send_keys(self, el, text):
        self._session("POST", "/element/%s/value" % el, {"text": text})

    def text(self, el):
        return self._session("GET", "/element/%s/text" % el)

    def script(self, js, *args):
        """Runs js (a function body; `arguments` holds args) and returns its value."""
        return self._session("POST", "/execute/sync", {"script": js, "args": list(args)})

    def source(self):
        """The document as it is now (after the script ran), like --dump-dom."""
        return self._session("GET", "/source")

    def screenshot(self):
        return base64.b64decode(self._session("GET", "/screenshot"))

    def console(self):
        """The browser's console entries since the last call: [{level, message}]."""
        return self._session("POST", "/se/log", {"type": "browser"}) or []

    def close(self):
        if self.sid:
            try:
                self._call("DELETE", "/session/" + self.sid, timeout=30)
            except (OSError, WebDriverError):
                pass
            self.sid = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
