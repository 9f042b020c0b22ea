"""GET /, the operator's page, without JavaScript (urllib) and in a real browser:
Debian's chromium, headless, driven through chromedriver (tests/lib/webdriver.py).

Shows: the server-rendered table carries every endpoint with the numbers of
/endpoints and escapes what comes from the configuration and from namerd; in the
browser the page refreshes itself (counts change after traffic, in the DOM as
--dump-dom and WebDriver see it), its weight, drain and reset controls reach the
balancer (held connections split 30:10 after a weight of 3 is set through the page),
API errors show on the page, and with admin.token set the page asks for the token.
A screenshot is kept as tests/integration/page-screenshot.png in the build tree."""

import json
import os
import re
import struct
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from html.parser import HTMLParser

import webdriver
from ltcptest import *

t = Tap()
daemon = t.daemon
SCREENSHOT = os.path.join(BUILDDIR, "tests", "integration", "page-screenshot.png")
TOKEN = "p4ge-t0ken"
LABEL = "api<script>alert(1)</script>"
CAUSE = "<b>x</b> & 'q'"


def http(d, path, method="GET", headers=None, body=None):
    """(status, body, headers) of an admin request."""
    req = urllib.request.Request(d.admin_url() + path, method=method, headers=headers or {},
                                 data=body)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def state(d, headers=None):
    return json.loads(http(d, "/endpoints", headers=headers)[1])


def endpoints(d, label="web", headers=None):
    """{addr: endpoint} of one proxy in /endpoints."""
    p = [p for p in state(d, headers)["proxies"] if p["label"] == label][0]
    return {e["addr"]: e for e in p["endpoints"]}


def weight_text(w):
    return "%g" % w


class Page(HTMLParser):
    """What a document shows: the endpoint rows ({(proxy, addr): {cell class: text}}),
    the text of each element with an id and of each class, and tag counts."""

    VOID = {"meta", "input", "br", "img", "link", "polyline", "col"}

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.rows, self.ids, self.classes, self.tags = {}, {}, {}, {}
        self.hidden = set()  # ids of elements with the hidden attribute
        self._stack, self._row = [], None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in a and "hidden" in a:
            self.hidden.add(a["id"])
        if tag == "tr" and "ep" in (a.get("class") or "").split():
            self._row = self.rows.setdefault((a.get("data-proxy"), a.get("data-addr")),
                                             {"class": a.get("class")})
        if tag not in self.VOID:
            self._stack.append((tag, a, []))

    def handle_endtag(self, tag):
        while self._stack:
            t_, a, buf = self._stack.pop()
            text = "".join(buf)
            if self._stack:
                self._stack[-1][2].append(text)
            if "id" in a:
                self.ids[a["id"]] = text
            for c in (a.get("class") or "").split():
                self.classes.setdefault(c, []).append(text)
                if t_ == "td" and self._row is not None:
                    self._row[c] = text
            if t_ == "tr":
                self._row = None
            if t_ == tag:
                return

    def handle_data(self, data):
        if self._stack:
            self._stack[-1][2].append(data)


def row_matches(row, e):
    """The cells of a row show the numbers of endpoint e of /endpoints."""
    want = {"state": e["state"], "weight": weight_text(e["weight"]),
            "cfg": weight_text(e["configured_weight"]), "active": str(e["active"]),
            "connects": str(e["connects"]), "failures": str(e["failures"]),
            "bin": str(e["bytes_from_client"]), "bout": str(e["bytes_to_client"])}
    return all(row.get(k) == v for k, v in want.items()), want


def hold(port, n):
    """n open connections through the proxy and the backend name each got."""
    socks, names = [], []
    for _ in range(n):
        s = connect(port)
        names.append(read_line(s).decode().strip())
        socks.append(s)
    return socks, names


def close_all(d, socks):
    for s in socks:
        s.close()
    wait_until(lambda: sum(e["active"] for e in endpoints(d).values()) == 0, 10)


# ------------------------------------------------------------------ without JavaScript


def namerd_proxy(n):
    return """  - label: %s
    servers: [{addr: "127.0.0.1:0"}]
    namerd: {addr: "127.0.0.1:%d", path: /svc/api, timeout_ms: 500}
""" % (yaml_quote(LABEL), n.port)


