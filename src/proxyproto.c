#include "auto-config.h"

#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
static const char v1_sig[] = "PROXY ";

static int invalid(const char **why, const char *msg)
{
	*why = msg;
	return -1;
}

/* ------------------------------------------------------------------ v1 */

static int v1_port(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int v1_addr(const char *s, size_t n, int family, uint16_t port, struct netaddr *out)
{
	char ip[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(ip))
		return -1;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (netaddr_from_ip(ip, port, out) < 0 || out->ss.ss_family != family)
		return -1;
	return 0;
}

static int v1_parse(const uint8_t *buf, size_t len, struct proxyproto_info *info, const char **why)
{
	/* The CR of a 107-byte line (CRLF included) is its 106th byte. */
	const size_t scan = MIN(len, (size_t)PROXYPROTO_V1_MAX - 1);
	const char *line = (const char *)buf;
	const char *end = memchr(line, '\r', scan);
	const char *lf = memchr(line, '\n', scan);
	const char *tok[6];
	size_t toklen[6], n = 0;

	if (lf && (!end || lf < end))
		return invalid(why, "v1 header: LF without CR");
	if (!end)
		return len >= PROXYPROTO_V1_MAX - 1
			       ? invalid(why, "v1 header longer than 107 bytes")
			       : 0;
	if ((size_t)(end - line) + 1 >= len)
		return 0; /* the \n is still to come */
	if (end[1] != '\n')
		return invalid(why, "v1 header: CR without LF");
	for (const char *p = line; p < end && n < 6;) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		const char *stop = sp ? sp : end;
		tok[n] = p;
		toklen[n++] = (size_t)(stop - p);
		p = sp ? sp + 1 : end;
		if (sp && p == end)
			return invalid(why, "v1 header: trailing space");
	}
	int hlen = (int)(end - line) + 2;
	if (n >= 2 && toklen[1] == 7 && memcmp(tok[1], "UNKNOWN", 7) == 0) {
		info->local = true; /* anything may follow UNKNOWN */
		return hlen;
	}
	if (n != 6 || memchr(tok[5], ' ', (size_t)(end - tok[5])))
		return invalid(why, "v1 header: expected 6 fields");
	int family;
	if (toklen[1] == 4 && memcmp(tok[1], "TCP4", 4) == 0)
		family = AF_INET;
	else if (toklen[1] == 4 && memcmp(tok[1], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return invalid(why, "v1 header: protocol must be TCP4, TCP6 or UNKNOWN");
	uint16_t sport, dport;
	if (v1_port(tok[4], toklen[4], &sport) < 0 || v1_port(tok[5], toklen[5], &dport) < 0)
		return invalid(why, "v1 header: bad port");
	if (v1_addr(tok[2], toklen[2], family, sport, &info->src) < 0 ||
	    v1_addr(tok[3], toklen[3], family, dport, &info->dst) < 0)
		return invalid(why, "v1 header: bad address");
	info->local = false;
	return hlen;
}

/* ------------------------------------------------------------------ v2 */

static void v2_addr4(const uint8_t *a, const uint8_t *port, struct netaddr *out)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;

	memset(out, 0, sizeof(*out));
	s4->sin_family = AF_INET;
	memcpy(&s4->sin_addr, a, 4);
	memcpy(&s4->sin_port, port, 2);
	out->len = sizeof(*s4);
}

static void v2_addr6(const uint8_t *a, const uint8_t *port, struct netaddr *out)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof(*out));
	s6->sin6_family = AF_INET6;
	memcpy(&s6->sin6_addr, a, 16);
	memcpy(&s6->sin6_port, port, 2);
	out->len = sizeof(*s6);
}

/* UNSPEC (0x00), or INET, INET6 or UNIX over STREAM or DGRAM. */
static bool v2_family_known(unsigned fam)
{
	unsigned af = fam >> 4, proto = fam & 0x0f;

	return fam == 0x00 || (af >= 1 && af <= 3 && proto >= 1 && proto <= 2);
}

static int v2_parse(const uint8_t *buf, size_t len, struct proxyproto_info *info, const char **why)
{
	if (len < 16)
		return 0;
	if ((buf[12] >> 4) != 2)
		return invalid(why, "v2 header: version is not 2");
	unsigned cmd = buf[12] & 0x0f, fam = buf[13];
	size_t body = (size_t)buf[14] << 8 | buf[15];
	if (cmd > 1)
		return invalid(why, "v2 header: unknown command");
	if (16 + body > PROXYPROTO_MAX)
		return invalid(why, "v2 header too long");
	if (len < 16 + body)
		return 0;
	const uint8_t *a = buf + 16;
	info->local = true;
	if (cmd == 1 && fam == 0x11) {
		if (body < 12)
			return invalid(why, "v2 header: short IPv4 addresses");
		v2_addr4(a, a + 8, &info->src);
		v2_addr4(a + 4, a + 10, &info->dst);
		info->local = false;
	} else if (cmd == 1 && fam == 0x21) {
		if (body < 36)
			return invalid(why, "v2 header: short IPv6 addresses");
		v2_addr6(a, a + 32, &info->src);
		v2_addr6(a + 16, a + 34, &info->dst);
		info->local = false;
	} else if (cmd == 1 && !v2_family_known(fam)) {
		return invalid(why, "v2 header: unknown address family");
	}
	/* LOCAL, UNSPEC, UDP and UNIX sources carry no TCP client address. */
	return (int)(16 + body);
}

