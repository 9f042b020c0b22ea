"""The first bytes real TLS clients send: their ClientHello, captured on loopback.

capture(client, tmpdir) listens on an ephemeral 127.0.0.1 port, runs one real client
(gnutls-cli, openssl s_client, curl, Python's ssl module, headless chromium) against it
with an SNI name and ALPN protocols, and returns the raw bytes of the TLS records that
carry the client's ClientHello; then it closes the connection, so the client gives up.
Nothing leaves loopback.

    python3 tests/lib/hello_capture.py DIR     # writes DIR/<client>.bin for each client

is how tests/fuzz/corpus/clienthello/ was made; tests/integration/clienthello.py
captures afresh and checks what the parser reads in them.
"""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time


class Client:
    """name; the binary it needs (None: this Python); the SNI name given and the one
    the parser must read (lowercase, no trailing dot); the ALPN text expected."""

    def __init__(self, name, binary, sni, want_sni, alpn, argv):
        self.name, self.binary, self.sni, self.want_sni = name, binary, sni, want_sni
        self.alpn, self.argv = alpn, argv

    def missing(self):
        return self.binary and not shutil.which(self.binary) and self.binary


def _curl_alpn():
    try:
        out = subprocess.run(["curl", "-V"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "http/1.1"
    return "h2,http/1.1" if "HTTP2" in out else "http/1.1"


def _chromium_argv(port, sni, tmpdir):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage"]
    return ["chromium", *flags, "--user-data-dir=" + os.path.join(tmpdir, "chromium"),
            "--host-resolver-rules=MAP * 127.0.0.1:%d" % port, "--dump-dom",
            "https://%s:%d/" % (sni, port)]


CLIENTS = [
    Client("gnutls-cli", "gnutls-cli", "gnutls.example.test", "gnutls.example.test", "h2,http/1.1",
           lambda port, sni, tmp: ["gnutls-cli", "--insecure", "--sni-hostname=" + sni, "--alpn=h2",
                                   "--alpn=http/1.1", "-p", str(port), "127.0.0.1"]),
    Client("openssl", "openssl", "OpenSSL.Example.Test", "openssl.example.test", "h2,http/1.1",
           lambda port, sni, tmp: ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                                   "-servername", sni, "-alpn", "h2,http/1.1"]),
    Client("curl", "curl", "curl.example.test", "curl.example.test", None,
           lambda port, sni, tmp: ["curl", "-k", "-s", "-o", "/dev/null", "--max-time", "20",
                                   "--resolve", "%s:%d:127.0.0.1" % (sni, port),
                                   "https://%s:%d/" % (sni, port)]),
    Client("python-ssl", None, "python.example.test", "python.example.test", "h2,http/1.1,x-test",
           None),
    Client("chromium", "chromium", "chromium.example.test", "chromium.example.test", "h2,http/1.1",
           _chromium_argv),
]


def expected_alpn(client):
    return client.alpn if client.alpn is not None else _curl_alpn()


def read_hello(conn, timeout):
    """The bytes of the handshake records up to the end of the first handshake message
    (what the client sent first), or what came before the deadline."""
    data = b""
    conn.settimeout(0.5)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        data += chunk
        if _hello_complete(data):
            break
    return data


def _hello_complete(data):
    body, pos = b"", 0
    while pos + 5 <= len(data) and data[pos] == 0x16:
        n = int.from_bytes(data[pos + 3:pos + 5], "big")
        if pos + 5 + n > len(data):
            return False
        body += data[pos + 5:pos + 5 + n]
        pos += 5 + n
        if len(body) >= 4 and len(body) >= 4 + int.from_bytes(body[1:4], "big"):
            return True
    return pos < len(data) and data[pos] != 0x16  # not TLS: no point waiting


def _python_client(port, sni, alpn):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(alpn.split(","))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            with ctx.wrap_socket(s, server_hostname=sni):
                pass
    except (OSError, ssl.SSLError):
        pass  # the capture server closes without answering


def capture(client, tmpdir, timeout=60):
    """The ClientHello bytes that client sent to a loopback port."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(timeout)
    port = srv.getsockname()[1]
    proc = thread = None
    log = open(os.path.join(tmpdir, client.name + ".log"), "wb")
    try:
        if client.argv is None:
            thread = threading.Thread(target=_python_client,
                                      args=(port, client.sni, expected_alpn(client)), daemon=True)
            thread.start()
        else:
            proc = subprocess.Popen(client.argv(port, client.sni, tmpdir), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, start_new_session=True)
        # chromium's own background requests come here too (--host-resolver-rules maps
        # every name): the client's ClientHello is the one that carries its name.
        end = time.monotonic() + timeout
        while True:
            srv.settimeout(max(0.1, end - time.monotonic()))
            conn, _ = srv.accept()
            with conn:
                data = read_hello(conn, max(0.1, end - time.monotonic()))
            if data[:1] == b"\x16" and client.want_sni.encode() in data.lower():
                return data
    finally:
        srv.close()
        log.close()
        if proc:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)  # its own session: chromium's helpers too
                proc.wait()
        if thread:
            thread.join(timeout=15)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: %s DIR" % argv[0])
    os.makedirs(argv[1], exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ltcp-hello-") as tmp:
        for c in CLIENTS:
            if c.missing():
                print("%s: skipped, no %s" % (c.name, c.binary))
                continue
            data = capture(c, tmp)
            with open(os.path.join(argv[1], c.name + ".bin"), "wb") as f:
                f.write(data)
            print("%s: %d bytes, SNI %s, ALPN %s" % (c.name, len(data), c.want_sni, expected_alpn(c)))


if __name__ == "__main__":
    main(sys.argv)
