#include "auto-config.h"

#include "namerd.h"

#include "balancer.h"
#include "log.h"
#include "namerd_json.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAMERD_STACK   (256u << 10)
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define TICK_MS        100 /* how often deadlines are checked during a request */
#define HINT_MAX       512 /* bytes kept of an error body, for the log */

/* The settings the thread runs with (copied: a reload may free the config). */
struct namerd_conf {
	char *base;      /* "http://host:port" or the url, without a trailing '/' */
	char *path;      /* e.g. /svc/web */
	char *namespace; /* e.g. default */
	char *trust;     /* PEM bundle for https, or NULL for the system store */
	int mode;
	int64_t interval_ms, timeout_ms, idle_ms;
};

/* One request in flight. */
struct request {
	struct namerd *n;
	bool watch;
	char *body; /* poll: the whole body (or an error's start); watch: the unfinished line */
	size_t len, cap;
	long status;    /* the final response's status, once its headers ended; else 0 */
	size_t scanned; /* watch: the first bytes of body, known to hold no '\n' */
	bool got_header;
	bool idle;       /* watch: closed by us after watch_idle_secs of silence */
	bool applied;    /* watch: a frame was applied on this stream */
	bool too_big;    /* the body or a frame exceeded NAMERD_JSON_MAX */
	char error[160]; /* watch: the first frame error, if any */
	int64_t last_byte_ms;
};

struct namerd {
	char *label;
	struct namerd_conf conf;
	struct balancer *bal;
	struct namerd_stats stats;
	pthread_t thread;
	atomic_bool stop;
	CURLM *multi;
	CURL *easy;
	char *url;
	unsigned backoff_ms;

	pthread_mutex_t lock; /* guards status */
	struct namerd_status status;
	size_t last_n;      /* endpoints in the last applied set, for the log */
	uint64_t last_hash; /* of the text of the last answer applied (0: none) */
	size_t last_len;
};

/* ------------------------------------------------------------------ config */

static char *base_url(const struct cfg_namerd *cfg)
{
	char *b = cfg->url ? xstrdup(cfg->url) : xasprintf("http://%s", cfg->addr.text);
	size_t n = strlen(b);

	while (n > 0 && b[n - 1] == '/')
		b[--n] = '\0';
	return b;
}

/* Percent-encodes everything but unreserved characters; '/' becomes %2F. */
static char *url_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(strlen(s) * 3 + 1), *p = out;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

char *namerd_url(const struct cfg_namerd *cfg, bool watch)
{
	char *base = base_url(cfg), *path = url_encode(cfg->path);
	char *url = xasprintf("%s/api/1/resolve/%s?path=%s%s", base, cfg->namespace, path,
			      watch ? "&watch=1" : "");

	free(base);
	free(path);
	return url;
}

static void conf_init(struct namerd_conf *c, const struct cfg_namerd *cfg)
{
	c->base = base_url(cfg);
	c->path = xstrdup(cfg->path);
	c->namespace = xstrdup(cfg->namespace);
	c->trust = cfg->trust_cert_path ? xstrdup(cfg->trust_cert_path) : NULL;
	c->mode = cfg->mode;
	c->interval_ms = cfg->interval_secs * 1000;
	c->timeout_ms = cfg->timeout_ms;
	c->idle_ms = cfg->watch_idle_secs * 1000;
}

