"""The Grafana dashboard and the Prometheus alerting rules shipped in
packaging/: promtool check rules is clean; every metric they name is a
family of a real /metrics scrape (of a daemon with a namerd proxy, a static
TLS proxy and a failing endpoint), with the labels and label values they
select on; the dashboard is well-formed JSON whose every panel has a query
that promtool parses; each alert fires on its symptom and stays quiet on a
healthy daemon (promtool test rules on series shaped like the scrape)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request

from ltcptest import *
from tlsgen import CA

t = Tap()
DASHBOARD = os.path.join(SRCDIR, "packaging", "grafana-dashboard.json")
RULES = os.path.join(SRCDIR, "packaging", "linkerd-tcp-alerts.yml")
PROMTOOL = shutil.which("promtool")
TMP = tempfile.mkdtemp(prefix="ltcp-dashboards-")
t.cleanup(lambda: shutil.rmtree(TMP, ignore_errors=True))
NAME = re.compile(r"\blinkerd_tcp_[a-z0-9_]+\b")
# Labels that the scrape adds, and the histogram bucket bound.
TARGET_LABELS = {"instance", "job"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# SPEC section 8's list, which the dashboard must show.
REQUIRED_FAMILIES = [
    "linkerd_tcp_accepts_total", "linkerd_tcp_connections_active", "linkerd_tcp_received_bytes_total",
    "linkerd_tcp_sent_bytes_total", "linkerd_tcp_connect_latency_seconds", "linkerd_tcp_connection_duration_seconds",
    "linkerd_tcp_connect_failures_total", "linkerd_tcp_closes_total", "linkerd_tcp_endpoints",
    "linkerd_tcp_namerd_requests_total", "linkerd_tcp_tls_handshake_failures_total", "linkerd_tcp_relay_threads",
    "linkerd_tcp_config_reloads_total",
]


def read(path):
    with open(path) as f:
        return f.read()


def promtool(*args):
    p = subprocess.run([PROMTOOL, *args], capture_output=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def no_promtool(what):
    t.ok(True, "%s # SKIP promtool is not installed (Debian package prometheus)" % what)


# ------------------------------------------------------------------ the rules file
# A reader for the YAML that the rules file uses (block mappings and
# sequences, plain, quoted and block scalars), as PyYAML is not a build
# dependency.  The number of rules it finds is checked against promtool's.

def _scalar(text):
    text = text.strip()
    if text[:1] == "'" and text[-1:] == "'" and len(text) > 1:
        return text[1:-1].replace("''", "'")
    if text[:1] == '"' and text[-1:] == '"' and len(text) > 1:
        return json.loads(text)
    if text[:1] in "{[&*!|>":
        raise ValueError("unsupported YAML scalar: %r" % text)
    return re.sub(r"\s+#.*$", "", text)


def parse_yaml(text):
    lines = []
    for raw in text.splitlines():
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError("a tab in the indentation: %r" % raw)
        lines.append(raw)
    pos = [0]

    def skip_blank():
        while pos[0] < len(lines) and (not lines[pos[0]].strip() or lines[pos[0]].lstrip().startswith("#")):
            pos[0] += 1

    def indent(line):
        return len(line) - len(line.lstrip(" "))

    def block_scalar(style, parent_indent):
        out = []
        while pos[0] < len(lines) and (not lines[pos[0]].strip() or indent(lines[pos[0]]) > parent_indent):
            out.append(lines[pos[0]].strip())
            pos[0] += 1
        while out and not out[-1]:
            out.pop()
        if style.startswith(">"):
            return " ".join(l for l in out if l)
        return "\n".join(out)

    def value(rest, ind):
        rest = rest.strip()
        if rest in (">", ">-", "|", "|-"):
            return block_scalar(rest, ind)
        if rest:
            return _scalar(rest)
        skip_blank()
        if pos[0] < len(lines) and indent(lines[pos[0]]) > ind:
            return node(indent(lines[pos[0]]))
        if pos[0] < len(lines) and indent(lines[pos[0]]) == ind and lines[pos[0]].lstrip().startswith("- "):
            return node(ind)
        return None

    def mapping_entry(body, ind, out):
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*):(?:\s+(.*))?$", body)
        if not m:
            raise ValueError("line %d: not a mapping entry: %r" % (pos[0], body))
        out[m.group(1)] = value(m.group(2) or "", ind)

    def node(ind):
        skip_blank()
        if lines[pos[0]].lstrip().startswith("- "):
            seq = []
            while True:
                skip_blank()
                if pos[0] >= len(lines) or indent(lines[pos[0]]) != ind or not lines[pos[0]].lstrip().startswith("- "):
                    return seq
                body = lines[pos[0]].strip()[2:]
                item_ind = ind + 2
                pos[0] += 1
                if re.match(r"[A-Za-z_][A-Za-z0-9_]*:(\s|$)", body):
                    item = {}
                    pos[0] -= 1
                    lines[pos[0]] = " " * item_ind + body
                    while True:
                        skip_blank()
                        if pos[0] >= len(lines) or indent(lines[pos[0]]) != item_ind:
                            break
                        line = lines[pos[0]].strip()
                        pos[0] += 1
                        mapping_entry(line, item_ind, item)
                    seq.append(item)
                else:
                    seq.append(_scalar(body))
        out = {}
        while True:
            skip_blank()
            if pos[0] >= len(lines) or indent(lines[pos[0]]) != ind:
                return out
            line = lines[pos[0]].strip()
            pos[0] += 1
            mapping_entry(line, ind, out)

    doc = node(0)
    skip_blank()
    if pos[0] != len(lines):
        raise ValueError("line %d: unexpected indentation" % (pos[0] + 1))
    return doc


def rules_of(doc):
    return [r for g in doc["groups"] for r in g["rules"]]


def without_annotations(text):
    """The rules file less its annotations: promtool test rules compares them too."""
    out, skip = [], None
    for line in text.splitlines():
        ind = len(line) - len(line.lstrip(" "))
        if skip is not None and (not line.strip() or ind > skip):
            continue
        skip = None
        if line.strip() == "annotations:":
            skip = ind
            continue
        out.append(line)
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ the dashboard

def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def dashboard_queries(dash):
    """(where, PromQL expression, legend) of every query in the dashboard."""
    out = []
    for p in walk_panels(dash.get("panels", [])):
        for tg in p.get("targets", []):
            out.append(("panel %r target %s" % (p.get("title"), tg.get("refId")), tg.get("expr", ""),
                        tg.get("legendFormat", "")))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else q or ""
            m = re.match(r"\s*label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)\s*$", q)
            out.append(("variable %s" % v.get("name"), m.group(1) if m else q, "{{%s}}" % m.group(2) if m else ""))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append(("annotation %r" % a.get("name"), a["expr"], a.get("titleFormat", "")))
    return out


def grafana_to_promql(expr):
    """The expression with Grafana's variables replaced by what they stand for."""
    expr = re.sub(r"\$__(rate_)?interval\b|\$\{__(rate_)?interval\}", "5m", expr)
    return re.sub(r"\$\{?[a-zA-Z_]\w*\}?", ".*", expr)


