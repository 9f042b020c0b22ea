#include "auto-config.h"

#include "listener.h"

#include "log.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG    4096
#define ACCEPTOR_STACK    (128u << 10)
#define EMFILE_PAUSE_MS   1000
#define EVENTS_PER_WAIT   64
#define TAG_WAKE          UINT64_MAX

struct park_slot {
	struct parked *pk; /* NULL: free */
	uint32_t gen;      /* bumped at each reuse: stale events do not match */
};

/* Open connections per client address (max_connections_per_client). */
struct client_count {
	struct client_count *next;
	uint8_t key[17]; /* family, then the address */
	unsigned n;
};

struct listener {
	int fd;        /* the listening socket */
	int stop_fd;   /* eventfd: written to stop the acceptor */
	int ep;        /* the parker's epoll: wake_fd and the parked sockets */
	int wake_fd;   /* eventfd: drain, a new earliest timer, last reference */
	atomic_bool cancel;
	char *key;
	char name[NETADDR_STRLEN];
	uint16_t port;
	const struct listener_handler *h;
	void *owner;
	pthread_t acceptor;
	bool running;
	struct listener *next_live; /* the registry of started listeners */

	pthread_mutex_t lock;
	bool draining;
	unsigned refs;
	struct park_slot *slots;
	uint32_t nslots, *free_slots, nfree;
	struct parked **heap; /* parked entries with a due time, earliest first */
	size_t nheap, heapcap;
	struct client_count **clients;
	size_t nclients, nbuckets;
};

/* Started listeners, so that a drain reaches those a reload closed too. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cond;
static pthread_once_t live_once = PTHREAD_ONCE_INIT;
static struct listener *live_list;
static unsigned live_threads;
static bool live_draining;

static void live_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&live_cond, &ca);
	pthread_condattr_destroy(&ca);
}

static void wake_parker(struct listener *l)
{
	uint64_t one = 1;

	if (write(l->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("%s: cannot wake parker: %s", l->name, strerror(errno));
}

static int epoll_watch(struct listener *l, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
}

static void listener_free_memory(struct listener *l)
{
	for (size_t i = 0; i < l->nbuckets; i++) {
		while (l->clients[i]) {
			struct client_count *next = l->clients[i]->next;
			free(l->clients[i]);
			l->clients[i] = next;
		}
	}
	free(l->clients);
	free(l->slots);
	free(l->free_slots);
	free(l->heap);
	close_fd(&l->fd);
	close_fd(&l->stop_fd);
	close_fd(&l->ep);
	close_fd(&l->wake_fd);
	pthread_mutex_destroy(&l->lock);
	free(l->key);
	free(l);
}

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
	l->key = xstrdup(addr->text);
	pthread_mutex_init(&l->lock, NULL);
	l->refs = 1;
	atomic_init(&l->cancel, false);
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->stop_fd < 0 || l->wake_fd < 0 || l->ep < 0 ||
	    epoll_watch(l, l->wake_fd, EPOLLIN, TAG_WAKE) < 0) {
		snprintf(err, errlen, "server %s: %s", addr->text, strerror(errno));
		listener_free_memory(l);
		return NULL;
	}
	if (netaddr_local(fd, &bound) < 0)
		bound = addrs[0];
	netaddr_format(&bound, l->name, sizeof(l->name));
	l->port = netaddr_port(&bound);
	return l;
}

/* ------------------------------------------------------------------ the timer heap */

static bool heap_less(const struct listener *l, size_t a, size_t b)
{
	return l->heap[a]->due_ms < l->heap[b]->due_ms;
}

static void heap_swap(struct listener *l, size_t a, size_t b)
{
	struct parked *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_index = a;
	l->heap[b]->heap_index = b;
}

