#include "auto-config.h"

#include "relay.h"

#include "balancer.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "pipes.h"
#include "proxy.h"
#include "proxyproto.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ATTEMPTS 101  /* client.retries is at most 100 */
#define BURST_READS  8    /* full reads moved in a row before poll is asked again */
#define PIPE_IDLE_MS 1000 /* a quiet connection gives its pipes back */

static size_t relay_buffer_size = 16384;
static int relay_stop_fd = -1;
static atomic_uint_fast64_t relay_next_id;
static struct relay_stats stats;
static pthread_mutex_t closed_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t closed_cond; /* the last open connection closed */

/* Per relay thread: the copy buffers, made on first use and kept. */
struct relay_thread {
	char *buf[2];
};

enum side_role { SIDE_CLIENT, SIDE_ENDPOINT };

/* One end of a connection: a socket, with a TLS session over it or not.
 * The side_* functions below are the only place that tells the two apart. */
struct side {
	int fd;
	struct tls_conn *tls;
	enum side_role role;
	short want_read;  /* what a read waits for: POLLIN, or POLLOUT for TLS */
	short want_write; /* what a write waits for: POLLOUT, or POLLIN for TLS */
};

/* One direction of a connection: bytes read from `from` wait in the pipe
 * or the buffer until `to` takes them. */
struct flow {
	struct side *from, *to;
	struct pipe pipe;
	size_t inpipe;
	char *buf;
	size_t off, len;
	uint64_t bytes; /* delivered to `to` */
	bool eof;       /* `from` has no more bytes */
	bool shut;      /* `to` was half-closed after the last byte */
};

struct conn {
	uint64_t id;
	struct proxy_job *job;
	void **state; /* the pool's slot for this thread's struct relay_thread */
	struct balancer *bal;
	struct endpoint *ep;
	struct side client, endpoint;
	bool splice;
	char peer[NETADDR_STRLEN];
	struct netaddr src, dst; /* the client and the address it reached (PROXY aware) */
	char endpoint_name[NETADDR_STRLEN]; /* the last tried: it may go away at release */
	char reason[TLS_ERRLEN + 64];       /* whole: a TLS error is a sentence or two */
	bool reason_set;
	enum close_cause cause;
	int64_t connected_us; /* 0 until an endpoint is ready */
	struct flow up;       /* client -> endpoint */
	struct flow down;     /* endpoint -> client */
	int64_t last_io_ms;
	bool holding_pipes;
	/* Parking. */
	struct parked pk;
	int64_t park_ms;     /* park_idle_ms of its configuration; 0: never */
	unsigned parks;      /* times parked */
	enum park_wake woke; /* why it was handed back last */
	int64_t woken_us;    /* when; 0 once its next byte moved */
	bool park_failed;    /* the parked set refused it once: do not retry */
};

struct relay_stats *relay_stats(void)
{
	return &stats;
}

void relay_init(size_t buffer_size, unsigned max_pipes)
{
	pthread_condattr_t ca;

	relay_buffer_size = buffer_size;
	pipes_init(max_pipes);
	histogram_init(&stats.wake_delay, histogram_wake_bounds, histogram_wake_nbounds);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&closed_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (relay_stop_fd < 0) {
		relay_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (relay_stop_fd < 0)
			fatal("eventfd: %s", strerror(errno));
	}
}

void relay_abort_all(void)
{
	uint64_t one = 1;

	if (write(relay_stop_fd, &one, sizeof(one)) < 0)
		log_error("cannot stop relays: %s", strerror(errno));
}

void relay_shutdown(void)
{
	pipes_shutdown();
	close_fd(&relay_stop_fd);
}

void relay_thread_state_free(void *state)
{
	struct relay_thread *rt = state;

	free(rt->buf[0]);
	free(rt->buf[1]);
	free(rt);
}

/* Every line about a connection starts "conn N ": the id that ties its
 * debug lines to its summary line. */
#define CONN_FMT   "conn %llu "
#define CONN_ID(c) ((unsigned long long)(c)->id)

/* The client's address as text, formatted on first use only. */
static const char *conn_peer(struct conn *c)
{
	if (!c->peer[0])
		netaddr_format(&c->src, c->peer, sizeof(c->peer));
	return c->peer;
}

