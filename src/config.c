/*
 * config: this version's schema (its key tables and their checks) and the
 * public API of config.h.  The generic walker is in cfgload.c, the
 * linkerd-tcp 0.1.x schema and its conversion in config_compat.c.
 */
#include "auto-config.h"

#include "config.h"
#include "config_compat.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CFG_MAX_BYTES (4u << 20)
/* Threads move bytes; parked connections need none (see doc/performance.md). */
#define RELAY_THREADS_DEFAULT "128"

/* ------------------------------------------------------------------ diag */

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

bool config_name_path_ok(const char *p)
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

static void check_identity(struct ctx *c, const void *obj)
{
	const struct cfg_identity *id = obj;

	if (id->cert_paths.n == 0)
		cfg_error(c, &id->mark, "identity: cert_paths must name at least one file");
}

static void check_server_tls(struct ctx *c, const void *obj)
{
	const struct cfg_server_tls *t = obj;

	if (!!t->private_key_path != (t->cert_paths.n > 0))
		cfg_error(c, &t->mark, "tls: private_key_path and cert_paths go together");
	if (!t->private_key_path && t->identities.n == 0)
		cfg_error(c, &t->mark, "tls: needs private_key_path and cert_paths, or identities");
}

static void check_namerd(struct ctx *c, const void *obj)
{
	const struct cfg_namerd *n = obj;

	if (!!n->addr.text == !!n->url)
		cfg_error(c, &n->mark, "namerd: give exactly one of addr and url");
	if (n->url && strncmp(n->url, "http://", 7) != 0 && strncmp(n->url, "https://", 8) != 0)
		cfg_error(c, &n->mark, "namerd: url must start with http:// or https://");
	if (n->path && !config_name_path_ok(n->path))
		cfg_error(c, &n->mark, "namerd: path '%s' is not a name such as /svc/web", n->path);
	if (n->namespace && (!*n->namespace || strpbrk(n->namespace, "/?#% \t")))
		cfg_error(c, &n->mark, "namerd: namespace '%s' is not a plain name", n->namespace);
}

static void check_client_tls(struct ctx *c, const void *obj)
{
	const struct cfg_client_tls *t = obj;

	if (!!t->private_key_path != (t->cert_paths.n > 0))
		cfg_error(c, &t->mark, "client tls: private_key_path and cert_paths go together");
}

static void check_accrual(struct ctx *c, const void *obj)
{
	const struct cfg_accrual *a = obj;

	if (a->backoff_min_ms > a->backoff_max_ms)
		cfg_error(c, &a->mark, "failure_accrual: backoff_min_ms is above backoff_max_ms");
}

static void check_proxy(struct ctx *c, const void *obj)
{
	const struct cfg_proxy *p = obj;

	if (p->namerd && p->has_endpoints)
		cfg_error(c, &p->mark, "proxy: give endpoints or namerd, not both");
	else if (!p->namerd && !p->has_endpoints)
		cfg_error(c, &p->mark, "proxy: needs endpoints (a static list) or namerd");
	if (p->servers.n == 0)
		cfg_error(c, &p->mark, "proxy: servers must list at least one listener");
	for (size_t i = 0; p->client.tls && i < p->servers.n; i++)
		if (((const struct cfg_server *)p->servers.v)[i].sni_passthrough)
			cfg_error(c, &p->mark,
				  "proxy: server %s passes the client's TLS through; client.tls "
				  "would wrap it again",
				  ((const struct cfg_server *)p->servers.v)[i].addr.text);
}

