#include "auto-config.h"

#include "relay.h"

#include "balancer.h"
#include "config.h"
#include "log.h"
#include "pipes.h"
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ATTEMPTS 101        /* client.retries is at most 100 */
#define PIPE_CHUNK   (64 << 10) /* a default pipe's capacity */
#define PIPE_IDLE_MS 1000       /* a quiet connection gives its pipes back */

static size_t relay_buffer_size = 16384;
static int relay_stop_fd = -1;
static atomic_uint_fast64_t relay_next_id;

/* Per relay thread: the copy buffers, made on first use and kept. */
struct relay_thread {
	char *buf[2];
};

/* One direction of a connection: bytes read from `from` wait in the pipe
 * or the buffer until `to` takes them. */
struct flow {
	int from, to;
	int pipe[2];
	size_t inpipe;
	char *buf;
	size_t off, len;
	uint64_t bytes; /* delivered to `to` */
	bool eof;       /* `from` has no more bytes */
	bool shut;      /* `to` was half-closed after the last byte */
	const char *from_name, *to_name;
};

struct conn {
	uint64_t id;
	struct relay_job *job;
	struct relay_thread *rt;
	struct balancer *bal;
	struct endpoint *ep;
	int cfd, efd;
	bool splice;
	char client[NETADDR_STRLEN];
	char endpoint[NETADDR_STRLEN]; /* a copy: the endpoint may go away at release */
	char reason[128];
	struct flow up;   /* client -> endpoint */
	struct flow down; /* endpoint -> client */
	int64_t last_io_ms;
	bool holding_pipes;
};

