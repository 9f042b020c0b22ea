#include "auto-config.h"

#include "admin.h"

#include "control.h"
#include "log.h"
#include "metrics.h"
#include "page.h"
#include "runtime.h"

#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* One thread per connection.  /reload waits (up to RELOAD_WAIT_MS) may hold
 * at most ADMIN_RELOAD_WAITERS of the connections; the rest stay for
 * /ready, /metrics and the others. */
#define ADMIN_MAX_CONNECTIONS 32
#define ADMIN_RELOAD_WAITERS  16
#define ADMIN_TIMEOUT_SECS    10
#define RELOAD_WAIT_MS        30000
#define TOKEN_DIGEST_LEN      32 /* SHA-256 */

#ifndef MHD_HTTP_MISDIRECTED_REQUEST
#define MHD_HTTP_MISDIRECTED_REQUEST 421
#endif

struct admin {
	struct MHD_Daemon *mhd;
	struct runtime *rt;
	char name[NETADDR_STRLEN]; /* the bound address */
	char *host;                /* the host of admin.addr, as configured */
	bool loopback;             /* bound to a loopback address */
	atomic_uint reload_waiters;
	pthread_mutex_t lock; /* guards the token: admin_update changes it */
	bool has_token;
	unsigned char token_digest[TOKEN_DIGEST_LEN];
};

/* Queues a response with one extra header (hname NULL: none); body is freed
 * by libmicrohttpd when owned, else static. */
static enum MHD_Result reply_with(struct MHD_Connection *conn, unsigned status, const char *type,
				  char *body, size_t len, bool owned, const char *hname,
				  const char *hval)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (hname)
		MHD_add_response_header(r, hname, hval);
	ok = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     char *body, size_t len, bool owned)
{
	return reply_with(conn, status, type, body, len, owned, NULL, NULL);
}

/* A static text body with one extra header. */
static enum MHD_Result reply_text_with(struct MHD_Connection *conn, unsigned status,
				       const char *text, const char *hname, const char *hval)
{
	return reply_with(conn, status, "text/plain; charset=utf-8", (char *)(uintptr_t)text,
			  strlen(text), false, hname, hval);
}

static enum MHD_Result reply_allow(struct MHD_Connection *conn, const char *allow)
{
	return reply_text_with(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "Allow",
			       allow);
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	return reply_text_with(conn, status, text, NULL, NULL);
}

/* ------------------------------------------------------------------ safety
 *
 * SPEC §8: a web page must not be able to drive the admin server.  A page
 * of another site reaches it through the browser (cross-site requests) or
 * through DNS rebinding (its own name resolving to 127.0.0.1, so the Host
 * header carries that name).  admin.token, when set, also shuts out local
 * processes that do not know it.
 */

static const char *header(struct MHD_Connection *conn, const char *name)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static bool port_ok(const char *p)
{
	size_t n = strspn(p, "0123456789");

	return n > 0 && n <= 5 && !p[n] && atol(p) <= 65535;
}

/* Copies the host of a Host header (without brackets and port) into host;
 * false when the header is malformed. */
static bool host_split(const char *h, char *host, size_t len)
{
	const char *end, *port;
	size_t n;

	if (h[0] == '[') {
		end = strchr(h, ']');
		if (!end)
			return false;
		h++;
		port = end + 1;
	} else {
		end = port = h + strcspn(h, ":");
	}
	n = (size_t)(end - h);
	if (n == 0 || n >= len || (*port && (port[0] != ':' || !port_ok(port + 1))))
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	return true;
}

/* The Host is the admin's own, an IP literal or localhost: never a name that
 * someone else's DNS may point here. */
static bool host_allowed(const struct admin *a, const char *header)
{
	char host[256];
	struct in6_addr a6;
	struct in_addr a4;

	if (!host_split(header, host, sizeof(host)))
		return false;
	if (header[0] == '[')
		return inet_pton(AF_INET6, host, &a6) == 1;
	return inet_pton(AF_INET, host, &a4) == 1 || strcasecmp(host, "localhost") == 0 ||
	       strcasecmp(host, a->host) == 0;
}

/* For a state-changing request: neither a page of another site (Origin,
 * "null" included) nor, per Fetch metadata, of a sibling site sent it. */
static bool same_origin(const struct admin *a, struct MHD_Connection *conn, const char *host)
{
	const char *origin = header(conn, MHD_HTTP_HEADER_ORIGIN);
	const char *site = header(conn, "Sec-Fetch-Site");

	if (site && (strcasecmp(site, "cross-site") == 0 || strcasecmp(site, "same-site") == 0))
		return false;
	if (!origin)
		return true;
	return strncasecmp(origin, "http://", 7) == 0 &&
	       strcasecmp(origin + 7, host ? host : a->name) == 0;
}

