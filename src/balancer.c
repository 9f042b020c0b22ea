#include "auto-config.h"

#include "balancer.h"

#include "log.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Above this many candidates a full scan gives way to two weighted random choices. */
#define BALANCER_SCAN_MAX 256
/* Random draws a pick makes in a large set before it falls back to a scan. */
#define BALANCER_DRAWS 16

/*
 * An address as bytes that sort and compare: a family tag, the 16 address
 * bytes, then port and IPv6 scope big-endian, so keys order by family,
 * address and port, and two keys are equal exactly when netaddr_equal says
 * the addresses are (endpoints are always IPv4 or IPv6).
 */
#define KEY_LEN 24
struct addr_key {
	unsigned char b[KEY_LEN];
};

struct endpoint {
	/* Set once at creation. */
	struct addr_key key;
	struct netaddr addr;
	char name[NETADDR_STRLEN];
	/* Under b->lock; the weights are written only under update_lock too,
	 * whose holder reads them without b->lock. */
	double weight;     /* in force: what picks use (0 while drained) */
	double configured; /* from discovery */
	unsigned active;
	unsigned failures_in_row;
	unsigned ejections; /* consecutive ejections, drives the backoff */
	int64_t ejected_until;
	bool failing; /* a failure episode: no success since the first failure */
	bool draining;
	size_t slot; /* index in b->draining while draining */
	uint64_t connects;
	uint64_t failures[CONNECT_RESULTS];
	uint64_t failed; /* all causes */
	uint64_t bytes_from_client, bytes_to_client;
};

/* An operator's override for one address (see balancer.h). */
struct override {
	struct addr_key key;
	char name[NETADDR_STRLEN];
	struct endpoint_override o;
};

/*
 * b->lock guards everything below but update_lock.  update_lock lets one
 * balancer_update at a time work out the next set without b->lock: eps,
 * cum and neps change only under both locks, so the holder of update_lock
 * may read them (and the endpoints' keys and weights) without b->lock.
 */
struct balancer {
	pthread_mutex_t lock;
	pthread_mutex_t update_lock; /* taken before lock, never the other way */
	pthread_cond_t resolved_cond;
	char *label; /* immutable */
	struct balancer_params params;
	bool resolved;
	bool failing_open;     /* to log the episode once */
	int64_t ejected_until; /* a scan found every endpoint ejected until then; 0: unknown */
	struct endpoint **eps; /* the active set, sorted by key */
	double *cum;           /* cum[i]: the weights of eps[0..i], for weighted draws */
	size_t neps;
	struct endpoint **draining; /* removed but still carrying connections */
	size_t ndraining, draining_cap;
	struct override *ovr; /* sorted by key; changed under both locks, like eps */
	size_t novr;
	unsigned rr; /* rotates the scan start so that ties spread out */
};

struct balancer *balancer_new(const char *label, const struct balancer_params *params)
{
	struct balancer *b = xcalloc(1, sizeof(*b));
	pthread_condattr_t ca;

	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->update_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->resolved_cond, &ca);
	pthread_condattr_destroy(&ca);
	b->label = xstrdup(label);
	b->params = *params;
	return b;
}

void balancer_free(struct balancer *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->neps; i++)
		free(b->eps[i]);
	for (size_t i = 0; i < b->ndraining; i++)
		free(b->draining[i]);
	free(b->eps);
	free(b->cum);
	free(b->draining);
	free(b->ovr);
	free(b->label);
	pthread_cond_destroy(&b->resolved_cond);
	pthread_mutex_destroy(&b->update_lock);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

void balancer_set_params(struct balancer *b, const struct balancer_params *params)
{
	pthread_mutex_lock(&b->lock);
	b->params = *params;
	pthread_mutex_unlock(&b->lock);
}

/* ------------------------------------------------------------------ updates */