/* The token travels in a header: no control characters, no spaces. */
static void check_admin(struct ctx *c, const void *obj)
{
	const struct cfg_admin *a = obj;
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

/* ------------------------------------------------------------------ shared addresses */

void cfg_listen_key(const struct cfg_hostport *a, char *buf, size_t len)
{
	size_t n = 0;

	for (const char *h = a->hp.host ? a->hp.host : ""; *h && n + 8 < len; h++)
		buf[n++] = (char)tolower((unsigned char)*h);
	snprintf(buf + n, len - n, ":%u", (unsigned)a->hp.port);
}

bool cfg_server_routes_sni(const struct cfg_server *sc, bool shared)
{
	return shared || sc->server_names.n > 0 || sc->sni_passthrough;
}

bool cfg_server_defer_accept(const struct cfg_server *sc)
{
	if (sc->defer_accept != DEFER_ACCEPT_AUTO)
		return sc->defer_accept == DEFER_ACCEPT_ON;
	return sc->tls || sc->accept_proxy_protocol || cfg_server_routes_sni(sc, false);
}

/* A server name as SPEC 12 has them: a host name, or "*." and a host name. */
static bool server_name_ok(const char *s)
{
	size_t label = 0, n = 0;

	if (s[0] == '*' && s[1] == '.')
		s += 2;
	for (; *s; s++, n++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum(ch) || ch == '-' || ch == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return n > 0 && n <= 253 && label > 0;
}

static void check_server(struct ctx *c, const void *obj)
{
	const struct cfg_server *sc = obj;

	if (sc->sni_passthrough && sc->tls)
		cfg_error(
			c, &sc->mark,
			"server %s: sni_passthrough forwards TLS untouched; it cannot go with tls:",
			sc->addr.text);
	for (size_t i = 0; i < sc->server_names.n; i++)
		if (!server_name_ok(sc->server_names.v[i]))
			cfg_error(c, &sc->mark,
				  "server %s: server_names: '%s' is not a host name or *.name",
				  sc->addr.text, sc->server_names.v[i]);
}

/* One server entry of some proxy, for grouping entries by address. */
struct entry {
	char key[CFG_LISTEN_KEY_MAX];
	const struct cfg_proxy *p;
	const struct cfg_server *sc;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	return r ? r
		 : (x->sc->mark.line > y->sc->mark.line) - (x->sc->mark.line < y->sc->mark.line);
}

/* The listener options every entry of one address must agree on. */
static const char *option_differs(const struct cfg_server *a, const struct cfg_server *b)
{
	if (a->accept_proxy_protocol != b->accept_proxy_protocol)
		return "accept_proxy_protocol";
	if (a->connect_timeout_ms != b->connect_timeout_ms)
		return "connect_timeout_ms";
	if (a->idle_timeout_secs != b->idle_timeout_secs)
		return "idle_timeout_secs";
	if (a->connection_lifetime_secs != b->connection_lifetime_secs)
		return "connection_lifetime_secs";
	if (a->max_connections_per_client != b->max_connections_per_client)
		return "max_connections_per_client";
	if (cfg_server_defer_accept(a) != cfg_server_defer_accept(b))
		return "defer_accept";
	return NULL;
}

struct claim {
	char name[256];
	const struct entry *e;
};

static int claim_cmp(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	return r ? r : (x->e > y->e) - (x->e < y->e);
}

/* No SNI name is claimed twice on one address (sorted: linear in the names). */
static void check_claims(struct ctx *c, const struct entry *g, size_t n)
{
	size_t total = 0, k = 0;
	struct claim *v;

	for (size_t i = 0; i < n; i++)
		total += g[i].sc->server_names.n;
	if (total < 2)
		return;
	v = xcalloc(total, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < g[i].sc->server_names.n; j++, k++) {
			const char *s = g[i].sc->server_names.v[j];
			size_t m = 0;
			for (; s[m] && m + 1 < sizeof(v[k].name); m++)
				v[k].name[m] = (char)tolower((unsigned char)s[m]);
			v[k].e = &g[i];
		}
	}
	qsort(v, total, sizeof(*v), claim_cmp);
	for (size_t i = 1; i < total; i++)
		if (strcmp(v[i].name, v[i - 1].name) == 0)
			cfg_error(c, &v[i].e->sc->mark,
				  "server %s: server name '%s' is claimed twice (proxy '%s' and "
				  "proxy '%s')",
				  v[i].e->sc->addr.text, v[i].name, v[i - 1].e->p->label,
				  v[i].e->p->label);
	free(v);
}

/* The entries of one address (n > 1): one socket, routed by SNI. */
static void check_shared(struct ctx *c, const struct entry *g, size_t n)
{
	const struct entry *deflt = NULL;

	for (size_t i = 0; i < n; i++) {
		const struct cfg_server *sc = g[i].sc;
		const char *what = i ? option_differs(g[0].sc, sc) : NULL;
		if (i && g[i].p == g[i - 1].p)
			cfg_error(c, &sc->mark, "server %s: proxy '%s' lists this address twice",
				  sc->addr.text, g[i].p->label);
		if (what)
			cfg_error(
				c, &sc->mark,
				"server %s: %s differs from proxy '%s''s entry for this address "
				"(line %u); entries sharing an address share its listener options",
				sc->addr.text, what, g[0].p->label, g[0].sc->mark.line);
		if (!sc->tls && !sc->sni_passthrough)
			cfg_error(c, &sc->mark,
				  "server %s: this address is shared by several proxies and routed "
				  "by "
				  "TLS SNI: each entry needs tls: or sni_passthrough: true",
				  sc->addr.text);
		if (sc->server_names.n == 0 && deflt)
			cfg_error(c, &sc->mark,
				  "server %s: two defaults (no server_names) on one address: proxy "
				  "'%s' and proxy '%s'",
				  sc->addr.text, deflt->p->label, g[i].p->label);
		else if (sc->server_names.n == 0)
			deflt = &g[i];
	}
	check_claims(c, g, n);
}

static void check_addresses(struct ctx *c, const struct config *cfg)
{
	const struct cfg_proxy *p = cfg->proxies.v;
	size_t n = 0, k = 0;
	struct entry *v;

	for (size_t i = 0; i < cfg->proxies.n; i++)
		n += p[i].servers.n;
	v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < cfg->proxies.n; i++) {
		const struct cfg_server *sc = p[i].servers.v;
		for (size_t j = 0; j < p[i].servers.n; j++, k++) {
			cfg_listen_key(&sc[j].addr, v[k].key, sizeof(v[k].key));
			v[k].p = &p[i];
			v[k].sc = &sc[j];
		}
	}
	qsort(v, n, sizeof(*v), entry_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && strcmp(v[j].key, v[i].key) == 0)
			j++;
		/* Port 0 asks each entry for a port of its own: never shared. */
		if (j - i > 1 && v[i].sc->addr.hp.port != 0)
			check_shared(c, v + i, j - i);
		else
			for (size_t e = i; e < j; e++)
				check_claims(c, v + e, 1);
		i = j;
	}
	free(v);
}