def test_without_javascript():
    a, b = t.backend(IdBackend, name="a"), t.backend(IdBackend, name="b")
    dead = "127.0.0.1:%d" % unused_port()
    n = t.namerd()
    n.set_failed("default", "/svc/api", CAUSE)
    d = daemon(static_config(["127.0.0.1:0"], [(a.addr, 3), (b.addr, 1), (dead, 5)], label="web")
               + namerd_proxy(n))
    sent = 0
    while sent < 6 or (endpoints(d)[dead]["failures"] == 0 and sent < 50):
        exchange(d.port("web"), random_bytes(1000 * sent + 7, seed=sent))
        sent += 1
    wait_until(lambda: len(re.findall("reason=done", d.log())) == sent, 10)
    t.ok(wait_until(lambda: [p for p in state(d)["proxies"] if p["label"] == LABEL][0]["discovery"]
                    .get("last_error"), 10), "namerd's failure is in /endpoints")

    st, body, headers = http(d, "/")
    doc = state(d)
    t.ok(st == 200 and headers.get("Content-Type") == "text/html; charset=utf-8",
         "GET / answers 200 with text/html")
    csp = headers.get("Content-Security-Policy", "")
    t.ok(all(x in csp for x in ["default-src 'none'", "script-src 'unsafe-inline'",
                                "style-src 'unsafe-inline'", "connect-src 'self'", "img-src data:",
                                "frame-ancestors 'none'"]),
         "... with a Content-Security-Policy that allows only inline code and its own origin (%s)" % csp)
    t.ok(headers.get("X-Frame-Options") == "DENY" and headers.get("Cache-Control") == "no-store",
         "... X-Frame-Options: DENY and Cache-Control: no-store")
    t.ok(not re.search(r"\b(src|href)\s*=|<link|@import|url\(", body),
         "the document loads nothing else: no src, href, link, @import or url()")

    page = Page(body)
    want = {(p["label"], e["addr"]): e for p in doc["proxies"] for e in p["endpoints"]}
    t.eq(set(page.rows), set(want), "the server-rendered table has a row per endpoint")
    bad = []
    for key, e in want.items():
        ok, cells = row_matches(page.rows.get(key, {}), e)
        if not ok:
            bad.append((key, page.rows.get(key), cells))
    t.ok(not bad and want, "... each with the state, weights and counters of /endpoints%s" %
         ("" if not bad else ": %r" % bad))
    web = endpoints(d)
    t.ok(web[dead]["failures"] >= 1 and page.rows[("web", dead)]["failures"] == str(web[dead]["failures"])
         and sum(int(page.rows[("web", x)]["connects"]) for x in (a.addr, b.addr)) == sent,
         "... connects and failures included (the dead endpoint's failures: %s)" % web[dead]["failures"])
    pool = doc["pool"]
    t.ok(page.classes["threads"] == [str(pool["threads"])] and page.classes["busy"] == [str(pool["busy"])]
         and page.classes["idle"] == [str(pool["idle"])], "the pool: threads, busy, idle")
    t.ok("listening on 127.0.0.1:%d" % d.port("web") in page.classes["listeners"],
         "the listeners are shown")
    t.ok(page.classes["kind"] == ["static", "namerd"] and page.classes["dstate"] == ["failing"],
         "the discovery state is shown: static, and namerd failing")

    t.ok("<script>alert" not in body and body.count("<script") == 1 and "<b>x</b>" not in body,
         "no markup from the configuration or from namerd reaches the document")
    t.ok(LABEL in page.classes["label"] and "&lt;script&gt;alert(1)&lt;/script&gt;" in body,
         "a label with <script> reads as text")
    t.ok(page.classes["lasterr"] == ["resolution failed: " + CAUSE] and
         "&lt;b&gt;x&lt;/b&gt; &amp; &#39;q&#39;" in body, "namerd's error %r reads as text" % CAUSE)
    t.ok("<noscript>" in body, "a note says what works without JavaScript")

    t.eq(http(d, "/nothing-here")[0], 404, "an unknown path is still 404")
    st, _, headers = http(d, "/", method="POST", body=b"")
    t.ok(st == 405 and headers.get("Allow") == "GET", "POST /: 405, Allow: GET")
    port = int(d.admin_url().rsplit(":", 1)[1])
    t.eq(http(d, "/", headers={"Host": "evil.example:%d" % port})[0], 421,
         "GET / with a foreign Host: 421 (DNS rebinding)")


