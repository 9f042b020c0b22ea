#include "auto-config.h"

#include "pool.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* Relay threads need little stack, but a TLS handshake (GnuTLS, nettle,
 * GMP's alloca) can take a few dozen KiB; sanitizers need more. */
#ifdef HAVE_SANITIZERS
#define RELAY_STACK (2u << 20)
#else
#define RELAY_STACK (256u << 10)
#endif

struct pool_class {
	struct pool_class *next; /* the pool's list */
	unsigned busy;           /* its jobs running now */
	unsigned waiting;        /* its acceptors blocked in pool_reserve */
	struct pool_job *head, *tail;
	bool released;
};

struct pool_worker {
	struct pool *pool;
	pthread_t thread;
	pthread_cond_t cond; /* signalled when a job arrives or the pool stops */
	struct pool_job *job;
	struct pool_class *cls;
	bool claimed;             /* promised to end its job soon (pool_claim) */
	atomic_bool nudged;       /* asked to end its quiet job (nudge_fd written) */
	atomic_llong quiet_since; /* now_ms() when its job went quiet; 0: not quiet */
	long long quiet_seen;     /* quiet_since as read for the sort (pool lock) */
	int nudge_fd;             /* eventfd the relay polls while its job is quiet; -1 */
	bool nudge_warned;
	unsigned index;
	void *state;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t idle_cond; /* a thread became idle, or the queue emptied */
	pool_handler fn;
	pool_state_free state_free;
	unsigned n, started;
	unsigned busy;    /* threads between dispatch and the end of their job */
	unsigned queued;  /* woken jobs waiting for a thread */
	unsigned waiting; /* acceptors blocked in pool_reserve */
	unsigned claimed; /* threads that promised to end their job soon */
	unsigned nudged;  /* threads asked to, not answered yet */
	atomic_int unmet; /* waiters no thread is free, promised or asked for */
	bool stopping, stopped;
	struct pool_worker *workers;
	struct pool_worker **idle;  /* LIFO stack */
	struct pool_worker **quiet; /* scratch of demand_update_locked */
	unsigned nidle;
	struct pool_class *classes;
};

static _Thread_local struct pool_worker *current_worker;

/* ------------------------------------------------------------------ demand */

static int quiet_cmp(const void *a, const void *b)
{
	long long x = (*(struct pool_worker *const *)a)->quiet_seen;
	long long y = (*(struct pool_worker *const *)b)->quiet_seen;

	return (x > y) - (x < y);
}

/* The workers that could be asked (quiet, with a nudge descriptor, not asked
 * yet), the longest quiet first when more than `want` are; their count.  One
 * pass and at most one sort: the lock is held. */
static unsigned quiet_workers_locked(struct pool *p, unsigned want)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->started; i++) {
		struct pool_worker *w = &p->workers[i];
		long long since = atomic_load_explicit(&w->quiet_since, memory_order_relaxed);
		if (since && w->nudge_fd >= 0 && !atomic_load(&w->nudged)) {
			w->quiet_seen = since; /* one value for the sort */
			p->quiet[n++] = w;
		}
	}
	if (n > want)
		qsort(p->quiet, n, sizeof(*p->quiet), quiet_cmp);
	return n;
}

static void nudge_clear_locked(struct pool *p, struct pool_worker *w)
{
	if (atomic_exchange(&w->nudged, false))
		p->nudged--;
}

/* While waiters outnumber the threads free, promised or asked, asks the
 * threads whose jobs have been quiet longest to make room, one each (a
 * shared descriptor would wake every quiet thread for each waiter); p->lock
 * held. */
static void demand_update_locked(struct pool *p)
{
	long unmet = (long)p->waiting + p->queued - p->nidle - p->claimed - p->nudged;
	unsigned n = unmet > 0 ? quiet_workers_locked(p, (unsigned)MIN(unmet, (long)p->n)) : 0;
	uint64_t one = 1;

	for (unsigned i = 0; i < n && unmet > 0; i++, unmet--) {
		struct pool_worker *w = p->quiet[i];
		atomic_store(&w->nudged, true);
		p->nudged++;
		if (write(w->nudge_fd, &one, sizeof(one)) < 0)
			log_debug("pool nudge eventfd: %s", strerror(errno));
	}
	atomic_store(&p->unmet, (int)MAX(unmet, 0));
}

