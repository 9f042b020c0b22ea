#include "auto-config.h"

#include "histogram.h"

#include "util.h"

#include <string.h>

const double histogram_latency_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					    0.1,    0.25,  0.5,    1,     2.5,  5,     10 };
const unsigned histogram_latency_nbounds = ARRAY_SIZE(histogram_latency_bounds);
const double histogram_duration_bounds[] = { 0.001, 0.01, 0.1,  1,    10,    60,
					     300,   900,  1800, 3600, 14400, 86400 };
const unsigned histogram_duration_nbounds = ARRAY_SIZE(histogram_duration_bounds);
const double histogram_wake_bounds[] = { 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
					 0.0025,  0.005,    0.01,    0.025,  0.1,     1 };
const unsigned histogram_wake_nbounds = ARRAY_SIZE(histogram_wake_bounds);

void histogram_init(struct histogram *h, const double *bounds, unsigned nbounds)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->nbounds = MIN(nbounds, (unsigned)HIST_MAX_BOUNDS);
}

void histogram_observe(struct histogram *h, double seconds)
{
	unsigned i = 0;

	if (seconds < 0)
		seconds = 0;
	while (i < h->nbounds && seconds > h->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
}
