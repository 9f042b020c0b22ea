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

#define CFG_MAX_BYTES  (4u << 20)
#define CFG_MAX_VISITS 200000u /* bounds alias expansion ("billion laughs") */
#define MS_MAX         ((int64_t)INT_MAX)
#define SECS_MAX       ((int64_t)INT_MAX / 1000)

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
};

struct ctx;

struct cfg_section {
	const char *name;
	const struct cfg_key *keys;
	size_t size;
	void (*check)(struct ctx *c, void *obj);
};

struct ctx {
	const char *name;
	const char *dir;
	yaml_document_t doc;
	struct cfg_diag *diag;
	unsigned visits;
	unsigned errors;
};

/* ------------------------------------------------------------------ diag */

static void diag_push(char ***v, size_t *n, char *msg)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = msg;
}

PRINTF(3, 4) static void cfg_error(struct ctx *c, const struct cfg_mark *m, const char *fmt, ...)
{
	va_list ap;
	char *msg, *line;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	line = xasprintf("%s:%u:%u: %s", c->name, m->line, m->col, msg ? msg : "?");
	free(msg);
	diag_push(&c->diag->msgs, &c->diag->n, line);
	c->errors++;
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
	KEY(struct cfg_proxy, failure_accrual, T_SECTION, .sub = &accrual_sec),
	{ 0 },
};
static const struct cfg_section proxy_sec = { "proxy", proxy_keys, sizeof(struct cfg_proxy),
					      check_proxy };

static const struct cfg_key admin_keys[] = {
	KEY(struct cfg_admin, addr, T_HOSTPORT, .def = "127.0.0.1:9989", .flags = F_STATIC),
	INT(struct cfg_admin, grace_secs, "10", 0, SECS_MAX),
	{ 0 },
};
static const struct cfg_section admin_sec = { "admin", admin_keys, sizeof(struct cfg_admin), NULL };

static const struct cfg_key top_keys[] = {
	KEY(struct config, proxies, T_LIST, .sub = &proxy_sec, .flags = F_REQUIRED),
	KEY(struct config, admin, T_SECTION, .sub = &admin_sec),
	INT(struct config, buffer_size, "16384", 1024, 16 << 20, .flags = F_STATIC),
	INT(struct config, relay_threads, "1024", 1, 100000, .flags = F_STATIC),
	KEY(struct config, user, T_STR, .flags = F_STATIC),
	KEY(struct config, group, T_STR, .flags = F_STATIC),
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
	case T_ENUM:
		for (int i = 0; k->enums[i]; i++)
			if (strcmp(s, k->enums[i]) == 0)
				return *(int *)dst = i, 0;
		cfg_error(c, m, "%s: '%s' is not one of the choices", k->name, s);
		return -1;
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
	case T_LIST: {
		struct cfg_list *l = dst;
		for (size_t i = 0; i < l->n; i++)
			section_free(k->sub, (char *)l->v + i * k->sub->size);
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

/* ------------------------------------------------------------------ walk */

static void load_section(struct ctx *c, yaml_node_t *map, const struct cfg_section *sec, void *obj);

static yaml_node_t *node_at(struct ctx *c, int id)
{
	c->visits++;
	return yaml_document_get_node(&c->doc, id);
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
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
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
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = node_at(c, *it);
		void *obj = (char *)l->v + l->n * k->sub->size;
		if (!item)
			continue;
		section_defaults(c, k->sub, obj);
		l->n++;
		load_section(c, item, k->sub, obj);
	}
}

static void load_value(struct ctx *c, const struct cfg_key *k, yaml_node_t *n, void *dst)
{
	struct cfg_mark m = node_mark(n);

	if (c->visits > CFG_MAX_VISITS)
		return;
	switch (k->type) {
	case T_SECTION:
		load_section(c, n, k->sub, dst);
		return;
	case T_OPTSECTION: {
		void *obj = xmalloc(k->sub->size);
		section_defaults(c, k->sub, obj);
		*(void **)dst = obj;
		load_section(c, n, k->sub, obj);
		return;
	}
	case T_LIST:
		load_list(c, k, n, dst);
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

static const struct cfg_key *find_key(const struct cfg_section *sec, const char *name)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
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
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
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
			else if (k->type == T_OPTSECTION || k->def == NULL)
				value_free(k, (char *)obj + k->off);
			continue;
		}
		load_value(c, k, vn, (char *)obj + k->off);
	}
	for (const struct cfg_key *k = sec->keys; k->name; k++)
		if ((k->flags & F_REQUIRED) && !(seen & (1ull << (k - sec->keys))))
			cfg_error(c, &m, "%s: missing required key '%s'", sec->name, k->name);
	if (sec->check)
		sec->check(c, obj);
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
	load_section(&c, root, &top_sec, cfg);
	if (c.visits > CFG_MAX_VISITS) {
		struct cfg_mark m = { 1, 1 };
		cfg_error(&c, &m, "the document is too large once aliases are expanded");
	}
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

static void dump_keys(FILE *out, const struct cfg_section *sec, const char *prefix)
{
	for (const struct cfg_key *k = sec->keys; k->name; k++) {
		const char *list = k->type == T_LIST ? "[]" : "";
		fprintf(out, "%s%s%s\n", prefix, k->name, list);
		if (k->sub) {
			char *p = xasprintf("%s%s%s.", prefix, k->name, list);
			dump_keys(out, k->sub, p);
			free(p);
		}
	}
}

void config_dump_keys(FILE *out)
{
	dump_keys(out, &top_sec, "");
}

const char *config_proxy_protocol_name(int v)
{
	return v >= 0 && v < (int)ARRAY_SIZE(proxy_protocol_names) - 1 ? proxy_protocol_names[v]
								       : "?";
}