# ------------------------------------------------------------------ in the browser

READ_PAGE = """
const rows = {};
for (const tr of document.querySelectorAll('tr.ep')) {
  const c = { class: tr.className };
  for (const td of tr.cells) c[td.className] = td.textContent;
  const b = tr.querySelector('button.drain');
  c.drain_button = b ? b.textContent : null;
  c.spark = !!tr.querySelector('td.rate svg polyline');
  rows[tr.dataset.addr] = c;
}
const text = (id) => document.getElementById(id).textContent;
return { rows: rows, refreshes: Number(text('refreshes')), live: text('live'), error: text('error'),
         msg: text('msg'), token_form: !document.getElementById('token-form').hidden };
"""


def read_page(br):
    return br.script(READ_PAGE)


def page_until(br, pred, timeout=15):
    """The page's state once pred(state) holds (or the last one read)."""
    return wait_until(lambda: (lambda s: s if pred(s) else None)(read_page(br)), timeout) or read_page(br)


def control(br, addr, button, weight=None):
    row = br.find("tr.ep[data-addr='%s']" % addr)
    if weight is not None:
        box = br.find("input.w", row)
        br.clear(box)
        br.send_keys(box, str(weight))
    br.click(br.find("button." + button, row))


def png_ok(data):
    """(ok, why): a PNG whose chunks check out, at least 800x400, with varied pixels."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False, "no PNG signature"
    pos, chunks, idat = 8, [], b""
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body, crc = data[pos + 8:pos + 8 + n], data[pos + 8 + n:pos + 12 + n]
        if len(crc) != 4 or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            return False, "bad CRC in %r" % kind
        chunks.append(kind)
        idat += body if kind == b"IDAT" else b""
        pos += 12 + n
    if not chunks or chunks[0] != b"IHDR" or chunks[-1] != b"IEND":
        return False, "chunks %r" % chunks[:5]
    w, h = struct.unpack(">II", data[16:24])
    raw = zlib.decompress(idat)
    distinct = len(set(raw[:: max(1, len(raw) // 200000)]))
    return w >= 800 and h >= 400 and distinct > 20, "%dx%d, %d bytes, %d distinct byte values" % (
        w, h, len(data), distinct)


def dump_dom(url):
    """chromium --headless --dump-dom, the page's script given 3 s of virtual time."""
    with tempfile.TemporaryDirectory(prefix="ltcp-dump-") as prof:
        p = subprocess.run(["chromium", *webdriver.FLAGS, "--user-data-dir=" + prof,
                            "--virtual-time-budget=3000", "--dump-dom", url],
                           capture_output=True, timeout=90)
    return p.stdout.decode(errors="replace")


def test_live(br):
    a, b = t.backend(IdBackend, name="a"), t.backend(IdBackend, name="b")
    d = daemon(static_config(["127.0.0.1:0"], [(a.addr, 1), (b.addr, 1)], label="web"))
    port = d.port("web")
    for i in range(3):
        exchange(port, b"x" * 100)
    br.get(d.admin_url() + "/")
    s = page_until(br, lambda s: s["refreshes"] >= 1 and set(s["rows"]) == {a.addr, b.addr})
    t.ok(s["refreshes"] >= 1 and set(s["rows"]) == {a.addr, b.addr} and s["live"] == "live",
         "in chromium the page's script refreshes from /endpoints and shows both endpoints (%r)" % s)
    before = sum(int(r["connects"]) for r in s["rows"].values())
    for i in range(5):
        exchange(port, b"y" * 1000)
    want = before + 5
    s = page_until(br, lambda s: sum(int(r["connects"]) for r in s["rows"].values()) == want)
    t.eq(sum(int(r["connects"]) for r in s["rows"].values()), want,
         "after 5 more connections the page shows the new connects count, without a reload")
    dom = Page(br.source())
    t.ok(sum(int(dom.rows[("web", x)]["connects"]) for x in (a.addr, b.addr)) == want and
         int(dom.ids["refreshes"]) > 1 and dom.ids["live"] == "live",
         "... and so does the DOM (WebDriver's page source), %s refreshes in" % dom.ids.get("refreshes"))
    t.ok(all(r["spark"] for r in s["rows"].values()) and
         float(s["rows"][a.addr]["rate"]) >= 0, "each endpoint has a rate sparkline")

    cli = Page(dump_dom(d.admin_url() + "/"))
    eps = endpoints(d)
    t.ok(cli.ids.get("live") == "live" and int(cli.ids.get("refreshes", "0")) >= 1 and
         all(cli.rows.get(("web", x), {}).get("connects") == str(eps[x]["connects"]) for x in eps),
         "chromium --dump-dom: the script ran (live, %s refreshes) and shows the counts of /endpoints"
         % cli.ids.get("refreshes"))
    return d, a, b


