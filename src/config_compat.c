/*
 * config_compat: the linkerd-tcp 0.1.x schema and its conversion.
 *
 * A configuration of linkerd-tcp 0.1.x (a top-level "routers" key) is read
 * by the same walker into the c01_* structs below, with the original's
 * camelCase keys, then converted into a struct config.  Every distinct
 * dstName of a router becomes one proxy, since a proxy resolves one name.
 * doc/configuration.md lists how each key maps and which of the original's
 * bugs the conversion leaves behind.
 */
#include "auto-config.h"

#include "config_compat.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

enum c01_interpreter_kind { C01_NAMERD_HTTP, C01_STATIC_ADDRS };
enum c01_client_kind { C01_GLOBAL, C01_STATIC };

struct c01_identity {
	struct cfg_mark mark;
	char *name; /* SNI name; NULL for defaultIdentity */
	char *private_key;
	struct cfg_strlist certs;
};

struct c01_server_tls {
	struct cfg_mark mark;
	struct cfg_strlist alpn_protocols;
	struct c01_identity *default_identity;
	struct cfg_list identities; /* of struct c01_identity */
};

struct c01_server {
	struct cfg_mark mark;
	int64_t port;
	char *ip;
	char *dst_name;
	struct c01_server_tls *tls;
	int64_t connect_timeout_ms; /* 0: this version's default */
	bool has_connect_timeout;
	int64_t connection_lifetime_secs;
	int64_t max_concurrency;
};

/* The unmerged io.l5d.static interpreter: addrs maps a dstName to a list. */
struct c01_addr {
	struct cfg_mark mark;
	char *ip;
	int64_t port;
	double weight;
};

struct c01_addrs {
	struct cfg_mark mark;
	char *name;
	struct cfg_list addrs; /* of struct c01_addr */
};

struct c01_interpreter {
	struct cfg_mark mark;
	int kind; /* enum c01_interpreter_kind */
	char *base_url;
	char *namespace;
	int64_t period_secs;
	struct cfg_list addrs; /* of struct c01_addrs */
};

struct c01_client_tls {
	struct cfg_mark mark;
	char *dns_name;
	struct cfg_strlist trust_certs;
};

struct c01_fail_fast {
	struct cfg_mark mark;
	int64_t max_consecutive_failures;
	bool has_max_consecutive_failures;
	int64_t failure_penalty_secs;
	bool has_failure_penalty_secs;
};

/* The client, and each entry of a static client's configs. */
struct c01_connector {
	struct cfg_mark mark;
	int kind;     /* enum c01_client_kind; the client only */
	char *prefix; /* static entries only */
	int64_t connect_timeout_ms;
	bool has_connect_timeout;
	struct c01_client_tls *tls;
	int64_t max_waiters;
	int64_t min_connections;
	struct c01_fail_fast *fail_fast;
	struct cfg_list configs; /* of struct c01_connector; io.l5d.static only */
};

struct c01_router {
	struct cfg_mark mark;
	char *label;
	struct c01_interpreter interpreter;
	struct cfg_list servers; /* of struct c01_server */
	struct c01_connector client;
};

struct c01_admin {
	struct cfg_mark mark;
	char *ip;
	int64_t port;
	int64_t metrics_interval_secs;
	int64_t grace_secs;
};

struct c01_config {
	struct cfg_mark mark;
	struct c01_admin admin;
	struct cfg_list routers; /* of struct c01_router */
	int64_t buffer_size_bytes;
};

#define C01_MAX_CONCURRENCY "100000" /* the original's default per listener */

static bool ip_literal_ok(const char *ip)
{
	struct netaddr a;

	return ip && netaddr_from_ip(ip, 0, &a) == 0;
}

/* Whether prefix is name or a prefix of it at a label boundary: /svc
 * covers /svc and /svc/web, not /svcx; "/" covers every name. */