void relay_init(size_t buffer_size, unsigned max_pipes)
{
	relay_buffer_size = buffer_size;
	pipes_init(max_pipes);
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

PRINTF(2, 3) static void set_reason(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->reason[0])
		return; /* the first cause is the one worth reporting */
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ connect */

/* Connects to a within deadline_ms; the fd, or -1 with *err set. */
static int connect_within(const struct netaddr *a, int64_t deadline_ms, char *err)
{
	struct pollfd pfd[2];
	int fd = net_connect_start(a, err);
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (fd < 0)
		return -1;
	pfd[0] = (struct pollfd){ .fd = fd, .events = POLLOUT };
	pfd[1] = (struct pollfd){ .fd = relay_stop_fd, .events = POLLIN };
	for (;;) {
		int64_t left = deadline_ms - now_ms();
		if (left <= 0) {
			snprintf(err, NET_ERRLEN, "timed out");
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
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr) {
		snprintf(err, NET_ERRLEN, "%s", strerror(soerr));
		goto fail;
	}
	return fd;
fail:
	close_fd(&fd);
	return -1;
}

static int conn_connect(struct conn *c)
{
	const struct cfg_client *cl = &c->job->pc->client;
	struct proxy_stats *st = proxy_stats(c->job->proxy);
	struct endpoint *tried[MAX_ATTEMPTS];
	int64_t overall = c->job->accept_us / 1000 + c->job->sc->connect_timeout_ms;
	unsigned attempts = (unsigned)MIN(cl->retries + 1, MAX_ATTEMPTS);
	char err[NET_ERRLEN] = "";

	for (unsigned i = 0; i < attempts; i++) {
		int64_t now = now_ms();
		int64_t deadline = MIN(now + cl->connect_timeout_ms, overall);
		const char *why = NULL;
		struct endpoint *e = balancer_pick(c->bal, tried, i, deadline, &why);

		if (!e) {
			if (i == 0) {
				atomic_fetch_add(&st->no_endpoints, 1);
				set_reason(c, "%s", why);
			} else {
				set_reason(c, "connect failed: %s", err);
			}
			return -1;
		}
		tried[i] = e;
		c->efd = connect_within(endpoint_addr(e), deadline, err);
		balancer_report(c->bal, e, c->efd >= 0);
		if (c->efd >= 0) {
			c->ep = e;
			snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint_name(e));
			return 0;
		}
		atomic_fetch_add(&st->connect_failures, 1);
		log_debug("conn %llu: connect to %s failed: %s", (unsigned long long)c->id,
			  endpoint_name(e), err);
		balancer_release(c->bal, e);
		if (now_ms() >= overall)
			break;
	}
	set_reason(c, "connect failed: %s", err);
	return -1;
}

/* ------------------------------------------------------------------ copy */

static void flow_init(struct flow *f, int from, int to, char *buf, const char *from_name,
		      const char *to_name)
{
	memset(f, 0, sizeof(*f));
	f->from = from;
	f->to = to;
	f->pipe[0] = f->pipe[1] = -1;
	f->buf = buf;
	f->from_name = from_name;
	f->to_name = to_name;
}

static bool flow_pending(const struct flow *f)
{
	return f->inpipe > 0 || f->off < f->len;
}

static bool io_would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Moves what `to` accepts now; -1 on a write error. */
static int flow_write(struct conn *c, struct flow *f)
{
	ssize_t n;

	if (f->inpipe > 0) {
		n = splice(f->pipe[0], NULL, f->to, NULL, f->inpipe,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			f->inpipe -= (size_t)n;
	} else {
		n = send(f->to, f->buf + f->off, f->len - f->off, MSG_NOSIGNAL);
		if (n > 0)
			f->off += (size_t)n;
	}
	if (n > 0) {
		f->bytes += (uint64_t)n;
		return 0;
	}
	if (n < 0 && io_would_block())
		return 0;
	set_reason(c, "%s write error: %s", f->to_name, n < 0 ? strerror(errno) : "closed");
	return -1;
}

/* Reads what `from` has now into the pipe (when splicing) or the buffer. */
static int flow_read(struct conn *c, struct flow *f)
{
	ssize_t n;

	if (c->splice && (f->pipe[0] >= 0 || pipes_get(f->pipe))) {
		c->holding_pipes = true;
		n = splice(f->from, NULL, f->pipe[1], NULL, PIPE_CHUNK,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			f->inpipe = (size_t)n;
	} else {
		n = recv(f->from, f->buf, relay_buffer_size, 0);
		if (n > 0) {
			f->off = 0;
			f->len = (size_t)n;
		}
	}
	if (n == 0)
		f->eof = true;
	if (n >= 0 || io_would_block())
		return 0;
	set_reason(c, "%s read error: %s", f->from_name, strerror(errno));
	return -1;
}

static void flow_events(const struct flow *f, struct pollfd *from, struct pollfd *to)
{
	if (f->shut)
		return;
	if (flow_pending(f))
		to->events |= POLLOUT;
	else if (!f->eof)
		from->events |= POLLIN;
}

static int flow_step(struct conn *c, struct flow *f, short rev_from, short rev_to)
{
	if (f->shut)
		return 0;
	if (flow_pending(f)) {
		if ((rev_to & (POLLOUT | POLLERR | POLLHUP)) && flow_write(c, f) < 0)
			return -1;
	} else if (!f->eof && (rev_from & (POLLIN | POLLERR | POLLHUP))) {
		if (flow_read(c, f) < 0)
			return -1;
		/* Write at once: usually the peer takes it all and no poll is needed. */
		if (flow_pending(f) && flow_write(c, f) < 0)
			return -1;
	}
	if (f->eof && !flow_pending(f)) {
		/* Pass the EOF on; the other direction keeps flowing. */
		if (shutdown(f->to, SHUT_WR) < 0 && errno != ENOTCONN) {
			set_reason(c, "%s shutdown: %s", f->to_name, strerror(errno));
			return -1;
		}
		f->shut = true;
	}
	return 0;
}

static void release_idle_pipes(struct conn *c)
{
	if (!flow_pending(&c->up))
		pipes_put(c->up.pipe);
	if (!flow_pending(&c->down))
		pipes_put(c->down.pipe);
	c->holding_pipes = c->up.pipe[0] >= 0 || c->down.pipe[0] >= 0;
}

/* Milliseconds poll may sleep before a timer is due; -1 for none.  Sets the
 * reason and returns -2 when a timer has already fired. */
static int copy_timeout(struct conn *c, int64_t now)
{
	const struct cfg_server *sc = c->job->sc;
	int64_t due = INT64_MAX;

	if (sc->idle_timeout_secs > 0) {
		int64_t t = c->last_io_ms + sc->idle_timeout_secs * 1000;
		if (t <= now) {
			set_reason(c, "idle timeout");
			return -2;
		}
		due = MIN(due, t);
	}
	if (sc->connection_lifetime_secs > 0) {
		int64_t t = c->job->accept_us / 1000 + sc->connection_lifetime_secs * 1000;
		if (t <= now) {
			set_reason(c, "lifetime expired");
			return -2;
		}
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

static void conn_copy(struct conn *c)
{
	struct pollfd pfd[3];

	c->last_io_ms = now_ms();
	while (!(c->up.shut && c->down.shut)) {
		int timeout = copy_timeout(c, now_ms());
		if (timeout == -2)
			return;
		pfd[0] = (struct pollfd){ .fd = c->cfd };
		pfd[1] = (struct pollfd){ .fd = c->efd };
		pfd[2] = (struct pollfd){ .fd = relay_stop_fd, .events = POLLIN };
		flow_events(&c->up, &pfd[0], &pfd[1]);
		flow_events(&c->down, &pfd[1], &pfd[0]);
		/* An fd we want nothing from is left out, so a hang-up on it cannot spin us. */
		for (int i = 0; i < 2; i++)
			if (!pfd[i].events)
				pfd[i].fd = -1;
		int n = poll(pfd, 3, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			set_reason(c, "poll: %s", strerror(errno));
			return;
		}
		if (pfd[2].revents) {
			set_reason(c, "shutdown");
			return;
		}
		if (n == 0)
			continue;
		c->last_io_ms = now_ms();
		if (flow_step(c, &c->up, pfd[0].revents, pfd[1].revents) < 0 ||
		    flow_step(c, &c->down, pfd[1].revents, pfd[0].revents) < 0)
			return;
	}
	set_reason(c, "done");
}

/* ------------------------------------------------------------------ lifecycle */

static struct relay_thread *thread_state(void **state)
{
	struct relay_thread *rt = *state;

	if (!rt) {
		rt = xcalloc(1, sizeof(*rt));
		*state = rt;
	}
	return rt;
}

static void conn_buffers(struct conn *c)
{
	for (int i = 0; i < 2; i++)
		if (!c->rt->buf[i])
			c->rt->buf[i] = xmalloc(relay_buffer_size);
}

/* The one teardown path: closes everything, updates counters, logs once. */
static void conn_close(struct conn *c)
{
	struct relay_job *job = c->job;
	struct proxy_stats *st = proxy_stats(job->proxy);
	double secs = (double)(now_us() - job->accept_us) / 1e6;

	if (flow_pending(&c->up))
		pipes_discard(c->up.pipe);
	if (flow_pending(&c->down))
		pipes_discard(c->down.pipe);
	pipes_put(c->up.pipe);
	pipes_put(c->down.pipe);
	close_fd(&c->cfd);
	close_fd(&c->efd);
	if (c->ep)
		balancer_release(c->bal, c->ep);
	atomic_fetch_add(&st->bytes_from_client, c->up.bytes);
	atomic_fetch_add(&st->bytes_to_client, c->down.bytes);
	atomic_fetch_sub(&st->active, 1);
	log_info("conn %llu %s -> %s %s endpoint=%s from_client=%llu to_client=%llu "
		 "duration=%.3fs reason=%s",
		 (unsigned long long)c->id, c->client, job->server, proxy_label(job->proxy),
		 c->ep ? c->endpoint : "-", (unsigned long long)c->up.bytes,
		 (unsigned long long)c->down.bytes, secs, c->reason[0] ? c->reason : "?");
	proxy_leave(job->proxy);
	config_unref(job->cfg);
	proxy_unref(job->proxy);
}

void relay_run(void *arg, void **state)
{
	struct relay_job *job = arg;
	struct conn c = {
		.id = atomic_fetch_add(&relay_next_id, 1) + 1,
		.job = job,
		.rt = thread_state(state),
		.bal = proxy_balancer(job->proxy),
		.cfd = job->fd,
		.efd = -1,
	};

	netaddr_format(&job->peer, c.client, sizeof(c.client));
	flow_init(&c.up, -1, -1, NULL, "client", "endpoint");
	flow_init(&c.down, -1, -1, NULL, "endpoint", "client");
	net_tune(c.cfd);
	log_debug("conn %llu accepted from %s on %s", (unsigned long long)c.id, c.client,
		  job->server);
	if (conn_connect(&c) < 0)
		goto out;
	log_debug("conn %llu connected to %s", (unsigned long long)c.id, c.endpoint);
	conn_buffers(&c);
	c.splice = true; /* both sides plain; TLS turns this off */
	flow_init(&c.up, c.cfd, c.efd, c.rt->buf[0], "client", "endpoint");
	flow_init(&c.down, c.efd, c.cfd, c.rt->buf[1], "endpoint", "client");
	conn_copy(&c);
out:
	conn_close(&c);
}
