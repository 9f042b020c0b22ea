#include "auto-config.h"

#include "config.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#define CFG_MAX_BYTES (4u << 20)
/* Aliases may not multiply work ("billion laughs"): every node visited and
 * every scalar byte read through them counts against these budgets. */
#define CFG_MAX_VISITS   200000u
#define CFG_MAX_EXPANDED (8u << 20)
#define CFG_MAX_ERRORS   100u /* listed; the rest are counted */
#define MS_MAX           ((int64_t)INT_MAX)
#define SECS_MAX         ((int64_t)INT_MAX / 1000)

enum cfg_type {
	T_STR,
	T_PATH, /* string, resolved against the config file's directory */
	T_INT,
	T_DOUBLE,
	T_BOOL,
	T_ENUM,
	T_HOSTPORT,
	T_STRLIST,
	T_PATHLIST,
	T_SECTION,    /* embedded struct */
	T_OPTSECTION, /* pointer to a struct, NULL when absent */
	T_LIST,       /* struct cfg_list of sections */
	T_MAP,        /* struct cfg_list of sections, one per name of a mapping */
};

enum {
	F_REQUIRED = 1u << 0,
	F_STATIC = 1u << 1, /* takes effect only on restart */
};

struct cfg_section;

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t off;
	const char *def;
	int64_t min, max;
	double dmin, dmax;
	const char *const *enums;
	const struct cfg_section *sub;
	unsigned flags;
	ptrdiff_t seen_off; /* >0: offset of a bool set when the key is given */
	/* T_SECTION/T_OPTSECTION whose key table depends on its "kind": sub is
	 * the union of all keys (defaults, free, dump); variants[i] is the table
	 * for the i-th value of sub's "kind" enum. */
	const struct cfg_section *const *variants;
	const char *ignored; /* accepted, then ignored with this warning */
};

struct ctx;

struct cfg_section {
	const char *name;
	const struct cfg_key *keys;
	size_t size;
	void (*check)(struct ctx *c, void *obj);
	/* T_MAP items: where the item's name goes (a char *), and the key that
	 * takes the value when it is not a mapping of keys (NULL: it is). */
	size_t name_off;
	const struct cfg_key *value_key;
};

struct ctx {
	const char *name;
	const char *dir;
	yaml_document_t doc;
	struct cfg_diag *diag;
	unsigned visits;
	size_t expanded; /* scalar bytes visited */
	unsigned errors;
};

/* ------------------------------------------------------------------ diag */

static void diag_push(char ***v, size_t *n, char *msg)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = msg;
}

static char *diag_line(const struct ctx *c, const struct cfg_mark *m, const char *fmt, va_list ap)
{
	char *msg, *line;

	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	line = xasprintf("%s:%u:%u: %s", c->name, m->line, m->col, msg ? msg : "?");
	free(msg);
	return line;
}

PRINTF(3, 4) static void cfg_error(struct ctx *c, const struct cfg_mark *m, const char *fmt, ...)
{
	va_list ap;

	c->errors++;
	if (c->diag->n >= CFG_MAX_ERRORS) {
		c->diag->more++;
		return;
	}
	va_start(ap, fmt);
	diag_push(&c->diag->msgs, &c->diag->n, diag_line(c, m, fmt, ap));
	va_end(ap);
}

PRINTF(3, 4) static void cfg_warn(struct ctx *c, const struct cfg_mark *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_push(&c->diag->warns, &c->diag->nwarn, diag_line(c, m, fmt, ap));
	va_end(ap);
}

void cfg_diag_clear(struct cfg_diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->msgs[i]);
	for (size_t i = 0; i < d->nwarn; i++)
		free(d->warns[i]);
	free(d->msgs);
	free(d->warns);
	memset(d, 0, sizeof(*d));
}

static struct cfg_mark node_mark(const yaml_node_t *n)
{
	struct cfg_mark m = { (unsigned)n->start_mark.line + 1,
			      (unsigned)n->start_mark.column + 1 };
	return m;
}

/* ------------------------------------------------------------------ checks */

static bool path_label_ok(const char *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') || strchr("_:.#$%-", ch)))
			return false;
	}
	return true;
}

