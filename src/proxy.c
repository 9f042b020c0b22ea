#include "auto-config.h"

#include "proxy.h"

#include "balancer.h"
#include "listener.h"
#include "log.h"
#include "namerd.h"
#include "pool.h"
#include "tls.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ADDRS_PER_NAME 16

/* One listener of a proxy with what its connections are accepted under. */
struct proxy_server {
	struct proxy *p;
	struct listener *l;
	const struct cfg_server *sc; /* guarded by p->lock */
	struct tls_creds *tls;       /* guarded by p->lock; NULL: plaintext */
	struct server_stats *ss;     /* set under p->lock; lives as long as p */
	bool started;
};

/* What a reload will install, built by proxy_prepare_reload. */
struct proxy_stage {
	struct config *cfg;
	const struct cfg_proxy *pc;
	struct proxy_server **srv; /* the new server set, reusing kept ones */
	size_t nsrv;
	struct endpoint_spec *specs;
	size_t nspecs;
	struct tls_creds **server_tls; /* per server in srv; NULL entries: plaintext */
	struct tls_creds *client_tls;
	bool active;
};

struct proxy {
	atomic_int refs;
	char *label;
	struct balancer *bal;
	struct proxy_stats stats;

	pthread_mutex_t lock; /* guards cfg, pc, admitted and each server's sc and tls */
	pthread_cond_t admit_cond;
	struct config *cfg;
	const struct cfg_proxy *pc;
	struct tls_creds *client_tls;
	unsigned admitted;
	int64_t last_refusal_warning[2]; /* now_ms() of the last warning, by refusal */
	struct server_stats *servers;    /* list; entries are never removed */

	struct pool *pool;      /* set before the first acceptor starts */
	struct pool_class *cls; /* this proxy's share of the pool */

	/* Main thread only. */
	struct proxy_server **srv;
	size_t nsrv;
	struct namerd *namerd; /* NULL with static endpoints */
	struct proxy_stage stage;
};

const char *close_cause_name(enum close_cause c)
{
	static const char *const names[CLOSE_CAUSES] = {
		"done",         "no_endpoints",   "not_resolved", "connect_failed", "client_tls",
		"client_error", "endpoint_error", "idle_timeout", "lifetime",       "shutdown",
		"over_limit",   "client_limit",   "drained",
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

/* ------------------------------------------------------------------ servers */

static struct proxy_server *find_server(struct proxy_server **v, size_t n,
					const struct cfg_hostport *addr)
{
	char key[CFG_LISTEN_KEY_MAX];

	cfg_listen_key(addr, key, sizeof(key));
	for (size_t i = 0; i < n; i++)
		if (v[i] && strcmp(listener_key(v[i]->l), key) == 0)
			return v[i];
	return NULL;
}

static bool server_in(struct proxy_server **v, size_t n, const struct proxy_server *srv)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == srv)
			return true;
	return false;
}

static void server_close(struct proxy_server *srv)
{
	listener_close(srv->l, srv);
	tls_creds_unref(srv->tls);
	free(srv);
}

/* Opens the servers of pc, reusing those of `keep` with the same address. */
static int open_servers(struct proxy *p, const struct cfg_proxy *pc, struct proxy_server **keep,
			size_t nkeep, struct proxy_server ***out, char *err, size_t errlen)
{
	const struct cfg_server *sc = pc->servers.v;
	struct proxy_server **v = xcalloc(pc->servers.n, sizeof(*v));

	for (size_t i = 0; i < pc->servers.n; i++) {
		struct listener *l;
		v[i] = find_server(keep, nkeep, &sc[i].addr);
		if (v[i])
			continue;
		if (!(l = listener_open(&sc[i].addr, err, errlen))) {
			for (size_t j = 0; j < i; j++)
				if (!server_in(keep, nkeep, v[j]))
					server_close(v[j]);
			free(v);
			return -1;
		}
		v[i] = xcalloc(1, sizeof(*v[i]));
		v[i]->p = p;
		v[i]->l = l;
		v[i]->sc = &sc[i];
	}
	*out = v;
	return 0;
}

/* Installs section, credentials (the old ones are returned in *tls) and
 * counters; p->lock held. */
static void server_set_locked(struct proxy_server *srv, const struct cfg_server *sc,
			      struct tls_creds **tls)
{
	struct tls_creds *old = srv->tls;

	srv->sc = sc;
	srv->tls = *tls;
	*tls = old;
	srv->ss = server_stats_locked(srv->p, listener_name(srv->l));
}

