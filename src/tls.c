#include "auto-config.h"

#include "tls.h"

#include "log.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define TLS_FILE_MAX     (1u << 20)
#define TLS_MAX_CHAIN    16
#define TLS_MAX_ALPN     16
#define DEFAULT_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* One key with its certificate chain, and the SNI name that selects it. */
struct tls_identity {
	char *server_name; /* NULL: the default identity */
	gnutls_pcert_st chain[TLS_MAX_CHAIN];
	unsigned nchain;
	gnutls_privkey_t key;
};

struct tls_creds {
	atomic_int refs;
	bool server;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t priority;
	gnutls_datum_t ticket_key; /* server: session tickets */
	bool require_client_cert;
	char *name; /* client: SNI and the name to verify */
	gnutls_datum_t alpn[TLS_MAX_ALPN];
	unsigned nalpn;
	struct tls_identity *ids; /* server: ids[0] is the default */
	size_t nids;
};

struct tls_conn {
	gnutls_session_t session;
	struct tls_creds *creds;
	char version[16];
	char sni[128];
	char alpn[32];
	char peer[160];
	char error[TLS_ERRLEN];
};

typedef void (*warn_fn)(const char *msg, void *arg);

PRINTF(3, 4) static void say(warn_fn warn, void *arg, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (warn)
		warn(msg, arg);
	else
		log_warn("%s", msg);
}

/* ------------------------------------------------------------------ files */

static int load_file(const char *path, gnutls_datum_t *out, char *err)
{
	size_t len;
	char *data = read_file(path, TLS_FILE_MAX, &len);

	if (!data) {
		snprintf(err, TLS_ERRLEN, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	out->data = (unsigned char *)data;
	out->size = (unsigned)len;
	return 0;
}

static void wipe_datum(gnutls_datum_t *d)
{
	if (d->data) {
		gnutls_memset(d->data, 0, d->size);
		free(d->data);
	}
	d->data = NULL;
	d->size = 0;
}

/* Concatenates PEM files (a chain may be split over several). */
static int load_files(const struct cfg_strlist *paths, gnutls_datum_t *out, char *err)
{
	out->data = NULL;
	out->size = 0;
	for (size_t i = 0; i < paths->n; i++) {
		gnutls_datum_t one;
		if (load_file(paths->v[i], &one, err) < 0) {
			wipe_datum(out);
			return -1;
		}
		out->data = xrealloc(out->data, out->size + one.size + 2);
		memcpy(out->data + out->size, one.data, one.size);
		out->size += one.size;
		out->data[out->size++] = '\n';
		out->data[out->size] = '\0';
		free(one.data);
	}
	return 0;
}

static void check_key_mode(const char *path, warn_fn warn, void *arg)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & S_IROTH))
		say(warn, arg, "private key %s is readable by others (mode %03o)", path,
		    (unsigned)(st.st_mode & 0777));
}

/* ------------------------------------------------------------------ identities */

static void identity_clear(struct tls_identity *id)
{
	for (unsigned i = 0; i < id->nchain; i++)
		gnutls_pcert_deinit(&id->chain[i]);
	if (id->key)
		gnutls_privkey_deinit(id->key);
	free(id->server_name);
	memset(id, 0, sizeof(*id));
}

