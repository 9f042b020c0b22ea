"""The ClientHello reader on what real clients send today: gnutls-cli, openssl s_client,
curl, Python's ssl module and headless chromium each connect to a loopback port with an
SNI name and ALPN protocols (tests/lib/hello_capture.py), and the reader (through
`test-clienthello --dump`) must find exactly that name and those protocols in the bytes,
whole and fed in pieces.  A client is skipped only when its program is not installed."""

import os
import shutil
import subprocess
import tempfile

import hello_capture
from ltcptest import *

t = Tap()
DUMP = os.path.join(os.environ.get("LTCP_BUILDDIR", "."), "tests", "unit", "test-clienthello")


def dump(path):
    """(status, sni, alpn, alpn_count, why) as the reader sees the file."""
    p = subprocess.run([DUMP, "--dump", path], capture_output=True, text=True, timeout=30)
    fields = p.stdout.rstrip("\n").split("\t")
    return tuple(fields[1:]) if p.returncode == 0 and len(fields) == 6 else (p.stdout, p.stderr)


def check(client, tmp):
    try:
        data = hello_capture.capture(client, tmp)
    except OSError as e:  # socket.timeout included: the client never connected
        t.ok(False, "%s: sends a ClientHello to a loopback port (%r)" % (client.name, e))
        return
    path = os.path.join(tmp, client.name + ".bin")
    with open(path, "wb") as f:
        f.write(data)
    alpn = hello_capture.expected_alpn(client)
    want = ("done", client.want_sni, alpn, str(len(alpn.split(","))), "")
    t.eq(dump(path), want, "%s: SNI %s and ALPN %s read from its %d-byte ClientHello"
         % (client.name, client.want_sni, alpn, len(data)))
    # The same bytes as they might arrive: every prefix asks for more.
    short = os.path.join(tmp, client.name + ".short")
    statuses = set()
    for n in sorted({1, 5, 9, len(data) // 3, len(data) // 2, len(data) - 1}):
        with open(short, "wb") as f:
            f.write(data[:n])
        statuses.add(dump(short)[0])
    t.eq(statuses, {"need more"}, "%s: its first bytes, up to all but one, need more" % client.name)


def main():
    tmp = tempfile.mkdtemp(prefix="ltcp-hello-")
    t.cleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
    t.ok(os.access(DUMP, os.X_OK), "the reader's test program is built (%s)" % DUMP)
    for c in hello_capture.CLIENTS:
        if c.missing():
            t.ok(True, "%s: SNI and ALPN read from its ClientHello # SKIP %s is not installed"
                 % (c.name, c.binary))
            continue
        check(c, tmp)
    # Not TLS at all: a plaintext HTTP client.
    plain = os.path.join(tmp, "http.txt")
    with open(plain, "wb") as f:
        f.write(b"GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n")
    t.eq(dump(plain)[0], "not TLS", "a plaintext HTTP request is not TLS")


t.run(main)
