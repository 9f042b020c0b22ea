#include "auto-config.h"

#include "metrics.h"

#include "balancer.h"
#include "listener.h"
#include "log.h"
#include "namerd.h"
#include "proxy.h"
#include "relay.h"
#include "runtime.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ text */

void mbuf_printf(struct mbuf *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = m->cap - m->len;
		va_start(ap, fmt);
		n = vsnprintf(m->p ? m->p + m->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			m->len += (size_t)n;
			return;
		}
		m->cap = MAX(m->cap * 2, m->len + (size_t)n + 4096);
		m->p = xrealloc(m->p, m->cap);
	}
}

void mbuf_free(struct mbuf *m)
{
	free(m->p);
	memset(m, 0, sizeof(*m));
}

void prom_family(struct mbuf *m, const char *name, const char *type, const char *help)
{
	mbuf_printf(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_name(struct mbuf *m, const char *name, const char *suffix, const char *labels)
{
	if (labels && *labels)
		mbuf_printf(m, "%s%s{%s} ", name, suffix, labels);
	else
		mbuf_printf(m, "%s%s ", name, suffix);
}

void prom_value(struct mbuf *m, const char *name, const char *labels, double v)
{
	sample_name(m, name, "", labels);
	if (isnan(v))
		mbuf_printf(m, "NaN\n");
	else if (v == (double)(int64_t)v && fabs(v) < 1e15)
		mbuf_printf(m, "%lld\n", (long long)v);
	else
		mbuf_printf(m, "%.17g\n", v);
}

void prom_count(struct mbuf *m, const char *name, const char *labels, uint64_t v)
{
	sample_name(m, name, "", labels);
	mbuf_printf(m, "%llu\n", (unsigned long long)v);
}

void prom_label(char *buf, size_t len, const char *name, const char *value)
{
	size_t n = strlen(buf);

	if (n + 4 >= len)
		return;
	n += (size_t)snprintf(buf + n, len - n, "%s%s=\"", n ? "," : "", name);
	for (const char *v = value; *v && n + 3 < len; v++) {
		if (*v == '\\' || *v == '"') {
			buf[n++] = '\\';
			buf[n++] = *v;
		} else if (*v == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else {
			buf[n++] = *v;
		}
	}
	if (n + 2 <= len) {
		buf[n++] = '"';
		buf[n] = '\0';
	}
}

void prom_histogram(struct mbuf *m, const char *name, const char *labels, const struct histogram *h)
{
	uint64_t cum = 0;
	char le[48];

	for (unsigned i = 0; i <= h->nbounds; i++) {
		cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (i < h->nbounds)
			snprintf(le, sizeof(le), "%g", h->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		mbuf_printf(m, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels ? labels : "",
			    labels && *labels ? "," : "", le, (unsigned long long)cum);
	}
	sample_name(m, name, "_sum", labels);
	mbuf_printf(m, "%.9f\n",
		    (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
	sample_name(m, name, "_count", labels);
	mbuf_printf(m, "%llu\n", (unsigned long long)cum);
}

/* ------------------------------------------------------------------ families */

/* One family at a time: every proxy contributes its samples to it. */
typedef void (*family_fn)(struct proxy *p, const char *proxy_labels, struct mbuf *m);

struct family_walk {
	struct mbuf *m;
	family_fn fn;
};

static void walk_proxy(struct proxy *p, void *arg)
{
	struct family_walk *w = arg;
	char labels[256] = "";

	prom_label(labels, sizeof(labels), "proxy", proxy_label(p));
	w->fn(p, labels, w->m);
}

static void family(struct runtime *rt, struct mbuf *m, const char *name, const char *type,
		   const char *help, family_fn fn)
{
	struct family_walk w = { m, fn };

	prom_family(m, name, type, help);
	runtime_for_each_proxy(rt, walk_proxy, &w);
}

/* Per listener address. */
struct server_walk {
	struct mbuf *m;
	const char *proxy_labels;
	const char *metric;
	int which;
};

enum { SV_ACCEPTS, SV_ACTIVE, SV_FROM, SV_TO, SV_TLS, SV_CLOSES };

static void server_sample(const struct server_stats *ss, void *arg)
{
	struct server_walk *w = arg;
	char labels[512];
	const atomic_uint_fast64_t *v[] = { &ss->accepts, &ss->active, &ss->bytes_from_client,
					    &ss->bytes_to_client, &ss->tls_handshake_failures };

	snprintf(labels, sizeof(labels), "%s", w->proxy_labels);
	prom_label(labels, sizeof(labels), "server", ss->name);
	if (w->which != SV_CLOSES) {
		prom_count(w->m, w->metric, labels, atomic_load(v[w->which]));
		return;
	}
	for (int c = 0; c < CLOSE_CAUSES; c++) {
		char l2[600];
		snprintf(l2, sizeof(l2), "%s", labels);
		prom_label(l2, sizeof(l2), "cause", close_cause_name((enum close_cause)c));
		prom_count(w->m, w->metric, l2, atomic_load(&ss->closes[c]));
	}
}

#define SERVER_FAMILY(fname, metric, which_)                                                       \
	static void fname(struct proxy *p, const char *pl, struct mbuf *m)                         \
	{                                                                                          \
		struct server_walk w = { m, pl, metric, which_ };                                  \
		proxy_for_each_server(p, server_sample, &w);                                       \
	}
SERVER_FAMILY(fam_accepts, "linkerd_tcp_accepts_total", SV_ACCEPTS)
SERVER_FAMILY(fam_active, "linkerd_tcp_connections_active", SV_ACTIVE)
SERVER_FAMILY(fam_from, "linkerd_tcp_received_bytes_total", SV_FROM)
SERVER_FAMILY(fam_to, "linkerd_tcp_sent_bytes_total", SV_TO)
SERVER_FAMILY(fam_tls, "linkerd_tcp_tls_handshake_failures_total", SV_TLS)
SERVER_FAMILY(fam_closes, "linkerd_tcp_closes_total", SV_CLOSES)

static void fam_latency(struct proxy *p, const char *pl, struct mbuf *m)
{
	prom_histogram(m, "linkerd_tcp_connect_latency_seconds", pl,
		       &proxy_stats(p)->connect_latency);
}

static void fam_duration(struct proxy *p, const char *pl, struct mbuf *m)
{
	prom_histogram(m, "linkerd_tcp_connection_duration_seconds", pl, &proxy_stats(p)->duration);
}

static void fam_endpoint_tls(struct proxy *p, const char *pl, struct mbuf *m)
{
	prom_count(m, "linkerd_tcp_endpoint_tls_handshake_failures_total", pl,
		   atomic_load(&proxy_stats(p)->endpoint_tls_failures));
}

/* Endpoint families read one balancer snapshot each. */
static size_t endpoints_of(struct proxy *p, struct endpoint_view **out)
{
	size_t n = balancer_snapshot(proxy_balancer(p), NULL, 0);
	struct endpoint_view *v = xcalloc(n ? n : 1, sizeof(*v));

	*out = v;
	return MIN(n, balancer_snapshot(proxy_balancer(p), v, n));
}

static void endpoint_labels(char *buf, size_t len, const char *pl, const char *name)
{
	snprintf(buf, len, "%s", pl);
	prom_label(buf, len, "endpoint", name);
}

static void fam_ep_state(struct proxy *p, const char *pl, struct mbuf *m)
{
	struct endpoint_view *v;
	size_t n = endpoints_of(p, &v);
	unsigned count[EP_STATES] = { 0 };

	for (size_t i = 0; i < n; i++)
		count[v[i].state]++;
	for (int s = 0; s < EP_STATES; s++) {
		char l[300];
		snprintf(l, sizeof(l), "%s", pl);
		prom_label(l, sizeof(l), "state", endpoint_state_name((enum endpoint_state)s));
		prom_count(m, "linkerd_tcp_endpoints", l, count[s]);
	}
	free(v);
}

enum { EP_ACTIVE_CONNS, EP_WEIGHT, EP_ATTEMPTS, EP_FAILURES };

static void endpoint_family(struct proxy *p, const char *pl, struct mbuf *m, int which)
{
	static const char *const names[] = { "linkerd_tcp_endpoint_connections_active",
					     "linkerd_tcp_endpoint_weight",
					     "linkerd_tcp_endpoint_connects_total",
					     "linkerd_tcp_connect_failures_total" };
	struct endpoint_view *v;
	size_t n = endpoints_of(p, &v);

	for (size_t i = 0; i < n; i++) {
		char l[400];
		endpoint_labels(l, sizeof(l), pl, v[i].name);
		if (which == EP_ACTIVE_CONNS)
			prom_count(m, names[which], l, v[i].active);
		else if (which == EP_WEIGHT)
			prom_value(m, names[which], l, v[i].weight);
		else if (which == EP_ATTEMPTS)
			prom_count(m, names[which], l, v[i].connects);
		else
			for (int r = CONNECT_OK + 1; r < CONNECT_RESULTS; r++) {
				char l2[450];
				snprintf(l2, sizeof(l2), "%s", l);
				prom_label(l2, sizeof(l2), "cause",
					   connect_result_name((enum connect_result)r));
				prom_count(m, names[which], l2, v[i].failures[r]);
			}
	}
	free(v);
}

static void fam_ep_active(struct proxy *p, const char *pl, struct mbuf *m)
{
	endpoint_family(p, pl, m, EP_ACTIVE_CONNS);
}

static void fam_ep_weight(struct proxy *p, const char *pl, struct mbuf *m)
{
	endpoint_family(p, pl, m, EP_WEIGHT);
}

static void fam_ep_attempts(struct proxy *p, const char *pl, struct mbuf *m)
{
	endpoint_family(p, pl, m, EP_ATTEMPTS);
}

static void fam_ep_failures(struct proxy *p, const char *pl, struct mbuf *m)
{
	endpoint_family(p, pl, m, EP_FAILURES);
}

static void fam_namerd(struct proxy *p, const char *pl, struct mbuf *m)
{
	struct namerd *n = proxy_namerd(p);
	struct namerd_stats *st;
	static const char *const results[] = { "ok",           "failed",      "http_error",
					       "bad_response", "unreachable", "timeout",
					       "stream_ended" };

	if (!n)
		return;
	st = namerd_stats(n);
	const atomic_uint_fast64_t *v[] = { &st->ok,           &st->failed,      &st->http_error,
					    &st->bad_response, &st->unreachable, &st->timeout,
					    &st->stream_ended };
	for (size_t i = 0; i < ARRAY_SIZE(results); i++) {
		char l[300];
		snprintf(l, sizeof(l), "%s", pl);
		prom_label(l, sizeof(l), "result", results[i]);
		prom_count(m, "linkerd_tcp_namerd_requests_total", l, atomic_load(v[i]));
	}
}

static void fam_ready(struct proxy *p, const char *pl, struct mbuf *m)
{
	prom_count(m, "linkerd_tcp_proxy_ready", pl, proxy_ready(p) ? 1 : 0);
}

/* ------------------------------------------------------------------ process */

static unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0; /* not the one opendir holds */
}

/* Reads "Key:   value kB" style fields from /proc/self/status. */
static uint64_t status_field(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	uint64_t v = 0;
	size_t klen = strlen(key);

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtoull(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void sni_unmatched(const char *name, const uint64_t counts[SNI_FAILURES], void *arg)
{
	char l[NETADDR_STRLEN + 16] = "";

	prom_label(l, sizeof(l), "server", name);
	prom_count(arg, "linkerd_tcp_sni_unmatched_total", l, counts[SNI_UNMATCHED]);
}

static void sni_rejected(const char *name, const uint64_t counts[SNI_FAILURES], void *arg)
{
	for (int i = SNI_NOT_TLS; i < SNI_FAILURES; i++) {
		char l[NETADDR_STRLEN + 64] = "";
		prom_label(l, sizeof(l), "server", name);
		prom_label(l, sizeof(l), "cause", sni_failure_name((enum sni_failure)i));
		prom_count(arg, "linkerd_tcp_sni_rejected_total", l, counts[i]);
	}
}

/* Listeners that route by SNI: connections that led nowhere. */
static void sni_metrics(struct mbuf *m)
{
	prom_family(
		m, "linkerd_tcp_sni_unmatched_total", "counter",
		"TLS connections whose SNI name no proxy on the address serves (and no default).");
	listener_for_each_sni(sni_unmatched, m);
	prom_family(m, "linkerd_tcp_sni_rejected_total", "counter",
		    "Connections to an SNI-routed address closed before routing, by cause.");
	listener_for_each_sni(sni_rejected, m);
}

/* Parking: what waits for a thread, what is parked, and how fast it wakes. */
static void relay_metrics(struct mbuf *m, struct runtime *rt)
{
	struct relay_stats *rs = relay_stats();

	const struct {
		const char *name, *type, *help;
		uint64_t value;
	} one[] = {
		{ "linkerd_tcp_relay_queue", "gauge",
		  "Woken connections waiting for a relay thread.", runtime_queued(rt) },
		{ "linkerd_tcp_open_connections", "gauge",
		  "Open connections, parked ones included.", atomic_load(&rs->open) },
		{ "linkerd_tcp_parked_connections", "gauge",
		  "Idle connections parked without a relay thread.", atomic_load(&rs->parked) },
		{ "linkerd_tcp_parks_total", "counter",
		  "Times a quiet connection gave its relay thread back.", atomic_load(&rs->parks) },
		{ "linkerd_tcp_wakes_total", "counter",
		  "Times a parked connection was handed to a relay thread again.",
		  atomic_load(&rs->wakes) },
	};

	for (size_t i = 0; i < ARRAY_SIZE(one); i++) {
		prom_family(m, one[i].name, one[i].type, one[i].help);
		prom_count(m, one[i].name, "", one[i].value);
	}
	prom_family(m, "linkerd_tcp_wake_delay_seconds", "histogram",
		    "From a parked connection's wake-up to the next byte it moved.");
	prom_histogram(m, "linkerd_tcp_wake_delay_seconds", "", &rs->wake_delay);
	sni_metrics(m);
}

static void process_metrics(struct runtime *rt, struct mbuf *m)
{
	char labels[256] = "";

	prom_label(labels, sizeof(labels), "version", PACKAGE_VERSION);
	prom_family(m, "linkerd_tcp_build_info", "gauge", "Build information; always 1.");
	prom_count(m, "linkerd_tcp_build_info", labels, 1);
	prom_family(m, "linkerd_tcp_process_start_time_seconds", "gauge",
		    "Start time of the process since the Unix epoch.");
	prom_value(m, "linkerd_tcp_process_start_time_seconds", "", runtime_start_time(rt));
	prom_family(m, "linkerd_tcp_process_open_fds", "gauge", "Open file descriptors.");
	prom_count(m, "linkerd_tcp_process_open_fds", "", count_fds());
	prom_family(m, "linkerd_tcp_process_resident_memory_bytes", "gauge",
		    "Resident memory size.");
	prom_count(m, "linkerd_tcp_process_resident_memory_bytes", "",
		   status_field("VmRSS") * 1024);
	prom_family(m, "linkerd_tcp_process_threads", "gauge", "Threads in the process.");
	prom_count(m, "linkerd_tcp_process_threads", "", status_field("Threads"));

	unsigned size = runtime_pool_size(rt), busy = runtime_active(rt);
	prom_family(m, "linkerd_tcp_relay_threads", "gauge",
		    "Relay threads by state; a busy thread carries one connection.");
	prom_count(m, "linkerd_tcp_relay_threads", "state=\"busy\"", busy);
	prom_count(m, "linkerd_tcp_relay_threads", "state=\"idle\"", size - MIN(busy, size));
	relay_metrics(m, rt);
	prom_family(m, "linkerd_tcp_config_reloads_total", "counter",
		    "Configuration reloads by result.");
	prom_count(m, "linkerd_tcp_config_reloads_total", "result=\"ok\"",
		   runtime_reloads(rt, true));
	prom_count(m, "linkerd_tcp_config_reloads_total", "result=\"failed\"",
		   runtime_reloads(rt, false));
}

/* Every per-proxy family, in output order. */
static const struct {
	const char *name, *type, *help;
	family_fn fn;
} families[] = {
	{ "linkerd_tcp_proxy_ready", "gauge",
	  "1 when the proxy has an endpoint set (static, or namerd answered).", fam_ready },
	{ "linkerd_tcp_accepts_total", "counter", "Connections accepted.", fam_accepts },
	{ "linkerd_tcp_connections_active", "gauge", "Connections open now.", fam_active },
	{ "linkerd_tcp_received_bytes_total", "counter",
	  "Bytes received from clients and delivered to endpoints.", fam_from },
	{ "linkerd_tcp_sent_bytes_total", "counter",
	  "Bytes received from endpoints and delivered to clients.", fam_to },
	{ "linkerd_tcp_closes_total", "counter",
	  "Connections ended, by cause (done is a normal end).", fam_closes },
	{ "linkerd_tcp_tls_handshake_failures_total", "counter",
	  "Failed TLS handshakes with clients.", fam_tls },
	{ "linkerd_tcp_endpoint_tls_handshake_failures_total", "counter",
	  "Failed TLS handshakes with endpoints.", fam_endpoint_tls },
	{ "linkerd_tcp_connect_latency_seconds", "histogram",
	  "From accept until the endpoint connection (and its TLS handshake) is ready.",
	  fam_latency },
	{ "linkerd_tcp_connection_duration_seconds", "histogram",
	  "From accept until the connection is closed.", fam_duration },
	{ "linkerd_tcp_endpoints", "gauge", "Endpoints by state.", fam_ep_state },
	{ "linkerd_tcp_endpoint_connections_active", "gauge", "Connections open to each endpoint.",
	  fam_ep_active },
	{ "linkerd_tcp_endpoint_weight", "gauge", "Each endpoint's weight.", fam_ep_weight },
	{ "linkerd_tcp_endpoint_connects_total", "counter", "Connect attempts to each endpoint.",
	  fam_ep_attempts },
	{ "linkerd_tcp_connect_failures_total", "counter",
	  "Failed connect attempts to each endpoint, by cause.", fam_ep_failures },
	{ "linkerd_tcp_namerd_requests_total", "counter", "namerd answers and failures, by result.",
	  fam_namerd },
};

void metrics_render(struct runtime *rt, struct mbuf *m)
{
	process_metrics(rt, m);
	for (size_t i = 0; i < ARRAY_SIZE(families); i++)
		family(rt, m, families[i].name, families[i].type, families[i].help, families[i].fn);
}
