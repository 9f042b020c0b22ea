/*
 * Unit tests of the configuration loader.
 *
 * Data-driven part: every file in configs/bad/ carries "# expect: L:C: text"
 * lines; loading it must fail with exactly those errors (all of them, in
 * order, each as FILE:L:C: ...text...).  Every file in configs/good/ must load.
 */
#include "auto-config.h"

#include "cfgload.h"
#include "config.h"
#include "tap.h"
#include "util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static const char *srcdir(void)
{
	const char *d = getenv("LTCP_SRCDIR");
	return d ? d : ".";
}

static struct config *load_text(const char *text, struct cfg_diag *d)
{
	memset(d, 0, sizeof(*d));
	return config_load_buffer("t.yml", "/etc/l5d", text, strlen(text), d);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t list_dir(const char *dir, char ***out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".yml") || strstr(de->d_name, ".json")) {
			v = xrealloc(v, (n + 1) * sizeof(*v));
			v[n++] = xasprintf("%s/%s", dir, de->d_name);
		}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_str);
	*out = v;
	return n;
}

static void check_bad_file(const char *path)
{
	size_t len;
	char *text = read_file(path, 1 << 20, &len);
	struct cfg_diag d = { 0 };
	struct config *cfg;
	size_t nexp = 0;
	bool all = true;

	if (!ok(text != NULL, "read %s", path))
		return;
	cfg = config_load(path, &d);
	for (char *line = strstr(text, "# expect: "); line; line = strstr(line + 1, "# expect: ")) {
		char *end = strchr(line, '\n');
		char *want =
			strndup(line + 10, end ? (size_t)(end - line - 10) : strlen(line + 10));
		char *full = xasprintf("%s:%s", path, want);
		char *colon = strchr(want, ' ');
		/* "L:C: text": position must match exactly, text as a substring. */
		bool found = false;
		if (nexp < d.n) {
			size_t poslen = colon ? (size_t)(colon - want) : strlen(want);
			char *pos = xasprintf("%s:%.*s", path, (int)poslen, want);
			found = strncmp(d.msgs[nexp], pos, strlen(pos)) == 0 &&
				(!colon || strstr(d.msgs[nexp], colon + 1));
			free(pos);
		}
		if (!found) {
			diag("want: %s", full);
			diag("got:  %s", nexp < d.n ? d.msgs[nexp] : "(nothing)");
			all = false;
		}
		nexp++;
		free(full);
		free(want);
	}
	ok(cfg == NULL && all && nexp == d.n && nexp > 0, "%s fails with its %zu expected error(s)",
	   strrchr(path, '/') + 1, nexp);
	if (nexp != d.n)
		for (size_t i = 0; i < d.n; i++)
			diag("error %zu: %s", i, d.msgs[i]);
	config_unref(cfg);
	cfg_diag_clear(&d);
	free(text);
}

static void check_good_file(const char *path)
{
	struct cfg_diag d = { 0 };
	struct config *cfg = config_load(path, &d);

	ok(cfg != NULL, "%s loads", strrchr(path, '/') + 1);
	for (size_t i = 0; i < d.n; i++)
		diag("%s", d.msgs[i]);
	config_unref(cfg);
	cfg_diag_clear(&d);
}

static void test_files(void)
{
	const char *kinds[] = { "bad", "good" };

	for (int k = 0; k < 2; k++) {
		char *dir = xasprintf("%s/tests/unit/configs/%s", srcdir(), kinds[k]);
		char **files = NULL;
		size_t n = list_dir(dir, &files);
		ok(n > 0, "configs/%s holds test files", kinds[k]);
		for (size_t i = 0; i < n; i++) {
			if (k == 0)
				check_bad_file(files[i]);
			else
				check_good_file(files[i]);
			free(files[i]);
		}
		free(files);
		free(dir);
	}
}

static const char readme_example[] =
	"proxies:\n"
	"  - servers:\n"
	"      - addr: 127.0.0.1:7474\n"
	"      - addr: 0.0.0.0:7575\n"
	"        tls:\n"
	"          private_key_path: private.pem\n"
	"          cert_paths: [cert.pem, ../eg-ca/ca/intermediate/certs/ca-chain.cert.pem]\n"
	"    namerd:\n"
	"      addr: 127.0.0.1:4180\n"
	"      path: /svc/google\n"
	"    client:\n"
	"      tls:\n"
	"        name: \"www.google.com\"\n"
	"        trust_cert_paths: [../eg-ca/ca/intermediate/certs/ca-chain.cert.pem, "
	"/usr/local/etc/openssl/cert.pem]\n";

