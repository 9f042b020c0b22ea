/*
 * config: this version's schema (its key tables and their checks) and the
 * public API of config.h.  The generic walker is in cfgload.c, the
 * linkerd-tcp 0.1.x schema and its conversion in config_compat.c.
 */
#include "auto-config.h"

#include "config.h"
#include "config_compat.h"
#include "log.h"

#include <errno.h>
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
	{ 0 },
};
CFG_KEYS_FIT(server_keys);
const struct cfg_section config_server_sec = { "server", server_keys, sizeof(struct cfg_server),
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
