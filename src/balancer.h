/*
 * balancer: one proxy's endpoint set and its weighted least-connections
 * choice.
 *
 * All state sits behind one mutex per balancer, held only for short,
 * non-blocking sections, and nothing is logged while it is held.  Relay
 * threads call balancer_pick, then balancer_report once the connect attempt
 * ends, then balancer_release when the connection closes.  The discovery
 * side (static config on reload, or the namerd thread) calls
 * balancer_update with a whole new set: endpoints that disappear but still
 * carry connections move to a draining list and are freed when their last
 * connection is released.  An endpoint pointer returned by balancer_pick
 * stays valid until the matching balancer_release.
 *
 * Large sets (SPEC §14: 100,000 endpoints): balancer_update sorts and
 * matches the new set before it takes the mutex (a second mutex keeps
 * updates one at a time), and under the mutex touches only what changes;
 * a pick in a set of more than 256 endpoints costs O(log n).
 *
 * Runtime overrides (the admin API): an operator's weight and/or drain for
 * an address.  They are kept by address until cleared, so they outlive
 * discovery updates (an endpoint that leaves and comes back gets its
 * override again) and reloads (the balancer lives as long as its proxy).
 */
#ifndef LTCP_BALANCER_H
#define LTCP_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

struct balancer;
struct endpoint;

struct endpoint_spec {
	struct netaddr addr;
	double weight; /* 0 takes the endpoint out of rotation */
};

struct balancer_params {
	unsigned consecutive_failures; /* failures in a row before ejection */
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
};

/* EP_DRAINING: an operator's drain (no new connections); EP_REMOVED: gone
 * from discovery but still carrying connections. */
enum endpoint_state { EP_ACTIVE, EP_EJECTED, EP_DRAINING, EP_REMOVED, EP_STATES };
const char *endpoint_state_name(enum endpoint_state s);

/* How a connect attempt ended; everything but CONNECT_OK counts as a failure. */
enum connect_result {
	CONNECT_OK,
	CONNECT_REFUSED,
	CONNECT_TIMEOUT,
	CONNECT_UNREACHABLE,
	CONNECT_RESET,
	CONNECT_TLS,
	CONNECT_OTHER,
	CONNECT_LOCAL, /* out of descriptors or memory here: not the endpoint's fault */
	CONNECT_RESULTS
};
const char *connect_result_name(enum connect_result r);

/* An operator's override; a field is in force when its has_ flag is set. */
struct endpoint_override {
	bool has_weight;
	double weight; /* >= 0 and finite; 0: no new connections */
	bool has_drain;
	bool drain;
};

/* A copy of one endpoint's state, for /endpoints and metrics. */
struct endpoint_view {
	char name[NETADDR_STRLEN];
	double weight;            /* in force: the override's, else the configured one */
	double configured_weight; /* from discovery */
	bool has_override;
	struct endpoint_override override;
	uint64_t bytes_from_client, bytes_to_client; /* of its closed connections */
	unsigned active;
	unsigned consecutive_failures;
	enum endpoint_state state;
	uint64_t connects;                  /* attempts */
	uint64_t failures[CONNECT_RESULTS]; /* by cause; [CONNECT_OK] stays 0 */
};

struct balancer *balancer_new(const char *label, const struct balancer_params *params);
void balancer_free(struct balancer *b);
void balancer_set_params(struct balancer *b, const struct balancer_params *params);

/*
 * Replaces the endpoint set.  An address listed twice is one endpoint (the
 * first entry gives its weight).  Endpoints kept, or back while draining,
 * keep their connections, counters and ejection.  The first call marks the
 * balancer resolved.
 */
void balancer_update(struct balancer *b, const struct endpoint_spec *specs, size_t n);
bool balancer_resolved(struct balancer *b);

/*
 * Chooses the endpoint with the lowest (active + 1) / weight that is not in
 * tried[], counting the new connection as active: among all of them in a
 * set of up to 256, else the better of two drawn at random with a chance in
 * proportion to their weight (power of two choices).  Ejected endpoints are
 * skipped unless every candidate is ejected (fail open).  Until the first
 * update it waits for one, up to deadline_ms (now_ms clock).  NULL: nothing
 * to choose; *why then says which case it is.
 */
enum pick_failure { PICK_NO_ENDPOINTS, PICK_NOT_RESOLVED, PICK_ALL_TRIED };
const char *pick_failure_name(enum pick_failure f);
struct endpoint *balancer_pick(struct balancer *b, struct endpoint *const *tried, size_t ntried,
			       int64_t deadline_ms, enum pick_failure *why);
/* Records the outcome of a connect attempt to e. */
/* Records how an attempt on e ended.  True when it is e's first failure
 * since it last answered (a failure episode begins): the caller, which
 * knows the error, warns once per episode.  The end of an episode is
 * logged here. */
bool balancer_report(struct balancer *b, struct endpoint *e, enum connect_result r);
/* Ends one connection (or attempt) counted on e by balancer_pick, adding
 * the bytes it carried to e's counters. */
void balancer_release(struct balancer *b, struct endpoint *e, uint64_t from_client,
		      uint64_t to_client);

/* Sets the fields o gives on the override for the endpoint at a (merged with
 * the override it has), in force from the next pick.  -1 when no endpoint
 * of the active set has that address. */
int balancer_set_override(struct balancer *b, const struct netaddr *a,
			  const struct endpoint_override *o) MUSTCHECK;
/* Removes the override for a: the configured weight is in force again.
 * -1 when there was none. */
int balancer_clear_override(struct balancer *b, const struct netaddr *a) MUSTCHECK;

/* The override for a, if there is one. */
bool balancer_override_of(struct balancer *b, const struct netaddr *a,
			  struct endpoint_override *out);

/* An override and whether an endpoint of the active set has its address. */
struct override_view {
	char name[NETADDR_STRLEN];
	struct endpoint_override override;
	bool present;
};
/* Copies up to max overrides (by address); returns how many there are. */
size_t balancer_overrides(struct balancer *b, struct override_view *out, size_t max);

const char *endpoint_name(const struct endpoint *e);
const struct netaddr *endpoint_addr(const struct endpoint *e);

/* Copies up to max endpoint views (the active set by address, then the draining ones);
 * returns the total.  Only the copying holds the lock: out[0..max) is zeroed first. */
size_t balancer_snapshot(struct balancer *b, struct endpoint_view *out, size_t max);

#endif
