#include "auto-config.h"

#include "runtime.h"

#include "listener.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "relay.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Descriptors kept free for logging, config reloads and the admin side. */
#define FD_RESERVE 64

struct runtime {
	struct config *cfg;
	struct pool *pool;
	/* The proxy list (and each proxy's namerd pointer) changes only on the
	 * main thread with `lock` held for writing; the admin side reads under
	 * the read lock. */
	pthread_rwlock_t lock;
	struct proxy **proxies;
	size_t n;
	double start_time; /* seconds since the epoch */

	pthread_mutex_t reload_lock; /* guards the reload record below */
	pthread_cond_t reload_cond;
	uint64_t reload_started;   /* reloads begun (numbered from 1) */
	uint64_t reload_gen;       /* reloads finished: the last one's number */
	uint64_t reload_requested; /* the highest number an admin SIGHUP asked for */
	bool last_reload_ok;
	uint64_t reloads_ok, reloads_failed;

	atomic_bool draining; /* set once, when the drain begins */
};

/* Raises the soft open-file limit to the hard one: open connections are
 * bounded by descriptors, not threads.  When the hard limit is below the
 * minimum (the relay threads' sockets and the reserve), tries to raise it
 * too (allowed to root).  Returns the limit in force. */
static uint64_t raise_nofile(unsigned relay_threads)
{
	rlim_t need = 2 * (rlim_t)relay_threads + FD_RESERVE;
	struct rlimit rl, next;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	next = rl;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		next.rlim_cur = next.rlim_max = need;
		if (setrlimit(RLIMIT_NOFILE, &next) == 0) {
			log_info("raised the open file limit from %llu (hard %llu) to %llu",
				 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
				 (unsigned long long)need);
			return need;
		}
		next = rl;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
		next.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &next) == 0)
			rl = next;
		else
			log_debug("cannot raise the open file limit: %s", strerror(errno));
	}
	return rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : (uint64_t)rl.rlim_cur;
}

/* Pipes for splice share the descriptors with the sockets: up to two per
 * relay thread (only connections moving bytes hold pipes), one eventfd per
 * relay thread (to be asked to make room), the reserve, and the rest for
 * sockets, two per open connection. */
static unsigned pipe_budget(unsigned relay_threads)
{
	uint64_t limit = raise_nofile(relay_threads), need = 2ull * relay_threads + FD_RESERVE;
	uint64_t pipes;

	if (limit <= need) {
		log_warn("the open file limit (%llu) is below what %u relay threads may need "
			 "(%llu); splice is off and connections may fail with EMFILE",
			 (unsigned long long)limit, relay_threads, (unsigned long long)need);
		return 0;
	}
	pipes = MIN((limit - need) / 4, 2ull * relay_threads);
	log_info("the open file limit (%llu) allows %llu open connections (%u relay threads, "
		 "up to %llu splice pipes)",
		 (unsigned long long)limit,
		 (unsigned long long)((limit - FD_RESERVE - relay_threads - 2 * pipes) / 2),
		 relay_threads, (unsigned long long)pipes);
	return (unsigned)pipes;
}

static struct proxy *find_proxy(struct proxy **v, size_t n, const char *label)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] && strcmp(proxy_label(v[i]), label) == 0)
			return v[i];
	return NULL;
}

struct runtime *runtime_bind(struct config *cfg)
{
	struct runtime *rt = xcalloc(1, sizeof(*rt));
	pthread_condattr_t ca;
	struct timespec ts;
	char err[512];

	pthread_rwlock_init(&rt->lock, NULL);
	pthread_mutex_init(&rt->reload_lock, NULL);
	atomic_init(&rt->draining, false);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->reload_cond, &ca);
	pthread_condattr_destroy(&ca);
	clock_gettime(CLOCK_REALTIME, &ts);
	rt->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	rt->cfg = config_ref(cfg);
	relay_init((size_t)cfg->buffer_size, pipe_budget((unsigned)cfg->relay_threads));
	rt->proxies = xcalloc(cfg->proxies.n, sizeof(*rt->proxies));
	for (size_t i = 0; i < cfg->proxies.n; i++) {
		rt->proxies[i] = proxy_new(cfg, i, err, sizeof(err));
		if (!rt->proxies[i]) {
			log_error("%s", err);
			runtime_free(rt);
			return NULL;
		}
		rt->n++;
	}
	return rt;
}