def screenshot(br):
    png = br.screenshot()
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    with open(SCREENSHOT, "wb") as f:
        f.write(png)
    ok, why = png_ok(png)
    t.ok(ok, "a screenshot is kept as %s: %s" % (SCREENSHOT, why))


def test_controls(br, d, a, b):
    port = d.port("web")
    control(br, a.addr, "set", weight=3)
    t.ok(wait_until(lambda: endpoints(d)[a.addr]["override"] == {"weight": 3.0}, 10),
         "a weight of 3 typed into the page and set reaches the balancer: /endpoints shows the override")
    s = page_until(br, lambda s: s["rows"][a.addr]["ovr"] == "weight 3" and s["rows"][a.addr]["weight"] == "3")
    t.ok(s["rows"][a.addr]["ovr"] == "weight 3" and s["rows"][a.addr]["weight"] == "3" and
         s["rows"][a.addr]["cfg"] == "1" and "done" in s["msg"],
         "... and the page shows it: weight 3, configured 1 (%r)" % s["msg"])
    socks, names = hold(port, 40)
    t.eq((names.count("a"), names.count("b")), (30, 10), "40 held connections split 30:10")
    close_all(d, socks)

    control(br, a.addr, "set", weight=-1)
    s = page_until(br, lambda s: "400" in s["msg"])
    t.ok("400" in s["msg"] and "weight must be" in s["msg"] and
         endpoints(d)[a.addr]["override"] == {"weight": 3.0},
         "a negative weight: the page shows the API's error, the override stays (%r)" % s["msg"])
    br.clear(br.find("tr.ep[data-addr='%s'] input.w" % a.addr))

    socks, names = hold(port, 4)
    keep = socks[names.index("b")]
    control(br, b.addr, "drain")
    t.ok(wait_until(lambda: endpoints(d)[b.addr]["override"] == {"drain": True} and
                    endpoints(d)[b.addr]["state"] == "draining", 10),
         "the page's drain button drains b: /endpoints shows drain and state draining")
    s = page_until(br, lambda s: s["rows"][b.addr]["drain_button"] == "undrain")
    t.ok(s["rows"][b.addr]["state"] == "draining" and s["rows"][b.addr]["drain_button"] == "undrain",
         "... the page shows draining and offers undrain")
    more, names = hold(port, 10)
    t.eq(names.count("b"), 0, "... no new connection goes to b")
    page_until(br, lambda s: s["rows"][a.addr]["active"] == "13")
    screenshot(br)
    keep.sendall(b"still here\n")
    t.eq(read_line(keep), b"still here\n", "... while its open connection keeps working")
    close_all(d, socks + more)
    control(br, b.addr, "drain")
    t.ok(wait_until(lambda: endpoints(d)[b.addr]["override"] == {"drain": False} and
                    endpoints(d)[b.addr]["state"] == "active", 10), "undrain: b is active again")

    control(br, a.addr, "reset")
    control(br, b.addr, "reset")
    t.ok(wait_until(lambda: all(e["override"] is None for e in endpoints(d).values()), 10) and
         [p["overrides"] for p in state(d)["proxies"]] == [[]],
         "reset on both rows deletes the overrides")
    s = page_until(br, lambda s: all(r["ovr"] == "-" for r in s["rows"].values()))
    t.ok(all(r["ovr"] == "-" and r["weight"] == "1" for r in s["rows"].values()),
         "... the page shows no override and the configured weights")
    socks, names = hold(port, 20)
    t.eq((names.count("a"), names.count("b")), (10, 10), "... and 20 held connections split 10:10")
    close_all(d, socks)

    path = "/api/v1/proxies/web/endpoints/" + urllib.parse.quote(b.addr, safe="")
    t.eq(http(d, path, "PUT", body=b'{"weight": 2}')[0], 200, "an override of b through the API")
    d.reload(static_config(["127.0.0.1:0"], [(a.addr, 1)], label="web"))
    s = page_until(br, lambda s: "orphan" in s["rows"].get(b.addr, {}).get("class", ""))
    row = s["rows"].get(b.addr, {})
    t.ok(row.get("state") == "absent, override kept" and row.get("ovr") == "weight 2",
         "b gone from the configuration: its row says the override is kept (%r)" % row)
    srv = Page(http(d, "/")[1]).rows.get(("web", b.addr), {})
    t.ok(srv.get("state") == "absent, override kept" and "orphan" in srv.get("class", ""),
         "... and so does the server-rendered table")
    control(br, b.addr, "reset")
    s = page_until(br, lambda s: b.addr not in s["rows"])
    t.ok(b.addr not in s["rows"] and state(d)["proxies"][0]["overrides"] == [],
         "reset on that row deletes the override, and the row goes")
    errors = [e for e in br.console() if e.get("level") == "SEVERE" and "status of 400" not in e.get("message", "")]
    t.ok(not errors, "no errors in the browser's console (CSP, script)%s" % ("" if not errors else ": %r" % errors))


