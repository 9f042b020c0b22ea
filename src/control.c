#include "auto-config.h"

#include "control.h"

#include "balancer.h"
#include "log.h"
#include "namerd.h"
#include "proxy.h"
#include "relay.h"
#include "runtime.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ state */

static json_object *discovery_json(struct proxy *p)
{
	json_object *d = json_object_new_object();
	struct namerd *n = proxy_namerd(p);
	struct namerd_status st;

	if (!n) {
		json_object_object_add(d, "kind", json_object_new_string("static"));
		return d;
	}
	namerd_status(n, &st);
	json_object_object_add(d, "kind", json_object_new_string("namerd"));
	json_object_object_add(d, "url", json_object_new_string(st.url));
	json_object_object_add(d, "answered", json_object_new_boolean(st.answered));
	json_object_object_add(d, "failing", json_object_new_boolean(st.failing));
	if (st.last_update_ms)
		json_object_object_add(
			d, "last_update_secs_ago",
			json_object_new_double((double)(now_ms() - st.last_update_ms) / 1000.0));
	if (st.last_error[0])
		json_object_object_add(d, "last_error", json_object_new_string(st.last_error));
	return d;
}

/* {"weight": W, "drain": D} with the fields the override sets, or null. */
static json_object *override_json(bool has, const struct endpoint_override *o)
{
	json_object *j;

	if (!has)
		return NULL;
	j = json_object_new_object();
	if (o->has_weight)
		json_object_object_add(j, "weight", json_object_new_double(o->weight));
	if (o->has_drain)
		json_object_object_add(j, "drain", json_object_new_boolean(o->drain));
	return j;
}

static json_object *endpoint_json(const struct endpoint_view *v)
{
	json_object *e = json_object_new_object();
	uint64_t failed = 0;

	for (int r = 0; r < CONNECT_RESULTS; r++)
		failed += v->failures[r];
	json_object_object_add(e, "addr", json_object_new_string(v->name));
	json_object_object_add(e, "weight", json_object_new_double(v->weight));
	json_object_object_add(e, "configured_weight",
			       json_object_new_double(v->configured_weight));
	json_object_object_add(e, "override", override_json(v->has_override, &v->override));
	json_object_object_add(e, "state", json_object_new_string(endpoint_state_name(v->state)));
	json_object_object_add(e, "active", json_object_new_int64(v->active));
	json_object_object_add(e, "consecutive_failures",
			       json_object_new_int64(v->consecutive_failures));
	json_object_object_add(e, "connects", json_object_new_int64((int64_t)v->connects));
	json_object_object_add(e, "failures", json_object_new_int64((int64_t)failed));
	json_object_object_add(e, "bytes_from_client",
			       json_object_new_int64((int64_t)v->bytes_from_client));
	json_object_object_add(e, "bytes_to_client",
			       json_object_new_int64((int64_t)v->bytes_to_client));
	return e;
}

static json_object *endpoints_json(struct balancer *b)
{
	json_object *arr = json_object_new_array();
	size_t n = balancer_snapshot(b, NULL, 0);
	struct endpoint_view *v = xcalloc(n ? n : 1, sizeof(*v));

	n = MIN(n, balancer_snapshot(b, v, n));
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, endpoint_json(&v[i]));
	free(v);
	return arr;
}

/* Every override with whether its endpoint is there (one that discovery
 * removed waits for the address to come back). */
static json_object *overrides_json(struct balancer *b)
{
	json_object *arr = json_object_new_array();
	size_t n = balancer_overrides(b, NULL, 0);
	struct override_view *v = xcalloc(n ? n : 1, sizeof(*v));

	n = MIN(n, balancer_overrides(b, v, n));
	for (size_t i = 0; i < n; i++) {
		json_object *o = override_json(true, &v[i].override);
		json_object_object_add(o, "addr", json_object_new_string(v[i].name));
		json_object_object_add(o, "endpoint_present",
				       json_object_new_boolean(v[i].present));
		json_object_array_add(arr, o);
	}
	free(v);
	return arr;
}