PRINTF(3, 4) static void set_reason(struct conn *c, enum close_cause cause, const char *fmt, ...)
{
	va_list ap;

	if (c->reason_set)
		return; /* the first cause is the one worth reporting */
	c->reason_set = true;
	c->cause = cause;
	if (!log_access_wanted())
		return; /* nobody will read it */
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ connect */

static bool io_would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static enum connect_result connect_result_of(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return CONNECT_REFUSED;
	case ETIMEDOUT:
		return CONNECT_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
		return CONNECT_UNREACHABLE;
	case ECONNRESET:
	case ECONNABORTED:
		return CONNECT_RESET;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		return CONNECT_LOCAL;
	default:
		return CONNECT_OTHER;
	}
}

/* Connects to a within deadline_ms; the fd, or -1 with *err and *why set. */
static int connect_within(const struct netaddr *a, int64_t deadline_ms, char *err,
			  enum connect_result *why)
{
	struct pollfd pfd[2];
	int fd = net_connect_start(a, err);
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	*why = CONNECT_OTHER;
	if (fd < 0) {
		*why = connect_result_of(errno);
		return -1;
	}
	pfd[0] = (struct pollfd){ .fd = fd, .events = POLLOUT };
	pfd[1] = (struct pollfd){ .fd = relay_stop_fd, .events = POLLIN };
	for (;;) {
		int64_t left = deadline_ms - now_ms();
		if (left <= 0) {
			snprintf(err, NET_ERRLEN, "timed out");
			*why = CONNECT_TIMEOUT;
			goto fail;
		}
		int n = poll(pfd, 2, (int)MIN(left, (int64_t)INT32_MAX));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, NET_ERRLEN, "poll: %s", strerror(errno));
			goto fail;
		}
		if (pfd[1].revents) {
			snprintf(err, NET_ERRLEN, "shutting down");
			goto fail;
		}
		if (pfd[0].revents)
			break;
	}
	/* Only POLLOUT: connected, no error to ask for. */
	if (pfd[0].revents != POLLOUT && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr) {
		snprintf(err, NET_ERRLEN, "%s", strerror(soerr));
		*why = connect_result_of(soerr);
		goto fail;
	}
	*why = CONNECT_OK;
	return fd;
fail:
	close_fd(&fd);
	return -1;
}

/* Waits until fd is ready for events or deadline_ms passes; false on timeout,
 * error or shutdown. */
static bool wait_fd(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		int64_t left = deadline_ms - now_ms();
		struct pollfd pfd[2] = { { .fd = fd, .events = events },
					 { .fd = relay_stop_fd, .events = POLLIN } };
		if (left <= 0)
			return false;
		int n = poll(pfd, 2, (int)MIN(left, (int64_t)INT32_MAX));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || pfd[1].revents)
			return false;
		return true;
	}
}

/* Sends the PROXY header for this connection's client to the endpoint. */
static int send_proxy_header(struct conn *c, int version, int64_t deadline, char *err)
{
	uint8_t hdr[PROXYPROTO_MAX];
	size_t len, off = 0;

	if (c->dst.len == 0 && netaddr_local(c->client.fd, &c->dst) < 0)
		memset(&c->dst, 0, sizeof(c->dst));
	len = proxyproto_build(version, &c->src, &c->dst, hdr, sizeof(hdr));
	while (off < len) {
		ssize_t n = send(c->endpoint.fd, hdr + off, len - off, MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && io_would_block() && wait_fd(c->endpoint.fd, POLLOUT, deadline))
			continue;
		else {
			snprintf(err, TLS_ERRLEN, "PROXY header: %s",
				 n < 0 ? strerror(errno) : "?");
			return -1;
		}
	}
	return 0;
}

/* Connects, then (with client TLS) runs the handshake. */
static enum connect_result connect_endpoint(struct conn *c, struct endpoint *e, int64_t deadline,
					    char *err)
{
	struct tls_creds *creds = c->job->client_tls;
	enum connect_result r;

	c->endpoint.fd = connect_within(endpoint_addr(e), deadline, err, &r);
	if (c->endpoint.fd < 0)
		return r;
	if (c->job->sc->proxy_protocol != PROXY_PROTOCOL_NONE &&
	    send_proxy_header(c, c->job->sc->proxy_protocol, deadline, err) < 0) {
		close_fd(&c->endpoint.fd);
		return CONNECT_RESET;
	}
	if (!creds)
		return r;
	c->endpoint.tls = tls_conn_new(creds, c->endpoint.fd, err);
	if (c->endpoint.tls && tls_handshake(c->endpoint.tls, deadline, relay_stop_fd, err) == 0)
		return CONNECT_OK;
	atomic_fetch_add(&proxy_stats(c->job->proxy)->endpoint_tls_failures, 1);
	tls_conn_free(c->endpoint.tls);
	c->endpoint.tls = NULL;
	close_fd(&c->endpoint.fd);
	return CONNECT_TLS;
}

