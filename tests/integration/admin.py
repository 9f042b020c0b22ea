"""The admin server: /metrics (checked by promtool, exact counter values),
/ready, /endpoints, POST /shutdown and /reload, wrong methods and paths,
and scrapes that must not disturb the data path."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from fake_namerd import FakeNamerd
from ltcptest import *
from tlsgen import CA

t = Tap()
MiB = 1 << 20


daemon = t.daemon


def http(d, path, method="GET", timeout=10, headers=None):
    """(status, body, headers) of an admin request."""
    req = urllib.request.Request(d.admin_url() + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def status(d, path, method="GET", timeout=10, headers=None):
    """The status of an admin request; None when the connection fails."""
    try:
        return http(d, path, method, timeout, headers)[0]
    except OSError:
        return None


def raw_status(d, request, timeout=5):
    """The status of a request sent as is (to set or leave out Host); None on failure."""
    port = int(d.admin_url().rsplit(":", 1)[1])
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
            s.sendall(request.encode())
            line = read_line(s, timeout)
    except OSError:
        return None
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", line)
    return int(m.group(1)) if m else None


def get_with_host(d, host, path="/metrics"):
    return raw_status(d, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host))


def admin_port(d):
    return int(d.admin_url().rsplit(":", 1)[1])


def metric(text, name, **labels):
    """The value of one sample, or None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == str(v) for k, v in labels.items()):
            return float(m.group(4))
    return None


def test_promtool_and_counts():
    b = EchoBackend()
    t.cleanup(b.close)
    dead = "127.0.0.1:%d" % unused_port()
    d = daemon(static_config(["127.0.0.1:0"], [b.addr, dead], label="web"))
    port = d.port("web")
    sizes = [1000, 20000, 300000, 5]
    for n in sizes:
        reply, err = exchange(port, random_bytes(n, seed=n))
        assert len(reply) == n, (n, len(reply), err)
    wait_until(lambda: len(re.findall("reason=done", d.log())) == len(sizes), 5)
    status, text, headers = http(d, "/metrics")
    t.eq(status, 200, "GET /metrics answers 200")
    t.ok(headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
         "with the Prometheus text content type")
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
        t.ok(p.returncode == 0, "promtool check metrics passes on the live body%s" %
             ("" if p.returncode == 0 else ": " + (p.stdout + p.stderr).decode()[:500]))
    else:
        t.ok(False, "promtool is installed (Debian package prometheus)")
    server = "127.0.0.1:%d" % port
    total = sum(sizes)
    t.eq(metric(text, "linkerd_tcp_accepts_total", proxy="web", server=server), 4.0, "accepts_total counts 4 connections")
    t.eq(metric(text, "linkerd_tcp_received_bytes_total", proxy="web", server=server), float(total),
         "received_bytes_total equals the bytes sent by clients (%d)" % total)
    t.eq(metric(text, "linkerd_tcp_sent_bytes_total", proxy="web", server=server), float(total),
         "sent_bytes_total equals the bytes echoed back")
    t.eq(metric(text, "linkerd_tcp_closes_total", proxy="web", server=server, cause="done"), 4.0,
         "closes_total{cause=done} is 4")
    t.eq(metric(text, "linkerd_tcp_connections_active", proxy="web", server=server), 0.0, "no connection is open")
    ok_eps = metric(text, "linkerd_tcp_endpoint_connects_total", proxy="web", endpoint=b.addr)
    refused = metric(text, "linkerd_tcp_connect_failures_total", proxy="web", endpoint=dead, cause="refused")
    t.eq(ok_eps, 4.0, "the live endpoint's connect counter is 4")
    t.ok(refused is not None and refused >= 1, "the refusing endpoint raises connect_failures_total{cause=refused} (%s)" % refused)
    t.eq(metric(text, "linkerd_tcp_connect_latency_seconds_count", proxy="web"), 4.0, "the connect latency histogram has 4 observations")
    t.eq(metric(text, "linkerd_tcp_connection_duration_seconds_bucket", proxy="web", le="+Inf"), 4.0,
         "the duration histogram's +Inf bucket holds all 4")
    t.eq(metric(text, "linkerd_tcp_build_info", version=re.search(r"linkerd-tcp (\S+) running", d.log()).group(1)), 1.0,
         "build_info carries the version")
    t.ok((metric(text, "linkerd_tcp_process_open_fds") or 0) > 3, "process metrics are present")

    status, _, headers = http(d, "/metrics", method="POST")
    t.ok(status == 405 and headers.get("Allow") == "GET", "POST /metrics: 405 with Allow: GET")
    status, _, _ = http(d, "/shutdown")
    t.eq(status, 405, "GET /shutdown: 405")
    status, _, _ = http(d, "/nothing-here")
    t.eq(status, 404, "an unknown path: 404")


