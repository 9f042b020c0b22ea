/*
 * control: the admin's JSON view of the running proxies and the runtime
 * control API (SPEC §13).
 *
 * control_state renders GET /endpoints: the pool, and per proxy its
 * listeners, discovery state, endpoints (weight in force, configured
 * weight, override, state, counters) and overrides; control_state_json
 * gives the same document as a json-c tree (the operator's page renders
 * its table from it).  control_endpoint
 * serves PUT and DELETE /api/v1/proxies/{label}/endpoints/{addr}: an
 * operator's weight and drain for one address, kept by the proxy's
 * balancer until deleted.  Both run on admin threads, under the runtime's
 * read lock; the answers are malloc'd JSON texts.
 */
#ifndef LTCP_CONTROL_H
#define LTCP_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "balancer.h"
#include "net.h"

struct json_object;
struct runtime;

/* The largest request body control_endpoint takes. */
#define CONTROL_BODY_MAX 4096

char *control_state(struct runtime *rt);
/* The document of control_state; the caller puts it (json_object_put). */
struct json_object *control_state_json(struct runtime *rt);

/* A request of the control API, parsed: pure, and fuzzed. */
struct control_request {
	char label[256];
	struct netaddr addr;
	char name[NETADDR_STRLEN]; /* addr, formatted */
	bool put;                  /* else DELETE */
	struct endpoint_override o;
};
/* Parses a PUT (put true: the body must be an override) or DELETE of the
 * path rest.  0, or -1 with *why. */
int control_parse(bool put, const char *rest, const char *body, size_t len,
		  struct control_request *out, const char **why);

/* method is "PUT" or "DELETE"; rest is the path after "/api/v1/proxies/"
 * (URL-decoded); body (len bytes) is the request's.  Returns the HTTP
 * status and sets *out to the JSON answer ({"error": "..."} for 4xx). */
unsigned control_endpoint(struct runtime *rt, const char *method, const char *rest,
			  const char *body, size_t len, char **out);

#endif
