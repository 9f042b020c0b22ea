/*
 * clienthello: reads a TLS ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2)
 * from the first bytes a client sent, for SNI routing (SPEC 12): its
 * server_name (RFC 6066 3) and its ALPN protocols (RFC 7301).
 *
 * clienthello_parse is pure and strict (it is fuzzed).  It only looks at
 * the bytes it is given (the caller peeks them and never loses them), and
 * says whether they hold a whole, valid ClientHello, need more, or can never
 * be one.  It keeps no state: the caller calls it again from the first byte
 * when more have come.  The ClientHello may be spread over several handshake
 * records; it must be whole within the first CLIENTHELLO_MAX bytes.  An
 * SSL 2.0-compatible ClientHello (first byte with the high bit set) is
 * NOT_TLS: it cannot carry extensions, so no name either.
 *
 * clienthello_name_matches is the server_names rule of SPEC 12.  Relay
 * threads call both; neither allocates.
 */
#ifndef LTCP_CLIENTHELLO_H
#define LTCP_CLIENTHELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most bytes looked at: a ClientHello must be whole within them. */
#define CLIENTHELLO_MAX      16384
#define CLIENTHELLO_NAME_MAX 255 /* a host name's bytes, trailing dot stripped */
#define CLIENTHELLO_ALPN_MAX 128 /* room for the ALPN text, NUL included */

enum clienthello_status {
	CLIENTHELLO_NEED_MORE, /* a valid beginning: call again with more bytes */
	CLIENTHELLO_DONE,      /* a whole, valid ClientHello */
	CLIENTHELLO_NOT_TLS,   /* does not begin a TLS handshake record (plain HTTP, SSL 2.0) */
	CLIENTHELLO_MALFORMED, /* TLS, but never a valid ClientHello (or too large) */
};

struct clienthello {
	/* NEED_MORE: the answer stays NEED_MORE until the bytes reach this
	 * many (> len, at most CLIENTHELLO_MAX): the next byte the reader
	 * waits for, or the end of the field it is reading. */
	size_t need;
	/* DONE: the bytes of the records that carry the ClientHello. */
	size_t used;
	/* MALFORMED: what is wrong, a static string. */
	const char *why;
	/* DONE: the host name of server_name, lowercase, without a trailing
	 * dot; "" when the ClientHello names none. */
	char sni[CLIENTHELLO_NAME_MAX + 1];
	/* DONE: the ALPN protocols in the client's order, joined by ','; any
	 * byte outside '!'..'~', ',' and '\\' is written \xHH.  Protocols that
	 * do not fit whole are left out (alpn_count still counts them).  ""
	 * when there is no ALPN extension. */
	char alpn[CLIENTHELLO_ALPN_MAX];
	unsigned alpn_count;
	uint16_t version; /* DONE: legacy_version, e.g. 0x0303 */
};

/* Looks at buf[0..len) (at most CLIENTHELLO_MAX of it) and fills *out. */
enum clienthello_status clienthello_parse(const uint8_t *buf, size_t len, struct clienthello *out);

/* Whether a server_names pattern matches a host name: the same name
 * ignoring ASCII case, or "*.rest" and a name of exactly one more,
 * non-empty label in front of rest ("*.example.com" matches
 * "a.example.com", not "example.com" nor "a.b.example.com"). */
bool clienthello_name_matches(const char *pattern, const char *name);

/* The name of a status, for logs and tests. */
const char *clienthello_status_name(enum clienthello_status s);

#endif