static void addr_key(const struct netaddr *a, struct addr_key *k)
{
	memset(k, 0, sizeof(*k));
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&a->ss;

		k->b[0] = 4;
		memcpy(k->b + 1, &in->sin_addr, 4);
		memcpy(k->b + 17, &in->sin_port, 2);
	} else if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)&a->ss;
		uint32_t scope = htonl(in6->sin6_scope_id);

		k->b[0] = 6;
		memcpy(k->b + 1, &in6->sin6_addr, 16);
		memcpy(k->b + 17, &in6->sin6_port, 2);
		memcpy(k->b + 19, &scope, 4);
	}
}

static int key_cmp(const struct addr_key *a, const struct addr_key *b)
{
	return memcmp(a->b, b->b, KEY_LEN);
}

static struct endpoint *endpoint_new(const struct endpoint_spec *s, const struct addr_key *key)
{
	struct endpoint *e = xcalloc(1, sizeof(*e));

	e->key = *key;
	e->addr = s->addr;
	e->weight = e->configured = s->weight;
	netaddr_format(&e->addr, e->name, sizeof(e->name));
	return e;
}

/* One entry of the new list, to sort: its address, then its position. */
struct incoming {
	struct addr_key key;
	size_t idx;
};

static int incoming_cmp(const void *x, const void *y)
{
	const struct incoming *a = x, *b = y;
	int c = key_cmp(&a->key, &b->key);

	return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* The specs sorted by address, each address once: the first entry wins. */
static struct incoming *incoming_sorted(const struct endpoint_spec *specs, size_t n, size_t *nu)
{
	struct incoming *u = xcalloc(n ? n : 1, sizeof(*u));
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		addr_key(&specs[i].addr, &u[i].key);
		u[i].idx = i;
	}
	qsort(u, n, sizeof(*u), incoming_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || key_cmp(&u[i].key, &u[k - 1].key) != 0)
			u[k++] = u[i];
	*nu = k;
	return u;
}

/* The next endpoint set, worked out under update_lock before b->lock is taken. */
struct update_plan {
	struct endpoint **next; /* sorted by key */
	double *cum;
	size_t nnext;
	size_t *fresh; /* indexes in next of endpoints made for this update */
	size_t nfresh;
	size_t *changed;    /* indexes in next of kept endpoints whose weights change */
	double *weight;     /* their new weights in force */
	double *configured; /* and configured */
	size_t nchanged;
	struct endpoint **removed; /* current endpoints missing from the next set */
	size_t nremoved;
	struct endpoint **discard; /* to free once b->lock is released */
	size_t ndiscard;
	struct endpoint **old_eps; /* the arrays replaced */
	double *old_cum;
};

static void plan_alloc(struct update_plan *p, size_t nu, size_t nold)
{
	size_t n = nu ? nu : 1;

	memset(p, 0, sizeof(*p));
	p->next = xcalloc(n, sizeof(*p->next));
	p->cum = xcalloc(n, sizeof(*p->cum));
	p->fresh = xcalloc(n, sizeof(*p->fresh));
	p->changed = xcalloc(n, sizeof(*p->changed));
	p->weight = xcalloc(n, sizeof(*p->weight));
	p->configured = xcalloc(n, sizeof(*p->configured));
	p->removed = xcalloc(nold ? nold : 1, sizeof(*p->removed));
	p->discard = xcalloc(n + nold, sizeof(*p->discard));
}

