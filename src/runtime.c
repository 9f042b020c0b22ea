#include "auto-config.h"

#include "runtime.h"

#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Descriptors kept free for logging, config reloads and the admin side. */
#define FD_RESERVE 64

struct runtime {
	struct config *cfg;
	struct pool *pool;
	struct proxy **proxies;
	size_t n;
};

/* Raises the soft open-file limit toward what relay_threads can use (two
 * sockets and up to two splice pipes each, plus the reserve), up to the hard
 * limit; when even the minimum (the sockets and the reserve) is above the
 * hard limit, tries to raise that too (allowed to root). */
static void raise_nofile(unsigned relay_threads)
{
	rlim_t need = 2 * (rlim_t)relay_threads + FD_RESERVE;
	rlim_t want = 6 * (rlim_t)relay_threads + FD_RESERVE;
	struct rlimit rl, next;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= want)
		return;
	next = rl;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		next.rlim_cur = next.rlim_max = need;
		if (setrlimit(RLIMIT_NOFILE, &next) == 0) {
			log_info("raised the open file limit from %llu (hard %llu) to %llu",
				 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
				 (unsigned long long)need);
			return;
		}
		next = rl;
	}
	next.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : MIN(want, rl.rlim_max);
	if (next.rlim_cur <= rl.rlim_cur)
		return;
	if (setrlimit(RLIMIT_NOFILE, &next) == 0)
		log_debug("raised the open file limit from %llu to %llu",
			  (unsigned long long)rl.rlim_cur, (unsigned long long)next.rlim_cur);
	else
		log_debug("cannot raise the open file limit: %s", strerror(errno));
}

/* Pipes for splice share the fd budget with the sockets: two per relay
 * thread for the sockets, the reserve, and what is left goes to pipes. */
static unsigned pipe_budget(unsigned relay_threads)
{
	struct rlimit rl;
	uint64_t limit = 1024, need = 2ull * relay_threads + FD_RESERVE;

	raise_nofile(relay_threads);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		limit = rl.rlim_cur;
	else if (rl.rlim_cur == RLIM_INFINITY)
		limit = 1u << 20;
	if (limit <= need) {
		log_warn("the open file limit (%llu) is below what %u relay threads may need "
			 "(%llu); splice is off and connections may fail with EMFILE",
			 (unsigned long long)limit, relay_threads, (unsigned long long)need);
		return 0;
	}
	return (unsigned)MIN((limit - need) / 2, 2ull * relay_threads);
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
	char err[512];

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
	rt->pool = pool_new((unsigned)rt->cfg->relay_threads, sizeof(struct relay_job), relay_run,
			    relay_thread_state_free);
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
	for (size_t i = 0; i < cfg->proxies.n; i++) {
		if (find_proxy(rt->proxies, rt->n, pc[i].label))
			proxy_commit_reload(next[i], rt->pool);
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
	log_info("reload: configuration applied (%zu proxies, %zu new)", rt->n, fresh);
	return 0;
fail:
	for (size_t i = 0; i < cfg->proxies.n; i++) {
		if (!next[i])
			continue;
		if (find_proxy(rt->proxies, rt->n, proxy_label(next[i])))
			proxy_abort_reload(next[i]);
		proxy_unref(next[i]);
	}
	free(next);
	return -1;
}

void runtime_stop_accepting(struct runtime *rt)
{
	for (size_t i = 0; i < rt->n; i++)
		proxy_stop(rt->proxies[i]);
}

unsigned runtime_active(struct runtime *rt)
{
	return rt->pool ? pool_busy(rt->pool) : 0;
}

unsigned runtime_wait_idle(struct runtime *rt, int64_t deadline_ms)
{
	return rt->pool ? pool_wait_idle(rt->pool, deadline_ms) : 0;
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
	pool_free(rt->pool);
	for (size_t i = 0; i < rt->n; i++)
		proxy_unref(rt->proxies[i]);
	free(rt->proxies);
	config_unref(rt->cfg);
	relay_shutdown();
	free(rt);
}
