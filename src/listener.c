#include "auto-config.h"

#include "listener.h"

#include "clienthello.h"
#include "log.h"
#include "proxyproto.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG  4096
#define ACCEPTOR_STACK  (128u << 10)
#define EMFILE_PAUSE_MS 1000
#define EVENTS_PER_WAIT 64
#define TAG_WAKE        UINT64_MAX
#define HELLOS_MAX      4096 /* ClientHellos being read at once, per listener */

/* One proxy entry on this address. */
struct route {
	const struct listener_handler *h;
	void *owner;
	char **names; /* lowercase; none: the default route */
	size_t nnames;
	struct listener_route_opts o; /* server_names not kept */
};

/* A connection whose ClientHello is being read (SNI routing). */
struct hello {
	struct parked pk;
	struct listener *l;
	int fd;
	struct netaddr peer;
	int64_t accept_us;
	bool counted;
	bool proxy_protocol; /* a PROXY header comes first */
	bool lowat;          /* SO_RCVLOWAT raised: put back before the hand-over */
};

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
	int fd;      /* the listening socket */
	int stop_fd; /* eventfd: written to stop the acceptor */
	int ep;      /* the parker's epoll: wake_fd and the parked sockets */
	int wake_fd; /* eventfd: drain, a new earliest timer, last reference */
	atomic_bool cancel;
	char *key;
	char name[NETADDR_STRLEN];
	uint16_t port;
	const struct listener_handler *h;
	void *owner;
	pthread_t acceptor;
	bool running;               /* its threads run */
	struct listener *next_live; /* the registry: from open to free */
	atomic_uint opens;          /* proxy entries holding it open; changed under live_lock */

	pthread_mutex_t routes_lock; /* the routes, and which owner the acceptor reserves for */
	pthread_cond_t routes_cond;  /* `reserving` changed */
	struct route *routes;
	size_t nroutes;
	void *reserving;       /* the owner in whose reserve the acceptor may block */
	atomic_bool interrupt; /* makes that reserve return: stop, or its owner leaves */
	atomic_uint hellos;    /* ClientHellos being read */
	atomic_bool sni_seen;  /* it has routed by SNI: its counters are shown */
	atomic_bool hello_warned;
	atomic_uint_fast64_t sni_failures[SNI_FAILURES];

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

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
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
	for (size_t i = 0; i < l->nroutes; i++)
		free_names(l->routes[i].names, l->routes[i].nnames);
	free(l->routes);
	pthread_mutex_destroy(&l->routes_lock);
	pthread_cond_destroy(&l->routes_cond);
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

/* The open listener with this key, with one more open; live_lock held. */
static struct listener *find_open_locked(const char *key)
{
	for (struct listener *l = live_list; l; l = l->next_live) {
		if (atomic_load(&l->opens) > 0 && strcmp(l->key, key) == 0) {
			atomic_fetch_add(&l->opens, 1);
			return l;
		}
	}
	return NULL;
}

struct listener *listener_open(const struct cfg_hostport *addr, char *err, size_t errlen)
{
	struct netaddr addrs[1], bound;
	char nerr[NET_ERRLEN], key[CFG_LISTEN_KEY_MAX];
	struct listener *l;
	int fd;

	pthread_once(&live_once, live_init);
	cfg_listen_key(addr, key, sizeof(key));
	pthread_mutex_lock(&live_lock);
	l = addr->hp.port ? find_open_locked(key) : NULL; /* port 0: a port of its own */
	pthread_mutex_unlock(&live_lock);
	if (l)
		return l;
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
	l->key = xstrdup(key);
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->routes_lock, NULL);
	pthread_cond_init(&l->routes_cond, NULL);
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
	pthread_mutex_lock(&live_lock);
	atomic_store(&l->opens, 1);
	l->draining = live_draining;
	l->next_live = live_list;
	live_list = l;
	pthread_mutex_unlock(&live_lock);
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
		if (pk->fd[added] >= 0 &&
		    epoll_watch(l, pk->fd[added], ev, slot_tag(l, pk->slot)) < 0)
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

/* The owner the acceptor deals with before an accept, or NULL when the
 * listener routes by SNI (or has no route yet); routes_lock held. */