/* The override for k, or NULL.  Caller holds b->lock or update_lock. */
static const struct override *override_find(const struct balancer *b, const struct addr_key *k)
{
	size_t lo = 0, hi = b->novr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(&b->ovr[mid].key, k);

		if (c == 0)
			return &b->ovr[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The weight picks use: 0 while drained, else the override's or the configured one. */
static double pick_weight(const struct override *o, double configured)
{
	if (o && o->o.has_drain && o->o.drain)
		return 0.0;
	return o && o->o.has_weight ? o->o.weight : configured;
}

/* Appends the endpoint for u to the plan: the current one with that address, or a new one. */
static void plan_add(struct update_plan *p, const struct endpoint_spec *s, const struct incoming *u,
		     struct endpoint *cur, double in_force)
{
	double sum = p->nnext ? p->cum[p->nnext - 1] : 0.0;

	if (!cur) {
		cur = endpoint_new(s, &u->key);
		cur->weight = in_force;
		p->fresh[p->nfresh++] = p->nnext;
	} else if (cur->weight != in_force || cur->configured != s->weight) {
		p->changed[p->nchanged] = p->nnext;
		p->configured[p->nchanged] = s->weight;
		p->weight[p->nchanged++] = in_force;
	}
	p->cum[p->nnext] = sum + (in_force > 0 ? in_force : 0.0);
	p->next[p->nnext++] = cur;
}

/* Matches the sorted new list against the sorted current set in one pass.  Caller
 * holds update_lock, so b->eps stays as it is. */
static void plan_build(struct balancer *b, const struct endpoint_spec *specs,
		       const struct incoming *u, size_t nu, struct update_plan *p)
{
	size_t i = 0;

	plan_alloc(p, nu, b->neps);
	for (size_t j = 0; j < nu; j++) {
		const struct endpoint_spec *s = &specs[u[j].idx];
		double w = pick_weight(b->novr ? override_find(b, &u[j].key) : NULL, s->weight);

		while (i < b->neps && key_cmp(&b->eps[i]->key, &u[j].key) < 0)
			p->removed[p->nremoved++] = b->eps[i++];
		if (i < b->neps && key_cmp(&b->eps[i]->key, &u[j].key) == 0)
			plan_add(p, s, &u[j], b->eps[i++], w);
		else
			plan_add(p, s, &u[j], NULL, w);
	}
	while (i < b->neps)
		p->removed[p->nremoved++] = b->eps[i++];
}

static void plan_free(struct update_plan *p)
{
	for (size_t i = 0; i < p->ndiscard; i++)
		free(p->discard[i]);
	free(p->discard);
	free(p->removed);
	free(p->weight);
	free(p->configured);
	free(p->changed);
	free(p->fresh);
	free(p->old_eps);
	free(p->old_cum);
}

static void draining_add_locked(struct balancer *b, struct endpoint *e)
{
	if (b->ndraining == b->draining_cap) {
		b->draining_cap = MAX(b->draining_cap * 2, 16);
		b->draining = xrealloc(b->draining, b->draining_cap * sizeof(*b->draining));
	}
	e->draining = true;
	e->slot = b->ndraining;
	b->draining[b->ndraining++] = e;
}

static void draining_remove_locked(struct balancer *b, struct endpoint *e)
{
	struct endpoint *last = b->draining[--b->ndraining];

	b->draining[e->slot] = last;
	last->slot = e->slot;
	e->draining = false;
}

static int endpoint_cmp(const void *x, const void *y)
{
	const struct endpoint *const *a = x, *const *b = y;

	return key_cmp(&(*a)->key, &(*b)->key);
}

/* An address that comes back while it drains takes its draining endpoint back, with
 * its connections and failure state.  Caller holds b->lock. */
static void revive_locked(struct balancer *b, struct update_plan *p)
{
	size_t nd = b->ndraining, i = 0, k = 0;
	struct endpoint **d;

	if (nd == 0 || p->nfresh == 0)
		return;
	d = xmalloc(nd * sizeof(*d));
	memcpy(d, b->draining, nd * sizeof(*d));
	qsort(d, nd, sizeof(*d), endpoint_cmp);
	while (i < p->nfresh && k < nd) {
		struct endpoint **slot = &p->next[p->fresh[i]];
		int c = key_cmp(&(*slot)->key, &d[k]->key);

		if (c <= 0)
			i++;
		if (c >= 0)
			k++;
		if (c != 0)
			continue;
		draining_remove_locked(b, d[k - 1]);
		d[k - 1]->weight = (*slot)->weight;
		d[k - 1]->configured = (*slot)->configured;
		p->discard[p->ndiscard++] = *slot;
		*slot = d[k - 1];
	}
	free(d);
}

/* Installs the plan.  Caller holds b->lock; the work is in proportion to what changes
 * (and to the draining list when endpoints are added). */
static void plan_commit_locked(struct balancer *b, struct update_plan *p)
{
	revive_locked(b, p);
	for (size_t i = 0; i < p->nchanged; i++) {
		p->next[p->changed[i]]->weight = p->weight[i];
		p->next[p->changed[i]]->configured = p->configured[i];
	}
	for (size_t i = 0; i < p->nremoved; i++) {
		struct endpoint *e = p->removed[i];

		if (e->active == 0)
			p->discard[p->ndiscard++] = e; /* nobody can pick it any more */
		else
			draining_add_locked(b, e);
	}
	p->old_eps = b->eps;
	p->old_cum = b->cum;
	b->eps = p->next;
	b->cum = p->cum;
	b->neps = p->nnext;
	b->ejected_until = 0;
	b->resolved = true;
	pthread_cond_broadcast(&b->resolved_cond);
}

/*
 * Sorting, deduplication, matching and allocation happen before b->lock is
 * taken; under it only what changes is touched, so re-applying the same set
 * of any size holds it for a moment.
 */
void balancer_update(struct balancer *b, const struct endpoint_spec *specs, size_t n)
{
	struct update_plan p;
	struct incoming *u;
	size_t nu;

	pthread_mutex_lock(&b->update_lock);
	u = incoming_sorted(specs, n, &nu);
	plan_build(b, specs, u, nu, &p);
	free(u);
	pthread_mutex_lock(&b->lock);
	plan_commit_locked(b, &p);
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_unlock(&b->update_lock);
	plan_free(&p);
}

bool balancer_resolved(struct balancer *b)
{
	pthread_mutex_lock(&b->lock);
	bool r = b->resolved;
	pthread_mutex_unlock(&b->lock);
	return r;
}

/* ------------------------------------------------------------------ choice */

static bool was_tried(const struct endpoint *e, struct endpoint *const *tried, size_t ntried)
{
	for (size_t i = 0; i < ntried; i++)
		if (tried[i] == e)
			return true;
	return false;
}

static double score(const struct endpoint *e)
{
	return ((double)e->active + 1.0) / e->weight;
}

/* An endpoint drawn with a chance in proportion to its weight (never one of weight 0).
 * Caller holds b->lock; the set's total weight is above 0. */
static struct endpoint *draw_locked(struct balancer *b)
{
	double r = rand_unit() * b->cum[b->neps - 1];
	size_t lo = 0, hi = b->neps - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->cum[mid] > r)
			hi = mid;
		else
			lo = mid + 1;
	}
	return b->eps[lo];
}

