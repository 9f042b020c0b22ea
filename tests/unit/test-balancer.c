/* Unit tests of the balancer's choice, failure accrual and draining. */
#include "auto-config.h"

#include "balancer.h"
#include "log.h"
#include "tap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct balancer_params params = { .consecutive_failures = 3,
					       .backoff_min_ms = 200,
					       .backoff_max_ms = 400 };

/* Ejections that outlast any test. */
static const struct balancer_params long_params = { .consecutive_failures = 3,
						    .backoff_min_ms = 60000,
						    .backoff_max_ms = 60000 };

static struct endpoint_spec spec(unsigned port, double weight)
{
	struct endpoint_spec s;

	if (netaddr_from_ip("127.0.0.1", (uint16_t)port, &s.addr) < 0)
		abort();
	s.weight = weight;
	return s;
}

static unsigned port_of(struct endpoint *e)
{
	return netaddr_port(endpoint_addr(e));
}

static struct endpoint *pick(struct balancer *b)
{
	enum pick_failure why = PICK_NO_ENDPOINTS;
	return balancer_pick(b, NULL, 0, now_ms() + 100, &why);
}

static void test_weighted_split(void)
{
	struct balancer *b = balancer_new("t", &params);
	struct endpoint_spec s[2] = { spec(1, 3.0), spec(2, 1.0) };
	unsigned count[3] = { 0 };

	balancer_update(b, s, 2);
	for (int i = 0; i < 200; i++)
		count[port_of(pick(b))]++;
	ok(count[1] == 150 && count[2] == 50, "3:1 weights split 200 held picks 150:50 (%u:%u)",
	   count[1], count[2]);
	balancer_free(b);
}

static void test_least_loaded(void)
{
	struct balancer *b = balancer_new("t", &params);
	struct endpoint_spec s[2] = { spec(1, 1.0), spec(2, 1.0) };
	struct endpoint *held[5], *fresh[5];
	int all_idle = 1;

	/* Load endpoint 1 with five long-lived connections, then add endpoint 2. */
	balancer_update(b, s, 1);
	for (int i = 0; i < 5; i++)
		held[i] = pick(b);
	balancer_update(b, s, 2);
	for (int i = 0; i < 5; i++) {
		fresh[i] = pick(b);
		all_idle &= port_of(fresh[i]) == 2;
	}
	ok(all_idle, "equal weights: new connections go to the less loaded endpoint");
	for (int i = 0; i < 5; i++) {
		balancer_release(b, held[i], 0, 0);
		balancer_release(b, fresh[i], 0, 0);
	}
	balancer_free(b);
}

static void test_ties_rotate(void)
{
	struct balancer *b = balancer_new("t", &params);
	struct endpoint_spec s[3] = { spec(1, 1.0), spec(2, 1.0), spec(3, 1.0) };
	unsigned seen[4] = { 0 };

	balancer_update(b, s, 3);
	for (int i = 0; i < 30; i++) {
		struct endpoint *e = pick(b);
		seen[port_of(e)]++;
		balancer_release(b, e, 0, 0);
	}
	ok(seen[1] == 10 && seen[2] == 10 && seen[3] == 10,
	   "ties between idle endpoints rotate (%u/%u/%u)", seen[1], seen[2], seen[3]);
	balancer_free(b);
}

static void test_tried_and_zero_weight(void)
{
	struct balancer *b = balancer_new("t", &params);
	struct endpoint_spec s[3] = { spec(1, 1.0), spec(2, 0.0), spec(3, 1.0) };
	enum pick_failure why = PICK_NO_ENDPOINTS;
	struct endpoint *first, *second, *third;
	bool no_zero = true;

	balancer_update(b, s, 3);
	for (int i = 0; i < 20; i++) {
		struct endpoint *e = pick(b);
		no_zero &= port_of(e) != 2;
		balancer_release(b, e, 0, 0);
	}
	ok(no_zero, "weight 0 is never chosen");
	first = pick(b);
	second = balancer_pick(b, &first, 1, now_ms() + 100, &why);
	ok(second && second != first, "a retry avoids the endpoint already tried");
	struct endpoint *tried[2] = { first, second };
	third = balancer_pick(b, tried, 2, now_ms() + 100, &why);
	ok(third == NULL && why == PICK_ALL_TRIED,
	   "nothing left after every endpoint was tried (%s)", pick_failure_name(why));
	balancer_release(b, first, 0, 0);
	balancer_release(b, second, 0, 0);
	balancer_free(b);
}