static bool path_has_prefix(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strcmp(prefix, "/") == 0)
		return true;
	return strncmp(name, prefix, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

static void check_c01_identity(struct ctx *c, const void *obj)
{
	const struct c01_identity *id = obj;

	if (id->certs.n == 0)
		cfg_error(c, &id->mark, "identity: certs must name at least one file");
}

static void check_c01_server(struct ctx *c, const void *obj)
{
	const struct c01_server *s = obj;

	if (s->ip && !ip_literal_ok(s->ip))
		cfg_error(c, &s->mark, "server: ip '%s' is not an IP address", s->ip);
	if (s->dst_name && !config_name_path_ok(s->dst_name))
		cfg_error(c, &s->mark, "server: dstName '%s' is not a name such as /svc/web",
			  s->dst_name);
}

static void check_c01_addr(struct ctx *c, const void *obj)
{
	const struct c01_addr *a = obj;

	if (a->ip && !ip_literal_ok(a->ip))
		cfg_error(c, &a->mark, "address: ip '%s' is not an IP address", a->ip);
}

static void check_c01_addrs(struct ctx *c, const void *obj)
{
	const struct c01_addrs *a = obj;

	if (!config_name_path_ok(a->name))
		cfg_error(c, &a->mark, "addrs: '%s' is not a name such as /svc/web", a->name);
}

static void check_c01_namerd(struct ctx *c, const void *obj)
{
	const struct c01_interpreter *in = obj;
	const char *u = in->base_url;

	if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		cfg_error(c, &in->mark, "interpreter: baseUrl must start with http:// or https://");
	if (in->namespace && (!*in->namespace || strpbrk(in->namespace, "/?#% \t")))
		cfg_error(c, &in->mark, "interpreter: namespace '%s' is not a plain name",
			  in->namespace);
}

static void check_c01_entry(struct ctx *c, const void *obj)
{
	const struct c01_connector *e = obj;

	if (e->prefix && !config_name_path_ok(e->prefix))
		cfg_error(c, &e->mark, "client config: prefix '%s' is not a name such as /svc",
			  e->prefix);
}

static void check_c01_router(struct ctx *c, const void *obj)
{
	const struct c01_router *r = obj;

	if (r->servers.n == 0)
		cfg_error(c, &r->mark, "router: servers must list at least one listener");
}

static void check_c01_admin(struct ctx *c, const void *obj)
{
	const struct c01_admin *a = obj;

	if (a->ip && !ip_literal_ok(a->ip))
		cfg_error(c, &a->mark, "admin: ip '%s' is not an IP address", a->ip);
}

static void check_c01_top(struct ctx *c, const void *obj)
{
	const struct c01_config *cfg = obj;
	struct c01_router *r = cfg->routers.v;

	if (cfg->routers.n == 0)
		cfg_error(c, &cfg->mark, "routers must list at least one router");
	for (size_t i = 0; i < cfg->routers.n; i++)
		for (size_t j = 0; j < i && r[i].label; j++)
			if (r[j].label && strcmp(r[i].label, r[j].label) == 0) {
				cfg_error(c, &r[i].mark, "router label '%s' is used twice",
					  r[i].label);
				break;
			}
}

static const struct cfg_key c01_identity_keys[] = {
	NKEY(struct c01_identity, private_key, "privateKey", T_PATH, .flags = F_REQUIRED),
	NKEY(struct c01_identity, certs, "certs", T_PATHLIST, .flags = F_REQUIRED),
	{ 0 },
};
CFG_KEYS_FIT(c01_identity_keys);
static const struct cfg_section c01_identity_sec = {
	.name = "identity",
	.keys = c01_identity_keys,
	.size = sizeof(struct c01_identity),
	.check = check_c01_identity,
	.name_off = offsetof(struct c01_identity, name),
};

static const struct cfg_key c01_server_tls_keys[] = {
	NKEY(struct c01_server_tls, alpn_protocols, "alpnProtocols", T_STRLIST),
	NKEY(struct c01_server_tls, default_identity, "defaultIdentity", T_OPTSECTION,
	     .sub = &c01_identity_sec, .flags = F_REQUIRED),
	NKEY(struct c01_server_tls, identities, "identities", T_MAP, .sub = &c01_identity_sec),
	{ 0 },
};
CFG_KEYS_FIT(c01_server_tls_keys);
static const struct cfg_section c01_server_tls_sec = { "tls", c01_server_tls_keys,
						       sizeof(struct c01_server_tls), NULL };

static const struct cfg_key c01_server_keys[] = {
	NINT(struct c01_server, port, "port", NULL, 0, 65535, .flags = F_REQUIRED),
	NKEY(struct c01_server, ip, "ip", T_STR, .def = "127.0.0.1"),
	NKEY(struct c01_server, dst_name, "dstName", T_STR, .flags = F_REQUIRED),
	NKEY(struct c01_server, tls, "tls", T_OPTSECTION, .sub = &c01_server_tls_sec),
	NINT(struct c01_server, connect_timeout_ms, "connectTimeoutMs", NULL, 1, MS_MAX,
	     .seen_off = offsetof(struct c01_server, has_connect_timeout)),
	NINT(struct c01_server, connection_lifetime_secs, "connectionLifetimeSecs", "0", 0,
	     SECS_MAX),
	NINT(struct c01_server, max_concurrency, "maxConcurrency", C01_MAX_CONCURRENCY, 1, INT_MAX),
	{ 0 },
};
CFG_KEYS_FIT(c01_server_keys);
static const struct cfg_section c01_server_sec = { "server", c01_server_keys,
						   sizeof(struct c01_server), check_c01_server };

static const struct cfg_key c01_addr_keys[] = {
	NKEY(struct c01_addr, ip, "ip", T_STR, .flags = F_REQUIRED),
	NINT(struct c01_addr, port, "port", NULL, 0, 65535, .flags = F_REQUIRED),
	NKEY(struct c01_addr, weight, "weight", T_DOUBLE, .def = "1.0", .dmin = 0, .dmax = 1e6),
	{ 0 },
};
CFG_KEYS_FIT(c01_addr_keys);
static const struct cfg_section c01_addr_sec = { "address", c01_addr_keys, sizeof(struct c01_addr),
						 check_c01_addr };

static const struct cfg_key c01_addrs_keys[] = {
	NKEY(struct c01_addrs, addrs, "addrs", T_LIST, .sub = &c01_addr_sec),
	{ 0 },
};
CFG_KEYS_FIT(c01_addrs_keys);
static const struct cfg_section c01_addrs_sec = {
	.name = "addrs",
	.keys = c01_addrs_keys,
	.size = sizeof(struct c01_addrs),
	.check = check_c01_addrs,
	.name_off = offsetof(struct c01_addrs, name),
	.value_key = c01_addrs_keys,
};

static const char *const c01_interpreter_kinds[] = { "io.l5d.namerd.http", "io.l5d.static", NULL };
#define C01_KIND(S, E) NKEY(S, kind, "kind", T_ENUM, .enums = E)
#define C01_INTERPRETER_KEYS                                                                       \
	NKEY(struct c01_interpreter, base_url, "baseUrl", T_STR, .flags = F_REQUIRED),             \
		NKEY(struct c01_interpreter, namespace, "namespace", T_STR, .flags = F_REQUIRED),  \
		NINT(struct c01_interpreter, period_secs, "periodSecs", NULL, 1, SECS_MAX,         \
		     .flags = F_REQUIRED)
#define C01_STATIC_ADDRS_KEYS                                                                      \
	NKEY(struct c01_interpreter, addrs, "addrs", T_MAP, .sub = &c01_addrs_sec,                 \
	     .flags = F_REQUIRED)

static const struct cfg_key c01_interpreter_keys[] = {
	C01_KIND(struct c01_interpreter, c01_interpreter_kinds),
	C01_INTERPRETER_KEYS,
	C01_STATIC_ADDRS_KEYS,
	{ 0 },
};
CFG_KEYS_FIT(c01_interpreter_keys);
static const struct cfg_section c01_interpreter_sec = { "interpreter", c01_interpreter_keys,
							sizeof(struct c01_interpreter), NULL };
static const struct cfg_key c01_namerd_keys[] = {
	C01_KIND(struct c01_interpreter, c01_interpreter_kinds),
	C01_INTERPRETER_KEYS,
	{ 0 },
};
CFG_KEYS_FIT(c01_namerd_keys);
static const struct cfg_section c01_namerd_sec = { "io.l5d.namerd.http interpreter",
						   c01_namerd_keys, sizeof(struct c01_interpreter),
						   check_c01_namerd };
static const struct cfg_key c01_static_addrs_keys[] = {
	C01_KIND(struct c01_interpreter, c01_interpreter_kinds),
	C01_STATIC_ADDRS_KEYS,
	{ 0 },
};
CFG_KEYS_FIT(c01_static_addrs_keys);
static const struct cfg_section c01_static_addrs_sec = { "io.l5d.static interpreter",
							 c01_static_addrs_keys,
							 sizeof(struct c01_interpreter), NULL };
static const struct cfg_section *const c01_interpreter_variants[] = { &c01_namerd_sec,
								      &c01_static_addrs_sec };
_Static_assert(ARRAY_SIZE(c01_interpreter_variants) == ARRAY_SIZE(c01_interpreter_kinds) - 1,
	       "one key table per interpreter kind");

static const struct cfg_key c01_client_tls_keys[] = {
	NKEY(struct c01_client_tls, dns_name, "dnsName", T_STR, .flags = F_REQUIRED),
	NKEY(struct c01_client_tls, trust_certs, "trustCerts", T_PATHLIST),
	{ 0 },
};
CFG_KEYS_FIT(c01_client_tls_keys);
static const struct cfg_section c01_client_tls_sec = { "tls", c01_client_tls_keys,
						       sizeof(struct c01_client_tls), NULL };

static const struct cfg_key c01_fail_fast_keys[] = {
	NINT(struct c01_fail_fast, max_consecutive_failures, "maxConsecutiveFailures", "5", 1,
	     1000000, .seen_off = offsetof(struct c01_fail_fast, has_max_consecutive_failures)),
	NINT(struct c01_fail_fast, failure_penalty_secs, "failurePenaltySecs", "60", 0, SECS_MAX,
	     .seen_off = offsetof(struct c01_fail_fast, has_failure_penalty_secs)),
	{ 0 },
};
CFG_KEYS_FIT(c01_fail_fast_keys);
static const struct cfg_section c01_fail_fast_sec = { "failFast", c01_fail_fast_keys,
						      sizeof(struct c01_fail_fast), NULL };

static const char *const c01_client_kinds[] = { "io.l5d.global", "io.l5d.static", NULL };
#define C01_CONNECTOR_KEYS                                                                         \
	NINT(struct c01_connector, connect_timeout_ms, "connectTimeoutMs", NULL, 1, MS_MAX,        \
	     .seen_off = offsetof(struct c01_connector, has_connect_timeout)),                     \
		NKEY(struct c01_connector, tls, "tls", T_OPTSECTION, .sub = &c01_client_tls_sec),  \
		NINT(struct c01_connector, max_waiters, "maxWaiters", NULL, 0, INT64_MAX,          \
		     .ignored = "each connection waits for its own endpoint connection, "          \
				"within connectTimeoutMs"),                                        \
		NINT(struct c01_connector, min_connections, "minConnections", NULL, 0, INT64_MAX,  \
		     .ignored = "connections to endpoints are not opened ahead of time"),          \
		NKEY(struct c01_connector, fail_fast, "failFast", T_OPTSECTION,                    \
		     .sub = &c01_fail_fast_sec)

static const struct cfg_key c01_entry_keys[] = {
	NKEY(struct c01_connector, prefix, "prefix", T_STR, .flags = F_REQUIRED),
	C01_CONNECTOR_KEYS,
	{ 0 },
};
CFG_KEYS_FIT(c01_entry_keys);
static const struct cfg_section c01_entry_sec = { "client config", c01_entry_keys,
						  sizeof(struct c01_connector), check_c01_entry };
#define C01_CONFIGS_KEY                                                                            \
	NKEY(struct c01_connector, configs, "configs", T_LIST, .sub = &c01_entry_sec,              \
	     .flags = F_REQUIRED)

static const struct cfg_key c01_client_keys[] = {
	NKEY(struct c01_connector, kind, "kind", T_ENUM, .def = "io.l5d.global",
	     .enums = c01_client_kinds),
	C01_CONNECTOR_KEYS,
	C01_CONFIGS_KEY,
	{ 0 },
};
CFG_KEYS_FIT(c01_client_keys);
static const struct cfg_section c01_client_sec = { "client", c01_client_keys,
						   sizeof(struct c01_connector), NULL };
static const struct cfg_key c01_global_keys[] = {
	C01_KIND(struct c01_connector, c01_client_kinds),
	C01_CONNECTOR_KEYS,
	{ 0 },
};
CFG_KEYS_FIT(c01_global_keys);
static const struct cfg_section c01_global_sec = { "io.l5d.global client", c01_global_keys,
						   sizeof(struct c01_connector), NULL };
static const struct cfg_key c01_static_keys[] = {
	C01_KIND(struct c01_connector, c01_client_kinds),
	C01_CONFIGS_KEY,
	{ 0 },
};
CFG_KEYS_FIT(c01_static_keys);
static const struct cfg_section c01_static_sec = { "io.l5d.static client", c01_static_keys,
						   sizeof(struct c01_connector), NULL };
static const struct cfg_section *const c01_client_variants[] = { &c01_global_sec, &c01_static_sec };
_Static_assert(ARRAY_SIZE(c01_client_variants) == ARRAY_SIZE(c01_client_kinds) - 1,
	       "one key table per client kind");

static const struct cfg_key c01_router_keys[] = {
	NKEY(struct c01_router, label, "label", T_STR, .flags = F_REQUIRED),
	NKEY(struct c01_router, interpreter, "interpreter", T_SECTION, .sub = &c01_interpreter_sec,
	     .variants = c01_interpreter_variants, .flags = F_REQUIRED),
	NKEY(struct c01_router, servers, "servers", T_LIST, .sub = &c01_server_sec,
	     .flags = F_REQUIRED),
	NKEY(struct c01_router, client, "client", T_SECTION, .sub = &c01_client_sec,
	     .variants = c01_client_variants),
	{ 0 },
};
CFG_KEYS_FIT(c01_router_keys);
static const struct cfg_section c01_router_sec = { "router", c01_router_keys,
						   sizeof(struct c01_router), check_c01_router };

static const struct cfg_key c01_admin_keys[] = {
	NKEY(struct c01_admin, ip, "ip", T_STR, .def = "127.0.0.1"),
	NINT(struct c01_admin, port, "port", "9989", 0, 65535),
	NINT(struct c01_admin, metrics_interval_secs, "metricsIntervalSecs", NULL, 0, INT64_MAX,
	     .ignored = "metrics are computed on every request to /metrics"),
	NINT(struct c01_admin, grace_secs, "graceSecs", "10", 0, SECS_MAX),
	{ 0 },
};
CFG_KEYS_FIT(c01_admin_keys);
static const struct cfg_section c01_admin_sec = { "admin", c01_admin_keys, sizeof(struct c01_admin),
						  check_c01_admin };

static const struct cfg_key c01_top_keys[] = {
	NKEY(struct c01_config, admin, "admin", T_SECTION, .sub = &c01_admin_sec),
	NKEY(struct c01_config, routers, "routers", T_LIST, .sub = &c01_router_sec,
	     .flags = F_REQUIRED),
	NINT(struct c01_config, buffer_size_bytes, "bufferSizeBytes", "16384", 1024, 16 << 20),
	{ 0 },
};
CFG_KEYS_FIT(c01_top_keys);
static const struct cfg_section c01_top_sec = { "top level (linkerd-tcp 0.1.x schema)",
						c01_top_keys, sizeof(struct c01_config),
						check_c01_top };

/* ---------------------------------------------- 0.1.x: conversion */

static void strlist_copy(struct cfg_strlist *dst, const struct cfg_strlist *src)
{
	dst->n = src->n;
	dst->v = xcalloc(src->n ? src->n : 1, sizeof(char *));
	for (size_t i = 0; i < src->n; i++)
		dst->v[i] = xstrdup(src->v[i]);
}

static char *xstrdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* Sets hp to ip:port (the ip was checked to be a literal). */
static void set_ip_port(struct ctx *c, struct cfg_hostport *hp, const char *ip, int64_t port,
			const struct cfg_mark *m)
{
	const char *why;

	free(hp->text);
	hostport_clear(&hp->hp);
	hp->text = xasprintf(strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, (int)port);
	hp->mark = *m;
	if (hostport_parse(hp->text, &hp->hp, &why) < 0)
		cfg_error(c, m, "'%s': %s", hp->text, why);
}

static void convert_identity(const struct c01_identity *in, struct cfg_identity *out)
{
	out->mark = in->mark;
	out->server_name = xstrdup_or_null(in->name);
	out->private_key_path = xstrdup(in->private_key);
	strlist_copy(&out->cert_paths, &in->certs);
}

static struct cfg_server_tls *convert_server_tls(struct ctx *c, const struct c01_server_tls *in)
{
	struct cfg_server_tls *t = xmalloc(sizeof(*t));
	const struct c01_identity *ids = in->identities.v;
	struct cfg_identity *out;

	cfgload_section_defaults(c, &config_server_tls_sec, t);
	t->mark = in->mark;
	t->private_key_path = xstrdup(in->default_identity->private_key);
	strlist_copy(&t->cert_paths, &in->default_identity->certs);
	strlist_copy(&t->alpn_protocols, &in->alpn_protocols);
	t->identities.v = out = xcalloc(in->identities.n + 1, sizeof(*out));
	t->identities.n = in->identities.n;
	for (size_t i = 0; i < in->identities.n; i++)
		convert_identity(&ids[i], &out[i]);
	return t;
}

static void convert_server(struct ctx *c, const struct c01_server *in, struct cfg_server *out)
{
	cfgload_section_defaults(c, &config_server_sec, out);
	out->mark = in->mark;
	set_ip_port(c, &out->addr, in->ip, in->port, &in->mark);
	if (in->has_connect_timeout && in->connect_timeout_ms > 0)
		out->connect_timeout_ms = in->connect_timeout_ms;
	out->connection_lifetime_secs = in->connection_lifetime_secs;
	if (in->tls)
		out->tls = convert_server_tls(c, in->tls);
}

/* The listeners of one dstName; returns the sum of their maxConcurrency. */
static int64_t convert_servers(struct ctx *c, const struct c01_router *r, const char *dst,
			       struct cfg_list *out)
{
	const struct c01_server *s = r->servers.v;
	struct cfg_server *v = xcalloc(r->servers.n, sizeof(*v));
	int64_t sum = 0;

	out->v = v;
	for (size_t i = 0; i < r->servers.n; i++) {
		if (strcmp(s[i].dst_name, dst) != 0)
			continue;
		convert_server(c, &s[i], &v[out->n++]);
		sum = MIN(sum + s[i].max_concurrency, (int64_t)INT_MAX);
	}
	return sum;
}

static struct cfg_namerd *convert_namerd(struct ctx *c, const struct c01_interpreter *in,
					 const char *dst)
{
	struct cfg_namerd *n = xmalloc(sizeof(*n));

	cfgload_section_defaults(c, &config_namerd_sec, n);
	n->mark = in->mark;
	n->url = xstrdup(in->base_url);
	n->path = xstrdup(dst);
	free(n->namespace);
	n->namespace = xstrdup(in->namespace);
	n->interval_secs = in->period_secs;
	n->mode = NAMERD_POLL;
	return n;
}

/* io.l5d.static interpreter: the addrs listed for dst become static endpoints. */
static void convert_static_addrs(struct ctx *c, const struct c01_interpreter *in, const char *dst,
				 struct cfg_proxy *p)
{
	const struct c01_addrs *names = in->addrs.v;

	p->has_endpoints = true;
	for (size_t i = 0; i < in->addrs.n; i++) {
		const struct c01_addr *a = names[i].addrs.v;
		struct cfg_endpoint *e;
		if (strcmp(names[i].name, dst) != 0)
			continue;
		p->endpoints.v = e = xcalloc(names[i].addrs.n + 1, sizeof(*e));
		for (size_t j = 0; j < names[i].addrs.n; j++, p->endpoints.n++) {
			cfgload_section_defaults(c, &config_endpoint_sec, &e[j]);
			e[j].mark = a[j].mark;
			set_ip_port(c, &e[j].addr, a[j].ip, a[j].port, &a[j].mark);
			e[j].weight = a[j].weight;
		}
		return;
	}
	cfg_warn(c, &in->mark, "interpreter: addrs has no entry for %s: its connections are closed",
		 dst);
}

/* The connector settings that apply to one dstName. */
struct c01_merged {
	int64_t connect_timeout_ms; /* 0: this version's default */
	const struct c01_client_tls *tls;
	int64_t max_consecutive_failures;
	int64_t failure_penalty_secs;
};

static void merge_connector(struct c01_merged *m, const struct c01_connector *e)
{
	if (e->has_connect_timeout && e->connect_timeout_ms > 0)
		m->connect_timeout_ms = e->connect_timeout_ms;
	if (e->tls)
		m->tls = e->tls;
	if (e->fail_fast && e->fail_fast->has_max_consecutive_failures)
		m->max_consecutive_failures = e->fail_fast->max_consecutive_failures;
	if (e->fail_fast && e->fail_fast->has_failure_penalty_secs)
		m->failure_penalty_secs = e->fail_fast->failure_penalty_secs;
}

/* io.l5d.global: the client itself.  io.l5d.static: the defaults, then, in
 * list order, every entry whose prefix covers dst, field by field. */
static void merged_connector(const struct c01_connector *cl, const char *dst, struct c01_merged *m)
{
	const struct c01_connector *e = cl->configs.v;

	*m = (struct c01_merged){ .max_consecutive_failures = 5, .failure_penalty_secs = 60 };
	if (cl->kind == C01_GLOBAL) {
		merge_connector(m, cl);
		return;
	}
	for (size_t i = 0; i < cl->configs.n; i++)
		if (path_has_prefix(dst, e[i].prefix))
			merge_connector(m, &e[i]);
}

static void convert_client(struct ctx *c, const struct c01_connector *cl, const char *dst,
			   struct cfg_proxy *p)
{
	struct c01_merged m;

	merged_connector(cl, dst, &m);
	p->client.mark = cl->mark;
	if (m.connect_timeout_ms > 0)
		p->client.connect_timeout_ms = m.connect_timeout_ms;
	if (m.tls) {
		struct cfg_client_tls *t = xmalloc(sizeof(*t));
		cfgload_section_defaults(c, &config_client_tls_sec, t);
		t->mark = m.tls->mark;
		t->name = xstrdup(m.tls->dns_name);
		strlist_copy(&t->trust_cert_paths, &m.tls->trust_certs);
		p->client.tls = t;
	}
	/* A fixed penalty, as in the original: the backoff does not grow. */
	p->failure_accrual.mark = cl->mark;
	p->failure_accrual.consecutive_failures = m.max_consecutive_failures;
	p->failure_accrual.backoff_min_ms = MAX(m.failure_penalty_secs * 1000, 1);
	p->failure_accrual.backoff_max_ms = p->failure_accrual.backoff_min_ms;
}

static void convert_proxy(struct ctx *c, const struct c01_router *r, const char *dst, bool one_name,
			  struct cfg_proxy *p)
{
	cfgload_section_defaults(c, &config_proxy_sec, p);
	p->mark = r->mark;
	p->label = one_name ? xstrdup(r->label) : xasprintf("%s:%s", r->label, dst);
	p->max_connections = convert_servers(c, r, dst, &p->servers);
	if (r->interpreter.kind == C01_NAMERD_HTTP)
		p->namerd = convert_namerd(c, &r->interpreter, dst);
	else
		convert_static_addrs(c, &r->interpreter, dst, p);
	convert_client(c, &r->client, dst, p);
}

/* Whether servers before i already named servers[i]'s dstName. */
static bool dst_seen(const struct c01_server *s, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(s[j].dst_name, s[i].dst_name) == 0)
			return true;
	return false;
}