/* Power of two choices: the better of two eligible weighted draws.  Caller holds b->lock. */
static struct endpoint *p2c_locked(struct balancer *b, struct endpoint *const *tried, size_t ntried,
				   bool allow_ejected, int64_t now)
{
	struct endpoint *best = NULL;
	int got = 0;

	for (int i = 0; i < BALANCER_DRAWS && got < 2; i++) {
		struct endpoint *e = draw_locked(b);

		if (e->weight <= 0 || was_tried(e, tried, ntried) ||
		    (!allow_ejected && e->ejected_until > now))
			continue;
		got++;
		if (!best || score(e) < score(best))
			best = e;
	}
	return best;
}

/* The lowest score among eligible endpoints.  When it finds every endpoint
 * ejected it notes until when, so that picks do not scan again meanwhile.
 * Caller holds b->lock. */
static struct endpoint *scan_locked(struct balancer *b, struct endpoint *const *tried,
				    size_t ntried, bool allow_ejected, int64_t now)
{
	struct endpoint *best = NULL;
	int64_t until = INT64_MAX; /* the end of the earliest ejection */
	bool all_ejected = true;
	size_t n = b->neps, start = b->rr++ % n;

	for (size_t k = 0; k < n; k++) {
		struct endpoint *e = b->eps[(start + k) % n];

		if (e->weight <= 0)
			continue;
		if (!allow_ejected && e->ejected_until > now) {
			until = MIN(until, e->ejected_until);
			continue;
		}
		all_ejected = false;
		if (was_tried(e, tried, ntried))
			continue;
		if (!best || score(e) < score(best))
			best = e;
	}
	if (!allow_ejected && all_ejected && until != INT64_MAX)
		b->ejected_until = until;
	return best;
}