static void test_ejection_and_fail_open(void)
{
	struct balancer *b = balancer_new("t", &params);
	struct endpoint_spec s[2] = { spec(1, 1.0), spec(2, 1.0) };
	struct endpoint *bad = NULL;
	bool avoided = true;

	balancer_update(b, s, 2);
	while (!bad || port_of(bad) != 1) {
		if (bad)
			balancer_release(b, bad, 0, 0);
		bad = pick(b);
	}
	for (int i = 0; i < 3; i++)
		balancer_report(b, bad, CONNECT_REFUSED);
	balancer_release(b, bad, 0, 0);
	for (int i = 0; i < 10; i++) {
		struct endpoint *e = pick(b);
		avoided &= port_of(e) == 2;
		balancer_release(b, e, 0, 0);
	}
	ok(avoided, "an endpoint is ejected after 3 consecutive failures");

	struct endpoint_view v[2];
	size_t n = balancer_snapshot(b, v, 2);
	ok(n == 2 && (v[0].state == EP_EJECTED || v[1].state == EP_EJECTED),
	   "the snapshot shows the ejected state");
	struct endpoint_view *ej = v[0].state == EP_EJECTED ? &v[0] : &v[1];
	ok(ej->failures[CONNECT_REFUSED] == 3 && ej->connects == 3,
	   "failures are counted by cause (%llu refused of %llu)",
	   (unsigned long long)ej->failures[CONNECT_REFUSED], (unsigned long long)ej->connects);

	struct endpoint *other = pick(b);
	for (int i = 0; i < 3; i++)
		balancer_report(b, other, CONNECT_TIMEOUT);
	balancer_release(b, other, 0, 0);
	struct endpoint *open = pick(b);
	ok(open != NULL, "all ejected: the balancer fails open");
	balancer_release(b, open, 0, 0);

	usleep(450 * 1000); /* past backoff_max_ms */
	bool back1 = false;
	for (int i = 0; i < 4; i++) {
		struct endpoint *e = pick(b);
		back1 |= port_of(e) == 1;
		balancer_release(b, e, 0, 0);
	}
	ok(back1, "an ejected endpoint returns after its backoff");
	balancer_free(b);
}

static void test_update_drains(void)
{
	struct balancer *b = balancer_new("t", &params);
	struct endpoint_spec s1[2] = { spec(1, 1.0), spec(2, 1.0) };
	struct endpoint_spec s2[1] = { spec(3, 1.0) };
	struct endpoint *held = pick(b);
	struct endpoint_view v[4];

	ok(held == NULL, "no endpoints yet: nothing is chosen before the timeout");
	balancer_update(b, s1, 2);
	held = pick(b);
	balancer_update(b, s2, 1);
	size_t n = balancer_snapshot(b, v, 4);
	ok(n == 2 && v[1].state == EP_REMOVED && v[1].active == 1,
	   "a removed endpoint with a connection drains");
	ok(port_of(pick(b)) == 3, "new connections use the new set at once");
	balancer_release(b, held, 0, 0);
	n = balancer_snapshot(b, v, 4);
	ok(n == 1, "a drained endpoint goes away with its last connection");
	balancer_update(b, NULL, 0);
	enum pick_failure why = PICK_ALL_TRIED;
	ok(balancer_pick(b, NULL, 0, now_ms() + 100, &why) == NULL && why == PICK_NO_ENDPOINTS,
	   "an empty set fails fast");
	balancer_free(b);
}

static void test_weight_update_keeps_state(void)
{
	struct balancer *b = balancer_new("t", &params);
	struct endpoint_spec s[2] = { spec(1, 1.0), spec(2, 1.0) };
	struct endpoint_view v[2];

	balancer_update(b, s, 2);
	struct endpoint *e = pick(b);
	s[0].weight = 5.0;
	s[1].weight = 5.0;
	balancer_update(b, s, 2);
	size_t n = balancer_snapshot(b, v, 2);
	ok(n == 2 && v[0].weight == 5.0 && v[0].active + v[1].active == 1,
	   "a weight change keeps the endpoints and their connections");
	balancer_release(b, e, 0, 0);
	balancer_free(b);
}

/* Generous: an update that is quadratic in the set size takes 14 s and more at 100,000. */
#ifdef HAVE_SANITIZERS
#define LARGE_SET_MS 5000
#else
#define LARGE_SET_MS 1000
#endif
#define LARGE_SET 100000

