"""The data path with static endpoints: payload integrity, half-close,
weighted least-connections, failing endpoints, the bounded relay pool,
SIGHUP reloads and a graceful SIGTERM."""

import os
import signal
import socket
import threading
import time

from ltcptest import *

t = Tap()
MiB = 1 << 20


daemon = t.daemon


backend = t.backend


def test_payload_each_way():
    up = random_bytes(64 * MiB, seed=1)
    down = random_bytes(64 * MiB, seed=2)
    b = backend(SourceSinkBackend, send=down, name="srcsink")
    d = daemon(static_config(["127.0.0.1:0"], [b.addr]))
    reply, err = exchange(d.port(), up, timeout=120)
    t.ok(err is None, "64 MiB each way: no client error (%s)" % err)
    t.eq(sha256(reply), sha256(down), "64 MiB endpoint->client arrives intact (sha256)")
    wait_until(lambda: b.received, 10)
    t.eq(b.received[:1], [(sha256(up), len(up))], "64 MiB client->endpoint arrives intact (sha256)")
    t.ok(
        d.wait_log(r"from_client=%d to_client=%d duration=\S+ parks=0 reason=done" % (len(up), len(down))),
        "the summary line counts the bytes each way as decimal integers",
    )


def test_echo_interleaved():
    """A single-threaded echo peer that writes before it reads must not wedge the relay."""
    b = backend(EchoBackend, name="echo")
    d = daemon(static_config(["127.0.0.1:0"], [b.addr]))
    data = random_bytes(16 * MiB, seed=3)
    reply, err = exchange(d.port(), data, timeout=60)
    t.ok(err is None and sha256(reply) == sha256(data), "16 MiB through an echo endpoint: equal")


def test_half_close():
    reply = random_bytes(4 * MiB, seed=4)
    b = backend(ReplyAfterEofBackend, reply=reply, name="reply-after-eof")
    d = daemon(static_config(["127.0.0.1:0"], [b.addr]))
    request = b"GET /big HTTP/1.0\r\n\r\n"
    got, err = exchange(d.port(), request)
    t.ok(b.requests == [request], "the endpoint saw the client's EOF after the request")
    t.ok(err is None and sha256(got) == sha256(reply),
         "a client that shut its write side still receives the full 4 MiB reply")


def test_small_then_large_messages():
    """Request/response messages of every size in turn, small and large (a
    relay's reads come back short, full, then short again), come back whole."""
    b = backend(EchoBackend, name="echo")
    d = daemon(static_config(["127.0.0.1:0"], [b.addr]))
    s = connect(d.port(), 30)
    small = [1, 48, 207, 1000, 4095]
    ok = True
    for i in range(200):
        msg = random_bytes(small[i % len(small)], seed=100 + i)
        s.sendall(msg)
        ok = ok and recv_exact(s, len(msg)) == msg
    t.ok(ok, "200 request/response messages of 1 to 4,095 bytes echo back whole")
    sizes = [4096, 4097, 3 * MiB, 10, 65536 + 7, 2, 1 * MiB, 100]
    for i, n in enumerate(sizes):
        msg = random_bytes(n, seed=300 + i)
        out = threading.Thread(target=s.sendall, args=(msg,))
        out.start()
        got = recv_exact(s, n)
        out.join(30)
        ok = ok and got == msg
    t.ok(ok, "messages switching between small and large (%s bytes) echo back whole" % ", ".join(map(str, sizes)))
    s.shutdown(socket.SHUT_WR)
    t.eq(recv_all(s, 10), b"", "the echo's EOF follows the last message")
    s.close()


def recv_exact(s, n, timeout=30.0):
    s.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(min(n - len(buf), 1 << 20))
        if not d:
            break
        buf += d
    return bytes(buf)


def hold_connections(port, n, timeout=5.0):
    """Opens n connections, reads each one's backend id; returns (sockets, ids)."""
    socks, ids = [], []
    for _ in range(n):
        s = connect(port)
        socks.append(s)
        ids.append(read_line(s, timeout).strip().decode())
    return socks, ids


def close_all(socks):
    for s in socks:
        s.close()


