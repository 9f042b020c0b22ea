/*
 * relay: one proxied connection, run on relay threads while it moves bytes.
 *
 * relay_run connects to an endpoint (balancer choice, connect timeout,
 * retries on other endpoints), then copies bytes both ways until both
 * directions have reached EOF: the thread sleeps in poll(2) on the two
 * sockets and moves what each is ready for, with splice(2) through a pipe
 * for plain-to-plain.  EOF on one side half-closes the other.  One
 * teardown function closes everything and logs the summary line.
 *
 * A connection that moved no byte for park_idle_ms (or at once, when other
 * work waits for a thread and it is quiet) is parked: its pipes are given
 * back, its sockets go to its listener's parked set, and the thread returns
 * to the pool.  When it wakes, the pool runs it again, on any relay thread,
 * from where it stopped.  The connection's state (struct conn) belongs to
 * whichever thread runs it, or to the parked set between runs.
 */
#ifndef LTCP_RELAY_H
#define LTCP_RELAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "histogram.h"
#include "pool.h"

/* Process-wide counters of the relays (any thread; atomics). */
struct relay_stats {
	atomic_uint_fast64_t open;   /* connections between accept and close */
	atomic_uint_fast64_t parked; /* connections parked now */
	atomic_uint_fast64_t parks;  /* times a connection was parked */
	atomic_uint_fast64_t wakes;  /* times a parked connection was handed back */
	struct histogram wake_delay; /* wake-up to the next byte moved */
};
struct relay_stats *relay_stats(void);

/* Called once at startup: buffer size and splice pipe budget. */
void relay_init(size_t buffer_size, unsigned max_pipes);
/* Pool handler: runs a new connection, or a woken one, until it closes or parks. */
void relay_run(struct pool_job *job, void **thread_state);
/* Waits until no connection is open (parked ones included) or deadline_ms;
 * returns how many are still open. */
unsigned relay_wait_closed(int64_t deadline_ms);
void relay_thread_state_free(void *state);
/* Makes every running relay end its connection now (grace expired). */
void relay_abort_all(void);
void relay_shutdown(void);

#endif
