#include "auto-config.h"

#include "proxy.h"

#include "balancer.h"
#include "listener.h"
#include "log.h"
#include "namerd.h"
#include "relay.h"
#include "tls.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ADDRS_PER_NAME 16

/* What a reload will install, built by proxy_prepare_reload. */
struct proxy_stage {
	struct config *cfg;
	const struct cfg_proxy *pc;
	struct listener **ls; /* the new listener set, reusing kept ones */
	size_t nls;
	struct endpoint_spec *specs;
	size_t nspecs;
	struct tls_creds **server_tls; /* per listener in ls; NULL entries: plaintext */
	struct tls_creds *client_tls;
	bool active;
};

struct proxy {
	atomic_int refs;
	char *label;
	struct balancer *bal;
	struct proxy_stats stats;

	pthread_mutex_t lock; /* guards cfg, pc, admitted and each listener's server */
	pthread_cond_t admit_cond;
	struct config *cfg;
	const struct cfg_proxy *pc;
	struct tls_creds *client_tls;
	unsigned admitted;
	int64_t last_refusal_warning; /* now_ms() of the last over-limit warning */
	struct server_stats *servers; /* list; entries are never removed */

	/* Main thread only. */
	struct listener **ls;
	size_t nls;
	struct namerd *namerd; /* NULL with static endpoints */
	struct proxy_stage stage;
};

const char *close_cause_name(enum close_cause c)
{
	static const char *const names[CLOSE_CAUSES] = {
		"done",       "no_endpoints", "not_resolved",   "connect_failed",
		"client_tls", "client_error", "endpoint_error", "idle_timeout",
		"lifetime",   "shutdown",     "over_limit",
	};
	return c < CLOSE_CAUSES ? names[c] : "?";
}

/* The counters of listener address name, made on first use; p->lock held. */
static struct server_stats *server_stats_locked(struct proxy *p, const char *name)
{
	struct server_stats **pp = &p->servers;

	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0)
			return *pp;
	*pp = xcalloc(1, sizeof(**pp));
	snprintf((*pp)->name, sizeof((*pp)->name), "%s", name);
	return *pp;
}

static void add_server_stats(struct proxy *p, struct listener **ls, size_t n)
{
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < n; i++)
		(void)server_stats_locked(p, listener_name(ls[i]));
	pthread_mutex_unlock(&p->lock);
}

void proxy_for_each_server(struct proxy *p, void (*fn)(const struct server_stats *, void *),
			   void *arg)
{
	pthread_mutex_lock(&p->lock);
	for (const struct server_stats *ss = p->servers; ss; ss = ss->next)
		fn(ss, arg);
	pthread_mutex_unlock(&p->lock);
}

bool proxy_ready(struct proxy *p)
{
	return balancer_resolved(p->bal);
}

static struct balancer_params accrual_params(const struct cfg_proxy *pc)
{
	struct balancer_params bp = {
		.consecutive_failures = (unsigned)pc->failure_accrual.consecutive_failures,
		.backoff_min_ms = pc->failure_accrual.backoff_min_ms,
		.backoff_max_ms = pc->failure_accrual.backoff_max_ms,
	};
	return bp;
}

/* Resolves the static endpoint list; a name may stand for several addresses. */
static int resolve_endpoints(const struct cfg_proxy *pc, struct endpoint_spec **out, size_t *nout,
			     char *err, size_t errlen)
{
	const struct cfg_endpoint *ce = pc->endpoints.v;
	struct endpoint_spec *specs = NULL;
	size_t n = 0;

	for (size_t i = 0; i < pc->endpoints.n; i++) {
		struct netaddr addrs[MAX_ADDRS_PER_NAME];
		char nerr[NET_ERRLEN];
		int k = netaddr_resolve(ce[i].addr.hp.host, ce[i].addr.hp.port, false, addrs,
					MAX_ADDRS_PER_NAME, nerr);
		if (k < 0) {
			snprintf(err, errlen, "%s: endpoint %s: %s", pc->label, ce[i].addr.text,
				 nerr);
			free(specs);
			return -1;
		}
		specs = xrealloc(specs, (n + (size_t)k) * sizeof(*specs));
		for (int j = 0; j < k; j++)
			specs[n++] = (struct endpoint_spec){ addrs[j], ce[i].weight };
	}
	*out = specs;
	*nout = n;
	return 0;
}

