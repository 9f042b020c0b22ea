"""Service discovery through namerd (tests/lib/fake_namerd.py follows
namerd-api.md): watch and poll, weights from meta, neg, failures that must
keep the last good endpoint set, recovery, startup, https and the request
the client sends."""

import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

from fake_namerd import FakeNamerd
from ltcptest import *

t = Tap()
NS, PATH = "default", "/svc/web"


daemon = t.daemon


def backend(name):
    return t.backend(IdBackend, name=name)


namerd = t.namerd


def namerd_config(n, mode="watch", extra="", top="", label="proxy0", path=PATH, client=""):
    text = (top + "\n" if top else "") + """proxies:
  - label: %s
    servers:
      - addr: 127.0.0.1:0
    namerd:
      addr: 127.0.0.1:%d
      path: %s
      mode: %s
      interval_secs: 1
      timeout_ms: 1000
%s""" % (label, n.port, path, mode, "".join("      %s\n" % l for l in extra.splitlines()))
    if client:
        text += "    client:\n" + "".join("      %s\n" % l for l in client.splitlines())
    return text


def who(port, timeout=3.0):
    return first_line(port, timeout).decode()


def eventually(port, want, timeout):
    """Seconds until a new connection lands on `want`, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if who(port, 1.0) == want:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.02)
    return None


def bound(n, *backends, weights=None):
    addrs = []
    for i, b in enumerate(backends):
        meta = {} if weights is None else {"endpoint_addr_weight": weights[i]}
        addrs.append(("127.0.0.1", b.port, meta))
    n.set_bound(NS, PATH, addrs)


def test_updates(mode, within):
    n = namerd()
    a, b = backend("a"), backend("b")
    bound(n, a)
    d = daemon(namerd_config(n, mode=mode))
    port = d.port()
    t.eq(who(port), "a", "%s: the first answer is used" % mode)
    held = connect(port)
    t.eq(read_line(held), b"a\n", "%s: a connection to a is open" % mode)
    bound(n, b)
    secs = eventually(port, "b", 5.0)
    t.ok(secs is not None and secs < within,
         "%s: a new endpoint set is used by new connections within %.1f s (%s)" % (mode, within, secs))
    payload = random_bytes(2 << 20, seed=7)
    held.sendall(payload)
    held.shutdown(socket.SHUT_WR)
    t.ok(recv_all(held) == payload, "%s: the open connection to the removed endpoint keeps transferring" % mode)
    held.close()
    lines = n.request_lines()
    want = "GET /api/1/resolve/default?path=%2Fsvc%2Fweb" + ("&watch=1" if mode == "watch" else "")
    t.ok(lines and lines[0].startswith(want + " HTTP/1.1"), "%s: the request is %s" % (mode, want))
    if mode == "watch":
        t.ok(n.request_count(NS, PATH, watch=True) == 1, "watch: one stream carried both updates")
    else:
        t.ok(n.request_count(NS, PATH, watch=False) >= 2, "poll: namerd was asked again")
    return d, n, a, b


def test_weights():
    n = namerd()
    a, b = backend("a"), backend("b")
    bound(n, a, b, weights=[3.0, 1.0])
    d = daemon(namerd_config(n, top="relay_threads: 256"))
    socks, ids = [], []
    for _ in range(200):
        s = connect(d.port())
        socks.append(s)
        ids.append(read_line(s).strip().decode())
    na, nb = ids.count("a"), ids.count("b")
    t.ok(na + nb == 200 and nb > 0 and 2.5 <= na / nb <= 3.5,
         "weights 3.0 vs 1.0 from namerd meta split 200 held connections %d:%d" % (na, nb))
    for s in socks:
        s.close()


def test_neg_and_empty():
    n = namerd()
    a = backend("a")
    bound(n, a)
    d = daemon(namerd_config(n))
    port = d.port()
    t.eq(who(port), "a", "bound: served")
    n.set_neg(NS, PATH)
    t.ok(d.wait_log("does not exist \\(neg\\): no endpoints"), "neg is logged")
    closed, secs = closed_promptly(port, 3.0)
    t.ok(closed and secs < 0.5, "neg: new connections are closed promptly (%.3f s)" % secs)
    bound(n, a)
    t.ok(eventually(port, "a", 3.0) is not None, "bound again: served again")
    n.set_bound(NS, PATH, [])
    t.ok(d.wait_log(r"proxy0: namerd /svc/web: 0 endpoint\(s\)", count=2), "an empty bound set is applied")
    closed, secs = closed_promptly(port, 3.0)
    t.ok(closed and secs < 0.5, "empty bound: new connections are closed promptly (%.3f s)" % secs)


def keeps_serving(port, want="a", n=5):
    return all(who(port) == want for _ in range(n))


def failed_requests_after(d, mode, result, timeout=10.0):
    """Call before a fault: the function returned waits until the daemon has
    counted a namerd request with this result (it has met the fault)."""
    before = namerd_counts(d).get(result, 0)

    def wait():
        if not wait_until(lambda: namerd_counts(d).get(result, 0) > before, timeout, 0.05):
            t.diag("%s: no namerd request counted as %s within %g s" % (mode, result, timeout))

    return wait


def test_faults(mode):
    n = namerd()
    a, b = backend("a"), backend("b")
    bound(n, a)
    d = daemon(namerd_config(n, mode=mode, extra="watch_idle_secs: 2"))
    port = d.port()
    t.eq(who(port), "a", "%s: served by the first answer" % mode)

    n.set_raw(NS, PATH, '{"type":"bound","addrs":[{"ip":"127.0.0.1"')
    if mode == "poll":
        d.wait_log("bad response", 5)
    t.ok(keeps_serving(port), "%s: garbage from namerd keeps the last good set" % mode)
    n.set_error(NS, PATH, "name tree failed")
    t.ok(d.wait_log("name tree failed|HTTP 500", 5), "%s: a namerd error (500 or error line) is logged" % mode)
    t.ok(keeps_serving(port), "%s: ... and the last good set is kept" % mode)
    n.set_failed(NS, PATH, "malformed address: 10.0.0.7")
    t.ok(d.wait_log("resolution failed: malformed address", 5) or mode == "watch",
         "%s: a failed answer is logged" % mode)
    t.ok(keeps_serving(port), "%s: a failed answer keeps the last good set" % mode)

    counted = failed_requests_after(d, mode, "unreachable")
    n.stop()
    counted()
    t.ok(keeps_serving(port), "%s: namerd down: traffic keeps flowing" % mode)
    counted = failed_requests_after(d, mode, "timeout")
    n.start()
    n.hang(True)
    counted()
    t.ok(keeps_serving(port), "%s: namerd hanging: traffic keeps flowing" % mode)
    t.ok(d.wait_log("no answer within 1000 ms", 5), "%s: the hang is logged as a timeout" % mode)
    n.hang(False)
    bound(n, b)
    secs = eventually(port, "b", 10.0)
    t.ok(secs is not None, "%s: namerd back: updates resume (%.2f s)" % (mode, secs or -1))
    t.ok(d.wait_log("answers again"), "%s: the recovery is logged" % mode)
    episodes = len(re.findall("keeping the last endpoint set", d.log()))
    t.ok(1 <= episodes <= 6, "%s: failures are logged once per episode (%d warnings)" % (mode, episodes))
    if mode == "watch":
        before = n.request_count(NS, PATH, watch=True)
        n.cut_streams()
        bound(n, a)
        t.ok(eventually(port, "a", 5.0) is not None, "watch: a cut stream is reopened and resumes")
        t.ok(n.request_count(NS, PATH, watch=True) > before, "watch: ... with a new request")


def test_silent_stream_recycled():
    n = namerd()
    a = backend("a")
    bound(n, a)
    d = daemon(namerd_config(n, extra="watch_idle_secs: 1"))
    wait_until(lambda: n.request_count(NS, PATH, watch=True) >= 3, 6)
    t.ok(n.request_count(NS, PATH, watch=True) >= 3,
         "watch_idle_secs: a silent stream is reopened for a fresh snapshot")
    t.eq(who(d.port()), "a", "... and serving goes on")


def test_startup_wait():
    n = namerd()
    a = backend("a")
    n.hang(True)
    d = daemon(namerd_config(n, client="connect_timeout_ms: 1500"))
    port = d.port()
    start = time.monotonic()
    closed, _ = closed_promptly(port, 5.0)
    secs = time.monotonic() - start
    t.ok(closed and 1.2 < secs < 3.0, "before any answer a connection waits connect_timeout_ms, then is closed (%.2f s)" % secs)
    t.ok(d.wait_log("reason=not resolved"), "... with reason 'not resolved'")
    s = connect(port)
    time.sleep(0.3)
    bound(n, a)
    n.hang(False)
    t.eq(read_line(s, 5.0), b"a\n", "a connection waiting for the first answer is served once it arrives")
    s.close()


def test_readme_namerd():
    """The README's namerd section (addr + path only, namespace default) against the fake."""
    try:
        n = FakeNamerd(port=4180).start()
        port_note = "4180"
    except OSError:
        n = FakeNamerd().start()
        port_note = "an ephemeral port (4180 is taken)"
    t.cleanup(n.stop)
    a = backend("google")
    n.set_bound("default", "/svc/google", [("127.0.0.1", a.port)])
    d = daemon("""proxies:
  - servers:
      - addr: 127.0.0.1:0
    namerd:
      addr: 127.0.0.1:%d
      path: /svc/google
""" % n.port)
    t.eq(who(d.port()), "google", "the README's namerd section resolves /svc/google on %s" % port_note)