/* Finagle Path syntax: "/" alone, or "/label(/label)*" without a trailing slash. */
static bool name_path_ok(const char *p)
{
	if (!p || p[0] != '/')
		return false;
	if (p[1] == '\0')
		return true;
	p++;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (!path_label_ok(p, n))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

static void check_endpoint(struct ctx *c, void *obj)
{
	(void)c;
	(void)obj;
}

static void check_identity(struct ctx *c, void *obj)
{
	struct cfg_identity *id = obj;

	if (id->cert_paths.n == 0)
		cfg_error(c, &id->mark, "identity: cert_paths must name at least one file");
}

static void check_server_tls(struct ctx *c, void *obj)
{
	struct cfg_server_tls *t = obj;

	if (!!t->private_key_path != (t->cert_paths.n > 0))
		cfg_error(c, &t->mark, "tls: private_key_path and cert_paths go together");
	if (!t->private_key_path && t->identities.n == 0)
		cfg_error(c, &t->mark, "tls: needs private_key_path and cert_paths, or identities");
}

static void check_namerd(struct ctx *c, void *obj)
{
	struct cfg_namerd *n = obj;

	if (!!n->addr.text == !!n->url)
		cfg_error(c, &n->mark, "namerd: give exactly one of addr and url");
	if (n->url && strncmp(n->url, "http://", 7) != 0 && strncmp(n->url, "https://", 8) != 0)
		cfg_error(c, &n->mark, "namerd: url must start with http:// or https://");
	if (n->path && !name_path_ok(n->path))
		cfg_error(c, &n->mark, "namerd: path '%s' is not a name such as /svc/web", n->path);
	if (n->namespace && (!*n->namespace || strpbrk(n->namespace, "/?#% \t")))
		cfg_error(c, &n->mark, "namerd: namespace '%s' is not a plain name", n->namespace);
}

static void check_client_tls(struct ctx *c, void *obj)
{
	struct cfg_client_tls *t = obj;

	if (!!t->private_key_path != (t->cert_paths.n > 0))
		cfg_error(c, &t->mark, "client tls: private_key_path and cert_paths go together");
}

static void check_accrual(struct ctx *c, void *obj)
{
	struct cfg_accrual *a = obj;

	if (a->backoff_min_ms > a->backoff_max_ms)
		cfg_error(c, &a->mark, "failure_accrual: backoff_min_ms is above backoff_max_ms");
}

static void check_proxy(struct ctx *c, void *obj)
{
	struct cfg_proxy *p = obj;

	if (p->namerd && p->has_endpoints)
		cfg_error(c, &p->mark, "proxy: give endpoints or namerd, not both");
	else if (!p->namerd && !p->has_endpoints)
		cfg_error(c, &p->mark, "proxy: needs endpoints (a static list) or namerd");
	if (p->servers.n == 0)
		cfg_error(c, &p->mark, "proxy: servers must list at least one listener");
}

/* The token travels in a header: no control characters, no spaces. */
static void check_admin(struct ctx *c, void *obj)
{
	struct cfg_admin *a = obj;
	const unsigned char *t = (const unsigned char *)a->token;

	if (t && !*t)
		cfg_error(c, &a->mark, "admin: token must not be empty");
	for (; t && *t; t++) {
		if (*t <= ' ' || *t == 0x7f) {
			cfg_error(c, &a->mark,
				  "admin: token must not contain spaces or control characters");
			break;
		}
	}
}

static void check_top(struct ctx *c, void *obj)
{
	struct config *cfg = obj;
	struct cfg_proxy *p = cfg->proxies.v;

	if (cfg->proxies.n == 0)
		cfg_error(c, &cfg->mark, "proxies must list at least one proxy");
	for (size_t i = 0; i < cfg->proxies.n; i++) {
		if (!p[i].label)
			p[i].label = xasprintf("proxy%zu", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(p[i].label, p[j].label) == 0)
				cfg_error(c, &p[i].mark, "proxy label '%s' is used twice",
					  p[i].label);
	}
}

/* ------------------------------------------------------------------ tables */

static const char *const proxy_protocol_names[] = { "none", "v1", "v2", NULL };
static const char *const namerd_mode_names[] = { "watch", "poll", NULL };
static const char *const limit_policy_names[] = { "wait", "refuse", NULL };

#define KEY(S, F, T, ...)                                                                          \
	{                                                                                          \
		.name = #F, .type = T, .off = offsetof(S, F), __VA_ARGS__                          \
	}
#define INT(S, F, D, LO, HI, ...) KEY(S, F, T_INT, .def = D, .min = LO, .max = HI, __VA_ARGS__)

static const struct cfg_key endpoint_keys[] = {
	KEY(struct cfg_endpoint, addr, T_HOSTPORT, .flags = F_REQUIRED),
	KEY(struct cfg_endpoint, weight, T_DOUBLE, .def = "1.0", .dmin = 0, .dmax = 1e6),
	{ 0 },
};
static const struct cfg_section endpoint_sec = { "endpoint", endpoint_keys,
						 sizeof(struct cfg_endpoint), check_endpoint };

static const struct cfg_key identity_keys[] = {
	KEY(struct cfg_identity, server_name, T_STR, .flags = F_REQUIRED),
	KEY(struct cfg_identity, private_key_path, T_PATH, .flags = F_REQUIRED),
	KEY(struct cfg_identity, cert_paths, T_PATHLIST, .flags = F_REQUIRED),
	{ 0 },
};
static const struct cfg_section identity_sec = { "identity", identity_keys,
						 sizeof(struct cfg_identity), check_identity };

static const struct cfg_key server_tls_keys[] = {
	KEY(struct cfg_server_tls, private_key_path, T_PATH),
	KEY(struct cfg_server_tls, cert_paths, T_PATHLIST),
	KEY(struct cfg_server_tls, identities, T_LIST, .sub = &identity_sec),
	KEY(struct cfg_server_tls, alpn_protocols, T_STRLIST),
	KEY(struct cfg_server_tls, client_ca_paths, T_PATHLIST),
	KEY(struct cfg_server_tls, priority, T_STR),
	{ 0 },
};
static const struct cfg_section server_tls_sec = { "tls", server_tls_keys,
						   sizeof(struct cfg_server_tls),
						   check_server_tls };

static const struct cfg_key server_keys[] = {
	KEY(struct cfg_server, addr, T_HOSTPORT, .flags = F_REQUIRED),
	KEY(struct cfg_server, tls, T_OPTSECTION, .sub = &server_tls_sec),
	INT(struct cfg_server, connect_timeout_ms, "10000", 1, MS_MAX),
	INT(struct cfg_server, idle_timeout_secs, "0", 0, SECS_MAX),
	INT(struct cfg_server, connection_lifetime_secs, "0", 0, SECS_MAX),
	KEY(struct cfg_server, proxy_protocol, T_ENUM, .def = "none",
	    .enums = proxy_protocol_names),
	KEY(struct cfg_server, accept_proxy_protocol, T_BOOL, .def = "false"),
	{ 0 },
};
static const struct cfg_section server_sec = { "server", server_keys, sizeof(struct cfg_server),
					       NULL };

static const struct cfg_key namerd_keys[] = {
	KEY(struct cfg_namerd, addr, T_HOSTPORT),
	KEY(struct cfg_namerd, url, T_STR),
	KEY(struct cfg_namerd, path, T_STR, .flags = F_REQUIRED),
	KEY(struct cfg_namerd, namespace, T_STR, .def = "default"),
	INT(struct cfg_namerd, interval_secs, "5", 1, SECS_MAX),
	KEY(struct cfg_namerd, mode, T_ENUM, .def = "watch", .enums = namerd_mode_names),
	INT(struct cfg_namerd, timeout_ms, "5000", 1, MS_MAX),
	INT(struct cfg_namerd, watch_idle_secs, "600", 0, SECS_MAX),
	KEY(struct cfg_namerd, trust_cert_path, T_PATH),
	{ 0 },
};
static const struct cfg_section namerd_sec = { "namerd", namerd_keys, sizeof(struct cfg_namerd),
					       check_namerd };

static const struct cfg_key client_tls_keys[] = {
	KEY(struct cfg_client_tls, name, T_STR, .flags = F_REQUIRED),
	KEY(struct cfg_client_tls, trust_cert_paths, T_PATHLIST),
	KEY(struct cfg_client_tls, cert_paths, T_PATHLIST),
	KEY(struct cfg_client_tls, private_key_path, T_PATH),
	KEY(struct cfg_client_tls, alpn_protocols, T_STRLIST),
	{ 0 },
};
static const struct cfg_section client_tls_sec = { "tls", client_tls_keys,
						   sizeof(struct cfg_client_tls),
						   check_client_tls };

static const struct cfg_key client_keys[] = {
	INT(struct cfg_client, connect_timeout_ms, "1000", 1, MS_MAX),
	INT(struct cfg_client, retries, "2", 0, 100),
	KEY(struct cfg_client, tls, T_OPTSECTION, .sub = &client_tls_sec),
	{ 0 },
};
static const struct cfg_section client_sec = { "client", client_keys, sizeof(struct cfg_client),
					       NULL };

static const struct cfg_key accrual_keys[] = {
	INT(struct cfg_accrual, consecutive_failures, "5", 1, 1000000),
	INT(struct cfg_accrual, backoff_min_ms, "1000", 1, MS_MAX),
	INT(struct cfg_accrual, backoff_max_ms, "60000", 1, MS_MAX),
	{ 0 },
};
static const struct cfg_section accrual_sec = { "failure_accrual", accrual_keys,
						sizeof(struct cfg_accrual), check_accrual };

static const struct cfg_key proxy_keys[] = {
	KEY(struct cfg_proxy, label, T_STR),
	KEY(struct cfg_proxy, servers, T_LIST, .sub = &server_sec, .flags = F_REQUIRED),
	KEY(struct cfg_proxy, namerd, T_OPTSECTION, .sub = &namerd_sec),
	KEY(struct cfg_proxy, endpoints, T_LIST, .sub = &endpoint_sec,
	    .seen_off = offsetof(struct cfg_proxy, has_endpoints)),
	KEY(struct cfg_proxy, client, T_SECTION, .sub = &client_sec),
	INT(struct cfg_proxy, max_connections, "0", 0, INT_MAX),
	KEY(struct cfg_proxy, max_connections_policy, T_ENUM, .def = "wait",
	    .enums = limit_policy_names),
	KEY(struct cfg_proxy, failure_accrual, T_SECTION, .sub = &accrual_sec),
	{ 0 },
};
static const struct cfg_section proxy_sec = { "proxy", proxy_keys, sizeof(struct cfg_proxy),
					      check_proxy };

static const struct cfg_key admin_keys[] = {
	KEY(struct cfg_admin, addr, T_HOSTPORT, .def = "127.0.0.1:9989", .flags = F_STATIC),
	INT(struct cfg_admin, grace_secs, "10", 0, SECS_MAX),
	KEY(struct cfg_admin, token, T_STR),
	{ 0 },
};
static const struct cfg_section admin_sec = { "admin", admin_keys, sizeof(struct cfg_admin),
					      check_admin };

static const struct cfg_key top_keys[] = {
	KEY(struct config, proxies, T_LIST, .sub = &proxy_sec, .flags = F_REQUIRED),
	KEY(struct config, admin, T_SECTION, .sub = &admin_sec),
	INT(struct config, buffer_size, "16384", 1024, 16 << 20, .flags = F_STATIC),
	INT(struct config, relay_threads, "1024", 1, 100000, .flags = F_STATIC),
	KEY(struct config, user, T_STR, .flags = F_STATIC),
	KEY(struct config, group, T_STR, .flags = F_STATIC),
	KEY(struct config, access_log, T_PATH),
	{ 0 },
};
static const struct cfg_section top_sec = { "top level", top_keys, sizeof(struct config),
					    check_top };

/* ------------------------------------------------------------------ scalars */

static bool scalar_is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
	       strcmp(v, "NULL") == 0;
}