static const struct listener_handler server_handler;

/* How long the kernel holds a silent client before handing it over anyway
 * (one SYN-ACK retransmission); connect_timeout_ms then runs as usual. */
#define DEFER_ACCEPT_SECS 1

/* What the listener needs of this entry to route by SNI. */
static struct listener_route_opts route_opts(const struct cfg_server *sc)
{
	return (struct listener_route_opts){
		.server_names = &sc->server_names,
		.sni = cfg_server_routes_sni(sc, false),
		.hello_timeout_ms = sc->connect_timeout_ms,
		.proxy_protocol = sc->accept_proxy_protocol,
		.defer_accept_secs = cfg_server_defer_accept(sc) ? DEFER_ACCEPT_SECS : 0,
	};
}

/* Starts accepting for srv, or (kept by a reload) updates its route. */
static void server_start(struct proxy_server *srv)
{
	struct listener_route_opts o = route_opts(srv->sc);

	if (srv->started) {
		listener_update(srv->l, srv, &o);
		return;
	}
	if (listener_start(srv->l, &server_handler, srv, &o) < 0)
		fatal("%s: cannot start accepting on %s", srv->p->label, listener_name(srv->l));
	srv->started = true;
	log_info("listening on %s for %s%s", listener_name(srv->l), srv->p->label,
		 srv->sc->sni_passthrough  ? " (TLS passthrough, routed by SNI)"
		 : srv->sc->server_names.n ? " (routed by SNI)"
					   : "");
}

/* ------------------------------------------------------------------ life */

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
	histogram_init(&p->stats.connect_latency, histogram_latency_bounds,
		       histogram_latency_nbounds);
	histogram_init(&p->stats.duration, histogram_duration_bounds, histogram_duration_nbounds);
	if (open_servers(p, pc, NULL, 0, &p->srv, err, errlen) < 0) {
		free(specs);
		free_tls(server_tls, pc->servers.n, NULL);
		proxy_unref(p); /* nothing started: no listener, no namerd thread */
		return NULL;
	}
	p->nsrv = pc->servers.n;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nsrv; i++)
		server_set_locked(p->srv[i], p->srv[i]->sc, &server_tls[i]);
	pthread_mutex_unlock(&p->lock);
	free(server_tls); /* every entry was NULL before the swap */
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
	p->pool = pool;
	p->cls = pool_class_new(pool);
	sync_namerd(p, p->pc);
	for (size_t i = 0; i < p->nsrv; i++)
		server_start(p->srv[i]);
}

void proxy_stop(struct proxy *p)
{
	namerd_stop(p->namerd);
	p->namerd = NULL;
	for (size_t i = 0; i < p->nsrv; i++)
		server_close(p->srv[i]);
	free(p->srv);
	p->srv = NULL;
	p->nsrv = 0;
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
	if (p->nsrv || p->namerd)
		fatal("%s: proxy freed while it still accepts (not stopped)", p->label);
	proxy_abort_reload(p);
	if (p->pool)
		pool_class_release(p->pool, p->cls);
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

/* ------------------------------------------------------------------ reload */

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
	if (open_servers(p, pc, p->srv, p->nsrv, &s->srv, err, errlen) < 0) {
		free(s->specs);
		free_tls(s->server_tls, pc->servers.n, s->client_tls);
		memset(s, 0, sizeof(*s));
		return -1;
	}
	s->nsrv = pc->servers.n;
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
	for (size_t i = 0; i < s->nsrv; i++)
		if (!server_in(p->srv, p->nsrv, s->srv[i]))
			server_close(s->srv[i]);
	free(s->srv);
	free(s->specs);
	free_tls(s->server_tls, s->nsrv, s->client_tls);
	config_unref(s->cfg);
	memset(s, 0, sizeof(*s));
}

/* Swaps in the staged settings under the lock; the old ones are returned in
 * the stage (credentials) or *old_cfg, *old_client for release. */
static void swap_settings(struct proxy *p, struct config **old_cfg, struct tls_creds **old_client)
{
	struct proxy_stage *s = &p->stage;
	const struct cfg_server *sc = s->pc->servers.v;

	pthread_mutex_lock(&p->lock);
	*old_cfg = p->cfg;
	p->cfg = s->cfg;
	p->pc = s->pc;
	*old_client = p->client_tls;
	p->client_tls = s->client_tls;
	for (size_t i = 0; i < s->nsrv; i++)
		server_set_locked(s->srv[i], &sc[i], &s->server_tls[i]);
	pthread_cond_broadcast(&p->admit_cond); /* max_connections may have grown */
	pthread_mutex_unlock(&p->lock);
}