def test_tls_failure_counted():
    ca = CA(tempfile.mkdtemp(prefix="ltcp-admin-ca-"))
    key, crt = ca.issue("admin-tls", ["admin.example.com"])
    b = EchoBackend()
    t.cleanup(b.close)
    cfg = static_config(["127.0.0.1:0"], [b.addr]).replace(
        "      - addr: '127.0.0.1:0'\n",
        "      - addr: '127.0.0.1:0'\n        tls:\n          private_key_path: %s\n          cert_paths: [%s]\n" % (key, crt))
    d = daemon(cfg)
    failed_tls_client(d.port())
    d.wait_log("client TLS handshake failed")
    _, text, _ = http(d, "/metrics")
    t.eq(metric(text, "linkerd_tcp_tls_handshake_failures_total", proxy="proxy0"), 1.0,
         "a failed TLS handshake is counted")
    t.eq(metric(text, "linkerd_tcp_closes_total", proxy="proxy0", cause="client_tls"), 1.0,
         "... and the close cause is client_tls")


def test_ready_and_endpoints():
    n = FakeNamerd().start()
    t.cleanup(n.stop)
    n.hang(True)
    a, b = IdBackend(name="a"), IdBackend(name="b")
    t.cleanup(a.close)
    t.cleanup(b.close)
    d = daemon("""proxies:
  - label: api
    servers: [{addr: "127.0.0.1:0"}]
    namerd: {addr: "127.0.0.1:%d", path: /svc/api, timeout_ms: 500}
""" % n.port)
    status, body, _ = http(d, "/ready")
    t.eq(status, 503, "/ready is 503 before namerd answers")
    n.set_bound("default", "/svc/api", [("127.0.0.1", a.port, {"endpoint_addr_weight": 2.0}),
                                         ("127.0.0.1", b.port)])
    n.hang(False)
    t.ok(wait_until(lambda: http(d, "/ready")[0] == 200, 10), "/ready turns 200 once namerd answers")
    status, body, headers = http(d, "/endpoints")
    doc = json.loads(body)
    api = doc["proxies"][0]
    eps = {e["addr"]: e for e in api["endpoints"]}
    t.ok(status == 200 and headers.get("Content-Type") == "application/json" and api["label"] == "api",
         "/endpoints returns JSON per proxy")
    t.ok(eps.get(a.addr, {}).get("weight") == 2.0 and eps.get(b.addr, {}).get("weight") == 1.0
         and eps[a.addr]["state"] == "active", "/endpoints shows weights 2.0 and 1.0, state active")
    t.ok(api["discovery"]["kind"] == "namerd" and api["discovery"]["answered"] is True and
         "last_update_secs_ago" in api["discovery"], "/endpoints shows the namerd source and its last update")
    n.set_bound("default", "/svc/api", [("127.0.0.1", a.port, {"endpoint_addr_weight": 5.0}),
                                         ("127.0.0.1", b.port)])

    def weight_a():
        e = {x["addr"]: x for x in json.loads(http(d, "/endpoints")[1])["proxies"][0]["endpoints"]}
        return e.get(a.addr, {}).get("weight") == 5.0

    t.ok(wait_until(weight_a, 5), "/endpoints reflects a weight change from namerd")
    held = connect(d.port("api"))
    read_line(held)
    e = json.loads(http(d, "/endpoints")[1])["proxies"][0]["endpoints"]
    t.eq(sum(x["active"] for x in e), 1, "/endpoints counts the open connection")
    held.close()