static int parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no",
										  "off" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = true, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = false, 0;
	}
	return -1;
}

/* "a, b, c" from a NULL-terminated list of names. */
static char *enum_choices(const char *const *enums)
{
	char *s = xstrdup("");

	for (int i = 0; enums[i]; i++) {
		char *t = xasprintf("%s%s%s", s, i ? ", " : "", enums[i]);
		free(s);
		s = t;
	}
	return s;
}

static char *resolve_path(const struct ctx *c, const char *p)
{
	if (p[0] == '/' || !c->dir)
		return xstrdup(p);
	return xasprintf("%s/%s", c->dir, p);
}

/* Converts one scalar text to the key's type at dst.  Returns 0, or -1 with
 * an error already reported at m. */
static int set_scalar(struct ctx *c, const struct cfg_key *k, const char *s,
		      const struct cfg_mark *m, void *dst)
{
	const char *why;

	switch (k->type) {
	case T_STR:
		*(char **)dst = xstrdup(s);
		return 0;
	case T_PATH:
		*(char **)dst = resolve_path(c, s);
		return 0;
	case T_INT: {
		int64_t v;
		if (parse_int(s, &v) < 0 || v < k->min || v > k->max) {
			cfg_error(c, m, "%s: expected an integer from %lld to %lld, got '%s'",
				  k->name, (long long)k->min, (long long)k->max, s);
			return -1;
		}
		*(int64_t *)dst = v;
		return 0;
	}
	case T_DOUBLE: {
		double v;
		if (parse_double(s, &v) < 0 || v < k->dmin || v > k->dmax) {
			cfg_error(c, m, "%s: expected a number from %g to %g, got '%s'", k->name,
				  k->dmin, k->dmax, s);
			return -1;
		}
		*(double *)dst = v;
		return 0;
	}
	case T_BOOL:
		if (parse_bool(s, dst) < 0) {
			cfg_error(c, m, "%s: expected true or false, got '%s'", k->name, s);
			return -1;
		}
		return 0;
	case T_ENUM: {
		for (int i = 0; k->enums[i]; i++)
			if (strcmp(s, k->enums[i]) == 0)
				return *(int *)dst = i, 0;
		char *choices = enum_choices(k->enums);
		cfg_error(c, m, "%s: '%s' is not one of the choices (%s)", k->name, s, choices);
		free(choices);
		return -1;
	}
	case T_HOSTPORT: {
		struct cfg_hostport *hp = dst;
		if (hostport_parse(s, &hp->hp, &why) < 0) {
			cfg_error(c, m, "%s: '%s': %s", k->name, s, why);
			return -1;
		}
		hp->text = xstrdup(s);
		hp->mark = *m;
		return 0;
	}
	default:
		return -1;
	}
}

