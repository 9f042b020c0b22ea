"""Parking: quiet connections give their relay thread back and wake up where
they stopped.  9,000 idle connections held by 64 relay threads, byte-exact
copies across parks (plain and TLS on both sides), half-close and resets while
parked, timers and drain on parked connections, reload, fairness between
proxies and max_connections_per_client."""

import hashlib
import os
import re
import resource
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from ltcptest import *
from tlsgen import CA

t = Tap()
daemon = t.daemon
HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(HERE), "lib")
WORK = tempfile.mkdtemp(prefix="ltcp-park-")
MiB = 1 << 20


def metric(d, name):
    code, text = d.admin("/metrics")
    m = re.search(r"^%s (\d+)" % re.escape(name), text, re.M) if code == 200 else None
    return int(m.group(1)) if m else None


def threads_of(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def echo_process():
    """The single-threaded echo server in its own process; returns its address."""
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(LIB, "epoll_echo.py")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    t.cleanup(lambda: (p.stdin.close(), p.wait(5)))
    return "127.0.0.1:%s" % p.stdout.readline().strip()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------- many clients at once


class Crowd:
    """n non-blocking client connections driven by one selector: each sends
    its own message and waits for the echo; all bytes are kept for the sha."""

    def __init__(self, port, n):
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.sent = {}
        self.got = {}
        batch = []
        for i in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            self.socks.append(s)
            self.sent[s] = b""
            self.got[s] = b""
            batch.append(s)
            if len(batch) == 256 or i == n - 1:
                self.established(batch, 30 * SLOWDOWN)
                batch = []

    @staticmethod
    def established(socks, timeout):
        """Waits until socks are connected, so that connects go at the pace the
        proxy accepts (a burst overflowing the backlog has its SYNs dropped and
        retried seconds later)."""
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_WRITE)
        left = len(socks)
        end = time.monotonic() + timeout
        while left and time.monotonic() < end:
            for key, _ in sel.select(0.5):
                sel.unregister(key.fileobj)
                left -= 1
        sel.close()

    def round(self, tag, timeout):
        """Every connection sends "<tag> <i> ..." and reads it back; the number echoed."""
        want = {}
        for i, s in enumerate(self.socks):
            msg = ("%s %d %s\n" % (tag, i, "x" * (i % 50))).encode()
            self.sent[s] += msg
            want[s] = len(self.sent[s])
            self.sel.register(s, selectors.EVENT_WRITE, msg)
        done = 0
        end = time.monotonic() + timeout
        while done < len(self.socks) and time.monotonic() < end:
            for key, ev in self.sel.select(0.5):
                s = key.fileobj
                if ev & selectors.EVENT_WRITE:
                    try:
                        n = s.send(key.data)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        self.sel.unregister(s)
                        continue
                    rest = key.data[n:]
                    self.sel.modify(s, selectors.EVENT_WRITE if rest else selectors.EVENT_READ, rest)
                    continue
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                self.got[s] += data
                if not data or len(self.got[s]) >= want[s]:
                    self.sel.unregister(s)
                    done += 1 if data else 0
        for s in self.socks:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
        return done

    def intact(self):
        return sum(1 for s in self.socks
                   if hashlib.sha256(self.got[s]).digest() == hashlib.sha256(self.sent[s]).digest())

    def close(self):
        for s in self.socks:
            s.close()


def test_many_idle():
    n = 9000 if SLOWDOWN == 1 else 2000
    limit = raise_nofile()
    if limit < n + 500:
        t.ok(True, "9,000 idle connections # SKIP the open-file limit here is %d" % limit)
        return
    echo = echo_process()
    d = daemon(static_config(["127.0.0.1:0"], [echo], top="relay_threads: 64"),
               env={"LINKERD_TCP_LOG": "info"})
    port = d.port()
    crowd = Crowd(port, n)
    t.cleanup(crowd.close)
    first = crowd.round("first", 60 * SLOWDOWN)
    t.eq(first, n, "relay_threads: 64 holds %d connections, each echoed its first message%s"
         % (n, "" if n == 9000 else " (2,000 in sanitizer builds)"))
    t.ok(wait_until(lambda: metric(d, "linkerd_tcp_parked_connections") == n, 10 * SLOWDOWN),
         "once quiet for park_idle_ms all %d are parked (gauge %s)" % (n, metric(d, "linkerd_tcp_parked_connections")))
    threads = threads_of(d.proc.pid)
    t.ok(threads <= 64 + 8, "the process has %d threads: the 64 relays and a few more" % threads)
    start = time.monotonic()
    s = connect(port)
    s.sendall(b"fresh\n")
    line = read_line(s, 5)
    secs = time.monotonic() - start
    s.close()
    t.ok(line == b"fresh\n" and secs < 0.5 * SLOWDOWN,
         "meanwhile a fresh connection is served at once (%.3f s)" % secs)
    time.sleep(2.0)  # the silence the issue asks for, not a wait for a condition
    second = crowd.round("second", 60 * SLOWDOWN)
    t.eq(second, n, "after 2 s of silence every one sends again and gets its echo")
    t.eq(crowd.intact(), n, "every stream's bytes arrive intact (sha256 of each)")
    wakes = metric(d, "linkerd_tcp_wakes_total")
    t.ok(wakes is not None and wakes >= n, "each woke from its park (wakes_total %s)" % wakes)