static int conn_connect(struct conn *c)
{
	const struct cfg_client *cl = &c->job->pc->client;
	struct proxy_stats *st = proxy_stats(c->job->proxy);
	struct endpoint *tried[MAX_ATTEMPTS];
	int64_t overall = c->job->accept_us / 1000 + c->job->sc->connect_timeout_ms;
	unsigned attempts = (unsigned)MIN(cl->retries + 1, MAX_ATTEMPTS);
	char err[TLS_ERRLEN] = "";

	for (unsigned i = 0; i < attempts; i++) {
		int64_t now = now_ms();
		int64_t deadline = MIN(now + cl->connect_timeout_ms, overall);
		enum pick_failure why = PICK_NO_ENDPOINTS;
		struct endpoint *e = balancer_pick(c->bal, tried, i, deadline, &why);

		if (!e) {
			if (i == 0) {
				set_reason(c,
					   why == PICK_NOT_RESOLVED ? CLOSE_NOT_RESOLVED
								    : CLOSE_NO_ENDPOINTS,
					   "%s", pick_failure_name(why));
			} else {
				set_reason(c, CLOSE_CONNECT_FAILED, "connect failed: %s", err);
			}
			return -1;
		}
		tried[i] = e;
		snprintf(c->endpoint_name, sizeof(c->endpoint_name), "%s", endpoint_name(e));
		enum connect_result r = connect_endpoint(c, e, deadline, err);
		if (balancer_report(c->bal, e, r))
			log_warn(
				"%s: endpoint %s is failing: %s (%s); warned once until it answers",
				proxy_label(c->job->proxy), endpoint_name(e), err,
				connect_result_name(r));
		if (r == CONNECT_OK) {
			c->connected_us = now_us();
			c->ep = e;
			return 0;
		}
		atomic_fetch_add(&st->connect_failures, 1);
		log_debug(CONN_FMT "connect to %s failed: %s", CONN_ID(c), endpoint_name(e), err);
		balancer_release(c->bal, e, 0, 0);
		if (now_ms() >= overall)
			break;
	}
	set_reason(c, CLOSE_CONNECT_FAILED, "connect failed: %s", err);
	return -1;
}

/* Reads the PROXY header a load balancer in front sends, exactly.  Bytes that
 * hold no whole header yet are all header: they are consumed into buf, so the
 * next poll waits for new bytes (a peeked byte keeps POLLIN true forever).
 * Only the bytes after buf are peeked, and of those only the header's own
 * are consumed: what follows it is the client's data. */
static int accept_proxy_header(struct conn *c)
{
	int64_t deadline = c->job->accept_us / 1000 + c->job->sc->connect_timeout_ms;
	uint8_t buf[PROXYPROTO_MAX];
	struct proxyproto_info info;
	const char *why = "";
	size_t have = 0;
	int len;

	for (;;) {
		ssize_t n = recv(c->client.fd, buf + have, sizeof(buf) - have, MSG_PEEK);
		if (n == 0 || (n < 0 && !io_would_block())) {
			set_reason(c, CLOSE_CLIENT_ERROR, "client left before its PROXY header");
			return -1;
		}
		len = n > 0 ? proxyproto_parse(buf, have + (size_t)n, &info, &why) : 0;
		if (len < 0) {
			set_reason(c, CLOSE_CLIENT_ERROR, "bad PROXY header: %s", why);
			return -1;
		}
		if (len > 0 && (size_t)len <= have) {
			set_reason(c, CLOSE_CLIENT_ERROR, "bad PROXY header: %s", "inconsistent");
			return -1;
		}
		size_t take = len > 0 ? (size_t)len - have : (size_t)MAX(n, 0);
		if (take > 0 && recv(c->client.fd, buf + have, take, 0) != (ssize_t)take) {
			set_reason(c, CLOSE_CLIENT_ERROR, "PROXY header: short read");
			return -1;
		}
		have += take;
		if (len > 0)
			break;
		if (have == sizeof(buf) || !wait_fd(c->client.fd, POLLIN, deadline)) {
			set_reason(c, CLOSE_CLIENT_ERROR, "no complete PROXY header in time");
			return -1;
		}
	}
	if (!info.local) {
		c->src = info.src;
		c->dst = info.dst;
		c->peer[0] = '\0'; /* formatted again from src when needed */
	}
	return 0;
}