def test_https():
    tmp = tempfile.mkdtemp(prefix="ltcp-namerd-tls-")
    key, crt = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True)
    if r.returncode != 0:
        t.ok(False, "openssl made a test certificate: %s" % r.stderr.decode())
        return
    n = namerd()
    a = backend("a")
    bound(n, a)
    tls_port = free_port()
    front = subprocess.Popen(["socat", "OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,cert=%s,key=%s,verify=0"
                              % (tls_port, crt, key), "TCP:127.0.0.1:%d" % n.port],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t.cleanup(front.kill)
    wait_until(lambda: _listening(tls_port), 5)
    cfg = """proxies:
  - servers: [{addr: "127.0.0.1:0"}]
    namerd:
      url: https://127.0.0.1:%d/
      path: %s
      mode: poll
      trust_cert_path: %s
""" % (tls_port, PATH, crt)
    d = daemon(cfg)
    # The first answer comes through socat's TLS front: slow under sanitizers on a busy machine.
    t.ok(wait_until(lambda: d.admin("/ready")[0] == 200, 20), "namerd over https answers (/ready)")
    t.eq(who(d.port()), "a", "namerd over https, verified against trust_cert_path")
    untrusted = cfg.replace("      trust_cert_path: %s\n" % crt, "")
    d2 = daemon(untrusted)
    t.ok(d2.wait_log("keeping the last endpoint set"), "https with an untrusted certificate is refused")
    closed, _ = closed_promptly(d2.port(), 5.0)
    t.ok(closed, "... and no endpoints are used")


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def test_reload_switches():
    n = namerd()
    a, b = backend("a"), backend("b")
    bound(n, a)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr]))
    port = d.port()
    t.eq(who(port), "b", "static endpoints first")
    # The listener's configured address stays "127.0.0.1:0", so its socket is kept.
    t.ok(d.reload(namerd_config(n)), "reload to namerd")
    t.ok(eventually(port, "a", 5.0) is not None, "after the reload namerd's answer is used")
    t.ok(d.reload(static_config(["127.0.0.1:0"], [b.addr])), "reload back to static")
    t.ok(eventually(port, "b", 5.0) is not None, "the static list is used again")
    t.ok(d.wait_log("no longer listening|resolving") and d.alive(), "the daemon stayed up through both")


