"""A namerd answer of 100,000 endpoints (SPEC §14): applied and re-applied
unchanged while a client keeps connecting through the proxy, none of whose
connections may stall meanwhile; then /endpoints and /metrics at that size."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

from ltcptest import *

t = Tap()
NS, PATH = "default", "/svc/big"
N = 100000
STALL = 0.1  # seconds a connection may take beyond the slowest one before the large set


def answer(reals, closed_port, n, rev=0):
    """A bound answer of n addresses as one line: the real backends, heavy, and the
    rest 127.1.0.0 upwards on a closed port, light, so that a connection nearly always
    lands on a real backend and, when both of its draws miss, is refused at once and
    retried.  rev goes in the top-level meta, which changes the text only."""
    addrs = ['{"ip":"127.0.0.1","port":%d,"meta":{"endpoint_addr_weight":10000.0}}' % port
             for port in reals]
    for i in range(n - len(reals)):
        addrs.append('{"ip":"127.%d.%d.%d","port":%d,"meta":{"endpoint_addr_weight":0.001}}'
                     % (1 + (i >> 16), (i >> 8) & 255, i & 255, closed_port))
    return '{"type":"bound","addrs":[%s],"meta":{"rev":%d}}' % (",".join(addrs), rev)


# The backends and the client run in processes of their own: in this one they would
# share the GIL with the fake namerd (which copies 7 MiB per answer) and json.loads.
ECHO = r"""
import socket, sys, threading
def serve(c):
    with c:
        while True:
            data = c.recv(65536)
            if not data:
                return
            c.sendall(data)
def accept(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
ports = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4096)
    ports.append(s.getsockname()[1])
    threading.Thread(target=accept, args=(s,), daemon=True).start()
print(" ".join(map(str, ports)), flush=True)
sys.stdin.read()
"""

PROBE = r"""
import socket, sys, time
while True:
    start, err = time.monotonic(), ""
    try:
        with socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5) as s:
            s.settimeout(5)
            s.sendall(b"ping\n")
            got = b""
            while len(got) < 5:
                data = s.recv(16)
                if not data:
                    break
                got += data
        if got != b"ping\n":
            err = "got %r" % got
    except OSError as e:
        err = repr(e)
    end = time.monotonic()
    print("%f %f %s" % (end, end - start, err.replace("\n", " ")), flush=True)
    time.sleep(0.005)
"""


class Prober:
    """Connects, echoes 5 bytes and closes, over and over; records how long each took
    (time.monotonic is the system's CLOCK_MONOTONIC, the same in both processes)."""

    def __init__(self, port, tmpdir):
        self.path = os.path.join(tmpdir, "probe.log")
        self.out = open(self.path, "w")
        self.proc = subprocess.Popen([sys.executable, "-c", PROBE, str(port)], stdout=self.out)
        t.cleanup(self.stop)

    def samples(self):
        """[(end, seconds, error)]"""
        out = []
        with open(self.path) as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) == 3:
                    out.append((float(parts[0]), float(parts[1]), parts[2]))
        return out

    def window(self, start, end):
        """(count, slowest, errors) of the connections that ended in [start, end]."""
        d = [(s, err) for e, s, err in self.samples() if start <= e <= end]
        return len(d), max((s for s, _ in d), default=0.0), [err for _, err in d if err]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


def echo_backends(n):
    """The ports of n echo servers in another process."""
    p = subprocess.Popen([sys.executable, "-c", ECHO, str(n)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    t.cleanup(p.kill)
    return [int(x) for x in p.stdout.readline().split()]


def admin_get(d, path):
    """(status, body bytes, seconds) of an admin GET."""
    start = time.monotonic()
    with urllib.request.urlopen(d.admin_url() + path, timeout=60) as r:
        body = r.read()
        return r.status, body, time.monotonic() - start


def test_large_set():
    n = t.namerd()
    reals = echo_backends(3)
    n.set_raw(NS, PATH, answer(reals, unused_port(), len(reals)))
    d = t.daemon("""proxies:
  - label: big
    servers:
      - addr: 127.0.0.1:0
    namerd:
      addr: 127.0.0.1:%d
      path: %s
      mode: poll
      interval_secs: 1
      timeout_ms: 10000
""" % (n.port, PATH), env={"LINKERD_TCP_LOG": "info"})
    t.ok(d.wait_log(r"namerd %s: 3 endpoint\(s\)" % PATH, 10), "the small set is applied")
    big = [answer(reals, unused_port(), N, rev) for rev in range(2)]
    probe = Prober(d.port("big"), d.dir)
    time.sleep(0.5)
    start = time.monotonic()
    time.sleep(3)
    base = probe.window(start, time.monotonic())
    t.diag("before: %d connections, the slowest %.1f ms" % (base[0], base[1] * 1000))

    # Updates: the set applied, then re-applied by each poll (a request goes out only
    # once the last answer is applied), then once more in another text.
    start = time.monotonic()
    n.set_raw(NS, PATH, big[0])
    applied = d.wait_log(r"namerd %s: %d endpoint\(s\)" % (PATH, N), 30)
    t.ok(applied, "the daemon logs the %d endpoints (%.2f s after namerd had them, %.1f MiB)"
         % (N, time.monotonic() - start, len(big[0]) / 2 ** 20))
    polls = n.request_count(NS, PATH)
    t.ok(wait_until(lambda: n.request_count(NS, PATH) >= polls + 4, 30),
         "the same %d endpoints are re-applied 3 times" % N)
    n.set_raw(NS, PATH, big[1])
    polls = n.request_count(NS, PATH)
    wait_until(lambda: n.request_count(NS, PATH) >= polls + 2, 30)
    updates = probe.window(start, time.monotonic())

    # Admin pages: linear in the endpoints, and no lock held while they render.
    start = time.monotonic()
    status, body, secs = admin_get(d, "/endpoints")
    t.ok(status == 200 and len(json.loads(body)["proxies"][0]["endpoints"]) == N,
         "/endpoints lists %d endpoints (%.1f MiB in %.2f s)" % (N, len(body) / 2 ** 20, secs))
    status, body, secs = admin_get(d, "/metrics")
    count = len(re.findall(rb'^linkerd_tcp_endpoint_weight\{', body, re.M))
    t.ok(status == 200 and count == N, "/metrics has the weight of %d endpoints (%.1f MiB in %.2f s)"
         % (count, len(body) / 2 ** 20, secs))
    admin = probe.window(start, time.monotonic())
    probe.stop()

    errors = base[2] + updates[2] + admin[2]
    t.ok(not errors, "every connection was served (%d errors%s)"
         % (len(errors), ": " + ", ".join(errors[:3]) if errors else ""))
    t.ok(updates[0] >= base[0] / 3 and updates[1] <= base[1] + STALL * SLOWDOWN,
         "while %d endpoints were applied and re-applied: %d connections, the slowest %.1f ms "
         "(before: %.1f ms; bound +%d ms%s)" % (N, updates[0], updates[1] * 1000, base[1] * 1000,
                                              STALL * SLOWDOWN * 1000,
                                              ", a sanitizer build" if SLOWDOWN > 1 else ""))
    t.diag("while the admin pages rendered: %d connections, the slowest %.1f ms"
           % (admin[0], admin[1] * 1000))
    t.ok(d.alive() and not re.search(r"keeping the last endpoint set", d.log()),
         "no namerd answer was refused or timed out")


t.run(test_large_set)