/* Endpoint i of a large set: 127.x.y.z, a port from 1000 up. */
static struct endpoint_spec nth(size_t i, unsigned port_base, double weight)
{
	struct endpoint_spec s;
	char ip[32];

	snprintf(ip, sizeof(ip), "127.%zu.%zu.%zu", (i >> 16) & 255, (i >> 8) & 255, i & 255);
	if (netaddr_from_ip(ip, (uint16_t)(port_base + i % 7), &s.addr) < 0)
		abort();
	s.weight = weight;
	return s;
}

/* The view of the endpoint on port, or NULL. */
static const struct endpoint_view *view_on(const struct endpoint_view *v, size_t n, unsigned port)
{
	char suffix[16];

	snprintf(suffix, sizeof(suffix), ":%u", port);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i].name), sl = strlen(suffix);
		if (l >= sl && strcmp(v[i].name + l - sl, suffix) == 0)
			return &v[i];
	}
	return NULL;
}

static void test_update_duplicates(void)
{
	struct balancer *b = balancer_new("t", &params);
	struct endpoint_spec s[6] = { spec(1, 1.0), spec(2, 2.0), spec(1, 5.0),
				      spec(3, 1.0), spec(2, 9.0), spec(1, 7.0) };
	struct endpoint_view v[6];
	size_t n;

	balancer_update(b, s, 6);
	n = balancer_snapshot(b, v, 6);
	ok(n == 3, "an address listed several times is one endpoint (%zu)", n);
	ok(n == 3 && view_on(v, n, 1)->weight == 1.0 && view_on(v, n, 2)->weight == 2.0,
	   "the first entry of a duplicated address gives its weight");
	balancer_free(b);
}

/* Ejects e: three failed attempts. */
static void eject(struct balancer *b, struct endpoint *e)
{
	for (int i = 0; i < 3; i++)
		balancer_report(b, e, CONNECT_REFUSED);
}

static void test_update_keeps_state(void)
{
	struct balancer *b = balancer_new("t", &long_params);
	struct endpoint_spec s1[3] = { spec(1, 1.0), spec(2, 1.0), spec(3, 1.0) };
	struct endpoint_spec s2[3] = { spec(4, 1.0), spec(2, 1.0), spec(1, 1.0) };
	struct endpoint_view v[8], w[8];
	struct endpoint *held[3];
	size_t n;

	memset(v, 0, sizeof(v)); /* compared with memcmp, padding included */
	memset(w, 0, sizeof(w));
	balancer_update(b, s1, 3);
	for (int i = 0; i < 3; i++)
		held[i] = pick(b); /* one on each */
	for (int i = 0; i < 3; i++)
		if (port_of(held[i]) == 2)
			eject(b, held[i]);
	for (int i = 0; i < 3; i++)
		if (port_of(held[i]) == 3) {
			balancer_release(b, held[i], 0, 0);
			held[i] = NULL;
		}
	balancer_update(b, s2, 3); /* 3 (idle) goes, 4 comes */
	n = balancer_snapshot(b, v, 8);
	ok(n == 3 && view_on(v, n, 1)->active == 1 && view_on(v, n, 1)->state == EP_ACTIVE,
	   "a kept endpoint keeps its connection count");
	ok(n == 3 && view_on(v, n, 2)->state == EP_EJECTED && view_on(v, n, 2)->connects == 3 &&
		   view_on(v, n, 2)->failures[CONNECT_REFUSED] == 3,
	   "a kept endpoint keeps its ejection and counters");
	ok(n == 3 && !view_on(v, n, 3) && view_on(v, n, 4)->active == 0,
	   "an idle removed endpoint goes at once; a new one starts idle");

	balancer_update(b, s2, 3);
	ok(balancer_snapshot(b, w, 8) == n && memcmp(v, w, n * sizeof(*v)) == 0,
	   "re-applying the same set changes nothing");

	balancer_update(b, s2, 1); /* 1 and 2 go; both carry a connection */
	n = balancer_snapshot(b, v, 8);
	ok(n == 3 && view_on(v, n, 1)->state == EP_REMOVED && view_on(v, n, 1)->active == 1 &&
		   view_on(v, n, 2)->state == EP_REMOVED,
	   "removed endpoints with connections drain");
	balancer_update(b, s2, 3); /* they come back while draining */
	n = balancer_snapshot(b, v, 8);
	ok(n == 3 && view_on(v, n, 1)->state == EP_ACTIVE && view_on(v, n, 1)->active == 1 &&
		   view_on(v, n, 2)->state == EP_EJECTED,
	   "an endpoint that comes back while draining keeps its connections and ejection");
	for (int i = 0; i < 3; i++)
		if (held[i])
			balancer_release(b, held[i], 0, 0);
	balancer_update(b, s2, 1);
	ok(balancer_snapshot(b, v, 8) == 1, "endpoints removed once idle do not drain");
	balancer_free(b);
}