FAILURES = ("failed", "http_error", "bad_response", "unreachable", "timeout")


def admin_get(d, path):
    with urllib.request.urlopen(d.admin_url() + path, timeout=10) as r:
        return r.read().decode()


def namerd_counts(d, label="proxy0"):
    """{result: value} of linkerd_tcp_namerd_requests_total for one proxy, from /metrics."""
    out = {}
    for line in admin_get(d, "/metrics").splitlines():
        m = re.match(r'linkerd_tcp_namerd_requests_total\{(.*)\} (\S+)$', line)
        if m and 'proxy="%s"' % label in m.group(1):
            out[re.search(r'result="(\w+)"', m.group(1)).group(1)] = float(m.group(2))
    return out


def no_failures(counts):
    return all(counts.get(k) == 0 for k in FAILURES)


def requests_over(n, watch, secs):
    """Resolve requests the fake namerd receives during the next `secs` seconds."""
    before = n.request_count(NS, PATH, watch=watch)
    time.sleep(secs)  # a measurement window: the requests are counted over it, not waited for
    return n.request_count(NS, PATH, watch=watch) - before


def served_by_poll(tag):
    """A fake namerd that binds backend "a", and a daemon polling it that serves from it."""
    n = namerd()
    a = backend("a")
    bound(n, a)
    d = daemon(namerd_config(n, mode="poll"))
    t.eq(who(d.port()), "a", "%s: served" % tag)
    return n, a, d


