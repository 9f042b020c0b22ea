"""Connection management: idle and lifetime timeouts counted by cause, the
PROXY protocol both ways, many connections at once, fd exhaustion with
recovery, endpoints that reset or never read, clients that vanish."""

import json
import os
import re
import resource
import socket
import struct
import tempfile
import threading
import time
import urllib.request

from ltcptest import *

t = Tap()
MiB = 1 << 20


daemon = t.daemon


backend = t.backend


def server_opts(cfg, opts):
    """Adds keys to the (first) server entry of a static_config text."""
    return cfg.replace("      - addr: '127.0.0.1:0'\n",
                       "      - addr: '127.0.0.1:0'\n" + "".join("        %s\n" % o for o in opts), 1)


def closes(d, cause):
    with urllib.request.urlopen(d.admin_url() + "/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(r'linkerd_tcp_closes_total\{[^}]*cause="%s"\} (\d+)' % cause, text)
    return int(m.group(1)) if m else None


def test_idle_timeout():
    b = backend(EchoBackend)
    d = daemon(server_opts(static_config(["127.0.0.1:0"], [b.addr]), ["idle_timeout_secs: 1"]))
    s = connect(d.port())
    for i in range(3):  # activity every 0.6 s keeps it open past the limit
        if i:
            time.sleep(0.6)
        s.sendall(b"x")
        echoed = s.recv(1)
        last = time.monotonic()
    s.settimeout(5)
    data = s.recv(10)
    secs = time.monotonic() - last
    t.ok(echoed == b"x" and data == b"" and 0.9 < secs < 2.0,
         "idle_timeout_secs: 1 keeps a connection active every 0.6 s and closes it %.2f s after its last byte" % secs)
    t.ok(wait_until(lambda: closes(d, "idle_timeout") == 1, 3), "... counted as closes_total{cause=idle_timeout}")
    s.close()


def test_lifetime():
    b = backend(EchoBackend)
    d = daemon(server_opts(static_config(["127.0.0.1:0"], [b.addr]), ["connection_lifetime_secs: 1"]))
    s = connect(d.port())
    start = time.monotonic()
    closed_after = None
    s.settimeout(0.2)
    while time.monotonic() - start < 5:
        try:
            s.sendall(b"y" * 100)
            if s.recv(4096) == b"":
                closed_after = time.monotonic() - start
                break
        except (socket.timeout, BrokenPipeError):
            pass
        except ConnectionResetError:
            closed_after = time.monotonic() - start
            break
        time.sleep(0.05)
    t.ok(closed_after is not None and 0.9 < closed_after < 2.0,
         "connection_lifetime_secs: 1 closes a busy connection after %s s" % closed_after)
    t.ok(wait_until(lambda: closes(d, "lifetime") == 1, 3), "... counted as closes_total{cause=lifetime}")
    s.close()


class ProxyHeaderBackend(Backend):
    """Reads a PROXY header, reports it back as text, then echoes."""

    def handle(self, conn):
        conn.settimeout(5)
        first = conn.recv(16)
        if first.startswith(b"PROXY "):
            while not first.endswith(b"\r\n"):
                first += conn.recv(1)
            conn.sendall(b"v1 " + first.strip()[6:] + b"\n")
        elif first[:12] == b"\r\n\r\n\x00\r\nQUIT\n":
            fam, length = first[13], struct.unpack("!H", first[14:16])[0]
            body = b""
            while len(body) < length:
                body += conn.recv(length - len(body))
            if fam == 0x11:
                src = socket.inet_ntop(socket.AF_INET, body[0:4])
                dst = socket.inet_ntop(socket.AF_INET, body[4:8])
                sp, dp = struct.unpack("!HH", body[8:12])
                conn.sendall(("v2 %s:%d %s:%d\n" % (src, sp, dst, dp)).encode())
            else:
                conn.sendall(b"v2 other\n")
        else:
            conn.sendall(b"no header\n")
        while True:
            d = conn.recv(65536)
            if not d:
                break
            conn.sendall(d)


def test_proxy_protocol():
    b = backend(ProxyHeaderBackend)
    for version in ("v1", "v2"):
        d = daemon(server_opts(static_config(["127.0.0.1:0"], [b.addr]), ["proxy_protocol: %s" % version]))
        s = connect(d.port())
        me = "%s:%d" % s.getsockname()
        line = read_line(s).decode().strip()
        if version == "v1":
            want = "v1 TCP4 127.0.0.1 127.0.0.1 %d %d" % (s.getsockname()[1], d.port())
        else:
            want = "v2 %s 127.0.0.1:%d" % (me, d.port())
        t.eq(line, want, "proxy_protocol: %s tells the endpoint the client's address" % version)
        s.sendall(b"after\n")
        t.eq(read_line(s), b"after\n", "... and the client's bytes follow it unchanged")
        s.close()

    # A balancer in front: accept a header, pass its address on.
    d = daemon(server_opts(static_config(["127.0.0.1:0"], [b.addr]),
                           ["accept_proxy_protocol: true", "proxy_protocol: v2"]))
    port = d.port()
    s = connect(port)
    s.sendall(b"PROXY TCP4 203.0.113.5 127.0.0.1 1234 443\r\nhello\n")
    t.eq(read_line(s).strip(), b"v2 203.0.113.5:1234 127.0.0.1:443",
         "an accepted v1 header's client address is what the endpoint hears")
    t.eq(read_line(s), b"hello\n", "the bytes after the header are delivered")
    s.close()
    t.ok(d.wait_log(r"conn \d+ 203\.0\.113\.5:1234 -> "), "the log names the real client")
    hdr = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + socket.inet_aton("198.51.100.1") + \
        socket.inet_aton("127.0.0.1") + struct.pack("!HH", 5555, 80)
    s = connect(port)
    s.sendall(hdr[:10])
    time.sleep(0.1)
    s.sendall(hdr[10:] + b"two\n")
    t.eq(read_line(s).strip(), b"v2 198.51.100.1:5555 127.0.0.1:80", "a v2 header split over two writes is read whole")
    t.eq(read_line(s), b"two\n", "... and the bytes after it follow")
    s.close()
    bad = connect(port)
    bad.sendall(b"PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n")
    try:
        got = recv_all(bad, 5)
    except ConnectionResetError:
        got = b""
    t.eq(got, b"", "a malformed PROXY header closes that connection")
    bad.close()
    good = connect(port)
    good.sendall(b"PROXY UNKNOWN\r\nok\n")
    line = read_line(good).decode()
    t.ok(line.startswith("v2 127.0.0.1:"), "PROXY UNKNOWN keeps the real peer (%s)" % line.strip())
    good.close()
    t.ok(d.wait_log("bad PROXY header: v1 header: bad address"), "the bad header is logged with its reason")


def test_partial_proxy_header():
    """A header that never completes costs no CPU: the daemon waits in poll for new bytes
    (it once spun on the peeked ones until connect_timeout_ms) and closes at the deadline."""
    b = backend(EchoBackend)
    d = daemon(server_opts(static_config(["127.0.0.1:0"], [b.addr]),
                           ["accept_proxy_protocol: true", "connect_timeout_ms: 3000"]))
    port = d.port()
    silent = connect(port, timeout=10)
    silent.sendall(b"PROXY TCP4 1.2.3.4")
    start = time.monotonic()
    cpu0 = d.cpu_seconds()
    time.sleep(2)  # the measurement window: the header waits, nothing else happens
    cpu = d.cpu_seconds() - cpu0
    t.ok(cpu < 0.1, "a silent client with half a PROXY header costs %.3f s of CPU in 2 s" % cpu)
    try:
        got = recv_all(silent, 10)
    except ConnectionResetError:
        got = b""
    took = time.monotonic() - start
    t.ok(got == b"" and 2.5 < took < 6, "... and is closed at connect_timeout_ms (after %.1f s)" % took)
    silent.close()
    t.ok(d.wait_log("no complete PROXY header in time"), "... logged with its reason")
    leaver = connect(port)
    leaver.sendall(b"PROXY TCP4 1.2.3.4")
    leaver.shutdown(socket.SHUT_WR)
    start = time.monotonic()
    got = recv_all(leaver, 10)
    took = time.monotonic() - start
    t.ok(got == b"" and took < 1.5, "a client that leaves after half a header is closed at once (%.2f s)" % took)
    leaver.close()
    t.ok(d.wait_log("client left before its PROXY header"), "... logged with its reason")
    t.ok(wait_until(lambda: closes(d, "client_error") == 2, 3), "... both counted as closes_total{cause=client_error}")
    t.eq(b.accepted, 0, "no endpoint was contacted for either")
    reply, err = exchange(port, b"PROXY UNKNOWN\r\nstill serving")
    t.eq(reply, b"still serving", "a whole header afterwards is served")


def test_access_log_off_and_on():
    """Turning access_log off by a reload keeps its descriptor number (pointed at /dev/null),
    so a relay thread writing at that moment never reaches a file opened meanwhile; turning it
    on again reuses that number. A symlink or a FIFO is refused."""
    b = backend(EchoBackend)
    tmp = tempfile.mkdtemp(prefix="ltcp-access-")
    path = os.path.join(tmp, "access.log")
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="access_log: %s" % path))
    exchange(d.port(), b"a" * 11)
    t.ok(wait_until(lambda: "from_client=11 " in open(path).read(), 5), "access_log on: the line is in the file")
    fd_before = access_fd(d, path)
    d.write_config(open(d.path).read().replace("access_log: %s\n" % path, ""))
    d.reload()
    t.ok(os.readlink("/proc/%d/fd/%d" % (d.proc.pid, fd_before)) == "/dev/null",
         "access_log removed: its descriptor now points at /dev/null (not closed, never reused)")
    for i in range(5):
        exchange(d.port(), b"b" * (20 + i))
    t.ok(d.wait_log(r"from_client=24 "), "... the lines go to the main log")
    t.ok("from_client=2" not in open(path).read(), "... and none reaches the file")
    d.write_config(open(d.path).read().replace("proxies:", "access_log: %s\nproxies:" % path, 1))
    d.reload()
    exchange(d.port(), b"c" * 33)
    t.ok(wait_until(lambda: "from_client=33 " in open(path).read(), 5), "access_log on again: lines in the file")
    t.eq(access_fd(d, path), fd_before, "... through the same descriptor number")
    os.symlink(path, os.path.join(tmp, "link.log"))
    os.mkfifo(os.path.join(tmp, "fifo.log"))
    for name, why in [("link.log", "is a symbolic link"), ("fifo.log", "not a regular file")]:
        bad = Daemon(static_config(["127.0.0.1:0"], [b.addr], top="access_log: %s" % os.path.join(tmp, name)))
        rc = bad.wait(10)
        t.ok(rc == 1 and why in bad.log(), "access_log that %s: exit 1 with the reason" % why)
    t.ok(open(path).read().count("reason=done") == 2, "the file behind the link is left as it was")