static struct endpoint_spec *large_set(size_t n, unsigned port_base)
{
	struct endpoint_spec *s = xcalloc(n, sizeof(*s));

	for (size_t i = 0; i < n; i++)
		s[i] = nth(i, port_base, 1.0);
	return s;
}

static int64_t timed_update(struct balancer *b, const struct endpoint_spec *s, size_t n)
{
	int64_t t0 = now_ms();

	balancer_update(b, s, n);
	return now_ms() - t0;
}

static void test_large_update(void)
{
	struct balancer *b = balancer_new("t", &long_params);
	struct endpoint_spec *s = large_set(LARGE_SET + 1000, 1000);
	struct endpoint_view *v = xcalloc(LARGE_SET + 8, sizeof(*v));
	struct endpoint_view *w = xcalloc(LARGE_SET + 8, sizeof(*w));
	struct endpoint *held[4];
	int64_t ms;
	size_t n;

	memcpy(s + LARGE_SET, s, 1000 * sizeof(*s)); /* 1,000 duplicates at the end */
	ms = timed_update(b, s, LARGE_SET + 1000);
	n = balancer_snapshot(b, v, LARGE_SET + 8);
	ok(n == LARGE_SET && ms < LARGE_SET_MS,
	   "%d endpoints (and 1000 duplicates) applied in %lld ms (%zu endpoints)", LARGE_SET,
	   (long long)ms, n);
	for (int i = 0; i < 4; i++)
		held[i] = pick(b);
	eject(b, held[0]);
	n = balancer_snapshot(b, v, LARGE_SET + 8);
	ms = timed_update(b, s, LARGE_SET + 1000);
	ok(ms < LARGE_SET_MS && balancer_snapshot(b, w, LARGE_SET + 8) == n &&
		   memcmp(v, w, n * sizeof(*v)) == 0,
	   "the same %d endpoints re-applied in %lld ms, every endpoint's state unchanged",
	   LARGE_SET, (long long)ms);

	struct endpoint_spec *other = large_set(LARGE_SET, 2000);
	other[0] = nth(0, 1000, 1.0); /* keep one endpoint of the old set */
	ms = timed_update(b, other, LARGE_SET);
	n = balancer_snapshot(b, v, LARGE_SET + 8);
	size_t draining = 0;
	for (size_t i = 0; i < MIN(n, (size_t)LARGE_SET + 8); i++)
		draining += v[i].state == EP_REMOVED;
	ok(ms < LARGE_SET_MS && n == LARGE_SET + draining && draining >= 3 && draining <= 4,
	   "a different set of %d applied in %lld ms; the removed busy endpoints drain (%zu)",
	   LARGE_SET, (long long)ms, draining);
	for (int i = 0; i < 4; i++)
		balancer_release(b, held[i], 0, 0);
	ok(balancer_snapshot(b, NULL, 0) == LARGE_SET, "and go with their last connection");
	free(other);
	free(w);
	free(v);
	free(s);
	balancer_free(b);
}

/* 10,000 picks over the set; a scan of every endpoint per pick would take seconds. */
static int64_t timed_picks(struct balancer *b, unsigned *heavy, unsigned lo, unsigned hi)
{
	int64_t t0 = now_ms();

	*heavy = 0;
	for (int i = 0; i < 10000; i++) {
		struct endpoint *e = pick(b);
		if (!e)
			return -1;
		*heavy += port_of(e) >= lo && port_of(e) <= hi;
		balancer_release(b, e, 0, 0);
	}
	return now_ms() - t0;
}