static void conf_clear(struct namerd_conf *c)
{
	free(c->base);
	free(c->path);
	free(c->namespace);
	free(c->trust);
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool namerd_same_config(const struct namerd *n, const struct cfg_namerd *cfg)
{
	struct namerd_conf c;
	bool same;

	conf_init(&c, cfg);
	same = str_eq(c.base, n->conf.base) && str_eq(c.path, n->conf.path) &&
	       str_eq(c.namespace, n->conf.namespace) && str_eq(c.trust, n->conf.trust) &&
	       c.mode == n->conf.mode && c.interval_ms == n->conf.interval_ms &&
	       c.timeout_ms == n->conf.timeout_ms && c.idle_ms == n->conf.idle_ms;
	conf_clear(&c);
	return same;
}

/* ------------------------------------------------------------------ status */

struct namerd_stats *namerd_stats(struct namerd *n)
{
	return &n->stats;
}

void namerd_status(struct namerd *n, struct namerd_status *out)
{
	pthread_mutex_lock(&n->lock);
	*out = n->status;
	pthread_mutex_unlock(&n->lock);
}

/* An attempt failed: keep the endpoints, log once per episode.  The message
 * carries namerd's own text (error bodies, causes, error lines), so it is
 * sanitized before it reaches the log or the status. */
PRINTF(3, 4)
static void episode_fail(struct namerd *n, atomic_uint_fast64_t *counter, const char *fmt, ...)
{
	char raw[512], msg[sizeof(n->status.last_error)];
	va_list ap;
	bool first;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	util_sanitize(msg, sizeof(msg), raw, len < 0 ? 0 : MIN((size_t)len, sizeof(raw) - 1));
	atomic_fetch_add(counter, 1);
	pthread_mutex_lock(&n->lock);
	first = !n->status.failing;
	n->status.failing = true;
	snprintf(n->status.last_error, sizeof(n->status.last_error), "%s", msg);
	pthread_mutex_unlock(&n->lock);
	if (first)
		log_warn("%s: namerd %s: %s; keeping the last endpoint set", n->label, n->url, msg);
	else
		log_debug("%s: namerd %s: %s", n->label, n->url, msg);
}

static void episode_ok(struct namerd *n, size_t count)
{
	bool recovered, first;

	atomic_fetch_add(&n->stats.ok, 1);
	pthread_mutex_lock(&n->lock);
	recovered = n->status.failing;
	first = !n->status.answered;
	n->status.failing = false;
	n->status.answered = true;
	n->status.last_update_ms = now_ms();
	n->status.last_error[0] = '\0';
	pthread_mutex_unlock(&n->lock);
	if (recovered)
		log_info("%s: namerd %s answers again", n->label, n->url);
	if (count != n->last_n || first)
		log_info("%s: namerd %s: %zu endpoint(s)", n->label, n->conf.path, count);
	n->last_n = count;
	n->backoff_ms = 0;
}

/* ------------------------------------------------------------------ answers */

/* Applies one Addr document; 0 when it was applied (bound or neg). */
/* FNV-1a: tells an answer that repeats the last one applied (a poll mostly
 * gets the same text again) at a few ms per 10 MB instead of a decode. */
static uint64_t text_hash(const char *text, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)text[i]) * 0x100000001b3ull;
	return h | 1; /* never 0: 0 means none */
}

static int apply_answer(struct namerd *n, const char *text, size_t len)
{
	uint64_t hash = text_hash(text, len);
	struct namerd_answer a;
	char err[NAMERD_ERRLEN];
	int rc = -1;

	if (hash == n->last_hash && len == n->last_len) {
		log_debug("%s: namerd answer unchanged (%zu endpoint(s))", n->label, n->last_n);
		episode_ok(n, n->last_n);
		return 0;
	}
	if (namerd_json_decode(text, len, &a, err, sizeof(err)) < 0) {
		episode_fail(n, &n->stats.bad_response, "bad response: %s", err);
		namerd_answer_clear(&a);
		return -1;
	}
	switch (a.kind) {
	case NAMERD_BOUND:
		balancer_update(n->bal, a.eps, a.n);
		episode_ok(n, a.n);
		rc = 0;
		break;
	case NAMERD_NEG:
		if (n->last_n || !n->status.answered)
			log_warn("%s: namerd says %s does not exist (neg): no endpoints", n->label,
				 n->conf.path);
		balancer_update(n->bal, NULL, 0);
		episode_ok(n, 0);
		rc = 0;
		break;
	case NAMERD_FAILED:
		episode_fail(n, &n->stats.failed, "resolution failed: %s",
			     a.cause ? a.cause : "(no cause given)");
		break;
	case NAMERD_PENDING:
		break; /* not an answer yet */
	}
	namerd_answer_clear(&a); /* resets a.kind: decide before, not here */
	n->last_hash = rc == 0 ? hash : n->last_hash;
	n->last_len = rc == 0 ? len : n->last_len;
	return rc;
}

