/*
 * namerd: keeps one proxy's balancer in step with namerd.
 *
 * Each proxy that names namerd gets one dedicated thread that asks
 * GET {url}/api/1/resolve/{namespace}?path={path} with libcurl, either as a
 * streaming request (mode watch: newline-framed snapshots; a non-200 answer
 * is dropped at its headers; the stream is reopened when it ends, breaks or
 * stays silent past watch_idle_secs) or every interval_secs, counted from
 * the start of each request (mode poll).  A bound answer replaces the
 * balancer's endpoint set, neg or an empty bound empties it; anything else
 * (failed, an HTTP error, a timeout, garbage) keeps the last good set, is
 * logged once per episode (namerd's text sanitized to one line) and
 * counted.  Pacing: after a good answer the next request starts no sooner
 * than interval_secs after the last one started (watch: and after at least
 * the first backoff step); without one, jittered exponential backoff, which
 * every good answer starts over.
 *
 * The main thread starts and stops the thread; the thread owns its libcurl
 * handles and touches the shared world only through balancer_update and
 * the atomic counters in struct namerd_stats.  namerd_status may be called
 * from any thread.
 */
#ifndef LTCP_NAMERD_H
#define LTCP_NAMERD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct balancer;
struct namerd;

struct namerd_stats {
	atomic_uint_fast64_t ok;           /* answers applied (bound or neg) */
	atomic_uint_fast64_t failed;       /* {"type":"failed"} answers */
	atomic_uint_fast64_t http_error;   /* a status other than 200 */
	atomic_uint_fast64_t bad_response; /* garbage, truncated or oversized */
	atomic_uint_fast64_t unreachable;  /* connect failures, resets */
	atomic_uint_fast64_t timeout;      /* no answer within timeout_ms */
	atomic_uint_fast64_t stream_ended; /* watch streams that ended */
};

struct namerd_status {
	bool answered;          /* at least one answer was applied */
	bool failing;           /* the last attempt failed */
	int64_t last_update_ms; /* now_ms() clock; 0 before the first answer */
	char last_error[160];
	char url[256];
};

/* Starts the thread for this proxy; NULL (logged) when it cannot be made. */
struct namerd *namerd_start(const char *label, const struct cfg_namerd *cfg, struct balancer *bal);
/* Stops the thread (interrupting any request) and frees everything. */
void namerd_stop(struct namerd *n);
/* True when the running thread was started from an equal namerd section. */
bool namerd_same_config(const struct namerd *n, const struct cfg_namerd *cfg);
struct namerd_stats *namerd_stats(struct namerd *n);
void namerd_status(struct namerd *n, struct namerd_status *out);

/* The request URL for cfg (the caller frees it); exposed for the tests. */
char *namerd_url(const struct cfg_namerd *cfg, bool watch);

#endif
