/*
 * metrics: the Prometheus text format (0.0.4) of everything that is counted.
 *
 * Counters and gauges are plain C11 atomics kept by the modules that own
 * the events (proxy_stats, namerd_stats, the balancer's endpoint views);
 * histograms (histogram.h) are written out cumulative.  metrics_render, called by the
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

#include "histogram.h"
#include "util.h"

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