/* Ejected endpoints count only when allow_ejected.  Caller holds b->lock. */
static struct endpoint *choose_locked(struct balancer *b, struct endpoint *const *tried,
				      size_t ntried, bool allow_ejected, int64_t now)
{
	struct endpoint *e;

	if (b->neps == 0 || b->cum[b->neps - 1] <= 0)
		return NULL; /* nothing, or nothing of weight above 0 */
	if (!allow_ejected && now < b->ejected_until)
		return NULL;
	if (b->neps > BALANCER_SCAN_MAX) {
		e = p2c_locked(b, tried, ntried, allow_ejected, now);
		if (e)
			return e;
	}
	return scan_locked(b, tried, ntried, allow_ejected, now);
}

static int wait_resolved_locked(struct balancer *b, int64_t deadline_ms)
{
	while (!b->resolved)
		if (!cond_wait_until(&b->resolved_cond, &b->lock, deadline_ms))
			return -1;
	return 0;
}

const char *pick_failure_name(enum pick_failure f)
{
	static const char *const names[] = { "no endpoints", "not resolved",
					     "all endpoints tried" };
	return f < ARRAY_SIZE(names) ? names[f] : "?";
}

struct endpoint *balancer_pick(struct balancer *b, struct endpoint *const *tried, size_t ntried,
			       int64_t deadline_ms, enum pick_failure *why)
{
	struct endpoint *e = NULL;
	int64_t now = now_ms();
	int episode = 0; /* logged once the lock is released: 1 fail-open starts, -1 it ends */

	pthread_mutex_lock(&b->lock);
	if (wait_resolved_locked(b, deadline_ms) < 0) {
		*why = PICK_NOT_RESOLVED;
		goto out;
	}
	e = choose_locked(b, tried, ntried, false, now);
	if (!e) {
		e = choose_locked(b, tried, ntried, true, now);
		if (e && !b->failing_open) {
			b->failing_open = true;
			episode = 1;
		}
	} else if (b->failing_open) {
		b->failing_open = false;
		episode = -1;
	}
	if (e)
		e->active++;
	else
		*why = ntried ? PICK_ALL_TRIED : PICK_NO_ENDPOINTS;
out:
	pthread_mutex_unlock(&b->lock);
	if (episode > 0)
		log_warn("%s: every endpoint is ejected; failing open", b->label);
	else if (episode < 0)
		log_info("%s: endpoints are available again", b->label);
	return e;
}

/* ------------------------------------------------------------------ outcomes */

static int64_t backoff_ms(const struct balancer_params *p, unsigned ejections)
{
	double base = (double)p->backoff_min_ms * ldexp(1.0, (int)MIN(ejections, 40u));

	if (base > (double)p->backoff_max_ms)
		base = (double)p->backoff_max_ms;
	/* Equal jitter: half fixed, half random, so probes of a dead endpoint spread out. */
	return (int64_t)(base / 2 + rand_unit() * base / 2);
}

const char *connect_result_name(enum connect_result r)
{
	static const char *const names[CONNECT_RESULTS] = {
		"ok", "refused", "timeout", "unreachable", "reset", "tls", "other", "local",
	};
	return r < CONNECT_RESULTS ? names[r] : "other";
}

/* Counts a failure; returns the ejection it starts in ms, or -1.  Caller holds b->lock. */
static int64_t record_failure_locked(struct balancer *b, struct endpoint *e, enum connect_result r)
{
	int64_t now = now_ms(), ms;

	e->failures[r < CONNECT_RESULTS ? r : CONNECT_OTHER]++;
	e->failed++;
	e->failures_in_row++;
	/* Attempts that were under way when it was ejected do not eject it again. */
	if (e->failures_in_row < b->params.consecutive_failures || e->ejected_until > now)
		return -1;
	ms = backoff_ms(&b->params, e->ejections);
	e->ejected_until = now + ms;
	e->ejections++;
	/* After the backoff one more failure ejects it again. */
	e->failures_in_row = b->params.consecutive_failures - 1;
	return ms;
}

