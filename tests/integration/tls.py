"""TLS: the original README example end to end (TLS in, verified TLS out,
through namerd), origination that refuses bad endpoints, SNI, ALPN, mutual
TLS both ways, key types, handshake failures and key rotation by SIGHUP.
Certificates come from tests/lib/tlsgen.py (openssl); peers are Python's
ssl module and gnutls-cli."""

import hashlib
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from fake_namerd import FakeNamerd
from ltcptest import *
from tlsgen import CA

t = Tap()
MiB = 1 << 20
WORK = tempfile.mkdtemp(prefix="ltcp-tls-")
CA1 = CA(os.path.join(WORK, "ca1"), "Test CA One")
CA2 = CA(os.path.join(WORK, "ca2"), "Test CA Two")


daemon = t.daemon


# ---------------------------------------------------------------- TLS peers


def server_context(key, cert, client_ca=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def client_context(ca=None, cert=None, key=None, alpn=None):
    ctx = ssl.create_default_context(cafile=ca or CA1.cert)
    if cert:
        ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class TlsBackend(Backend):
    """A TLS endpoint: sends `send` bytes and reads `expect` bytes at once
    (mode "exchange"), or says its name and echoes (mode "id")."""

    def __init__(self, ctx, name="tls-backend", send=b"", expect=0, mode="id"):
        self.ctx, self.payload, self.expect, self.mode = ctx, send, expect, mode
        self.received = []
        self.peers = []
        super().__init__(name=name)

    def handle(self, conn):
        try:
            s = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self.lock:
            self.peers.append(s.getpeercert())
        if self.mode == "exchange":
            got = pump(s, self.payload, self.expect)
            with self.lock:
                self.received.append(hashlib.sha256(got).hexdigest())
            return
        s.sendall(self.name.encode() + b"\n")
        echo_until_eof(s)


def tls_connect(port, sni, ctx=None, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return (ctx or client_context()).wrap_socket(s, server_hostname=sni)


def peer_cn(s):
    for rdn in s.getpeercert().get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def gnutls_cli(port, data, sni="www.google.com", ca=None, extra=()):
    p = subprocess.run(
        ["gnutls-cli", "--x509cafile=%s" % (ca or CA1.cert), "-p", str(port), "127.0.0.1",
         "--sni-hostname=%s" % sni, "--verify-hostname=%s" % sni, "--logfile=/dev/null", *extra],
        input=data, capture_output=True, timeout=30)
    return p.returncode, p.stdout


# ---------------------------------------------------------------- scenarios

README = """proxies:
  - servers:
      - addr: 127.0.0.1:7474
      - addr: 0.0.0.0:7575
        tls:
          private_key_path: private.pem
          cert_paths: [cert.pem, ../eg-ca/ca/intermediate/certs/ca-chain.cert.pem]
    namerd:
      addr: 127.0.0.1:4180
      path: /svc/google
    client:
      tls:
        name: "www.google.com"
        trust_cert_paths: [../eg-ca/ca/intermediate/certs/ca-chain.cert.pem, /usr/local/etc/openssl/cert.pem]
"""


def readme_tree():
    """conf/ with private.pem + cert.pem, eg-ca/.../ca-chain.cert.pem: the README's layout."""
    top = tempfile.mkdtemp(prefix="ltcp-readme-", dir=WORK)
    conf = os.path.join(top, "conf")
    chain_dir = os.path.join(top, "eg-ca", "ca", "intermediate", "certs")
    os.makedirs(conf)
    os.makedirs(chain_dir)
    shutil.copy(CA1.cert, os.path.join(chain_dir, "ca-chain.cert.pem"))
    key, crt = CA1.issue("proxy-server", ["www.google.com"], out=conf)
    os.rename(key, os.path.join(conf, "private.pem"))
    os.rename(crt, os.path.join(conf, "cert.pem"))
    return conf


def test_readme_end_to_end():
    up, down = random_bytes(16 * MiB, seed=11), random_bytes(16 * MiB, seed=12)
    ekey, ecrt = CA1.issue("google-endpoint", ["www.google.com"])
    tls_end = TlsBackend(server_context(ekey, ecrt), name="tls-end", send=down, expect=len(up), mode="exchange")
    t.cleanup(tls_end.close)
    n = FakeNamerd().start()
    t.cleanup(n.stop)
    n.set_bound("default", "/svc/google", [("127.0.0.1", tls_end.port)])
    plain_port, tls_port = free_port(), free_port()
    cfg = README.replace("7474", str(plain_port)).replace("7575", str(tls_port)).replace("4180", str(n.port))
    d = Daemon(cfg, tmpdir=readme_tree()).wait_ready()
    t.cleanup(d.stop)
    t.ok(d.wait_log(r"trust file /usr/local/etc/openssl/cert.pem: No such file or directory \(skipped\)"),
         "README example: the missing macOS trust path is a warning")

    s = tls_connect(tls_port, "www.google.com")
    got = pump(s, up, len(down), timeout=120)
    s.close()
    t.ok(sha256(got) == sha256(down), "README example, Python ssl client: 16 MiB endpoint->client intact over TLS both hops")
    wait_until(lambda: tls_end.received, 10)
    t.ok(tls_end.received[:1] == [sha256(up)], "README example: 16 MiB client->endpoint intact over TLS both hops")

    data = random_bytes(1 * MiB, seed=13)
    echo_key, echo_crt = CA1.issue("google-echo", ["www.google.com"])
    echo = TlsBackend(server_context(echo_key, echo_crt), name="echo-id")
    t.cleanup(echo.close)
    n.set_bound("default", "/svc/google", [("127.0.0.1", echo.port)])
    wait_until(lambda: "echo-id" in _who_tls(tls_port), 5)
    rc, out = gnutls_cli(tls_port, data)
    t.ok(rc == 0 and out == b"echo-id\n" + data, "README example, gnutls-cli client: 1 MiB echoed intact (close_notify half-closes)")
    s = connect(plain_port)
    s.sendall(b"plain\n")
    t.eq(read_line(s), b"echo-id\n", "README example: the plain listener originates TLS too")
    s.close()
    t.ok(re.search(r"tls=TLS1\.[23] sni=www\.google\.com", d.log()), "the summary line names the TLS version and SNI")


def _who_tls(port):
    try:
        s = tls_connect(port, "www.google.com", timeout=2)
        line = read_line(s, 2)
        s.close()
        return line.decode(errors="replace")
    except OSError:
        return ""


def test_origination_refuses():
    wrong_key, wrong_crt = CA1.issue("wrong-name", ["other.example.com"])
    alien_key, alien_crt = CA2.issue("alien", ["www.google.com"])
    for label, key, crt, why in [("a wrong name", wrong_key, wrong_crt, "certificate verification failed"),
                                 ("an untrusted CA", alien_key, alien_crt, "certificate verification failed")]:
        bad = TlsBackend(server_context(key, crt), name="should-not-see-me")
        t.cleanup(bad.close)
        d = daemon(static_config(["127.0.0.1:0"], [bad.addr], extra_proxy="""client:
  tls:
    name: www.google.com
    trust_cert_paths: [%s]""" % CA1.cert))
        s = connect(d.port())
        try:
            data = s.recv(100)
        except OSError:
            data = b""
        s.close()
        t.eq(data, b"", "origination refuses an endpoint with %s: no bytes reach the client" % label)
        t.ok(d.wait_log(why), "... and logs '%s'" % why)
        line = (d.wait_log(r"conn 1 .* reason=.*") or [""])[0]
        t.ok("endpoint=%s " % bad.addr in line,
             "... the connection's line names the endpoint that was contacted")
        if label == "a wrong name":
            t.ok(line.rstrip().endswith("The name in the certificate does not match the expected."),
                 "... and keeps GnuTLS's whole message (...%s)" % line[-60:])


def test_sni_alpn_and_key_types():
    dkey, dcrt = CA1.issue("default-id", ["default.example.com"], kind="rsa")
    akey, acrt = CA1.issue("a-id", ["a.example.com"], kind="ecdsa")
    wkey, wcrt = CA1.issue("wild-id", ["*.b.example.com"], kind="ed25519")
    echo = backend_plain()
    d = daemon(static_config(["127.0.0.1:0"], [echo.addr], extra_proxy="") .replace(
        "      - addr: '127.0.0.1:0'\n",
        """      - addr: '127.0.0.1:0'
        tls:
          private_key_path: %s
          cert_paths: [%s]
          identities:
            - {server_name: a.example.com, private_key_path: %s, cert_paths: [%s]}
            - {server_name: "*.b.example.com", private_key_path: %s, cert_paths: [%s]}
          alpn_protocols: [h2, http/1.1]
""" % (dkey, dcrt, akey, acrt, wkey, wcrt)))
    port = d.port()
    for sni, cn in [("a.example.com", "a.example.com"), ("x.b.example.com", "*.b.example.com"),
                    ("A.EXAMPLE.COM", "a.example.com"), ("default.example.com", "default.example.com")]:
        try:
            s = tls_connect(port, sni)
            got = peer_cn(s)
            s.close()
        except (ssl.SSLError, OSError) as e:
            got = repr(e)
        t.eq(got, cn, "SNI %s gets the certificate for %s" % (sni, cn))
    ctx = ssl.create_default_context(cafile=CA1.cert)
    ctx.check_hostname = False
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="unknown.example.org")
    t.eq(peer_cn(s), "default.example.com", "an unknown SNI name gets the default identity")
    s.close()
    s = tls_connect(port, "a.example.com", ctx=client_context(alpn=["h2", "http/1.1"]))
    t.eq(s.selected_alpn_protocol(), "h2", "ALPN negotiates h2 when the client offers it")
    s.close()
    s = tls_connect(port, "a.example.com", ctx=client_context(alpn=["http/1.1"]))
    t.eq(s.selected_alpn_protocol(), "http/1.1", "ALPN falls back to http/1.1")
    s.close()
    for sni, kind in [("default.example.com", "RSA 2048"), ("a.example.com", "ECDSA P-256"), ("z.b.example.com", "Ed25519")]:
        s = tls_connect(port, sni)
        s.sendall(b"ping\n")
        t.eq(read_line(s), b"ping\n", "a %s identity loads and serves" % kind)
        s.close()
    t.ok(re.search(r"alpn=h2", d.log()), "the negotiated ALPN protocol is logged")


def backend_plain():
    b = EchoBackend()
    t.cleanup(b.close)
    return b


def tls_server_config(endpoint, key, crt, extra_tls="", top=""):
    return static_config(["127.0.0.1:0"], [endpoint], top=top).replace(
        "      - addr: '127.0.0.1:0'\n",
        "      - addr: '127.0.0.1:0'\n        tls:\n          private_key_path: %s\n          cert_paths: [%s]\n%s"
        % (key, crt, "".join("          %s\n" % l for l in extra_tls.splitlines())))


def test_pkcs1_and_key_mode():
    key, crt = CA1.issue("pkcs1", ["pkcs1.example.com"], kind="rsa", pkcs1=True)
    with open(key) as f:
        t.ok("BEGIN RSA PRIVATE KEY" in f.read(), "a PKCS#1 RSA key file is made")
    os.chmod(key, 0o644)
    d = daemon(tls_server_config(backend_plain().addr, key, crt))
    s = tls_connect(d.port(), "pkcs1.example.com")
    s.sendall(b"x\n")
    t.eq(read_line(s), b"x\n", "a PKCS#1 RSA key loads and serves")
    s.close()
    rc, out, err = run_cli("-n", d.path)
    t.ok(rc == 0 and "is readable by others (mode 644)" in err, "a key file readable by others is a warning")


def test_mutual_tls():
    key, crt = CA1.issue("mtls-server", ["mtls.example.com"])
    ckey, ccrt = CA1.issue("client-one", ["client-one"], client=True, cn="client-one")
    xkey, xcrt = CA2.issue("client-alien", ["client-alien"], client=True)
    d = daemon(tls_server_config(backend_plain().addr, key, crt, "client_ca_paths: [%s]" % CA1.cert))
    port = d.port()

    def attempt(ctx):
        try:
            s = tls_connect(port, "mtls.example.com", ctx=ctx)
            s.sendall(b"hello\n")
            line = read_line(s, 3)
            s.close()
            return line
        except (ssl.SSLError, OSError):
            return b""

    t.eq(attempt(client_context()), b"", "mutual TLS: a client without a certificate is rejected")
    t.eq(attempt(client_context(cert=xcrt, key=xkey)), b"", "mutual TLS: a certificate from another CA is rejected")
    t.eq(attempt(client_context(cert=ccrt, key=ckey)), b"hello\n", "mutual TLS: a good client certificate passes")
    t.ok(d.wait_log(r'peer="CN=client-one"'), "the verified peer name is logged")
    t.ok(d.wait_log("client TLS handshake failed"), "rejected handshakes are logged")


def test_client_certificate_to_endpoint():
    skey, scrt = CA1.issue("strict-endpoint", ["strict.internal"])
    ckey, ccrt = CA1.issue("proxy-client", ["proxy-client"], client=True)
    strict = TlsBackend(server_context(skey, scrt, client_ca=CA1.cert), name="strict")
    t.cleanup(strict.close)
    def config(client_cert):
        return static_config(["127.0.0.1:0"], [strict.addr], extra_proxy="""client:
  tls:
    name: strict.internal
    trust_cert_paths: [%s]
%s""" % (CA1.cert, client_cert))

    d = daemon(config("    cert_paths: [%s]\n    private_key_path: %s" % (ccrt, ckey)))
    s = connect(d.port())
    t.eq(read_line(s), b"strict\n", "a client certificate is presented to an endpoint that requires one")
    s.close()
    t.ok(strict.peers and strict.peers[-1] and "proxy-client" in str(strict.peers[-1]), "... the endpoint saw the proxy's certificate")
    d2 = daemon(config(""))
    s = connect(d2.port())
    t.eq(read_line(s, 3), b"", "without a client certificate that endpoint refuses, and the client gets nothing")
    s.close()


def test_handshake_failures():
    key, crt = CA1.issue("hs-server", ["hs.example.com"])
    d = daemon(tls_server_config(backend_plain().addr, key, crt, top="relay_threads: 4"))
    port = d.port()
    s = connect(port)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")  # plaintext to a TLS port
    try:
        data = recv_all(s, 5)
    except ConnectionResetError:
        data = b""
    t.eq(data, b"", "plaintext sent to a TLS listener gets the connection closed")
    s.close()
    for _ in range(4):  # vanish mid-handshake: send half a ClientHello and close
        s = connect(port)
        s.sendall(bytes.fromhex("160301020001000200"))
        s.close()
    s = tls_connect(port, "hs.example.com")
    s.sendall(b"still\n")
    t.eq(read_line(s), b"still\n", "after failed and abandoned handshakes the listener still serves")
    s.close()
    t.ok(d.wait_log("client TLS handshake failed", count=5), "each failed handshake is logged")


def test_slow_handshake_times_out():
    key, crt = CA1.issue("slow-server", ["slow.example.com"])
    cfg = tls_server_config(backend_plain().addr, key, crt).replace(
        "        tls:\n", "        connect_timeout_ms: 700\n        tls:\n")
    d = daemon(cfg)
    s = connect(d.port())
    start = time.monotonic()
    s.settimeout(5)
    try:
        data = s.recv(10)
    except OSError:
        data = b""
    secs = time.monotonic() - start
    s.close()
    t.ok(data == b"" and 0.5 < secs < 3.0, "a client silent in the handshake is closed after connect_timeout_ms (%.2f s)" % secs)
    t.ok(d.wait_log("handshake timed out"), "... logged as a handshake timeout")


def test_rotation():
    rot = os.path.join(WORK, "rot")
    os.makedirs(rot)
    k1, c1 = CA1.issue("rot-v1", ["rot.example.com"], out=rot, cn="rot-v1")
    key, crt = os.path.join(rot, "server.key"), os.path.join(rot, "server.pem")
    shutil.copy(k1, key)
    shutil.copy(c1, crt)
    os.chmod(key, 0o600)
    d = daemon(tls_server_config(backend_plain().addr, key, crt))
    port = d.port()
    old = tls_connect(port, "rot.example.com")
    t.eq(peer_cn(old), "rot-v1", "before rotation the first certificate is served")
    k2, c2 = CA1.issue("rot-v2", ["rot.example.com"], out=rot, cn="rot-v2")
    shutil.copy(k2, key)
    shutil.copy(c2, crt)
    t.ok(d.reload(), "SIGHUP reloads the certificate files")
    new = tls_connect(port, "rot.example.com")
    t.eq(peer_cn(new), "rot-v2", "a new handshake sees the new certificate")
    payload = random_bytes(4 * MiB, seed=21)
    got = pump(old, payload, len(payload))
    t.ok(got == payload, "a connection opened before the rotation keeps transferring (4 MiB echoed)")
    old.close()
    new.close()
    with open(key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    d.reload(expect=None)
    t.ok(d.wait_log(r"linkerd-tcp\.yml:\d+:\d+: tls: private key \S*server\.key: ") and
         d.wait_log("keeping the running one"), "a broken new key is refused with FILE:LINE:COL and the reason")
    s = tls_connect(port, "rot.example.com")
    t.eq(peer_cn(s), "rot-v2", "... and the previous credentials stay in use")
    s.close()


t.run(
    test_readme_end_to_end,
    test_origination_refuses,
    test_sni_alpn_and_key_types,
    test_pkcs1_and_key_mode,
    test_mutual_tls,
    test_client_certificate_to_endpoint,
    test_handshake_failures,
    test_slow_handshake_times_out,
    test_rotation,
)