/* ------------------------------------------------------------------ free */

static void section_free(const struct cfg_section *sec, void *obj);

static void strlist_free(struct cfg_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void value_free(const struct cfg_key *k, void *dst)
{
	switch (k->type) {
	case T_STR:
	case T_PATH:
		free(*(char **)dst);
		*(char **)dst = NULL;
		break;
	case T_HOSTPORT: {
		struct cfg_hostport *hp = dst;
		free(hp->text);
		hostport_clear(&hp->hp);
		hp->text = NULL;
		break;
	}
	case T_STRLIST:
	case T_PATHLIST:
		strlist_free(dst);
		break;
	case T_SECTION:
		section_free(k->sub, dst);
		break;
	case T_OPTSECTION: {
		void **p = dst;
		if (*p) {
			section_free(k->sub, *p);
			free(*p);
			*p = NULL;
		}
		break;
	}
	case T_LIST:
	case T_MAP: {
		struct cfg_list *l = dst;
		for (size_t i = 0; i < l->n; i++) {
			char *item = (char *)l->v + i * k->sub->size;
			if (k->type == T_MAP)
				free(*(char **)(item + k->sub->name_off));
			section_free(k->sub, item);
		}
		free(l->v);
		l->v = NULL;
		l->n = 0;
		break;
	}
	default:
		break;
	}
}

static void section_free(const struct cfg_section *sec, void *obj)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++)
		value_free(k, (char *)obj + k->off);
}

/* ------------------------------------------------------------------ defaults */

static void section_defaults(struct ctx *c, const struct cfg_section *sec, void *obj)
{
	static const struct cfg_mark none = { 0, 0 };

	memset(obj, 0, sec->size);
	for (const struct cfg_key *k = sec->keys; k->name; k++) {
		void *dst = (char *)obj + k->off;
		if (k->type == T_SECTION)
			section_defaults(c, k->sub, dst);
		else if (k->def && set_scalar(c, k, k->def, &none, dst) < 0)
			fatal("built-in default of %s is invalid", k->name);
	}
}

/* A key given as null takes its default: a section all of its defaults. */
static void value_default(struct ctx *c, const struct cfg_key *k, void *dst)
{
	if (k->type == T_SECTION) {
		value_free(k, dst);
		section_defaults(c, k->sub, dst);
	} else if (k->type == T_OPTSECTION || k->def == NULL) {
		value_free(k, dst);
	}
}

/* ------------------------------------------------------------------ walk */

static void load_section(struct ctx *c, yaml_node_t *map, const struct cfg_section *sec, void *obj);
static void load_value(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *dst);

static bool over_budget(const struct ctx *c)
{
	return c->visits > CFG_MAX_VISITS || c->expanded > CFG_MAX_EXPANDED;
}

/* Every walk goes through here, so the budgets see aliased nodes each time. */
static yaml_node_t *node_at(struct ctx *c, int id)
{
	yaml_node_t *n = yaml_document_get_node(&c->doc, id);

	c->visits++;
	if (n && n->type == YAML_SCALAR_NODE)
		c->expanded += n->data.scalar.length;
	return over_budget(c) ? NULL : n;
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a scalar";
	}
}

static void load_strlist(struct ctx *c, const struct cfg_key *k, yaml_node_t *n,
			 struct cfg_strlist *l)
{
	struct cfg_mark m = node_mark(n);

	if (n->type == YAML_SCALAR_NODE) {
		/* A lone string counts as a one-element list. */
		l->v = xcalloc(1, sizeof(char *));
		l->n = 1;
		l->v[0] = k->type == T_PATHLIST ? resolve_path(c, (char *)n->data.scalar.value)
						: xstrdup((char *)n->data.scalar.value);
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		cfg_error(c, &m, "%s: expected a list of strings, got %s", k->name, node_kind(n));
		return;
	}
	size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	l->v = xcalloc(cap, sizeof(char *));
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top && !over_budget(c); it++) {
		yaml_node_t *item = node_at(c, *it);
		struct cfg_mark im;
		if (!item)
			continue;
		im = node_mark(item);
		if (item->type != YAML_SCALAR_NODE || scalar_is_null(item)) {
			cfg_error(c, &im, "%s: list items must be strings", k->name);
			continue;
		}
		const char *s = (char *)item->data.scalar.value;
		l->v[l->n++] = k->type == T_PATHLIST ? resolve_path(c, s) : xstrdup(s);
	}
}

