"""Integration-test harness for linkerd-tcp.

Starts the real daemon from a generated configuration on loopback ports,
next to real backends run in this process (echo, identify-then-echo,
source/sink), and reports results as TAP for automake's tap-driver.

Every test script does:

    from ltcptest import *
    t = Tap()
    ...
    t.ok(cond, "what it shows")
    t.done()
"""

import ctypes
import hashlib
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

BIN = os.environ.get("LTCP_BIN", "src/linkerd-tcp")
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:")
_daemons = []
SRCDIR = os.environ.get("LTCP_SRCDIR", ".")
LOOPBACK = "127.0.0.1"


class Tap:
    """Test Anything Protocol output; the plan is printed at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self._cleanups = []

    def ok(self, cond, name):
        self.n += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, name), flush=True)
        if not cond:
            self.failed += 1
        return bool(cond)

    def eq(self, got, want, name):
        if not self.ok(got == want, name):
            self.diag("got:  %r" % (got,))
            self.diag("want: %r" % (want,))
        return got == want

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            print("# " + line, flush=True)

    def _check_sanitizers(self):
        """Every daemon this script ran must have stopped without a sanitizer report."""
        if not _daemons:
            return
        bad = []
        for d in _daemons:
            if d.alive():
                d.stop()
            text = d.log()
            if SANITIZER_REPORT.search(text):
                bad.append(d)
                self.diag("sanitizer report in %s:\n%s" % (d.logpath, text[-4000:]))
        self.ok(not bad, "no sanitizer reports in the logs of %d daemon run(s)" % len(_daemons))

    def cleanup(self, fn):
        self._cleanups.append(fn)
        return fn

    def daemon(self, cfg, **kw):
        """A started daemon that is stopped when the script ends."""
        d = Daemon(cfg, **kw).wait_ready()
        self.cleanup(d.stop)
        return d

    def backend(self, cls, *args, **kw):
        """A backend that is closed when the script ends."""
        b = cls(*args, **kw)
        self.cleanup(b.close)
        return b

    def detached(self, pid):
        """A daemon process this script did not start as a child (linkerd-tcp -d, an
        init script): stopped when the script ends, if it still runs then."""
        born = proc_start_time(pid) if pid else None
        if born is not None:  # the same process only, should its pid be reused
            self.cleanup(lambda: proc_start_time(pid) == born and stop_pid(pid))
        return pid

    def namerd(self, **kw):
        """A started fake namerd that is stopped when the script ends."""
        from fake_namerd import FakeNamerd

        n = FakeNamerd(**kw).start()
        self.cleanup(n.stop)
        return n

    def run(self, *scenarios):
        """Runs each scenario (a function, or a (function, args) pair) in turn; one that
        raises counts as a failure and the next one still runs.  Then done()."""
        for sc in scenarios:
            fn, args = sc if isinstance(sc, tuple) else (sc, ())
            try:
                fn(*args)
            except Exception as e:
                self.ok(False, "%s%r raised %r" % (fn.__name__, args, e))
                self.diag(traceback.format_exc())
        self.done()

    def done(self):
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:  # a cleanup problem must not hide results
                self.diag("cleanup: %r" % e)
        self._check_sanitizers()
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


def free_port():
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


_held_ports = []


def unused_port():
    """A loopback port with nothing listening (connections are refused) that stays so:
    it is held by a bound socket that never listens, for the rest of the test, so that
    no other test running meanwhile can take it (nor a connect pick it as its own
    source port and connect to itself)."""
    s = socket.socket()
    s.bind((LOOPBACK, 0))
    _held_ports.append(s)
    return s.getsockname()[1]


def release_port(port):
    """Gives back a port of unused_port, for a server that is to listen on it now."""
    for s in [s for s in _held_ports if s.getsockname()[1] == port]:
        _held_ports.remove(s)
        s.close()


def wait_until(pred, timeout=5.0, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def proc_state(pid):
    """The state letter of pid ('Z' for a zombie), or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def proc_start_time(pid):
    """When pid started (clock ticks since boot), or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid):
    """True while pid runs (a zombie has exited)."""
    return bool(pid) and proc_state(pid) not in (None, "Z", "X")


def read_pidfile(path):
    """The pid in a pidfile, 0 when there is none (or no file)."""
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def stop_pid(pid, timeout=15.0):
    """Stops a linkerd-tcp that is not our child: SIGTERM, then SIGKILL after timeout.
    True once it is gone.  A pid that runs another program now is left alone."""
    if not pid_alive(pid):
        return True
    try:
        if not os.path.basename(os.readlink("/proc/%d/exe" % pid)).startswith("linkerd-tcp"):
            return True
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return not pid_alive(pid)
    if wait_until(lambda: not pid_alive(pid), timeout):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    wait_until(lambda: not pid_alive(pid), 5)
    return False


def write_atomic(path, text):
    """Writes text to path through a rename: a reader sees the old or the new file."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def random_bytes(n, seed=1):
    """Deterministic pseudo-random bytes (fast: SHAKE-256)."""
    return hashlib.shake_256(b"seed-%d" % seed).digest(n)