def test_admin_reload_and_shutdown():
    a, b = IdBackend(name="a"), IdBackend(name="b")
    t.cleanup(a.close)
    t.cleanup(b.close)
    d = Daemon(static_config(["127.0.0.1:0"], [a.addr], top="admin:\n  grace_secs: 20")).wait_ready()
    port = d.port()
    s = connect(port)
    t.eq(read_line(s), b"a\n", "before: served by a")
    s.close()
    d.write_config(static_config(["127.0.0.1:0"], [b.addr], top="admin:\n  grace_secs: 20"))
    status, body, _ = http(d, "/reload", method="POST")
    t.ok(status == 200 and "reloaded" in body, "POST /reload answers 200 once the reload is applied")
    s = connect(port)
    t.eq(read_line(s), b"b\n", "POST /reload applied the new endpoint list")
    s.close()
    d.write_config("proxies: [\n")
    status, body, _ = http(d, "/reload", method="POST")
    t.ok(status == 500 and "reload failed" in body, "POST /reload with a broken file: 500, old config kept")
    _, text, _ = http(d, "/metrics")
    t.ok(metric(text, "linkerd_tcp_config_reloads_total", result="ok") == 1.0 and
         metric(text, "linkerd_tcp_config_reloads_total", result="failed") == 1.0, "reloads are counted by result")

    payload = random_bytes(4 * MiB, seed=31)
    s = connect(port, timeout=30)
    read_line(s)
    transfer = SlowTransfer(s, payload)
    time.sleep(0.2)
    status, body, _ = http(d, "/shutdown", method="POST")
    t.eq(status, 202, "POST /shutdown answers 202")
    status, body, _ = http(d, "/ready")
    t.ok(status == 503 and "shutting down" in body,
         "right after POST /shutdown, /ready answers 503 while the drain runs (%s %r)" % (status, body))
    time.sleep(0.2)
    t.ok(refused_at_once(port), "after POST /shutdown new connections are refused at once")
    t.ok(transfer.result() == payload, "the transfer in flight finishes intact")
    t.eq(d.wait(20), 0, "the process exits 0 after the drain")
    s.close()


def test_scrapes_do_not_disturb():
    b = EchoBackend()
    t.cleanup(b.close)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="relay_threads: 128"))
    port = d.port()
    payload = random_bytes(2 * MiB, seed=41)
    results = []

    def client():
        reply, err = exchange(port, payload, timeout=60)
        results.append(reply == payload and err is None)

    threads = [threading.Thread(target=client) for _ in range(50)]
    for th in threads:
        th.start()
    scrapes = bad = 0
    url = d.admin_url() + "/metrics"
    start = time.monotonic()
    while scrapes < 1000 and time.monotonic() - start < 60:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status != 200 or b"linkerd_tcp_accepts_total" not in r.read():
                    bad += 1
        except OSError:
            bad += 1
        scrapes += 1
    for th in threads:
        th.join(60)
    t.ok(scrapes == 1000 and bad == 0, "1,000 scrapes of /metrics all answered (%d scrapes, %d bad)" % (scrapes, bad))
    t.ok(len(results) == 50 and all(results), "... while 50 connections moved 2 MiB each way, all intact (%d/50)" % sum(results))
    t.ok(d.wait_log("reason=done", count=50), "no connection was dropped")


def test_access_log():
    b = EchoBackend()
    t.cleanup(b.close)
    tmp = tempfile.mkdtemp(prefix="ltcp-access-")
    path = os.path.join(tmp, "access.log")
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="access_log: %s" % path))
    reply, _ = exchange(d.port(), b"x" * 1234)
    wait_until(lambda: os.path.exists(path) and "reason=done" in open(path).read(), 5)
    with open(path) as f:
        text = f.read()
    t.ok(re.search(r"conn 1 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ proxy0 endpoint=%s from_client=1234 "
                   r"to_client=1234 duration=\S+ parks=\d+ reason=done" % re.escape(b.addr), text),
         "access_log: the connection line is written to the file")
    t.ok("from_client=1234" not in d.log(), "... and not to the main log")
    os.rename(path, path + ".1")
    d.reload()
    exchange(d.port(), b"y" * 10)
    t.ok(wait_until(lambda: os.path.exists(path) and "from_client=10 " in open(path).read(), 5),
         "after rotation and SIGHUP new lines go to a fresh file")
    with open(path + ".1") as f:
        t.ok("from_client=10 " not in f.read(), "... not to the rotated one")