static int identity_load(struct tls_identity *id, const char *name, const char *key_path,
			 const struct cfg_strlist *cert_paths, char *err, warn_fn warn, void *arg)
{
	gnutls_datum_t certs = { 0 }, key = { 0 };
	int rc;

	memset(id, 0, sizeof(*id));
	id->server_name = name ? xstrdup(name) : NULL;
	if (load_files(cert_paths, &certs, err) < 0)
		goto fail;
	id->nchain = TLS_MAX_CHAIN;
	rc = gnutls_pcert_list_import_x509_raw(id->chain, &id->nchain, &certs, GNUTLS_X509_FMT_PEM,
					       0);
	if (rc < 0) {
		id->nchain = 0;
		snprintf(err, TLS_ERRLEN, "certificates %s: %s", cert_paths->v[0],
			 gnutls_strerror(rc));
		goto fail;
	}
	if (load_file(key_path, &key, err) < 0)
		goto fail;
	check_key_mode(key_path, warn, arg);
	if ((rc = gnutls_privkey_init(&id->key)) < 0 ||
	    (rc = gnutls_privkey_import_x509_raw(id->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) <
		    0) {
		snprintf(err, TLS_ERRLEN, "private key %s: %s", key_path, gnutls_strerror(rc));
		goto fail;
	}
	/* A key that does not belong to the leaf certificate would fail every handshake. */
	gnutls_pubkey_t pub = id->chain[0].pubkey;
	gnutls_datum_t a = { 0 }, b = { 0 };
	gnutls_pubkey_t kpub;
	bool match = false;
	if (gnutls_pubkey_init(&kpub) == 0) {
		if (gnutls_pubkey_import_privkey(kpub, id->key, 0, 0) == 0 &&
		    gnutls_pubkey_export2(kpub, GNUTLS_X509_FMT_DER, &a) == 0 &&
		    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &b) == 0)
			match = a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
		gnutls_free(a.data);
		gnutls_free(b.data);
		gnutls_pubkey_deinit(kpub);
	}
	if (!match) {
		snprintf(err, TLS_ERRLEN, "private key %s does not match certificate %s", key_path,
			 cert_paths->v[0]);
		goto fail;
	}
	wipe_datum(&key);
	wipe_datum(&certs);
	return 0;
fail:
	wipe_datum(&key);
	wipe_datum(&certs);
	identity_clear(id);
	return -1;
}

/* "*.example.com" matches one label in front of example.com; names compare
 * without regard to case. */
static bool name_matches(const char *pattern, const char *name)
{
	if (strncmp(pattern, "*.", 2) == 0) {
		const char *dot = strchr(name, '.');
		return dot && dot != name && strcasecmp(dot + 1, pattern + 2) == 0;
	}
	return strcasecmp(pattern, name) == 0;
}

static struct tls_identity *choose_identity(struct tls_creds *c, const char *sni)
{
	if (sni && *sni) {
		for (size_t i = 0; i < c->nids; i++) /* exact names first */
			if (c->ids[i].server_name && strncmp(c->ids[i].server_name, "*.", 2) != 0 &&
			    name_matches(c->ids[i].server_name, sni))
				return &c->ids[i];
		for (size_t i = 0; i < c->nids; i++)
			if (c->ids[i].server_name && name_matches(c->ids[i].server_name, sni))
				return &c->ids[i];
	}
	return &c->ids[0];
}

static int retrieve_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
			 const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
			 gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *key)
{
	struct tls_conn *t = gnutls_session_get_ptr(session);
	char sni[128] = "";
	size_t len = sizeof(sni) - 1;
	unsigned type;
	struct tls_identity *id;

	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (gnutls_server_name_get(session, sni, &len, &type, 0) == 0 && type == GNUTLS_NAME_DNS)
		sni[len] = '\0';
	else
		sni[0] = '\0';
	id = choose_identity(t->creds, sni);
	/* The pointers stay owned by the credentials, which outlive the session. */
	*pcert = id->chain;
	*pcert_length = id->nchain;
	*key = id->key;
	return 0;
}

/* ------------------------------------------------------------------ credentials */

static struct tls_creds *creds_new(bool server)
{
	struct tls_creds *c = xcalloc(1, sizeof(*c));

	atomic_init(&c->refs, 1);
	c->server = server;
	return c;
}

static void creds_free(struct tls_creds *c)
{
	for (size_t i = 0; i < c->nids; i++)
		identity_clear(&c->ids[i]);
	free(c->ids);
	for (unsigned i = 0; i < c->nalpn; i++)
		free(c->alpn[i].data);
	if (c->cred)
		gnutls_certificate_free_credentials(c->cred);
	if (c->priority)
		gnutls_priority_deinit(c->priority);
	wipe_datum(&c->ticket_key);
	free(c->name);
	free(c);
}