static void check_top(struct ctx *c, const void *obj)
{
	const struct config *cfg = obj;
	const struct cfg_proxy *p = cfg->proxies.v;

	if (cfg->proxies.n == 0)
		cfg_error(c, &cfg->mark, "proxies must list at least one proxy");
	for (size_t i = 0; i < cfg->proxies.n; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(p[i].label, p[j].label) == 0)
				cfg_error(c, &p[i].mark, "proxy label '%s' is used twice",
					  p[i].label);
	}
	check_addresses(c, cfg);
}

/* ------------------------------------------------------------------ derived defaults */

/* A proxy without a label is named after its place in the list. */
static void fill_top(void *obj)
{
	struct config *cfg = obj;
	struct cfg_proxy *p = cfg->proxies.v;

	for (size_t i = 0; i < cfg->proxies.n; i++)
		if (!p[i].label)
			p[i].label = xasprintf("proxy%zu", i);
}

/* ------------------------------------------------------------------ tables */

static const char *const proxy_protocol_names[] = { "none", "v1", "v2", NULL };
static const char *const namerd_mode_names[] = { "watch", "poll", NULL };
static const char *const limit_policy_names[] = { "wait", "refuse", NULL };
static const char *const defer_accept_names[] = { "auto", "true", "false", NULL };

static const struct cfg_key endpoint_keys[] = {
	KEY(struct cfg_endpoint, addr, T_HOSTPORT, .flags = F_REQUIRED),
	KEY(struct cfg_endpoint, weight, T_DOUBLE, .def = "1.0", .dmin = 0, .dmax = 1e6),
	{ 0 },
};
CFG_KEYS_FIT(endpoint_keys);
const struct cfg_section config_endpoint_sec = { "endpoint", endpoint_keys,
						 sizeof(struct cfg_endpoint), NULL };