static void load_list(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, struct cfg_list *l)
{
	struct cfg_mark m = node_mark(n);

	if (n->type != YAML_SEQUENCE_NODE) {
		cfg_error(c, &m, "%s: expected a list, got %s", k->name, node_kind(n));
		return;
	}
	size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	l->v = xcalloc(cap, k->sub->size);
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top && !over_budget(c); it++) {
		yaml_node_t *item = node_at(c, *it);
		void *obj = (char *)l->v + l->n * k->sub->size;
		if (!item)
			continue;
		section_defaults(c, k->sub, obj);
		l->n++;
		load_section(c, item, k->sub, obj);
	}
}

static const struct cfg_key *find_key(const struct cfg_section *sec, const char *name)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static bool map_has_name(const struct cfg_section *sub, const struct cfg_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(*(char **)((char *)l->v + i * sub->size + sub->name_off), name) == 0)
			return true;
	return false;
}

/* A mapping of names to items: each value is loaded as the item's section
 * (whose mark is that of the value), or into its value_key (the mark is
 * that of the name). */
static void load_map(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, struct cfg_list *l)
{
	const struct cfg_section *sub = k->sub;
	struct cfg_mark m = node_mark(n);

	if (n->type != YAML_MAPPING_NODE) {
		cfg_error(c, &m, "%s: expected a mapping of names, got %s", k->name, node_kind(n));
		return;
	}
	l->v = xcalloc((size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start),
		       sub->size);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	     p < n->data.mapping.pairs.top && !over_budget(c); p++) {
		yaml_node_t *kn = node_at(c, p->key), *vn = node_at(c, p->value);
		char *obj = (char *)l->v + l->n * sub->size;
		if (!kn || !vn)
			continue;
		m = node_mark(kn);
		if (kn->type != YAML_SCALAR_NODE || scalar_is_null(kn)) {
			cfg_error(c, &m, "%s: names must be strings", k->name);
			continue;
		}
		const char *name = (const char *)kn->data.scalar.value;
		if (map_has_name(sub, l, name)) {
			cfg_error(c, &m, "%s: '%s' is given twice", k->name, name);
			continue;
		}
		section_defaults(c, sub, obj);
		*(char **)(obj + sub->name_off) = xstrdup(name);
		l->n++;
		if (!sub->value_key) {
			load_section(c, vn, sub, obj);
			continue;
		}
		*(struct cfg_mark *)obj = m;
		load_value(c, sub->value_key, vn, obj + sub->value_key->off);
		if (sub->check)
			sub->check(c, obj);
	}
}

static yaml_node_t *map_get(struct ctx *c, yaml_node_t *map, const char *name)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top && !over_budget(c); p++) {
		yaml_node_t *kn = node_at(c, p->key);
		if (kn && kn->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)kn->data.scalar.value, name) == 0)
			return node_at(c, p->value);
	}
	return NULL;
}

/* The key table for a section: k->sub, or for a section with variants the
 * table its "kind" names (the default kind when absent).  NULL, with the
 * problem reported, when kind is missing without a default or unknown. */
static const struct cfg_section *section_for(struct ctx *c, const struct cfg_key *k,
					     yaml_node_t *map)
{
	const struct cfg_key *kind;
	struct cfg_mark m = node_mark(map);
	const char *v;
	yaml_node_t *vn;

	if (!k->variants || map->type != YAML_MAPPING_NODE)
		return k->sub;
	kind = find_key(k->sub, "kind");
	v = kind->def;
	vn = map_get(c, map, "kind");
	if (vn && vn->type != YAML_SCALAR_NODE)
		return k->variants[0]; /* load_section reports it */
	if (vn && !scalar_is_null(vn)) {
		v = (const char *)vn->data.scalar.value;
		m = node_mark(vn);
	}
	if (!v) {
		cfg_error(c, &m, "%s: missing required key 'kind'", k->name);
		return NULL;
	}
	for (int i = 0; kind->enums[i]; i++)
		if (strcmp(v, kind->enums[i]) == 0)
			return k->variants[i];
	char *choices = enum_choices(kind->enums);
	cfg_error(c, &m, "kind: '%s' is not one of the choices (%s)", v, choices);
	free(choices);
	return NULL;
}

static void load_value(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *dst)
{
	const struct cfg_section *sec;

	struct cfg_mark m = node_mark(n);

	if (over_budget(c))
		return;
	switch (k->type) {
	case T_SECTION:
		if ((sec = section_for(c, k, n)))
			load_section(c, n, sec, dst);
		return;
	case T_OPTSECTION: {
		void *obj = xmalloc(k->sub->size);
		section_defaults(c, k->sub, obj);
		*(void **)dst = obj;
		if ((sec = section_for(c, k, n)))
			load_section(c, n, sec, obj);
		return;
	}
	case T_LIST:
		load_list(c, k, n, dst);
		return;
	case T_MAP:
		load_map(c, k, n, dst);
		return;
	case T_STRLIST:
	case T_PATHLIST:
		load_strlist(c, k, n, dst);
		return;
	default:
		break;
	}
	if (n->type != YAML_SCALAR_NODE) {
		cfg_error(c, &m, "%s: expected a single value, got %s", k->name, node_kind(n));
		return;
	}
	value_free(k, dst); /* drop the default */
	(void)set_scalar(c, k, (char *)n->data.scalar.value, &m, dst);
}