struct tls_creds *tls_creds_ref(struct tls_creds *c)
{
	if (c)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void tls_creds_unref(struct tls_creds *c)
{
	if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		creds_free(c);
}

static int set_alpn(struct tls_creds *c, const struct cfg_strlist *protos, char *err)
{
	for (size_t i = 0; i < protos->n; i++) {
		size_t len = strlen(protos->v[i]);
		if (c->nalpn == TLS_MAX_ALPN || len == 0 || len > 255) {
			snprintf(err, TLS_ERRLEN,
				 "alpn_protocols: '%s' is not a valid protocol name", protos->v[i]);
			return -1;
		}
		c->alpn[c->nalpn].data = (unsigned char *)xstrdup(protos->v[i]);
		c->alpn[c->nalpn].size = (unsigned)len;
		c->nalpn++;
	}
	return 0;
}

static int set_priority(struct tls_creds *c, const char *priority, char *err)
{
	const char *where = NULL;
	int rc = gnutls_priority_init2(&c->priority, priority ? priority : DEFAULT_PRIORITY, &where,
				       0);

	if (rc < 0) {
		snprintf(err, TLS_ERRLEN, "priority '%s': %s near '%s'",
			 priority ? priority : DEFAULT_PRIORITY, gnutls_strerror(rc),
			 where ? where : "?");
		c->priority = NULL;
		return -1;
	}
	return 0;
}

/* Trust files: every one that loads counts; a missing one among several is
 * only a warning (the original README names a macOS path). */
static int add_trust(gnutls_certificate_credentials_t cred, const struct cfg_strlist *paths,
		     bool tolerate_missing, char *err, warn_fn warn, void *arg)
{
	int loaded = 0;
	char first_err[TLS_ERRLEN] = "";

	for (size_t i = 0; i < paths->n; i++) {
		int rc = gnutls_certificate_set_x509_trust_file(cred, paths->v[i],
								GNUTLS_X509_FMT_PEM);
		if (rc > 0) {
			loaded += rc;
			continue;
		}
		char msg[TLS_ERRLEN];
		struct stat st;
		snprintf(msg, sizeof(msg), "trust file %s: %s", paths->v[i],
			 stat(paths->v[i], &st) < 0 ? strerror(errno)
			 : rc == 0                  ? "no certificates in it"
						    : gnutls_strerror(rc));
		if (!first_err[0])
			memcpy(first_err, msg, sizeof(msg));
		if (tolerate_missing && paths->n > 1)
			say(warn, arg, "%s (skipped)", msg);
	}
	if (loaded == 0 || (!tolerate_missing && first_err[0])) {
		snprintf(err, TLS_ERRLEN, "%s", first_err[0] ? first_err : "no trust roots loaded");
		return -1;
	}
	return 0;
}

struct tls_creds *tls_server_creds_load(const struct cfg_server_tls *cfg, char *err, warn_fn warn,
					void *arg)
{
	struct tls_creds *c = creds_new(true);
	size_t n = cfg->identities.n + (cfg->private_key_path ? 1 : 0);
	const struct cfg_identity *ids = cfg->identities.v;
	size_t k = 0;

	c->ids = xcalloc(n, sizeof(*c->ids));
	if (cfg->private_key_path) {
		if (identity_load(&c->ids[k], NULL, cfg->private_key_path, &cfg->cert_paths, err,
				  warn, arg) < 0)
			goto fail;
		c->nids = ++k;
	}
	for (size_t i = 0; i < cfg->identities.n; i++) {
		if (identity_load(&c->ids[k], ids[i].server_name, ids[i].private_key_path,
				  &ids[i].cert_paths, err, warn, arg) < 0)
			goto fail;
		c->nids = ++k;
	}
	if (gnutls_certificate_allocate_credentials(&c->cred) < 0)
		goto oom;
	gnutls_certificate_set_retrieve_function2(c->cred, retrieve_cert);
	if (cfg->client_ca_paths.n > 0) {
		if (add_trust(c->cred, &cfg->client_ca_paths, false, err, warn, arg) < 0)
			goto fail;
		c->require_client_cert = true;
	}
	if (set_alpn(c, &cfg->alpn_protocols, err) < 0 || set_priority(c, cfg->priority, err) < 0)
		goto fail;
	if (gnutls_session_ticket_key_generate(&c->ticket_key) < 0)
		goto oom;
	return c;
oom:
	snprintf(err, TLS_ERRLEN, "GnuTLS: out of memory");
fail:
	creds_free(c);
	return NULL;
}

struct tls_creds *tls_client_creds_load(const struct cfg_client_tls *cfg, char *err, warn_fn warn,
					void *arg)
{
	struct tls_creds *c = creds_new(false);
	int rc;

	c->name = xstrdup(cfg->name);
	if (gnutls_certificate_allocate_credentials(&c->cred) < 0) {
		snprintf(err, TLS_ERRLEN, "GnuTLS: out of memory");
		goto fail;
	}
	if (cfg->trust_cert_paths.n == 0) {
		rc = gnutls_certificate_set_x509_system_trust(c->cred);
		if (rc <= 0) {
			snprintf(err, TLS_ERRLEN, "system trust store: %s",
				 rc == 0 ? "no certificates" : gnutls_strerror(rc));
			goto fail;
		}
	} else if (add_trust(c->cred, &cfg->trust_cert_paths, true, err, warn, arg) < 0) {
		goto fail;
	}
	if (cfg->private_key_path) {
		gnutls_datum_t certs = { 0 }, key = { 0 };
		if (load_files(&cfg->cert_paths, &certs, err) < 0)
			goto fail;
		if (load_file(cfg->private_key_path, &key, err) < 0) {
			wipe_datum(&certs);
			goto fail;
		}
		check_key_mode(cfg->private_key_path, warn, arg);
		rc = gnutls_certificate_set_x509_key_mem2(c->cred, &certs, &key,
							  GNUTLS_X509_FMT_PEM, NULL, 0);
		wipe_datum(&certs);
		wipe_datum(&key);
		if (rc < 0) {
			snprintf(err, TLS_ERRLEN, "client certificate %s / %s: %s",
				 cfg->cert_paths.v[0], cfg->private_key_path, gnutls_strerror(rc));
			goto fail;
		}
	}
	if (set_alpn(c, &cfg->alpn_protocols, err) < 0 || set_priority(c, NULL, err) < 0)
		goto fail;
	return c;
fail:
	creds_free(c);
	return NULL;
}

/* ------------------------------------------------------------------ -n */

struct check_ctx {
	const struct config *cfg;
	struct cfg_diag *diag;
	const struct cfg_mark *mark;
	size_t errors;
};

static void check_warn(const char *msg, void *arg)
{
	struct check_ctx *x = arg;

	cfg_diag_add(x->diag, CFG_DIAG_WARN, x->cfg->path, x->mark, "%s", msg);
}

/* Proxies made from one 0.1.x router share a client section: say it once. */
static void check_error(struct check_ctx *x, const char *msg)
{
	cfg_diag_add(x->diag, CFG_DIAG_UNIQUE, x->cfg->path, x->mark, "tls: %s", msg);
	x->errors++;
}

size_t tls_check_config(const struct config *cfg, struct cfg_diag *diag)
{
	struct check_ctx x = { .cfg = cfg, .diag = diag };
	const struct cfg_proxy *pc = cfg->proxies.v;
	char err[TLS_ERRLEN];

	for (size_t i = 0; i < cfg->proxies.n; i++) {
		const struct cfg_server *sc = pc[i].servers.v;
		for (size_t j = 0; j < pc[i].servers.n; j++) {
			if (!sc[j].tls)
				continue;
			x.mark = &sc[j].tls->mark;
			struct tls_creds *c = tls_server_creds_load(sc[j].tls, err, check_warn, &x);
			if (!c)
				check_error(&x, err);
			tls_creds_unref(c);
		}
		if (pc[i].client.tls) {
			x.mark = &pc[i].client.tls->mark;
			struct tls_creds *c =
				tls_client_creds_load(pc[i].client.tls, err, check_warn, &x);
			if (!c)
				check_error(&x, err);
			tls_creds_unref(c);
		}
	}
	return x.errors;
}

/* ------------------------------------------------------------------ sessions */

struct tls_conn *tls_conn_new(struct tls_creds *c, int fd, char *err)
{
	struct tls_conn *t = xcalloc(1, sizeof(*t));
	int rc;

