#include "auto-config.h"

#include "page.h"

#include "control.h"
#include "metrics.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const page_headers[][2] = {
	{ "Content-Type", "text/html; charset=utf-8" },
	{ "Cache-Control", "no-store" },
	{ "Content-Security-Policy",
	  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
	  "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
	  "frame-ancestors 'none'" },
	{ "X-Frame-Options", "DENY" },
	{ "X-Content-Type-Options", "nosniff" },
	{ "Referrer-Policy", "no-referrer" },
	{ NULL, NULL },
};

/* ------------------------------------------------------------------ assets
 *
 * The style and the script, inline.  The script builds its DOM with
 * textContent only (no markup from data), and keeps a row per endpoint
 * across refreshes, so a weight being typed survives them.
 */

static const char page_css[] =
	"body { font: 13px/1.4 system-ui, sans-serif; margin: 1em 1.5em; color: #222; }\n"
	"h1 { font-size: 1.3em; margin: 0; }\n"
	"h1 .version { font-weight: normal; color: #666; font-size: .8em; }\n"
	"h2 { font-size: 1.05em; margin: 1.2em 0 .3em; padding: .2em .5em; }\n"
	"h2 { background: #2a4a6b; color: #fff; }\n"
	"p { margin: .25em 0; }\n"
	".meta { color: #555; }\n"
	"table { border-collapse: collapse; }\n"
	"th, td { border: 1px solid #b8c2cc; padding: .15em .5em; white-space: nowrap; }\n"
	"th, td { text-align: right; }\n"
	"th { background: #dfe6ee; font-weight: 600; }\n"
	".addr, .state, .ovr, .ctl, tr.none td { text-align: left; }\n"
	"tbody tr:nth-child(even) { background: #f6f8fa; }\n"
	"td.addr { font-family: ui-monospace, monospace; }\n"
	"tr.st-active td.state { background: #c8efc8; }\n"
	"tr.st-ejected td.state { background: #f6b8b8; }\n"
	"tr.st-draining td.state, tr.st-removed td.state { background: #fbe1a0; }\n"
	"tr.orphan, tr.none { color: #777; }\n"
	"tr.orphan td.rate * { visibility: hidden; }\n"
	".ready { font-size: .8em; padding: 0 .5em; margin-left: .5em; border-radius: 3px; }\n"
	".ready { background: #5a5; }\n"
	".ready.no { background: #c44; }\n"
	".good { color: #070; }\n"
	".bad, #error { color: #b00; font-weight: 600; }\n"
	"#token-form { display: inline-block; margin: .4em 0; padding: .3em .5em; }\n"
	"#token-form, .need-token { background: #fff6d8; border: 1px solid #e0c870; }\n"
	".need-token { padding: .5em; }\n"
	"input.w { width: 5em; }\n"
	"button { font: inherit; padding: 0 .5em; }\n"
	"svg.spark { vertical-align: middle; margin-left: .3em; background: #f0f3f6; }\n"
	"svg.spark polyline { fill: none; stroke: #2a4a6b; stroke-width: 1.2; }\n"
	"[hidden] { display: none !important; }\n";