static int token_digest(const char *token, unsigned char out[TOKEN_DIGEST_LEN])
{
	return gnutls_hash_fast(GNUTLS_DIG_SHA256, token, strlen(token), out) < 0 ? -1 : 0;
}

/* Compares the digests in constant time: how long it takes tells nothing
 * about the token, not even its length. */
static bool digest_equal(const unsigned char *x, const unsigned char *y)
{
	volatile unsigned char diff = 0;

	for (size_t i = 0; i < TOKEN_DIGEST_LEN; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

/* With admin.token set: "Authorization: Bearer <token>". */
static bool authorized(struct admin *a, struct MHD_Connection *conn)
{
	const char *auth = header(conn, MHD_HTTP_HEADER_AUTHORIZATION);
	unsigned char want[TOKEN_DIGEST_LEN], got[TOKEN_DIGEST_LEN];
	bool need;

	pthread_mutex_lock(&a->lock);
	need = a->has_token;
	memcpy(want, a->token_digest, sizeof(want));
	pthread_mutex_unlock(&a->lock);
	if (!need)
		return true;
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	auth += 7 + strspn(auth + 7, " ");
	return token_digest(auth, got) == 0 && digest_equal(want, got);
}

static bool safe_method(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* Queues the refusal of a request the admin must not serve; false when the
 * request may go on. */
static bool refused(struct admin *a, struct MHD_Connection *conn, const char *url,
		    const char *method, enum MHD_Result *ret)
{
	const char *host = header(conn, MHD_HTTP_HEADER_HOST); /* none in HTTP/1.0 */
	bool safe = safe_method(method);

	if (host && !host_allowed(a, host)) {
		log_debug("admin: refused %s %s for Host %s", method, url, host);
		*ret = reply_text(conn, MHD_HTTP_MISDIRECTED_REQUEST,
				  "misdirected request: the admin server answers only for its own "
				  "address, IP addresses and localhost\n");
	} else if (!safe && !same_origin(a, conn, host)) {
		log_debug("admin: refused a cross-site %s %s", method, url);
		*ret = reply_text(conn, MHD_HTTP_FORBIDDEN, "forbidden: cross-site request\n");
	} else if (!(safe && (strcmp(url, "/ready") == 0 || strcmp(url, "/") == 0)) &&
		   !authorized(a, conn)) { /* get_page checks the token itself */
		*ret = reply_text_with(conn, MHD_HTTP_UNAUTHORIZED,
				       "unauthorized: send Authorization: Bearer <admin.token>\n",
				       MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	} else {
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ handlers */

/* One request, with its body gathered before the handler runs. */
struct request {
	const char *url, *method; /* libmicrohttpd's, valid for the request */
	bool then_stop;           /* POST /shutdown: SIGTERM when the request is done */
	size_t len;
	bool too_big;
	char body[CONTROL_BODY_MAX + 1];
};

static enum MHD_Result get_metrics(struct admin *a, struct MHD_Connection *conn, struct request *r)
{
	struct mbuf m = { 0 };

	metrics_render(a->rt, &m);
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", m.p, m.len,
		     true);
}

static enum MHD_Result get_ready(struct admin *a, struct MHD_Connection *conn, struct request *r)
{
	if (runtime_draining(a->rt)) /* read first: no lock, while the drain holds it */
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: shutting down\n");
	if (runtime_ready(a->rt))
		return reply_text(conn, MHD_HTTP_OK, "ready\n");
	return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: waiting for endpoints\n");
}

static enum MHD_Result get_endpoints(struct admin *a, struct MHD_Connection *conn,
				     struct request *r)
{
	char *body = control_state(a->rt);

	return reply(conn, MHD_HTTP_OK, "application/json", body, strlen(body), true);
}

/* The operator's page.  With admin.token set, a request without the token
 * (a browser's navigation cannot carry it) gets the page without data,
 * whose script asks for the token. */
static enum MHD_Result get_page(struct admin *a, struct MHD_Connection *conn, struct request *r)
{
	char *body = page_render(a->rt, authorized(a, conn));
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ok;

	if (!resp)
		return MHD_NO;
	for (size_t i = 0; page_headers[i][0]; i++)
		MHD_add_response_header(resp, page_headers[i][0], page_headers[i][1]);
	ok = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result post_shutdown(struct admin *a, struct MHD_Connection *conn,
				     struct request *r)
{
	log_info("admin: shutdown requested");
	runtime_drain_begin(a->rt); /* /ready fails from now on */
	r->then_stop = true;        /* once the answer is out: the main thread may stop us */
	return reply_text(conn, MHD_HTTP_ACCEPTED, "shutting down\n");
}

/* Waits for a reload that reads the file after this request; concurrent
 * requests share it (runtime_reload_ticket). */
static enum MHD_Result reload_wait(struct admin *a, struct MHD_Connection *conn)
{
	bool ask;
	uint64_t ticket = runtime_reload_ticket(a->rt, &ask);

	log_info("admin: reload requested%s", ask ? "" : " (joins the one already asked for)");
	if (ask)
		kill(getpid(), SIGHUP);
	switch (runtime_wait_reload(a->rt, ticket, now_ms() + RELOAD_WAIT_MS)) {
	case RELOAD_OK:
		return reply_text(conn, MHD_HTTP_OK, "reloaded\n");
	case RELOAD_FAILED:
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "reload failed; the running configuration stays (see the log)\n");
	case RELOAD_STOPPING:
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down\n");
	default:
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "reload still running\n");
	}
}

static enum MHD_Result post_reload(struct admin *a, struct MHD_Connection *conn, struct request *r)
{
	enum MHD_Result ret;

	if (runtime_draining(a->rt))
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down\n");
	if (atomic_fetch_add(&a->reload_waiters, 1) >= ADMIN_RELOAD_WAITERS) {
		atomic_fetch_sub(&a->reload_waiters, 1);
		return reply_text_with(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				       "too many reload requests waiting; retry\n",
				       MHD_HTTP_HEADER_RETRY_AFTER, "1");
	}
	ret = reload_wait(a, conn);
	atomic_fetch_sub(&a->reload_waiters, 1);
	return ret;
}

/* ------------------------------------------------------------------ routing */

#define API_ENDPOINTS "/api/v1/proxies/"

/* PUT or DELETE /api/v1/proxies/{label}/endpoints/{addr}. */
static enum MHD_Result api_endpoint(struct admin *a, struct MHD_Connection *conn, struct request *r)
{
	char *body;
	unsigned status;

	if (r->too_big) {
		body = xasprintf("{\"error\":\"the body is over %u bytes\"}\n", CONTROL_BODY_MAX);
		return reply(conn, MHD_HTTP_CONTENT_TOO_LARGE, "application/json", body,
			     strlen(body), true);
	}
	status = control_endpoint(a->rt, r->method, r->url + strlen(API_ENDPOINTS), r->body, r->len,
				  &body);
	return reply(conn, status, "application/json", body, strlen(body), true);
}

struct route {
	const char *path; /* ending in '/' (but "/"): a prefix */
	const char *methods[2];
	enum MHD_Result (*fn)(struct admin *a, struct MHD_Connection *conn, struct request *r);
};

static const struct route routes[] = {
	{ "/metrics", { "GET" }, get_metrics },
	{ "/ready", { "GET" }, get_ready },
	{ "/endpoints", { "GET" }, get_endpoints },
	{ "/shutdown", { "POST" }, post_shutdown },
	{ "/reload", { "POST" }, post_reload },
	{ API_ENDPOINTS, { "PUT", "DELETE" }, api_endpoint },
	{ "/", { "GET" }, get_page },
};

static bool route_matches(const struct route *rt, const char *url)
{
	size_t n = strlen(rt->path);

	return n > 1 && rt->path[n - 1] == '/' ? strncmp(url, rt->path, n) == 0
					       : strcmp(url, rt->path) == 0;
}

static bool route_allows(const struct route *rt, const char *method)
{
	for (size_t i = 0; i < ARRAY_SIZE(rt->methods) && rt->methods[i]; i++)
		if (strcmp(method, rt->methods[i]) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(rt->methods[i], "GET") == 0))
			return true;
	return false;
}

static enum MHD_Result route(struct admin *a, struct MHD_Connection *conn, struct request *r)
{
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		const struct route *rt = &routes[i];
		if (!route_matches(rt, r->url))
			continue;
		if (route_allows(rt, r->method))
			return rt->fn(a, conn, r);
		return reply_allow(conn, rt->methods[1] ? "PUT, DELETE" : rt->methods[0]);
	}
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* Gathers the body (at most CONTROL_BODY_MAX bytes are kept; past that the
 * request is marked too big and the rest is dropped). */
static void take_body(struct request *r, const char *data, size_t n)
{
	size_t room = CONTROL_BODY_MAX - r->len;

	if (n > room)
		r->too_big = true;
	memcpy(r->body + r->len, data, MIN(n, room));
	r->len += MIN(n, room);
	r->body[r->len] = '\0';
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct admin *a = cls;
	struct request *r = *con_cls;
	enum MHD_Result ret;

	(void)version;
	if (!r) { /* first call: headers only; answer once the body is in */
		r = xcalloc(1, sizeof(*r));
		r->url = url;
		r->method = method;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size) {
		take_body(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (refused(a, conn, url, method, &ret))
		return ret;
	return route(a, conn, r);
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode why)
{
	struct request *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)why;
	if (r && r->then_stop)
		kill(getpid(), SIGTERM);
	free(r);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("admin: %s", msg);
}

static bool netaddr_loopback(const struct netaddr *n)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)&n->ss;
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)&n->ss)->sin6_addr;

	if (n->ss.ss_family == AF_INET)
		return ntohl(in4->sin_addr.s_addr) >> 24 == 127;
	if (n->ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(a6) ||
		       (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
	return false;
}

static void warn_exposed(const struct admin *a)
{
	log_warn("admin: %s is not a loopback address and admin.token is not set: whoever reaches "
		 "it can read /metrics and /endpoints and POST /shutdown and /reload; set "
		 "admin.token or listen on 127.0.0.1",
		 a->name);
}

/* Installs token (NULL: none); a->lock held or no other thread yet. */
static void set_token(struct admin *a, const char *token)
{
	a->has_token = token != NULL;
	memset(a->token_digest, 0, sizeof(a->token_digest));
	if (token && token_digest(token, a->token_digest) < 0)
		fatal("admin: cannot compute a SHA-256 digest of admin.token");
}

static int admin_listen(const struct cfg_admin *cfg, struct netaddr *addr, char *err, size_t errlen)
{
	char nerr[NET_ERRLEN];
	int fd;

	if (netaddr_resolve(cfg->addr.hp.host, cfg->addr.hp.port, true, addr, 1, nerr) < 0 ||
	    (fd = net_listen(addr, 64, nerr)) < 0) {
		snprintf(err, errlen, "admin: %s", nerr);
		return -1;
	}
	return fd;
}

static struct MHD_Daemon *admin_mhd_start(struct admin *a, int fd)
{
	return MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
					MHD_USE_POLL | MHD_USE_ERROR_LOG,
				0, NULL, NULL, handle, a, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_MAX_CONNECTIONS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_TIMEOUT_SECS,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
				MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 << 10), MHD_OPTION_END);
}

