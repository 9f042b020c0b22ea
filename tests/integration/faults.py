"""Faults under load: namerd flapping every 100 ms, a SIGHUP storm, namerd
answers changing while connections are open.  Every payload must arrive
intact and the daemon must stay up."""

import re
import signal
import threading
import time

from fake_namerd import FakeNamerd
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


def test_namerd_flapping():
    a, b = EchoBackend(name="a"), EchoBackend(name="b")
    t.cleanup(a.close)
    t.cleanup(b.close)
    n = FakeNamerd().start()
    t.cleanup(n.stop)
    sets = [[("127.0.0.1", a.port)], [("127.0.0.1", a.port), ("127.0.0.1", b.port)],
            [("127.0.0.1", b.port, {"endpoint_addr_weight": 3.0})]]
    n.set_bound("default", "/svc/flap", sets[0])
    d = Daemon("""proxies:
  - servers: [{addr: "127.0.0.1:0"}]
    namerd: {addr: "127.0.0.1:%d", path: /svc/flap}
""" % n.port).wait_ready()
    t.cleanup(d.stop)
    flips = [0]
    done = threading.Event()

    def flapper():
        while not done.is_set():
            flips[0] += 1
            n.set_bound("default", "/svc/flap", sets[flips[0] % len(sets)])
            time.sleep(0.1)

    f = threading.Thread(target=flapper)
    f.start()
    ok, bad, errors = load(d.port(), 6)
    done.set()
    f.join()
    t.ok(flips[0] >= 40, "namerd changed the endpoint set %d times, every 100 ms" % flips[0])
    t.ok(ok > 50 and bad == 0, "under namerd flapping every exchange arrived intact (%d ok, %d bad %s)" % (ok, bad, errors))
    t.ok(d.alive() and a.accepted > 0 and b.accepted > 0, "both endpoints served and the daemon stayed up")


def test_sighup_storm():
    a, b = EchoBackend(name="a"), EchoBackend(name="b")
    t.cleanup(a.close)
    t.cleanup(b.close)
    cfgs = [static_config(["127.0.0.1:0"], [a.addr]), static_config(["127.0.0.1:0"], [a.addr, b.addr]),
            static_config(["127.0.0.1:0"], [(b.addr, 2.0)])]
    d = Daemon(cfgs[0]).wait_ready()
    t.cleanup(d.stop)
    done = threading.Event()
    sent = [0]

    def storm():
        while not done.is_set():
            d.write_config(cfgs[sent[0] % len(cfgs)])
            d.signal(signal.SIGHUP)
            sent[0] += 1
            time.sleep(0.05)

    s = threading.Thread(target=storm)
    s.start()
    ok, bad, errors = load(d.port(), 5)
    done.set()
    s.join()
    applied = len(re.findall("reload: configuration applied", d.log()))
    t.ok(sent[0] >= 50 and applied >= 10, "%d SIGHUPs sent during load, %d reloads applied" % (sent[0], applied))
    t.ok(ok > 50 and bad == 0, "during the SIGHUP storm every exchange arrived intact (%d ok, %d bad %s)" % (ok, bad, errors))
    t.ok(d.alive(), "the daemon stayed up")
    t.eq(d.stop(), 0, "and stops cleanly afterwards")



t.run(
    test_namerd_flapping,
    test_sighup_storm,
)