# ---------------------------------------------------------------- backends


class Backend:
    """A threaded TCP server on loopback; subclasses define handle(conn)."""

    def __init__(self, name="backend", port=0):
        self.name = name
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, port))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.addr = "%s:%d" % (LOOPBACK, self.port)
        self.accepted = 0
        self.open = 0
        self.lock = threading.Lock()
        self.conns = []
        self.closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.open += 1
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.handle(conn)
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1
            try:
                conn.close()
            except OSError:
                pass

    def handle(self, conn):
        raise NotImplementedError

    def close(self):
        self.closed = True
        try:
            # shutdown first: close alone leaves the socket listening while the accept
            # thread is blocked in accept(), and new connections would still be taken.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def echo_until_eof(s):
    """Echoes what s (a socket or TLS socket) receives until its peer's EOF."""
    while True:
        data = s.recv(65536)
        if not data:
            return
        s.sendall(data)


class EchoBackend(Backend):
    """Echoes everything; half-closes its write side after the client's EOF."""

    def handle(self, conn):
        echo_until_eof(conn)
        conn.shutdown(socket.SHUT_WR)


class IdBackend(EchoBackend):
    """Sends "<name>\\n" on connect, then echoes until EOF."""

    def handle(self, conn):
        conn.sendall(self.name.encode() + b"\n")
        super().handle(conn)


class SourceSinkBackend(Backend):
    """Sends `send` bytes while reading and hashing everything it receives."""

    def __init__(self, send, **kw):
        self.payload = send
        self.received = []  # sha256 of each finished connection's input
        super().__init__(**kw)

    def handle(self, conn):
        h = hashlib.sha256()
        n = [0]

        def reader():
            while True:
                data = conn.recv(262144)
                if not data:
                    return
                h.update(data)
                n[0] += len(data)

        rt = threading.Thread(target=reader, daemon=True)
        rt.start()
        conn.sendall(self.payload)
        conn.shutdown(socket.SHUT_WR)
        rt.join()
        with self.lock:
            self.received.append((h.hexdigest(), n[0]))


class ReplyAfterEofBackend(Backend):
    """Reads the whole request until EOF, then sends a reply and closes."""

    def __init__(self, reply, **kw):
        self.reply = reply
        self.requests = []
        super().__init__(**kw)

    def handle(self, conn):
        chunks = []
        while True:
            data = conn.recv(65536)
            if not data:
                break
            chunks.append(data)
        with self.lock:
            self.requests.append(b"".join(chunks))
        conn.sendall(self.reply)


# ---------------------------------------------------------------- clients