def test_poll_pace():
    n, a, d = served_by_poll("poll pace")
    got = requests_over(n, False, 5.0)
    t.ok(4 <= got <= 6, "poll, interval_secs 1: %d requests in 5 s (want 4-6)" % got)
    c = namerd_counts(d)
    t.ok(c.get("ok", 0) >= 4 and no_failures(c), "poll: good answers count as ok, failure counters stay 0 (%r)" % c)
    unchanged = len(re.findall(r"namerd answer unchanged \(1 endpoint", d.log()))
    t.ok(unchanged >= 3, "poll: a repeated answer is not decoded again (%d times)" % unchanged)
    b = backend("b")
    bound(n, b)
    t.ok(eventually(d.port(), "b", 3.0) is not None, "poll: a changed answer after repeats is applied")


def test_watch_pace():
    n = namerd()
    a, b = backend("a"), backend("b")
    bound(n, a)
    d = daemon(namerd_config(n))
    port = d.port()
    t.eq(who(port), "a", "watch pace: served")
    bound(n, b)
    t.ok(eventually(port, "b", 3.0) is not None, "watch pace: an update arrives on the stream")
    got = requests_over(n, True, 4.5)
    t.eq(n.request_count(NS, PATH, watch=True), 1, "watch: a stream that stays open is the only request (%d more)" % got)
    c = namerd_counts(d)
    t.ok(c.get("ok") == 2 and c.get("stream_ended") == 0 and no_failures(c),
         "watch: two good frames count as ok, failure counters stay 0 (%r)" % c)


def test_watch_clean_end_pace():
    n = namerd()
    n.stream_messages = 1  # every stream ends cleanly after its snapshot
    a = backend("a")
    bound(n, a)
    d = daemon(namerd_config(n))
    t.eq(who(d.port()), "a", "watch, streams end after each frame: served")
    got = requests_over(n, True, 5.0)
    t.ok(3 <= got <= 6, "... reopened at the interval (1 s), not in a loop: %d requests in 5 s (want 3-6)" % got)
    c = namerd_counts(d)
    t.ok(c.get("ok", 0) >= 3 and c.get("stream_ended", 0) >= 3 and no_failures(c),
         "... clean ends count as stream_ended, failure counters stay 0 (%r)" % c)


CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f]")



def logged_clean(d, rx, words, what):
    """The first log line matching rx holds every word and no control character."""
    lines = d.wait_log(rx)
    line = lines[0] if lines else ""
    t.ok(line and all(w in line for w in words) and not CONTROLS.search(line), "%s: %r" % (what, line))