static bool body_append(struct request *r, const char *data, size_t len)
{
	if (r->len + len > NAMERD_JSON_MAX) {
		r->too_big = true;
		return false;
	}
	if (r->len + len + 1 > r->cap) {
		r->cap = MAX(r->cap * 2, r->len + len + 1);
		r->body = xrealloc(r->body, r->cap);
	}
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return true;
}

/* Watch: applies every complete line; frames split on '\n', never on chunks.  A large
 * frame arrives in many pieces: each byte is searched and moved once. */
static void watch_frames(struct namerd *n, struct request *r)
{
	char *start = r->body, *from = r->body + r->scanned, *nl;

	while ((nl = memchr(from, '\n', r->len - (size_t)(from - r->body)))) {
		size_t len = (size_t)(nl - start);
		if (len > 0 && start[len - 1] == '\r')
			len--;
		if (len > 0 && start[0] != '{') {
			/* namerd ends a failing stream with the error as plain text. */
			int k = snprintf(r->error, sizeof(r->error), "namerd error: ");
			util_sanitize(r->error + k, sizeof(r->error) - (size_t)k, start, len);
		} else if (len > 0 && apply_answer(n, start, len) == 0) {
			r->applied = true;
		}
		start = from = nl + 1;
	}
	if (start != r->body) {
		r->len -= (size_t)(start - r->body);
		memmove(r->body, start, r->len);
	}
	r->scanned = r->len;
}

/* Returning anything but len aborts the transfer (CURLE_WRITE_ERROR). */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct request *r = arg;
	size_t len = size * nmemb;

	r->last_byte_ms = now_ms();
	if (r->status != 200) {
		/* An error (poll only: watch stops at the headers): keep its first
		 * line for the log and drop the rest, however long it runs. */
		body_append(r, data, MIN(len, HINT_MAX - MIN(r->len, HINT_MAX)));
		return r->len >= HINT_MAX || memchr(r->body, '\n', r->len) ? 0 : len;
	}
	if (!body_append(r, data, len))
		return 0;
	if (r->watch)
		watch_frames(r->n, r);
	return len;
}

/* Called once per header line; the empty line ends a response's headers. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct request *r = arg;
	size_t len = size * nmemb;
	long status = 0;

	r->got_header = true;
	r->last_byte_ms = now_ms();
	if (!(len == 2 && data[0] == '\r' && data[1] == '\n') && !(len == 1 && data[0] == '\n'))
		return len;
	curl_easy_getinfo(r->n->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200)
		return len; /* 1xx: the real response follows */
	r->status = status;
	/* A watch error never ends by itself: drop it now, not at watch_idle_secs. */
	return r->watch && status != 200 ? 0 : len;
}

/* ------------------------------------------------------------------ requests */

static int setup_easy(struct namerd *n)
{
	CURL *e = curl_easy_init();

	if (!e)
		return -1;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "linkerd-tcp/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)n->conf.timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	if (n->conf.trust)
		curl_easy_setopt(e, CURLOPT_CAINFO, n->conf.trust);
	n->easy = e;
	return 0;
}

/* Sleeps up to ms, returning early when the thread is told to stop. */
static void nap(struct namerd *n, int64_t ms)
{
	int64_t end = now_ms() + ms;

	while (!atomic_load(&n->stop)) {
		int64_t left = end - now_ms();
		if (left <= 0)
			break;
		curl_multi_poll(n->multi, NULL, 0, (int)MIN(left, 1000), NULL);
	}
}