EXPOSED = "is not a loopback address and admin.token is not set"


def test_host_header():
    b = t.backend(EchoBackend)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr]))
    port = admin_port(d)
    for host in ["evil.example", "evil.example:%d" % port, "127.0.0.1.evil.example:%d" % port,
                 "localhost.evil.example", "[::1", "[evil.example]:%d" % port, "127.0.0.1:99999", ""]:
        t.eq(get_with_host(d, host), 421, "GET /metrics with Host %r: 421" % host)
    t.eq(raw_status(d, "POST /shutdown HTTP/1.1\r\nHost: evil.example:%d\r\nContent-Length: 0\r\n"
                       "Connection: close\r\n\r\n" % port), 421, "POST /shutdown with a foreign Host: 421")
    t.ok(d.alive() and status(d, "/ready") == 200, "... and the daemon keeps running")
    for host in ["127.0.0.1:%d" % port, "127.0.0.1", "localhost:%d" % port, "LocalHost",
                 "[::1]:%d" % port, "[::1]", "10.1.2.3:%d" % port]:
        t.eq(get_with_host(d, host), 200, "GET /metrics with Host %r: 200" % host)
    t.eq(raw_status(d, "GET /metrics HTTP/1.0\r\n\r\n"), 200, "HTTP/1.0 without Host: 200")
    t.ok(EXPOSED not in d.log(), "no warning about exposure on 127.0.0.1")