static void convert_router(struct ctx *c, const struct c01_router *r, struct cfg_list *proxies)
{
	const struct c01_server *s = r->servers.v;
	size_t names = 0;

	for (size_t i = 0; i < r->servers.n; i++)
		names += !dst_seen(s, i);
	for (size_t i = 0; i < r->servers.n; i++) {
		if (dst_seen(s, i))
			continue;
		struct cfg_proxy *p = (struct cfg_proxy *)proxies->v + proxies->n++;
		convert_proxy(c, r, s[i].dst_name, names == 1, p);
	}
}

static void convert_c01(struct ctx *c, const struct c01_config *in, struct config *cfg)
{
	const struct c01_router *r = in->routers.v;
	struct cfg_proxy *p;
	size_t cap = 0;

	cfg->mark = in->mark;
	cfg->buffer_size = in->buffer_size_bytes;
	cfg->admin.mark = in->admin.mark;
	cfg->admin.grace_secs = in->admin.grace_secs;
	set_ip_port(c, &cfg->admin.addr, in->admin.ip, in->admin.port, &in->admin.mark);
	for (size_t i = 0; i < in->routers.n; i++)
		cap += r[i].servers.n;
	cfg->proxies.v = p = xcalloc(cap, sizeof(*p));
	for (size_t i = 0; i < in->routers.n; i++)
		convert_router(c, &r[i], &cfg->proxies);
	for (size_t i = 0; i < cfg->proxies.n; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(p[i].label, p[j].label) == 0) {
				cfg_error(c, &p[i].mark, "proxy label '%s' is used twice",
					  p[i].label);
				break;
			}
}

