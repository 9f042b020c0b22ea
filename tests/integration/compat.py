"""linkerd-tcp 0.1.x configurations: the full example of the 0.1.1 schema
(tests/unit/configs/good/compat-0.1-example.yml, reference/linkerd-tcp.md
§3.10) with generated certificates, loopback addresses, ephemeral ports and
the fake namerd, run end to end; then a static client whose entries merge by
real path prefix (the original's bug), and polling with neg."""

import os
import re
import socket
import ssl
import tempfile
import time

from ltcptest import *
from tlsgen import CA

t = Tap()
WORK = tempfile.mkdtemp(prefix="ltcp-compat-")
ETC = os.path.join(WORK, "l5d-tcp")
CA1 = CA(os.path.join(WORK, "ca"), "Compat CA")


def daemon(text):
    """The configuration is written as given: the harness's additions (admin.addr,
    relay_threads) are keys of this version's schema, unknown in 0.1.x."""
    return t.daemon(text, verbatim=True, tmpdir=tempfile.mkdtemp(prefix="run-", dir=WORK))


namerd = t.namerd


def issue(name, dns, key_name, cert_name, **kw):
    """A leaf signed by CA1, stored under the example's file names."""
    key, crt = CA1.issue(name, dns=dns, out=ETC, **kw)
    os.replace(key, os.path.join(ETC, key_name))
    os.replace(crt, os.path.join(ETC, cert_name))


class TlsIdBackend(Backend):
    """Terminates TLS with its own certificate, sends "<name>\\n", then echoes."""

    def __init__(self, name, dns):
        issue(name, [dns], name + ".key", name + ".pem")
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(ETC, name + ".pem"), os.path.join(ETC, name + ".key"))
        super().__init__(name=name)

    def handle(self, conn):
        conn.settimeout(10)
        s = self.ctx.wrap_socket(conn, server_side=True)
        s.sendall(self.name.encode() + b"\n")
        echo_until_eof(s)


class SilentBackend(Backend):
    """Accepts and never says anything (a TLS handshake with it never ends)."""

    def handle(self, conn):
        while conn.recv(65536):
            pass


def endpoint(b):
    return [("127.0.0.1", b.port, {})]


# ---------------------------------------------------------------- the example

os.makedirs(ETC, exist_ok=True)


def example_files():
    """The certificates and keys the example names, under its file names."""
    issue("default", ["default.example.com"], "default.key.pem", "default.crt.pem", kind="rsa", pkcs1=True)
    issue("web", ["web.example.com"], "web.key.pem", "web.crt.pem", kind="rsa", pkcs1=True)
    with open(CA1.cert) as src, open(os.path.join(ETC, "ca-chain.pem"), "w") as dst:
        dst.write(src.read())
    with open(CA1.cert) as src, open(os.path.join(ETC, "backend-ca.pem"), "w") as dst:
        dst.write(src.read())


def example_config(n):
    """The example with this run's paths, loopback addresses, ephemeral ports
    and the fake namerd; nothing else changes."""
    with open(os.path.join(SRCDIR, "tests/unit/configs/good/compat-0.1-example.yml")) as f:
        text = f.read()
    text = text.replace("/etc/l5d-tcp/", ETC + "/")
    text = text.replace("/etc/ssl/certs/ca-certificates.crt", CA1.cert)
    text = text.replace("http://127.0.0.1:4180", n.url).replace("http://namerd:4180", n.url)
    text = text.replace("ip: 0.0.0.0", "ip: 127.0.0.1")
    text = re.sub(r"\bport: \d+", "port: 0", text)
    return text


def tls_client(port, sni=None, alpn=None):
    ctx = ssl.create_default_context(cafile=CA1.cert)
    if sni is None:
        ctx.check_hostname = False
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(connect(port), server_hostname=sni)


def san(s):
    return [v for k, v in s.getpeercert().get("subjectAltName", ()) if k == "DNS"]