def test_cross_site():
    a, b = t.backend(IdBackend, name="a"), t.backend(IdBackend, name="b")
    d = daemon(static_config(["127.0.0.1:0"], [a.addr]))
    port, aport = d.port(), admin_port(d)
    evil = {"Origin": "http://evil.example"}
    t.eq(status(d, "/shutdown", "POST", headers=evil), 403, "POST /shutdown with Origin http://evil.example: 403")
    t.ok(d.alive() and first_line(port) == b"a" and status(d, "/ready") == 200,
         "... and the daemon is still alive and serving")
    for method in ["PUT", "DELETE", "PATCH"]:
        t.eq(status(d, "/shutdown", method, headers=evil), 403, "%s with a foreign Origin: 403" % method)
    for hdrs in [{"Origin": "null"}, {"Origin": "https://127.0.0.1:%d" % aport},
                 {"Origin": "http://127.0.0.1:%d.evil.example" % aport},
                 {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                 {"Origin": "http://127.0.0.1:%d" % aport, "Sec-Fetch-Site": "cross-site"}]:
        t.eq(status(d, "/reload", "POST", headers=hdrs), 403, "POST /reload with %r: 403" % hdrs)
    t.ok("reload requested" not in d.log() and d.alive(), "no refused request reached a reload or a shutdown")
    t.eq(status(d, "/metrics", headers=evil), 200, "GET /metrics with a foreign Origin is still served")

    d.write_config(static_config(["127.0.0.1:0"], [b.addr]))
    t.eq(status(d, "/reload", "POST", headers={"Origin": "http://127.0.0.1:%d" % aport}), 200,
         "POST /reload with the admin's own Origin: 200")
    t.eq(first_line(port), b"b", "... and the reload took effect")
    same = {"Host": "localhost:%d" % aport, "Origin": "http://localhost:%d" % aport, "Sec-Fetch-Site": "same-origin"}
    t.eq(status(d, "/reload", "POST", headers=same), 200, "POST /reload from http://localhost:port, same-origin: 200")
    t.eq(status(d, "/reload", "POST", headers={"Sec-Fetch-Site": "none"}), 200,
         "POST /reload with Sec-Fetch-Site: none (typed by the user): 200")
    t.eq(status(d, "/shutdown", "POST", headers={"Origin": "http://127.0.0.1:%d" % aport}), 202,
         "POST /shutdown with the admin's own Origin: 202")
    t.eq(d.wait(15), 0, "... and the daemon exits 0")


def test_token():
    b = t.backend(EchoBackend)
    cfg = static_config(["127.0.0.1:0"], [b.addr], top="admin:\n  token: 'tok-3x4mpl3'")
    d = daemon(cfg)
    good = {"Authorization": "Bearer tok-3x4mpl3"}
    status_, _, headers = http(d, "/metrics")
    t.ok(status_ == 401 and headers.get("WWW-Authenticate") == "Bearer",
         "GET /metrics without the token: 401 with WWW-Authenticate: Bearer (%s %r)" % (status_, headers.get("WWW-Authenticate")))
    for auth in ["Bearer wrong", "Bearer tok-3x4mpl", "Bearer tok-3x4mpl3x", "Bearer ", "Basic dG9rLTN4NG1wbDM=", "tok-3x4mpl3"]:
        t.eq(status(d, "/metrics", headers={"Authorization": auth}), 401, "GET /metrics with Authorization %r: 401" % auth)
    t.eq(status(d, "/metrics", headers=good), 200, "GET /metrics with the token: 200")
    t.eq(status(d, "/metrics", headers={"Authorization": "bearer tok-3x4mpl3"}), 200, "... the scheme in any case")
    t.eq(status(d, "/endpoints"), 401, "GET /endpoints without the token: 401")
    t.eq(status(d, "/nothing-here"), 401, "an unknown path without the token: 401")
    t.eq(status(d, "/ready"), 200, "GET /ready needs no token")
    t.eq(status(d, "/reload", "POST"), 401, "POST /reload without the token: 401")
    t.eq(status(d, "/reload", "POST", headers={"Authorization": "Bearer wrong"}), 401, "POST /reload with a wrong token: 401")
    t.eq(status(d, "/shutdown", "POST"), 401, "POST /shutdown without the token: 401")
    t.ok(d.alive() and "reload requested" not in d.log(), "... none of them reached a reload or a shutdown")
    t.eq(status(d, "/reload", "POST", headers=good), 200, "POST /reload with the token: 200")
    d.reload(static_config(["127.0.0.1:0"], [b.addr], top="admin:\n  token: 'n3w-t0ken'"))
    t.ok(d.wait_log("admin: admin.token changed"), "a reload changes the token")
    t.eq(status(d, "/metrics", headers=good), 401, "... the old one is refused")
    t.eq(status(d, "/metrics", headers={"Authorization": "Bearer n3w-t0ken"}), 200, "... the new one accepted")
    d.reload(static_config(["127.0.0.1:0"], [b.addr]))
    t.ok(d.wait_log("admin: admin.token removed") and status(d, "/metrics") == 200,
         "a reload without the token opens the admin server again")
    t.ok(EXPOSED not in d.log(), "... without the warning, on loopback")


def test_exposed_warning():
    b = t.backend(EchoBackend)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="admin:\n  addr: 0.0.0.0:0"))
    t.ok(d.wait_log(r"admin: 0\.0\.0\.0:\d+ " + EXPOSED), "admin on 0.0.0.0 without a token logs a warning at startup")
    t.eq(status(d, "/ready"), 200, "... and serves (Host 0.0.0.0:port is an IP address)")
    top = "admin:\n  addr: 0.0.0.0:0\n  token: 's3cr3t'"
    d2 = daemon(static_config(["127.0.0.1:0"], [b.addr], top=top))
    d3 = daemon(static_config(["127.0.0.1:0"], [b.addr], top="admin:\n  addr: 127.0.0.2:0"))
    t.ok(EXPOSED not in d2.log(), "admin on 0.0.0.0 with a token: no warning")
    t.ok(EXPOSED not in d3.log(), "admin on 127.0.0.2 (loopback) without a token: no warning")
    d2.reload(static_config(["127.0.0.1:0"], [b.addr], top="admin:\n  addr: 0.0.0.0:0"))
    t.ok(d2.wait_log(EXPOSED), "a reload that removes the token logs the warning")