static void test_readme_example(void)
{
	struct cfg_diag d;
	struct config *cfg = load_text(readme_example, &d);
	const struct cfg_proxy *p;
	const struct cfg_server *s;

	if (!ok(cfg != NULL, "the original README example loads")) {
		for (size_t i = 0; i < d.n; i++)
			diag("%s", d.msgs[i]);
		cfg_diag_clear(&d);
		return;
	}
	p = cfg->proxies.v;
	s = p->servers.v;
	ok(cfg->proxies.n == 1 && strcmp(p->label, "proxy0") == 0, "one proxy, labelled proxy0");
	ok(p->servers.n == 2 && strcmp(s[0].addr.hp.host, "127.0.0.1") == 0 &&
		   s[0].addr.hp.port == 7474 && !s[0].tls,
	   "plain server 127.0.0.1:7474");
	ok(s[1].tls && strcmp(s[1].tls->private_key_path, "/etc/l5d/private.pem") == 0 &&
		   s[1].tls->cert_paths.n == 2 &&
		   strcmp(s[1].tls->cert_paths.v[1],
			  "/etc/l5d/../eg-ca/ca/intermediate/certs/ca-chain.cert.pem") == 0,
	   "TLS server paths resolve against the config directory");
	ok(p->namerd && p->namerd->addr.hp.port == 4180 &&
		   strcmp(p->namerd->path, "/svc/google") == 0 &&
		   strcmp(p->namerd->namespace, "default") == 0 && p->namerd->interval_secs == 5 &&
		   p->namerd->mode == NAMERD_WATCH,
	   "namerd section with defaults");
	ok(p->client.tls && strcmp(p->client.tls->name, "www.google.com") == 0 &&
		   p->client.tls->trust_cert_paths.n == 2 &&
		   strcmp(p->client.tls->trust_cert_paths.v[1],
			  "/usr/local/etc/openssl/cert.pem") == 0,
	   "client TLS name and trust paths (absolute paths kept)");
	ok(p->client.connect_timeout_ms == 1000 && p->client.retries == 2 &&
		   p->failure_accrual.consecutive_failures == 5 && p->max_connections == 0,
	   "client and failure accrual defaults");
	ok(cfg->buffer_size == 16384 && cfg->relay_threads == 128 && cfg->park_idle_ms == 1000 &&
		   strcmp(cfg->admin.addr.text, "127.0.0.1:9989") == 0 &&
		   cfg->admin.grace_secs == 10,
	   "top-level defaults");
	config_unref(cfg);
	cfg_diag_clear(&d);
}

static void test_json_and_extensions(void)
{
	static const char json[] =
		"{\"proxies\": [{\"label\": \"web\", \"servers\": [{\"addr\": \"[::1]:8080\"}],"
		" \"endpoints\": [{\"addr\": \"127.0.0.1:9000\", \"weight\": 3},"
		" {\"addr\": \"localhost:9001\"}], \"max_connections\": 10}],"
		" \"buffer_size\": 65536, \"relay_threads\": 8}";
	struct cfg_diag d;
	struct config *cfg = load_text(json, &d);
	const struct cfg_proxy *p = cfg ? cfg->proxies.v : NULL;
	const struct cfg_endpoint *e = p ? p->endpoints.v : NULL;

	ok(cfg && strcmp(p->label, "web") == 0 && p->endpoints.n == 2 && e[0].weight == 3.0 &&
		   e[1].weight == 1.0 && p->max_connections == 10 && cfg->buffer_size == 65536 &&
		   cfg->relay_threads == 8,
	   "a JSON configuration with static endpoints loads");
	config_unref(cfg);
	cfg_diag_clear(&d);
}

static void test_refcount(void)
{
	struct cfg_diag d;
	struct config *cfg = load_text(readme_example, &d);

	config_ref(cfg);
	config_unref(cfg);
	ok(atomic_load(&cfg->refs) == 1, "config references count up and down");
	config_unref(cfg);
	cfg_diag_clear(&d);
}

static void note_change(const char *key, void *arg)
{
	char *buf = arg;
	strcat(buf, key);
	strcat(buf, " ");
}