static const struct cfg_key identity_keys[] = {
	KEY(struct cfg_identity, server_name, T_STR, .flags = F_REQUIRED),
	KEY(struct cfg_identity, private_key_path, T_PATH, .flags = F_REQUIRED),
	KEY(struct cfg_identity, cert_paths, T_PATHLIST, .flags = F_REQUIRED),
	{ 0 },
};
CFG_KEYS_FIT(identity_keys);
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
CFG_KEYS_FIT(server_tls_keys);
const struct cfg_section config_server_tls_sec = { "tls", server_tls_keys,
						   sizeof(struct cfg_server_tls),
						   check_server_tls };

static const struct cfg_key server_keys[] = {
	KEY(struct cfg_server, addr, T_HOSTPORT, .flags = F_REQUIRED),
	KEY(struct cfg_server, tls, T_OPTSECTION, .sub = &config_server_tls_sec),
	INT(struct cfg_server, connect_timeout_ms, "10000", 1, MS_MAX),
	INT(struct cfg_server, idle_timeout_secs, "0", 0, SECS_MAX),
	INT(struct cfg_server, connection_lifetime_secs, "0", 0, SECS_MAX),
	KEY(struct cfg_server, proxy_protocol, T_ENUM, .def = "none",
	    .enums = proxy_protocol_names),
	KEY(struct cfg_server, accept_proxy_protocol, T_BOOL, .def = "false"),
	INT(struct cfg_server, max_connections_per_client, "0", 0, INT_MAX),
	KEY(struct cfg_server, server_names, T_STRLIST),
	KEY(struct cfg_server, sni_passthrough, T_BOOL, .def = "false"),
	KEY(struct cfg_server, defer_accept, T_ENUM, .def = "auto", .enums = defer_accept_names),
	{ 0 },
};
CFG_KEYS_FIT(server_keys);
const struct cfg_section config_server_sec = { "server", server_keys, sizeof(struct cfg_server),
					       check_server };

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
CFG_KEYS_FIT(namerd_keys);
const struct cfg_section config_namerd_sec = { "namerd", namerd_keys, sizeof(struct cfg_namerd),
					       check_namerd };

static const struct cfg_key client_tls_keys[] = {
	KEY(struct cfg_client_tls, name, T_STR, .flags = F_REQUIRED),
	KEY(struct cfg_client_tls, trust_cert_paths, T_PATHLIST),
	KEY(struct cfg_client_tls, cert_paths, T_PATHLIST),
	KEY(struct cfg_client_tls, private_key_path, T_PATH),
	KEY(struct cfg_client_tls, alpn_protocols, T_STRLIST),
	{ 0 },
};
CFG_KEYS_FIT(client_tls_keys);
const struct cfg_section config_client_tls_sec = { "tls", client_tls_keys,
						   sizeof(struct cfg_client_tls),
						   check_client_tls };

static const struct cfg_key client_keys[] = {
	INT(struct cfg_client, connect_timeout_ms, "1000", 1, MS_MAX),
	INT(struct cfg_client, retries, "2", 0, 100),
	KEY(struct cfg_client, tls, T_OPTSECTION, .sub = &config_client_tls_sec),
	{ 0 },
};
CFG_KEYS_FIT(client_keys);
static const struct cfg_section client_sec = { "client", client_keys, sizeof(struct cfg_client),
					       NULL };

static const struct cfg_key accrual_keys[] = {
	INT(struct cfg_accrual, consecutive_failures, "5", 1, 1000000),
	INT(struct cfg_accrual, backoff_min_ms, "1000", 1, MS_MAX),
	INT(struct cfg_accrual, backoff_max_ms, "60000", 1, MS_MAX),
	{ 0 },
};
CFG_KEYS_FIT(accrual_keys);
static const struct cfg_section accrual_sec = { "failure_accrual", accrual_keys,
						sizeof(struct cfg_accrual), check_accrual };