# ---------------------------------------------------------------- byte-exact across parks


CA1 = CA(os.path.join(WORK, "ca"), "Parking CA")


def tls_backend():
    key, crt = CA1.issue("park-endpoint", ["endpoint.internal"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)

    class TlsEcho(Backend):
        def handle(self, conn):
            s = ctx.wrap_socket(conn, server_side=True)
            echo_until_eof(s)

    b = TlsEcho(name="tls-echo")
    t.cleanup(b.close)
    return b


def tls_config(endpoint, top=""):
    key, crt = CA1.issue("park-proxy", ["proxy.example"])
    text = static_config(["127.0.0.1:0"], [endpoint], top=top, extra_proxy="""client:
  tls:
    name: endpoint.internal
    trust_cert_paths: [%s]""" % CA1.cert)
    return text.replace("      - addr: '127.0.0.1:0'\n",
                        "      - addr: '127.0.0.1:0'\n        tls:\n          private_key_path: %s\n"
                        "          cert_paths: [%s]\n" % (key, crt))


def tls_client(port):
    ctx = ssl.create_default_context(cafile=CA1.cert)
    return ctx.wrap_socket(connect(port, 10), server_hostname="proxy.example")


def bursts(s, payload, burst, pause):
    """Sends payload in bursts with pauses, reading each burst's echo back."""
    got = []
    for i in range(0, len(payload), burst):
        chunk = payload[i:i + burst]
        s.sendall(chunk)
        n = 0
        while n < len(chunk):
            data = s.recv(65536)
            if not data:
                return b"".join(got)
            got.append(data)
            n += len(data)
        time.sleep(pause)
    return b"".join(got)


def test_bursts(kind):
    payload = random_bytes(MiB, seed=7)
    top = "park_idle_ms: 100"
    if kind == "plain":
        b = EchoBackend(name="echo")
        t.cleanup(b.close)
        d = daemon(static_config(["127.0.0.1:0"], [b.addr], top=top))
        s = connect(d.port(), 10)
    else:
        d = daemon(tls_config(tls_backend().addr, top=top))
        s = tls_client(d.port())
    got = bursts(s, payload, 128 * 1024, 0.3)
    s.close()
    t.eq(sha256(got), sha256(payload),
         "%s: 1 MiB in 8 bursts with pauses longer than park_idle_ms comes back intact" % kind)
    m = d.wait_log(r"from_client=%d to_client=%d duration=\S+ parks=(\d+)" % (MiB, MiB), 5)
    t.ok(m and int(m[0]) >= 7, "%s: ... and the connection was parked between bursts (parks=%s)"
         % (kind, m and m[0]))


def parked_pair(extra_top=""):
    """A daemon with park_idle_ms: 100 and one echoed, then parked, connection."""
    b = EchoBackend(name="echo")
    t.cleanup(b.close)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="park_idle_ms: 100\n" + extra_top))
    s = connect(d.port())
    s.sendall(b"hello\n")
    read_line(s)
    wait_until(lambda: metric(d, "linkerd_tcp_parked_connections") == 1, 5 * SLOWDOWN)
    return b, d, s


def test_half_close_while_parked():
    b = ReplyAfterEofBackend(b"the reply after EOF\n", name="reply")
    t.cleanup(b.close)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="park_idle_ms: 100"))
    s = connect(d.port())
    s.sendall(b"request part 1\n")
    t.ok(wait_until(lambda: metric(d, "linkerd_tcp_parked_connections") == 1, 5 * SLOWDOWN),
         "a connection quiet for park_idle_ms is parked")
    s.sendall(b"request part 2\n")
    wait_until(lambda: metric(d, "linkerd_tcp_parked_connections") == 1, 5 * SLOWDOWN)
    s.shutdown(socket.SHUT_WR)
    t.eq(recv_all(s, 5), b"the reply after EOF\n", "a half-close while parked: the endpoint's reply still arrives")
    s.close()
    t.eq(b.requests, [b"request part 1\nrequest part 2\n"], "... and the endpoint got the whole request, then EOF")
    t.ok(d.wait_log(r"parks=[1-9]\d* reason=done"), "the summary line counts the parks, reason done")


