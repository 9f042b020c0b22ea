/*
 * net: addresses and socket helpers.
 *
 * A hostport is the text form users write ("host:port", "[v6]:port"); a
 * netaddr is one resolved socket address.  Helpers that can fail write a
 * one-line reason into a caller buffer (err, NET_ERRLEN) and return -1.
 * Pure functions; safe from any thread.
 */
#ifndef LTCP_NET_H
#define LTCP_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

#define NET_ERRLEN     256
#define NETADDR_STRLEN 64 /* "[ffff:...:ffff]:65535" fits */

struct hostport {
	char *host; /* owned; brackets of IPv6 literals removed */
	uint16_t port;
};

struct netaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Parses "host:port" or "[v6]:port".  On error returns -1 and sets *why. */
int hostport_parse(const char *text, struct hostport *out, const char **why) MUSTCHECK;
void hostport_clear(struct hostport *hp);

/* Resolves host (name or literal) to at most max addresses. */
int netaddr_resolve(const char *host, uint16_t port, bool passive, struct netaddr *out, int max,
		    char *err) MUSTCHECK;
/* Parses a numeric IPv4/IPv6 literal (any textual form inet_pton accepts). */
int netaddr_from_ip(const char *ip, uint16_t port, struct netaddr *out) MUSTCHECK;
void netaddr_format(const struct netaddr *a, char *buf, size_t len);
bool netaddr_equal(const struct netaddr *a, const struct netaddr *b);
uint16_t netaddr_port(const struct netaddr *a);
int netaddr_local(int fd, struct netaddr *out) MUSTCHECK;

/* A non-blocking listening socket (SO_REUSEADDR, close-on-exec); the
 * sockets it accepts inherit TCP_NODELAY and SO_KEEPALIVE. */
int net_listen(const struct netaddr *a, int backlog, char *err) MUSTCHECK;
/* TCP_DEFER_ACCEPT on a listening socket: its connections are handed over
 * once the client has sent data (or after about secs); 0 turns it off. */
int net_defer_accept(int fd, int secs) MUSTCHECK;
/* Starts a non-blocking connect; returns the fd (connecting or connected). */
int net_connect_start(const struct netaddr *a, char *err) MUSTCHECK;
/* TCP_NODELAY and SO_KEEPALIVE; failures are harmless and ignored. */
void net_tune(int fd);
int net_set_nonblock(int fd, bool on) MUSTCHECK;

#endif
