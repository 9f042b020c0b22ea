/*
 * metrics: lock-free histograms and the Prometheus text format (0.0.4).
 *
 * Counters and gauges are plain C11 atomics kept by the modules that own
 * the events (proxy_stats, namerd_stats, the balancer's endpoint views);
 * histograms here are fixed-bucket and cumulative on output, recorded with
 * relaxed atomic adds from relay threads.  metrics_render, called by the
 * admin thread, walks the running proxies and writes every family with its
 * # HELP and # TYPE lines.  Names start with linkerd_tcp_, counters end in
 * _total, durations are in seconds.
 */
#ifndef LTCP_METRICS_H
#define LTCP_METRICS_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define HIST_MAX_BOUNDS 16

struct histogram {
	const double *bounds; /* upper bounds, ascending; +Inf is implicit */
	unsigned nbounds;
	atomic_uint_fast64_t buckets[HIST_MAX_BOUNDS + 1]; /* not cumulative */
	atomic_uint_fast64_t sum_ns;                       /* sum of observations, in ns */
};

/* Bucket bounds (seconds) for connect latency and connection duration. */
extern const double metrics_latency_bounds[];
extern const unsigned metrics_latency_nbounds;
extern const double metrics_duration_bounds[];
extern const unsigned metrics_duration_nbounds;

void histogram_init(struct histogram *h, const double *bounds, unsigned nbounds);
void histogram_observe(struct histogram *h, double seconds);

/* A growing text buffer. */
struct mbuf {
	char *p;
	size_t len, cap;
};
void mbuf_printf(struct mbuf *m, const char *fmt, ...) PRINTF(2, 3);
void mbuf_free(struct mbuf *m);

/* Exposition helpers.  labels is a preformatted label list such as
 * proxy="web",server="127.0.0.1:7474" (or ""). */
void prom_family(struct mbuf *m, const char *name, const char *type, const char *help);
void prom_value(struct mbuf *m, const char *name, const char *labels, double v);
void prom_count(struct mbuf *m, const char *name, const char *labels, uint64_t v);
void prom_histogram(struct mbuf *m, const char *name, const char *labels,
		    const struct histogram *h);
/* Appends name="value" (escaped) to a label list, with a comma when needed. */
void prom_label(char *buf, size_t len, const char *name, const char *value);

struct runtime;
/* Renders every metric of the running proxies and of the process. */
void metrics_render(struct runtime *rt, struct mbuf *out);

#endif