static const char page_js[] =
	"'use strict';\n"
	"const $ = (id) => document.getElementById(id);\n"
	"const KEY = 'linkerd-tcp-admin-token';\n"
	"const SPARK = 40; /* samples in a sparkline */\n"
	"const COLS = [['addr', 'endpoint'], ['state', 'state'], ['weight', 'weight'],\n"
	"  ['cfg', 'configured'], ['ovr', 'override'], ['active', 'active'],\n"
	"  ['connects', 'connects'], ['failures', 'failures'], ['bin', 'from client'],\n"
	"  ['bout', 'to client'], ['rate', 'conn/s'], ['ctl', 'change']];\n"
	"const FIELDS = { weight: 'weight', cfg: 'configured_weight', active: 'active',\n"
	"  connects: 'connects', failures: 'failures', bin: 'bytes_from_client',\n"
	"  bout: 'bytes_to_client' };\n"
	"const S = { live: false, refreshes: 0, proxies: new Map(), needToken: false };\n"
	"\n"
	"function el(tag, cls, text) {\n"
	"  const e = document.createElement(tag);\n"
	"  if (cls) e.className = cls;\n"
	"  if (text !== undefined) e.textContent = text;\n"
	"  return e;\n"
	"}\n"
	"\n"
	"function span(cls, text) { return el('span', cls, text); }\n"
	"\n"
	"function token() { return sessionStorage.getItem(KEY) || ''; }\n"
	"\n"
	"function showToken() {\n"
	"  $('token-form').hidden = !(S.needToken || token());\n"
	"  $('token-state').textContent = token() ? 'a token is kept for this tab' : '';\n"
	"}\n"
	"\n"
	"async function api(method, path, body) {\n"
	"  const init = { method: method, headers: {}, cache: 'no-store' };\n"
	"  if (token()) init.headers.Authorization = 'Bearer ' + token();\n"
	"  if (body !== undefined) {\n"
	"    init.headers['Content-Type'] = 'application/json';\n"
	"    init.body = JSON.stringify(body);\n"
	"  }\n"
	"  const r = await fetch(path, init);\n"
	"  const text = await r.text();\n"
	"  if (r.status === 401) {\n"
	"    S.needToken = true;\n"
	"    showToken();\n"
	"    throw new Error('401 unauthorized: ' + (token()\n"
	"      ? 'the token kept is not admin.token: enter it again above'\n"
	"      : 'this admin server needs its token (admin.token): enter it above'));\n"
	"  }\n"
	"  let doc = null;\n"
	"  try { doc = JSON.parse(text); } catch (e) { doc = null; }\n"
	"  if (!r.ok)\n"
	"    throw new Error(r.status + ': ' + (doc && doc.error ? doc.error : text.trim()));\n"
	"  return doc;\n"
	"}\n"
	"\n"
	"function note(text, bad) {\n"
	"  $('msg').textContent = text;\n"
	"  $('msg').className = bad ? 'bad' : 'good';\n"
	"}\n"
	"\n"
	"async function act(label, addr, method, body) {\n"
	"  const path = '/api/v1/proxies/' + encodeURIComponent(label) + '/endpoints/' +\n"
	"    encodeURIComponent(addr);\n"
	"  const what = label + ' ' + addr + ': ' + (body ? JSON.stringify(body) : 'reset');\n"
	"  try {\n"
	"    await api(method, path, body);\n"
	"    note(what + ': done', false);\n"
	"    refresh(false);\n"
	"    return true;\n"
	"  } catch (e) {\n"
	"    note(what + ': ' + e.message, true);\n"
	"    return false;\n"
	"  }\n"
	"}\n"
	"\n"
	"function renderPool(p) {\n"
	"  const parts = ['relay pool: ', span('threads', p.threads), ' threads, ',\n"
	"    span('busy', p.busy), ' busy, ', span('idle', p.idle), ' idle'];\n"
	"  if (p.parked !== undefined) parts.push(', ', span('parked', p.parked), ' parked');\n"
	"  $('pool').replaceChildren(...parts);\n"
	"}\n"
	"\n"
	"function renderDiscovery(node, d) {\n"
	"  const parts = ['discovery: ', span('kind', d.kind)];\n"
	"  if (d.kind === 'namerd') {\n"
	"    const st = d.failing ? 'failing' : d.answered ? 'answering'\n"
	"      : 'waiting for a first answer';\n"
	"    parts.push(' ', span('url', d.url), ': ',\n"
	"      span('dstate ' + (d.failing ? 'bad' : 'good'), st));\n"
	"  }\n"
	"  if (d.last_update_secs_ago !== undefined)\n"
	"    parts.push(', last update ', span('age', d.last_update_secs_ago.toFixed(1)),\n"
	"      ' s ago');\n"
	"  if (d.last_error) parts.push('; last error: ', span('lasterr bad', d.last_error));\n"
	"  node.replaceChildren(...parts);\n"
	"}\n"
	"\n"
	"function section(label) {\n"
	"  let s = S.proxies.get(label);\n"
	"  if (s) return s;\n"
	"  s = { rows: new Map(), el: el('section', 'proxy') };\n"
	"  s.el.dataset.proxy = label;\n"
	"  s.ready = span('ready');\n"
	"  const h = el('h2');\n"
	"  h.append(span('label', label), s.ready);\n"
	"  s.listeners = el('p', 'listeners');\n"
	"  s.discovery = el('p', 'discovery');\n"
	"  const table = el('table', 'endpoints');\n"
	"  const head = table.createTHead().insertRow();\n"
	"  for (const [cls, title] of COLS) head.append(el('th', cls, title));\n"
	"  s.body = table.createTBody();\n"
	"  s.none = el('tr', 'none');\n"
	"  s.none.append(el('td', '', 'no endpoints'));\n"
	"  s.none.firstChild.colSpan = COLS.length;\n"
	"  s.el.append(h, s.listeners, s.discovery, table);\n"
	"  $('proxies').append(s.el);\n"
	"  S.proxies.set(label, s);\n"
	"  return s;\n"
	"}\n"
	"\n"
	"function controls(r, label, addr) {\n"
	"  const w = el('input', 'w');\n"
	"  w.type = 'number';\n"
	"  w.min = '0';\n"
	"  w.step = 'any';\n"
	"  w.setAttribute('aria-label', 'weight for ' + addr);\n"
	"  const set = el('button', 'set', 'set');\n"
	"  const drain = el('button', 'drain', 'drain');\n"
	"  const reset = el('button', 'reset', 'reset');\n"
	"  const go = () => {\n"
	"    if (w.value === '') return note(label + ' ' + addr + ': type a weight first', true);\n"
	"    act(label, addr, 'PUT', { weight: Number(w.value) }).then((ok) => {\n"
	"      if (ok) w.value = '';\n"
	"    });\n"
	"  };\n"
	"  set.onclick = go;\n"
	"  w.onkeydown = (ev) => { if (ev.key === 'Enter') go(); };\n"
	"  drain.onclick = () => act(label, addr, 'PUT', { drain: drain.dataset.to === 'true' });\n"
	"  reset.onclick = () => act(label, addr, 'DELETE');\n"
	"  r.td.ctl.append(w, ' ', set, ' ', drain, ' ', reset);\n"
	"  Object.assign(r, { w: w, set: set, drain: drain, reset: reset });\n"
	"}\n"
	"\n"
	"function row(s, label, addr) {\n"
	"  let r = s.rows.get(addr);\n"
	"  if (r) return r;\n"
	"  r = { tr: el('tr'), td: {}, hist: [] };\n"
	"  r.tr.dataset.proxy = label;\n"
	"  r.tr.dataset.addr = addr;\n"
	"  for (const [cls] of COLS) r.tr.append(r.td[cls] = el('td', cls));\n"
	"  r.td.addr.textContent = addr;\n"
	"  controls(r, label, addr);\n"
	"  s.rows.set(addr, r);\n"
	"  return r;\n"
	"}\n"
	"\n"
	"function overrideText(o) {\n"
	"  if (!o) return '-';\n"
	"  const parts = [];\n"
	"  if (o.weight !== undefined) parts.push('weight ' + o.weight);\n"
	"  if (o.drain !== undefined) parts.push(o.drain ? 'drain' : 'no drain');\n"
	"  return parts.join(', ');\n"
	"}\n"
	"\n"
	"/* Connections per second between refreshes, drawn right-aligned. */\n"
	"function spark(r, e, now) {\n"
	"  const bytes = (e.bytes_from_client || 0) + (e.bytes_to_client || 0);\n"
	"  r.hist.push({ t: now, c: e.connects || 0, b: bytes });\n"
	"  if (r.hist.length > SPARK + 1) r.hist.shift();\n"
	"  const h = r.hist, rates = [];\n"
	"  let bps = 0;\n"
	"  for (let i = 1; i < h.length; i++) {\n"
	"    const dt = Math.max((h[i].t - h[i - 1].t) / 1000, 0.001);\n"
	"    rates.push(Math.max(0, h[i].c - h[i - 1].c) / dt);\n"
	"    bps = Math.max(0, h[i].b - h[i - 1].b) / dt;\n"
	"  }\n"
	"  if (!r.svg) {\n"
	"    const NS = 'http://www.w3.org/2000/svg';\n"
	"    r.svg = document.createElementNS(NS, 'svg');\n"
	"    r.svg.setAttribute('class', 'spark');\n"
	"    r.svg.setAttribute('width', '100');\n"
	"    r.svg.setAttribute('height', '18');\n"
	"    r.line = document.createElementNS(NS, 'polyline');\n"
	"    r.svg.append(r.line);\n"
	"    r.num = span('num');\n"
	"    r.td.rate.replaceChildren(r.num, r.svg);\n"
	"  }\n"
	"  const max = Math.max(1, ...rates), n = rates.length;\n"
	"  const x = (i) => (100 - (n - 1 - i) * 100 / (SPARK - 1)).toFixed(1);\n"
	"  const y = (v) => (17 - v * 16 / max).toFixed(1);\n"
	"  r.num.textContent = n ? rates[n - 1].toFixed(1) : '0.0';\n"
	"  r.line.setAttribute('points', rates.map((v, i) => x(i) + ',' + y(v)).join(' '));\n"
	"  r.td.rate.title = 'connections per second over the last ' + n + ' refreshes (max ' +\n"
	"    max.toFixed(1) + '); bytes per second now: ' + bps.toFixed(0);\n"
	"}\n"
	"\n"
	"function renderRow(s, label, e, now, sample) {\n"
	"  const r = row(s, label, e.addr);\n"
	"  r.tr.className = 'ep st-' + e.state + (e.orphan ? ' orphan' : '');\n"
	"  r.td.state.textContent = e.orphan ? 'absent, override kept' : e.state;\n"
	"  r.td.ovr.textContent = overrideText(e.override);\n"
	"  for (const cls in FIELDS)\n"
	"    r.td[cls].textContent = e.orphan ? '' : String(e[FIELDS[cls]]);\n"
	"  const draining = e.override && e.override.drain === true;\n"
	"  r.drain.textContent = draining ? 'undrain' : 'drain';\n"
	"  r.drain.dataset.to = draining ? 'false' : 'true';\n"
	"  r.reset.disabled = !e.override;\n"
	"  r.w.disabled = r.set.disabled = r.drain.disabled = !!e.orphan;\n"
	"  r.w.placeholder = e.orphan ? '' : String(e.weight);\n"
	"  if (!e.orphan && sample) spark(r, e, now);\n"
	"  return r.tr;\n"
	"}\n"
	"\n"
	"/* The rows in the order of /endpoints, moved only when out of place (a\n"
	" * moved row would lose the focus of its weight box). */\n"
	"function placeRows(s, order) {\n"
	"  if (!order.length) order.push(s.none);\n"
	"  order.forEach((tr, i) => {\n"
	"    const at = s.body.children[i];\n"
	"    if (at !== tr) s.body.insertBefore(tr, at || null);\n"
	"  });\n"
	"  if (order[0] !== s.none) s.none.remove();\n"
	"}\n"
	"\n"
	"function renderProxy(p, now, sample) {\n"
	"  const s = section(p.label), seen = new Set(), order = [];\n"
	"  s.ready.textContent = p.ready ? 'ready' : 'not ready';\n"
	"  s.ready.className = 'ready ' + (p.ready ? 'yes' : 'no');\n"
	"  const ls = p.listeners.map((l) => l.addr + (l.tls ? ' (TLS)' : ''));\n"
	"  s.listeners.textContent = 'listening on ' + (ls.join(', ') || 'nothing');\n"
	"  renderDiscovery(s.discovery, p.discovery);\n"
	"  for (const e of p.endpoints) {\n"
	"    seen.add(e.addr);\n"
	"    order.push(renderRow(s, p.label, e, now, sample));\n"
	"  }\n"
	"  for (const o of p.overrides) {\n"
	"    if (seen.has(o.addr)) continue;\n"
	"    seen.add(o.addr);\n"
	"    const e = { addr: o.addr, state: 'absent', override: o, orphan: true };\n"
	"    order.push(renderRow(s, p.label, e, now, sample));\n"
	"  }\n"
	"  for (const [addr, r] of s.rows) {\n"
	"    if (seen.has(addr)) continue;\n"
	"    r.tr.remove();\n"
	"    s.rows.delete(addr);\n"
	"  }\n"
	"  placeRows(s, order);\n"
	"}\n"
	"\n"
	"function render(doc, sample) {\n"
	"  if (!S.live) { /* the server-rendered tables give way to live ones */\n"
	"    $('proxies').replaceChildren();\n"
	"    S.live = true;\n"
	"  }\n"
	"  const now = performance.now(), seen = new Set();\n"
	"  renderPool(doc.pool);\n"
	"  for (const p of doc.proxies) {\n"
	"    seen.add(p.label);\n"
	"    renderProxy(p, now, sample);\n"
	"  }\n"
	"  for (const [label, s] of S.proxies) {\n"
	"    if (seen.has(label)) continue;\n"
	"    s.el.remove();\n"
	"    S.proxies.delete(label);\n"
	"  }\n"
	"}\n"
	"\n"
	"/* sample: add a point to the sparklines (the timed refreshes only). */\n"
	"async function refresh(sample) {\n"
	"  try {\n"
	"    render(await api('GET', '/endpoints'), sample);\n"
	"    S.refreshes++;\n"
	"    $('refreshes').textContent = S.refreshes;\n"
	"    $('refreshed').textContent = new Date().toLocaleTimeString();\n"
	"    $('live').textContent = 'live';\n"
	"    $('live').className = 'good';\n"
	"    $('refresh-info').hidden = false;\n"
	"    $('error').textContent = '';\n"
	"    S.needToken = false;\n"
	"    showToken();\n"
	"  } catch (e) {\n"
	"    $('live').textContent = 'not refreshing';\n"
	"    $('live').className = 'bad';\n"
	"    $('error').textContent = e.message;\n"
	"  }\n"
	"}\n"
	"\n"
	"async function loop() {\n"
	"  await refresh(true);\n"
	"  setTimeout(loop, 1000);\n"
	"}\n"
	"\n"
	"$('token-form').addEventListener('submit', (ev) => {\n"
	"  ev.preventDefault();\n"
	"  sessionStorage.setItem(KEY, $('token-input').value);\n"
	"  $('token-input').value = '';\n"
	"  refresh(false);\n"
	"});\n"
	"$('token-forget').onclick = () => {\n"
	"  sessionStorage.removeItem(KEY);\n"
	"  showToken();\n"
	"  refresh(false);\n"
	"};\n"
	"S.needToken = !$('token-form').hidden;\n"
	"showToken();\n"
	"loop();\n";