def last_error_clean(d, word):
    err = json.loads(admin_get(d, "/endpoints"))["proxies"][0]["discovery"].get("last_error", "")
    t.ok(word in err and not CONTROLS.search(err), "/endpoints last_error has no control characters: %r" % err)


def test_error_text_sanitized():
    n, a, d = served_by_poll("sanitize")
    n.fail_next(1, 500, b"boom \x1b[31mred\x1b[0m\rtail\nsecond line\n")
    logged_clean(d, "HTTP 500 boom[^\n]*", ["red", "tail"],
                 "poll: an HTTP 500 body is logged on one line without control characters")
    t.ok(d.wait_log("answers again"), "poll: recovered")
    n.set_failed(NS, PATH, "bad \x1b[2Jcause\nnext\x07")
    logged_clean(d, "resolution failed: bad[^\n]*", ["next"],
                 "poll: a failed cause is logged on one line without control characters")
    last_error_clean(d, "cause")
    t.ok(not CONTROLS.search(d.log().replace("\n", "")), "no control character anywhere in the poll daemon's log")

    n = namerd()
    bound(n, a)
    w = daemon(namerd_config(n))
    t.eq(who(w.port()), "a", "watch sanitize: served")
    n.set_error(NS, PATH, "tree \x1b[31mbroke\rhere\x1b[0m")
    logged_clean(w, "namerd error: tree[^\n]*", ["here"],
                 "watch: a namerd error line is logged without control characters")
    last_error_clean(w, "broke")
    t.ok(not CONTROLS.search(w.log().replace("\n", "")), "no control character anywhere in the watch daemon's log")


def test_watch_http_error_aborted():
    n = namerd()
    a, b = backend("a"), backend("b")
    bound(n, a)
    d = daemon(namerd_config(n, extra="watch_idle_secs: 600"))
    port = d.port()
    t.eq(who(port), "a", "watch 503: served")
    n.fail_next(1, 503, b"overloaded\n", drip=0.1)
    n.cut_streams()
    t.ok(n.wait_until(lambda: n.request_count(NS, PATH, watch=True) >= 2), "the reopened stream gets the 503")
    bound(n, b)
    secs = eventually(port, "b", 10.0)
    t.ok(secs is not None and secs < 2.5,
         "a 503 whose body never ends is dropped at once; the next stream's answer is used in %s s" % secs)
    t.ok(d.wait_log("HTTP 503"), "the 503 is logged")
    c = namerd_counts(d)
    t.ok(c.get("http_error", 0) >= 1, "it counts as an HTTP error (%r)" % c)
    t.ok(n.wait_until(lambda: n.open_streams() == 1 and n.connections() == 1, 3),
         "the 503's connection was closed by the client")


def test_poll_http_error_body_cut():
    n, a, d = served_by_poll("poll 503")
    n.fail_next(1, 503, b"overloaded\n", drip=0.1)
    t.ok(d.wait_log("HTTP 503 overloaded", 3), "poll: a 503 whose body never ends is logged with its first line")
    t.ok(d.wait_log("answers again", 3), "poll: the next poll is answered")
    c = namerd_counts(d)
    t.ok(c.get("http_error") == 1 and c.get("timeout") == 0,
         "poll: it counts as an HTTP error, not a timeout (%r)" % c)
    t.ok(n.wait_until(lambda: n.connections() <= 1, 3), "poll: the 503's connection was closed by the client")


t.run(
    (test_updates, ("poll", 1.5)),
    (test_updates, ("watch", 1.0)),
    test_poll_pace,
    test_watch_pace,
    test_watch_clean_end_pace,
    test_error_text_sanitized,
    test_watch_http_error_aborted,
    test_poll_http_error_body_cut,
    test_weights,
    test_neg_and_empty,
    (test_faults, ("watch",)),
    (test_faults, ("poll",)),
    test_silent_stream_recycled,
    test_startup_wait,
    test_readme_namerd,
    test_https,
    test_reload_switches,
)
