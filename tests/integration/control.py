"""The runtime control API (SPEC §13): weight and drain overrides per endpoint address,
applied to the next pick, kept across discovery changes and SIGHUP until DELETE; bad input
answered 400 and unknown names 404, with JSON errors; the admin's safety rules apply."""

import json
import urllib.parse

from ltcptest import *

t = Tap()

daemon = t.daemon


def api_path(label, addr):
    return "/api/v1/proxies/%s/endpoints/%s" % (label, urllib.parse.quote(addr, safe=""))


def put(d, label, addr, body, headers=None):
    code, text = d.admin(api_path(label, addr), "PUT", body, headers)
    return code, json.loads(text) if text.startswith("{") else text


def endpoint(d, addr, label="web"):
    for p in d.admin_json()["proxies"]:
        if p["label"] == label:
            for e in p["endpoints"]:
                if e["addr"] == addr:
                    return e
    return None


def hold(port, n):
    """n connections held open through the proxy; returns (sockets, {backend: count})."""
    socks, count = [], {}
    for _ in range(n):
        s = connect(port)
        name = read_line(s).strip().decode()
        count[name] = count.get(name, 0) + 1
        socks.append(s)
    return socks, count


def close_all(socks):
    for s in socks:
        s.close()


def two_backends(weights=(1, 1)):
    a, b = t.backend(IdBackend, name="a"), t.backend(IdBackend, name="b")
    cfg = static_config(["127.0.0.1:0"], [(a.addr, weights[0]), (b.addr, weights[1])], label="web",
                        top="relay_threads: 256")  # every held connection holds a relay thread
    return a, b, cfg


def test_weights_split_and_reset():
    a, b, cfg = two_backends()
    d = daemon(cfg)
    code, ans = put(d, "web", a.addr, {"weight": 3})
    t.ok(code == 200 and ans["override"] == {"weight": 3.0}, "PUT weight 3: 200 with the override (%s)" % ans)
    e = endpoint(d, a.addr)
    t.ok(e["weight"] == 3.0 and e["configured_weight"] == 1.0 and e["override"] == {"weight": 3.0},
         "/endpoints: weight in force 3, configured 1, the override")
    socks, count = hold(d.port("web"), 200)
    t.eq(count, {"a": 150, "b": 50}, "weights 3:1 in force: 200 held connections split 150:50")
    close_all(socks)
    t.ok(wait_until(lambda: endpoint(d, a.addr)["active"] == 0 and endpoint(d, b.addr)["active"] == 0, 5),
         "... all closed")
    code, ans = d.admin(api_path("web", a.addr), "DELETE")
    t.ok(code == 200 and json.loads(ans)["override"] is None, "DELETE: 200, no override")
    t.ok(endpoint(d, a.addr)["weight"] == 1.0 and endpoint(d, a.addr)["override"] is None,
         "/endpoints: the configured weight is in force again")
    socks, count = hold(d.port("web"), 100)
    t.eq(count, {"a": 50, "b": 50}, "after DELETE: 100 held connections split 50:50")
    close_all(socks)
    code, _ = d.admin(api_path("web", a.addr), "DELETE")
    t.eq(code, 404, "DELETE again: 404, there is no override")


def test_drain_keeps_open_connections():
    a, b, cfg = two_backends()
    d = daemon(cfg)
    port = d.port("web")
    socks, count = hold(port, 10)
    t.eq(count, {"a": 5, "b": 5}, "10 held connections, 5 on each")
    code, ans = put(d, "web", b.addr, {"drain": True})
    t.ok(code == 200 and ans["override"] == {"drain": True}, "PUT drain true: 200")
    t.eq(endpoint(d, b.addr)["state"], "draining", "/endpoints: state draining")
    more, count = hold(port, 10)
    t.eq(count, {"a": 10}, "a drained endpoint gets no new connection (10 of 10 on a)")
    alive = 0
    for s in socks:
        s.sendall(b"still\n")
        alive += read_line(s) == b"still\n"
    t.eq(alive, 10, "the 10 connections opened before the drain keep working, on both endpoints")
    t.eq(endpoint(d, b.addr)["active"], 5, "... 5 of them still on the drained endpoint")
    code, ans = put(d, "web", b.addr, {"drain": False})
    t.ok(code == 200 and endpoint(d, b.addr)["state"] == "active", "PUT drain false: active again")
    close_all(socks + more)