def test_endpoint_reset_while_parked():
    class Resetter(Backend):
        def handle(self, conn):
            conn.sendall(b"hi\n")
            time.sleep(0.5)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

    b = Resetter(name="reset")
    t.cleanup(b.close)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="park_idle_ms: 100"))
    s = connect(d.port())
    t.eq(read_line(s), b"hi\n", "an endpoint that will reset says hi")
    start = time.monotonic()
    try:
        rest = recv_all(s, 5)
    except OSError:
        rest = b""
    secs = time.monotonic() - start
    s.close()
    t.ok(rest == b"" and secs < 2.0, "an endpoint reset while parked closes the client promptly (%.2f s)" % secs)
    t.ok(d.wait_log(r"parks=[1-9]\d* reason=(endpoint read error|done)"),
         "the summary line: parked, then closed by the endpoint")


def test_client_reset_while_parked():
    b, d, s = parked_pair()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    t.ok(wait_until(lambda: b.open == 0, 3), "a client reset while parked closes the endpoint's connection")
    t.ok(d.wait_log(r"parks=1 reason=(client read error|done)"), "the summary line says the client went")
    t.ok(wait_until(lambda: metric(d, "linkerd_tcp_parked_connections") == 0 and
                    metric(d, "linkerd_tcp_open_connections") == 0, 3), "nothing is left parked or open")


# ---------------------------------------------------------------- timers and drain


def silent_close_after(port):
    """Seconds until the proxy closes a client that sends one line and then nothing."""
    s = connect(port, 10)
    s.sendall(b"x\n")
    read_line(s)
    start = time.monotonic()
    recv_all(s, 10)
    s.close()
    return time.monotonic() - start


def test_timers_on_parked():
    b = EchoBackend(name="echo")
    t.cleanup(b.close)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="park_idle_ms: 100",
                             extra_proxy="").replace("    endpoints:",
                                                     "        idle_timeout_secs: 1\n    endpoints:"))
    secs = silent_close_after(d.port())
    t.ok(0.9 < secs < 1.6, "idle_timeout_secs: 1 closes a parked connection on time (%.2f s)" % secs)
    t.ok(d.wait_log(r"parks=1 reason=idle timeout"), "... from the parked set (parks=1, reason idle timeout)")
    d2 = daemon(static_config(["127.0.0.1:0"], [b.addr], top="park_idle_ms: 100").replace(
        "    endpoints:", "        connection_lifetime_secs: 2\n    endpoints:"))
    secs = silent_close_after(d2.port())
    t.ok(1.8 < secs < 2.6, "connection_lifetime_secs: 2 closes a parked connection on time (%.2f s)" % secs)
    t.ok(d2.wait_log(r"parks=1 reason=lifetime expired"), "... from the parked set (reason lifetime expired)")


def test_drain_closes_parked():
    b, d, s = parked_pair("admin:\n  grace_secs: 20")
    busy = connect(d.port())
    busy.sendall(b"busy\n")
    read_line(busy)
    start = time.monotonic()
    d.signal(signal.SIGTERM)
    t.eq(recv_all(s, 10), b"", "SIGTERM: a parked connection is closed at once")
    t.ok(time.monotonic() - start < 1.0, "... well within grace_secs: 20 (%.2f s)" % (time.monotonic() - start))
    rc = d.wait(10)
    secs = time.monotonic() - start
    t.ok(rc == 0 and secs < 3.0, "a running quiet connection closes once it would park; exit 0 in %.2f s" % secs)
    t.ok(len(re.findall(r"reason=drained while idle", d.log())) == 2, "both summaries say drained while idle")
    s.close()
    busy.close()


def test_reload_leaves_parked():
    b, d, s = parked_pair()
    port = d.port()
    t.ok(d.reload(), "SIGHUP with a connection parked")
    s.sendall(b"after reload\n")
    t.eq(read_line(s), b"after reload\n", "the parked connection carries on after the reload")
    wait_until(lambda: metric(d, "linkerd_tcp_parked_connections") == 1, 5 * SLOWDOWN)
    other = free_port()
    t.ok(d.reload(static_config(["127.0.0.1:%d" % other], [b.addr], top="park_idle_ms: 100")),
         "a reload that closes the connection's listener")
    t.ok(refused_at_once(port), "the old port is closed")
    s.sendall(b"listener gone\n")
    t.eq(read_line(s), b"listener gone\n", "the parked connection of the closed listener still wakes and echoes")
    s.close()
    t.ok(d.wait_log(r"parks=[2-9] reason=done"), "... and ends normally")
    t.eq(first_line(other), b"", "the new listener serves (echo backend: nothing until we send)")