def access_fd(d, path):
    for fd in os.listdir("/proc/%d/fd" % d.proc.pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (d.proc.pid, fd)) == path:
                return int(fd)
        except OSError:
            pass
    return None


def test_many_connections():
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    b = backend(IdBackend, name="many")
    # The Python backend accepts slowly under a burst: give connects time.
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="relay_threads: 2100",
                             extra_proxy="client:\n  connect_timeout_ms: 10000"))
    port = d.port()
    socks = []
    try:
        for _ in range(n):
            socks.append(connect(port, timeout=10))
        served = sum(1 for s in socks if read_line(s, 10) == b"many\n")
        t.eq(served, n, "%d connections held open at once are all served" % n)
        for s in socks[:10]:
            s.sendall(b"alive\n")
        t.ok(all(read_line(s) == b"alive\n" for s in socks[:10]), "... and keep working")
    finally:
        for s in socks:
            s.close()
    t.ok(wait_until(lambda: b.open == 0, 10), "closing them all closes every endpoint connection")


def open_fds(d):
    """How many descriptors the daemon holds."""
    return len(os.listdir("/proc/%d/fd" % d.proc.pid))


def test_fd_exhaustion():
    b = backend(IdBackend, name="fd")

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (60, 60))

    port = free_port()
    cfg = static_config(["127.0.0.1:%d" % port], [b.addr], top="relay_threads: 64")
    d = Daemon(cfg, preexec_fn=low_limit)
    t.cleanup(d.stop)
    wait_until(lambda: "running" in d.log(), 10)
    fds_idle = open_fds(d)
    socks = []
    for _ in range(40):
        try:
            socks.append(connect(port, timeout=2))
        except OSError:
            break
    answered = sum(1 for s in socks if read_line(s, 1) == b"fd\n")
    t.ok(answered < len(socks), "with 60 fds, %d of %d connections are served (the rest wait)" % (answered, len(socks)))
    t.ok(d.wait_log("pausing accepts|Too many open files", 5),
         "running out of descriptors is logged (accept paused or connect refused locally)")
    t.ok(len(re.findall("pausing accepts", d.log())) <= 1, "accept pauses are warned once per episode")
    cpu0 = d.cpu_seconds()
    time.sleep(1)  # a measurement window: the CPU used over 1 s out of descriptors, not a wait
    t.ok(d.cpu_seconds() - cpu0 < 0.2, "no CPU spin while out of descriptors")
    for s in socks:
        s.close()
    # Until the relays of the closed clients end, the daemon still holds their descriptors.
    if not wait_until(lambda: b.open == 0 and open_fds(d) <= fds_idle, 10, 0.05):
        t.diag("the daemon still holds %d descriptors (%d when idle)" % (open_fds(d), fds_idle))
    s = connect(port)
    t.eq(read_line(s, 5), b"fd\n", "once descriptors free up, the daemon serves again by itself")
    s.close()
    t.ok("pausing accepts" not in d.log() or d.wait_log("accepting again"),
         "a paused acceptor logs its recovery")


