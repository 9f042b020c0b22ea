/*
 * pool: a fixed set of pre-spawned relay threads and the jobs waiting for them.
 *
 * A thread runs one job at a time: a new connection, or a parked one that
 * woke up.  Idle threads wait on a LIFO stack, so the most recently used
 * (cache-warm) thread takes the next job and rarely used stacks stay
 * untouched.  An acceptor first reserves an idle thread (pool_reserve blocks
 * while none is free: a full pool leaves new connections in the kernel
 * backlog), then accepts and hands the job over with pool_dispatch, or gives
 * the thread back with pool_unreserve.  A woken connection is already
 * admitted: pool_submit never blocks, and queued woken jobs are served
 * before any new accept.
 *
 * Fairness: every job belongs to a class (one per proxy).  When threads are
 * short, the waiting class with the fewest running jobs goes first, so one
 * proxy cannot hold the pool while others wait.  And while anything waits,
 * the threads whose connections have been quiet longest are asked, one per
 * waiter, to park them and free their thread (see pool_nudge_fd).
 *
 * The pool knows nothing about sockets.  Threads have an explicit stack
 * size, a name, and every signal blocked.  Jobs and classes are owned by
 * the caller; a class is freed by the pool once it is released and idle.
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
struct pool_class;

/* Embedded in the caller's job; the pool links queued jobs through it. */
struct pool_job {
	struct pool_job *next;
	struct pool_class *cls;
};

/* Runs one job on a relay thread.  *state is the thread's private slot
 * (NULL at first); the handler may fill it, the pool frees it at exit. */
typedef void (*pool_handler)(struct pool_job *job, void **state);
typedef void (*pool_state_free)(void *state);

/* Starts n threads; returns NULL (and logs) when threads cannot be made. */
struct pool *pool_new(unsigned n, pool_handler fn, pool_state_free state_free) MUSTCHECK;
/* Runs what is queued, then stops and joins the threads. */
void pool_stop(struct pool *p);
/* Stops (if not yet) and frees everything, classes included. */
void pool_free(struct pool *p);

/* A class of jobs (one per proxy) for fairness. */
struct pool_class *pool_class_new(struct pool *p);
/* The owner lets go; the pool frees it once none of its jobs runs or waits. */
void pool_class_release(struct pool *p, struct pool_class *c);

/* Blocks until a thread is free for class c and no woken job waits;
 * NULL once *cancel is set (or the pool stops). */
struct pool_worker *pool_reserve(struct pool *p, struct pool_class *c, const atomic_bool *cancel);
void pool_unreserve(struct pool *p, struct pool_worker *w);
/* Hands job (of class c) to the reserved thread and wakes it. */
void pool_dispatch(struct pool *p, struct pool_worker *w, struct pool_class *c,
		   struct pool_job *job);
/* Runs job on a free thread, or queues it ahead of new accepts; never blocks. */
void pool_submit(struct pool *p, struct pool_class *c, struct pool_job *job);
/* Wakes every blocked pool_reserve so that it rechecks its cancel flag. */
void pool_wake(struct pool *p);

/* Making room (relay thread, about its own quiet job).  While jobs or
 * acceptors wait and no thread is free or promised, the pool asks the
 * threads whose jobs have been quiet longest, one per waiter, by writing
 * their nudge descriptor.  A relay marks its job quiet around its poll,
 * polls its nudge descriptor meanwhile, and then claims (promising to end
 * the job soon, by parking it) or, busy again, unclaims. */
int pool_nudge_fd(struct pool *p);
void pool_quiet(struct pool *p, bool quiet);
/* True when a waiter wants this thread's room (asked, or nobody asked yet). */
bool pool_wanted(struct pool *p);
/* True when this thread was asked and has not answered. */
bool pool_nudged(struct pool *p);
/* Takes one unit of demand; false when nothing waits any more. */
bool pool_claim(struct pool *p);
/* Gives a claim (or an unanswered nudge) back: the job goes on here. */
void pool_unclaim(struct pool *p);

unsigned pool_size(struct pool *p);
unsigned pool_busy(struct pool *p);
unsigned pool_queued(struct pool *p);
/* Waits until no thread runs a job and none is queued, or deadline_ms
 * passes; returns the number still running or queued. */
unsigned pool_wait_idle(struct pool *p, int64_t deadline_ms);

#endif