# ------------------------------------------------------------------ the scrape

def parse_scrape(text):
    """{family: type}, {sample name: [label dicts]}."""
    types, samples = {}, {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)$", line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            samples.setdefault(m.group(1), []).append(labels)
    return types, samples


def check_names(expr, types, samples):
    """Problems with the metric names and label matchers of one expression,
    against a scrape; [] when every one exists."""
    problems = []
    union = set(TARGET_LABELS)
    for m in re.finditer(r"\b(linkerd_tcp_[a-z0-9_]+)\s*(\{[^}]*\})?", expr):
        name, matchers = m.group(1), m.group(2) or ""
        family = name
        if types.get(name) == "histogram":
            problems.append("%s is a histogram: name its _bucket, _sum or _count series" % name)
            continue
        if name not in types:
            base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
            if base and types.get(base) in ("histogram", "summary"):
                family = base
            else:
                problems.append("%s is not a family on /metrics (no # TYPE line)" % name)
                continue
        got = samples.get(name, [])
        if not got:
            problems.append("%s (family %s) has no sample in the scrape" % (name, family))
            continue
        names = set().union(*(s.keys() for s in got)) | TARGET_LABELS
        union |= names
        for lm in re.finditer(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', matchers):
            label, op, val = lm.groups()
            if label not in names:
                problems.append("%s has no label %s" % (name, label))
                continue
            if "$" in val or label in TARGET_LABELS:
                continue
            values = {s.get(label) for s in got}
            if op in ("=", "!="):
                wanted = [val]
            elif re.fullmatch(r"[a-zA-Z0-9_:.+-]+(\|[a-zA-Z0-9_:.+-]+)*", val):
                wanted = val.split("|")
            else:
                wanted = []
            for w in wanted:
                if w not in values:
                    problems.append('%s{%s%s"%s"}: no series has %s="%s" (it takes %s)'
                                    % (name, label, op, val, label, w, ", ".join(sorted(values))))
    for m in re.finditer(r"\b(by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        for label in filter(None, (l.strip() for l in m.group(2).split(","))):
            if label not in union:
                problems.append("%s (%s) names a label that none of its metrics has" % (m.group(1), label))
    return problems, union


def legend_problems(legend, union):
    return ["the legend uses {{%s}}, a label of none of its metrics" % l
            for l in re.findall(r"\{\{\s*([a-zA-Z_]\w*)\s*\}\}", legend) if l not in union]


def http_get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def live_scrape():
    """The /metrics text of a daemon with a namerd proxy (api), a static proxy
    with a TLS listener (web) and one whose only endpoint refuses (db), after a
    connection through each: echoed, a failed TLS handshake, a failed connect."""
    ca = CA(os.path.join(TMP, "ca"))
    key, crt = ca.issue("dash", ["dash.example.com"])
    n = t.namerd()
    b = t.backend(EchoBackend)
    n.set_bound("default", "/svc/api", [("127.0.0.1", b.port)])
    dead = "127.0.0.1:%d" % unused_port()
    d = t.daemon("""proxies:
  - label: api
    servers: [{addr: '127.0.0.1:0'}]
    namerd: {addr: '127.0.0.1:%d', path: /svc/api, timeout_ms: 1000}
  - label: web
    servers:
      - addr: '127.0.0.1:0'
        tls: {private_key_path: '%s', cert_paths: ['%s']}
    endpoints: [{addr: '%s'}]
  - label: db
    servers: [{addr: '127.0.0.1:0'}]
    endpoints: [{addr: '%s'}]
""" % (n.port, key, crt, b.addr, dead))
    admin = d.admin_url()
    t.ok(wait_until(lambda: 'linkerd_tcp_proxy_ready{proxy="api"} 1' in http_get(admin + "/metrics"), 10),
         "the namerd proxy gets its endpoint set")
    reply, err = exchange(d.port("api"), b"hello")
    t.ok(reply == b"hello", "a connection through the namerd proxy is echoed")
    exchange(d.port("db"), b"refused")
    failed_tls_client(d.port("web"))
    d.wait_log("client TLS handshake failed")
    t.ok(d.wait_log(r" api .* reason=done") and d.wait_log(r" db .* reason=connect failed"),
         "the connections through api and db are done")
    return http_get(admin + "/metrics")


# ------------------------------------------------------------------ scenarios

def test_rules_check():
    if not PROMTOOL:
        return no_promtool("promtool check rules")
    rc, out = promtool("check", "rules", RULES)
    if not t.ok(rc == 0 and "SUCCESS" in out and not re.search(r"(?i)warn|error", out),
                "promtool check rules %s is clean" % os.path.basename(RULES)):
        t.diag(out)
    m = re.search(r"SUCCESS: (\d+) rules found", out)
    rules = rules_of(parse_yaml(read(RULES)))
    t.ok(m and int(m.group(1)) == len(rules) > 0,
         "this test reads the %d rules that promtool found (%s)" % (len(rules), m and m.group(1)))


def test_rules_shape():
    rules = rules_of(parse_yaml(read(RULES)))
    bad = []
    for r in rules:
        ann = r.get("annotations") or {}
        if not r.get("alert") or not r.get("expr"):
            bad.append("%r: not an alert with an expr" % r.get("alert", r.get("record")))
        elif not re.fullmatch(r"\d+[smh]", r.get("for") or ""):
            bad.append("%s: no for:" % r["alert"])
        elif (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
            bad.append("%s: severity is not critical, warning or info" % r["alert"])
        elif not ann.get("summary") or not ann.get("description"):
            bad.append("%s: no summary or description" % r["alert"])
    if not t.ok(not bad and rules, "each of the %d rules is an alert with for:, a severity, a summary and a "
                "description" % len(rules)):
        t.diag("\n".join(bad))
    text = " ".join(r["expr"] for r in rules)
    for family, what in (("linkerd_tcp_endpoints", "endpoints by state"),
                         ("linkerd_tcp_proxy_ready", "proxy readiness"),
                         ("linkerd_tcp_namerd_requests_total", "namerd failures"),
                         ("linkerd_tcp_relay_threads", "the relay pool"),
                         ("linkerd_tcp_tls_handshake_failures_total", "TLS handshake failures")):
        t.ok(re.search(r"\b%s\b" % family, text), "an alert watches %s (%s)" % (what, family))


def test_dashboard_shape():
    try:
        dash = json.loads(read(DASHBOARD))
    except ValueError as e:
        t.ok(False, "the dashboard is valid JSON: %s" % e)
        return
    t.ok(isinstance(dash, dict) and dash.get("title") and dash.get("uid"),
         "the dashboard is a JSON object with a title and uid")
    t.ok(isinstance(dash.get("schemaVersion"), int) and dash["schemaVersion"] >= 36,
         "schemaVersion %r is 36 or later" % dash.get("schemaVersion"))
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    t.ok(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
         "a datasource variable of type prometheus")
    proxy = variables.get("proxy", {})
    q = proxy.get("query")
    q = q.get("query", "") if isinstance(q, dict) else q or ""
    t.ok(proxy.get("type") == "query" and re.match(r"label_values\(linkerd_tcp_\w+(\{[^}]*\})?,\s*proxy\)$", q),
         "a proxy variable from label_values(..., proxy): %r" % q)
    panels = [p for p in walk_panels(dash.get("panels", [])) if p.get("type") != "row"]
    t.ok(len(panels) >= 10, "the dashboard has panels (%d)" % len(panels))
    bad = []
    for p in panels:
        targets = p.get("targets") or []
        if not targets or any(not (tg.get("expr") or "").strip() for tg in targets):
            bad.append("%r: a panel without a query, or a query without an expression" % p.get("title"))
        for x in [p] + targets:
            if (x.get("datasource") or {}).get("uid") != "${datasource}":
                bad.append("%r: its datasource is not ${datasource}" % p.get("title"))
    if not t.ok(not bad, "every panel has queries, each with an expression, on ${datasource}"):
        t.diag("\n".join(sorted(set(bad))))
    ids = [p.get("id") for p in walk_panels(dash.get("panels", []))]
    t.ok(len(ids) == len(set(ids)) and None not in ids, "panel ids are unique")
    cells, overlap = {}, []
    for p in walk_panels(dash.get("panels", [])):
        g = p.get("gridPos", {})
        if g.get("x", 0) + g.get("w", 0) > 24:
            overlap.append("%r is wider than the grid" % p.get("title"))
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    overlap.append("%r overlaps %r" % (p.get("title"), cells[(x, y)]))
                cells[(x, y)] = p.get("title")
    if not t.ok(not overlap and cells, "the panels lie on the 24-column grid without overlapping"):
        t.diag("\n".join(sorted(set(overlap))))
    exprs = " ".join(e for _, e, _ in dashboard_queries(dash))
    missing = [f for f in REQUIRED_FAMILIES if not re.search(r"\b%s(_bucket)?\b" % f, exprs)]
    if not t.ok(not missing, "the dashboard shows each family that SPEC section 8 lists"):
        t.diag("missing: %s" % ", ".join(missing))
    for h in ("linkerd_tcp_connect_latency_seconds", "linkerd_tcp_connection_duration_seconds"):
        qs = {q for q in re.findall(r"histogram_quantile\(\s*([0-9.]+)\s*,[^;]*?\b%s_bucket\b" % h, exprs)}
        t.ok({"0.5", "0.9", "0.99"} <= qs, "p50, p90 and p99 of %s (%s)" % (h, sorted(qs)))


def test_dashboard_promql():
    # The dashboard's expressions, with Grafana's variables filled in, as recording
    # rules: promtool parses each one.
    if not PROMTOOL:
        return no_promtool("promtool parses the dashboard's queries")
    queries = dashboard_queries(json.loads(read(DASHBOARD)))
    path = os.path.join(TMP, "dashboard-rules.yml")
    doc = {"groups": [{"name": "dashboard", "rules": [
        {"record": "dashboard:query_%d" % i, "expr": grafana_to_promql(e)} for i, (_, e, _) in enumerate(queries)]}]}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    rc, out = promtool("check", "rules", path)
    if not t.ok(rc == 0 and "SUCCESS: %d rules" % len(queries) in out,
                "promtool parses all %d of the dashboard's queries" % len(queries)):
        t.diag(out)


def test_names_exist():
    text = live_scrape()
    types, samples = parse_scrape(text)
    for family in ("linkerd_tcp_namerd_requests_total", "linkerd_tcp_connect_failures_total",
                   "linkerd_tcp_tls_handshake_failures_total", "linkerd_tcp_connect_latency_seconds_bucket"):
        t.ok(samples.get(family), "the scrape has samples of %s" % family)
    dash = json.loads(read(DASHBOARD))
    rules = rules_of(parse_yaml(read(RULES)))
    queries = dashboard_queries(dash) + [("alert %s" % r["alert"], r["expr"], " ".join(
        (r.get("annotations") or {}).values())) for r in rules]
    used, problems = set(), []
    for where, expr, legend in queries:
        found, union = check_names(expr, types, samples)
        used |= set(NAME.findall(expr))
        if where.startswith("alert"):
            found += ["the annotations use $labels.%s, a label of none of its metrics" % l
                      for l in re.findall(r"\$labels\.([a-zA-Z_]\w*)", legend) if l not in union]
        else:
            found += legend_problems(legend, union)
        problems += ["%s: %s" % (where, p) for p in found]
    if not t.ok(used and not problems, "the %d metric names that the dashboard and the alerts use (%d queries) "
                "are families on /metrics, with the labels and values they select" % (len(used), len(queries))):
        t.diag("\n".join(problems))
        t.diag("/metrics families: %s" % " ".join(sorted(types)))
    # Every name mentioned anywhere in either file, descriptions included.
    loose = set(NAME.findall(read(DASHBOARD) + read(RULES)))
    unknown = sorted(n for n in loose if n not in types and not any(
        n.endswith(s) and types.get(n[: -len(s)]) == "histogram" for s in HISTOGRAM_SUFFIXES))
    t.ok(not unknown, "every linkerd_tcp_ name in the two files' text is a family (%s)" % ", ".join(unknown))
    doc = read(os.path.join(SRCDIR, "doc", "configuration.md"))
    undocumented = sorted(f for f in types if "`%s`" % f not in doc)
    t.ok(types and not undocumented, "doc/configuration.md lists each of the %d families on /metrics (not: %s)"
         % (len(types), ", ".join(undocumented)))
    # The check itself: a made-up name, label or label value is caught.
    for bogus, what in (('rate(linkerd_tcp_made_up_total{proxy=~"$proxy"}[5m])', "a made-up name"),
                        ('linkerd_tcp_connect_latency_seconds', "a histogram's bare name"),
                        ('linkerd_tcp_endpoints{proxy=~"$proxy",status="active"}', "a made-up label"),
                        ('linkerd_tcp_endpoints{state="actve"}', "a misspelt label value"),
                        ('sum by (proxy, cause) (linkerd_tcp_endpoints)', "a by() label the metric lacks")):
        t.ok(check_names(bogus, types, samples)[0], "the name check catches %s: %s" % (what, bogus))
    # What two alerts divide by: failed TLS handshakes are among the accepts, and
    # failed connects among the connect attempts.

    def value(name, **labels):
        """The sum of the samples of name that carry labels."""
        return sum(float(v) for ls, v in re.findall(r"^%s\{([^}]*)\} (\S+)$" % name, text, re.M)
                   if all('%s="%s"' % kv in ls for kv in labels.items()))

    tls = value("linkerd_tcp_tls_handshake_failures_total", proxy="web")
    acc = value("linkerd_tcp_accepts_total", proxy="web")
    t.ok(tls == 1 and acc >= tls, "a failed TLS handshake is counted among the accepts (%g of %g)" % (tls, acc))
    fail = value("linkerd_tcp_connect_failures_total", proxy="db")
    att = value("linkerd_tcp_endpoint_connects_total", proxy="db")
    t.ok(fail >= 1 and att == fail, "failed connects are among the connect attempts (%g of %g)" % (fail, att))


# ------------------------------------------------------------------ the alerts fire

BASE_LABELS = {"instance": "lt:9989", "job": "linkerd-tcp"}
EP = "10.0.0.1:80"
SERVER = "0.0.0.0:7000"


def healthy():
    """{(metric, labels...): values} of a healthy daemon over 30 minutes."""
    return {
        ("linkerd_tcp_proxy_ready", ("proxy", "api")): "1x30",
        ("linkerd_tcp_endpoints", ("proxy", "api"), ("state", "active")): "2x30",
        ("linkerd_tcp_endpoints", ("proxy", "api"), ("state", "ejected")): "0x30",
        ("linkerd_tcp_endpoints", ("proxy", "api"), ("state", "draining")): "0x30",
        ("linkerd_tcp_namerd_requests_total", ("proxy", "api"), ("result", "ok")): "0+1x30",
        ("linkerd_tcp_namerd_requests_total", ("proxy", "api"), ("result", "stream_ended")): "0+1x30",
        ("linkerd_tcp_namerd_requests_total", ("proxy", "api"), ("result", "timeout")): "0x30",
        ("linkerd_tcp_namerd_requests_total", ("proxy", "api"), ("result", "unreachable")): "0x30",
        ("linkerd_tcp_endpoint_connects_total", ("proxy", "api"), ("endpoint", EP)): "0+60x30",
        ("linkerd_tcp_connect_failures_total", ("proxy", "api"), ("endpoint", EP), ("cause", "refused")): "0x30",
        ("linkerd_tcp_connect_failures_total", ("proxy", "api"), ("endpoint", EP), ("cause", "tls")): "0x30",
        ("linkerd_tcp_accepts_total", ("proxy", "api"), ("server", SERVER)): "0+60x30",
        ("linkerd_tcp_tls_handshake_failures_total", ("proxy", "api"), ("server", SERVER)): "0x30",
        ("linkerd_tcp_endpoint_tls_handshake_failures_total", ("proxy", "api")): "0x30",
        ("linkerd_tcp_relay_threads", ("state", "busy")): "10x30",
        ("linkerd_tcp_relay_threads", ("state", "idle")): "54x30",
        ("linkerd_tcp_config_reloads_total", ("result", "ok")): "0x10 1x20",
        ("linkerd_tcp_config_reloads_total", ("result", "failed")): "0x30",
    }


def series(key):
    labels = dict(BASE_LABELS, **dict(key[1:]))
    return "%s{%s}" % (key[0], ",".join('%s="%s"' % kv for kv in sorted(labels.items())))


P = {"proxy": "api"}
ALERT_SCENARIOS = [
    ("a healthy daemon", {}, {}),
    ("namerd never answered", {
        ("linkerd_tcp_proxy_ready", ("proxy", "api")): "0x30",
        ("linkerd_tcp_endpoints", ("proxy", "api"), ("state", "active")): "0x30",
        ("linkerd_tcp_namerd_requests_total", ("proxy", "api"), ("result", "ok")): "0x30",
        ("linkerd_tcp_namerd_requests_total", ("proxy", "api"), ("result", "unreachable")): "0+2x30",
    }, {"LinkerdTcpProxyNotReady": [dict(P, severity="critical")],
        "LinkerdTcpNamerdFailing": [dict(P, severity="warning")]}),
    ("every endpoint ejected", {
        ("linkerd_tcp_endpoints", ("proxy", "api"), ("state", "active")): "0x30",
        ("linkerd_tcp_endpoints", ("proxy", "api"), ("state", "ejected")): "2x30",
        ("linkerd_tcp_connect_failures_total", ("proxy", "api"), ("endpoint", EP), ("cause", "refused")): "0+60x30",
    }, {"LinkerdTcpNoActiveEndpoints": [dict(P, state="active", severity="critical")],
        "LinkerdTcpEndpointsEjected": [dict(P, state="ejected", severity="warning")],
        "LinkerdTcpConnectFailures": [dict(P, severity="warning")]}),
    ("an empty endpoint set", {
        ("linkerd_tcp_endpoints", ("proxy", "api"), ("state", "active")): "0x30",
    }, {"LinkerdTcpNoActiveEndpoints": [dict(P, state="active", severity="critical")]}),
    ("an endpoint ejected for 5 minutes", {
        ("linkerd_tcp_endpoints", ("proxy", "api"), ("state", "ejected")): "0x25 1x5",
    }, {}),
    ("namerd timing out, the last endpoint set kept", {
        ("linkerd_tcp_namerd_requests_total", ("proxy", "api"), ("result", "ok")): "0x30",
        ("linkerd_tcp_namerd_requests_total", ("proxy", "api"), ("result", "timeout")): "0+2x30",
    }, {"LinkerdTcpNamerdFailing": [dict(P, severity="warning")]}),
    ("every relay thread busy", {
        ("linkerd_tcp_relay_threads", ("state", "busy")): "64x30",
        ("linkerd_tcp_relay_threads", ("state", "idle")): "0x30",
    }, {"LinkerdTcpRelayPoolSaturated": [dict(severity="critical")],
        "LinkerdTcpRelayPoolNearlySaturated": [dict(severity="warning")]}),
    ("woken connections waiting for a relay thread", {
        ("linkerd_tcp_relay_threads", ("state", "busy")): "64x30",
        ("linkerd_tcp_relay_threads", ("state", "idle")): "0x30",
        ("linkerd_tcp_relay_queue",): "3x30",
    }, {"LinkerdTcpRelayPoolSaturated": [dict(severity="critical")],
        "LinkerdTcpRelayPoolNearlySaturated": [dict(severity="warning")],
        "LinkerdTcpRelayQueue": [dict(severity="warning")]}),
    ("60 of 64 relay threads busy", {
        ("linkerd_tcp_relay_threads", ("state", "busy")): "60x30",
        ("linkerd_tcp_relay_threads", ("state", "idle")): "4x30",
    }, {"LinkerdTcpRelayPoolNearlySaturated": [dict(severity="warning")]}),
    ("one client handshake in six fails", {
        ("linkerd_tcp_tls_handshake_failures_total", ("proxy", "api"), ("server", SERVER)): "0+10x30",
    }, {"LinkerdTcpClientTlsHandshakeFailures": [dict(P, server=SERVER, severity="warning")]}),
    ("endpoint TLS handshakes fail", {
        ("linkerd_tcp_endpoint_tls_handshake_failures_total", ("proxy", "api")): "0+6x30",
        ("linkerd_tcp_connect_failures_total", ("proxy", "api"), ("endpoint", EP), ("cause", "tls")): "0+6x30",
    }, {"LinkerdTcpEndpointTlsHandshakeFailures": [dict(P, severity="warning")],
        "LinkerdTcpConnectFailures": [dict(P, severity="warning")]}),
    ("one connect in sixty fails", {
        ("linkerd_tcp_connect_failures_total", ("proxy", "api"), ("endpoint", EP), ("cause", "refused")): "0+1x30",
    }, {}),
    ("a failed reload", {
        ("linkerd_tcp_config_reloads_total", ("result", "failed")): "0x25 1x5",
    }, {"LinkerdTcpConfigReloadFailed": [dict(result="failed", severity="warning")]}),
]


def test_alerts_fire():
    if not PROMTOOL:
        return no_promtool("promtool test rules: each alert fires on its symptom")
    text = read(RULES)
    names = [r["alert"] for r in rules_of(parse_yaml(text))]
    stripped = os.path.join(TMP, "alerts-without-annotations.yml")
    with open(stripped, "w") as f:
        f.write(without_annotations(text))
    fired = set()
    for title, changes, expect in ALERT_SCENARIOS:
        values = healthy()
        values.update(changes)
        cases = []
        for name in names:
            exp = [{"exp_labels": dict(BASE_LABELS, **labels)} for labels in expect.get(name, [])]
            cases.append({"eval_time": "30m", "alertname": name, "exp_alerts": exp})
        doc = {"rule_files": [stripped], "evaluation_interval": "1m", "tests": [{
            "interval": "1m",
            "input_series": [{"series": series(k), "values": v} for k, v in sorted(values.items())],
            "alert_rule_test": cases}]}
        path = os.path.join(TMP, "alerts-test.yml")
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
        rc, out = promtool("test", "rules", path)
        unknown = set(expect) - set(names)
        want = ", ".join(sorted(expect)) or "none"
        if not t.ok(rc == 0 and not unknown, "%s: after 30 minutes the alerts firing are: %s" % (title, want)):
            t.diag(out[-3000:])
        fired |= set(expect)
    t.ok(set(names) <= fired, "each alert fires in one of the scenarios (never: %s)" % sorted(set(names) - fired))


t.run(
    test_rules_check,
    test_rules_shape,
    test_dashboard_shape,
    test_dashboard_promql,
    test_names_exist,
    test_alerts_fire,
)