class ResetBackend(Backend):
    """Sends a little, then resets the connection."""

    def handle(self, conn):
        conn.sendall(b"partial")
        time.sleep(0.2)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class NeverReadBackend(Backend):
    """Accepts and never reads: the proxy must apply back-pressure."""

    def handle(self, conn):
        while not self.closed:
            time.sleep(0.1)


def test_failure_episode_warned_once():
    """A refusing endpoint is warned about at its first failure, with the cause, not only
    when failure accrual ejects it; once per episode, which ends when it answers again."""
    port = unused_port()
    addr = "127.0.0.1:%d" % port
    d = daemon(static_config(["127.0.0.1:0"], [addr], extra_proxy="client:\n  retries: 0"))
    rx = r"WARN  proxy0: endpoint %s is failing: .*refused" % re.escape(addr)
    for i in range(3):
        t.eq(first_line(d.port()), b"", "connection %d to a refusing endpoint is closed" % (i + 1))
        if i == 0:
            t.ok(d.wait_log(rx), "the first failure is warned at once, with its cause")
    t.ok(d.wait_log(r"reason=connect failed", count=3), "... all three connections failed")
    t.eq(len(re.findall(rx, d.log())), 1, "... and only once for the episode")
    release_port(port)
    b = backend(EchoBackend, port=port)
    reply, _ = exchange(d.port(), b"up again")
    t.eq(reply, b"up again", "the endpoint answers again")
    t.ok(d.wait_log(r"INFO  proxy0: endpoint %s answers again" % re.escape(addr)), "... which is logged")
    b.close()
    first_line(d.port())
    t.ok(d.wait_log(rx, count=2), "a new episode is warned again")