	t->creds = tls_creds_ref(c);
	rc = gnutls_init(&t->session,
			 (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_SIGNAL);
	if (rc < 0)
		goto fail;
	gnutls_session_set_ptr(t->session, t);
	if ((rc = gnutls_priority_set(t->session, c->priority)) < 0 ||
	    (rc = gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, c->cred)) < 0)
		goto fail;
	if (c->nalpn &&
	    (rc = gnutls_alpn_set_protocols(t->session, c->alpn, c->nalpn,
					    c->server ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0)) < 0)
		goto fail;
	if (c->server) {
		if ((rc = gnutls_session_ticket_enable_server(t->session, &c->ticket_key)) < 0)
			goto fail;
		if (c->require_client_cert) {
			gnutls_certificate_server_set_request(t->session, GNUTLS_CERT_REQUIRE);
			gnutls_session_set_verify_cert(t->session, NULL, 0);
		}
	} else {
		if ((rc = gnutls_server_name_set(t->session, GNUTLS_NAME_DNS, c->name,
						 strlen(c->name))) < 0)
			goto fail;
		gnutls_session_set_verify_cert(t->session, c->name, 0);
	}
	gnutls_transport_set_int(t->session, fd);
	gnutls_handshake_set_timeout(t->session, 0);
	return t;
fail:
	snprintf(err, TLS_ERRLEN, "%s", gnutls_strerror(rc));
	tls_conn_free(t);
	return NULL;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	if (t->session)
		gnutls_deinit(t->session);
	tls_creds_unref(t->creds);
	free(t);
}

short tls_wants(struct tls_conn *t)
{
	return gnutls_record_get_direction(t->session) ? POLLOUT : POLLIN;
}

/* Why a handshake failed, with the verification result when that was it. */
static void handshake_error(struct tls_conn *t, int rc, char *err)
{
	if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		gnutls_datum_t out = { 0 };
		unsigned status = gnutls_session_get_verify_cert_status(t->session);
		gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0);
		snprintf(err, TLS_ERRLEN, "certificate verification failed: %s",
			 out.data ? (char *)out.data : "?");
		gnutls_free(out.data);
	} else if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED || rc == GNUTLS_E_WARNING_ALERT_RECEIVED) {
		snprintf(err, TLS_ERRLEN, "peer sent alert: %s",
			 gnutls_alert_get_name(gnutls_alert_get(t->session)));
	} else {
		snprintf(err, TLS_ERRLEN, "%s", gnutls_strerror(rc));
	}
}