int runtime_run(struct runtime *rt)
{
	rt->pool = pool_new((unsigned)rt->cfg->relay_threads, relay_run, relay_thread_state_free);
	if (!rt->pool)
		return -1;
	for (size_t i = 0; i < rt->n; i++)
		proxy_start(rt->proxies[i], rt->pool);
	return 0;
}

struct runtime *runtime_start(struct config *cfg)
{
	struct runtime *rt = runtime_bind(cfg);

	if (rt && runtime_run(rt) < 0) {
		runtime_free(rt);
		return NULL;
	}
	return rt;
}

size_t runtime_proxies(const struct runtime *rt)
{
	return rt->n;
}

static void report_static(const char *key, void *arg)
{
	(void)arg;
	log_warn("reload: '%s' changed; it takes effect only after a restart", key);
}

int runtime_reload(struct runtime *rt, struct config *cfg)
{
	struct proxy **next = xcalloc(cfg->proxies.n, sizeof(*next));
	const struct cfg_proxy *pc = cfg->proxies.v;
	size_t fresh = 0;
	char err[512];

	/* Prepare everything; touch nothing that runs. */
	for (size_t i = 0; i < cfg->proxies.n; i++) {
		struct proxy *p = find_proxy(rt->proxies, rt->n, pc[i].label);
		int rc;
		if (p) {
			next[i] = proxy_ref(p);
			rc = proxy_prepare_reload(p, cfg, i, err, sizeof(err));
		} else {
			next[i] = proxy_new(cfg, i, err, sizeof(err));
			rc = next[i] ? 0 : -1;
			fresh++;
		}
		if (rc < 0) {
			log_error("reload failed, keeping the running configuration: %s", err);
			goto fail;
		}
	}
	/* Commit: nothing below can fail. */
	config_changed_static(rt->cfg, cfg, report_static, NULL);
	pthread_rwlock_wrlock(&rt->lock);
	for (size_t i = 0; i < cfg->proxies.n; i++) {
		if (find_proxy(rt->proxies, rt->n, pc[i].label))
			proxy_commit_reload(next[i]);
		else
			proxy_start(next[i], rt->pool);
	}
	for (size_t i = 0; i < rt->n; i++) {
		if (!find_proxy(next, cfg->proxies.n, proxy_label(rt->proxies[i])))
			proxy_stop(rt->proxies[i]);
		proxy_unref(rt->proxies[i]);
	}
	free(rt->proxies);
	rt->proxies = next;
	rt->n = cfg->proxies.n;
	config_unref(rt->cfg);
	rt->cfg = config_ref(cfg);
	pthread_rwlock_unlock(&rt->lock);
	log_info("reload: configuration applied (%zu proxies, %zu new)", rt->n, fresh);
	return 0;
fail:
	for (size_t i = 0; i < cfg->proxies.n; i++) {
		if (!next[i])
			continue;
		if (find_proxy(rt->proxies, rt->n, proxy_label(next[i])))
			proxy_abort_reload(next[i]);
		else
			proxy_stop(next[i]); /* new: close the listeners it bound */
		proxy_unref(next[i]);
	}
	free(next);
	return -1;
}

void runtime_drain_begin(struct runtime *rt)
{
	if (atomic_exchange(&rt->draining, true))
		return;
	/* Wakes the /reload waiters: the main thread takes no more reloads. */
	pthread_mutex_lock(&rt->reload_lock);
	pthread_cond_broadcast(&rt->reload_cond);
	pthread_mutex_unlock(&rt->reload_lock);
}

bool runtime_draining(struct runtime *rt)
{
	return atomic_load(&rt->draining);
}

void runtime_stop_accepting(struct runtime *rt)
{
	runtime_drain_begin(rt); /* /ready fails before the listeners close */
	pthread_rwlock_wrlock(&rt->lock);
	for (size_t i = 0; i < rt->n; i++)
		proxy_stop(rt->proxies[i]);
	pthread_rwlock_unlock(&rt->lock);
	/* Parked connections have nothing in flight: they close now.  Running
	 * ones close once quiet (instead of parking), or at the grace period. */
	listener_drain_all();
}

