/*
 * histogram: fixed-bucket, lock-free histograms of durations in seconds.
 *
 * The owner (a proxy's stats) initialises one with its bucket bounds; relay
 * threads record with relaxed atomic adds; the metrics renderer reads the
 * buckets and makes them cumulative on output.  Any thread.
 */
#ifndef LTCP_HISTOGRAM_H
#define LTCP_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#define HIST_MAX_BOUNDS 16

struct histogram {
	const double *bounds; /* upper bounds, ascending; +Inf is implicit */
	unsigned nbounds;
	atomic_uint_fast64_t buckets[HIST_MAX_BOUNDS + 1]; /* not cumulative */
	atomic_uint_fast64_t sum_ns;                       /* sum of observations, in ns */
};

/* Bucket bounds (seconds) for connect latency and connection duration. */
extern const double histogram_latency_bounds[];
extern const unsigned histogram_latency_nbounds;
extern const double histogram_duration_bounds[];
extern const unsigned histogram_duration_nbounds;
/* Microseconds to a second: a parked connection's wake-up to its next byte. */
extern const double histogram_wake_bounds[];
extern const unsigned histogram_wake_nbounds;

void histogram_init(struct histogram *h, const double *bounds, unsigned nbounds);
void histogram_observe(struct histogram *h, double seconds);

#endif