int pool_nudge_fd(struct pool *p)
{
	struct pool_worker *w = current_worker;

	if (!w || w->pool != p)
		return -1;
	if (w->nudge_fd < 0) { /* under the lock: the pool reads it there */
		pthread_mutex_lock(&p->lock);
		w->nudge_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		pthread_mutex_unlock(&p->lock);
		if (w->nudge_fd < 0 && !w->nudge_warned) {
			log_warn("relay thread %u: eventfd: %s; it parks only after park_idle_ms",
				 w->index, strerror(errno));
			w->nudge_warned = true;
		}
	}
	return w->nudge_fd;
}

void pool_quiet(struct pool *p, bool quiet)
{
	struct pool_worker *w = current_worker;

	if (w && w->pool == p)
		atomic_store_explicit(&w->quiet_since, quiet ? (long long)now_ms() : 0,
				      memory_order_relaxed);
}

bool pool_wanted(struct pool *p)
{
	struct pool_worker *w = current_worker;

	return atomic_load_explicit(&p->unmet, memory_order_relaxed) > 0 ||
	       (w && atomic_load(&w->nudged));
}

bool pool_nudged(struct pool *p)
{
	struct pool_worker *w = current_worker;

	return w && w->pool == p && atomic_load(&w->nudged);
}

bool pool_claim(struct pool *p)
{
	struct pool_worker *w = current_worker;
	uint64_t v;
	bool ok = false;

	if (!w || w->pool != p)
		return false;
	if (w->nudge_fd >= 0)
		(void)!read(w->nudge_fd, &v, sizeof(v));
	pthread_mutex_lock(&p->lock);
	nudge_clear_locked(p, w);
	if (!w->claimed && p->waiting + p->queued > p->nidle + p->claimed + p->nudged) {
		w->claimed = true;
		p->claimed++;
		ok = true;
	}
	demand_update_locked(p);
	pthread_mutex_unlock(&p->lock);
	return ok;
}

void pool_unclaim(struct pool *p)
{
	struct pool_worker *w = current_worker;

	if (!w || w->pool != p)
		return;
	pthread_mutex_lock(&p->lock);
	if (w->claimed) {
		w->claimed = false;
		p->claimed--;
	}
	nudge_clear_locked(p, w);
	demand_update_locked(p);
	pthread_mutex_unlock(&p->lock);
}

/* ------------------------------------------------------------------ classes */

struct pool_class *pool_class_new(struct pool *p)
{
	struct pool_class *c = xcalloc(1, sizeof(*c));

	pthread_mutex_lock(&p->lock);
	c->next = p->classes;
	p->classes = c;
	pthread_mutex_unlock(&p->lock);
	return c;
}

static void class_unlink_locked(struct pool *p, struct pool_class *c)
{
	for (struct pool_class **pp = &p->classes; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			free(c);
			return;
		}
	}
}

static void class_maybe_free_locked(struct pool *p, struct pool_class *c)
{
	if (c->released && c->busy == 0 && !c->head && c->waiting == 0)
		class_unlink_locked(p, c);
}

void pool_class_release(struct pool *p, struct pool_class *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&p->lock);
	c->released = true;
	class_maybe_free_locked(p, c);
	pthread_mutex_unlock(&p->lock);
}

/* True when no other class that waits runs fewer jobs than c. */
static bool class_turn_locked(const struct pool *p, const struct pool_class *c)
{
	for (const struct pool_class *k = p->classes; k; k = k->next)
		if (k != c && (k->waiting > 0 || k->head) && k->busy < c->busy)
			return false;
	return true;
}

/* The queued job of the waiting class with the fewest running jobs. */
static struct pool_job *dequeue_locked(struct pool *p)
{
	struct pool_class *best = NULL;
	struct pool_job *j;

