"""Faults under load: namerd flapping every 100 ms, a SIGHUP storm, namerd
answers changing while connections are open.  Every payload must arrive
intact and the daemon must stay up."""

import re
import signal
import threading
import time

from ltcptest import *

t = Tap()
KiB = 1 << 10


def load(port, seconds, clients=16, size=64 * KiB):
    """Clients that each run echo exchanges in a loop; returns (ok, bad, errors)."""
    stop = time.monotonic() + seconds
    ok, bad, errors = [0], [0], []
    lock = threading.Lock()

    def client(i):
        payload = random_bytes(size, seed=100 + i)
        while time.monotonic() < stop:
            try:
                reply, err = exchange(port, payload, timeout=20)
            except OSError as e:
                reply, err = b"", e
            with lock:
                if reply == payload and err is None:
                    ok[0] += 1
                else:
                    bad[0] += 1
                    errors.append(repr(err))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(seconds + 30)
    return ok[0], bad[0], errors[:5]


class Repeating:
    """Calls step(i) for i = 0, 1, ... in a thread, one call every `pause` s, for as
    long as the with block runs (also when it raises); count is the number of calls."""

    def __init__(self, step, pause):
        self.step, self.pause, self.count = step, pause, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        while not self._done.is_set():
            self.step(self.count)
            self.count += 1
            self._done.wait(self.pause)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


def test_namerd_flapping():
    a, b = t.backend(EchoBackend, name="a"), t.backend(EchoBackend, name="b")
    n = t.namerd()
    sets = [[("127.0.0.1", a.port)], [("127.0.0.1", a.port), ("127.0.0.1", b.port)],
            [("127.0.0.1", b.port, {"endpoint_addr_weight": 3.0})]]
    n.set_bound("default", "/svc/flap", sets[0])
    d = t.daemon("""proxies:
  - servers: [{addr: "127.0.0.1:0"}]
    namerd: {addr: "127.0.0.1:%d", path: /svc/flap}
""" % n.port)
    with Repeating(lambda i: n.set_bound("default", "/svc/flap", sets[(i + 1) % len(sets)]), 0.1) as flaps:
        ok, bad, errors = load(d.port(), 6)
    t.ok(flaps.count >= 40, "namerd changed the endpoint set %d times, every 100 ms" % flaps.count)
    t.ok(ok > 50 and bad == 0, "under namerd flapping every exchange arrived intact (%d ok, %d bad %s)" % (ok, bad, errors))
    t.ok(d.alive() and a.accepted > 0 and b.accepted > 0, "both endpoints served and the daemon stayed up")


def test_sighup_storm():
    a, b = t.backend(EchoBackend, name="a"), t.backend(EchoBackend, name="b")
    cfgs = [static_config(["127.0.0.1:0"], [a.addr]), static_config(["127.0.0.1:0"], [a.addr, b.addr]),
            static_config(["127.0.0.1:0"], [(b.addr, 2.0)])]
    d = t.daemon(cfgs[0])

    def sighup(i):
        d.write_config(cfgs[i % len(cfgs)])
        d.signal(signal.SIGHUP)

    with Repeating(sighup, 0.05) as storm:
        ok, bad, errors = load(d.port(), 5)
    applied = len(re.findall("reload: configuration applied", d.log()))
    t.ok(storm.count >= 50 and applied >= 10, "%d SIGHUPs sent during load, %d reloads applied" % (storm.count, applied))
    t.ok(ok > 50 and bad == 0, "during the SIGHUP storm every exchange arrived intact (%d ok, %d bad %s)" % (ok, bad, errors))
    t.ok(d.alive(), "the daemon stayed up")
    t.eq(d.stop(), 0, "and stops cleanly afterwards")


t.run(
    test_namerd_flapping,
    test_sighup_storm,
)