def test_weighted_split():
    a = backend(IdBackend, name="a")
    b = backend(IdBackend, name="b")
    d = daemon(static_config(["127.0.0.1:0"], [(a.addr, 3.0), (b.addr, 1.0)],
                             top="relay_threads: 256"))
    socks, ids = hold_connections(d.port(), 200)
    na, nb = ids.count("a"), ids.count("b")
    t.ok(na + nb == 200 and nb > 0 and 2.5 <= na / nb <= 3.5,
         "3:1 weights over 200 held connections split %d:%d" % (na, nb))
    close_all(socks)


def test_preloaded_and_reload():
    a = backend(IdBackend, name="a")
    b = backend(IdBackend, name="b")
    d = daemon(static_config(["127.0.0.1:0"], [a.addr]))
    port = d.port()
    held, ids = hold_connections(port, 4)
    t.eq(ids, ["a"] * 4, "before reload every connection goes to the only endpoint")
    t.ok(d.reload(static_config(["127.0.0.1:0"], [a.addr, b.addr])), "SIGHUP applies a new endpoint list")
    # The port-0 listener is kept across the reload: same config key, same socket.
    t.eq(d.port(), port, "an unchanged listener keeps its socket over a reload")
    fresh, ids2 = hold_connections(port, 4)
    t.eq(ids2, ["b"] * 4, "equal weights, one endpoint pre-loaded: new connections go to the idle one")
    for s in held:
        s.sendall(b"still there?\n")
    t.ok(all(read_line(s) == b"still there?\n" for s in held),
         "connections opened before the reload are untouched")
    close_all(held + fresh)

    broken = static_config(["127.0.0.1:0"], [b.addr]) + "    bogus_key: 1\n"
    d.reload(broken, expect=None)
    err = d.wait_log(r"linkerd-tcp\.yml:\d+:\d+: unknown key 'bogus_key' in proxy")
    t.ok(err, "SIGHUP with a broken file logs FILE:LINE:COL")
    t.ok(d.wait_log("keeping the running one"), "... and keeps the running configuration")
    socks, ids3 = hold_connections(port, 2)
    t.ok(set(ids3) <= {"a", "b"} and len(ids3) == 2, "the old endpoints still serve after a failed reload")
    close_all(socks)

    # Removing a listener and adding another on reload.
    new_cfg = static_config(["127.0.0.1:0", "127.0.0.2:0"], [b.addr])
    t.ok(d.reload(new_cfg), "a reload may add a listener")
    t.ok(len(d.listening().get("proxy0", [])) >= 2, "the new listener is announced")


def test_refusing_endpoint():
    good = backend(IdBackend, name="good")
    dead = unused_port()
    d = daemon(static_config(["127.0.0.1:0"], ["127.0.0.1:%d" % dead, good.addr]))
    ids = []
    for _ in range(20):
        s = connect(d.port())
        ids.append(read_line(s).strip().decode())
        s.close()
    t.eq(ids, ["good"] * 20, "one endpoint refusing: all 20 connections succeed via the other")
    t.ok(d.wait_log(r"endpoint 127\.0\.0\.1:%d ejected" % dead), "the refusing endpoint gets ejected")

    d2 = daemon(static_config(["127.0.0.1:0"], ["127.0.0.1:%d" % unused_port(),
                                                "127.0.0.1:%d" % unused_port()]))
    results = [closed_promptly(d2.port(), 3.0) for _ in range(10)]
    t.ok(all(c for c, _ in results), "all endpoints refusing: every client is closed")
    t.ok(max(s for _, s in results) < 2.0,
         "... promptly (slowest %.3f s)" % max(s for _, s in results))
    t.ok(d2.alive() and d2.wait_log("reason=connect failed: Connection refused"),
         "the daemon stays up and logs why")


def test_no_endpoints():
    d = daemon(static_config(["127.0.0.1:0"], []))
    closed, secs = closed_promptly(d.port(), 3.0)
    t.ok(closed and secs < 1.0, "no endpoints: the client is closed at once (%.3f s)" % secs)
    t.ok(d.wait_log("reason=no endpoints"), "the summary line says there were no endpoints")


