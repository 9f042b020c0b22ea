/*
 * listener: one listening socket and the acceptor thread that serves it.
 *
 * The main thread opens (binds) a listener, starts it and closes it.  The
 * acceptor thread knows nothing of proxies or relays: before each accept(2)
 * it asks its owner's handler to reserve room for one more connection (a
 * full pool or max_connections leaves connections in the kernel backlog
 * instead of spinning), then hands the socket over.  EMFILE and ENFILE
 * pause accepting for a second, warned once per episode.
 */
#ifndef LTCP_LISTENER_H
#define LTCP_LISTENER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "net.h"

struct listener;

/* What the owner does around each accept; called on the acceptor thread. */
struct listener_handler {
	/* Blocks until one more connection may be accepted and returns a token
	 * for it.  NULL when *cancel is set, or with *refuse set when the owner
	 * wants the next connection reset at once (its limit is reached). */
	void *(*reserve)(void *owner, const atomic_bool *cancel, bool *refuse);
	/* The accept failed: gives the reserved room back. */
	void (*unreserve)(void *owner, void *token);
	/* Takes the accepted socket (non-blocking, close-on-exec). */
	void (*accepted)(void *owner, void *token, int fd, const struct netaddr *peer,
			 int64_t accept_us);
	/* A connection was reset for lack of room. */
	void (*refused)(void *owner);
	/* Wakes a reserve blocked for this listener, so that it sees *cancel. */
	void (*wake)(void *owner);
};

/* Resolves and binds addr; NULL with err on failure. */
struct listener *listener_open(const struct cfg_hostport *addr, char *err, size_t errlen);
/* Starts the acceptor thread, which calls h with owner. */
int listener_start(struct listener *l, const struct listener_handler *h, void *owner) MUSTCHECK;
/* Stops the acceptor, closes the socket, frees the listener. */
void listener_close(struct listener *l);

/* The "host:port" the listener was configured with (its identity on reload). */
const char *listener_key(const struct listener *l);
/* The bound address, e.g. "127.0.0.1:7474" (with the real port for port 0). */
const char *listener_name(const struct listener *l);

#endif