static void free_tls(struct tls_creds **server_tls, size_t n, struct tls_creds *client_tls)
{
	for (size_t i = 0; server_tls && i < n; i++)
		tls_creds_unref(server_tls[i]);
	free(server_tls);
	tls_creds_unref(client_tls);
}

/* Loads every TLS credential pc names (fresh from the files: key rotation). */
static int load_tls(const struct cfg_proxy *pc, struct tls_creds ***server_tls,
		    struct tls_creds **client_tls, char *err, size_t errlen)
{
	const struct cfg_server *sc = pc->servers.v;
	char terr[TLS_ERRLEN];

	*server_tls = xcalloc(pc->servers.n, sizeof(**server_tls));
	*client_tls = NULL;
	for (size_t i = 0; i < pc->servers.n; i++) {
		if (!sc[i].tls)
			continue;
		(*server_tls)[i] = tls_server_creds_load(sc[i].tls, terr, NULL, NULL);
		if (!(*server_tls)[i]) {
			snprintf(err, errlen, "%s: server %s: tls: %s", pc->label, sc[i].addr.text,
				 terr);
			goto fail;
		}
	}
	if (pc->client.tls) {
		*client_tls = tls_client_creds_load(pc->client.tls, terr, NULL, NULL);
		if (!*client_tls) {
			snprintf(err, errlen, "%s: client tls: %s", pc->label, terr);
			goto fail;
		}
	}
	return 0;
fail:
	free_tls(*server_tls, pc->servers.n, *client_tls);
	*server_tls = NULL;
	*client_tls = NULL;
	return -1;
}

static struct listener *find_listener(struct listener **ls, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (ls[i] && strcmp(listener_key(ls[i]), key) == 0)
			return ls[i];
	return NULL;
}

static bool listener_in(struct listener **ls, size_t n, const struct listener *l)
{
	for (size_t i = 0; i < n; i++)
		if (ls[i] == l)
			return true;
	return false;
}

/* Opens the listeners of pc, reusing those of `keep` with the same address. */
static int open_listeners(const struct cfg_proxy *pc, struct listener **keep, size_t nkeep,
			  struct listener ***out, char *err, size_t errlen)
{
	const struct cfg_server *sc = pc->servers.v;
	struct listener **ls = xcalloc(pc->servers.n, sizeof(*ls));

	for (size_t i = 0; i < pc->servers.n; i++) {
		ls[i] = find_listener(keep, nkeep, sc[i].addr.text);
		if (!ls[i])
			ls[i] = listener_open(&sc[i], err, errlen);
		if (!ls[i]) {
			for (size_t j = 0; j < i; j++)
				if (!listener_in(keep, nkeep, ls[j]))
					listener_close(ls[j]);
			free(ls);
			return -1;
		}
	}
	*out = ls;
	return 0;
}

struct proxy *proxy_new(struct config *cfg, size_t index, char *err, size_t errlen)
{
	const struct cfg_proxy *pc = (const struct cfg_proxy *)cfg->proxies.v + index;
	struct balancer_params bp = accrual_params(pc);
	struct endpoint_spec *specs = NULL;
	struct tls_creds **server_tls, *client_tls;
	size_t nspecs = 0;
	struct proxy *p;

	if (pc->has_endpoints && resolve_endpoints(pc, &specs, &nspecs, err, errlen) < 0)
		return NULL;
	if (load_tls(pc, &server_tls, &client_tls, err, errlen) < 0) {
		free(specs);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	atomic_init(&p->refs, 1);
	p->label = xstrdup(pc->label);
	p->bal = balancer_new(pc->label, &bp);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->admit_cond, NULL);
	p->cfg = config_ref(cfg);
	p->pc = pc;
	p->client_tls = client_tls;
	if (open_listeners(pc, NULL, 0, &p->ls, err, errlen) < 0) {
		free(specs);
		free_tls(server_tls, pc->servers.n, NULL);
		proxy_unref(p); /* nothing started: no listener, no namerd thread */
		return NULL;
	}
	p->nls = pc->servers.n;
	add_server_stats(p, p->ls, p->nls);
	histogram_init(&p->stats.connect_latency, histogram_latency_bounds,
		       histogram_latency_nbounds);
	histogram_init(&p->stats.duration, histogram_duration_bounds, histogram_duration_nbounds);
	for (size_t i = 0; i < p->nls; i++)
		listener_swap_tls(p->ls[i], server_tls[i]);
	free(server_tls);
	if (pc->has_endpoints)
		balancer_update(p->bal, specs, nspecs);
	free(specs);
	return p;
}