struct admin *admin_start(const struct cfg_admin *cfg, struct runtime *rt, char *err, size_t errlen)
{
	struct netaddr addr, bound;
	struct admin *a;
	int fd = admin_listen(cfg, &addr, err, errlen);

	if (fd < 0)
		return NULL;
	if (netaddr_local(fd, &bound) < 0)
		bound = addr;
	a = xcalloc(1, sizeof(*a));
	a->rt = rt;
	a->host = xstrdup(cfg->addr.hp.host);
	a->loopback = netaddr_loopback(&bound);
	netaddr_format(&bound, a->name, sizeof(a->name));
	atomic_init(&a->reload_waiters, 0);
	pthread_mutex_init(&a->lock, NULL);
	set_token(a, cfg->token);
	a->mhd = admin_mhd_start(a, fd);
	if (!a->mhd) {
		snprintf(err, errlen, "admin: libmicrohttpd cannot serve %s", cfg->addr.text);
		close_fd(&fd);
		goto fail;
	}
	log_info("admin listening on http://%s", a->name);
	if (!a->loopback && !a->has_token)
		warn_exposed(a);
	return a;
fail:
	pthread_mutex_destroy(&a->lock);
	free(a->host);
	free(a);
	return NULL;
}

void admin_update(struct admin *a, const struct cfg_admin *cfg)
{
	unsigned char before[TOKEN_DIGEST_LEN];
	bool had, same;

	pthread_mutex_lock(&a->lock);
	had = a->has_token;
	memcpy(before, a->token_digest, sizeof(before));
	set_token(a, cfg->token);
	same = had == a->has_token && digest_equal(before, a->token_digest);
	pthread_mutex_unlock(&a->lock);
	if (same)
		return;
	log_info("admin: admin.token %s", !cfg->token ? "removed" : had ? "changed" : "set");
	if (!cfg->token && !a->loopback)
		warn_exposed(a);
}

void admin_stop(struct admin *a)
{
	if (!a)
		return;
	MHD_stop_daemon(a->mhd);
	pthread_mutex_destroy(&a->lock);
	free(a->host);
	free(a);
}

const char *admin_name(const struct admin *a)
{
	return a->name;
}