def test_example():
    example_files()
    n = namerd()
    redis = t.backend(TlsIdBackend, "redis", "backend.internal.example.com")
    web = t.backend(TlsIdBackend, "webapp", "backend.internal.example.com")
    partner = t.backend(TlsIdBackend, "partner", "a.partner.example")
    n.set_bound("default", "/svc/redis", endpoint(redis))
    n.set_bound("default", "/svc/web", endpoint(web))
    n.set_bound("partners", "/svc/partner-a", endpoint(partner))
    text = example_config(n)
    path = os.path.join(WORK, "linkerd-tcp.yml")
    with open(path, "w") as f:
        f.write(text)

    rc, out, err = run_cli("-n", path)
    t.ok(rc == 0 and "configuration OK" in out, "-n accepts the 0.1.1 example (rc %d)" % rc) or t.diag(err)
    ignored = re.findall(r"warning: \S+: (\w+) is ignored", err)
    t.eq(sorted(ignored), ["maxWaiters", "metricsIntervalSecs", "minConnections", "minConnections"],
         "-n warns about the keys it ignores")

    d = daemon(text)
    ports = d.listening()
    t.eq(sorted(ports), ["edge:/svc/redis", "edge:/svc/web", "partners"],
         "one proxy per dstName of edge, one for partners")
    if sorted(ports) != ["edge:/svc/redis", "edge:/svc/web", "partners"]:
        t.diag(d.log())
        return

    s = connect(ports["edge:/svc/redis"][0])
    t.eq(read_line(s), b"redis\n", "plain listener: proxied to /svc/redis's endpoint over verified TLS")
    payload = random_bytes(1 << 20, seed=3)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    t.ok(recv_all(s) == payload, "plain listener: 1 MiB both ways")
    s.close()

    tls_port = ports["edge:/svc/web"][0]
    s = tls_client(tls_port)
    t.eq(san(s), ["default.example.com"], "TLS listener without SNI: defaultIdentity (an RSA PKCS#1 key)")
    s.close()
    s = tls_client(tls_port, sni="web.example.com", alpn=["h2"])
    t.ok(san(s) == ["web.example.com"] and s.selected_alpn_protocol() == "h2",
         "TLS listener with SNI web.example.com: its identity, and ALPN from alpnProtocols")
    t.eq(read_line(s), b"webapp\n", "TLS listener: proxied to /svc/web's endpoint")
    s.close()

    s = connect(ports["partners"][0])
    t.eq(read_line(s), b"partner\n",
         "static client: the /svc/partner-a entry's tls (dnsName a.partner.example) applies")
    s.close()

    lines = n.request_lines()
    for ns, enc in (("default", "%2Fsvc%2Fredis"), ("default", "%2Fsvc%2Fweb"), ("partners", "%2Fsvc%2Fpartner-a")):
        want = "GET /api/1/resolve/%s?path=%s HTTP/1.1" % (ns, enc)
        t.ok(want in lines, "namerd is polled (no watch): %s" % want)


# ---------------------------------------------------------------- prefixes

STATIC = """routers:
  - label: partners
    interpreter: {kind: io.l5d.namerd.http, baseUrl: '%s', namespace: partners, periodSecs: 30}
    servers:
      - {port: 0, dstName: /svc/partner-a}
    client:
      kind: io.l5d.static
      configs:
        - prefix: /svc                   # a real prefix: the original never applied it
          connectTimeoutMs: 400
        - prefix: /svc/partner-a/x       # longer than the name: the original crashed
          connectTimeoutMs: 5000
        - prefix: /svc/partner-a
          tls: {dnsName: a.partner.example, trustCerts: ['%s']}
admin: {port: 0}
"""


def test_static_prefixes():
    """The endpoint accepts TCP but never answers the TLS handshake: the
    connection closes after the /svc entry's 400 ms, not the default 1 s nor
    the /svc/partner-a/x entry's 5 s, and only because /svc/partner-a's tls
    made the proxy wait for a handshake."""
    n = namerd()
    silent = t.backend(SilentBackend, name="silent")
    n.set_bound("partners", "/svc/partner-a", endpoint(silent))
    d = daemon(STATIC % (n.url, CA1.cert))
    closed, secs = closed_promptly(d.port("partners"), within=3.0)
    t.ok(closed and 0.3 <= secs < 0.9,
         "merged /svc (connectTimeoutMs 400) and /svc/partner-a (tls): closed after %.2f s" % secs)
    t.ok(d.wait_log(r"connect to 127\.0\.0\.1:%d failed" % silent.port), "the failed attempt is logged")
    t.ok(d.alive(), "a prefix longer than the name neither applies nor crashes")


# ---------------------------------------------------------------- polling

POLL = """routers:
  - label: poll
    interpreter: {kind: io.l5d.namerd.http, baseUrl: '%s/', namespace: default, periodSecs: 1}
    servers: [{port: 0, dstName: /svc/poll}]
admin: {port: 0}
"""


def who_is(port):
    try:
        c = connect(port)
        line = read_line(c, 1.0)
        c.close()
        return line
    except OSError:
        return None


def test_polling():
    n = namerd()
    a, b = t.backend(IdBackend, name="a"), t.backend(IdBackend, name="b")
    n.set_bound("default", "/svc/poll", endpoint(a))
    d = daemon(POLL % n.url)
    port = d.port("poll")
    s = connect(port)
    t.eq(read_line(s), b"a\n", "periodSecs 1: the first answer is used")
    s.close()
    n.set_bound("default", "/svc/poll", endpoint(b))

    t.ok(wait_until(lambda: who_is(port) == b"b\n", 4.0, 0.05), "the next poll's endpoints are used")
    n.set_neg("default", "/svc/poll")
    t.ok(d.wait_log(r"does not exist \(neg\)", timeout=4.0), "neg is applied, not kept as an error")
    closed, secs = closed_promptly(port, 3.0)
    t.ok(closed and secs < 0.5, "neg: new connections are closed at once (%.3f s), not held" % secs)
    t.ok(all(l.startswith("GET /api/1/resolve/default?path=%2Fsvc%2Fpoll HTTP/1.1") for l in n.request_lines()),
         "a trailing / on baseUrl does not double")
    n.set_bound("default", "/svc/poll", endpoint(a))
    t.ok(d.reload((POLL % n.url).replace("periodSecs: 1", "periodSecs: 2")),
         "SIGHUP reloads a 0.1.x configuration")
    t.ok(wait_until(lambda: who_is(port) == b"a\n", 6.0, 0.05), "after the reload, namerd's answer is used")


t.run(
    test_example,
    test_static_prefixes,
    test_polling,
)
