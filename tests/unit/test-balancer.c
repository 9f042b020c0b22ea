/* Unit tests of the balancer's choice, failure accrual and draining. */
#include "auto-config.h"

#include "balancer.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct balancer_params params = { .consecutive_failures = 3,
					       .backoff_min_ms = 200,
					       .backoff_max_ms = 400 };

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
	const char *why = NULL;
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
		balancer_release(b, held[i]);
		balancer_release(b, fresh[i]);
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
		balancer_release(b, e);
	}
	ok(seen[1] == 10 && seen[2] == 10 && seen[3] == 10,
	   "ties between idle endpoints rotate (%u/%u/%u)", seen[1], seen[2], seen[3]);
	balancer_free(b);
}

static void test_tried_and_zero_weight(void)
{
	struct balancer *b = balancer_new("t", &params);
	struct endpoint_spec s[3] = { spec(1, 1.0), spec(2, 0.0), spec(3, 1.0) };
	const char *why = NULL;
	struct endpoint *first, *second, *third;
	bool no_zero = true;

	balancer_update(b, s, 3);
	for (int i = 0; i < 20; i++) {
		struct endpoint *e = pick(b);
		no_zero &= port_of(e) != 2;
		balancer_release(b, e);
	}
	ok(no_zero, "weight 0 is never chosen");
	first = pick(b);
	second = balancer_pick(b, &first, 1, now_ms() + 100, &why);
	ok(second && second != first, "a retry avoids the endpoint already tried");
	struct endpoint *tried[2] = { first, second };
	third = balancer_pick(b, tried, 2, now_ms() + 100, &why);
	ok(third == NULL && strcmp(why, "all endpoints tried") == 0,
	   "nothing left after every endpoint was tried (%s)", why ? why : "-");
	balancer_release(b, first);
	balancer_release(b, second);
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
			balancer_release(b, bad);
		bad = pick(b);
	}
	for (int i = 0; i < 3; i++)
		balancer_report(b, bad, CONNECT_REFUSED);
	balancer_release(b, bad);
	for (int i = 0; i < 10; i++) {
		struct endpoint *e = pick(b);
		avoided &= port_of(e) == 2;
		balancer_release(b, e);
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
	balancer_release(b, other);
	struct endpoint *open = pick(b);
	ok(open != NULL, "all ejected: the balancer fails open");
	balancer_release(b, open);

	usleep(450 * 1000); /* past backoff_max_ms */
	bool back1 = false;
	for (int i = 0; i < 4; i++) {
		struct endpoint *e = pick(b);
		back1 |= port_of(e) == 1;
		balancer_release(b, e);
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
	ok(n == 2 && v[1].state == EP_DRAINING && v[1].active == 1,
	   "a removed endpoint with a connection drains");
	ok(port_of(pick(b)) == 3, "new connections use the new set at once");
	balancer_release(b, held);
	n = balancer_snapshot(b, v, 4);
	ok(n == 1, "a drained endpoint goes away with its last connection");
	balancer_update(b, NULL, 0);
	const char *why = NULL;
	ok(balancer_pick(b, NULL, 0, now_ms() + 100, &why) == NULL &&
		   strcmp(why, "no endpoints") == 0,
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
	balancer_release(b, e);
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
	return tap_done();
}