static void test_static_changes(void)
{
	struct cfg_diag d1, d2;
	struct config *a =
		load_text("proxies: [{servers: [{addr: '127.0.0.1:1'}], endpoints: []}]\n"
			  "relay_threads: 4\n",
			  &d1);
	struct config *b =
		load_text("proxies: [{servers: [{addr: '127.0.0.1:2'}], endpoints: []}]\n"
			  "relay_threads: 8\nadmin: {addr: '127.0.0.1:1'}\n",
			  &d2);
	char buf[256] = "";

	if (a && b)
		config_changed_static(a, b, note_change, buf);
	ok(strcmp(buf, "admin.addr relay_threads ") == 0,
	   "reload reports keys that need a restart (%s)", buf);
	config_unref(a);
	config_unref(b);
	cfg_diag_clear(&d1);
	cfg_diag_clear(&d2);
}

/* Every key type, each F_STATIC: the walker's comparison must see a change
 * in any of them (no key of the real schema is a bool, double or enum and
 * static, so these tables stand in). */
struct t_item {
	struct cfg_mark mark;
	char *name;
	int64_t n;
};

struct t_all {
	struct cfg_mark mark;
	char *str, *path;
	int64_t i;
	double d;
	bool b;
	int e;
	struct cfg_hostport hp;
	struct cfg_strlist sl, pl;
	struct t_item sec, *opt;
	struct cfg_list list, map;
};

static const char *const t_enum_names[] = { "one", "two", NULL };
static const struct cfg_key t_item_keys[] = {
	INT(struct t_item, n, "0", 0, 10),
	{ 0 },
};
CFG_KEYS_FIT(t_item_keys);
static const struct cfg_section t_item_sec = { .name = "item",
					       .keys = t_item_keys,
					       .size = sizeof(struct t_item),
					       .name_off = offsetof(struct t_item, name) };
#define T_KEY(F, T, ...) KEY(struct t_all, F, T, .flags = F_STATIC, __VA_ARGS__)
static const struct cfg_key t_all_keys[] = {
	T_KEY(str, T_STR),
	T_KEY(path, T_PATH),
	T_KEY(i, T_INT),
	T_KEY(d, T_DOUBLE),
	T_KEY(b, T_BOOL),
	T_KEY(e, T_ENUM, .enums = t_enum_names),
	T_KEY(hp, T_HOSTPORT),
	T_KEY(sl, T_STRLIST),
	T_KEY(pl, T_PATHLIST),
	T_KEY(sec, T_SECTION, .sub = &t_item_sec),
	T_KEY(opt, T_OPTSECTION, .sub = &t_item_sec),
	T_KEY(list, T_LIST, .sub = &t_item_sec),
	T_KEY(map, T_MAP, .sub = &t_item_sec),
	{ 0 },
};
CFG_KEYS_FIT(t_all_keys);
static const struct cfg_section t_all_sec = { "all", t_all_keys, sizeof(struct t_all), NULL };

static char t_x[] = "x", t_x2[] = "x", t_y[] = "y";
static char *t_xs[] = { t_x }, *t_x2s[] = { t_x2 }, *t_ys[] = { t_y };
static struct t_item t_one = { .name = t_x, .n = 1 }, t_one2 = { .name = t_x2, .n = 1 },
		     t_two = { .name = t_x, .n = 2 }, t_named_y = { .name = t_y, .n = 1 };

static struct t_all t_all_value(char *s, char **list, struct t_item *item)
{
	return (struct t_all){ .str = s,
			       .path = s,
			       .i = 1,
			       .d = 1.5,
			       .b = true,
			       .e = 1,
			       .hp = { .text = s },
			       .sl = { 1, list },
			       .pl = { 1, list },
			       .sec = { .n = 1 },
			       .opt = item,
			       .list = { 1, item },
			       .map = { 1, item } };
}

static bool t_reports(const struct t_all *a, const struct t_all *b, const char *want)
{
	char buf[256] = "";

	cfgload_changed_static(&t_all_sec, a, b, "", note_change, buf);
	if (strcmp(buf, want) != 0)
		diag("reported '%s', want '%s'", buf, want);
	return strcmp(buf, want) == 0;
}

