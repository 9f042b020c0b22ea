/*
 * listener: one listening socket and the acceptor thread that serves it.
 *
 * The main thread opens (binds) a listener, starts it and stops it.  The
 * acceptor thread reserves a relay thread and a slot under the proxy's
 * max_connections before each accept(2), so a full pool leaves
 * connections in the kernel backlog instead of spinning.  EMFILE and
 * ENFILE pause accepting for a second, warned once per episode.
 */
#ifndef LTCP_LISTENER_H
#define LTCP_LISTENER_H

#include "config.h"

struct listener;
struct proxy;
struct pool;
struct tls_creds;

/* Resolves and binds srv->addr; NULL with err on failure. */
struct listener *listener_open(const struct cfg_server *srv, char *err, size_t errlen);
/* Starts the acceptor thread; connections go to pool on behalf of proxy. */
int listener_start(struct listener *l, struct proxy *proxy, struct pool *pool) MUSTCHECK;
/* Stops the acceptor, closes the socket, frees the listener. */
void listener_close(struct listener *l);

/* The "host:port" the listener was configured with (its identity on reload). */
const char *listener_key(const struct listener *l);
/* The bound address, e.g. "127.0.0.1:7474" (with the real port for port 0). */
const char *listener_name(const struct listener *l);
/* The server section in effect; guarded by the owning proxy's lock. */
const struct cfg_server *listener_server(const struct listener *l);
void listener_set_server(struct listener *l, const struct cfg_server *srv);
/* The TLS server credentials in effect (NULL: plaintext); guarded like the server. */
struct tls_creds *listener_tls(const struct listener *l);
/* Installs new credentials (the listener takes the reference) and returns the old. */
struct tls_creds *listener_swap_tls(struct listener *l, struct tls_creds *tls);

#endif