/* Starts, keeps or stops the namerd thread to match pc. */
static void sync_namerd(struct proxy *p, const struct cfg_proxy *pc)
{
	if (p->namerd && pc->namerd && namerd_same_config(p->namerd, pc->namerd))
		return;
	namerd_stop(p->namerd);
	p->namerd = NULL;
	if (pc->namerd)
		p->namerd = namerd_start(p->label, pc->namerd, p->bal);
}

void proxy_start(struct proxy *p, struct pool *pool)
{
	sync_namerd(p, p->pc);
	for (size_t i = 0; i < p->nls; i++)
		if (listener_start(p->ls[i], p, pool) < 0)
			fatal("%s: cannot start accepting", p->label);
}

void proxy_stop(struct proxy *p)
{
	namerd_stop(p->namerd);
	p->namerd = NULL;
	for (size_t i = 0; i < p->nls; i++)
		listener_close(p->ls[i]);
	free(p->ls);
	p->ls = NULL;
	p->nls = 0;
}

struct proxy *proxy_ref(struct proxy *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void proxy_unref(struct proxy *p)
{
	if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* The last reference may be a relay thread's: stopping (joining threads,
	 * closing listeners) is the main thread's job, done before it let go. */
	if (p->nls || p->namerd)
		fatal("%s: proxy freed while it still accepts (not stopped)", p->label);
	proxy_abort_reload(p);
	balancer_free(p->bal);
	tls_creds_unref(p->client_tls);
	while (p->servers) {
		struct server_stats *next = p->servers->next;
		free(p->servers);
		p->servers = next;
	}
	config_unref(p->cfg);
	pthread_cond_destroy(&p->admit_cond);
	pthread_mutex_destroy(&p->lock);
	free(p->label);
	free(p);
}

int proxy_prepare_reload(struct proxy *p, struct config *cfg, size_t index, char *err,
			 size_t errlen)
{
	struct proxy_stage *s = &p->stage;
	const struct cfg_proxy *pc = (const struct cfg_proxy *)cfg->proxies.v + index;

	proxy_abort_reload(p);
	if (pc->has_endpoints && resolve_endpoints(pc, &s->specs, &s->nspecs, err, errlen) < 0)
		return -1;
	if (load_tls(pc, &s->server_tls, &s->client_tls, err, errlen) < 0) {
		free(s->specs);
		s->specs = NULL;
		return -1;
	}
	if (open_listeners(pc, p->ls, p->nls, &s->ls, err, errlen) < 0) {
		free(s->specs);
		free_tls(s->server_tls, pc->servers.n, s->client_tls);
		memset(s, 0, sizeof(*s));
		return -1;
	}
	s->nls = pc->servers.n;
	s->cfg = config_ref(cfg);
	s->pc = pc;
	s->active = true;
	return 0;
}

void proxy_abort_reload(struct proxy *p)
{
	struct proxy_stage *s = &p->stage;

	if (!s->active)
		return;
	for (size_t i = 0; i < s->nls; i++)
		if (!listener_in(p->ls, p->nls, s->ls[i]))
			listener_close(s->ls[i]);
	free(s->ls);
	free(s->specs);
	free_tls(s->server_tls, s->nls, s->client_tls);
	config_unref(s->cfg);
	memset(s, 0, sizeof(*s));
}