static void peer_name(struct tls_conn *t)
{
	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(t->session, &n);
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = { 0 };

	snprintf(t->peer, sizeof(t->peer), "-");
	if (!certs || n == 0 || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
		/* Peer-controlled text: keep it printable. */
		size_t k = 0;
		for (unsigned i = 0; i < dn.size && k + 1 < sizeof(t->peer); i++)
			t->peer[k++] =
				dn.data[i] >= 0x20 && dn.data[i] < 0x7f ? (char)dn.data[i] : '?';
		t->peer[k] = '\0';
	}
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
}

static void record_negotiated(struct tls_conn *t)
{
	gnutls_datum_t alpn;
	size_t len = sizeof(t->sni) - 1;
	unsigned type;
	const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(t->session));

	snprintf(t->version, sizeof(t->version), "%s", v ? v : "-");
	if (t->creds->server) {
		if (gnutls_server_name_get(t->session, t->sni, &len, &type, 0) == 0 &&
		    type == GNUTLS_NAME_DNS) {
			t->sni[len] = '\0';
			for (size_t i = 0; i < len; i++)
				if (t->sni[i] < 0x20 || t->sni[i] >= 0x7f)
					t->sni[i] = '?';
		} else {
			snprintf(t->sni, sizeof(t->sni), "-");
		}
	} else {
		snprintf(t->sni, sizeof(t->sni), "%s", t->creds->name);
	}
	if (gnutls_alpn_get_selected_protocol(t->session, &alpn) == 0)
		snprintf(t->alpn, sizeof(t->alpn), "%.*s", (int)alpn.size, alpn.data);
	else
		snprintf(t->alpn, sizeof(t->alpn), "-");
	peer_name(t);
}