def test_reload_burst_leaves_ready():
    a, b = t.backend(IdBackend, name="a"), t.backend(IdBackend, name="b")
    d = daemon(static_config(["127.0.0.1:0"], [a.addr]))
    port = d.port()
    # The next reload blocks reading its file, a FIFO, until the test writes it.
    fifo = d.path + ".fifo"
    os.mkfifo(fifo)
    os.replace(fifo, d.path)
    results = []
    lock = threading.Lock()

    def reload():
        try:
            r = http(d, "/reload", "POST", timeout=40)[:2]
        except OSError as e:
            r = (None, repr(e))
        with lock:
            results.append(r)

    threads = [threading.Thread(target=reload) for _ in range(16)]
    for th in threads:
        th.start()
    t.ok(d.wait_log("admin: reload requested", count=16, timeout=10) and d.wait_log("reload: reading"),
         "16 concurrent POST /reload wait on a reload stuck reading its file")
    start = time.monotonic()
    ready = status(d, "/ready", timeout=5)
    took = time.monotonic() - start
    t.ok(ready == 200 and took < 2, "... while GET /ready answers 200 at once (%s in %.2f s)" % (ready, took))
    t.eq(status(d, "/metrics", timeout=5), 200, "... and GET /metrics too")
    s17, body, headers = http(d, "/reload", "POST", timeout=5) if ready else (None, "", {})
    t.ok(s17 == 503 and headers.get("Retry-After") == "1",
         "a 17th concurrent POST /reload: 503 with Retry-After at once (%s %r)" % (s17, body))
    text = static_config(["127.0.0.1:0"], [b.addr])
    fd = os.open(d.path, os.O_WRONLY)  # the reload has it open for reading
    d.write_config(text)  # a regular file again for the reload that follows
    os.write(fd, Daemon.with_small_pool(Daemon.with_admin_port(text)).encode())
    os.close(fd)
    for th in threads:
        th.join(40)
    t.ok(len(results) == 16 and all(r == (200, "reloaded\n") for r in results),
         "all 16 answer 200 once the reload is done (%r)" % sorted(set(map(str, results))))
    t.eq(first_line(port), b"b", "the new endpoint is in use")
    reloads = len(re.findall("reload: reading", d.log()))
    joined = len(re.findall(r"reload requested \(joins", d.log()))
    t.ok(reloads <= 2 and joined >= 14,
         "the 16 requests shared reloads: %d reload(s) ran, %d request(s) joined one asked for" % (reloads, joined))


def test_ready_during_drain():
    b = t.backend(EchoBackend)
    d = daemon(static_config(["127.0.0.1:0"], [b.addr], top="admin:\n  grace_secs: 30"))
    port = d.port()
    s = connect(port)
    s.sendall(b"ping")
    t.eq(s.recv(4), b"ping", "a connection is open")
    t.eq(status(d, "/ready"), 200, "/ready is 200 before SIGTERM")
    d.signal(signal.SIGTERM)
    t.ok(wait_until(lambda: status(d, "/ready") == 503, 5), "/ready answers 503 right after SIGTERM")
    t.ok(d.alive() and d.wait_log("draining 1 connection"), "... while the process drains the open connection")
    s.sendall(b"pong")
    t.eq(s.recv(4), b"pong", "... which still relays")
    t.ok(refused_at_once(port), "new connections are refused")
    st, body, _ = http(d, "/reload", "POST")
    t.ok(st == 503 and "shutting down" in body, "POST /reload during the drain: 503 at once (%s %r)" % (st, body))
    t.ok(d.alive() and status(d, "/ready") == 503, "the admin server keeps answering during the drain")
    s.close()
    t.eq(d.wait(15), 0, "the process exits 0 once the connection ends")


t.run(
    test_host_header,
    test_cross_site,
    test_token,
    test_exposed_warning,
    test_reload_burst_leaves_ready,
    test_ready_during_drain,
    test_promtool_and_counts,
    test_tls_failure_counted,
    test_ready_and_endpoints,
    test_admin_reload_and_shutdown,
    test_scrapes_do_not_disturb,
    test_access_log,
)