static void load_section(struct ctx *c, yaml_node_t *map, const struct cfg_section *sec, void *obj)
{
	struct cfg_mark m = node_mark(map);
	uint64_t seen = 0;

	*(struct cfg_mark *)obj = m;
	if (map->type != YAML_MAPPING_NODE) {
		cfg_error(c, &m, "%s: expected a mapping of keys, got %s", sec->name,
			  node_kind(map));
		return;
	}
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top && !over_budget(c); p++) {
		yaml_node_t *kn = node_at(c, p->key), *vn = node_at(c, p->value);
		const struct cfg_key *k;
		struct cfg_mark km;

		if (!kn || !vn)
			continue;
		km = node_mark(kn);
		if (kn->type != YAML_SCALAR_NODE) {
			cfg_error(c, &km, "%s: keys must be plain words", sec->name);
			continue;
		}
		const char *name = (const char *)kn->data.scalar.value;
		k = find_key(sec, name);
		if (!k) {
			cfg_error(c, &km, "unknown key '%s' in %s", name, sec->name);
			continue;
		}
		uint64_t bit = 1ull << (k - sec->keys);
		if (seen & bit) {
			cfg_error(c, &km, "key '%s' is given twice", name);
			continue;
		}
		seen |= bit;
		if (k->seen_off > 0)
			*(bool *)((char *)obj + k->seen_off) = true;
		if (scalar_is_null(vn)) {
			if (k->flags & F_REQUIRED)
				cfg_error(c, &km, "%s: a value is required", name);
			else
				value_default(c, k, (char *)obj + k->off);
			continue;
		}
		load_value(c, k, vn, (char *)obj + k->off);
		if (k->ignored)
			cfg_warn(c, &km, "%s is ignored: %s", name, k->ignored);
	}
	if (over_budget(c))
		return; /* reported once, at the end */
	for (const struct cfg_key *k = sec->keys; k->name; k++)
		if ((k->flags & F_REQUIRED) && !(seen & (1ull << (k - sec->keys))))
			cfg_error(c, &m, "%s: missing required key '%s'", sec->name, k->name);
	if (sec->check)
		sec->check(c, obj);
}

/* ------------------------------------------------------------------ linkerd-tcp 0.1.x
 *
 * A configuration of linkerd-tcp 0.1.x (a top-level "routers" key) is read
 * by the same walker into the c01_* structs below, with the original's
 * camelCase keys, then converted into a struct config.  Every distinct
 * dstName of a router becomes one proxy, since a proxy resolves one name.
 * doc/configuration.md lists how each key maps and which of the original's
 * bugs the conversion leaves behind.
 */

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

static void check_c01_identity(struct ctx *c, void *obj)
{
	struct c01_identity *id = obj;

	if (id->certs.n == 0)
		cfg_error(c, &id->mark, "identity: certs must name at least one file");
}

static void check_c01_server(struct ctx *c, void *obj)
{
	struct c01_server *s = obj;

	if (s->ip && !ip_literal_ok(s->ip))
		cfg_error(c, &s->mark, "server: ip '%s' is not an IP address", s->ip);
	if (s->dst_name && !name_path_ok(s->dst_name))
		cfg_error(c, &s->mark, "server: dstName '%s' is not a name such as /svc/web",
			  s->dst_name);
}

static void check_c01_addr(struct ctx *c, void *obj)
{
	struct c01_addr *a = obj;

	if (a->ip && !ip_literal_ok(a->ip))
		cfg_error(c, &a->mark, "address: ip '%s' is not an IP address", a->ip);
}

static void check_c01_addrs(struct ctx *c, void *obj)
{
	struct c01_addrs *a = obj;

	if (!name_path_ok(a->name))
		cfg_error(c, &a->mark, "addrs: '%s' is not a name such as /svc/web", a->name);
}

static void check_c01_namerd(struct ctx *c, void *obj)
{
	struct c01_interpreter *in = obj;
	const char *u = in->base_url;

	if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		cfg_error(c, &in->mark, "interpreter: baseUrl must start with http:// or https://");
	if (in->namespace && (!*in->namespace || strpbrk(in->namespace, "/?#% \t")))
		cfg_error(c, &in->mark, "interpreter: namespace '%s' is not a plain name",
			  in->namespace);
}

static void check_c01_entry(struct ctx *c, void *obj)
{
	struct c01_connector *e = obj;

	if (e->prefix && !name_path_ok(e->prefix))
		cfg_error(c, &e->mark, "client config: prefix '%s' is not a name such as /svc",
			  e->prefix);
}

static void check_c01_router(struct ctx *c, void *obj)
{
	struct c01_router *r = obj;

	if (r->servers.n == 0)
		cfg_error(c, &r->mark, "router: servers must list at least one listener");
}

static void check_c01_admin(struct ctx *c, void *obj)
{
	struct c01_admin *a = obj;

	if (a->ip && !ip_literal_ok(a->ip))
		cfg_error(c, &a->mark, "admin: ip '%s' is not an IP address", a->ip);
}