/* Logging waits until the lock is released; e stays valid until the caller's balancer_release. */
bool balancer_report(struct balancer *b, struct endpoint *e, enum connect_result r)
{
	unsigned back_after = 0; /* ejections that this success ends */
	int64_t ejected_ms = -1;
	uint64_t failed = 0;
	bool recovered = false, first = false;

	pthread_mutex_lock(&b->lock);
	e->connects++;
	if (r == CONNECT_OK) {
		recovered = e->failing;
		e->failing = false;
		back_after = e->ejections;
		if (e->ejected_until)
			b->ejected_until = 0; /* it is eligible again */
		e->failures_in_row = 0;
		e->ejections = 0;
		e->ejected_until = 0;
	} else if (r == CONNECT_LOCAL) {
		e->failures[r]++; /* our own shortage says nothing about the endpoint */
	} else {
		ejected_ms = record_failure_locked(b, e, r);
		failed = e->failed;
		first = !e->failing;
		e->failing = true;
	}
	pthread_mutex_unlock(&b->lock);
	if (back_after)
		log_info("%s: endpoint %s is back after %u ejection(s)", b->label, e->name,
			 back_after);
	else if (recovered)
		log_info("%s: endpoint %s answers again", b->label, e->name);
	if (ejected_ms >= 0)
		log_warn("%s: endpoint %s ejected for %lld ms after %llu failure(s)", b->label,
			 e->name, (long long)ejected_ms, (unsigned long long)failed);
	return first;
}

void balancer_release(struct balancer *b, struct endpoint *e, uint64_t from_client,
		      uint64_t to_client)
{
	bool gone = false;

	pthread_mutex_lock(&b->lock);
	e->bytes_from_client += from_client;
	e->bytes_to_client += to_client;
	if (e->active > 0)
		e->active--;
	if (e->draining && e->active == 0) {
		draining_remove_locked(b, e);
		gone = true;
	}
	pthread_mutex_unlock(&b->lock);
	if (gone)
		free(e);
}

const char *endpoint_name(const struct endpoint *e)
{
	return e->name;
}

const struct netaddr *endpoint_addr(const struct endpoint *e)
{
	return &e->addr;
}

/* ------------------------------------------------------------------ views */

const char *endpoint_state_name(enum endpoint_state s)
{
	static const char *const names[EP_STATES] = { "active", "ejected", "draining", "removed" };
	return s < EP_STATES ? names[s] : "?";
}

/* Caller holds b->lock. */
static void view_of(const struct balancer *b, const struct endpoint *e, int64_t now,
		    struct endpoint_view *v)
{
	const struct override *o = b->novr ? override_find(b, &e->key) : NULL;

	memcpy(v->name, e->name, sizeof(v->name));
	v->configured_weight = e->configured;
	v->weight = o && o->o.has_weight ? o->o.weight : e->configured;
	v->has_override = o != NULL;
	if (o)
		v->override = o->o;
	v->active = e->active;
	v->consecutive_failures = e->failures_in_row;
	if (e->draining)
		v->state = EP_REMOVED;
	else if (o && o->o.has_drain && o->o.drain)
		v->state = EP_DRAINING;
	else
		v->state = e->ejected_until > now ? EP_EJECTED : EP_ACTIVE;
	v->connects = e->connects;
	memcpy(v->failures, e->failures, sizeof(v->failures));
	v->bytes_from_client = e->bytes_from_client;
	v->bytes_to_client = e->bytes_to_client;
}

size_t balancer_snapshot(struct balancer *b, struct endpoint_view *out, size_t max)
{
	int64_t now = now_ms();
	size_t total, k;

	/* Touch the buffer first so that its page faults are not taken under the lock. */
	if (max > 0)
		memset(out, 0, max * sizeof(*out));
	pthread_mutex_lock(&b->lock);
	total = b->neps + b->ndraining;
	for (k = 0; k < b->neps && k < max; k++)
		view_of(b, b->eps[k], now, &out[k]);
	for (size_t i = 0; i < b->ndraining && k < max; i++, k++)
		view_of(b, b->draining[i], now, &out[k]);
	pthread_mutex_unlock(&b->lock);
	return total;
}