static void test_static_scalar_types(void)
{
	struct t_all a = t_all_value(t_x, t_xs, &t_one), b = t_all_value(t_x2, t_x2s, &t_one2);

	b.mark.line = b.sec.mark.line = 9;
	ok(t_reports(&a, &b, ""), "equal values (other copies, other marks) are not a change");
	b = a, b.str = t_y;
	ok(t_reports(&a, &b, "str "), "a changed static string key is reported");
	b = a, b.path = NULL;
	ok(t_reports(&a, &b, "path "), "a static path key that is gone is reported");
	b = a, b.i = 2;
	ok(t_reports(&a, &b, "i "), "a changed static integer key is reported");
	b = a, b.d = 2.5;
	ok(t_reports(&a, &b, "d "), "a changed static double key is reported");
	b = a, b.b = false;
	ok(t_reports(&a, &b, "b "), "a changed static bool key is reported");
	b = a, b.e = 0;
	ok(t_reports(&a, &b, "e "), "a changed static enum key is reported");
	b = a, b.hp.text = t_y;
	ok(t_reports(&a, &b, "hp "), "a changed static host:port key is reported");
}

static void test_static_compound_types(void)
{
	struct t_all a = t_all_value(t_x, t_xs, &t_one), b;

	b = a, b.sl.v = t_ys;
	ok(t_reports(&a, &b, "sl "), "a changed static string list is reported");
	b = a, b.pl.n = 0;
	ok(t_reports(&a, &b, "pl "), "a shorter static path list is reported");
	b = a, b.sec.n = 2;
	ok(t_reports(&a, &b, "sec "), "a change inside a static section is reported");
	b = a, b.opt = NULL;
	ok(t_reports(&a, &b, "opt "), "a static optional section that is gone is reported");
	b = a, b.opt = &t_two;
	ok(t_reports(&a, &b, "opt "), "a change inside a static optional section is reported");
	b = a, b.list.v = &t_two;
	ok(t_reports(&a, &b, "list "), "a changed item of a static list is reported");
	b = a, b.map.v = &t_named_y;
	ok(t_reports(&a, &b, "map "), "a renamed item of a static mapping is reported");
}

/* ------------------------------------------------------------------ linkerd-tcp 0.1.x */

/* reference/linkerd-tcp.md §3.10: the full 0.1.1 example, every key. */
static const char compat_example[] =
	"bufferSizeBytes: 16384\n"
	"admin:\n"
	"  ip: 127.0.0.1\n"
	"  port: 9989\n"
	"  metricsIntervalSecs: 10\n"
	"  graceSecs: 10\n"
	"routers:\n"
	"  - label: edge\n"
	"    interpreter:\n"
	"      kind: io.l5d.namerd.http\n"
	"      baseUrl: http://127.0.0.1:4180\n"
	"      namespace: default\n"
	"      periodSecs: 20\n"
	"    servers:\n"
	"      - port: 7474\n"
	"        ip: 0.0.0.0\n"
	"        dstName: /svc/redis\n"
	"        connectTimeoutMs: 500\n"
	"        connectionLifetimeSecs: 300\n"
	"        maxConcurrency: 10000\n"
	"      - port: 7575\n"
	"        ip: 0.0.0.0\n"
	"        dstName: /svc/web\n"
	"        connectTimeoutMs: 1000\n"
	"        tls:\n"
	"          alpnProtocols: [h2, http/1.1]\n"
	"          defaultIdentity:\n"
	"            privateKey: /etc/l5d-tcp/default.key.pem\n"
	"            certs: [/etc/l5d-tcp/default.crt.pem, /etc/l5d-tcp/ca-chain.pem]\n"
	"          identities:\n"
	"            web.example.com:\n"
	"              privateKey: web.key.pem\n"
	"              certs: [/etc/l5d-tcp/web.crt.pem, /etc/l5d-tcp/ca-chain.pem]\n"
	"    client:\n"
	"      kind: io.l5d.global\n"
	"      connectTimeoutMs: 300\n"
	"      maxWaiters: 1000\n"
	"      minConnections: 2\n"
	"      failFast:\n"
	"        maxConsecutiveFailures: 5\n"
	"        failurePenaltySecs: 60\n"
	"      tls:\n"
	"        dnsName: backend.internal.example.com\n"
	"        trustCerts: [/etc/l5d-tcp/backend-ca.pem]\n"
	"  - label: partners\n"
	"    interpreter: {kind: io.l5d.namerd.http, baseUrl: http://namerd:4180, namespace: "
	"partners, "
	"periodSecs: 30}\n"
	"    servers:\n"
	"      - {port: 7676, dstName: /svc/partner-a}\n"
	"    client:\n"
	"      kind: io.l5d.static\n"
	"      configs:\n"
	"        - prefix: /svc/partner-a\n"
	"          connectTimeoutMs: 400\n"
	"          tls: {dnsName: a.partner.example, trustCerts: "
	"[/etc/ssl/certs/ca-certificates.crt]}\n"
	"          minConnections: 5\n";

