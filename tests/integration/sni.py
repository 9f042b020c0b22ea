"""SNI routing and TLS passthrough (SPEC 12): several proxies on one port, each
connection routed by its ClientHello's name to its own backend.  Real TLS
clients (Python ssl, gnutls-cli, curl) and real TLS backends that present
their own certificates; passthrough is verified end to end against the
backend's certificate.  Exact names, one-label wildcards, the default,
termination and passthrough side by side, 16 MiB each way, a ClientHello in
1-byte segments, plaintext and slow clients, config errors, reload."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from ltcptest import *
from tlsgen import CA

t = Tap()
daemon = t.daemon
MiB = 1 << 20
WORK = tempfile.mkdtemp(prefix="ltcp-sni-")
CA1 = CA(os.path.join(WORK, "ca"), "SNI Test CA")


def metric(d, name, **labels):
    code, text = d.admin("/metrics")
    for line in text.splitlines():
        if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items()):
            return int(line.rsplit(" ", 1)[1])
    return None


class TlsBackend(Backend):
    """A TLS endpoint with its own certificate for `names`: says its name, then
    echoes; a request line starting "GET " gets an HTTP answer (for curl)."""

    def __init__(self, name, names):
        key, crt = CA1.issue("backend-" + name, names, cn="backend-" + name)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(crt, key)
        self.snis = []
        super().__init__(name=name)

    def handle(self, conn):
        self.ctx.sni_callback = lambda s, name, c: self.snis.append(name) and None
        try:
            s = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            return
        first = s.recv(4)
        if first == b"GET ":
            s.recv(65536)
            s.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + self.name.encode() + b"\n")
            s.close()
            return
        s.sendall(self.name.encode() + b"\n" + first)
        echo_until_eof(s)


def backend(name, names):
    b = TlsBackend(name, names)
    t.cleanup(b.close)
    return b


def proxy_entry(label, port, endpoint, names=None, passthrough=True, tls=None, extra=""):
    text = "  - label: %s\n    servers:\n      - addr: 127.0.0.1:%d\n" % (label, port)
    if names:
        text += "        server_names: [%s]\n" % ", ".join('"%s"' % n for n in names)
    if passthrough:
        text += "        sni_passthrough: true\n"
    if tls:
        text += "        tls:\n          private_key_path: %s\n          cert_paths: [%s]\n" % tls
    text += extra
    return text + "    endpoints:\n      - addr: %s\n" % endpoint


def config(*entries, top=""):
    return top + "proxies:\n" + "".join(entries)


def client_ctx():
    return ssl.create_default_context(cafile=CA1.cert)


def hello(port, sni, timeout=5.0):
    """(name line, peer certificate's CN) through a verified TLS connection; (None, error)."""
    try:
        s = connect(port, timeout)
        ts = client_ctx().wrap_socket(s, server_hostname=sni)
        ts.sendall(b"ping")
        line = read_line(ts, timeout).strip().decode()
        cn = dict(x[0] for x in ts.getpeercert()["subject"]).get("commonName")
        ts.close()
        return line, cn
    except (OSError, ssl.SSLError) as e:
        return None, str(e)


def four_backends():
    return (backend("a", ["a.example.com"]), backend("b", ["b.example.com"]),
            backend("w", ["*.svc.example.com"]), backend("d", ["default.example.com", "unknown.example.com",
                                                               "y.x.svc.example.com", "svc.example.com"]))


def test_routing():
    a, b, w, dflt = four_backends()
    port = free_port()
    d = daemon(config(proxy_entry("a", port, a.addr, ["a.example.com"]),
                      proxy_entry("b", port, b.addr, ["B.Example.COM"]),
                      proxy_entry("w", port, w.addr, ["*.svc.example.com"]),
                      proxy_entry("dflt", port, dflt.addr)))
    t.eq(hello(port, "a.example.com"), ("a", "backend-a"),
         "passthrough: a.example.com reaches backend a, and the client verifies a's own certificate")
    t.eq(hello(port, "b.example.com"), ("b", "backend-b"), "b.example.com reaches backend b (names are case-insensitive)")
    t.eq(hello(port, "x.svc.example.com"), ("w", "backend-w"), "*.svc.example.com matches x.svc.example.com")
    t.eq(hello(port, "y.x.svc.example.com")[0], "d", "... but not y.x.svc.example.com (one label only): default")
    t.eq(hello(port, "svc.example.com")[0], "d", "... nor svc.example.com itself: default")
    t.eq(hello(port, "unknown.example.com")[0], "d", "an unknown name goes to the default proxy")
    s = connect(port)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ts = ctx.wrap_socket(s)  # no server_hostname: no SNI
    ts.sendall(b"x")
    t.eq(read_line(ts).strip(), b"d", "a ClientHello without SNI goes to the default")
    ts.close()
    t.eq(dflt.snis[-1:], [None], "... and the backend saw no SNI either (bytes untouched)")
    t.ok(d.wait_log(r"-> 127\.0\.0\.1:%d a endpoint=\S+ .*sni=a\.example\.com" % port),
         "the summary line carries sni= and the routed proxy")


def test_no_default_closes():
    a = backend("a", ["a.example.com"])
    port = free_port()
    d = daemon(config(proxy_entry("a", port, a.addr, ["a.example.com"])))
    line, err = hello(port, "other.example.com")
    t.ok(line is None, "no default: an unknown name is closed (%s)" % err)
    t.ok(wait_until(lambda: metric(d, "linkerd_tcp_sni_unmatched_total", server="127.0.0.1:%d" % port) == 1, 5),
         "... and counted in linkerd_tcp_sni_unmatched_total{server}")
    t.eq(hello(port, "a.example.com")[0], "a", "a single proxy with server_names still serves its name")
    t.ok(d.wait_log("sni_unmatched|unmatched \\(other.example.com\\)"), "the unmatched name is logged")


def test_terminate_and_passthrough():
    a = backend("a", ["a.example.com"])
    plain = IdBackend(name="t")
    t.cleanup(plain.close)
    key, crt = CA1.issue("proxy-t", ["t.example.com"], cn="proxy-t")
    port = free_port()
    d = daemon(config(proxy_entry("a", port, a.addr, ["a.example.com"]),
                      proxy_entry("t", port, plain.addr, ["t.example.com"], passthrough=False, tls=(key, crt))))
    t.eq(hello(port, "t.example.com"), ("t", "proxy-t"),
         "a terminating entry on the same port: the proxy's own certificate, plaintext to its backend")
    t.eq(hello(port, "a.example.com"), ("a", "backend-a"), "... side by side with a passthrough entry")


def test_bulk_passthrough():
    a = backend("a", ["a.example.com"])
    port = free_port()
    daemon(config(proxy_entry("a", port, a.addr, ["a.example.com"]), top="park_idle_ms: 100\n"))
    up = random_bytes(16 * MiB, seed=11)
    ts = client_ctx().wrap_socket(connect(port, 30), server_hostname="a.example.com")
    got = pump(ts, up, 16 * MiB + 2, timeout=120)
    ts.close()
    t.ok(got[:2] == b"a\n" and sha256(got[2:]) == sha256(up),
         "16 MiB each way through passthrough arrive intact (sha256)")


def test_one_byte_segments():
    a = backend("a", ["a.example.com"])
    b = backend("b", ["b.example.com"])
    port = free_port()
    daemon(config(proxy_entry("a", port, a.addr, ["a.example.com"]),
                  proxy_entry("b", port, b.addr, ["b.example.com"])))
    s = connect(port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx().wrap_bio(inc, out, server_hostname="b.example.com")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    ch = out.read()
    for i in range(len(ch)):
        s.send(ch[i:i + 1])
        time.sleep(0.001)
    s.settimeout(5)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            data = out.read()
            if data:
                s.sendall(data)
            chunk = s.recv(65536)
            if not chunk:
                break
            inc.write(chunk)
    data = out.read()
    if data:
        s.sendall(data)
    obj.write(b"x")
    s.sendall(out.read())
    got = b""
    while b"\n" not in got:
        try:
            got += obj.read(100)
        except ssl.SSLWantReadError:
            inc.write(s.recv(65536))
    s.close()
    t.eq(got[:2], b"b\n", "a ClientHello sent in %d 1-byte segments is routed by its name" % len(ch))


def closed_by_peer(s, timeout=5.0):
    """True once the peer closed s (EOF or reset) without sending anything."""
    try:
        return recv_all(s, timeout) == b""
    except ConnectionResetError:
        return True
    except OSError:
        return False


def cpu_over(d, secs):
    cpu0 = d.cpu_seconds()
    time.sleep(secs)  # a measurement window, not a wait
    return d.cpu_seconds() - cpu0


def test_plaintext_and_slow():
    a = backend("a", ["a.example.com"])
    port = free_port()
    d = daemon(config(proxy_entry("a", port, a.addr, extra="        connect_timeout_ms: 1000\n")))
    s = connect(port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    start = time.monotonic()
    t.ok(closed_by_peer(s), "a plaintext client is closed")
    t.ok(time.monotonic() - start < 0.5, "... at once (%.2f s)" % (time.monotonic() - start))
    s.close()
    t.ok(wait_until(lambda: metric(d, "linkerd_tcp_sni_rejected_total", cause="not_tls") == 1, 5),
         "... counted as linkerd_tcp_sni_rejected_total{cause=\"not_tls\"}")
    t.ok(d.wait_log("not_tls .*warned once"), "... and warned about once")
    slow = connect(port)
    slow.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
    silent = connect(port)
    start = time.monotonic()
    used = cpu_over(d, 0.5)
    slow_closed = closed_by_peer(slow)
    slow_secs = time.monotonic() - start
    silent_closed = closed_by_peer(silent)
    silent_secs = time.monotonic() - start
    t.ok(slow_closed and 0.4 < slow_secs < 1.5,
         "a slow ClientHello is closed at connect_timeout_ms (%.2f s)" % slow_secs)
    t.ok(silent_closed and 1.5 < silent_secs < 3.5,
         "a silent client waits in the kernel (defer_accept: auto, 1 s), then connect_timeout_ms (%.2f s)"
         % silent_secs)
    t.ok(used < 0.05, "... without spinning a CPU while they wait (%.3f s in 0.5 s)" % used)
    t.ok(wait_until(lambda: metric(d, "linkerd_tcp_sni_rejected_total", cause="timeout") == 2, 5),
         "... counted as cause=\"timeout\"")
    slow.close()
    silent.close()


def test_real_clients():
    a = backend("a", ["a.example.com"])
    b = backend("b", ["b.example.com"])
    port = free_port()
    daemon(config(proxy_entry("a", port, a.addr, ["a.example.com"]),
                  proxy_entry("b", port, b.addr, ["b.example.com"])))
    if shutil.which("curl"):
        out = subprocess.run(["curl", "-s", "--max-time", "10", "--cacert", CA1.cert, "--resolve",
                              "b.example.com:%d:127.0.0.1" % port, "https://b.example.com:%d/" % port],
                             capture_output=True, timeout=20)
        t.eq(out.stdout, b"b\n", "curl to b.example.com verifies backend b's certificate and gets its answer")
    else:
        t.ok(True, "curl # SKIP curl is not installed")
    if shutil.which("gnutls-cli"):
        p = subprocess.run(["gnutls-cli", "--x509cafile", CA1.cert, "--sni-hostname=a.example.com",
                            "--verify-hostname=a.example.com", "-p", str(port), "127.0.0.1"],
                           input=b"hello\n", capture_output=True, timeout=20)
        t.ok(p.returncode == 0 and b"a\nhello" in p.stdout,
             "gnutls-cli to a.example.com verifies backend a's certificate and talks to it (rc %d, %r)"
             % (p.returncode, p.stdout[-80:]))
    else:
        t.ok(True, "gnutls-cli # SKIP gnutls-cli is not installed")


def check_errors(text, expect, what):
    path = os.path.join(WORK, "bad.yml")
    with open(path, "w") as f:
        f.write(text)
    rc, out, err = run_cli("-n", path)
    t.ok(rc == 2 and re.search(r"bad\.yml:\d+:\d+: .*" + expect, err), "%s: exit 2 with FILE:LINE:COL (%s)"
         % (what, err.strip().splitlines()[:1]))


def test_config_errors():
    key, crt = CA1.issue("proxy-x", ["x.example.com"])
    e = "127.0.0.1:9"
    check_errors(config(proxy_entry("a", 8443, e), proxy_entry("b", 8443, e)),
                 "two defaults", "two defaults on one address")
    check_errors(config(proxy_entry("a", 8443, e, ["x.example.com"]), proxy_entry("b", 8443, e, ["X.example.com"])),
                 "claimed twice", "a name claimed twice")
    check_errors(config(proxy_entry("a", 8443, e, ["a.example.com"]),
                        proxy_entry("b", 8443, e, extra="        connect_timeout_ms: 5\n")),
                 "connect_timeout_ms differs", "different listener options on one address")
    check_errors(config(proxy_entry("a", 8443, e, ["a.example.com"], tls=(key, crt))),
                 "cannot go with tls", "sni_passthrough together with tls:")
    check_errors(config(proxy_entry("a", 8443, e, ["a.example.com"]),
                        proxy_entry("b", 8443, e, passthrough=False)),
                 "needs tls: or sni_passthrough", "a plain entry on a shared address")
    check_errors(config(proxy_entry("a", 8443, e, ["bad name!"])), "not a host name", "a bad server name")


def test_reload_keeps_socket():
    a, b, dflt = backend("a", ["a.example.com"]), backend("b", ["b.example.com"]), backend("d", ["a.example.com", "b.example.com"])
    port = free_port()
    top = "park_idle_ms: 100\n"
    d = daemon(config(proxy_entry("a", port, a.addr, ["a.example.com"]), proxy_entry("dflt", port, dflt.addr), top=top))
    held = client_ctx().wrap_socket(connect(port), server_hostname="a.example.com")
    held.sendall(b"1")
    t.eq(read_line(held), b"a\n", "a connection routed to a is open")
    t.eq(hello(port, "b.example.com")[0], "d", "b.example.com goes to the default before the reload")
    t.ok(d.reload(config(proxy_entry("a", port, a.addr, ["a.example.com"]), proxy_entry("dflt", port, dflt.addr),
                         proxy_entry("b", port, b.addr, ["b.example.com"]), top=top)),
         "a reload adds proxy b to the shared address")
    t.eq(hello(port, "b.example.com"), ("b", "backend-b"), "... b.example.com now reaches b")
    held.sendall(b"after-add\n")
    t.eq(read_line(held), b"1after-add\n", "... and the open connection carries on")
    t.ok(d.reload(config(proxy_entry("dflt", port, dflt.addr), proxy_entry("b", port, b.addr, ["b.example.com"]),
                         top=top)), "a reload removes proxy a from the shared address")
    t.eq(hello(port, "a.example.com")[0], "d", "... a.example.com now goes to the default")
    held.sendall(b"after-remove\n")
    t.eq(read_line(held), b"after-remove\n", "... and a's open connection (parked meanwhile) carries on")
    held.close()
    t.eq(len(re.findall(r"listening on 127\.0\.0\.1:%d " % port, d.log())), 3,
         "the socket was bound once: one 'listening' line per proxy, no 'no longer listening'")
    t.ok("no longer listening on 127.0.0.1:%d" % port not in d.log(), "... the port never closed")


t.run(
    test_routing,
    test_no_default_closes,
    test_terminate_and_passthrough,
    test_bulk_passthrough,
    test_one_byte_segments,
    test_plaintext_and_slow,
    test_real_clients,
    test_config_errors,
    test_reload_keeps_socket,
)
