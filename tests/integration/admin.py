"""The admin server: /metrics (checked by promtool, exact counter values),
/ready, /endpoints, POST /shutdown and /reload, wrong methods and paths,
and scrapes that must not disturb the data path."""

import json
import os
import re
import shutil
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


def http(d, path, method="GET", timeout=10):
    """(status, body) of an admin request."""
    req = urllib.request.Request(d.admin_url() + path, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


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
    s = connect(d.port())
    s.sendall(b"this is not a TLS ClientHello\r\n\r\n")
    try:
        recv_all(s, 5)
    except OSError:
        pass
    s.close()
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
                   r"to_client=1234 duration=\S+ reason=done" % re.escape(b.addr), text),
         "access_log: the connection line is written to the file")
    t.ok("from_client=1234" not in d.log(), "... and not to the main log")
    os.rename(path, path + ".1")
    d.reload()
    exchange(d.port(), b"y" * 10)
    t.ok(wait_until(lambda: os.path.exists(path) and "from_client=10 " in open(path).read(), 5),
         "after rotation and SIGHUP new lines go to a fresh file")
    with open(path + ".1") as f:
        t.ok("from_client=10 " not in f.read(), "... not to the rotated one")



t.run(
    test_promtool_and_counts,
    test_tls_failure_counted,
    test_ready_and_endpoints,
    test_admin_reload_and_shutdown,
    test_scrapes_do_not_disturb,
    test_access_log,
)