static struct config *load_compat(const char *text, struct cfg_diag *d, const char *what)
{
	struct config *cfg = load_text(text, d);

	if (!ok(cfg != NULL, "%s loads", what))
		for (size_t i = 0; i < d->n; i++)
			diag("%s", d->msgs[i]);
	return cfg;
}

static const struct cfg_proxy *proxy_by_label(const struct config *cfg, const char *label)
{
	const struct cfg_proxy *p = cfg->proxies.v;

	for (size_t i = 0; i < cfg->proxies.n; i++)
		if (strcmp(p[i].label, label) == 0)
			return &p[i];
	diag("no proxy labelled %s", label);
	return NULL;
}

static bool str_is(const char *s, const char *want)
{
	return s && strcmp(s, want) == 0;
}

static bool namerd_is(const struct cfg_proxy *p, const char *url, const char *ns, const char *path,
		      int64_t interval)
{
	const struct cfg_namerd *n = p ? p->namerd : NULL;

	return n && !n->addr.text && str_is(n->url, url) && str_is(n->namespace, ns) &&
	       str_is(n->path, path) && n->interval_secs == interval && n->mode == NAMERD_POLL &&
	       n->timeout_ms == 5000 && !p->has_endpoints;
}

static void test_compat_edge(const struct config *cfg)
{
	const struct cfg_proxy *redis = proxy_by_label(cfg, "edge:/svc/redis");
	const struct cfg_proxy *web = proxy_by_label(cfg, "edge:/svc/web");
	const struct cfg_server *s;
	const struct cfg_identity *id;

	if (!ok(redis && web,
		"router edge with two dstNames gives edge:/svc/redis and edge:/svc/web"))
		return;
	s = redis->servers.v;
	ok(redis->servers.n == 1 && str_is(s->addr.text, "0.0.0.0:7474") && !s->tls &&
		   s->connect_timeout_ms == 500 && s->connection_lifetime_secs == 300 &&
		   redis->max_connections == 10000,
	   "plain listener: addr, connectTimeoutMs, connectionLifetimeSecs, maxConcurrency");
	ok(namerd_is(redis, "http://127.0.0.1:4180", "default", "/svc/redis", 20) &&
		   namerd_is(web, "http://127.0.0.1:4180", "default", "/svc/web", 20),
	   "namerd: baseUrl, namespace, periodSecs, dstName as path, poll mode, a request timeout");
	s = web->servers.v;
	ok(web->servers.n == 1 && str_is(s->addr.text, "0.0.0.0:7575") &&
		   s->connect_timeout_ms == 1000 && s->connection_lifetime_secs == 0 &&
		   web->max_connections == 100000,
	   "TLS listener: addr, connectTimeoutMs; maxConcurrency takes the original default");
	if (!ok(s->tls != NULL, "the TLS listener terminates TLS"))
		return;
	id = s->tls->identities.v;
	ok(str_is(s->tls->private_key_path, "/etc/l5d-tcp/default.key.pem") &&
		   s->tls->cert_paths.n == 2 &&
		   str_is(s->tls->cert_paths.v[1], "/etc/l5d-tcp/ca-chain.pem") &&
		   s->tls->alpn_protocols.n == 2 && str_is(s->tls->alpn_protocols.v[1], "http/1.1"),
	   "defaultIdentity becomes the default key and chain; alpnProtocols kept");
	ok(s->tls->identities.n == 1 && str_is(id->server_name, "web.example.com") &&
		   str_is(id->private_key_path, "/etc/l5d/web.key.pem") && id->cert_paths.n == 2,
	   "identities become SNI identities (relative paths resolved)");
	ok(redis->client.connect_timeout_ms == 300 && redis->client.tls &&
		   str_is(redis->client.tls->name, "backend.internal.example.com") &&
		   redis->client.tls->trust_cert_paths.n == 1 &&
		   str_is(redis->client.tls->trust_cert_paths.v[0],
			  "/etc/l5d-tcp/backend-ca.pem") &&
		   web->client.tls && str_is(web->client.tls->name, "backend.internal.example.com"),
	   "io.l5d.global client: connectTimeoutMs, tls.dnsName, tls.trustCerts for every dstName");
	ok(redis->failure_accrual.consecutive_failures == 5 &&
		   redis->failure_accrual.backoff_min_ms == 60000 &&
		   redis->failure_accrual.backoff_max_ms == 60000 && redis->client.retries == 2,
	   "failFast: 5 failures, a fixed 60 s penalty");
}