def test_pool_bound():
    """Without parking, each open connection holds a thread: the pool bounds them."""
    b = backend(IdBackend, name="b")
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="relay_threads: 4\npark_idle_ms: 0"))
    port = d.port()
    first = [connect(port) for _ in range(4)]
    t.ok(all(read_line(s) == b"b\n" for s in first), "park_idle_ms: 0, relay_threads: 4 serves the first 4 clients")
    extra = [connect(port) for _ in range(4)]  # these sit in the kernel backlog
    t.ok(all(read_line(s, 0.5) == b"" for s in extra), "the next 4 wait while the pool is full")
    cpu0 = d.cpu_seconds()
    time.sleep(1.0)  # a measurement window: the CPU used over 1 s while saturated, not a wait
    used = d.cpu_seconds() - cpu0
    t.ok(used < 0.05, "CPU stays near idle while saturated (%.3f s in 1 s)" % used)
    close_all(first)
    t.ok(all(read_line(s, 5.0) == b"b\n" for s in extra), "the waiting clients are served once earlier ones finish")
    close_all(extra)


def test_max_connections():
    b = backend(IdBackend, name="b")
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], extra_proxy="max_connections: 2",
                             top="relay_threads: 16"))
    port = d.port()
    first = [connect(port) for _ in range(2)]
    t.ok(all(read_line(s) == b"b\n" for s in first), "max_connections: 2 serves two clients")
    third = connect(port)
    t.eq(read_line(third, 0.5), b"", "a third client waits while the proxy is at its limit")
    first[0].close()
    t.eq(read_line(third, 5.0), b"b\n", "... and is served when one of the two ends")
    close_all(first[1:] + [third])

    d2 = daemon(static_config(["127.0.0.1:0"], [b.addr], top="relay_threads: 16",
                              extra_proxy="max_connections: 2\nmax_connections_policy: refuse"))
    port = d2.port()
    held = [connect(port) for _ in range(2)]
    t.ok(all(read_line(s) == b"b\n" for s in held), "policy refuse: two clients are served")
    start = time.monotonic()
    closed, _ = closed_promptly(port, 3.0)
    t.ok(closed and time.monotonic() - start < 1.0, "policy refuse: a third is refused at once")
    t.ok(d2.wait_log("max_connections reached: refusing"), "... with a warning")
    close_all(held)
    time.sleep(0.2)
    s = connect(port)
    t.eq(read_line(s), b"b\n", "below the limit again, new clients are served")
    s.close()


def test_sigterm_drains():
    payload = random_bytes(8 * MiB, seed=5)
    b = backend(EchoBackend, name="echo")
    d = t.daemon(static_config(["127.0.0.1:0"], [b.addr], top="admin:\n  grace_secs: 20"))
    port = d.port()
    s = connect(port, timeout=30)
    transfer = SlowTransfer(s, payload, chunk=256 * 1024)
    time.sleep(0.3)
    d.signal(signal.SIGTERM)
    t.ok(d.wait_log("draining 1 connection"), "SIGTERM with a transfer in flight starts a drain")
    t.ok(refused_at_once(port), "new connections are refused while draining")
    got = transfer.result()
    t.ok(got is not None and sha256(got) == sha256(payload), "the in-flight 8 MiB transfer completes intact")
    t.eq(d.wait(15), 0, "the daemon exits 0 after the drain")
    s.close()


def test_sigterm_grace_expires():
    b = backend(EchoBackend, name="echo")
    d = t.daemon(static_config(["127.0.0.1:0"], [b.addr], top="park_idle_ms: 0\nadmin:\n  grace_secs: 1"))
    s = connect(d.port())
    s.sendall(b"x")
    read_line(s, 0.3)
    start = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait(10)
    secs = time.monotonic() - start
    t.ok(rc == 0 and 0.8 < secs < 4.0, "park_idle_ms: 0: an idle connection is cut after grace_secs=1 (exit %s in %.2f s)" % (rc, secs))
    t.ok("reason=shutdown" in d.log(), "the cut connection's summary says shutdown")
    s.close()


t.run(
    test_payload_each_way,
    test_echo_interleaved,
    test_half_close,
    test_small_then_large_messages,
    test_weighted_split,
    test_preloaded_and_reload,
    test_refusing_endpoint,
    test_no_endpoints,
    test_pool_bound,
    test_max_connections,
    test_sigterm_drains,
    test_sigterm_grace_expires,
)
