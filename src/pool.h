/*
 * pool: a fixed set of pre-spawned relay threads.
 *
 * Each thread runs one connection at a time from start to end.  Idle
 * threads wait on a LIFO stack, so the most recently used (cache-warm)
 * thread takes the next connection and rarely used stacks stay untouched.
 * An acceptor first reserves an idle thread (pool_reserve blocks while none
 * is idle: a full pool leaves new connections in the kernel backlog), then
 * accepts, then hands the connection over with pool_dispatch, or returns
 * the thread with pool_unreserve.  The pool knows nothing about sockets: a
 * job is opaque to it and goes to the handler given at creation.
 * Threads have an explicit stack size, a name, and every signal blocked.
 */
#ifndef LTCP_POOL_H
#define LTCP_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct pool;
struct pool_worker;

/* Runs one job on a relay thread.  *state is the thread's private slot
 * (NULL at first); the handler may fill it, the pool frees it at exit. */
typedef void (*pool_handler)(void *job, void **state);
typedef void (*pool_state_free)(void *state);

/* Starts n threads; returns NULL (and logs) when threads cannot be made. */
struct pool *pool_new(unsigned n, size_t job_size, pool_handler fn,
		      pool_state_free state_free) MUSTCHECK;
/* Stops the threads once their current job ends, joins them, frees all. */
void pool_free(struct pool *p);

/* Blocks until a thread is idle; NULL once *cancel is set (or the pool stops). */
struct pool_worker *pool_reserve(struct pool *p, const atomic_bool *cancel);
void pool_unreserve(struct pool *p, struct pool_worker *w);
/* Copies job (job_size bytes) to the reserved thread and wakes it. */
void pool_dispatch(struct pool *p, struct pool_worker *w, const void *job);
/* Wakes every blocked pool_reserve so that it rechecks its cancel flag. */
void pool_wake(struct pool *p);

unsigned pool_size(struct pool *p);
unsigned pool_busy(struct pool *p);
/* Waits until no thread runs a job or deadline_ms passes; returns busy count. */
unsigned pool_wait_idle(struct pool *p, int64_t deadline_ms);

#endif
