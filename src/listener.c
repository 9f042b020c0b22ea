#include "auto-config.h"

#include "listener.h"

#include "log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LISTEN_BACKLOG  4096
#define ACCEPTOR_STACK  (128u << 10)
#define EMFILE_PAUSE_MS 1000

struct listener {
	int fd;
	int wake_fd; /* eventfd: written to stop the acceptor */
	atomic_bool cancel;
	char *key;
	char name[NETADDR_STRLEN];
	uint16_t port;
	const struct listener_handler *h;
	void *owner;
	pthread_t thread;
	bool running;
};

struct listener *listener_open(const struct cfg_hostport *addr, char *err, size_t errlen)
{
	struct netaddr addrs[1], bound;
	char nerr[NET_ERRLEN];
	struct listener *l;
	int fd;

	if (netaddr_resolve(addr->hp.host, addr->hp.port, true, addrs, 1, nerr) < 0) {
		snprintf(err, errlen, "server %s: %s", addr->text, nerr);
		return NULL;
	}
	fd = net_listen(&addrs[0], LISTEN_BACKLOG, nerr);
	if (fd < 0) {
		snprintf(err, errlen, "server %s: %s", addr->text, nerr);
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	l->fd = fd;
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_fd < 0) {
		snprintf(err, errlen, "server %s: eventfd: %s", addr->text, strerror(errno));
		close_fd(&l->fd);
		free(l);
		return NULL;
	}
	atomic_init(&l->cancel, false);
	l->key = xstrdup(addr->text);
	if (netaddr_local(fd, &bound) < 0)
		bound = addrs[0];
	netaddr_format(&bound, l->name, sizeof(l->name));
	l->port = netaddr_port(&bound);
	return l;
}

/* Sleeps up to ms, or until the listener is stopped; false when stopped. */
static bool acceptor_pause(struct listener *l, int ms)
{
	struct pollfd pfd = { .fd = l->wake_fd, .events = POLLIN };

	(void)poll(&pfd, 1, ms);
	return !atomic_load(&l->cancel);
}

/* Waits for a pending connection (or a stop); false when stopped. */
static bool acceptor_wait(struct listener *l)
{
	struct pollfd pfd[2] = { { .fd = l->fd, .events = POLLIN },
				 { .fd = l->wake_fd, .events = POLLIN } };

	while (!atomic_load(&l->cancel)) {
		int n = poll(pfd, 2, -1);
		if (n < 0 && errno != EINTR)
			return acceptor_pause(l, 100);
		if (n > 0 && (pfd[0].revents & POLLIN))
			return true;
	}
	return false;
}

/* Running out of descriptors: warned once per episode (and at most every
 * STARVE_WARN_MS while it flaps), recovery noted once. */
struct starvation {
	bool paused;
	bool warned;
	int64_t last_warn;
	unsigned pauses;
};

#define STARVE_WARN_MS 60000

static void starvation_begin(struct listener *l, struct starvation *st, int e)
{
	int64_t now = now_ms();

	st->pauses++;
	if (st->paused)
		return;
	st->paused = true;
	if (!st->warned && (st->last_warn == 0 || now - st->last_warn >= STARVE_WARN_MS)) {
		log_warn("%s: cannot accept: %s; pausing accepts", l->name, strerror(e));
		st->warned = true;
		st->last_warn = now;
	}
}

static void starvation_end(struct listener *l, struct starvation *st)
{
	if (!st->paused)
		return;
	st->paused = false;
	if (st->warned)
		log_info("%s: accepting again (%u pause(s))", l->name, st->pauses);
	st->warned = false;
	st->pauses = 0;
}

static bool accept_error_is_resource(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

/* At the limit with policy refuse: accept one connection and reset it. */
static int refuse_one(struct listener *l)
{
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (fd < 0) /* out of descriptors or such: do not spin */
		return acceptor_pause(l, 100) ? 1 : -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	close(fd);
	l->h->refused(l->owner);
	return 1;
}

/* One accept while holding the room the owner reserved for it.
 * Returns 1 to accept again at once, 0 to wait for readiness, -1 to stop. */
static int acceptor_once(struct listener *l, struct starvation *starved)
{
	struct netaddr peer = { .len = sizeof(peer.ss) };
	bool refuse = false;
	void *token = l->h->reserve(l->owner, &l->cancel, &refuse);
	int fd;

	if (!token)
		return refuse ? refuse_one(l) : -1;
	fd = accept4(l->fd, (struct sockaddr *)&peer.ss, &peer.len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		l->h->unreserve(l->owner, token);
		if (e == EAGAIN || e == EWOULDBLOCK)
			return 0;
		if (e == EINTR || e == ECONNABORTED || e == EPROTO)
			return 1;
		if (accept_error_is_resource(e)) {
			starvation_begin(l, starved, e);
			return acceptor_pause(l, EMFILE_PAUSE_MS) ? 1 : -1;
		}
		log_error("%s: accept: %s", l->name, strerror(e));
		return acceptor_pause(l, 100) ? 1 : -1;
	}
	starvation_end(l, starved);
	l->h->accepted(l->owner, token, fd, &peer, now_us());
	return 1;
}

static void *acceptor_main(void *arg)
{
	struct listener *l = arg;
	struct starvation starved = { 0 };

	while (acceptor_wait(l)) {
		int r;
		while ((r = acceptor_once(l, &starved)) > 0)
			;
		if (r < 0)
			break;
	}
	return NULL;
}

int listener_start(struct listener *l, const struct listener_handler *h, void *owner)
{
	char name[16];
	int rc;

	l->h = h;
	l->owner = owner;
	snprintf(name, sizeof(name), "accept-%u", l->port);
	rc = util_thread_start(&l->thread, ACCEPTOR_STACK, name, acceptor_main, l);
	if (rc != 0) {
		log_error("%s: cannot start acceptor thread: %s", l->name, strerror(rc));
		return -1;
	}
	l->running = true;
	return 0;
}

void listener_close(struct listener *l)
{
	uint64_t one = 1;

	if (!l)
		return;
	if (l->running) {
		atomic_store(&l->cancel, true);
		if (write(l->wake_fd, &one, sizeof(one)) < 0)
			log_error("%s: cannot wake acceptor: %s", l->name, strerror(errno));
		l->h->wake(l->owner);
		pthread_join(l->thread, NULL);
		log_info("no longer listening on %s", l->name);
	}
	close_fd(&l->fd);
	close_fd(&l->wake_fd);
	free(l->key);
	free(l);
}

const char *listener_key(const struct listener *l)
{
	return l->key;
}

const char *listener_name(const struct listener *l)
{
	return l->name;
}