static void check_c01_top(struct ctx *c, void *obj)
{
	struct c01_config *cfg = obj;
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

#define NKEY(S, F, N, T, ...)                                                                      \
	{                                                                                          \
		.name = N, .type = T, .off = offsetof(S, F), __VA_ARGS__                           \
	}
#define NINT(S, F, N, D, LO, HI, ...)                                                              \
	NKEY(S, F, N, T_INT, .def = D, .min = LO, .max = HI, __VA_ARGS__)

static const struct cfg_key c01_identity_keys[] = {
	NKEY(struct c01_identity, private_key, "privateKey", T_PATH, .flags = F_REQUIRED),
	NKEY(struct c01_identity, certs, "certs", T_PATHLIST, .flags = F_REQUIRED),
	{ 0 },
};
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
static const struct cfg_section c01_server_sec = { "server", c01_server_keys,
						   sizeof(struct c01_server), check_c01_server };

static const struct cfg_key c01_addr_keys[] = {
	NKEY(struct c01_addr, ip, "ip", T_STR, .flags = F_REQUIRED),
	NINT(struct c01_addr, port, "port", NULL, 0, 65535, .flags = F_REQUIRED),
	NKEY(struct c01_addr, weight, "weight", T_DOUBLE, .def = "1.0", .dmin = 0, .dmax = 1e6),
	{ 0 },
};
static const struct cfg_section c01_addr_sec = { "address", c01_addr_keys, sizeof(struct c01_addr),
						 check_c01_addr };

static const struct cfg_key c01_addrs_keys[] = {
	NKEY(struct c01_addrs, addrs, "addrs", T_LIST, .sub = &c01_addr_sec),
	{ 0 },
};
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
static const struct cfg_section c01_interpreter_sec = { "interpreter", c01_interpreter_keys,
							sizeof(struct c01_interpreter), NULL };
static const struct cfg_key c01_namerd_keys[] = {
	C01_KIND(struct c01_interpreter, c01_interpreter_kinds),
	C01_INTERPRETER_KEYS,
	{ 0 },
};
static const struct cfg_section c01_namerd_sec = { "io.l5d.namerd.http interpreter",
						   c01_namerd_keys, sizeof(struct c01_interpreter),
						   check_c01_namerd };
static const struct cfg_key c01_static_addrs_keys[] = {
	C01_KIND(struct c01_interpreter, c01_interpreter_kinds),
	C01_STATIC_ADDRS_KEYS,
	{ 0 },
};
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
static const struct cfg_section c01_client_tls_sec = { "tls", c01_client_tls_keys,
						       sizeof(struct c01_client_tls), NULL };

static const struct cfg_key c01_fail_fast_keys[] = {
	NINT(struct c01_fail_fast, max_consecutive_failures, "maxConsecutiveFailures", "5", 1,
	     1000000, .seen_off = offsetof(struct c01_fail_fast, has_max_consecutive_failures)),
	NINT(struct c01_fail_fast, failure_penalty_secs, "failurePenaltySecs", "60", 0, SECS_MAX,
	     .seen_off = offsetof(struct c01_fail_fast, has_failure_penalty_secs)),
	{ 0 },
};
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
static const struct cfg_section c01_client_sec = { "client", c01_client_keys,
						   sizeof(struct c01_connector), NULL };
static const struct cfg_key c01_global_keys[] = {
	C01_KIND(struct c01_connector, c01_client_kinds),
	C01_CONNECTOR_KEYS,
	{ 0 },
};
static const struct cfg_section c01_global_sec = { "io.l5d.global client", c01_global_keys,
						   sizeof(struct c01_connector), NULL };
static const struct cfg_key c01_static_keys[] = {
	C01_KIND(struct c01_connector, c01_client_kinds),
	C01_CONFIGS_KEY,
	{ 0 },
};
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
static const struct cfg_section c01_admin_sec = { "admin", c01_admin_keys, sizeof(struct c01_admin),
						  check_c01_admin };

static const struct cfg_key c01_top_keys[] = {
	NKEY(struct c01_config, admin, "admin", T_SECTION, .sub = &c01_admin_sec),
	NKEY(struct c01_config, routers, "routers", T_LIST, .sub = &c01_router_sec,
	     .flags = F_REQUIRED),
	NINT(struct c01_config, buffer_size_bytes, "bufferSizeBytes", "16384", 1024, 16 << 20),
	{ 0 },
};
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

	section_defaults(c, &server_tls_sec, t);
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
	section_defaults(c, &server_sec, out);
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

	section_defaults(c, &namerd_sec, n);
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
			section_defaults(c, &endpoint_sec, &e[j]);
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
		section_defaults(c, &client_tls_sec, t);
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
	section_defaults(c, &proxy_sec, p);
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

static void load_c01(struct ctx *c, yaml_node_t *root, struct config *cfg)
{
	struct c01_config in;

	section_defaults(c, &c01_top_sec, &in);
	load_section(c, root, &c01_top_sec, &in);
	if (!c->errors && !over_budget(c))
		convert_c01(c, &in, cfg);
	section_free(&c01_top_sec, &in);
}

enum cfg_schema { SCHEMA_CURRENT, SCHEMA_C01, SCHEMA_BOTH };

/* A top-level "routers" key selects the linkerd-tcp 0.1.x schema. */
static enum cfg_schema detect_schema(struct ctx *c, yaml_node_t *root)
{
	yaml_node_t *routers = NULL, *proxies = NULL;

	if (root->type != YAML_MAPPING_NODE)
		return SCHEMA_CURRENT;
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *kn = node_at(c, p->key);
		if (!kn || kn->type != YAML_SCALAR_NODE)
			continue;
		if (strcmp((const char *)kn->data.scalar.value, "routers") == 0)
			routers = kn;
		else if (strcmp((const char *)kn->data.scalar.value, "proxies") == 0)
			proxies = kn;
	}
	if (routers && proxies) {
		struct cfg_mark m = node_mark(routers);
		cfg_error(c, &m,
			  "give proxies (this version's schema) or routers (the linkerd-tcp 0.1.x "
			  "schema), not both");
		return SCHEMA_BOTH;
	}
	return routers ? SCHEMA_C01 : SCHEMA_CURRENT;
}

/* ------------------------------------------------------------------ load */

static void report_yaml_error(struct ctx *c, const yaml_parser_t *p)
{
	struct cfg_mark m = { (unsigned)p->problem_mark.line + 1,
			      (unsigned)p->problem_mark.column + 1 };

	if (p->error == YAML_READER_ERROR)
		m.line = m.col = 1;
	cfg_error(c, &m, "YAML syntax error: %s%s%s", p->problem ? p->problem : "unknown",
		  p->context ? " " : "", p->context ? p->context : "");
}

/* Listed even past CFG_MAX_ERRORS: it explains why the walk stopped. */
static void report_over_budget(struct ctx *c)
{
	struct cfg_mark m = { 1, 1 };

	diag_push(&c->diag->msgs, &c->diag->n,
		  xasprintf("%s:%u:%u: the document is too large once aliases are expanded "
			    "(more than %u nodes or %u MiB of text); the walk stopped there",
			    c->name, m.line, m.col, CFG_MAX_VISITS, CFG_MAX_EXPANDED >> 20));
	c->errors++;
}

struct config *config_load_buffer(const char *name, const char *dir, const char *text, size_t len,
				  struct cfg_diag *diag)
{
	struct ctx c = { .name = name, .dir = dir, .diag = diag };
	struct config *cfg = NULL;
	yaml_parser_t parser;
	bool have_doc = false;
	yaml_node_t *root;