static void test_compat_example(void)
{
	struct cfg_diag d;
	struct config *cfg = load_compat(compat_example, &d, "the linkerd-tcp 0.1.1 example");
	const struct cfg_proxy *p;
	const struct cfg_server *s;

	if (!cfg)
		goto out;
	ok(cfg->proxies.n == 3, "three proxies (%zu)", cfg->proxies.n);
	ok(str_is(cfg->admin.addr.text, "127.0.0.1:9989") && cfg->admin.grace_secs == 10 &&
		   cfg->buffer_size == 16384 && cfg->relay_threads == 128,
	   "admin ip/port, graceSecs, bufferSizeBytes");
	if (!ok(d.nwarn == 4 && strstr(d.warns[0], "t.yml:5:3: metricsIntervalSecs is ignored") &&
			strstr(d.warns[1], "t.yml:37:7: maxWaiters is ignored") &&
			strstr(d.warns[2], "t.yml:38:7: minConnections is ignored") &&
			strstr(d.warns[3], "t.yml:55:11: minConnections is ignored"),
		"metricsIntervalSecs, maxWaiters and minConnections warn where they are"))
		for (size_t i = 0; i < d.nwarn; i++)
			diag("warning: %s", d.warns[i]);
	test_compat_edge(cfg);
	p = proxy_by_label(cfg, "partners");
	s = p ? p->servers.v : NULL;
	ok(p && p->servers.n == 1 && str_is(s->addr.text, "127.0.0.1:7676") &&
		   s->connect_timeout_ms == 10000 &&
		   namerd_is(p, "http://namerd:4180", "partners", "/svc/partner-a", 30),
	   "a router with one dstName keeps its label; ip defaults to 127.0.0.1");
	ok(p && p->client.connect_timeout_ms == 400 && p->client.tls &&
		   str_is(p->client.tls->name, "a.partner.example") &&
		   p->failure_accrual.backoff_min_ms == 60000,
	   "io.l5d.static client: the exact-prefix entry applies");
out:
	config_unref(cfg);
	cfg_diag_clear(&d);
}

/* Prefix matching (reference §5.5): a real prefix matches at a label
 * boundary, a longer "prefix" does not (the original panicked), and every
 * field of every matching entry is merged in list order. */
static const char compat_prefixes[] =
	"routers:\n"
	"  - label: r\n"
	"    interpreter: {kind: io.l5d.namerd.http, baseUrl: 'http://127.0.0.1:4180/',\n"
	"                  namespace: ns, periodSecs: 5}\n"
	"    servers:\n"
	"      - {port: 1, dstName: /svc/web}\n"
	"      - {port: 2, dstName: /svc/webx}\n"
	"      - {port: 3, dstName: /svc}\n"
	"      - {port: 4, dstName: /other}\n"
	"      - {port: 5, ip: '::1', dstName: /svc/web, maxConcurrency: 7}\n"
	"    client:\n"
	"      kind: io.l5d.static\n"
	"      configs:\n"
	"        - prefix: /svc\n"
	"          connectTimeoutMs: 111\n"
	"          failFast: {maxConsecutiveFailures: 7}\n"
	"        - prefix: /svc/web/x\n"
	"          connectTimeoutMs: 999\n"
	"        - prefix: /svc/web\n"
	"          tls: {dnsName: web.example}\n"
	"          failFast: {failurePenaltySecs: 3}\n"
	"        - prefix: /\n"
	"          maxWaiters: 5\n";

static bool client_is(const struct cfg_proxy *p, int64_t timeout, const char *tls_name,
		      int64_t failures, int64_t penalty_ms)
{
	return p && p->client.connect_timeout_ms == timeout &&
	       (tls_name ? p->client.tls && str_is(p->client.tls->name, tls_name)
			 : !p->client.tls) &&
	       p->failure_accrual.consecutive_failures == failures &&
	       p->failure_accrual.backoff_min_ms == penalty_ms &&
	       p->failure_accrual.backoff_max_ms == penalty_ms;
}

