/*
 * listener: one listening socket, and the acceptor thread that serves it and
 * watches its parked connections.
 *
 * The main thread opens (binds) a listener, starts it and closes it.  The
 * acceptor thread knows nothing of proxies or relays: before each accept(2)
 * it asks its owner's handler to reserve room for one more connection (a
 * full pool or max_connections leaves connections in the kernel backlog
 * instead of spinning), then hands the socket over.  EMFILE and ENFILE
 * pause accepting for a second, warned once per episode.
 *
 * Parking: a relay thread whose connection went quiet hands it to the
 * parked set of the listener that accepted it (listener_park) and returns
 * to the pool.  The acceptor thread sleeps in epoll_wait on the listening
 * socket and every parked socket at once; when one becomes readable (or
 * hangs up), or a connection's timer is due, or a drain begins, it calls
 * the entry's wake function, which must not block.  Parked entries are
 * known to epoll by slot and generation, never by pointer, so an event
 * that arrives after its connection moved on is recognised as stale.
 *
 * Sharing and SNI routing (SPEC 12): proxies that list the same address
 * share one listener; each registers a route (its handler, owner and
 * server_names).  While the listener has one plain route, the acceptor
 * reserves room with that owner before each accept, as above.  Once it has
 * several routes, or its route names servers or passes TLS through, it
 * accepts at once and reads the client's ClientHello without consuming it
 * (bounded: 16 KiB and the entries' connect_timeout_ms), in the parked set
 * while it is incomplete, so a slow client costs no thread; then it hands
 * the socket to the route whose names match its SNI, or to the default
 * route (no names), through the owner's `routed`, which never blocks.
 *
 * Lifetime: a listener is reference counted, one reference for being open
 * and one per connection accepted on it.  Each proxy entry that opened it
 * closes it; the last close stops accepting and closes the socket at once;
 * the parker thread lives on while connections of the listener remain
 * (they may park), then frees the listener and exits.  l->lock guards the
 * parked set, the per-client counts and the reference count; it is held
 * for epoll_ctl but never for anything that blocks.  l->routes_lock guards
 * the routes; it is held while a route's `routed` runs (which never
 * blocks), so an owner is never called after its listener_close.
 */
#ifndef LTCP_LISTENER_H
#define LTCP_LISTENER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "net.h"

struct listener;

/* Why a parked connection was handed back. */
enum park_wake {
	PARK_WAKE_IO,    /* a socket is readable, hung up or failed */
	PARK_WAKE_TIMER, /* its due time came */
	PARK_WAKE_DRAIN, /* the process is draining */
};

/* A parked connection as the parked set sees it, embedded in the relay's. */
struct parked {
	int fd[2];      /* the sockets watched for reading; -1: not watched */
	int64_t due_ms; /* now_ms() at which to wake it anyway; INT64_MAX: never */
	/* Called on the acceptor thread, without locks; must not block. */
	void (*wake)(struct parked *pk, enum park_wake why);
	/* The parked set's own. */
	uint32_t slot;
	size_t heap_index;
};

/* Why the listener reset a connection at once. */
enum listener_refusal {
	REFUSE_OVER_LIMIT,   /* the owner's limit (max_connections, policy refuse) */
	REFUSE_CLIENT_LIMIT, /* max_connections_per_client */
};

/* What the owner does around each accept; called on the acceptor thread. */
struct listener_handler {
	/* Blocks until one more connection may be accepted and returns a token
	 * for it.  NULL when *cancel is set, or with *refuse set when the owner
	 * wants the next connection reset at once (its limit is reached). */
	void *(*reserve)(void *owner, const atomic_bool *cancel, bool *refuse);
	/* The accept failed: gives the reserved room back. */
	void (*unreserve)(void *owner, void *token);
	/* Takes the accepted socket (non-blocking, close-on-exec).  counted says
	 * that the client's address was counted for the per-client limit: the
	 * connection gives it back with listener_client_leave. */
	void (*accepted)(void *owner, void *token, int fd, const struct netaddr *peer,
			 int64_t accept_us, bool counted);
	/* A connection was reset for lack of room. */
	void (*refused)(void *owner, enum listener_refusal why);
	/* Wakes a reserve blocked for this listener, so that it sees *cancel. */
	void (*wake)(void *owner);
	/* Open connections allowed per client address; 0: no limit. */
	unsigned (*client_limit)(void *owner);
	/* SNI routing: a connection routed to this owner (sni: the ClientHello's
	 * name, "" for none).  Never blocks: admits and queues it, taking the
	 * socket (true), or refuses it (false: the listener resets it). */
	bool (*routed)(void *owner, int fd, const struct netaddr *peer, int64_t accept_us,
		       bool counted, const char *sni);
};

/* What an owner's entry says about routing on this address. */
struct listener_route_opts {
	const struct cfg_strlist *server_names; /* copied; none: the default route */
	bool sni;                 /* this entry routes by SNI (names or passthrough) */
	int64_t hello_timeout_ms; /* the entry's connect_timeout_ms */
	bool proxy_protocol;      /* a PROXY header precedes the ClientHello */
	int defer_accept_secs;    /* TCP_DEFER_ACCEPT of the socket; 0: off */
};

/* Why a ClientHello led nowhere (linkerd_tcp_sni_*_total). */
enum sni_failure { SNI_UNMATCHED, SNI_NOT_TLS, SNI_MALFORMED, SNI_TIMEOUT, SNI_FAILURES };
const char *sni_failure_name(enum sni_failure f);

/* The open listener of addr's key (shared with the proxies that opened it),
 * or a new one bound to addr; NULL with err on failure. */
struct listener *listener_open(const struct cfg_hostport *addr, char *err, size_t errlen);
/* Adds owner's route, starting the listener's threads the first time. */
int listener_start(struct listener *l, const struct listener_handler *h, void *owner,
		   const struct listener_route_opts *o) MUSTCHECK;
/* Replaces owner's route options (a reload kept the entry). */
void listener_update(struct listener *l, void *owner, const struct listener_route_opts *o);
/* Removes owner's route (if started) and gives back its open; the last
 * close stops accepting and closes the socket.  owner is not called any
 * more once this returns. */
void listener_close(struct listener *l, void *owner);
/* Calls fn with the bound address and SNI failure counts of every listener
 * that routes or has routed by SNI. */
void listener_for_each_sni(void (*fn)(const char *name, const uint64_t counts[SNI_FAILURES],
				      void *arg),
			   void *arg);

/* One reference per accepted connection, dropped when it closes. */
struct listener *listener_ref(struct listener *l);
void listener_unref(struct listener *l);
/* A connection counted at accept gives its client's address back. */
void listener_client_leave(struct listener *l, const struct netaddr *peer);

/* Relay thread: adds pk to the parked set.  From the moment this returns
 * true, pk (and the connection) belongs to the parked set and may already
 * be woken on another thread.  False: draining (close the connection
 * instead), or the sockets could not be watched (errno set). */
bool listener_park(struct listener *l, struct parked *pk);
/* Any thread: every listener, open or closed, wakes its parked connections
 * with PARK_WAKE_DRAIN and refuses new parks from now on. */
void listener_drain_all(void);
/* Waits (up to deadline_ms) until every acceptor thread has ended; false
 * when some still run. */
bool listener_wait_all(int64_t deadline_ms);

/* The "host:port" the listener was configured with (its identity on reload). */
const char *listener_key(const struct listener *l);
/* The bound address, e.g. "127.0.0.1:7474" (with the real port for port 0). */
const char *listener_name(const struct listener *l);

#endif