void proxy_commit_reload(struct proxy *p)
{
	struct proxy_stage *s = &p->stage;
	struct balancer_params bp;
	struct config *old;
	struct tls_creds *old_client;

	if (!s->active)
		return;
	bp = accrual_params(s->pc);
	swap_settings(p, &old, &old_client);
	config_unref(old);
	free_tls(s->server_tls, s->nsrv, old_client);
	balancer_set_params(p->bal, &bp);
	if (s->pc->has_endpoints)
		balancer_update(p->bal, s->specs, s->nspecs);
	sync_namerd(p, s->pc);
	for (size_t i = 0; i < p->nsrv; i++)
		if (!server_in(s->srv, s->nsrv, p->srv[i]))
			server_close(p->srv[i]);
	for (size_t i = 0; i < s->nsrv; i++)
		server_start(s->srv[i]);
	free(p->srv);
	p->srv = s->srv;
	p->nsrv = s->nsrv;
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

struct pool *proxy_pool(struct proxy *p)
{
	return p->pool;
}

struct proxy_stats *proxy_stats(struct proxy *p)
{
	return &p->stats;
}

struct namerd *proxy_namerd(struct proxy *p)
{
	return p->namerd;
}

void proxy_for_each_listener(struct proxy *p, void (*fn)(const char *name, bool tls, void *arg),
			     void *arg)
{
	for (size_t i = 0; i < p->nsrv; i++) {
		pthread_mutex_lock(&p->lock);
		bool tls = p->srv[i]->tls != NULL;
		pthread_mutex_unlock(&p->lock);
		fn(listener_name(p->srv[i]->l), tls, arg);
	}
}

/* ------------------------------------------------------------------ accepting */

static bool at_limit_locked(const struct proxy *p)
{
	return p->pc->max_connections > 0 && p->admitted >= (unsigned)p->pc->max_connections;
}

enum admit { ADMIT_OK, ADMIT_REFUSE, ADMIT_CANCELLED };

/* Room under max_connections?  With policy wait, blocks until there is or
 * the listener stops; with policy refuse, answers ADMIT_REFUSE at the limit. */
static enum admit proxy_admit(struct proxy *p, const atomic_bool *cancel)
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

/* Room under max_connections now?  Never waits (a routed connection is
 * accepted already: at the limit it is refused whatever the policy). */
static bool proxy_try_admit(struct proxy *p)
{
	bool ok;

	pthread_mutex_lock(&p->lock);
	ok = !at_limit_locked(p);
	if (ok)
		p->admitted++;
	pthread_mutex_unlock(&p->lock);
	return ok;
}

/* Undoes proxy_admit: the accept failed or the connection ended. */
static void proxy_leave(struct proxy *p)
{
	pthread_mutex_lock(&p->lock);
	p->admitted--;
	pthread_cond_broadcast(&p->admit_cond);
	pthread_mutex_unlock(&p->lock);
}

/* Reserves a max_connections slot, then a relay thread (the token). */
static void *server_reserve(void *owner, const atomic_bool *cancel, bool *refuse)
{
	struct proxy_server *srv = owner;
	struct pool_worker *w;

	switch (proxy_admit(srv->p, cancel)) {
	case ADMIT_CANCELLED:
		return NULL;
	case ADMIT_REFUSE:
		*refuse = true;
		return NULL;
	case ADMIT_OK:
		break;
	}
	if (!(w = pool_reserve(srv->p->pool, srv->p->cls, cancel)))
		proxy_leave(srv->p);
	return w;
}

static void server_unreserve(void *owner, void *token)
{
	struct proxy_server *srv = owner;

	pool_unreserve(srv->p->pool, token);
	proxy_leave(srv->p);
}

/* A job for a connection accepted on srv: the socket and a snapshot of the
 * settings, each with a reference; counted as accepted. */
static struct proxy_job *job_new(struct proxy_server *srv, int fd, const struct netaddr *peer,
				 int64_t accept_us, bool counted)
{
	struct proxy *p = srv->p;
	struct proxy_job *job = xcalloc(1, sizeof(*job));

	job->fd = fd;
	job->peer = *peer;
	job->accept_us = accept_us;
	job->client_counted = counted;
	job->listener = listener_ref(srv->l);
	snprintf(job->server, sizeof(job->server), "%s", listener_name(srv->l));
	pthread_mutex_lock(&p->lock);
	job->cfg = config_ref(p->cfg);
	job->pc = p->pc;
	job->sc = srv->sc;
	job->server_tls = tls_creds_ref(srv->tls);
	job->client_tls = srv->sc->sni_passthrough ? NULL : tls_creds_ref(p->client_tls);
	job->ss = srv->ss;
	pthread_mutex_unlock(&p->lock);
	job->proxy = proxy_ref(p);
	atomic_fetch_add_explicit(&job->ss->accepts, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&job->ss->active, 1, memory_order_relaxed);
	return job;
}

/* Hands a new connection to the thread reserved for it. */
static void server_accepted(void *owner, void *token, int fd, const struct netaddr *peer,
			    int64_t accept_us, bool counted)
{
	struct proxy_server *srv = owner;
	struct proxy_job *job = job_new(srv, fd, peer, accept_us, counted);

	pool_dispatch(srv->p->pool, token, srv->p->cls, &job->pj);
}

static void server_refused(void *owner, enum listener_refusal why);

/* A connection routed here by its SNI name: admitted and queued, or refused. */
static bool server_routed(void *owner, int fd, const struct netaddr *peer, int64_t accept_us,
			  bool counted, const char *sni)
{
	struct proxy_server *srv = owner;
	struct proxy_job *job;

	if (!proxy_try_admit(srv->p)) {
		server_refused(owner, REFUSE_OVER_LIMIT);
		return false;
	}
	job = job_new(srv, fd, peer, accept_us, counted);
	snprintf(job->sni, sizeof(job->sni), "%s", sni);
	pool_submit(srv->p->pool, srv->p->cls, &job->pj);
	return true;
}

static unsigned server_client_limit(void *owner)
{
	struct proxy_server *srv = owner;

	pthread_mutex_lock(&srv->p->lock);
	unsigned limit = (unsigned)srv->sc->max_connections_per_client;
	pthread_mutex_unlock(&srv->p->lock);
	return limit;
}

/* Counts a connection refused at a limit (and warns, at most once a minute). */
static void server_refused(void *owner, enum listener_refusal why)
{
	struct proxy_server *srv = owner;
	struct proxy *p = srv->p;
	enum close_cause cause = why == REFUSE_CLIENT_LIMIT ? CLOSE_CLIENT_LIMIT : CLOSE_OVER_LIMIT;
	struct server_stats *ss;
	int64_t now = now_ms();
	bool warn;

	pthread_mutex_lock(&p->lock);
	ss = srv->ss;
	warn = p->last_refusal_warning[why] == 0 || now - p->last_refusal_warning[why] >= 60000;
	if (warn)
		p->last_refusal_warning[why] = now;
	pthread_mutex_unlock(&p->lock);
	atomic_fetch_add_explicit(&ss->accepts, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ss->closes[cause], 1, memory_order_relaxed);
	if (warn && why == REFUSE_CLIENT_LIMIT)
		log_warn("%s: a client reached max_connections_per_client on %s: refusing its "
			 "new connections (warned once a minute)",
			 p->label, listener_name(srv->l));
	else if (warn)
		log_warn("%s: max_connections reached: refusing new connections", p->label);
}

static void server_wake(void *owner)
{
	struct proxy_server *srv = owner;

	pool_wake(srv->p->pool);
	pthread_mutex_lock(&srv->p->lock);
	pthread_cond_broadcast(&srv->p->admit_cond);
	pthread_mutex_unlock(&srv->p->lock);
}

static const struct listener_handler server_handler = {
	.reserve = server_reserve,
	.unreserve = server_unreserve,
	.accepted = server_accepted,
	.refused = server_refused,
	.wake = server_wake,
	.client_limit = server_client_limit,
	.routed = server_routed,
};

struct proxy_job *proxy_job_of(struct pool_job *pj)
{
	return (struct proxy_job *)((char *)pj - offsetof(struct proxy_job, pj));
}

void proxy_job_resume(struct proxy_job *job)
{
	pool_submit(job->proxy->pool, job->proxy->cls, &job->pj);
}

void proxy_job_release(struct proxy_job *job)
{
	if (job->client_counted)
		listener_client_leave(job->listener, &job->peer);
	listener_unref(job->listener);
	proxy_leave(job->proxy);
	tls_creds_unref(job->server_tls);
	tls_creds_unref(job->client_tls);
	config_unref(job->cfg);
	proxy_unref(job->proxy);
	free(job);
}