static void listener_json(const char *name, bool tls, void *arg)
{
	json_object *l = json_object_new_object();

	json_object_object_add(l, "addr", json_object_new_string(name));
	json_object_object_add(l, "tls", json_object_new_boolean(tls));
	json_object_array_add(arg, l);
}

static void proxy_json(struct proxy *p, void *arg)
{
	json_object *o = json_object_new_object(), *ls = json_object_new_array();

	proxy_for_each_listener(p, listener_json, ls);
	json_object_object_add(o, "label", json_object_new_string(proxy_label(p)));
	json_object_object_add(o, "ready", json_object_new_boolean(proxy_ready(p)));
	json_object_object_add(o, "listeners", ls);
	json_object_object_add(o, "discovery", discovery_json(p));
	json_object_object_add(o, "endpoints", endpoints_json(proxy_balancer(p)));
	json_object_object_add(o, "overrides", overrides_json(proxy_balancer(p)));
	json_object_array_add(arg, o);
}

static json_object *pool_json(struct runtime *rt)
{
	json_object *o = json_object_new_object();
	unsigned size = runtime_pool_size(rt), busy = MIN(runtime_active(rt), size);

	json_object_object_add(o, "threads", json_object_new_int64(size));
	json_object_object_add(o, "busy", json_object_new_int64(busy));
	json_object_object_add(o, "idle", json_object_new_int64(size - busy));
	json_object_object_add(o, "queued", json_object_new_int64(runtime_queued(rt)));
	json_object_object_add(o, "open", json_object_new_int64(runtime_open(rt)));
	json_object_object_add(o, "parked",
			       json_object_new_int64((int64_t)atomic_load(&relay_stats()->parked)));
	return o;
}

static char *json_text(json_object *root)
{
	char *text =
		xasprintf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));

	json_object_put(root);
	return text;
}

json_object *control_state_json(struct runtime *rt)
{
	json_object *root = json_object_new_object(), *proxies = json_object_new_array();

	json_object_object_add(root, "pool", pool_json(rt));
	runtime_for_each_proxy(rt, proxy_json, proxies);
	json_object_object_add(root, "proxies", proxies);
	return root;
}

char *control_state(struct runtime *rt)
{
	return json_text(control_state_json(rt));
}

/* ------------------------------------------------------------------ overrides */

/* One request of the control API, carried through runtime_for_each_proxy. */
struct control_op {
	struct control_request req;
	bool found_proxy;
	int rc;
	json_object *override; /* the override in force afterwards (PUT) */
};

static char *error_json(const char *fmt, ...) PRINTF(1, 2);
static char *error_json(const char *fmt, ...)
{
	json_object *root = json_object_new_object();
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	json_object_object_add(root, "error", json_object_new_string(msg ? msg : "?"));
	free(msg);
	return json_text(root);
}

/* Splits "{label}/endpoints/{addr}"; the label is the text before the last
 * "/endpoints/".  0, or -1 with *why. */
static int parse_path(const char *rest, char *label, size_t llen, struct control_request *op,
		      const char **why)
{
	const char *sep = NULL, *s = rest;
	struct hostport hp = { 0 };
	int rc;

	while ((s = strstr(s, "/endpoints/"))) {
		sep = s;
		s++;
	}
	if (!sep || sep == rest || !sep[11] || (size_t)(sep - rest) >= llen) {
		*why = "the path is /api/v1/proxies/{label}/endpoints/{addr}";
		return -1;
	}
	snprintf(label, llen, "%.*s", (int)(sep - rest), rest);
	if (hostport_parse(sep + 11, &hp, why) < 0)
		return -1;
	rc = netaddr_from_ip(hp.host, hp.port, &op->addr);
	hostport_clear(&hp);
	if (rc < 0) {
		*why = "the endpoint address must be ip:port or [ipv6]:port";
		return -1;
	}
	netaddr_format(&op->addr, op->name, sizeof(op->name));
	return 0;
}