/* ------------------------------------------------------------------ text */

/* Appends s with the characters that mean something in HTML text or in a
 * quoted attribute as references. */
static void esc(struct mbuf *m, const char *s)
{
	for (;;) {
		size_t n = strcspn(s, "&<>\"'");
		if (n)
			mbuf_printf(m, "%.*s", (int)n, s);
		s += n;
		if (!*s)
			return;
		mbuf_printf(m, "%s",
			    *s == '&'   ? "&amp;"
			    : *s == '<' ? "&lt;"
			    : *s == '>' ? "&gt;"
			    : *s == '"' ? "&quot;"
					: "&#39;");
		s++;
	}
}

/* Markup, then a text escaped. */
static void put(struct mbuf *m, const char *markup, const char *s)
{
	mbuf_printf(m, "%s", markup);
	esc(m, s);
}

/* Fields of the /endpoints document; absent ones read as "", 0, false. */
static json_object *field(json_object *o, const char *key)
{
	json_object *v = NULL;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *text(json_object *o, const char *key)
{
	json_object *v = field(o, key);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static long long count(json_object *o, const char *key)
{
	return (long long)json_object_get_int64(field(o, key));
}

static bool flag(json_object *o, const char *key)
{
	return json_object_get_boolean(field(o, key));
}

/* ------------------------------------------------------------------ tables */

/* The columns; the script's COLS are the same. */
#define PAGE_NCOLUMNS 12
#define PAGE_COLUMNS                                                                               \
	"<th class=\"addr\">endpoint</th><th class=\"state\">state</th>"                           \
	"<th class=\"weight\">weight</th><th class=\"cfg\">configured</th>"                        \
	"<th class=\"ovr\">override</th><th class=\"active\">active</th>"                          \
	"<th class=\"connects\">connects</th><th class=\"failures\">failures</th>"                 \
	"<th class=\"bin\">from client</th><th class=\"bout\">to client</th>"                      \
	"<th class=\"rate\">conn/s</th><th class=\"ctl\">change</th>"

static void pool_line(struct mbuf *m, json_object *pool)
{
	json_object *parked = field(pool, "parked");

	mbuf_printf(m,
		    "relay pool: <span class=\"threads\">%lld</span> threads, "
		    "<span class=\"busy\">%lld</span> busy, <span class=\"idle\">%lld</span> idle",
		    count(pool, "threads"), count(pool, "busy"), count(pool, "idle"));
	if (parked)
		mbuf_printf(m, ", <span class=\"parked\">%lld</span> parked",
			    (long long)json_object_get_int64(parked));
}

static void listeners_line(struct mbuf *m, json_object *ls)
{
	size_t n = json_object_array_length(ls);

	mbuf_printf(m, "<p class=\"listeners\">listening on %s", n ? "" : "nothing");
	for (size_t i = 0; i < n; i++) {
		json_object *l = json_object_array_get_idx(ls, i);
		put(m, i ? ", " : "", text(l, "addr"));
		mbuf_printf(m, "%s", flag(l, "tls") ? " (TLS)" : "");
	}
	mbuf_printf(m, "</p>\n");
}

static void discovery_line(struct mbuf *m, json_object *d)
{
	json_object *age = field(d, "last_update_secs_ago");
	bool failing = flag(d, "failing");

	put(m, "<p class=\"discovery\">discovery: <span class=\"kind\">", text(d, "kind"));
	mbuf_printf(m, "</span>");
	if (strcmp(text(d, "kind"), "namerd") == 0) {
		put(m, " <span class=\"url\">", text(d, "url"));
		mbuf_printf(m, "</span>: <span class=\"dstate %s\">%s</span>",
			    failing ? "bad" : "good",
			    failing               ? "failing"
			    : flag(d, "answered") ? "answering"
						  : "waiting for a first answer");
	}
	if (age)
		mbuf_printf(m, ", last update <span class=\"age\">%.1f</span> s ago",
			    json_object_get_double(age));
	if (*text(d, "last_error")) {
		put(m, "; last error: <span class=\"lasterr bad\">", text(d, "last_error"));
		mbuf_printf(m, "</span>");
	}
	mbuf_printf(m, "</p>\n");
}

/* "weight W, drain" with the fields the override sets; "-" for none. */
static void override_text(struct mbuf *m, json_object *o)
{
	json_object *w = field(o, "weight"), *d = field(o, "drain");

	if (!o)
		mbuf_printf(m, "-");
	if (w)
		mbuf_printf(m, "weight %g", json_object_get_double(w));
	if (d)
		mbuf_printf(m, "%s%s", w ? ", " : "",
			    json_object_get_boolean(d) ? "drain" : "no drain");
}

/* <tr> with the row's attributes and its first two cells; an orphan is an
 * override whose address has no endpoint. */
static void row_start(struct mbuf *m, const char *label, const char *addr, const char *state,
		      bool orphan)
{
	put(m, "<tr class=\"ep st-", state);
	mbuf_printf(m, "%s", orphan ? " orphan" : "");
	put(m, "\" data-proxy=\"", label);
	put(m, "\" data-addr=\"", addr);
	put(m, "\"><td class=\"addr\">", addr);
	put(m, "</td><td class=\"state\">", orphan ? "absent, override kept" : state);
	mbuf_printf(m, "</td>");
}

static void endpoint_row(struct mbuf *m, const char *label, json_object *e)
{
	row_start(m, label, text(e, "addr"), text(e, "state"), false);
	mbuf_printf(m, "<td class=\"weight\">%g</td><td class=\"cfg\">%g</td><td class=\"ovr\">",
		    json_object_get_double(field(e, "weight")),
		    json_object_get_double(field(e, "configured_weight")));
	override_text(m, field(e, "override"));
	mbuf_printf(m,
		    "</td><td class=\"active\">%lld</td><td class=\"connects\">%lld</td>"
		    "<td class=\"failures\">%lld</td><td class=\"bin\">%lld</td>"
		    "<td class=\"bout\">%lld</td>"
		    "<td class=\"rate\"></td><td class=\"ctl\"></td></tr>\n",
		    count(e, "active"), count(e, "connects"), count(e, "failures"),
		    count(e, "bytes_from_client"), count(e, "bytes_to_client"));
}

static bool has_endpoint(json_object *eps, const char *addr)
{
	for (size_t i = 0; i < json_object_array_length(eps); i++)
		if (strcmp(text(json_object_array_get_idx(eps, i), "addr"), addr) == 0)
			return true;
	return false;
}

/* An override whose address has no endpoint waits for it to come back. */
static void orphan_row(struct mbuf *m, const char *label, json_object *o)
{
	row_start(m, label, text(o, "addr"), "absent", true);
	mbuf_printf(m, "<td class=\"weight\"></td><td class=\"cfg\"></td><td class=\"ovr\">");
	override_text(m, o);
	mbuf_printf(m, "</td><td class=\"active\"></td><td class=\"connects\"></td>"
		       "<td class=\"failures\"></td><td class=\"bin\"></td><td class=\"bout\"></td>"
		       "<td class=\"rate\"></td><td class=\"ctl\"></td></tr>\n");
}

/* The endpoint rows, then one per override that waits for its endpoint. */
static void endpoint_rows(struct mbuf *m, const char *label, json_object *eps, json_object *ovs)
{
	size_t rows = json_object_array_length(eps);

	for (size_t i = 0; i < rows; i++)
		endpoint_row(m, label, json_object_array_get_idx(eps, i));
	for (size_t i = 0; i < json_object_array_length(ovs); i++) {
		json_object *o = json_object_array_get_idx(ovs, i);
		if (has_endpoint(eps, text(o, "addr")))
			continue;
		orphan_row(m, label, o);
		rows++;
	}
	if (!rows)
		mbuf_printf(m, "<tr class=\"none\"><td colspan=\"%d\">no endpoints</td></tr>\n",
			    PAGE_NCOLUMNS);
}

static void proxy_section(struct mbuf *m, json_object *p)
{
	const char *label = text(p, "label");
	bool ready = flag(p, "ready");

	put(m, "<section class=\"proxy\" data-proxy=\"", label);
	put(m, "\">\n<h2><span class=\"label\">", label);
	mbuf_printf(m, "</span><span class=\"ready %s\">%s</span></h2>\n", ready ? "yes" : "no",
		    ready ? "ready" : "not ready");
	listeners_line(m, field(p, "listeners"));
	discovery_line(m, field(p, "discovery"));
	mbuf_printf(m,
		    "<table class=\"endpoints\"><thead><tr>" PAGE_COLUMNS "</tr></thead><tbody>\n");
	endpoint_rows(m, label, field(p, "endpoints"), field(p, "overrides"));
	mbuf_printf(m, "</tbody></table>\n</section>\n");
}

/* ------------------------------------------------------------------ page */

static void page_head(struct mbuf *m)
{
	mbuf_printf(m,
		    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		    "<title>linkerd-tcp</title>\n<style>\n%s</style>\n</head>\n<body>\n",
		    page_css);
}

/* The title line, the refresh state, the token form (shown when the data
 * needs the token) and the places for errors. */
static void page_header(struct mbuf *m, bool with_data)
{
	time_t now = time(NULL);
	struct tm tm;
	char when[64];

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&now, &tm));
	mbuf_printf(
		m,
		"<header>\n<h1>linkerd-tcp <span class=\"version\">%s</span></h1>\n"
		"<p class=\"meta\"><span id=\"live\">rendered by the server at %s</span>"
		"<span id=\"refresh-info\" hidden>; refreshes: <span id=\"refreshes\">0</span>, "
		"the last at <span id=\"refreshed\">-</span></span></p>\n"
		"<noscript><p>JavaScript is off: this page shows the state at the time above\n"
		"and does not refresh; the controls need JavaScript (or the API: PUT and\n"
		"DELETE /api/v1/proxies/{label}/endpoints/{addr}).</p></noscript>\n"
		"<form id=\"token-form\"%s><label>admin token <input id=\"token-input\"\n"
		"type=\"password\" autocomplete=\"off\"></label> <button>use</button>\n"
		"<button type=\"button\" id=\"token-forget\">forget</button>\n"
		"<span id=\"token-state\"></span></form>\n"
		"<p id=\"error\" role=\"alert\"></p>\n"
		"<p id=\"msg\" role=\"status\"></p>\n</header>\n",
		PACKAGE_VERSION, when, with_data ? " hidden" : "");
}