# ---------------------------------------------------------------- fairness and limits


def two_proxies(extra_a=""):
    a = EchoBackend(name="a")
    bb = IdBackend(name="b")
    t.cleanup(a.close)
    t.cleanup(bb.close)
    text = "relay_threads: 8\npark_idle_ms: 5000\nproxies:\n"
    for label, be, extra in (("A", a, extra_a), ("B", bb, "")):
        text += ("  - label: %s\n    servers:\n      - addr: 127.0.0.1:0\n%s    endpoints:\n"
                 "      - addr: %s\n" % (label, extra, be.addr))
    return daemon(text)


def test_fairness():
    d = two_proxies()
    silent = [connect(d.port("A")) for _ in range(60)]
    t.cleanup(lambda: [s.close() for s in silent])
    time.sleep(0.3)  # let them all be accepted and connected: they hold threads, not bytes
    start = time.monotonic()
    line = first_line(d.port("B"), 5)
    secs = time.monotonic() - start
    t.ok(line == b"b" and secs < 0.5 * SLOWDOWN,
         "60 silent clients of proxy A on 8 relay threads do not delay proxy B (%.3f s; park_idle_ms 5 s)" % secs)
    for i, s in enumerate(silent):
        s.sendall(b"%d\n" % i)
    echoed = sum(1 for i, s in enumerate(silent) if read_line(s, 10 * SLOWDOWN) == b"%d\n" % i)
    t.eq(echoed, 60, "and all 60 of A's clients are served when they speak")


def test_per_client_limit():
    b = EchoBackend(name="echo")
    t.cleanup(b.close)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr]).replace(
        "    endpoints:", "        max_connections_per_client: 3\n    endpoints:"))
    port = d.port()
    held = [connect(port) for _ in range(3)]
    for i, s in enumerate(held):
        s.sendall(b"%d\n" % i)
    t.ok(all(read_line(s) == b"%d\n" % i for i, s in enumerate(held)), "max_connections_per_client: 3 serves three")
    try:  # the reset may come before connect() returns
        fourth = connect(port)
        t.cleanup(fourth.close)
        fourth.sendall(b"4\n")
        got = recv_all(fourth, 5)
    except OSError:
        got = b""
    t.eq(got, b"", "the fourth from the same address is reset at once")
    code, text = d.admin("/metrics")
    t.ok(re.search(r'linkerd_tcp_closes_total\{proxy="proxy0",server="[^"]+",cause="client_limit"\} 1', text),
         "... and counted as closes_total{cause=\"client_limit\"}")
    t.ok(d.wait_log("reached max_connections_per_client"), "... and warned about")
    held[0].close()
    wait_until(lambda: metric(d, "linkerd_tcp_open_connections") == 2, 5 * SLOWDOWN)
    again = connect(port)
    again.sendall(b"again\n")
    t.eq(read_line(again), b"again\n", "once one closes, the client may connect again")
    for s in held[1:] + [again]:
        s.close()


def test_metrics_and_summary():
    b, d, s = parked_pair()
    t.eq(metric(d, "linkerd_tcp_parked_connections"), 1, "the parked gauge counts the parked connection")
    t.eq(metric(d, "linkerd_tcp_open_connections"), 1, "open_connections counts it too")
    s.sendall(b"wake\n")
    t.eq(read_line(s), b"wake\n", "a parked connection wakes when its client speaks")
    t.ok(metric(d, "linkerd_tcp_parks_total") >= 1 and metric(d, "linkerd_tcp_wakes_total") >= 1,
         "parks_total and wakes_total count it")
    t.ok(metric(d, "linkerd_tcp_wake_delay_seconds_count") >= 1, "the wake-to-first-byte histogram has it")
    pool = d.admin_json()["pool"]
    t.ok(pool.get("open") == 1 and "parked" in pool and "queued" in pool,
         "GET /endpoints reports open, parked and queued connections (%s)" % pool)
    s.close()
    t.ok(d.wait_log(r"parks=\d+ reason=done"), "the summary line says how many times it parked")


t.run(
    test_many_idle,
    (test_bursts, ("plain",)),
    (test_bursts, ("tls",)),
    test_half_close_while_parked,
    test_endpoint_reset_while_parked,
    test_client_reset_while_parked,
    test_timers_on_parked,
    test_drain_closes_parked,
    test_reload_leaves_parked,
    test_fairness,
    test_per_client_limit,
    test_metrics_and_summary,
)