/* The fields of a PUT body: {"weight": W >= 0} and/or {"drain": bool}. */
static int parse_field(const char *key, json_object *v, struct endpoint_override *o,
		       const char **why)
{
	if (strcmp(key, "weight") == 0) {
		double w = json_object_get_double(v);
		if (!json_object_is_type(v, json_type_double) &&
		    !json_object_is_type(v, json_type_int))
			return *why = "weight must be a number", -1;
		if (!isfinite(w) || w < 0 || w > 1e9)
			return *why = "weight must be a finite number from 0 to 1e9", -1;
		o->has_weight = true;
		o->weight = w;
	} else if (strcmp(key, "drain") == 0) {
		if (!json_object_is_type(v, json_type_boolean))
			return *why = "drain must be true or false", -1;
		o->has_drain = true;
		o->drain = json_object_get_boolean(v);
	} else {
		return *why = "unknown field: only weight and drain can be set", -1;
	}
	return 0;
}

static bool only_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

static int parse_body(const char *body, size_t len, struct endpoint_override *o, const char **why)
{
	struct json_tokener *tok = json_tokener_new_ex(8);
	json_object *root;
	int rc = -1;

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, body ? body : "", (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success ||
	    !only_space(body + json_tokener_get_parse_end(tok),
			len - json_tokener_get_parse_end(tok))) {
		*why = "the body must be one JSON object";
	} else if (!json_object_is_type(root, json_type_object)) {
		*why = "the body must be a JSON object";
	} else {
		rc = 0;
		json_object_object_foreach(root, key, v)
		{
			if (rc == 0)
				rc = parse_field(key, v, o, why);
		}
		if (rc == 0 && !o->has_weight && !o->has_drain) {
			*why = "give weight and/or drain";
			rc = -1;
		}
	}
	json_object_put(root);
	json_tokener_free(tok);
	return rc;
}

static void apply_op(struct proxy *p, void *arg)
{
	struct control_op *op = arg;
	const struct control_request *q = &op->req;
	struct balancer *b = proxy_balancer(p);
	struct endpoint_override o;

	if (op->found_proxy || strcmp(proxy_label(p), q->label) != 0)
		return;
	op->found_proxy = true;
	op->rc = q->put ? balancer_set_override(b, &q->addr, &q->o)
			: balancer_clear_override(b, &q->addr);
	if (op->rc == 0 && q->put && balancer_override_of(b, &q->addr, &o))
		op->override = override_json(true, &o);
}

static char *op_answer(const struct control_op *op)
{
	json_object *root = json_object_new_object();

	json_object_object_add(root, "proxy", json_object_new_string(op->req.label));
	json_object_object_add(root, "addr", json_object_new_string(op->req.name));
	json_object_object_add(root, "override", op->override);
	return json_text(root);
}

int control_parse(bool put, const char *rest, const char *body, size_t len,
		  struct control_request *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	out->put = put;
	if (parse_path(rest, out->label, sizeof(out->label), out, why) < 0)
		return -1;
	return put ? parse_body(body, len, &out->o, why) : 0;
}

unsigned control_endpoint(struct runtime *rt, const char *method, const char *rest,
			  const char *body, size_t len, char **out)
{
	struct control_op op = { 0 };
	const char *why = "";
	const struct control_request *q = &op.req;

	if (control_parse(strcmp(method, "PUT") == 0, rest, body, len, &op.req, &why) < 0) {
		*out = error_json("%s", why);
		return 400;
	}
	runtime_for_each_proxy(rt, apply_op, &op);
	if (!op.found_proxy) {
		*out = error_json("no proxy is labelled '%s'", q->label);
		return 404;
	}
	if (op.rc < 0) {
		*out = q->put ? error_json("proxy '%s' has no endpoint %s", q->label, q->name)
			      : error_json("proxy '%s' has no override for %s", q->label, q->name);
		return 404;
	}
	log_info("admin: %s: endpoint %s: override %s", q->label, q->name,
		 q->put ? json_object_to_json_string_ext(op.override, JSON_C_TO_STRING_PLAIN)
			: "removed");
	*out = op_answer(&op);
	return 200;
}