static void test_compat_prefixes(void)
{
	struct cfg_diag d;
	struct config *cfg = load_compat(compat_prefixes, &d, "static client prefixes");
	const struct cfg_proxy *web;

	if (!cfg)
		goto out;
	web = proxy_by_label(cfg, "r:/svc/web");
	ok(cfg->proxies.n == 4 && web && web->servers.n == 2 &&
		   str_is(((struct cfg_server *)web->servers.v)[1].addr.text, "[::1]:5") &&
		   web->max_connections == 100007,
	   "two listeners of one dstName make one proxy (IPv6 ip bracketed, maxConcurrency "
	   "summed)");
	ok(client_is(web, 111, "web.example", 7, 3000),
	   "/svc/web: /svc and /svc/web merge field by field; /svc/web/x does not match");
	ok(client_is(proxy_by_label(cfg, "r:/svc/webx"), 111, NULL, 7, 60000),
	   "/svc/webx: /svc matches, /svc/web does not (label boundary)");
	ok(client_is(proxy_by_label(cfg, "r:/svc"), 111, NULL, 7, 60000),
	   "/svc: the exact prefix matches");
	ok(client_is(proxy_by_label(cfg, "r:/other"), 1000, NULL, 5, 60000),
	   "/other: only / matches; defaults otherwise");
	ok(d.nwarn == 1 && strstr(d.warns[0], "t.yml:23:11: maxWaiters is ignored"),
	   "a static entry's maxWaiters warns");
out:
	config_unref(cfg);
	cfg_diag_clear(&d);
}

static void test_compat_static_interpreter(void)
{
	static const char json[] =
		"{\"routers\": [{\"label\": \"s\", \"interpreter\": {\"kind\": \"io.l5d.static\","
		" \"addrs\": {\"/svc/a\": [{\"ip\": \"127.0.0.1\", \"port\": 9000, \"weight\": 3},"
		" {\"ip\": \"::1\", \"port\": 9001}], \"/svc/c\": []}},"
		" \"servers\": [{\"port\": 0, \"dstName\": \"/svc/a\"}, {\"port\": 0, \"dstName\":"
		" \"/svc/b\"}], \"client\": {\"failFast\": {\"failurePenaltySecs\": 0}}}],"
		" \"admin\": {\"ip\": \"::1\", \"port\": 0}}";
	struct cfg_diag d;
	struct config *cfg = load_compat(json, &d, "a JSON io.l5d.static interpreter");
	const struct cfg_proxy *a, *b;
	const struct cfg_endpoint *e;

	if (!cfg)
		goto out;
	a = proxy_by_label(cfg, "s:/svc/a");
	b = proxy_by_label(cfg, "s:/svc/b");
	e = a ? a->endpoints.v : NULL;
	ok(a && !a->namerd && a->has_endpoints && a->endpoints.n == 2 &&
		   str_is(e[0].addr.text, "127.0.0.1:9000") && e[0].weight == 3.0 &&
		   str_is(e[1].addr.text, "[::1]:9001") && e[1].weight == 1.0,
	   "addrs of a dstName become its static endpoints");
	ok(b && b->has_endpoints && b->endpoints.n == 0 && d.nwarn == 1 &&
		   strstr(d.warns[0], "addrs has no entry for /svc/b"),
	   "a dstName without addrs gets no endpoints, with a warning");
	ok(a && a->failure_accrual.backoff_min_ms == 1 && str_is(cfg->admin.addr.text, "[::1]:0"),
	   "failurePenaltySecs 0 is the shortest backoff; an IPv6 admin ip");
out:
	config_unref(cfg);
	cfg_diag_clear(&d);
}

static char *dump_to_string(void (*dump)(FILE *))
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	dump(mem);
	fclose(mem);
	return text;
}

/* Where the dotted key k is missing: doc/configuration.md (as `k`) and the
 * man page (as ".B k"). */
static unsigned key_undocumented(const char *k, const char *doc, const char *man)
{
	char *quoted = xasprintf("`%s`", k), *man_entry = xasprintf("\n.B %s\n", k);
	unsigned missing = 0;

	if (!strstr(doc, quoted)) {
		diag("%s is not in doc/configuration.md", quoted);
		missing++;
	}
	if (!strstr(man, man_entry)) {
		diag("%s is not in doc/linkerd-tcp.yml.5 (as \".B %s\")", k, k);
		missing++;
	}
	free(quoted);
	free(man_entry);
	return missing;
}