int tls_handshake(struct tls_conn *t, int64_t deadline_ms, int stop_fd, char *err)
{
	int fd = gnutls_transport_get_int(t->session);

	for (;;) {
		int rc = gnutls_handshake(t->session);
		if (rc == GNUTLS_E_SUCCESS)
			break;
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED &&
		    gnutls_error_is_fatal(rc)) {
			handshake_error(t, rc, err);
			return -1;
		}
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED)
			continue; /* a warning alert: go on */
		int64_t left = deadline_ms - now_ms();
		if (left <= 0) {
			snprintf(err, TLS_ERRLEN, "handshake timed out");
			return -1;
		}
		struct pollfd pfd[2] = { { .fd = fd, .events = tls_wants(t) },
					 { .fd = stop_fd, .events = POLLIN } };
		int n = poll(pfd, stop_fd >= 0 ? 2 : 1, (int)MIN(left, (int64_t)INT32_MAX));
		if (n > 0 && stop_fd >= 0 && pfd[1].revents) {
			snprintf(err, TLS_ERRLEN, "shutting down");
			return -1;
		}
	}
	record_negotiated(t);
	return 0;
}

/* Maps a GnuTLS record result to recv/send conventions. */
static ssize_t record_result(struct tls_conn *t, ssize_t rc)
{
	if (rc >= 0)
		return rc;
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int)rc)) {
		/* Includes post-handshake messages that carry no plaintext: not EOF. */
		errno = EAGAIN;
		return -1;
	}
	if (rc == GNUTLS_E_PREMATURE_TERMINATION)
		return 0; /* TCP EOF without close_notify: the peer is done all the same */
	snprintf(t->error, sizeof(t->error), "%s", gnutls_strerror((int)rc));
	errno = rc == GNUTLS_E_PUSH_ERROR || rc == GNUTLS_E_PULL_ERROR ? ECONNRESET : EPROTO;
	return -1;
}

ssize_t tls_read(struct tls_conn *t, void *buf, size_t len)
{
	return record_result(t, gnutls_record_recv(t->session, buf, len));
}

ssize_t tls_write(struct tls_conn *t, const void *buf, size_t len)
{
	return record_result(t, gnutls_record_send(t->session, buf, len));
}

int tls_shutdown_write(struct tls_conn *t)
{
	int rc = gnutls_bye(t->session, GNUTLS_SHUT_WR);

	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
		errno = EAGAIN;
		return -1;
	}
	if (rc < 0) {
		snprintf(t->error, sizeof(t->error), "%s", gnutls_strerror(rc));
		errno = EPROTO;
		return -1;
	}
	return shutdown(gnutls_transport_get_int(t->session), SHUT_WR);
}

size_t tls_pending(struct tls_conn *t)
{
	return gnutls_record_check_pending(t->session);
}

const char *tls_last_error(struct tls_conn *t)
{
	return t->error[0] ? t->error : strerror(errno);
}

const char *tls_version(struct tls_conn *t)
{
	return t->version[0] ? t->version : "-";
}

const char *tls_sni(struct tls_conn *t)
{
	return t->sni[0] ? t->sni : "-";
}

const char *tls_alpn(struct tls_conn *t)
{
	return t->alpn[0] ? t->alpn : "-";
}

const char *tls_peer(struct tls_conn *t)
{
	return t->peer[0] ? t->peer : "-";
}