static const struct cfg_key proxy_keys[] = {
	KEY(struct cfg_proxy, label, T_STR),
	KEY(struct cfg_proxy, servers, T_LIST, .sub = &config_server_sec, .flags = F_REQUIRED),
	KEY(struct cfg_proxy, namerd, T_OPTSECTION, .sub = &config_namerd_sec),
	KEY(struct cfg_proxy, endpoints, T_LIST, .sub = &config_endpoint_sec,
	    .seen_off = offsetof(struct cfg_proxy, has_endpoints)),
	KEY(struct cfg_proxy, client, T_SECTION, .sub = &client_sec),
	INT(struct cfg_proxy, max_connections, "0", 0, INT_MAX),
	KEY(struct cfg_proxy, max_connections_policy, T_ENUM, .def = "wait",
	    .enums = limit_policy_names),
	KEY(struct cfg_proxy, failure_accrual, T_SECTION, .sub = &accrual_sec),
	{ 0 },
};
CFG_KEYS_FIT(proxy_keys);
const struct cfg_section config_proxy_sec = { "proxy", proxy_keys, sizeof(struct cfg_proxy),
					      check_proxy };

static const struct cfg_key admin_keys[] = {
	KEY(struct cfg_admin, addr, T_HOSTPORT, .def = "127.0.0.1:9989", .flags = F_STATIC),
	INT(struct cfg_admin, grace_secs, "10", 0, SECS_MAX),
	KEY(struct cfg_admin, token, T_STR),
	{ 0 },
};
CFG_KEYS_FIT(admin_keys);
static const struct cfg_section admin_sec = { "admin", admin_keys, sizeof(struct cfg_admin),
					      check_admin };

static const struct cfg_key top_keys[] = {
	KEY(struct config, proxies, T_LIST, .sub = &config_proxy_sec, .flags = F_REQUIRED),
	KEY(struct config, admin, T_SECTION, .sub = &admin_sec),
	INT(struct config, buffer_size, "16384", 1024, 16 << 20, .flags = F_STATIC),
	INT(struct config, relay_threads, RELAY_THREADS_DEFAULT, 1, 100000, .flags = F_STATIC),
	INT(struct config, park_idle_ms, "1000", 0, MS_MAX),
	KEY(struct config, user, T_STR, .flags = F_STATIC),
	KEY(struct config, group, T_STR, .flags = F_STATIC),
	KEY(struct config, access_log, T_PATH),
	{ 0 },
};
CFG_KEYS_FIT(top_keys);
static const struct cfg_section top_sec = {
	.name = "top level",
	.keys = top_keys,
	.size = sizeof(struct config),
	.check = check_top,
	.fill = fill_top,
};

/* ------------------------------------------------------------------ load */

static void load_root(struct ctx *c, yaml_node_t *root, struct config *cfg)
{
	switch (config_compat_detect(c, root)) {
	case SCHEMA_CURRENT:
		cfgload_section(c, root, &top_sec, cfg);
		break;
	case SCHEMA_C01:
		config_compat_load(c, root, cfg);
		break;
	case SCHEMA_BOTH:
		break;
	}
}

struct config *config_load_buffer(const char *name, const char *dir, const char *text, size_t len,
				  struct cfg_diag *diag)
{
	struct ctx c = { .name = name, .dir = dir, .diag = diag };
	struct config *cfg = NULL;
	yaml_node_t *root;

	if (cfgload_begin(&c, text, len) == 0) {
		cfg = xmalloc(sizeof(*cfg));
		cfgload_section_defaults(&c, &top_sec, cfg);
		if ((root = cfgload_root(&c)))
			load_root(&c, root, cfg);
	}
	cfgload_end(&c);
	if (c.errors)
		goto fail;
	cfg->path = xstrdup(name);
	atomic_init(&cfg->refs, 1);
	return cfg;
fail:
	if (cfg) {
		cfgload_section_free(&top_sec, cfg);
		free(cfg);
	}
	return NULL;
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
	cfgload_section_free(&top_sec, c);
	free(c->path);
	free(c);
}

void config_changed_static(const struct config *a, const struct config *b,
			   void (*report)(const char *key, void *arg), void *arg)
{
	cfgload_changed_static(&top_sec, a, b, "", report, arg);
}

void config_dump_keys(FILE *out)
{
	cfgload_dump_keys(out, &top_sec, "");
}

const char *config_proxy_protocol_name(int v)
{
	return v >= 0 && v < (int)ARRAY_SIZE(proxy_protocol_names) - 1 ? proxy_protocol_names[v]
								       : "?";
}