	if (!yaml_parser_initialize(&parser))
		fatal("libyaml: cannot initialize parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &c.doc)) {
		report_yaml_error(&c, &parser);
		goto out;
	}
	have_doc = true;
	cfg = xmalloc(sizeof(*cfg));
	section_defaults(&c, &top_sec, cfg);
	root = yaml_document_get_root_node(&c.doc);
	if (!root) {
		struct cfg_mark m = { 1, 1 };
		cfg_error(&c, &m, "the configuration is empty");
		goto out;
	}
	switch (detect_schema(&c, root)) {
	case SCHEMA_CURRENT:
		load_section(&c, root, &top_sec, cfg);
		break;
	case SCHEMA_C01:
		load_c01(&c, root, cfg);
		break;
	case SCHEMA_BOTH:
		break;
	}
	if (over_budget(&c))
		report_over_budget(&c);
	/* A second document in the same stream is almost certainly a mistake. */
	yaml_document_t extra;
	if (!c.errors && yaml_parser_load(&parser, &extra)) {
		yaml_node_t *r = yaml_document_get_root_node(&extra);
		if (r) {
			struct cfg_mark m = node_mark(r);
			cfg_error(&c, &m, "only one YAML document is allowed");
		}
		yaml_document_delete(&extra);
	}
out:
	if (have_doc)
		yaml_document_delete(&c.doc);
	yaml_parser_delete(&parser);
	if (c.errors) {
		if (cfg) {
			section_free(&top_sec, cfg);
			free(cfg);
		}
		return NULL;
	}
	cfg->path = xstrdup(name);
	atomic_init(&cfg->refs, 1);
	return cfg;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *rel, *abs;

	if (!slash)
		rel = xstrdup(".");
	else if (slash == path)
		rel = xstrdup("/");
	else
		rel = strndup(path, (size_t)(slash - path));
	if (!rel)
		fatal("out of memory");
	abs = realpath(rel, NULL);
	if (!abs)
		return rel;
	free(rel);
	return abs;
}

struct config *config_load(const char *path, struct cfg_diag *diag)
{
	struct cfg_mark m = { 0, 0 };
	struct ctx c = { .name = path, .diag = diag };
	struct config *cfg;
	size_t len;
	char *text, *dir;
	bool is_stdin = strcmp(path, "-") == 0;

	text = is_stdin ? read_stream(STDIN_FILENO, CFG_MAX_BYTES, &len)
			: read_file(path, CFG_MAX_BYTES, &len);
	if (!text) {
		cfg_error(&c, &m, "cannot read configuration: %s",
			  errno == EFBIG ? "larger than 4 MiB" : strerror(errno));
		return NULL;
	}
	dir = is_stdin ? getcwd(NULL, 0) : dir_of(path);
	cfg = config_load_buffer(is_stdin ? "<stdin>" : path, dir, text, len, diag);
	free(dir);
	free(text);
	return cfg;
}

struct config *config_ref(struct config *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void config_unref(struct config *c)
{
	if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	section_free(&top_sec, c);
	free(c->path);
	free(c);
}

/* ------------------------------------------------------------------ introspection */

static bool scalar_equal(const struct cfg_key *k, const void *a, const void *b)
{
	switch (k->type) {
	case T_STR:
	case T_PATH: {
		const char *x = *(char *const *)a, *y = *(char *const *)b;
		return (!x && !y) || (x && y && strcmp(x, y) == 0);
	}
	case T_INT:
		return *(const int64_t *)a == *(const int64_t *)b;
	case T_HOSTPORT: {
		const struct cfg_hostport *x = a, *y = b;
		return (!x->text && !y->text) ||
		       (x->text && y->text && strcmp(x->text, y->text) == 0);
	}
	default:
		return true;
	}
}

static void changed_static(const struct cfg_section *sec, const void *a, const void *b,
			   const char *prefix, void (*report)(const char *, void *), void *arg)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++) {
		const void *x = (const char *)a + k->off, *y = (const char *)b + k->off;
		if (k->type == T_SECTION) {
			char *p = xasprintf("%s%s.", prefix, k->name);
			changed_static(k->sub, x, y, p, report, arg);
			free(p);
		} else if ((k->flags & F_STATIC) && !scalar_equal(k, x, y)) {
			char *p = xasprintf("%s%s", prefix, k->name);
			report(p, arg);
			free(p);
		}
	}
}

void config_changed_static(const struct config *a, const struct config *b,
			   void (*report)(const char *key, void *arg), void *arg)
{
	changed_static(&top_sec, a, b, "", report, arg);
}

/* Lists are KEY[], the items of a mapping of names KEY.<name>. */
static void dump_keys(FILE *out, const struct cfg_section *sec, const char *prefix)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++) {
		const char *list = k->type == T_LIST ? "[]" : "";
		const struct cfg_section *sub = k->sub;
		char *p;

		fprintf(out, "%s%s%s\n", prefix, k->name, list);
		if (!sub)
			continue;
		if (k->type != T_MAP)
			p = xasprintf("%s%s%s.", prefix, k->name, list);
		else if (!sub->value_key)
			p = xasprintf("%s%s.<name>.", prefix, k->name);
		else
			p = xasprintf("%s%s.<name>%s.", prefix, k->name,
				      sub->value_key->type == T_LIST ? "[]" : "");
		if (!sub->value_key || sub->value_key->sub)
			dump_keys(out, sub->value_key ? sub->value_key->sub : sub, p);
		free(p);
	}
}

void config_dump_keys(FILE *out)
{
	dump_keys(out, &top_sec, "");
}

void config_dump_compat_keys(FILE *out)
{
	dump_keys(out, &c01_top_sec, "");
}

const char *config_proxy_protocol_name(int v)
{
	return v >= 0 && v < (int)ARRAY_SIZE(proxy_protocol_names) - 1 ? proxy_protocol_names[v]
								       : "?";
}