/* Runs one request to its end; returns the libcurl result, or
 * CURLE_OPERATION_TIMEDOUT when one of our own deadlines passed. */
static CURLcode perform(struct namerd *n, struct request *r)
{
	int64_t start = now_ms();
	CURLcode rc = CURLE_OK;
	int running = 1;

	curl_easy_setopt(n->easy, CURLOPT_URL, n->url);
	curl_easy_setopt(n->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(n->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(n->easy, CURLOPT_TIMEOUT_MS, r->watch ? 0L : (long)n->conf.timeout_ms);
	r->last_byte_ms = start;
	curl_multi_add_handle(n->multi, n->easy);
	while (running && !atomic_load(&n->stop)) {
		int64_t now = now_ms();
		if (!r->got_header && now - start > n->conf.timeout_ms) {
			rc = CURLE_OPERATION_TIMEDOUT;
			break;
		}
		if (r->watch && r->got_header && n->conf.idle_ms > 0 &&
		    now - r->last_byte_ms > n->conf.idle_ms) {
			r->idle = true; /* silent too long: reopen for a fresh snapshot */
			break;
		}
		if (curl_multi_perform(n->multi, &running) != CURLM_OK)
			break;
		if (running)
			curl_multi_poll(n->multi, NULL, 0, TICK_MS, NULL);
	}
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(n->multi, &left)))
		if (m->msg == CURLMSG_DONE && rc == CURLE_OK)
			rc = m->data.result;
	curl_multi_remove_handle(n->multi, n->easy);
	return rc;
}

static void report_transfer_error(struct namerd *n, struct request *r, CURLcode rc)
{
	if (r->too_big)
		episode_fail(n, &n->stats.bad_response, "response larger than %u bytes",
			     NAMERD_JSON_MAX);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		episode_fail(n, &n->stats.timeout, "no answer within %lld ms",
			     (long long)n->conf.timeout_ms);
	else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		 rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
		 rc == CURLE_PARTIAL_FILE)
		episode_fail(n, &n->stats.unreachable, "%s", curl_easy_strerror(rc));
	else
		episode_fail(n, &n->stats.bad_response, "%s", curl_easy_strerror(rc));
}

/* The first line of an error body, for the log. */
static const char *body_hint(struct request *r)
{
	if (!r->body || !r->len)
		return "";
	char *nl = strchr(r->body, '\n');
	if (nl)
		*nl = '\0';
	return r->body;
}

/* One poll; true when its answer was applied.  A non-200 status is an HTTP
 * error even when the transfer then broke (on_body cut the body short). */
static bool poll_once(struct namerd *n)
{
	struct request r = { .n = n, .watch = false };
	CURLcode rc = perform(n, &r);
	bool ok = false;

	if (atomic_load(&n->stop))
		;
	else if (r.status != 0 && r.status != 200)
		episode_fail(n, &n->stats.http_error, "HTTP %ld %s", r.status, body_hint(&r));
	else if (rc != CURLE_OK)
		report_transfer_error(n, &r, rc);
	else
		ok = apply_answer(n, r.body ? r.body : "", r.len) == 0;
	free(r.body);
	return ok;
}

/* One watch stream, to its end; true when it applied at least one answer. */
static bool watch_once(struct namerd *n)
{
	struct request r = { .n = n, .watch = true };
	CURLcode rc = perform(n, &r);

	if (atomic_load(&n->stop)) {
		/* stopping: say nothing */
	} else if (r.status != 0 && r.status != 200) {
		episode_fail(n, &n->stats.http_error, "HTTP %ld", r.status);
	} else if (r.error[0]) {
		episode_fail(n, &n->stats.bad_response, "%s", r.error);
	} else if (r.idle) {
		atomic_fetch_add(&n->stats.stream_ended, 1);
		log_debug("%s: namerd watch stream silent for %lld s; reopening", n->label,
			  (long long)n->conf.idle_ms / 1000);
	} else if (rc != CURLE_OK) {
		if (r.applied)
			atomic_fetch_add(&n->stats.stream_ended, 1);
		report_transfer_error(n, &r, rc);
	} else {
		atomic_fetch_add(&n->stats.stream_ended, 1);
		log_debug("%s: namerd watch stream ended; reopening", n->label);
	}
	free(r.body);
	return r.applied;
}