	if (p->queued == 0)
		return NULL;
	for (struct pool_class *k = p->classes; k; k = k->next)
		if (k->head && (!best || k->busy < best->busy))
			best = k;
	j = best->head;
	best->head = j->next;
	if (!best->head)
		best->tail = NULL;
	j->next = NULL;
	p->queued--;
	return j;
}

/* ------------------------------------------------------------------ threads */

static void start_job_locked(struct pool *p, struct pool_worker *w, struct pool_class *c,
			     struct pool_job *job)
{
	job->cls = c;
	w->job = job;
	w->cls = c;
	c->busy++;
	p->busy++;
}

static void end_job_locked(struct pool *p, struct pool_worker *w)
{
	struct pool_class *c = w->cls;

	w->job = NULL;
	w->cls = NULL;
	c->busy--;
	p->busy--;
	if (w->claimed) {
		w->claimed = false;
		p->claimed--;
	}
	nudge_clear_locked(p, w);
	atomic_store(&w->quiet_since, 0);
	class_maybe_free_locked(p, c);
}

static void *worker_main(void *arg)
{
	struct pool_worker *w = arg;
	struct pool *p = w->pool;

	current_worker = w;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!w->job && !p->stopping)
			pthread_cond_wait(&w->cond, &p->lock);
		if (!w->job)
			break;
		pthread_mutex_unlock(&p->lock);
		p->fn(w->job, &w->state);
		pthread_mutex_lock(&p->lock);
		end_job_locked(p, w);
		struct pool_job *next = dequeue_locked(p);
		if (next) {
			start_job_locked(p, w, next->cls, next);
		} else {
			p->idle[p->nidle++] = w;
			pthread_cond_broadcast(&p->idle_cond);
		}
		demand_update_locked(p);
	}
	pthread_mutex_unlock(&p->lock);
	if (w->state && p->state_free)
		p->state_free(w->state);
	return NULL;
}

#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH           78
#define PR_FUTEX_HASH_SET_SLOTS 1
#endif

/* Since Linux 6.16 a threaded process gets a private futex hash sized by the
 * CPU count; thousands of relay threads each waiting on their own condition
 * variable would then share a few buckets and every wake-up walks a long
 * chain.  Size it for the pool (older kernels say EINVAL: nothing to do). */
static void size_futex_hash(unsigned threads)
{
	unsigned long slots = 16;

	while (slots < threads && slots < 65536)
		slots <<= 1;
	(void)prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, slots, 0, 0);
}

static int start_threads(struct pool *p)
{
	for (unsigned i = 0; i < p->n; i++) {
		char name[24];
		snprintf(name, sizeof(name), "relay-%u", i);
		int rc = util_thread_start(&p->workers[i].thread, RELAY_STACK, name, worker_main,
					   &p->workers[i]);
		if (rc != 0) {
			log_error("cannot start relay thread %u of %u: %s", i + 1, p->n,
				  strerror(rc));
			return -1;
		}
		p->started++;
	}
	return 0;
}

struct pool *pool_new(unsigned n, pool_handler fn, pool_state_free state_free)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	pthread_condattr_t ca;

	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->idle_cond, &ca);
	p->fn = fn;
	p->state_free = state_free;
	p->n = n;
	p->workers = xcalloc(n, sizeof(*p->workers));
	p->idle = xcalloc(n, sizeof(*p->idle));
	p->quiet = xcalloc(n, sizeof(*p->quiet));
	for (unsigned i = 0; i < n; i++) {
		struct pool_worker *w = &p->workers[i];
		w->pool = p;
		w->index = i;
		w->nudge_fd = -1; /* made when its first job goes quiet */
		pthread_cond_init(&w->cond, &ca);
		/* Push in reverse so that relay-0 is on top of the idle stack. */
		p->idle[n - 1 - i] = w;
	}
	p->nidle = n;
	pthread_condattr_destroy(&ca);
	size_futex_hash(n);
	if (start_threads(p) < 0)
		goto fail;
	return p;