/* ------------------------------------------------------------------ API */

int proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto_info *info, const char **why)
{
	size_t n1 = MIN(len, sizeof(v1_sig) - 1), n2 = MIN(len, sizeof(v2_sig));

	memset(info, 0, sizeof(*info));
	*why = "";
	if (len == 0)
		return 0;
	if (memcmp(buf, v1_sig, n1) == 0)
		return n1 < sizeof(v1_sig) - 1 ? 0 : v1_parse(buf, len, info, why);
	if (memcmp(buf, v2_sig, n2) == 0)
		return n2 < sizeof(v2_sig) ? 0 : v2_parse(buf, len, info, why);
	return invalid(why, "not a PROXY protocol header");
}

static size_t build_v1(const struct netaddr *src, const struct netaddr *dst, uint8_t *out,
		       size_t cap)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	bool v4 = src->ss.ss_family == AF_INET;
	const void *sa = v4 ? (const void *)&((const struct sockaddr_in *)&src->ss)->sin_addr
			    : (const void *)&((const struct sockaddr_in6 *)&src->ss)->sin6_addr;
	const void *da = v4 ? (const void *)&((const struct sockaddr_in *)&dst->ss)->sin_addr
			    : (const void *)&((const struct sockaddr_in6 *)&dst->ss)->sin6_addr;
	int n;

	inet_ntop(src->ss.ss_family, sa, s, sizeof(s));
	inet_ntop(dst->ss.ss_family, da, d, sizeof(d));
	n = snprintf((char *)out, cap, "PROXY %s %s %s %u %u\r\n", v4 ? "TCP4" : "TCP6", s, d,
		     netaddr_port(src), netaddr_port(dst));
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static size_t build_v2(const struct netaddr *src, const struct netaddr *dst, uint8_t *out,
		       size_t cap)
{
	bool v4 = src->ss.ss_family == AF_INET;
	size_t body = v4 ? 12 : 36;
	uint8_t *a = out + 16;

	if (cap < 16 + body)
		return 0;
	memcpy(out, v2_sig, sizeof(v2_sig));
	out[12] = 0x21; /* version 2, PROXY */
	out[13] = v4 ? 0x11 : 0x21;
	out[14] = 0;
	out[15] = (uint8_t)body;
	if (v4) {
		const struct sockaddr_in *s = (const void *)&src->ss, *d = (const void *)&dst->ss;
		memcpy(a, &s->sin_addr, 4);
		memcpy(a + 4, &d->sin_addr, 4);
		memcpy(a + 8, &s->sin_port, 2);
		memcpy(a + 10, &d->sin_port, 2);
	} else {
		const struct sockaddr_in6 *s = (const void *)&src->ss, *d = (const void *)&dst->ss;
		memcpy(a, &s->sin6_addr, 16);
		memcpy(a + 16, &d->sin6_addr, 16);
		memcpy(a + 32, &s->sin6_port, 2);
		memcpy(a + 34, &d->sin6_port, 2);
	}
	return 16 + body;
}

static size_t build_unknown(int version, uint8_t *out, size_t cap)
{
	static const char v1_unknown[] = "PROXY UNKNOWN\r\n";
	static const uint8_t v2_local_tail[4] = { 0x20, 0x00, 0x00, 0x00 }; /* v2 LOCAL, no body */
	size_t len = version == 1 ? sizeof(v1_unknown) - 1 : sizeof(v2_sig) + 4;

	if (cap < len)
		return 0;
	if (version == 1) {
		memcpy(out, v1_unknown, len);
	} else {
		memcpy(out, v2_sig, sizeof(v2_sig));
		memcpy(out + sizeof(v2_sig), v2_local_tail, sizeof(v2_local_tail));
	}
	return len;
}

size_t proxyproto_build(int version, const struct netaddr *src, const struct netaddr *dst,
			uint8_t *out, size_t cap)
{
	int f = src->ss.ss_family;

	if (f != dst->ss.ss_family || (f != AF_INET && f != AF_INET6))
		return build_unknown(version, out, cap);
	return version == 1 ? build_v1(src, dst, out, cap) : build_v2(src, dst, out, cap);
}