static void test_large_pick(void)
{
	struct balancer *b = balancer_new("t", &long_params);
	struct endpoint_spec *s = large_set(LARGE_SET, 1000);
	unsigned heavy;
	int64_t ms;

	/* Three heavy endpoints, 127.0.0.1 ports 1-3: weighted draws find them. */
	for (size_t i = 0; i < LARGE_SET; i++)
		s[i].weight = 0.001;
	for (unsigned i = 0; i < 3; i++)
		s[i * 1000] = spec(1 + i, 10000.0);
	balancer_update(b, s, LARGE_SET);
	ms = timed_picks(b, &heavy, 1, 3);
	ok(ms >= 0 && ms < LARGE_SET_MS && heavy > 9900,
	   "10000 picks among %d endpoints in %lld ms, %u on the 3 heavy ones", LARGE_SET,
	   (long long)ms, heavy);
	free(s);
	s = large_set(LARGE_SET, 1000);
	for (size_t i = 0; i < LARGE_SET; i++)
		s[i].weight = 0.0;
	s[5] = spec(1, 1.0);
	s[LARGE_SET - 1] = spec(2, 1.0);
	balancer_update(b, s, LARGE_SET);
	ms = timed_picks(b, &heavy, 1, 1);
	ok(ms >= 0 && ms < LARGE_SET_MS && heavy > 4000 && heavy < 6000,
	   "weight 0 for all but 2 of %d: 10000 picks in %lld ms, split %u:%u", LARGE_SET,
	   (long long)ms, heavy, 10000 - heavy);
	free(s);
	balancer_free(b);
}

/* Fail open in a set too large to scan: everything ejected, then one success. */
static void test_large_fail_open(void)
{
	static const struct balancer_params one = { .consecutive_failures = 1,
						    .backoff_min_ms = 60000,
						    .backoff_max_ms = 60000 };
	struct balancer *b = balancer_new("t", &one);
	struct endpoint_spec *s = large_set(1000, 1000);
	struct endpoint_view *v = xcalloc(1000, sizeof(*v));
	struct endpoint *e = NULL;
	size_t ejected = 0;
	int rounds = 0;

	balancer_update(b, s, 1000);
	do { /* each pick prefers an endpoint that is not ejected yet */
		e = pick(b);
		balancer_report(b, e, CONNECT_REFUSED);
		balancer_release(b, e, 0, 0);
		ejected = 0;
		if (++rounds % 100 == 0 || rounds > 1000)
			for (size_t i = 0; i < balancer_snapshot(b, v, 1000); i++)
				ejected += v[i].state == EP_EJECTED;
	} while (ejected < 1000 && rounds < 3000);
	ok(ejected == 1000 && rounds <= 1001, "1000 endpoints ejected by 1000 failed picks (%d)",
	   rounds);
	e = pick(b);
	ok(e != NULL, "all 1000 ejected: the balancer fails open");
	balancer_report(b, e, CONNECT_OK);
	balancer_release(b, e, 0, 0);
	struct endpoint *again = pick(b);
	ok(again == e, "an endpoint that succeeds while all are ejected is chosen next");
	balancer_release(b, again, 0, 0);
	free(v);
	free(s);
	balancer_free(b);
}

struct churn {
	struct balancer *b;
	atomic_bool stop;
	atomic_long picks;
};

/* Holds up to 8 connections at a time, reporting a mix of outcomes. */
static void *churn_main(void *arg)
{
	struct churn *c = arg;
	struct endpoint *held[8] = { NULL };
	unsigned i = 0;

	while (!atomic_load(&c->stop)) {
		struct endpoint **slot = &held[i++ % 8];
		if (*slot)
			balancer_release(c->b, *slot, 0, 0);
		*slot = pick(c->b);
		if (*slot)
			balancer_report(c->b, *slot, i % 5 ? CONNECT_OK : CONNECT_REFUSED);
		atomic_fetch_add(&c->picks, 1);
	}
	for (int k = 0; k < 8; k++)
		if (held[k])
			balancer_release(c->b, held[k], 0, 0);
	return NULL;
}

/* Updates race picks, reports and releases (run it under TSan too). */
static void test_concurrent_updates(void)
{
	struct churn c = { .b = balancer_new("t", &params) };
	struct endpoint_spec *s = large_set(3000, 1000);
	struct endpoint_view *v = xcalloc(4000, sizeof(*v));
	pthread_t t[2];
	size_t n, busy = 0;

	atomic_init(&c.stop, false);
	atomic_init(&c.picks, 0);
	balancer_update(c.b, s, 2000);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn_main, &c);
	for (int round = 0; round < 200; round++) {
		size_t from = (size_t)(round % 3) * 500, len = round % 7 ? 2000 : 10;
		balancer_update(c.b, s + from, len); /* overlapping sets, some small */
	}
	balancer_update(c.b, s, 300);
	atomic_store(&c.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	n = balancer_snapshot(c.b, v, 4000);
	for (size_t i = 0; i < MIN(n, (size_t)4000); i++)
		busy += v[i].active;
	ok(n == 300 && busy == 0,
	   "200 updates raced %ld picks: all released, nothing left draining (%zu endpoints)",
	   atomic_load(&c.picks), n);
	free(v);
	free(s);
	balancer_free(c.b);
}