void proxy_commit_reload(struct proxy *p, struct pool *pool)
{
	struct proxy_stage *s = &p->stage;
	const struct cfg_server *sc = s->pc->servers.v;
	struct balancer_params bp = accrual_params(s->pc);
	struct config *old;
	struct tls_creds *old_client;

	if (!s->active)
		return;
	pthread_mutex_lock(&p->lock);
	old = p->cfg;
	p->cfg = s->cfg;
	p->pc = s->pc;
	old_client = p->client_tls;
	p->client_tls = s->client_tls;
	for (size_t i = 0; i < s->nls; i++) {
		(void)server_stats_locked(p, listener_name(s->ls[i]));
		listener_set_server(s->ls[i], &sc[i]);
		/* The old credentials' reference comes back in the stage array. */
		s->server_tls[i] = listener_swap_tls(s->ls[i], s->server_tls[i]);
	}
	pthread_cond_broadcast(&p->admit_cond); /* max_connections may have grown */
	pthread_mutex_unlock(&p->lock);
	config_unref(old);
	free_tls(s->server_tls, s->nls, old_client);

	balancer_set_params(p->bal, &bp);
	if (s->pc->has_endpoints)
		balancer_update(p->bal, s->specs, s->nspecs);
	sync_namerd(p, s->pc);
	for (size_t i = 0; i < p->nls; i++)
		if (!listener_in(s->ls, s->nls, p->ls[i]))
			listener_close(p->ls[i]);
	for (size_t i = 0; i < s->nls; i++)
		if (!listener_in(p->ls, p->nls, s->ls[i]) && listener_start(s->ls[i], p, pool) < 0)
			log_error("%s: a new listener failed to start", p->label);
	free(p->ls);
	p->ls = s->ls;
	p->nls = s->nls;
	free(s->specs);
	memset(s, 0, sizeof(*s));
}

const char *proxy_label(const struct proxy *p)
{
	return p->label;
}

struct balancer *proxy_balancer(struct proxy *p)
{
	return p->bal;
}

struct proxy_stats *proxy_stats(struct proxy *p)
{
	return &p->stats;
}

struct namerd *proxy_namerd(struct proxy *p)
{
	return p->namerd;
}

static bool at_limit_locked(const struct proxy *p)
{
	return p->pc->max_connections > 0 && p->admitted >= (unsigned)p->pc->max_connections;
}

enum admit proxy_admit(struct proxy *p, const atomic_bool *cancel)
{
	enum admit r = ADMIT_OK;

	pthread_mutex_lock(&p->lock);
	if (at_limit_locked(p) && p->pc->max_connections_policy == LIMIT_REFUSE) {
		r = ADMIT_REFUSE;
		goto out;
	}
	while (at_limit_locked(p) && !atomic_load(cancel))
		pthread_cond_wait(&p->admit_cond, &p->lock);
	if (atomic_load(cancel))
		r = ADMIT_CANCELLED;
	else
		p->admitted++;
out:
	pthread_mutex_unlock(&p->lock);
	return r;
}

void proxy_refused(struct proxy *p, struct listener *l)
{
	struct server_stats *ss;
	bool warn;
	int64_t now = now_ms();

	pthread_mutex_lock(&p->lock);
	ss = server_stats_locked(p, listener_name(l));
	warn = p->last_refusal_warning == 0 || now - p->last_refusal_warning >= 60000;
	if (warn)
		p->last_refusal_warning = now;
	pthread_mutex_unlock(&p->lock);
	atomic_fetch_add_explicit(&ss->accepts, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ss->closes[CLOSE_OVER_LIMIT], 1, memory_order_relaxed);
	if (warn)
		log_warn("%s: max_connections reached: refusing new connections", p->label);
}

void proxy_leave(struct proxy *p)
{
	pthread_mutex_lock(&p->lock);
	p->admitted--;
	pthread_cond_broadcast(&p->admit_cond);
	pthread_mutex_unlock(&p->lock);
}

void proxy_wake(struct proxy *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->admit_cond);
	pthread_mutex_unlock(&p->lock);
}

void proxy_job_init(struct proxy *p, struct listener *l, struct relay_job *job)
{
	pthread_mutex_lock(&p->lock);
	job->cfg = config_ref(p->cfg);
	job->pc = p->pc;
	job->sc = listener_server(l);
	job->server_tls = tls_creds_ref(listener_tls(l));
	job->client_tls = tls_creds_ref(p->client_tls);
	job->ss = server_stats_locked(p, listener_name(l));
	pthread_mutex_unlock(&p->lock);
	job->proxy = proxy_ref(p);
	atomic_fetch_add_explicit(&job->ss->accepts, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&job->ss->active, 1, memory_order_relaxed);
}