/* The linkerd-tcp 0.1.x keys are documented in their own sections: each as
 * `key` in doc/configuration.md and as ".B key" in linkerd-tcp.yml(5). */
static void test_compat_keys_documented(const char *doc, const char *man)
{
	char *keys = dump_to_string(config_dump_compat_keys);
	unsigned n = 0, missing = 0;

	for (char *k = strtok(keys, "\n"); k; k = strtok(NULL, "\n"), n++)
		missing += key_undocumented(k, doc, man);
	ok(n > 40 && missing == 0,
	   "all %u linkerd-tcp 0.1.x keys are documented, in linkerd-tcp.yml(5) too", n);
	free(keys);
}

/* The man page documents each key as ".TP\n.B key\n": counts those that
 * name no key of either schema (keys and compat: one key a line). */
static unsigned stale_man_keys(const char *man, const char *keys, const char *compat)
{
	char *all = xasprintf("\n%s%s", keys, compat);
	unsigned unknown = 0;

	for (const char *m = strstr(man, "\n.TP\n.B "); m; m = strstr(m + 1, "\n.TP\n.B ")) {
		char *key = xasprintf("\n%.*s\n", (int)strcspn(m + 8, "\n"), m + 8);
		if (!strstr(all, key)) {
			diag("doc/linkerd-tcp.yml.5 documents %.*s, which is not a key",
			     (int)strlen(key) - 2, key + 1);
			unknown++;
		}
		free(key);
	}
	free(all);
	return unknown;
}

/* Where the dotted key k is missing: the reference and the man page (see
 * key_undocumented), and the sample (as "name:", commented or not). */
static unsigned key_missing(const char *k, const char *doc, const char *man, const char *sample)
{
	const char *leaf = strrchr(k, '.') ? strrchr(k, '.') + 1 : k;
	char *entry = xasprintf("\n%.*s:", (int)strcspn(leaf, "["), leaf);
	unsigned missing = key_undocumented(k, doc, man);

	entry[0] = ' '; /* nested keys follow indentation or "# " */
	bool in_sample = strstr(sample, entry);
	entry[0] = '\n';
	if (!in_sample && !strstr(sample, entry)) {
		diag("%s is not in examples/linkerd-tcp.yml", entry);
		missing++;
	}
	free(entry);
	return missing;
}

/* Every key of the table appears in doc/configuration.md (as its dotted
 * path), in the man page and in the sample configuration. */
static void test_keys_documented(void)
{
	char *keys = dump_to_string(config_dump_keys), *compat = NULL;
	char *docpath = xasprintf("%s/doc/configuration.md", srcdir());
	char *samplepath = xasprintf("%s/examples/linkerd-tcp.yml", srcdir());
	char *manpath = xasprintf("%s/doc/linkerd-tcp.yml.5", srcdir());
	char *doc = read_file(docpath, 1 << 20, NULL),
	     *sample = read_file(samplepath, 1 << 20, NULL);
	char *man = read_file(manpath, 1 << 20, NULL);
	unsigned n = 0, missing = 0, unknown;

	if (!ok(doc && sample && man,
		"read the configuration reference, the man page and the sample"))
		goto out;
	compat = dump_to_string(config_dump_compat_keys);
	unknown = stale_man_keys(man, keys, compat);
	for (char *k = strtok(keys, "\n"); k; k = strtok(NULL, "\n"), n++)
		missing += key_missing(k, doc, man, sample);
	ok(n > 40 && missing == 0,
	   "all %u configuration keys are documented, in linkerd-tcp.yml(5) and in the sample", n);
	ok(unknown == 0, "linkerd-tcp.yml(5) documents no key that does not exist");
	test_compat_keys_documented(doc, man);
out:
	free(compat);
	free(man);
	free(manpath);
	free(doc);
	free(sample);
	free(keys);
	free(docpath);
	free(samplepath);
}

int main(void)
{
	test_readme_example();
	test_json_and_extensions();
	test_refcount();
	test_static_changes();
	test_static_scalar_types();
	test_static_compound_types();
	test_compat_example();
	test_compat_prefixes();
	test_compat_static_interpreter();
	test_files();
	test_keys_documented();
	return tap_done();
}