/* Picks n held connections; counts them by port (ports below 8). */
static void held_picks(struct balancer *b, int n, unsigned count[8], struct endpoint **held)
{
	memset(count, 0, 8 * sizeof(*count));
	for (int i = 0; i < n; i++) {
		held[i] = pick(b);
		if (held[i])
			count[port_of(held[i]) & 7]++;
	}
}

static void release_all(struct balancer *b, struct endpoint **held, int n)
{
	for (int i = 0; i < n; i++)
		if (held[i])
			balancer_release(b, held[i], 0, 0);
}

static const struct endpoint_view *view_of_port(const struct endpoint_view *v, size_t n,
						unsigned port)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(v[i].name, port == 1 ? ":1" : ":2"))
			return &v[i];
	return NULL;
}

static void test_overrides(void)
{
	struct balancer *b = balancer_new("t", &params);
	struct endpoint_spec s[2] = { spec(1, 1.0), spec(2, 1.0) };
	struct endpoint_override three = { .has_weight = true, .weight = 3.0 };
	struct endpoint_override drain = { .has_drain = true, .drain = true };
	struct endpoint *held[200];
	struct endpoint_view v[2];
	struct override_view ov[2];
	unsigned count[8];

	balancer_update(b, s, 2);
	ok(balancer_set_override(b, &s[0].addr, &three) == 0, "an override for a present endpoint");
	held_picks(b, 200, count, held);
	ok(count[1] == 150 && count[2] == 50,
	   "weight 3 override: 200 held picks split 150:50 (%u:%u)", count[1], count[2]);
	release_all(b, held, 200);
	ok(balancer_set_override(b, &s[1].addr, &drain) == 0, "drain the other");
	held_picks(b, 20, count, held);
	ok(count[1] == 20 && count[2] == 0, "a drained endpoint takes no new connection (%u:%u)",
	   count[1], count[2]);
	balancer_snapshot(b, v, 2);
	ok(view_of_port(v, 2, 2)->state == EP_DRAINING && view_of_port(v, 2, 2)->weight == 1.0 &&
		   view_of_port(v, 2, 1)->weight == 3.0 &&
		   view_of_port(v, 2, 1)->configured_weight == 1.0 &&
		   view_of_port(v, 2, 1)->has_override,
	   "views: draining, weight in force 3, configured 1, override shown");
	release_all(b, held, 20);
	balancer_update(b, s, 1); /* discovery drops endpoint 2 */
	ok(balancer_overrides(b, ov, 2) == 2 && !ov[1].present && ov[1].override.drain,
	   "an override outlives its endpoint's removal, shown as not present");
	balancer_update(b, s, 2); /* and brings it back */
	held_picks(b, 10, count, held);
	ok(count[2] == 0, "it applies again when the endpoint comes back (%u picks)", count[2]);
	release_all(b, held, 10);
	ok(balancer_clear_override(b, &s[1].addr) == 0 &&
		   balancer_clear_override(b, &s[0].addr) == 0,
	   "both overrides cleared");
	ok(balancer_clear_override(b, &s[0].addr) == -1, "clearing again: none there");
	held_picks(b, 100, count, held);
	ok(count[1] == 50 && count[2] == 50, "the configured weights are in force again (%u:%u)",
	   count[1], count[2]);
	release_all(b, held, 100);
	struct endpoint_spec gone = spec(9, 1.0);
	ok(balancer_set_override(b, &gone.addr, &three) == -1,
	   "no override for an unknown address");
	balancer_free(b);
}

int main(void)
{
	test_weighted_split();
	test_least_loaded();
	test_ties_rotate();
	test_tried_and_zero_weight();
	test_ejection_and_fail_open();
	test_update_drains();
	test_weight_update_keeps_state();
	test_update_duplicates();
	test_update_keeps_state();
	test_overrides();
	log_set_level(LL_ERROR); /* thousands of ejections follow */
	test_large_update();
	test_large_pick();
	test_large_fail_open();
	test_concurrent_updates();
	log_set_level(LL_INFO);
	return tap_done();
}