void config_compat_load(struct ctx *c, yaml_node_t *root, struct config *cfg)
{
	struct c01_config in;

	cfgload_section_defaults(c, &c01_top_sec, &in);
	cfgload_section(c, root, &c01_top_sec, &in);
	if (!c->errors && !cfgload_over_budget(c))
		convert_c01(c, &in, cfg);
	cfgload_section_free(&c01_top_sec, &in);
}

enum cfg_schema config_compat_detect(struct ctx *c, yaml_node_t *root)
{
	yaml_node_t *routers = NULL, *proxies = NULL;

	if (root->type != YAML_MAPPING_NODE)
		return SCHEMA_CURRENT;
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *kn = cfgload_node_at(c, p->key);
		if (!kn || kn->type != YAML_SCALAR_NODE)
			continue;
		if (strcmp((const char *)kn->data.scalar.value, "routers") == 0)
			routers = kn;
		else if (strcmp((const char *)kn->data.scalar.value, "proxies") == 0)
			proxies = kn;
	}
	if (routers && proxies) {
		struct cfg_mark m = cfgload_node_mark(routers);
		cfg_error(c, &m,
			  "give proxies (this version's schema) or routers (the linkerd-tcp 0.1.x "
			  "schema), not both");
		return SCHEMA_BOTH;
	}
	return routers ? SCHEMA_C01 : SCHEMA_CURRENT;
}

void config_dump_compat_keys(FILE *out)
{
	cfgload_dump_keys(out, &c01_top_sec, "");
}