/* ------------------------------------------------------------------ overrides */

/* The endpoint of the active set with key k, or NULL.  Caller holds b->lock. */
static struct endpoint *endpoint_find_locked(const struct balancer *b, const struct addr_key *k)
{
	size_t lo = 0, hi = b->neps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(&b->eps[mid]->key, k);

		if (c == 0)
			return b->eps[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* After a weight changed in place: the prefix sums again.  Caller holds b->lock. */
static void cum_rebuild_locked(struct balancer *b)
{
	double sum = 0.0;

	for (size_t i = 0; i < b->neps; i++) {
		sum += b->eps[i]->weight > 0 ? b->eps[i]->weight : 0.0;
		b->cum[i] = sum;
	}
	b->ejected_until = 0;
}

/* The override for e's address, made (empty) if it has none.  Caller holds both locks. */
static struct override *override_get_locked(struct balancer *b, const struct endpoint *e)
{
	size_t i = 0;

	while (i < b->novr && key_cmp(&b->ovr[i].key, &e->key) < 0)
		i++;
	if (i < b->novr && key_cmp(&b->ovr[i].key, &e->key) == 0)
		return &b->ovr[i];
	b->ovr = xrealloc(b->ovr, (b->novr + 1) * sizeof(*b->ovr));
	memmove(&b->ovr[i + 1], &b->ovr[i], (b->novr - i) * sizeof(*b->ovr));
	b->novr++;
	memset(&b->ovr[i], 0, sizeof(b->ovr[i]));
	b->ovr[i].key = e->key;
	memcpy(b->ovr[i].name, e->name, sizeof(b->ovr[i].name));
	return &b->ovr[i];
}

int balancer_set_override(struct balancer *b, const struct netaddr *a,
			  const struct endpoint_override *o)
{
	struct addr_key k;
	struct endpoint *e;
	struct override *ov;

	addr_key(a, &k);
	pthread_mutex_lock(&b->update_lock);
	pthread_mutex_lock(&b->lock);
	e = endpoint_find_locked(b, &k);
	if (e) {
		ov = override_get_locked(b, e);
		if (o->has_weight) {
			ov->o.has_weight = true;
			ov->o.weight = o->weight;
		}
		if (o->has_drain) {
			ov->o.has_drain = true;
			ov->o.drain = o->drain;
		}
		e->weight = pick_weight(ov, e->configured);
		cum_rebuild_locked(b);
	}
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_unlock(&b->update_lock);
	return e ? 0 : -1;
}

int balancer_clear_override(struct balancer *b, const struct netaddr *a)
{
	struct addr_key k;
	const struct override *ov;
	struct endpoint *e;
	int rc = -1;

	addr_key(a, &k);
	pthread_mutex_lock(&b->update_lock);
	pthread_mutex_lock(&b->lock);
	if ((ov = override_find(b, &k))) {
		size_t i = (size_t)(ov - b->ovr);
		memmove(&b->ovr[i], &b->ovr[i + 1], (b->novr - i - 1) * sizeof(*b->ovr));
		b->novr--;
		if ((e = endpoint_find_locked(b, &k))) {
			e->weight = e->configured;
			cum_rebuild_locked(b);
		}
		rc = 0;
	}
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_unlock(&b->update_lock);
	return rc;
}

size_t balancer_overrides(struct balancer *b, struct override_view *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&b->lock);
	n = b->novr;
	for (size_t i = 0; i < n && i < max; i++) {
		memcpy(out[i].name, b->ovr[i].name, sizeof(out[i].name));
		out[i].override = b->ovr[i].o;
		out[i].present = endpoint_find_locked(b, &b->ovr[i].key) != NULL;
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}

bool balancer_override_of(struct balancer *b, const struct netaddr *a,
			  struct endpoint_override *out)
{
	struct addr_key k;
	const struct override *ov;

	addr_key(a, &k);
	pthread_mutex_lock(&b->lock);
	ov = override_find(b, &k);
	if (ov)
		*out = ov->o;
	pthread_mutex_unlock(&b->lock);
	return ov != NULL;
}