def connect(port, timeout=5.0):
    s = socket.create_connection((LOOPBACK, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_line(s, timeout=5.0):
    """Reads up to and including a newline; b"" on EOF or timeout."""
    s.settimeout(timeout)
    buf = b""
    try:
        while not buf.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                break
            buf += c
    except (socket.timeout, OSError):
        pass
    return buf


def recv_all(s, timeout=30.0):
    s.settimeout(timeout)
    chunks = []
    while True:
        data = s.recv(262144)
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def exchange(port, payload, timeout=60.0, shut=True):
    """Sends payload (half-closing afterwards) while reading the reply until EOF.
    Returns (reply, error)."""
    s = connect(port, timeout)
    err = []

    def writer():
        try:
            s.sendall(payload)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    try:
        reply = recv_all(s, timeout)
    except OSError as e:
        err.append(e)
        reply = b""
    w.join(timeout)
    s.close()
    return reply, (err[0] if err else None)


class SlowTransfer:
    """Sends payload on s in chunks with pauses (then half-closes) while reading
    the reply until EOF, in two threads; result() waits and returns the reply."""

    def __init__(self, s, payload, chunk=128 * 1024, pause=0.03):
        self.s, self.payload, self.chunk, self.pause = s, payload, chunk, pause
        self.got = []
        self.threads = [threading.Thread(target=self._write), threading.Thread(target=self._read)]
        for th in self.threads:
            th.start()

    def _write(self):
        for i in range(0, len(self.payload), self.chunk):
            self.s.sendall(self.payload[i:i + self.chunk])
            time.sleep(self.pause)
        self.s.shutdown(socket.SHUT_WR)

    def _read(self):
        self.got.append(recv_all(self.s, 30))

    def result(self, timeout=30):
        for th in self.threads:
            th.join(timeout)
        return self.got[0] if self.got else None


def pump(s, out, expect_in, timeout=60.0):
    """Sends `out` while receiving `expect_in` bytes on one TLS socket, in one
    thread (an SSL object must not be used by two threads at once)."""
    s.setblocking(False)
    sent, got = 0, bytearray()
    end = time.monotonic() + timeout
    while (sent < len(out) or len(got) < expect_in) and time.monotonic() < end:
        want_r = len(got) < expect_in
        if not (want_r and s.pending()):
            select.select([s] if want_r else [], [s] if sent < len(out) else [], [], 0.5)
        if sent < len(out):
            try:
                sent += s.send(out[sent:sent + 65536])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        if want_r:
            try:
                d = s.recv(262144)
                if not d:
                    break
                got += d
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
    s.setblocking(True)
    return bytes(got)


def failed_tls_client(port, timeout=5.0):
    """A client that sends bytes that are no TLS ClientHello, then waits for the close."""
    s = connect(port)
    s.sendall(b"this is not a TLS ClientHello\r\n\r\n")
    try:
        recv_all(s, timeout)
    except OSError:
        pass
    s.close()


def first_line(port, timeout=5.0):
    """The first line a backend sends, read through the proxy on port (stripped,
    bytes); b"" when the connection fails or closes first."""
    try:
        s = connect(port, timeout)
    except OSError:
        return b""
    line = read_line(s, timeout)
    s.close()
    return line.strip()


def refused_at_once(port):
    """True when a new connection to port is refused or closed straight away."""
    try:
        c = connect(port, 1.0)
        refused = c.recv(1) == b""
        c.close()
    except OSError:
        refused = True
    return refused


def closed_promptly(port, within=2.0):
    """True when the proxy closes a new connection by itself within `within` s."""
    start = time.monotonic()
    try:
        s = connect(port, within)
    except OSError:
        return True, time.monotonic() - start
    s.settimeout(within)
    try:
        data = s.recv(1)
        closed = data == b""
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        closed = False
    s.close()
    return closed, time.monotonic() - start


# ---------------------------------------------------------------- the daemon


def yaml_quote(s):
    return "'" + str(s).replace("'", "''") + "'"


class Daemon:
    """Runs src/linkerd-tcp on a config file; stderr goes to a log file.

    verbatim: write the configuration as given, without the admin address and
    relay_threads that write_config otherwise adds (keys a 0.1.x file lacks)."""

    def __init__(self, config_text, tmpdir=None, env=None, name="linkerd-tcp.yml", args=(),
                 preexec_fn=None, verbatim=False):
        self.verbatim = verbatim
        self.dir = tmpdir or tempfile.mkdtemp(prefix="ltcp-")
        self.path = os.path.join(self.dir, name)
        self.logpath = os.path.join(self.dir, "daemon.log")
        self.write_config(config_text)
        e = dict(os.environ)
        e.setdefault("LINKERD_TCP_LOG", "debug")
        e.update(env or {})
        self.logf = open(self.logpath, "wb")

        def child_setup():
            # The daemon dies with the test, even when the test itself is killed.
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if preexec_fn:
                preexec_fn()

        self.proc = subprocess.Popen(
            [BIN, *args, self.path], stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf, env=e,
            preexec_fn=child_setup
        )
        self.rc = None
        _daemons.append(self)

    @staticmethod
    def with_admin_port(text):
        """Tests run many daemons at once: unless the config names an admin
        address, the admin server takes an ephemeral port, not 9989."""
        if text.lstrip().startswith("{"):
            return text
        m = re.search(r"^admin:[ \t]*\n((?:[ \t]+.*\n)*)", text, re.M)
        if not m:
            return text.rstrip("\n") + "\nadmin:\n  addr: 127.0.0.1:0\n"
        if re.search(r"^[ \t]+addr:", m.group(1), re.M):
            return text
        return text[:m.start(1)] + "  addr: 127.0.0.1:0\n" + text[m.start(1):]

    @staticmethod
    def with_small_pool(text):
        """1024 relay threads per daemon add up when tests run in parallel:
        unless the config sets relay_threads, use 64."""
        if text.lstrip().startswith("{") or re.search(r"^relay_threads:", text, re.M):
            return text
        return text.rstrip("\n") + "\nrelay_threads: 64\n"

    def write_config(self, text):
        if not self.verbatim:
            text = self.with_small_pool(self.with_admin_port(text))
        write_atomic(self.path, text)

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout=5.0, count=1):
        """Waits until pattern (a regex) matches `count` times; returns the matches."""
        rx = re.compile(pattern)

        def found():
            m = rx.findall(self.log())
            return m if len(m) >= count else None

        return wait_until(found, timeout)

    def wait_ready(self, timeout=None):
        # Thousands of relay threads start slowly under TSan on a busy machine.
        ok = self.wait_log(r"running \(pid", timeout or 10.0 * SLOWDOWN)
        if not ok:
            raise RuntimeError("daemon did not start:\n" + self.log())
        return self

    def listening(self):
        """{label: [port, ...]} from the 'listening on' lines."""
        out = {}
        for addr, label in re.findall(r"listening on (\S+) for (\S+)", self.log()):
            out.setdefault(label, []).append(int(addr.rsplit(":", 1)[1]))
        return out

    def admin_url(self):
        m = re.search(r"admin listening on (http://\S+)", self.log())
        return m.group(1) if m else None

    def port(self, label="proxy0", index=0):
        return self.listening()[label][index]

    def admin(self, path, method="GET", body=None, headers=None, timeout=10):
        """(status, text) of an admin request; a dict or list body is sent as JSON."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.admin_url() + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def admin_json(self, path="/endpoints"):
        code, text = self.admin(path)
        return json.loads(text) if code == 200 else None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, text=None, expect="reload: configuration applied", timeout=5.0):
        before = len(re.findall(expect, self.log())) if expect else 0
        if text is not None:
            self.write_config(text)
        self.signal(signal.SIGHUP)
        if expect:
            return self.wait_log(expect, timeout, count=before + 1)
        return True

    def alive(self):
        return self.proc.poll() is None

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def wait(self, timeout=15.0):
        if self.logf.closed:
            return self.rc
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.rc = self.proc.wait()
            self.rc = "killed"
        self.logf.close()
        return self.rc

    def stop(self, timeout=15.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)


BUILDDIR = os.environ.get("LTCP_BUILDDIR") or os.path.dirname(os.path.dirname(os.path.abspath(BIN)))


def _built_with_sanitizers():
    try:
        with open(os.path.join(BUILDDIR, "auto-config.h")) as f:
            return "#define HAVE_SANITIZERS 1" in f.read()
    except OSError:
        return False


# A sanitizer build runs several times slower: bounds on time scale by this, and say so.
SLOWDOWN = 5 if _built_with_sanitizers() else 1
# A make started from a test must not inherit the jobserver of the make running the suite.
MAKE_ENV = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR")}


def make(*args):
    """Runs make in the build tree; (rc, stdout, stderr)."""
    p = subprocess.run(["make", "-s", "--no-print-directory", "-C", BUILDDIR, *args], env=MAKE_ENV,
                       capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def make_var(name):
    """The value of a make variable of the build tree, or None."""
    rc, out, err = make("--eval=print-var-%: ; @echo $($*)", "print-var-" + name)
    return out.strip() if rc == 0 else None


def run_cli(*args, stdin=None, env=None, timeout=10):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True, env=e, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def static_config(servers, endpoints, label="proxy0", extra_proxy="", top=""):
    """A one-proxy YAML config with static endpoints.

    servers: list of "host:port"; endpoints: list of (addr, weight) or addr."""
    lines = [top.rstrip()] if top else []
    lines += ["proxies:", "  - label: %s" % label, "    servers:"]
    for s in servers:
        lines.append("      - addr: %s" % yaml_quote(s))
    if endpoints:
        lines.append("    endpoints:")
        for e in endpoints:
            addr, weight = (e, None) if isinstance(e, str) else e
            lines.append("      - addr: %s" % yaml_quote(addr))
            if weight is not None:
                lines.append("        weight: %s" % weight)
    else:
        lines.append("    endpoints: []")
    if extra_proxy:
        lines += ["    " + l for l in extra_proxy.strip().splitlines()]
    return "\n".join(lines) + "\n"
