#include "auto-config.h"

#include "pool.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

/* Relay threads need little stack, but a TLS handshake (GnuTLS, nettle,
 * GMP's alloca) can take a few dozen KiB; sanitizers need more. */
#ifdef HAVE_SANITIZERS
#define RELAY_STACK (2u << 20)
#else
#define RELAY_STACK (256u << 10)
#endif

struct pool_worker {
	struct pool *pool;
	pthread_t thread;
	pthread_cond_t cond; /* signalled when a job arrives or the pool stops */
	bool has_job;
	unsigned index;
	void *state;
	unsigned char *job; /* pool->job_size bytes */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t idle_cond; /* a thread became idle */
	pool_handler fn;
	pool_state_free state_free;
	size_t job_size;
	unsigned n, started;
	unsigned busy; /* threads between dispatch and the end of their job */
	bool stopping;
	struct pool_worker *workers;
	struct pool_worker **idle; /* LIFO stack */
	unsigned nidle;
};

static void *worker_main(void *arg)
{
	struct pool_worker *w = arg;
	struct pool *p = w->pool;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!w->has_job && !p->stopping)
			pthread_cond_wait(&w->cond, &p->lock);
		if (!w->has_job)
			break;
		pthread_mutex_unlock(&p->lock);
		p->fn(w->job, &w->state);
		pthread_mutex_lock(&p->lock);
		w->has_job = false;
		p->busy--;
		p->idle[p->nidle++] = w;
		pthread_cond_broadcast(&p->idle_cond);
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

struct pool *pool_new(unsigned n, size_t job_size, pool_handler fn, pool_state_free state_free)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	pthread_condattr_t ca;
	int rc;

	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->idle_cond, &ca);
	p->fn = fn;
	p->state_free = state_free;
	p->job_size = job_size;
	p->n = n;
	p->workers = xcalloc(n, sizeof(*p->workers));
	p->idle = xcalloc(n, sizeof(*p->idle));
	for (unsigned i = 0; i < n; i++) {
		struct pool_worker *w = &p->workers[i];
		w->pool = p;
		w->index = i;
		w->job = xcalloc(1, job_size);
		pthread_cond_init(&w->cond, &ca);
		/* Push in reverse so that relay-0 is on top of the idle stack. */
		p->idle[n - 1 - i] = w;
	}
	p->nidle = n;
	size_futex_hash(n);
	for (unsigned i = 0; i < n; i++) {
		char name[24];
		snprintf(name, sizeof(name), "relay-%u", i);
		rc = util_thread_start(&p->workers[i].thread, RELAY_STACK, name, worker_main,
				       &p->workers[i]);
		if (rc != 0) {
			log_error("cannot start relay thread %u of %u: %s", i + 1, n, strerror(rc));
			break;
		}
		p->started++;
	}
	pthread_condattr_destroy(&ca);
	if (p->started < n) {
		pool_free(p);
		return NULL;
	}
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	for (unsigned i = 0; i < p->started; i++)
		pthread_cond_signal(&p->workers[i].cond);
	pthread_cond_broadcast(&p->idle_cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->workers[i].thread, NULL);
	for (unsigned i = 0; i < p->n; i++) {
		pthread_cond_destroy(&p->workers[i].cond);
		free(p->workers[i].job);
	}
	free(p->workers);
	free(p->idle);
	pthread_cond_destroy(&p->idle_cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

struct pool_worker *pool_reserve(struct pool *p, const atomic_bool *cancel)
{
	struct pool_worker *w = NULL;

	pthread_mutex_lock(&p->lock);
	while (p->nidle == 0 && !p->stopping && !atomic_load(cancel))
		pthread_cond_wait(&p->idle_cond, &p->lock);
	if (p->nidle > 0 && !p->stopping && !atomic_load(cancel))
		w = p->idle[--p->nidle];
	pthread_mutex_unlock(&p->lock);
	return w;
}

void pool_unreserve(struct pool *p, struct pool_worker *w)
{
	pthread_mutex_lock(&p->lock);
	p->idle[p->nidle++] = w;
	pthread_cond_broadcast(&p->idle_cond);
	pthread_mutex_unlock(&p->lock);
}

void pool_dispatch(struct pool *p, struct pool_worker *w, const void *job)
{
	pthread_mutex_lock(&p->lock);
	memcpy(w->job, job, p->job_size);
	w->has_job = true;
	p->busy++;
	pthread_mutex_unlock(&p->lock);
	/* After unlocking: the woken thread does not block on the lock at once. */
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

unsigned pool_wait_idle(struct pool *p, int64_t deadline_ms)
{
	unsigned busy;

	pthread_mutex_lock(&p->lock);
	while (p->busy > 0 && cond_wait_until(&p->idle_cond, &p->lock, deadline_ms))
		;
	busy = p->busy;
	pthread_mutex_unlock(&p->lock);
	return busy;
}
