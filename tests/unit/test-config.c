/*
 * Unit tests of the configuration loader.
 *
 * Data-driven part: every file in configs/bad/ carries "# expect: L:C: text"
 * lines; loading it must fail with exactly those errors (all of them, in
 * order, each as FILE:L:C: ...text...).  Every file in configs/good/ must load.
 */
#include "auto-config.h"

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
	ok(cfg->buffer_size == 16384 && cfg->relay_threads == 1024 &&
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

/* Every key of the table appears in doc/configuration.md (as its dotted
 * path) and in the sample configuration (as "name:", commented or not). */
static void test_keys_documented(void)
{
	char *doc = NULL, *sample = NULL, *keys = NULL, *man = NULL, *all = NULL;
	size_t keylen = 0;
	FILE *mem = open_memstream(&keys, &keylen);
	char *docpath = xasprintf("%s/doc/configuration.md", srcdir());
	char *samplepath = xasprintf("%s/examples/linkerd-tcp.yml", srcdir());
	char *manpath = xasprintf("%s/doc/linkerd-tcp.yml.5", srcdir());
	unsigned n = 0, missing = 0, unknown = 0;

	config_dump_keys(mem);
	fclose(mem);
	doc = read_file(docpath, 1 << 20, NULL);
	sample = read_file(samplepath, 1 << 20, NULL);
	man = read_file(manpath, 1 << 20, NULL);
	if (!ok(doc && sample && man,
		"read the configuration reference, the man page and the sample"))
		goto out;
	/* The man page documents each key as ".TP\n.B key\n": none of them stale. */
	all = xasprintf("\n%s", keys);
	for (const char *m = strstr(man, "\n.TP\n.B "); m; m = strstr(m + 1, "\n.TP\n.B ")) {
		char *key = xasprintf("\n%.*s\n", (int)strcspn(m + 8, "\n"), m + 8);
		if (!strstr(all, key)) {
			diag("doc/linkerd-tcp.yml.5 documents %.*s, which is not a key",
			     (int)strlen(key) - 2, key + 1);
			unknown++;
		}
		free(key);
	}
	for (char *k = strtok(keys, "\n"); k; k = strtok(NULL, "\n"), n++) {
		char *quoted = xasprintf("`%s`", k);
		const char *leaf = strrchr(k, '.') ? strrchr(k, '.') + 1 : k;
		char *entry = xasprintf("\n%.*s:", (int)strcspn(leaf, "["), leaf);
		if (!strstr(doc, quoted)) {
			diag("%s is not in doc/configuration.md", quoted);
			missing++;
		}
		char *man_entry = xasprintf("\n.B %s\n", k);
		if (!strstr(man, man_entry)) {
			diag("%s is not in doc/linkerd-tcp.yml.5 (as \".B %s\")", k, k);
			missing++;
		}
		free(man_entry);
		entry[0] = ' '; /* nested keys follow indentation or "# " */
		bool in_sample = strstr(sample, entry);
		entry[0] = '\n';
		if (!in_sample && !strstr(sample, entry)) {
			diag("%s is not in examples/linkerd-tcp.yml", entry);
			missing++;
		}
		free(quoted);
		free(entry);
	}
	ok(n > 40 && missing == 0,
	   "all %u configuration keys are documented, in linkerd-tcp.yml(5) and in the sample", n);
	ok(unknown == 0, "linkerd-tcp.yml(5) documents no key that does not exist");
out:
	free(man);
	free(all);
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
	test_files();
	test_keys_documented();
	return tap_done();
}