/* The client's TLS handshake, bounded by the server's connect timeout. */
static int accept_tls(struct conn *c)
{
	int64_t deadline = c->job->accept_us / 1000 + c->job->sc->connect_timeout_ms;
	char err[TLS_ERRLEN];

	c->client.tls = tls_conn_new(c->job->server_tls, c->client.fd, err);
	if (c->client.tls && tls_handshake(c->client.tls, deadline, relay_stop_fd, err) == 0) {
		log_debug(CONN_FMT "TLS %s sni=%s alpn=%s peer=%s", CONN_ID(c),
			  tls_version(c->client.tls), tls_sni(c->client.tls),
			  tls_alpn(c->client.tls), tls_peer(c->client.tls));
		return 0;
	}
	atomic_fetch_add(&c->job->ss->tls_handshake_failures, 1);
	set_reason(c, CLOSE_CLIENT_TLS, "client TLS handshake failed: %s", err);
	return -1;
}

/* ------------------------------------------------------------------ copy */

static void flow_init(struct flow *f, struct side *from, struct side *to, char *buf)
{
	memset(f, 0, sizeof(*f));
	f->from = from;
	f->to = to;
	f->pipe = PIPE_NONE;
	f->buf = buf;
}

static bool flow_pending(const struct flow *f)
{
	return f->inpipe > 0 || f->off < f->len;
}

static const char *side_name(const struct side *s)
{
	return s->role == SIDE_CLIENT ? "client" : "endpoint";
}

static enum close_cause side_cause(const struct side *s)
{
	return s->role == SIDE_CLIENT ? CLOSE_CLIENT_ERROR : CLOSE_ENDPOINT_ERROR;
}

static const char *side_error(const struct side *s)
{
	return s->tls ? tls_last_error(s->tls) : strerror(errno);
}

static ssize_t side_read(struct side *s, void *buf, size_t len)
{
	return s->tls ? tls_read(s->tls, buf, len) : recv(s->fd, buf, len, 0);
}

static ssize_t side_write(struct side *s, const void *buf, size_t len)
{
	return s->tls ? tls_write(s->tls, buf, len) : send(s->fd, buf, len, MSG_NOSIGNAL);
}

/* Half-closes the sending direction: close_notify, or shutdown(SHUT_WR). */
static int side_shutdown(struct side *s)
{
	return s->tls ? tls_shutdown_write(s->tls) : shutdown(s->fd, SHUT_WR);
}

/* What a would-block operation waits for: a TLS record may need the other
 * direction (a read may have to write, and the reverse). */
static short side_wants(const struct side *s, short plain)
{
	return s->tls ? tls_wants(s->tls) : plain;
}