static const struct route *plain_route_locked(const struct listener *l)
{
	if (l->nroutes != 1 || l->routes[0].o.sni)
		return NULL;
	return &l->routes[0];
}

/* At the limit with policy refuse: accept one connection and reset it. */
static int refuse_one(struct listener *l, const struct route *r)
{
	int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (fd < 0) /* out of descriptors or such: do not spin */
		return acceptor_pause(l, 100) ? 1 : -1;
	reset_close(fd);
	r->h->refused(r->owner, REFUSE_OVER_LIMIT);
	return 1;
}

/* An accept failed with e; 1 to go on at once, 0 to wait, -1 to stop. */
static int accept_failed(struct listener *l, struct starvation *starved, int e)
{
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

/* Accepts one connection; -1 with errno, or -2 when its client is over
 * max_connections_per_client (reset, and refused through r when given). */
static int accept_counted(struct listener *l, struct netaddr *peer, unsigned limit, bool *counted)
{
	int fd;

	peer->len = sizeof(peer->ss);
	fd = accept4(l->fd, (struct sockaddr *)&peer->ss, &peer->len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	*counted = false;
	if (fd < 0 || limit == 0)
		return fd;
	if (!client_enter(l, peer, limit)) {
		reset_close(fd);
		return -2;
	}
	*counted = true;
	return fd;
}

/* One accept for the listener's one plain route, holding the room its owner
 * reserved.  Returns 1 to accept again at once, 0 to wait, -1 to stop. */
static int accept_plain(struct listener *l, const struct route *r, struct starvation *starved)
{
	struct netaddr peer;
	bool refuse = false, counted;
	void *token = r->h->reserve(r->owner, &l->interrupt, &refuse);
	int fd;

	if (!token)
		return refuse ? refuse_one(l, r) : 0;
	fd = accept_counted(l, &peer, r->h->client_limit(r->owner), &counted);
	if (fd == -2) {
		r->h->unreserve(r->owner, token);
		r->h->refused(r->owner, REFUSE_CLIENT_LIMIT);
		return 1;
	}
	if (fd < 0) {
		int e = errno;
		r->h->unreserve(r->owner, token);
		return accept_failed(l, starved, e);
	}
	starvation_end(l, starved);
	r->h->accepted(r->owner, token, fd, &peer, now_us(), counted);
	return 1;
}

/* ------------------------------------------------------------------ SNI routing */

const char *sni_failure_name(enum sni_failure f)
{
	static const char *const names[SNI_FAILURES] = { "unmatched", "not_tls", "malformed",
							 "timeout" };
	return f < SNI_FAILURES ? names[f] : "?";
}

/* The route for sni: an exact name, then a wildcard, then the default;
 * routes_lock held. */
static const struct route *route_for_locked(const struct listener *l, const char *sni)
{
	const struct route *deflt = NULL;

	for (int wild = 0; wild < 2; wild++) {
		for (size_t i = 0; i < l->nroutes; i++) {
			const struct route *r = &l->routes[i];
			if (r->nnames == 0)
				deflt = r;
			for (size_t j = 0; sni[0] && j < r->nnames; j++)
				if ((r->names[j][0] == '*') == wild &&
				    clienthello_name_matches(r->names[j], sni))
					return r;
		}
	}
	return deflt;
}

static void hello_free(struct hello *h)
{
	struct listener *l = h->l;

	atomic_fetch_sub_explicit(&l->hellos, 1, memory_order_relaxed);
	free(h);
	listener_unref(l);
}

/* Closes the connection (reset: at once, with RST) and frees h. */
static void hello_drop(struct hello *h, bool reset)
{
	if (reset)
		reset_close(h->fd);
	else
		close(h->fd);
	if (h->counted)
		listener_client_leave(h->l, &h->peer);
	hello_free(h);
}

/* A connection that leads nowhere: counted, warned once per episode, closed. */
static void hello_failed(struct hello *h, enum sni_failure why, const char *detail)
{
	struct listener *l = h->l;

	atomic_fetch_add_explicit(&l->sni_failures[why], 1, memory_order_relaxed);
	if (!atomic_exchange(&l->hello_warned, true))
		log_warn("%s: closed a connection: %s (%s); warned once until a ClientHello is "
			 "routed again",
			 l->name, sni_failure_name(why), detail);
	else
		log_debug("%s: closed a connection: %s (%s)", l->name, sni_failure_name(why),
			  detail);
	hello_drop(h, false);
}

/* The ClientHello is whole: hand the socket to its route. */
static void hello_route(struct hello *h, const char *sni)
{
	struct listener *l = h->l;
	const struct route *r;
	bool taken = false;

	if (h->lowat) {
		int one = 1;
		(void)setsockopt(h->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	}
	pthread_mutex_lock(&l->routes_lock);
	r = route_for_locked(l, sni);
	if (r) {
		taken = r->h->routed(r->owner, h->fd, &h->peer, h->accept_us, h->counted, sni);
		atomic_store(&l->hello_warned, false);
	}
	pthread_mutex_unlock(&l->routes_lock);
	if (!r)
		hello_failed(h, SNI_UNMATCHED, sni[0] ? sni : "no SNI and no default");
	else if (!taken) /* refused by its owner (counted there) */
		hello_drop(h, true);
	else
		hello_free(h);
}

static void hello_woken(struct parked *pk, enum park_wake why);

#define HELLO_GONE (-1)

/* Peeks at what the client sent so far: a clienthello_status, or HELLO_GONE.
 * For NEED_MORE, *want is how many bytes must be queued (a PROXY header in
 * front included) before the answer can change. */
static int hello_peek(struct hello *h, struct clienthello *ch, size_t *want)
{
	static _Thread_local uint8_t buf[PROXYPROTO_MAX + CLIENTHELLO_MAX + 1];
	ssize_t n = recv(h->fd, buf, sizeof(buf), MSG_PEEK);
	int skip = 0;

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		return HELLO_GONE;
	n = MAX(n, 0);
	*want = (size_t)n + 1;
	if (h->proxy_protocol) {
		struct proxyproto_info info;
		skip = proxyproto_parse(buf, (size_t)n, &info, &ch->why);
		if (skip <= 0)
			return skip < 0 ? CLIENTHELLO_MALFORMED : CLIENTHELLO_NEED_MORE;
	}
	enum clienthello_status st = clienthello_parse(buf + skip, (size_t)n - (size_t)skip, ch);
	if (st == CLIENTHELLO_NEED_MORE)
		*want = MAX(*want, (size_t)skip + ch->need);
	*want = MIN(*want, sizeof(buf));
	return st;
}

/* Waits in the parked set for `want` bytes (the peeked ones stay readable:
 * SO_RCVLOWAT keeps them from waking it again), EOF or the deadline. */
static void hello_wait(struct hello *h, size_t want)
{
	int lowat = (int)want;

	(void)setsockopt(h->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
	h->lowat = true;
	h->pk.fd[0] = h->fd;
	h->pk.fd[1] = -1;
	h->pk.wake = hello_woken;
	if (!listener_park(h->l, &h->pk)) {
		log_debug("%s: a ClientHello cannot wait: %s", h->l->name, strerror(errno));
		hello_drop(h, false);
	}
}

/* Routes the connection, closes it, or parks it until more arrives. */
static void hello_try(struct hello *h)
{
	struct clienthello ch = { .why = "" };
	size_t want;

	switch (hello_peek(h, &ch, &want)) {
	case CLIENTHELLO_DONE:
		hello_route(h, ch.sni);
		return;
	case CLIENTHELLO_NOT_TLS:
		hello_failed(h, SNI_NOT_TLS, "the first bytes are no TLS handshake");
		return;
	case CLIENTHELLO_MALFORMED:
		hello_failed(h, SNI_MALFORMED, ch.why);
		return;
	case CLIENTHELLO_NEED_MORE:
		hello_wait(h, want);
		return;
	default:
		log_debug("%s: a client left before its ClientHello", h->l->name);
		hello_drop(h, false);
		return;
	}
}

static void hello_woken(struct parked *pk, enum park_wake why)
{
	struct hello *h = (struct hello *)((char *)pk - offsetof(struct hello, pk));

	if (why == PARK_WAKE_IO) {
		hello_try(h);
		return;
	}
	if (why == PARK_WAKE_TIMER)
		hello_failed(h, SNI_TIMEOUT, "no whole ClientHello within connect_timeout_ms");
	else
		hello_drop(h, false);
}

/* One accept on a listener that routes by SNI: no room is reserved (the
 * owner is not known yet); the ClientHello is read without a thread. */
static int accept_sni(struct listener *l, struct starvation *starved,
		      const struct listener_route_opts *o, unsigned limit)
{
	struct netaddr peer;
	bool counted;
	struct hello *h;
	int fd;

	if (atomic_load(&l->hellos) >= HELLOS_MAX) /* bounded: the rest wait in the backlog */
		return acceptor_pause(l, 10) ? 1 : -1;
	fd = accept_counted(l, &peer, limit, &counted);
	if (fd == -2)
		return 1;
	if (fd < 0)
		return accept_failed(l, starved, errno);
	starvation_end(l, starved);
	atomic_store(&l->sni_seen, true);
	h = xcalloc(1, sizeof(*h));
	h->l = listener_ref(l);
	h->fd = fd;
	h->peer = peer;
	h->accept_us = now_us();
	h->counted = counted;
	h->proxy_protocol = o->proxy_protocol;
	h->pk.due_ms = h->accept_us / 1000 + o->hello_timeout_ms;
	atomic_fetch_add_explicit(&l->hellos, 1, memory_order_relaxed);
	hello_try(h);
	return 1;
}

/* One accept, by the listener's mode.  1: again, 0: wait for readiness, -1: stop. */
static int acceptor_once(struct listener *l, struct starvation *starved)
{
	struct route plain;
	struct listener_route_opts o;
	unsigned limit;
	int r;

	pthread_mutex_lock(&l->routes_lock);
	if (l->nroutes == 0) { /* between a reload's close and start */
		pthread_mutex_unlock(&l->routes_lock);
		return acceptor_pause(l, 20) ? 1 : -1;
	}
	const struct route *pr = plain_route_locked(l);
	if (pr) {
		plain = *pr;
		l->reserving = plain.owner;
	}
	o = l->routes[0].o; /* the entries of one address agree on these */
	limit = pr ? 0 : l->routes[0].h->client_limit(l->routes[0].owner);
	pthread_mutex_unlock(&l->routes_lock);
	if (!pr)
		return accept_sni(l, starved, &o, limit);
	r = accept_plain(l, &plain, starved);
	pthread_mutex_lock(&l->routes_lock);
	l->reserving = NULL;
	if (!atomic_load(&l->cancel))
		atomic_store(&l->interrupt, false);
	pthread_cond_broadcast(&l->routes_cond);
	pthread_mutex_unlock(&l->routes_lock);
	return atomic_load(&l->cancel) ? -1 : r;
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

/* Starts the parker (detached: it outlives the last close while
 * connections remain), then the acceptor. */
static int start_threads(struct listener *l)
{
	char name[16];
	pthread_t parker;
	int rc;

	snprintf(name, sizeof(name), "park-%u", l->port);
	pthread_mutex_lock(&live_lock);
	rc = util_thread_start(&parker, ACCEPTOR_STACK, name, parker_main, l);
	if (rc == 0) {
		pthread_detach(parker);
		live_threads++;
	}
	pthread_mutex_unlock(&live_lock);
	if (rc != 0)
		return rc;
	snprintf(name, sizeof(name), "accept-%u", l->port);
	rc = util_thread_start(&l->acceptor, ACCEPTOR_STACK, name, acceptor_main, l);
	if (rc != 0) { /* the parker ends with the last reference */
		pthread_mutex_lock(&live_lock);
		atomic_store(&l->opens, 0);
		pthread_mutex_unlock(&live_lock);
		listener_unref(l);
	}
	return rc;
}

static void route_set(struct route *r, const struct listener_handler *h, void *owner,
		      const struct listener_route_opts *o)
{
	free_names(r->names, r->nnames);
	r->h = h;
	r->owner = owner;
	r->o = *o;
	r->o.server_names = NULL;
	r->nnames = o->server_names ? o->server_names->n : 0;
	r->names = r->nnames ? xcalloc(r->nnames, sizeof(*r->names)) : NULL;
	for (size_t i = 0; i < r->nnames; i++) {
		r->names[i] = xstrdup(o->server_names->v[i]);
		for (char *c = r->names[i]; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
}

/* Every entry of an address agrees on it (the configuration checks), so the
 * last route set decides for the socket. */
static void set_defer_accept(struct listener *l, int secs)
{
	if (net_defer_accept(l->fd, secs) < 0)
		log_warn("%s: cannot set TCP_DEFER_ACCEPT: %s", l->name, strerror(errno));
}

static struct route *route_of_locked(struct listener *l, void *owner)
{
	for (size_t i = 0; i < l->nroutes; i++)
		if (l->routes[i].owner == owner)
			return &l->routes[i];
	return NULL;
}

int listener_start(struct listener *l, const struct listener_handler *h, void *owner,
		   const struct listener_route_opts *o)
{
	struct route *r;
	int rc;

	pthread_mutex_lock(&l->routes_lock);
	l->routes = xrealloc(l->routes, (l->nroutes + 1) * sizeof(*l->routes));
	r = &l->routes[l->nroutes++];
	*r = (struct route){ 0 };
	route_set(r, h, owner, o);
	set_defer_accept(l, o->defer_accept_secs);
	pthread_mutex_unlock(&l->routes_lock);
	if (l->running)
		return 0;
	rc = start_threads(l);
	if (rc != 0) {
		log_error("%s: cannot start its threads: %s", l->name, strerror(rc));
		return -1;
	}
	l->running = true;
	return 0;
}

void listener_update(struct listener *l, void *owner, const struct listener_route_opts *o)
{
	pthread_mutex_lock(&l->routes_lock);
	struct route *r = route_of_locked(l, owner);
	if (r) {
		route_set(r, r->h, owner, o);
		set_defer_accept(l, o->defer_accept_secs);
	}
	pthread_mutex_unlock(&l->routes_lock);
}

/* Takes owner's route out; once this returns the acceptor no longer waits
 * in that owner's reserve. */
static void route_remove(struct listener *l, void *owner)
{
	pthread_mutex_lock(&l->routes_lock);
	struct route *r = route_of_locked(l, owner);
	if (r) {
		const struct listener_handler *h = r->h;
		free_names(r->names, r->nnames);
		*r = l->routes[--l->nroutes];
		while (l->reserving == owner) {
			atomic_store(&l->interrupt, true);
			h->wake(owner);
			pthread_cond_wait(&l->routes_cond, &l->routes_lock);
		}
	}
	pthread_mutex_unlock(&l->routes_lock);
}

void listener_close(struct listener *l, void *owner)
{
	uint64_t one = 1;
	unsigned opens;

	if (!l)
		return;
	route_remove(l, owner);
	pthread_mutex_lock(&live_lock);
	opens = atomic_fetch_sub(&l->opens, 1) - 1;
	if (!l->running && opens == 0)
		l->refs--; /* never started: no parker will free it */
	pthread_mutex_unlock(&live_lock);
	if (opens > 0)
		return;
	if (!l->running) {
		live_remove(l);
		listener_free_memory(l);
		return;
	}
	atomic_store(&l->cancel, true);
	atomic_store(&l->interrupt, true);
	if (write(l->stop_fd, &one, sizeof(one)) < 0)
		log_error("%s: cannot wake acceptor: %s", l->name, strerror(errno));
	pthread_join(l->acceptor, NULL);
	close_fd(&l->fd);
	log_info("no longer listening on %s", l->name);
	listener_unref(l);
}

void listener_for_each_sni(void (*fn)(const char *name, const uint64_t counts[SNI_FAILURES],
				      void *arg),
			   void *arg)
{
	pthread_mutex_lock(&live_lock);
	for (struct listener *l = live_list; l; l = l->next_live) {
		uint64_t counts[SNI_FAILURES];
		if (!atomic_load(&l->sni_seen))
			continue;
		for (int i = 0; i < SNI_FAILURES; i++)
			counts[i] = atomic_load(&l->sni_failures[i]);
		fn(l->name, counts, arg);
	}
	pthread_mutex_unlock(&live_lock);
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