def test_overrides_outlive_reload_and_discovery():
    a, b, cfg = two_backends()
    d = daemon(cfg)
    code, _ = put(d, "web", a.addr, {"weight": 3, "drain": False})
    t.eq(code, 200, "PUT weight 3 on a")
    code, _ = put(d, "web", b.addr, {"drain": True})
    d.reload()
    t.ok(endpoint(d, a.addr)["override"] == {"weight": 3.0, "drain": False} and
         endpoint(d, b.addr)["state"] == "draining", "SIGHUP keeps both overrides")
    socks, count = hold(d.port("web"), 8)
    t.eq(count, {"a": 8}, "... and they are in force after it")
    close_all(socks)
    # Closed, not busy: a removed endpoint with open connections would stay as "removed".
    t.ok(wait_until(lambda: endpoint(d, a.addr)["active"] == 0, 5), "... all 8 closed")
    only_b = static_config(["127.0.0.1:0"], [(b.addr, 1)], label="web", top="relay_threads: 256")
    d.reload(only_b)
    ovr = {o["addr"]: o for o in d.admin_json()["proxies"][0]["overrides"]}
    t.ok(endpoint(d, a.addr) is None and ovr[a.addr]["endpoint_present"] is False and ovr[a.addr]["weight"] == 3.0,
         "an endpoint that discovery removes keeps its override, shown as not present")
    d.reload(cfg)
    t.ok(endpoint(d, a.addr)["weight"] == 3.0 and endpoint(d, a.addr)["override"]["weight"] == 3.0,
         "... which applies again when the endpoint comes back")


def test_bad_requests():
    a, b, cfg = two_backends()
    d = daemon(cfg)
    cases = [
        ({"weight": -1}, "a negative weight"),
        ('{"weight": NaN}', "NaN"),
        ('{"weight": 1e999}', "an infinite weight"),
        ({"weight": "3"}, "a weight that is a string"),
        ({"drain": "yes"}, "a drain that is not a boolean"),
        ({"weight": 1, "colour": "red"}, "an unknown field"),
        ({}, "an empty object"),
        ([1], "a list"),
        ("weight=3", "text that is not JSON"),
        ('{"weight": 1} {"weight": 2}', "two JSON values"),
        ("", "no body"),
    ]
    for body, what in cases:
        code, ans = put(d, "web", a.addr, body)
        t.ok(code == 400 and isinstance(ans, dict) and ans.get("error"), "%s: 400 with a JSON error (%s)" % (what, ans))
    code, ans = put(d, "web", a.addr, "x" * 5000)
    t.eq(code, 413, "a body over 4 KiB: 413")
    code, ans = put(d, "nope", a.addr, {"weight": 1})
    t.ok(code == 404 and "nope" in ans["error"], "an unknown proxy: 404 (%s)" % ans)
    code, ans = put(d, "web", "127.0.0.1:9", {"weight": 1})
    t.ok(code == 404 and "127.0.0.1:9" in ans["error"], "an unknown endpoint: 404 (%s)" % ans)
    code, ans = put(d, "web", "not-an-address", {"weight": 1})
    t.eq(code, 400, "an address that is not ip:port: 400")
    code, _ = d.admin("/api/v1/proxies/web/endpoints/", "PUT", {"weight": 1})
    t.eq(code, 400, "no address: 400")
    code, _ = d.admin(api_path("web", a.addr), "GET")
    t.eq(code, 405, "GET on the API path: 405")
    t.ok(endpoint(d, a.addr)["override"] is None, "nothing was changed by the bad requests")
    code, _ = put(d, "web", "[::1]:%d" % b.port, {"weight": 1})
    t.eq(code, 404, "an IPv6 address that is not an endpoint: 404")


def test_safety_rules_apply():
    a, b, cfg = two_backends()
    d = daemon(cfg.replace("proxies:", "admin:\n  token: s3cret\nproxies:", 1))
    code, _ = put(d, "web", a.addr, {"weight": 2})
    t.eq(code, 401, "with admin.token: PUT without it is 401")
    auth = {"Authorization": "Bearer s3cret"}
    code, _ = put(d, "web", a.addr, {"weight": 2}, dict(auth, Origin="http://evil.example"))
    t.eq(code, 403, "a cross-site PUT is 403 even with the token")
    code, ans = put(d, "web", a.addr, {"weight": 2}, auth)
    t.eq(code, 200, "with the token: 200")
    t.ok(d.wait_log(r"admin: web: endpoint %s: override \{\"weight\":2" % re.escape(a.addr)),
         "the change is logged")


t.run(
    test_weights_split_and_reset,
    test_drain_keeps_open_connections,
    test_overrides_outlive_reload_and_discovery,
    test_bad_requests,
    test_safety_rules_apply,
)