/* Moves what `to` accepts now; -1 on a write error. */
static int flow_write(struct conn *c, struct flow *f)
{
	struct side *to = f->to;
	ssize_t n;

	if (f->inpipe > 0) {
		n = splice(f->pipe.fd[0], NULL, to->fd, NULL, f->inpipe,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			f->inpipe -= (size_t)n;
	} else {
		n = side_write(to, f->buf + f->off, f->len - f->off);
		if (n > 0)
			f->off += (size_t)n;
	}
	if (n > 0) {
		f->bytes += (uint64_t)n;
		if (c->woken_us) {
			histogram_observe(&stats.wake_delay,
					  (double)(now_us() - c->woken_us) / 1e6);
			c->woken_us = 0;
		}
		return 0;
	}
	if (n < 0 && io_would_block()) {
		to->want_write = side_wants(to, POLLOUT);
		return 0;
	}
	set_reason(c, side_cause(to), "%s write error: %s", side_name(to),
		   n < 0 ? side_error(to) : "closed");
	return -1;
}

/* The thread's private state, made on first use: a relay thread that only
 * splices never calls malloc, so it never touches a malloc arena. */
static struct relay_thread *thread_state(void **state)
{
	struct relay_thread *rt = *state;

	if (!rt) {
		rt = xcalloc(1, sizeof(*rt));
		*state = rt;
	}
	return rt;
}

/* The copy buffer of a direction, made on first use: spliced connections
 * never touch one, so idle plain connections cost no buffer memory. */
static char *flow_buffer(struct conn *c, struct flow *f)
{
	int i = f == &c->up ? 0 : 1;

	if (!f->buf) {
		struct relay_thread *rt = thread_state(c->state);
		if (!rt->buf[i])
			rt->buf[i] = xmalloc(relay_buffer_size);
		f->buf = rt->buf[i];
	}
	return f->buf;
}

/* Reads what `from` has now into the pipe (when splicing) or the buffer;
 * *full says the read filled all the room it had (more is likely waiting). */
static int flow_read(struct conn *c, struct flow *f, bool *full)
{
	struct side *from = f->from;
	ssize_t n;

	*full = false;
	if (c->splice && (f->pipe.fd[0] >= 0 || pipes_get(&f->pipe))) {
		c->holding_pipes = true;
		n = splice(from->fd, NULL, f->pipe.fd[1], NULL, f->pipe.cap,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			f->inpipe = (size_t)n;
		*full = n > 0 && (size_t)n == f->pipe.cap;
	} else {
		n = side_read(from, flow_buffer(c, f), relay_buffer_size);
		if (n > 0) {
			f->off = 0;
			f->len = (size_t)n;
		}
		*full = n > 0 && (size_t)n == relay_buffer_size;
	}
	if (n == 0)
		f->eof = true;
	if (n >= 0)
		return 0;
	if (io_would_block()) {
		from->want_read = side_wants(from, POLLIN);
		return 0;
	}
	set_reason(c, side_cause(from), "%s read error: %s", side_name(from), side_error(from));
	return -1;
}

/* Passes EOF on: close_notify (TLS) and shutdown(SHUT_WR).  When the other
 * direction is over too, a plain socket is about to be closed, and its
 * close sends the FIN (it has nothing unread: its EOF was read). */
static int flow_shutdown(struct conn *c, struct flow *f)
{
	struct side *to = f->to;
	const struct flow *other = f == &c->up ? &c->down : &c->up;

	if ((!to->tls && other->shut) || side_shutdown(to) == 0 || errno == ENOTCONN) {
		f->shut = true;
		return 0;
	}
	if (io_would_block() && to->tls) {
		to->want_write = side_wants(to, POLLOUT);
		return 0;
	}
	set_reason(c, side_cause(to), "%s shutdown: %s", side_name(to), side_error(to));
	return -1;
}

/* Decrypted bytes already waiting inside the TLS session count as readable. */
static bool flow_ready(const struct flow *f)
{
	return !f->shut && !f->eof && !flow_pending(f) && f->from->tls &&
	       tls_pending(f->from->tls) > 0;
}

static void flow_events(const struct flow *f, struct pollfd *from, struct pollfd *to)
{
	if (f->shut)
		return;
	if (flow_pending(f) || f->eof) /* bytes, or the close_notify, to deliver */
		to->events |= f->to->want_write;
	else
		from->events |= f->from->want_read;
}

static int flow_step(struct conn *c, struct flow *f, short rev_from, short rev_to)
{
	const short any = POLLIN | POLLOUT | POLLERR | POLLHUP;

	if (f->shut)
		return 0;
	if (flow_pending(f)) {
		if ((rev_to & any) && flow_write(c, f) < 0)
			return -1;
	} else if (!f->eof && ((rev_from & any) || flow_ready(f))) {
		/* Read, then write at once: usually the peer takes it all and no poll
		 * is needed; while reads come back full, go on without polling. */
		bool full = true;
		for (int i = 0; i < BURST_READS && full && !flow_pending(f) && !f->eof; i++) {
			if (flow_read(c, f, &full) < 0)
				return -1;
			if (flow_pending(f) && flow_write(c, f) < 0)
				return -1;
		}
	}
	if (f->eof && !flow_pending(f) && flow_shutdown(c, f) < 0)
		return -1;
	return 0;
}

static void release_idle_pipes(struct conn *c)
{
	if (!flow_pending(&c->up))
		pipes_put(&c->up.pipe);
	if (!flow_pending(&c->down))
		pipes_put(&c->down.pipe);
	c->holding_pipes = c->up.pipe.fd[0] >= 0 || c->down.pipe.fd[0] >= 0;
}

/* When the connection's own timers fire (idle timeout, lifetime); INT64_MAX
 * for never.  Sets the reason and returns 0 when one has fired already. */
static int64_t conn_due(struct conn *c, int64_t now)
{
	const struct cfg_server *sc = c->job->sc;
	int64_t due = INT64_MAX;

	if (sc->idle_timeout_secs > 0) {
		int64_t t = c->last_io_ms + sc->idle_timeout_secs * 1000;
		if (t <= now) {
			set_reason(c, CLOSE_IDLE, "idle timeout");
			return 0;
		}
		due = MIN(due, t);
	}
	if (sc->connection_lifetime_secs > 0) {
		int64_t t = c->job->accept_us / 1000 + sc->connection_lifetime_secs * 1000;
		if (t <= now) {
			set_reason(c, CLOSE_LIFETIME, "lifetime expired");
			return 0;
		}
		due = MIN(due, t);
	}
	return due;
}

/* A direction that still reads, or is over: nothing waits to be written. */
static bool flow_quiet(const struct flow *f)
{
	return f->shut || (!f->eof && !flow_pending(f) &&
			   (!f->from->tls ||
			    (f->from->want_read == POLLIN && tls_pending(f->from->tls) == 0)));
}

/* Nothing in flight in our hands: the connection may leave its thread. */
static bool conn_parkable(const struct conn *c)
{
	return c->park_ms > 0 && !c->park_failed && flow_quiet(&c->up) && flow_quiet(&c->down);
}

#define TIMER_FIRED (-2)
#define PARK_NOW    (-3)

/* Milliseconds poll may sleep before something is due; -1 for nothing.
 * TIMER_FIRED when a timer fired (the reason is set), PARK_NOW when the
 * connection has been quiet for park_idle_ms. */
static int copy_timeout(struct conn *c, int64_t now)
{
	int64_t due;

	if (flow_ready(&c->up) || flow_ready(&c->down))
		return 0;
	due = conn_due(c, now);
	if (due == 0)
		return TIMER_FIRED;
	if (conn_parkable(c)) {
		int64_t t = c->last_io_ms + c->park_ms;
		if (t <= now)
			return PARK_NOW;
		due = MIN(due, t);
	}
	if (c->holding_pipes) {
		int64_t t = c->last_io_ms + PIPE_IDLE_MS;
		if (t <= now)
			release_idle_pipes(c);
		else
			due = MIN(due, t);
	}
	if (due == INT64_MAX)
		return -1;
	return (int)MIN(due - now, (int64_t)INT32_MAX);
}

enum copy_end { COPY_CLOSE, COPY_PARKED };

static void conn_woken(struct parked *pk, enum park_wake why);

/* Hands the connection to its listener's parked set.  COPY_PARKED: it is
 * no longer this thread's (it may already run elsewhere).  COPY_CLOSE: a
 * drain is on, close it.  Otherwise (the set refused it) it stays here. */
static int conn_park(struct conn *c)
{
	struct proxy_job *job = c->job;
	int e;

	pipes_put(&c->up.pipe);
	pipes_put(&c->down.pipe);
	c->holding_pipes = false;
	c->up.buf = c->down.buf = NULL; /* the thread's: taken again where it resumes */
	c->pk.fd[0] = !c->up.shut ? c->client.fd : -1;
	c->pk.fd[1] = !c->down.shut ? c->endpoint.fd : -1;
	c->pk.due_ms = conn_due(c, now_ms());
	c->pk.wake = conn_woken;
	c->parks++;
	atomic_fetch_add_explicit(&stats.parked, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&stats.parks, 1, memory_order_relaxed);
	log_debug(CONN_FMT "parked", CONN_ID(c));
	if (listener_park(job->listener, &c->pk))
		return COPY_PARKED;
	e = errno;
	c->parks--;
	atomic_fetch_sub_explicit(&stats.parked, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&stats.parks, 1, memory_order_relaxed);
	if (e == ESHUTDOWN) {
		set_reason(c, CLOSE_DRAINED, "drained while idle");
		return COPY_CLOSE;
	}
	log_warn(CONN_FMT "cannot park: %s; it keeps its thread", CONN_ID(c), strerror(e));
	c->park_failed = true;
	return -1;
}

/* On the parker thread: the connection goes back to the pool. */
static void conn_woken(struct parked *pk, enum park_wake why)
{
	struct conn *c = (struct conn *)((char *)pk - offsetof(struct conn, pk));

	c->woke = why;
	c->woken_us = now_us();
	atomic_fetch_sub_explicit(&stats.parked, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&stats.wakes, 1, memory_order_relaxed);
	proxy_job_resume(c->job);
}

/* Polls the two sockets (and, while quiet, the pool's demand); the number
 * of ready descriptors, or -1 with the reason set. */
static int copy_poll(struct conn *c, struct pollfd pfd[4], int timeout, struct pool *pool,
		     bool quiet)
{
	pfd[0] = (struct pollfd){ .fd = c->client.fd };
	pfd[1] = (struct pollfd){ .fd = c->endpoint.fd };
	pfd[2] = (struct pollfd){ .fd = relay_stop_fd, .events = POLLIN };
	pfd[3] = (struct pollfd){ .fd = -1, .events = POLLIN };
	flow_events(&c->up, &pfd[0], &pfd[1]);
	flow_events(&c->down, &pfd[1], &pfd[0]);
	/* An fd we want nothing from is left out, so a hang-up on it cannot spin us. */
	for (int i = 0; i < 2; i++)
		if (!pfd[i].events)
			pfd[i].fd = -1;
	if (quiet) {
		pfd[3].fd = pool_nudge_fd(pool);
		pool_quiet(pool, true);
	} else if (pool_nudged(pool)) { /* busy now: let the pool ask another thread */
		pool_unclaim(pool);
	}
	for (;;) {
		int n = poll(pfd, 4, timeout);
		if (n >= 0 || errno != EINTR) {
			if (quiet)
				pool_quiet(pool, false);
			if (n < 0)
				set_reason(c, CLOSE_CLIENT_ERROR, "poll: %s", strerror(errno));
			return n;
		}
	}
}

/* Other work waits for a thread and this quiet connection was asked (or
 * nobody was): park it.  COPY_PARKED or COPY_CLOSE (drained); -1: it stays. */
static int make_room(struct conn *c, struct pool *pool)
{
	int r;

	if (!pool_claim(pool))
		return -1;
	r = conn_park(c);
	if (r < 0)
		pool_unclaim(pool);
	return r;
}

static enum copy_end conn_copy(struct conn *c)
{
	struct pool *pool = proxy_pool(c->job->proxy);
	struct pollfd pfd[4];

	while (!(c->up.shut && c->down.shut)) {
		int timeout = copy_timeout(c, now_ms());
		int r;
		if (timeout == TIMER_FIRED)
			return COPY_CLOSE;
		if (timeout == PARK_NOW && (r = conn_park(c)) >= 0)
			return (enum copy_end)r;
		if (timeout < -1)
			continue;
		bool quiet = conn_parkable(c);
		if (quiet && pool_wanted(pool) && (r = make_room(c, pool)) >= 0)
			return (enum copy_end)r;
		int n = copy_poll(c, pfd, timeout, pool, quiet);
		if (n < 0)
			return COPY_CLOSE;
		if (pfd[2].revents) {
			set_reason(c, CLOSE_SHUTDOWN, "shutdown");
			return COPY_CLOSE;
		}
		/* Other work waits for a thread and this connection is quiet: make room. */
		if ((pfd[3].revents & POLLIN) && n == 1) {
			if ((r = make_room(c, pool)) >= 0)
				return (enum copy_end)r;
			continue;
		}
		if (n == 0 && !flow_ready(&c->up) && !flow_ready(&c->down))
			continue;
		c->last_io_ms = now_ms();
		if (flow_step(c, &c->up, pfd[0].revents, pfd[1].revents) < 0 ||
		    flow_step(c, &c->down, pfd[1].revents, pfd[0].revents) < 0)
			return COPY_CLOSE;
	}
	set_reason(c, CLOSE_DONE, "done");
	return COPY_CLOSE;
}

/* ------------------------------------------------------------------ lifecycle */

static void side_close(struct side *s)
{
	tls_conn_free(s->tls);
	s->tls = NULL;
	close_fd(&s->fd);
}

/* The TLS part of the summary line: what the client negotiated. */
static void tls_summary(const struct conn *c, char *buf, size_t len)
{
	struct tls_conn *t = c->client.tls;

	if (!t) { /* passed through or plain: the name it was routed by, if any */
		if (c->job->sni[0])
			snprintf(buf, len, " sni=%s", c->job->sni);
		else
			buf[0] = '\0';
		return;
	}
	snprintf(buf, len, " tls=%s sni=%s alpn=%s peer=\"%s\"", tls_version(t), tls_sni(t),
		 tls_alpn(t), tls_peer(t));
}

/* The one teardown path: closes everything, updates counters, logs once. */
static void conn_close(struct conn *c)
{
	struct proxy_job *job = c->job;
	struct proxy_stats *st = proxy_stats(job->proxy);
	struct server_stats *ss = job->ss;
	int64_t end = now_us();
	double secs = (double)(end - job->accept_us) / 1e6;
	bool logging = log_access_wanted();
	char tls[320];

	if (logging)
		tls_summary(c, tls, sizeof(tls)); /* before the sessions go */
	if (flow_pending(&c->up))
		pipes_discard(&c->up.pipe);
	if (flow_pending(&c->down))
		pipes_discard(&c->down.pipe);
	pipes_put(&c->up.pipe);
	pipes_put(&c->down.pipe);
	side_close(&c->client);
	side_close(&c->endpoint);
	if (c->ep)
		balancer_release(c->bal, c->ep, c->up.bytes, c->down.bytes);
	atomic_fetch_add_explicit(&ss->bytes_from_client, c->up.bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&ss->bytes_to_client, c->down.bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&ss->closes[c->cause], 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&ss->active, 1, memory_order_relaxed);
	if (c->connected_us)
		histogram_observe(&st->connect_latency,
				  (double)(c->connected_us - job->accept_us) / 1e6);
	histogram_observe(&st->duration, secs);
	if (logging)
		log_access(CONN_FMT "%s -> %s %s endpoint=%s from_client=%llu to_client=%llu "
				    "duration=%.3fs parks=%u%s reason=%s",
			   CONN_ID(c), conn_peer(c), job->server, proxy_label(job->proxy),
			   c->endpoint_name[0] ? c->endpoint_name : "-",
			   (unsigned long long)c->up.bytes, (unsigned long long)c->down.bytes, secs,
			   c->parks, tls, c->reason[0] ? c->reason : "?");
	proxy_job_release(job);
	free(c);
	if (atomic_fetch_sub_explicit(&stats.open, 1, memory_order_acq_rel) == 1) {
		pthread_mutex_lock(&closed_lock);
		pthread_cond_broadcast(&closed_cond);
		pthread_mutex_unlock(&closed_lock);
	}
}

/* Accepted: the PROXY header, the client's TLS, the endpoint; 0 when the
 * copy may begin. */
static int conn_open(struct conn *c)
{
	struct proxy_job *job = c->job;

	log_debug(CONN_FMT "accepted from %s on %s", CONN_ID(c), conn_peer(c), job->server);
	if (job->sc->accept_proxy_protocol && accept_proxy_header(c) < 0)
		return -1;
	if (job->server_tls && accept_tls(c) < 0)
		return -1;
	if (conn_connect(c) < 0)
		return -1;
	log_debug(CONN_FMT "connected to %s", CONN_ID(c), c->endpoint_name);
	c->splice = !c->client.tls && !c->endpoint.tls;
	c->last_io_ms = now_ms();
	c->client.want_read = c->endpoint.want_read = POLLIN;
	c->client.want_write = c->endpoint.want_write = POLLOUT;
	return 0;
}

static struct conn *conn_new(struct proxy_job *job)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->id = atomic_fetch_add(&relay_next_id, 1) + 1;
	c->job = job;
	c->bal = proxy_balancer(job->proxy);
	c->client = (struct side){ .fd = job->fd, .role = SIDE_CLIENT };
	c->endpoint = (struct side){ .fd = -1, .role = SIDE_ENDPOINT };
	c->src = job->peer;
	c->park_ms = job->cfg->park_idle_ms;
	flow_init(&c->up, &c->client, &c->endpoint, NULL);
	flow_init(&c->down, &c->endpoint, &c->client, NULL);
	atomic_fetch_add_explicit(&stats.open, 1, memory_order_relaxed);
	return c;
}

/* A new connection: set up, then copy; the client's first bytes are usually
 * queued by now, so they are taken without a poll. */
static enum copy_end conn_start(struct conn *c)
{
	if (conn_open(c) < 0 || flow_step(c, &c->up, POLLIN, 0) < 0)
		return COPY_CLOSE;
	return conn_copy(c);
}

/* A woken connection: on with the copy, unless it was woken to be drained. */
static enum copy_end conn_resume(struct conn *c)
{
	log_debug(CONN_FMT "woken (%s)", CONN_ID(c),
		  c->woke == PARK_WAKE_IO      ? "ready"
		  : c->woke == PARK_WAKE_TIMER ? "timer"
					       : "drain");
	if (c->woke == PARK_WAKE_DRAIN) {
		set_reason(c, CLOSE_DRAINED, "drained while idle");
		return COPY_CLOSE;
	}
	if (c->woke == PARK_WAKE_IO)
		c->last_io_ms = now_ms(); /* the park timer starts again */
	return conn_copy(c);
}

void relay_run(struct pool_job *pj, void **state)
{
	struct proxy_job *job = proxy_job_of(pj);
	struct conn *c = job->conn;
	enum copy_end end;

	if (c) {
		c->state = state;
		end = conn_resume(c);
	} else {
		c = conn_new(job);
		c->state = state;
		job->conn = c;
		end = conn_start(c);
	}
	if (end == COPY_CLOSE)
		conn_close(c);
}

unsigned relay_wait_closed(int64_t deadline_ms)
{
	unsigned left;

	pthread_mutex_lock(&closed_lock);
	while (atomic_load(&stats.open) > 0 &&
	       cond_wait_until(&closed_cond, &closed_lock, deadline_ms))
		;
	left = (unsigned)atomic_load(&stats.open);
	pthread_mutex_unlock(&closed_lock);
	return left;
}