def test_token(br):
    a = t.backend(IdBackend, name="a")
    d = daemon(static_config(["127.0.0.1:0"], [(a.addr, 1)], label="web",
                             top="admin:\n  token: '%s'" % TOKEN))
    auth = {"Authorization": "Bearer " + TOKEN}
    st, body, _ = http(d, "/")
    page = Page(body)
    t.ok(st == 200 and a.addr not in body and "token-form" not in page.hidden and not page.rows,
         "admin.token set, GET / without it: 200, the page without data, the token form shown")
    st, body, _ = http(d, "/", headers=auth)
    page = Page(body)
    t.ok(st == 200 and ("web", a.addr) in page.rows and "token-form" in page.hidden,
         "... with the token: the table")
    t.eq(http(d, "/endpoints")[0], 401, "... /endpoints without the token: 401")

    br.get(d.admin_url() + "/")
    s = page_until(br, lambda s: "401" in s["error"])
    t.ok("401" in s["error"] and "token" in s["error"] and s["token_form"] and not s["rows"],
         "in the browser the page says the API wants the token (%r)" % s["error"])
    br.send_keys(br.find("#token-input"), "wrong")
    br.click(br.find("#token-form button:not([type])"))
    s = page_until(br, lambda s: "not admin.token" in s["error"])
    t.ok("401" in s["error"] and "not admin.token" in s["error"] and not s["rows"],
         "a wrong token: 401, and the page says the token is wrong (%r)" % s["error"])
    br.send_keys(br.find("#token-input"), TOKEN)
    br.click(br.find("#token-form button:not([type])"))
    s = page_until(br, lambda s: a.addr in s["rows"] and s["error"] == "")
    t.ok(a.addr in s["rows"] and s["error"] == "" and s["rows"][a.addr]["connects"] == "0",
         "after the token is entered in the page, its requests carry it and the table fills")
    control(br, a.addr, "set", weight=2)
    t.ok(wait_until(lambda: endpoints(d, headers=auth)[a.addr]["override"] == {"weight": 2.0}, 10),
         "... and its controls work (PUT with the token)")
    br.click(br.find("#token-forget"))
    s = page_until(br, lambda s: "401" in s["error"])
    t.ok("401" in s["error"] and s["token_form"], "forget: the page is back to asking for the token")


def test_browser():
    missing = webdriver.available()
    if missing:
        if os.environ.get("CI"):
            t.ok(False, "chromium and chromedriver are installed (CI): missing %s" % missing)
        else:
            t.n += 1
            print("ok %d # SKIP the browser tests: %s not installed" % (t.n, missing), flush=True)
        return
    br = webdriver.Browser()
    t.cleanup(br.close)
    d, a, b = test_live(br)
    test_controls(br, d, a, b)
    test_token(br)


t.run(test_without_javascript, test_browser)