static void heap_up(struct listener *l, size_t i)
{
	while (i > 0 && heap_less(l, i, (i - 1) / 2)) {
		heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct listener *l, size_t i)
{
	for (;;) {
		size_t m = i, a = 2 * i + 1, b = a + 1;
		if (a < l->nheap && heap_less(l, a, m))
			m = a;
		if (b < l->nheap && heap_less(l, b, m))
			m = b;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

static void heap_push(struct listener *l, struct parked *pk)
{
	if (l->nheap == l->heapcap) {
		l->heapcap = l->heapcap ? 2 * l->heapcap : 64;
		l->heap = xrealloc(l->heap, l->heapcap * sizeof(*l->heap));
	}
	pk->heap_index = l->nheap;
	l->heap[l->nheap++] = pk;
	heap_up(l, pk->heap_index);
}

static void heap_remove(struct listener *l, struct parked *pk)
{
	size_t i = pk->heap_index;

	if (i >= l->nheap || l->heap[i] != pk)
		return;
	l->nheap--;
	if (i < l->nheap) {
		l->heap[i] = l->heap[l->nheap];
		l->heap[i]->heap_index = i;
		heap_down(l, i);
		heap_up(l, i);
	}
	pk->heap_index = SIZE_MAX;
}

/* ------------------------------------------------------------------ the parked set */

static uint32_t slot_take_locked(struct listener *l)
{
	if (l->nfree == 0) {
		uint32_t n = l->nslots ? 2 * l->nslots : 64;
		l->slots = xrealloc(l->slots, n * sizeof(*l->slots));
		l->free_slots = xrealloc(l->free_slots, n * sizeof(*l->free_slots));
		for (uint32_t i = n; i > l->nslots; i--) {
			l->slots[i - 1] = (struct park_slot){ 0 };
			l->free_slots[l->nfree++] = i - 1;
		}
		l->nslots = n;
	}
	return l->free_slots[--l->nfree];
}

static uint64_t slot_tag(const struct listener *l, uint32_t slot)
{
	return (uint64_t)l->slots[slot].gen << 32 | slot;
}

/* Takes pk out of epoll, the heap and its slot; l->lock held. */
static void unpark_locked(struct listener *l, struct parked *pk)
{
	struct park_slot *s = &l->slots[pk->slot];

	for (int i = 0; i < 2; i++)
		if (pk->fd[i] >= 0)
			(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, pk->fd[i], NULL);
	heap_remove(l, pk);
	s->pk = NULL;
	s->gen++;
	l->free_slots[l->nfree++] = pk->slot;
}

bool listener_park(struct listener *l, struct parked *pk)
{
	const uint32_t ev = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	bool first = false;
	int added = 0;

	pthread_mutex_lock(&l->lock);
	if (l->draining) {
		pthread_mutex_unlock(&l->lock);
		errno = ESHUTDOWN;
		return false;
	}
	pk->slot = slot_take_locked(l);
	pk->heap_index = SIZE_MAX;
	l->slots[pk->slot].pk = pk;
	for (; added < 2; added++)
		if (pk->fd[added] >= 0 && epoll_watch(l, pk->fd[added], ev, slot_tag(l, pk->slot)) < 0)
			break;
	if (added < 2) {
		int e = errno;
		if (added == 1 && pk->fd[0] >= 0)
			(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, pk->fd[0], NULL);
		l->slots[pk->slot] = (struct park_slot){ .gen = l->slots[pk->slot].gen + 1 };
		l->free_slots[l->nfree++] = pk->slot;
		pthread_mutex_unlock(&l->lock);
		errno = e;
		return false;
	}
	if (pk->due_ms != INT64_MAX) {
		heap_push(l, pk);
		first = pk->heap_index == 0;
	}
	pthread_mutex_unlock(&l->lock);
	if (first) /* the acceptor's sleep may end later than this timer */
		wake_parker(l);
	return true;
}

/* An event for tag: the entry, unparked, if it is still the one parked. */
static struct parked *take_tag(struct listener *l, uint64_t tag)
{
	uint32_t slot = (uint32_t)tag;
	struct parked *pk = NULL;

	pthread_mutex_lock(&l->lock);
	if (slot < l->nslots && l->slots[slot].gen == (uint32_t)(tag >> 32) && l->slots[slot].pk) {
		pk = l->slots[slot].pk;
		unpark_locked(l, pk);
	}
	pthread_mutex_unlock(&l->lock);
	return pk;
}

static struct parked *take_due(struct listener *l, int64_t now)
{
	struct parked *pk = NULL;

	pthread_mutex_lock(&l->lock);
	if (l->nheap > 0 && l->heap[0]->due_ms <= now) {
		pk = l->heap[0];
		unpark_locked(l, pk);
	}
	pthread_mutex_unlock(&l->lock);
	return pk;
}

static void wake_due(struct listener *l)
{
	int64_t now = now_ms();
	struct parked *pk;

	while ((pk = take_due(l, now)))
		pk->wake(pk, PARK_WAKE_TIMER);
}

/* Draining: hands every parked entry back, a batch at a time. */
static void wake_all(struct listener *l)
{
	struct parked *batch[EVENTS_PER_WAIT];
	size_t n;

	do {
		n = 0;
		pthread_mutex_lock(&l->lock);
		for (uint32_t i = 0; i < l->nslots && n < EVENTS_PER_WAIT; i++) {
			if (l->slots[i].pk) {
				batch[n] = l->slots[i].pk;
				unpark_locked(l, batch[n++]);
			}
		}
		pthread_mutex_unlock(&l->lock);
		for (size_t i = 0; i < n; i++)
			batch[i]->wake(batch[i], PARK_WAKE_DRAIN);
	} while (n == EVENTS_PER_WAIT);
}

/* How long the parker may sleep: until the earliest timer. */
static int wait_ms(struct listener *l)
{
	int64_t due = INT64_MAX, now;

	pthread_mutex_lock(&l->lock);
	if (l->nheap > 0)
		due = l->heap[0]->due_ms;
	pthread_mutex_unlock(&l->lock);
	if (due == INT64_MAX)
		return -1;
	now = now_ms();
	return due <= now ? 0 : (int)MIN(due - now, (int64_t)INT32_MAX);
}

/* Reads the events of one epoll_wait and wakes whom they concern. */
static void handle_events(struct listener *l, const struct epoll_event *ev, int n)
{
	uint64_t v;

	for (int i = 0; i < n; i++) {
		if (ev[i].data.u64 == TAG_WAKE) {
			if (read(l->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_debug("%s: wake eventfd: %s", l->name, strerror(errno));
			continue;
		}
		struct parked *pk = take_tag(l, ev[i].data.u64);
		if (pk)
			pk->wake(pk, PARK_WAKE_IO);
	}
}

/* True once nothing is left to watch: closed, and every connection gone. */
static bool parker_done(struct listener *l, bool *draining)
{
	bool done;

	pthread_mutex_lock(&l->lock);
	done = l->refs == 0;
	*draining = l->draining;
	pthread_mutex_unlock(&l->lock);
	return done;
}

static void live_remove(struct listener *l)
{
	pthread_mutex_lock(&live_lock);
	for (struct listener **pp = &live_list; *pp; pp = &(*pp)->next_live) {
		if (*pp == l) {
			*pp = l->next_live;
			break;
		}
	}
	pthread_mutex_unlock(&live_lock);
}

/* The parker: sleeps in epoll_wait on every parked socket of the listener
 * and hands back those that wake; ends (and frees the listener) once the
 * listener is closed and its last connection is gone. */
static void *parker_main(void *arg)
{
	struct listener *l = arg;
	struct epoll_event ev[EVENTS_PER_WAIT];
	bool draining;

	while (!parker_done(l, &draining)) {
		if (draining)
			wake_all(l);
		int n = epoll_wait(l->ep, ev, EVENTS_PER_WAIT, wait_ms(l));
		if (n < 0 && errno != EINTR) {
			log_error("%s: epoll_wait: %s", l->name, strerror(errno));
			(void)poll(NULL, 0, 100);
		}
		handle_events(l, ev, MAX(n, 0));
		wake_due(l);
	}
	live_remove(l);
	listener_free_memory(l);
	pthread_mutex_lock(&live_lock);
	live_threads--;
	pthread_cond_broadcast(&live_cond);
	pthread_mutex_unlock(&live_lock);
	return NULL;
}

/* ------------------------------------------------------------------ per client */

static void client_key(const struct netaddr *a, uint8_t key[17])
{
	memset(key, 0, 17);
	key[0] = (uint8_t)a->ss.ss_family;
	if (a->ss.ss_family == AF_INET)
		memcpy(key + 1, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
	else if (a->ss.ss_family == AF_INET6)
		memcpy(key + 1, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
}

static size_t client_bucket(const struct listener *l, const uint8_t key[17])
{
	uint64_t h = 1469598103934665603ull;

	for (int i = 0; i < 17; i++)
		h = (h ^ key[i]) * 1099511628211ull;
	return (size_t)(h & (l->nbuckets - 1));
}

static void clients_grow_locked(struct listener *l)
{
	size_t old = l->nbuckets;
	struct client_count **prev = l->clients;

	l->nbuckets = old ? 2 * old : 64;
	l->clients = xcalloc(l->nbuckets, sizeof(*l->clients));
	for (size_t i = 0; i < old; i++) {
		while (prev[i]) {
			struct client_count *c = prev[i];
			size_t b = client_bucket(l, c->key);
			prev[i] = c->next;
			c->next = l->clients[b];
			l->clients[b] = c;
		}
	}
	free(prev);
}

static struct client_count **client_find_locked(struct listener *l, const uint8_t key[17])
{
	struct client_count **pp = &l->clients[client_bucket(l, key)];

	while (*pp && memcmp((*pp)->key, key, 17) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* Counts one more connection of peer; false when it already has limit. */
static bool client_enter(struct listener *l, const struct netaddr *peer, unsigned limit)
{
	uint8_t key[17];
	struct client_count **pp;
	bool ok = true;

	client_key(peer, key);
	pthread_mutex_lock(&l->lock);
	if (l->nclients >= l->nbuckets)
		clients_grow_locked(l);
	pp = client_find_locked(l, key);
	if (!*pp) {
		*pp = xcalloc(1, sizeof(**pp));
		memcpy((*pp)->key, key, 17);
		l->nclients++;
	}
	if ((*pp)->n >= limit)
		ok = false;
	else
		(*pp)->n++;
	pthread_mutex_unlock(&l->lock);
	return ok;
}

void listener_client_leave(struct listener *l, const struct netaddr *peer)
{
	uint8_t key[17];
	struct client_count **pp;

	client_key(peer, key);
	pthread_mutex_lock(&l->lock);
	pp = l->nbuckets ? client_find_locked(l, key) : NULL;
	if (pp && *pp && --(*pp)->n == 0) {
		struct client_count *c = *pp;
		*pp = c->next;
		free(c);
		l->nclients--;
	}
	pthread_mutex_unlock(&l->lock);
}

/* ------------------------------------------------------------------ accepting */

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

/* Sleeps up to ms, or until the listener is stopped; false when stopped. */
static bool acceptor_pause(struct listener *l, int ms)
{
	struct pollfd pfd = { .fd = l->stop_fd, .events = POLLIN };

	(void)poll(&pfd, 1, ms);
	return !atomic_load(&l->cancel);
}

/* Waits for a pending connection (or a stop); false when stopped. */
static bool acceptor_wait(struct listener *l)
{
	struct pollfd pfd[2] = { { .fd = l->fd, .events = POLLIN },
				 { .fd = l->stop_fd, .events = POLLIN } };

	while (!atomic_load(&l->cancel)) {
		int n = poll(pfd, 2, -1);
		if (n < 0 && errno != EINTR)
			return acceptor_pause(l, 100);
		if (n > 0 && (pfd[0].revents & POLLIN))
			return true;
	}
	return false;
}

static void reset_close(int fd)
{
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	close(fd);
}

/* At the limit with policy refuse: accept one connection and reset it. */
static int refuse_one(struct listener *l)
{
	int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (fd < 0) /* out of descriptors or such: do not spin */
		return acceptor_pause(l, 100) ? 1 : -1;
	reset_close(fd);
	l->h->refused(l->owner, REFUSE_OVER_LIMIT);
	return 1;
}

/* The accept failed with e while holding reserved room. */
static int accept_failed(struct listener *l, struct starvation *starved, void *token, int e)
{
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

/* One accept while holding the room the owner reserved for it.
 * Returns 1 to accept again at once, 0 to wait for readiness, -1 to stop. */
static int acceptor_once(struct listener *l, struct starvation *starved)
{
	struct netaddr peer = { .len = sizeof(peer.ss) };
	bool refuse = false, counted = false;
	void *token = l->h->reserve(l->owner, &l->cancel, &refuse);
	unsigned limit;
	int fd;

	if (!token)
		return refuse ? refuse_one(l) : -1;
	fd = accept4(l->fd, (struct sockaddr *)&peer.ss, &peer.len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return accept_failed(l, starved, token, errno);
	starvation_end(l, starved);
	limit = l->h->client_limit(l->owner);
	if (limit > 0) {
		if (!client_enter(l, &peer, limit)) {
			reset_close(fd);
			l->h->unreserve(l->owner, token);
			l->h->refused(l->owner, REFUSE_CLIENT_LIMIT);
			return 1;
		}
		counted = true;
	}
	l->h->accepted(l->owner, token, fd, &peer, now_us(), counted);
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

/* Starts the parker (detached: it outlives listener_close while
 * connections remain), then the acceptor. */
static int start_threads(struct listener *l)
{
	char name[16];
	pthread_t parker;
	int rc;

	snprintf(name, sizeof(name), "park-%u", l->port);
	pthread_mutex_lock(&live_lock);
	l->draining = live_draining;
	rc = util_thread_start(&parker, ACCEPTOR_STACK, name, parker_main, l);
	if (rc == 0) {
		pthread_detach(parker);
		l->next_live = live_list;
		live_list = l;
		live_threads++;
	}
	pthread_mutex_unlock(&live_lock);
	if (rc != 0)
		return rc;
	snprintf(name, sizeof(name), "accept-%u", l->port);
	return util_thread_start(&l->acceptor, ACCEPTOR_STACK, name, acceptor_main, l);
}

int listener_start(struct listener *l, const struct listener_handler *h, void *owner)
{
	int rc;

	pthread_once(&live_once, live_init);
	l->h = h;
	l->owner = owner;
	rc = start_threads(l);
	if (rc != 0) {
		log_error("%s: cannot start its threads: %s", l->name, strerror(rc));
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
	if (!l->running) {
		/* Never started, or its acceptor failed to: the parker (if any) is
		 * the only other user, and it sees the last reference go. */
		pthread_mutex_lock(&live_lock);
		bool parked = false;
		for (struct listener *k = live_list; k; k = k->next_live)
			parked = parked || k == l;
		pthread_mutex_unlock(&live_lock);
		if (parked)
			listener_unref(l);
		else
			listener_free_memory(l);
		return;
	}
	atomic_store(&l->cancel, true);
	if (write(l->stop_fd, &one, sizeof(one)) < 0)
		log_error("%s: cannot wake acceptor: %s", l->name, strerror(errno));
	l->h->wake(l->owner);
	pthread_join(l->acceptor, NULL);
	close_fd(&l->fd);
	log_info("no longer listening on %s", l->name);
	listener_unref(l);
}

struct listener *listener_ref(struct listener *l)
{
	pthread_mutex_lock(&l->lock);
	l->refs++;
	pthread_mutex_unlock(&l->lock);
	return l;
}

void listener_unref(struct listener *l)
{
	pthread_mutex_lock(&l->lock);
	/* Written under the lock: the parker frees l only after taking it. */
	if (--l->refs == 0)
		wake_parker(l);
	pthread_mutex_unlock(&l->lock);
}

void listener_drain_all(void)
{
	pthread_mutex_lock(&live_lock);
	live_draining = true;
	for (struct listener *l = live_list; l; l = l->next_live) {
		pthread_mutex_lock(&l->lock);
		l->draining = true;
		wake_parker(l);
		pthread_mutex_unlock(&l->lock);
	}
	pthread_mutex_unlock(&live_lock);
}

bool listener_wait_all(int64_t deadline_ms)
{
	bool done;

	pthread_once(&live_once, live_init);
	pthread_mutex_lock(&live_lock);
	while (live_threads > 0 && cond_wait_until(&live_cond, &live_lock, deadline_ms))
		;
	done = live_threads == 0;
	pthread_mutex_unlock(&live_lock);
	return done;
}

const char *listener_key(const struct listener *l)
{
	return l->key;
}

const char *listener_name(const struct listener *l)
{
	return l->name;
}
