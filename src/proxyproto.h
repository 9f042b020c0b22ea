/*
 * proxyproto: the PROXY protocol (HAProxy's specification, versions 1 and
 * 2) that carries a client's address across a proxy.
 *
 * proxyproto_parse is pure and strict (it is fuzzed): it looks at the bytes
 * received so far and says whether they hold a whole, valid header, need
 * more, or can never be one.  proxyproto_build writes a header.  Relay
 * threads call both.
 */
#ifndef LTCP_PROXYPROTO_H
#define LTCP_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

/* The longest header we accept: v2's 16 bytes plus TLVs up to this. */
#define PROXYPROTO_MAX    536
#define PROXYPROTO_V1_MAX 107

struct proxyproto_info {
	bool local;         /* v1 UNKNOWN, v2 LOCAL: the addresses are not a client's */
	struct netaddr src; /* the client */
	struct netaddr dst; /* the address it connected to */
};

/* > 0: a complete header of that many bytes (info filled); 0: more bytes
 * needed; -1: not a valid header (*why says what is wrong). */
int proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto_info *info,
		     const char **why);
/* Writes a version 1 or 2 header for src -> dst into out and returns its
 * length (0 only when cap is too small).  Addresses that cannot be
 * expressed (not TCP over IPv4 or IPv6, mixed families) give the forms that
 * carry none: "PROXY UNKNOWN" (v1) or the LOCAL command (v2). */
size_t proxyproto_build(int version, const struct netaddr *src, const struct netaddr *dst,
			uint8_t *out, size_t cap);

#endif