void runtime_for_each_proxy(struct runtime *rt, void (*fn)(struct proxy *, void *), void *arg)
{
	pthread_rwlock_rdlock(&rt->lock);
	for (size_t i = 0; i < rt->n; i++)
		fn(rt->proxies[i], arg);
	pthread_rwlock_unlock(&rt->lock);
}

bool runtime_ready(struct runtime *rt)
{
	bool ready = true;

	pthread_rwlock_rdlock(&rt->lock);
	for (size_t i = 0; i < rt->n && ready; i++)
		ready = proxy_ready(rt->proxies[i]);
	pthread_rwlock_unlock(&rt->lock);
	return ready;
}

unsigned runtime_pool_size(struct runtime *rt)
{
	return rt->pool ? pool_size(rt->pool) : 0;
}

double runtime_start_time(const struct runtime *rt)
{
	return rt->start_time;
}

void runtime_reload_begin(struct runtime *rt)
{
	pthread_mutex_lock(&rt->reload_lock);
	rt->reload_started++;
	pthread_mutex_unlock(&rt->reload_lock);
}

void runtime_note_reload(struct runtime *rt, bool ok)
{
	pthread_mutex_lock(&rt->reload_lock);
	rt->reload_gen = rt->reload_started;
	rt->last_reload_ok = ok;
	if (ok)
		rt->reloads_ok++;
	else
		rt->reloads_failed++;
	pthread_cond_broadcast(&rt->reload_cond);
	pthread_mutex_unlock(&rt->reload_lock);
}

uint64_t runtime_reload_ticket(struct runtime *rt, bool *ask)
{
	pthread_mutex_lock(&rt->reload_lock);
	uint64_t ticket = rt->reload_started + 1;
	*ask = rt->reload_requested < ticket;
	if (*ask)
		rt->reload_requested = ticket;
	pthread_mutex_unlock(&rt->reload_lock);
	return ticket;
}

enum reload_outcome runtime_wait_reload(struct runtime *rt, uint64_t ticket, int64_t deadline_ms)
{
	enum reload_outcome r = RELOAD_TIMEOUT;

	pthread_mutex_lock(&rt->reload_lock);
	while (rt->reload_gen < ticket && !atomic_load(&rt->draining) &&
	       cond_wait_until(&rt->reload_cond, &rt->reload_lock, deadline_ms))
		;
	if (rt->reload_gen >= ticket)
		r = rt->last_reload_ok ? RELOAD_OK : RELOAD_FAILED;
	else if (atomic_load(&rt->draining))
		r = RELOAD_STOPPING;
	pthread_mutex_unlock(&rt->reload_lock);
	return r;
}

uint64_t runtime_reloads(struct runtime *rt, bool ok)
{
	pthread_mutex_lock(&rt->reload_lock);
	uint64_t n = ok ? rt->reloads_ok : rt->reloads_failed;
	pthread_mutex_unlock(&rt->reload_lock);
	return n;
}

unsigned runtime_active(struct runtime *rt)
{
	return rt->pool ? pool_busy(rt->pool) : 0;
}

unsigned runtime_queued(struct runtime *rt)
{
	return rt->pool ? pool_queued(rt->pool) : 0;
}

unsigned runtime_open(struct runtime *rt)
{
	(void)rt;
	return (unsigned)atomic_load(&relay_stats()->open);
}

unsigned runtime_wait_closed(struct runtime *rt, int64_t deadline_ms)
{
	unsigned left = relay_wait_closed(deadline_ms);

	if (rt->pool)
		left += pool_wait_idle(rt->pool, deadline_ms);
	return left;
}

void runtime_abort_connections(struct runtime *rt)
{
	(void)rt;
	relay_abort_all();
}

const struct config *runtime_config(const struct runtime *rt)
{
	return rt->cfg;
}

void runtime_free(struct runtime *rt)
{
	if (!rt)
		return;
	runtime_stop_accepting(rt);
	pool_stop(rt->pool);
	for (size_t i = 0; i < rt->n; i++)
		proxy_unref(rt->proxies[i]);
	pool_free(rt->pool);
	if (!listener_wait_all(now_ms() + 5000))
		log_warn("a listener's parker thread did not end");
	free(rt->proxies);
	config_unref(rt->cfg);
	relay_shutdown();
	pthread_cond_destroy(&rt->reload_cond);
	pthread_mutex_destroy(&rt->reload_lock);
	pthread_rwlock_destroy(&rt->lock);
	free(rt);
}