fail:
	pool_free(p);
	return NULL;
}

void pool_stop(struct pool *p)
{
	if (!p || p->stopped)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	for (unsigned i = 0; i < p->started; i++)
		pthread_cond_signal(&p->workers[i].cond);
	pthread_cond_broadcast(&p->idle_cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->workers[i].thread, NULL);
	p->stopped = true;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	pool_stop(p);
	for (unsigned i = 0; i < p->n; i++) {
		pthread_cond_destroy(&p->workers[i].cond);
		close_fd(&p->workers[i].nudge_fd);
	}
	while (p->classes) {
		struct pool_class *next = p->classes->next;
		free(p->classes);
		p->classes = next;
	}
	free(p->workers);
	free(p->idle);
	free(p->quiet);
	pthread_cond_destroy(&p->idle_cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ------------------------------------------------------------------ hand-off */

static bool may_take_locked(const struct pool *p, const struct pool_class *c)
{
	return p->nidle > 0 && p->queued == 0 && class_turn_locked(p, c);
}

struct pool_worker *pool_reserve(struct pool *p, struct pool_class *c, const atomic_bool *cancel)
{
	struct pool_worker *w = NULL;

	pthread_mutex_lock(&p->lock);
	c->waiting++;
	p->waiting++;
	demand_update_locked(p);
	while (!may_take_locked(p, c) && !p->stopping && !atomic_load(cancel))
		pthread_cond_wait(&p->idle_cond, &p->lock);
	c->waiting--;
	p->waiting--;
	if (may_take_locked(p, c) && !p->stopping && !atomic_load(cancel))
		w = p->idle[--p->nidle];
	demand_update_locked(p);
	/* Others may have waited for this one's turn to pass. */
	pthread_cond_broadcast(&p->idle_cond);
	class_maybe_free_locked(p, c);
	pthread_mutex_unlock(&p->lock);
	return w;
}

void pool_unreserve(struct pool *p, struct pool_worker *w)
{
	pthread_mutex_lock(&p->lock);
	p->idle[p->nidle++] = w;
	demand_update_locked(p);
	pthread_cond_broadcast(&p->idle_cond);
	pthread_mutex_unlock(&p->lock);
}

void pool_dispatch(struct pool *p, struct pool_worker *w, struct pool_class *c,
		   struct pool_job *job)
{
	pthread_mutex_lock(&p->lock);
	start_job_locked(p, w, c, job);
	pthread_mutex_unlock(&p->lock);
	/* After unlocking: the woken thread does not block on the lock at once. */
	pthread_cond_signal(&w->cond);
}

void pool_submit(struct pool *p, struct pool_class *c, struct pool_job *job)
{
	struct pool_worker *w = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->nidle > 0 && p->queued == 0) {
		w = p->idle[--p->nidle];
		start_job_locked(p, w, c, job);
	} else {
		job->cls = c;
		job->next = NULL;
		if (c->tail)
			c->tail->next = job;
		else
			c->head = job;
		c->tail = job;
		p->queued++;
		demand_update_locked(p);
	}
	pthread_mutex_unlock(&p->lock);
	if (w)
		pthread_cond_signal(&w->cond);
}

void pool_wake(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->idle_cond);
	pthread_mutex_unlock(&p->lock);
}

unsigned pool_size(struct pool *p)
{
	return p->n;
}

unsigned pool_busy(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned b = p->busy;
	pthread_mutex_unlock(&p->lock);
	return b;
}

unsigned pool_queued(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned q = p->queued;
	pthread_mutex_unlock(&p->lock);
	return q;
}

unsigned pool_wait_idle(struct pool *p, int64_t deadline_ms)
{
	unsigned left;

	pthread_mutex_lock(&p->lock);
	while (p->busy + p->queued > 0 && cond_wait_until(&p->idle_cond, &p->lock, deadline_ms))
		;
	left = p->busy + p->queued;
	pthread_mutex_unlock(&p->lock);
	return left;
}