/* The next jittered backoff (half to all of 0.25 s doubling up to 30 s);
 * episode_ok starts it over. */
static int64_t next_backoff(struct namerd *n)
{
	unsigned b = n->backoff_ms ? MIN(n->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;

	n->backoff_ms = b;
	return (int64_t)(b / 2 + rand_unit() * b / 2);
}

/*
 * How long to wait after a request that started at start.  One that got a
 * good answer is followed by the next no sooner than interval after its own
 * start: a poll every interval, and a watch stream that namerd ends after
 * each answer is reopened at that pace, not in a loop.  Without a good
 * answer the wait is the backoff (at most interval in poll mode).  Watch
 * always waits at least the backoff, which a good answer has reset to its
 * first step, so a stream that ends after a long life reopens within 0.25 s.
 */
static int64_t namerd_next_wait(struct namerd *n, int64_t start, bool good)
{
	int64_t due = good ? start + n->conf.interval_ms - now_ms() : 0, backoff;

	if (n->conf.mode == NAMERD_POLL && good)
		return MAX(due, 0);
	backoff = next_backoff(n); /* once: MIN and MAX evaluate twice */
	if (n->conf.mode == NAMERD_POLL)
		return MIN(backoff, n->conf.interval_ms);
	return MAX(due, backoff);
}

static void *namerd_main(void *arg)
{
	struct namerd *n = arg;

	while (!atomic_load(&n->stop)) {
		int64_t start = now_ms();
		bool good = n->conf.mode == NAMERD_WATCH ? watch_once(n) : poll_once(n);

		nap(n, namerd_next_wait(n, start, good));
	}
	return NULL;
}

/* ------------------------------------------------------------------ lifecycle */

static void namerd_free(struct namerd *n)
{
	if (n->easy)
		curl_easy_cleanup(n->easy);
	if (n->multi)
		curl_multi_cleanup(n->multi);
	conf_clear(&n->conf);
	pthread_mutex_destroy(&n->lock);
	free(n->url);
	free(n->label);
	free(n);
}

struct namerd *namerd_start(const char *label, const struct cfg_namerd *cfg, struct balancer *bal)
{
	struct namerd *n = xcalloc(1, sizeof(*n));
	char name[16];
	int rc;

	n->label = xstrdup(label);
	n->bal = bal;
	conf_init(&n->conf, cfg);
	n->url = namerd_url(cfg, cfg->mode == NAMERD_WATCH);
	snprintf(n->status.url, sizeof(n->status.url), "%s", n->url);
	pthread_mutex_init(&n->lock, NULL);
	atomic_init(&n->stop, false);
	n->multi = curl_multi_init();
	if (!n->multi || setup_easy(n) < 0) {
		log_error("%s: namerd: cannot set up libcurl", label);
		namerd_free(n);
		return NULL;
	}
	snprintf(name, sizeof(name), "namerd-%.8s", label);
	rc = util_thread_start(&n->thread, NAMERD_STACK, name, namerd_main, n);
	if (rc != 0) {
		log_error("%s: namerd: cannot start thread: %s", label, strerror(rc));
		namerd_free(n);
		return NULL;
	}
	log_info("%s: resolving %s through namerd (%s)", label, cfg->path, n->url);
	return n;
}

void namerd_stop(struct namerd *n)
{
	if (!n)
		return;
	atomic_store(&n->stop, true);
	curl_multi_wakeup(n->multi);
	pthread_join(n->thread, NULL);
	namerd_free(n);
}