def test_faulty_endpoints():
    r = backend(ResetBackend)
    d = daemon(static_config(["127.0.0.1:0"], [r.addr]))
    s = connect(d.port())
    got = b""
    try:
        while True:
            c = s.recv(100)
            if not c:
                break
            got += c
    except ConnectionResetError:
        pass
    s.close()
    t.eq(got, b"partial", "an endpoint reset mid-stream: the bytes before it arrive, then the client is closed")
    t.ok(d.wait_log("reason=endpoint (read|write) error"), "the reset is logged as an endpoint error")

    nr = backend(NeverReadBackend)
    d2 = daemon(static_config(["127.0.0.1:0"], [nr.addr]))
    s = connect(d2.port())
    s.setblocking(False)
    chunk = b"z" * 65536

    def push(seconds):
        """Sends as much as the proxy takes for a while; the bytes taken."""
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                n += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.05)
        return n

    sent = push(3)  # fills every buffer on the way, then stalls
    rss0 = _rss(d2)
    more = push(3)  # nothing more can go anywhere
    rss1 = _rss(d2)
    t.ok(sent < 64 * MiB and more < MiB,
         "an endpoint that never reads stops the client after %d KiB (socket and pipe buffers only)" % (sent // 1024))
    t.ok(rss1 - rss0 < MiB, "... and once stalled the proxy's memory does not grow (%+d KiB)" % ((rss1 - rss0) // 1024))
    s.close()


def _rss(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) * 1024


def test_vanishing_clients():
    b = backend(EchoBackend)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="relay_threads: 8"))
    port = d.port()
    for _ in range(20):
        s = connect(port)
        s.sendall(b"gone")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    reply, err = exchange(port, b"still here")
    t.ok(reply == b"still here", "20 clients that reset right away leave the proxy serving")
    t.ok(wait_until(lambda: b.open == 0, 5), "... and no endpoint connection is left behind")


def syn_recv_on(port):
    """Connections to local port still in SYN-RECV (/proc/net/tcp*): held by the kernel."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if int(parts[1].split(":")[1], 16) == port and parts[3] == "03":
                    n += 1
    return n


def accepts(d):
    code, text = d.admin("/metrics")
    m = re.search(r"linkerd_tcp_accepts_total\{[^}]*\} (\d+)", text)
    return int(m.group(1)) if m else None


def test_defer_accept():
    b = backend(EchoBackend, name="echo")
    plain = daemon(static_config(["127.0.0.1:0"], [b.addr]))
    deferred = daemon(server_opts(static_config(["127.0.0.1:0"], [b.addr]), ["defer_accept: true"]))
    p, q = connect(plain.port()), connect(deferred.port())
    t.ok(wait_until(lambda: accepts(plain) == 1, 5), "a silent client is accepted at once by default on a plain listener")
    t.ok(syn_recv_on(deferred.port()) == 1 and accepts(deferred) == 0,
         "defer_accept: true: meanwhile its silent client waits in the kernel (SYN-RECV), not accepted")
    q.sendall(b"first\n")
    t.eq(read_line(q), b"first\n", "... its first bytes get it accepted and relayed")
    t.eq((accepts(deferred), syn_recv_on(deferred.port())), (1, 0), "... counted once, nothing left in the kernel")
    p.close()
    q.close()
    # A listener whose clients speak first (here a PROXY header) defers by itself; false turns it off.
    auto = daemon(server_opts(static_config(["127.0.0.1:0"], [b.addr]), ["accept_proxy_protocol: true"]))
    off = daemon(server_opts(static_config(["127.0.0.1:0"], [b.addr]),
                             ["accept_proxy_protocol: true", "defer_accept: false"]))
    p, q = connect(auto.port()), connect(off.port())
    t.ok(wait_until(lambda: accepts(off) == 1, 5), "accept_proxy_protocol with defer_accept: false accepts a silent client")
    t.ok(syn_recv_on(auto.port()) == 1 and accepts(auto) == 0,
         "accept_proxy_protocol with defer_accept: auto (the default) leaves it in the kernel")
    p.close()
    q.close()


t.run(
    test_defer_accept,
    test_idle_timeout,
    test_lifetime,
    test_proxy_protocol,
    test_partial_proxy_header,
    test_access_log_off_and_on,
    test_many_connections,
    test_fd_exhaustion,
    test_failure_episode_warned_once,
    test_faulty_endpoints,
    test_vanishing_clients,
)
