#include "auto-config.h"

#include "admin.h"

#include "balancer.h"
#include "log.h"
#include "metrics.h"
#include "namerd.h"
#include "proxy.h"
#include "runtime.h"

#include <json-c/json.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One thread per connection.  /reload waits (up to RELOAD_WAIT_MS) may hold
 * at most ADMIN_RELOAD_WAITERS of the connections; the rest stay for
 * /ready, /metrics and the others. */
#define ADMIN_MAX_CONNECTIONS 32
#define ADMIN_RELOAD_WAITERS  16
#define ADMIN_TIMEOUT_SECS    10
#define RELOAD_WAIT_MS        30000

struct admin {
	struct MHD_Daemon *mhd;
	struct runtime *rt;
	char name[NETADDR_STRLEN];
	atomic_uint reload_waiters;
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

/* ------------------------------------------------------------------ handlers */

static enum MHD_Result get_metrics(struct admin *a, struct MHD_Connection *conn)
{
	struct mbuf m = { 0 };

	metrics_render(a->rt, &m);
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", m.p, m.len,
		     true);
}

static enum MHD_Result get_ready(struct admin *a, struct MHD_Connection *conn)
{
	if (runtime_draining(a->rt)) /* read first: no lock, while the drain holds it */
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: shutting down\n");
	if (runtime_ready(a->rt))
		return reply_text(conn, MHD_HTTP_OK, "ready\n");
	return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: waiting for endpoints\n");
}

static const char *state_name(enum endpoint_state s)
{
	return s == EP_ACTIVE ? "active" : s == EP_EJECTED ? "ejected" : "draining";
}

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

static json_object *endpoints_json(struct proxy *p)
{
	json_object *arr = json_object_new_array();
	size_t n = balancer_snapshot(proxy_balancer(p), NULL, 0);
	struct endpoint_view *v = xcalloc(n ? n : 1, sizeof(*v));

	n = MIN(n, balancer_snapshot(proxy_balancer(p), v, n));
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_new_object();
		uint64_t failed = 0;
		for (int r = 0; r < CONNECT_RESULTS; r++)
			failed += v[i].failures[r];
		json_object_object_add(e, "addr", json_object_new_string(v[i].name));
		json_object_object_add(e, "weight", json_object_new_double(v[i].weight));
		json_object_object_add(e, "active", json_object_new_int64(v[i].active));
		json_object_object_add(e, "state", json_object_new_string(state_name(v[i].state)));
		json_object_object_add(e, "consecutive_failures",
				       json_object_new_int64(v[i].consecutive_failures));
		json_object_object_add(e, "connects",
				       json_object_new_int64((int64_t)v[i].connects));
		json_object_object_add(e, "failures", json_object_new_int64((int64_t)failed));
		json_object_array_add(arr, e);
	}
	free(v);
	return arr;
}

static void proxy_json(struct proxy *p, void *arg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "label", json_object_new_string(proxy_label(p)));
	json_object_object_add(o, "ready", json_object_new_boolean(proxy_ready(p)));
	json_object_object_add(o, "discovery", discovery_json(p));
	json_object_object_add(o, "endpoints", endpoints_json(p));
	json_object_array_add(arg, o);
}

static enum MHD_Result get_endpoints(struct admin *a, struct MHD_Connection *conn)
{
	json_object *root = json_object_new_object(), *proxies = json_object_new_array();
	const char *text;
	char *body;

	runtime_for_each_proxy(a->rt, proxy_json, proxies);
	json_object_object_add(root, "proxies", proxies);
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	body = xasprintf("%s\n", text);
	json_object_put(root);
	return reply(conn, MHD_HTTP_OK, "application/json", body, strlen(body), true);
}

static enum MHD_Result post_shutdown(struct admin *a, struct MHD_Connection *conn)
{
	log_info("admin: shutdown requested");
	runtime_drain_begin(a->rt); /* /ready fails from now on */
	kill(getpid(), SIGTERM);
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

static enum MHD_Result post_reload(struct admin *a, struct MHD_Connection *conn)
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

struct route {
	const char *path;
	const char *method;
	enum MHD_Result (*fn)(struct admin *a, struct MHD_Connection *conn);
};

static const struct route routes[] = {
	{ "/metrics", "GET", get_metrics },     { "/ready", "GET", get_ready },
	{ "/endpoints", "GET", get_endpoints }, { "/shutdown", "POST", post_shutdown },
	{ "/reload", "POST", post_reload },
};

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	static int started;
	struct admin *a = cls;

	(void)version;
	(void)upload_data;
	if (!*con_cls) { /* first call: headers only; answer once any body is in */
		*con_cls = &started;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0; /* bodies are ignored */
		return MHD_YES;
	}
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		if (strcmp(url, routes[i].path) != 0)
			continue;
		bool head = strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0;
		if (strcmp(method, routes[i].method) == 0 || head)
			return routes[i].fn(a, conn);
		return reply_allow(conn, routes[i].method);
	}
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("admin: %s", msg);
}

struct admin *admin_start(const struct cfg_admin *cfg, struct runtime *rt, char *err, size_t errlen)
{
	struct netaddr addr, bound;
	char nerr[NET_ERRLEN];
	struct admin *a;
	int fd;

	if (netaddr_resolve(cfg->addr.hp.host, cfg->addr.hp.port, true, &addr, 1, nerr) < 0 ||
	    (fd = net_listen(&addr, 64, nerr)) < 0) {
		snprintf(err, errlen, "admin: %s", nerr);
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->rt = rt;
	atomic_init(&a->reload_waiters, 0);
	a->mhd = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, handle, a, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)ADMIN_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)ADMIN_TIMEOUT_SECS, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 << 10), MHD_OPTION_END);
	if (!a->mhd) {
		snprintf(err, errlen, "admin: libmicrohttpd cannot serve %s", cfg->addr.text);
		close_fd(&fd);
		free(a);
		return NULL;
	}
	if (netaddr_local(fd, &bound) < 0)
		bound = addr;
	netaddr_format(&bound, a->name, sizeof(a->name));
	log_info("admin listening on http://%s", a->name);
	return a;
}

void admin_stop(struct admin *a)
{
	if (!a)
		return;
	MHD_stop_daemon(a->mhd);
	free(a);
}

const char *admin_name(const struct admin *a)
{
	return a->name;
}