static void page_state(struct mbuf *m, json_object *doc)
{
	json_object *proxies = field(doc, "proxies");

	mbuf_printf(m, "<p class=\"pool\" id=\"pool\">");
	pool_line(m, field(doc, "pool"));
	mbuf_printf(m, "</p>\n<div id=\"proxies\">\n");
	for (size_t i = 0; i < json_object_array_length(proxies); i++)
		proxy_section(m, json_object_array_get_idx(proxies, i));
	mbuf_printf(m, "</div>\n");
}

static void page_shell(struct mbuf *m)
{
	mbuf_printf(m, "<p class=\"pool\" id=\"pool\"></p>\n<div id=\"proxies\">\n"
		       "<p class=\"need-token\">This admin server needs its token (admin.token) "
		       "for the data: enter it above. The page keeps it in this tab's session "
		       "storage and sends it with its requests. Without JavaScript, send it as "
		       "<code>Authorization: Bearer</code> header, e.g. with curl.</p>\n</div>\n");
}

char *page_render(struct runtime *rt, bool with_data)
{
	struct mbuf m = { 0 };

	page_head(&m);
	page_header(&m, with_data);
	mbuf_printf(&m, "<main>\n");
	if (with_data) {
		json_object *doc = control_state_json(rt);
		page_state(&m, doc);
		json_object_put(doc);
	} else {
		page_shell(&m);
	}
	mbuf_printf(&m, "</main>\n<script>\n%s</script>\n</body>\n</html>\n", page_js);
	return m.p;
}
