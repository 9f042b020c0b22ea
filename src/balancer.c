#include "auto-config.h"

#include "balancer.h"

#include "log.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Above this many candidates a full scan gives way to two random choices. */
#define BALANCER_SCAN_MAX 256

struct endpoint {
	struct netaddr addr;
	char name[NETADDR_STRLEN];
	double weight;
	unsigned active;
	unsigned failures_in_row;
	unsigned ejections; /* consecutive ejections, drives the backoff */
	int64_t ejected_until;
	bool draining;
	uint64_t connects;
	uint64_t failures[CONNECT_RESULTS];
	uint64_t failed; /* all causes */
};

struct balancer {
	pthread_mutex_t lock;
	pthread_cond_t resolved_cond;
	char *label;
	struct balancer_params params;
	bool resolved;
	bool failing_open; /* to log the episode once */
	struct endpoint **eps;
	size_t neps;
	struct endpoint **draining;
	size_t ndraining;
	unsigned rr; /* rotates the scan start so that ties spread out */
};

struct balancer *balancer_new(const char *label, const struct balancer_params *params)
{
	struct balancer *b = xcalloc(1, sizeof(*b));
	pthread_condattr_t ca;

	pthread_mutex_init(&b->lock, NULL);
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
	free(b->draining);
	free(b->label);
	pthread_cond_destroy(&b->resolved_cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

void balancer_set_params(struct balancer *b, const struct balancer_params *params)
{
	pthread_mutex_lock(&b->lock);
	b->params = *params;
	pthread_mutex_unlock(&b->lock);
}

static struct endpoint *find_endpoint(struct endpoint **v, size_t n, const struct netaddr *a,
				      size_t *at)
{
	for (size_t i = 0; i < n; i++)
		if (netaddr_equal(&v[i]->addr, a)) {
			if (at)
				*at = i;
			return v[i];
		}
	return NULL;
}

static void remove_at(struct endpoint **v, size_t *n, size_t i)
{
	v[i] = v[--*n];
}

static struct endpoint *endpoint_new(const struct endpoint_spec *s)
{
	struct endpoint *e = xcalloc(1, sizeof(*e));

	e->addr = s->addr;
	e->weight = s->weight;
	netaddr_format(&e->addr, e->name, sizeof(e->name));
	return e;
}

/* Caller holds b->lock. */
static struct endpoint *take_existing_locked(struct balancer *b, const struct netaddr *a)
{
	size_t at;
	struct endpoint *e = find_endpoint(b->eps, b->neps, a, &at);

	if (e) {
		remove_at(b->eps, &b->neps, at);
		return e;
	}
	e = find_endpoint(b->draining, b->ndraining, a, &at);
	if (e) {
		remove_at(b->draining, &b->ndraining, at);
		e->draining = false;
	}
	return e;
}

void balancer_update(struct balancer *b, const struct endpoint_spec *specs, size_t n)
{
	struct endpoint **next = xcalloc(n, sizeof(*next));
	size_t nnext = 0;

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < n; i++) {
		if (find_endpoint(next, nnext, &specs[i].addr, NULL))
			continue; /* listed twice: the first entry wins */
		struct endpoint *e = take_existing_locked(b, &specs[i].addr);
		if (e)
			e->weight = specs[i].weight;
		else
			e = endpoint_new(&specs[i]);
		next[nnext++] = e;
	}
	/* What is left of the old set leaves rotation; busy endpoints drain. */
	for (size_t i = 0; i < b->neps; i++) {
		struct endpoint *e = b->eps[i];
		if (e->active == 0) {
			free(e);
			continue;
		}
		e->draining = true;
		b->draining = xrealloc(b->draining, (b->ndraining + 1) * sizeof(*b->draining));
		b->draining[b->ndraining++] = e;
	}
	free(b->eps);
	b->eps = next;
	b->neps = nnext;
	b->resolved = true;
	pthread_cond_broadcast(&b->resolved_cond);
	pthread_mutex_unlock(&b->lock);
}

bool balancer_resolved(struct balancer *b)
{
	pthread_mutex_lock(&b->lock);
	bool r = b->resolved;
	pthread_mutex_unlock(&b->lock);
	return r;
}

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

/* Lowest score among eligible endpoints; ejected ones count only when
 * allow_ejected.  Caller holds b->lock. */
static struct endpoint *choose_locked(struct balancer *b, struct endpoint *const *tried,
				      size_t ntried, bool allow_ejected, int64_t now)
{
	struct endpoint *best = NULL;
	size_t n = b->neps;

	if (n == 0)
		return NULL;
	if (n > BALANCER_SCAN_MAX) {
		/* Power of two choices: the better of two eligible random draws. */
		int got = 0;
		for (int i = 0; i < 16 && got < 2; i++) {
			struct endpoint *e = b->eps[rand_u64() % n];
			if (e->weight <= 0 || was_tried(e, tried, ntried) ||
			    (!allow_ejected && e->ejected_until > now))
				continue;
			got++;
			if (!best || score(e) < score(best))
				best = e;
		}
		if (best)
			return best;
	}
	size_t start = b->rr++ % n;
	for (size_t k = 0; k < n; k++) {
		struct endpoint *e = b->eps[(start + k) % n];
		if (e->weight <= 0 || was_tried(e, tried, ntried))
			continue;
		if (!allow_ejected && e->ejected_until > now)
			continue;
		if (!best || score(e) < score(best))
			best = e;
	}
	return best;
}

static int wait_resolved_locked(struct balancer *b, int64_t deadline_ms)
{
	while (!b->resolved)
		if (!cond_wait_until(&b->resolved_cond, &b->lock, deadline_ms))
			return -1;
	return 0;
}

struct endpoint *balancer_pick(struct balancer *b, struct endpoint *const *tried, size_t ntried,
			       int64_t deadline_ms, const char **why)
{
	struct endpoint *e = NULL;
	int64_t now = now_ms();
	int episode = 0; /* logged once the lock is released: 1 fail-open starts, -1 it ends */

	pthread_mutex_lock(&b->lock);
	if (wait_resolved_locked(b, deadline_ms) < 0) {
		*why = "not resolved";
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
		*why = ntried ? "all endpoints tried" : "no endpoints";
out:
	pthread_mutex_unlock(&b->lock);
	if (episode > 0)
		log_warn("%s: every endpoint is ejected; failing open", b->label);
	else if (episode < 0)
		log_info("%s: endpoints are available again", b->label);
	return e;
}

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
void balancer_report(struct balancer *b, struct endpoint *e, enum connect_result r)
{
	unsigned back_after = 0; /* ejections that this success ends */
	int64_t ejected_ms = -1;
	uint64_t failed = 0;

	pthread_mutex_lock(&b->lock);
	e->connects++;
	if (r == CONNECT_OK) {
		back_after = e->ejections;
		e->failures_in_row = 0;
		e->ejections = 0;
		e->ejected_until = 0;
	} else if (r == CONNECT_LOCAL) {
		e->failures[r]++; /* our own shortage says nothing about the endpoint */
	} else {
		ejected_ms = record_failure_locked(b, e, r);
		failed = e->failed;
	}
	pthread_mutex_unlock(&b->lock);
	if (back_after)
		log_info("%s: endpoint %s is back after %u ejection(s)", b->label, e->name,
			 back_after);
	if (ejected_ms >= 0)
		log_warn("%s: endpoint %s ejected for %lld ms after %llu failure(s)", b->label,
			 e->name, (long long)ejected_ms, (unsigned long long)failed);
}

void balancer_release(struct balancer *b, struct endpoint *e)
{
	bool gone = false;

	pthread_mutex_lock(&b->lock);
	if (e->active > 0)
		e->active--;
	if (e->draining && e->active == 0) {
		for (size_t i = 0; i < b->ndraining; i++)
			if (b->draining[i] == e) {
				remove_at(b->draining, &b->ndraining, i);
				gone = true;
				break;
			}
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

static void view_of(const struct endpoint *e, int64_t now, struct endpoint_view *v)
{
	memcpy(v->name, e->name, sizeof(v->name));
	v->weight = e->weight;
	v->active = e->active;
	v->consecutive_failures = e->failures_in_row;
	v->state = e->draining ? EP_DRAINING : e->ejected_until > now ? EP_EJECTED : EP_ACTIVE;
	v->connects = e->connects;
	memcpy(v->failures, e->failures, sizeof(v->failures));
}

size_t balancer_snapshot(struct balancer *b, struct endpoint_view *out, size_t max)
{
	int64_t now = now_ms();
	size_t k = 0;

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->neps; i++, k++)
		if (k < max)
			view_of(b->eps[i], now, &out[k]);
	for (size_t i = 0; i < b->ndraining; i++, k++)
		if (k < max)
			view_of(b->draining[i], now, &out[k]);
	pthread_mutex_unlock(&b->lock);
	return k;
}
