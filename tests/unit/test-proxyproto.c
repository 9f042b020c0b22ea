/* Unit tests of the PROXY protocol parser and builder. */
#include "auto-config.h"

#include "proxyproto.h"
#include "tap.h"

#include <string.h>

static int parse(const char *buf, size_t len, struct proxyproto_info *info)
{
	const char *why;
	return proxyproto_parse((const uint8_t *)buf, len, info, &why);
}

static struct netaddr ip(const char *text, unsigned port)
{
	struct netaddr a;

	if (netaddr_from_ip(text, (uint16_t)port, &a) < 0)
		memset(&a, 0, sizeof(a));
	return a;
}

static void addr_is(const struct netaddr *a, const char *want, const char *what)
{
	char got[NETADDR_STRLEN];

	netaddr_format(a, got, sizeof(got));
	ok(strcmp(got, want) == 0, "%s is %s (got %s)", what, want, got);
}

static void test_v1(void)
{
	struct proxyproto_info info;
	const char *h = "PROXY TCP4 192.0.2.7 127.0.0.1 56324 7474\r\nGET /";
	size_t hlen = strlen("PROXY TCP4 192.0.2.7 127.0.0.1 56324 7474\r\n");

	ok(parse(h, strlen(h), &info) == (int)hlen && !info.local, "v1 TCP4: header length");
	addr_is(&info.src, "192.0.2.7:56324", "v1 source");
	addr_is(&info.dst, "127.0.0.1:7474", "v1 destination");
	for (size_t n = 0; n < hlen; n++)
		if (parse(h, n, &info) != 0) {
			ok(0, "v1 prefix of %zu bytes needs more", n);
			return;
		}
	ok(1, "every strict prefix of a v1 header asks for more bytes");
	const char *h6 = "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
	ok(parse(h6, strlen(h6), &info) == (int)strlen(h6), "v1 TCP6");
	addr_is(&info.src, "[2001:db8::1]:1", "v1 IPv6 source");
	const char *unk = "PROXY UNKNOWN ffff::1 whatever\r\n";
	ok(parse(unk, strlen(unk), &info) == (int)strlen(unk) && info.local,
	   "v1 UNKNOWN is accepted as local");
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.7 127.0.0.1 56324 7474\n",     /* LF without CR */
		"PROXY TCP4 192.0.2.7 127.0.0.1 56324\r\n",        /* 5 fields */
		"PROXY TCP4 192.0.2.7 127.0.0.1 56324 7474 9\r\n", /* 7 fields */
		"PROXY TCP4 192.0.2.7  127.0.0.1 1 2\r\n",         /* double space */
		"PROXY TCP4 ::1 127.0.0.1 1 2\r\n",                /* family mismatch */
		"PROXY TCP4 192.0.2.7 127.0.0.1 65536 2\r\n",      /* port range */
		"PROXY TCP4 192.0.2.7 127.0.0.1 080 2\r\n",        /* leading zero */
		"PROXY UDP4 192.0.2.7 127.0.0.1 1 2\r\n",          /* protocol */
		"PROXY TCP4 192.0.2.7 127.0.0.1 1 2 \r\n",         /* trailing space */
		"GET / HTTP/1.1\r\n",                              /* not a header */
		"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",              /* case */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		ok(parse(bad[i], strlen(bad[i]), &info) == -1, "v1 rejects %.*s", 30, bad[i]);
	char longline[200];
	memset(longline, '1', sizeof(longline));
	memcpy(longline, "PROXY TCP4 ", 11);
	ok(parse(longline, sizeof(longline), &info) == -1, "v1 rejects a line over 107 bytes");
	/* 107 bytes with CRLF is the longest line; 108 is one too many. */
	char line[PROXYPROTO_V1_MAX + 2];
	const char *unk107 = "PROXY UNKNOWN ";
	size_t pre = strlen(unk107);
	memset(line, 'x', sizeof(line));
	memcpy(line, unk107, pre);
	memcpy(line + 105, "\r\n", 2);
	ok(parse(line, 107, &info) == 107, "v1 takes a 107-byte line (CRLF included)");
	memset(line, 'x', sizeof(line));
	memcpy(line, unk107, pre);
	memcpy(line + 106, "\r\n", 2);
	ok(parse(line, 108, &info) == -1, "v1 rejects a 108-byte line");
	ok(parse(line, 106, &info) == -1, "... as soon as 106 bytes hold no CR");
	ok(parse(line, 105, &info) == 0, "... and 105 bytes without a CR still ask for more");
}

static void test_v2_and_build(void)
{
	struct proxyproto_info info;
	struct netaddr src, dst;
	uint8_t buf[PROXYPROTO_MAX];
	size_t n;

	src = ip("198.51.100.9", 40000);
	dst = ip("127.0.0.1", 7474);
	n = proxyproto_build(2, &src, &dst, buf, sizeof(buf));
	ok(n == 28 && parse((char *)buf, n, &info) == 28 && !info.local, "v2 IPv4 round trip");
	addr_is(&info.src, "198.51.100.9:40000", "v2 source");
	addr_is(&info.dst, "127.0.0.1:7474", "v2 destination");
	ok(parse((char *)buf, n - 1, &info) == 0, "a short v2 header needs more");
	n = proxyproto_build(1, &src, &dst, buf, sizeof(buf));
	ok(n == strlen("PROXY TCP4 198.51.100.9 127.0.0.1 40000 7474\r\n") &&
		   memcmp(buf, "PROXY TCP4 198.51.100.9 127.0.0.1 40000 7474\r\n", n) == 0,
	   "v1 build");
	src = ip("2001:db8::9", 1);
	dst = ip("::1", 2);
	n = proxyproto_build(2, &src, &dst, buf, sizeof(buf));
	ok(n == 52 && parse((char *)buf, n, &info) == 52, "v2 IPv6 round trip");
	addr_is(&info.src, "[2001:db8::9]:1", "v2 IPv6 source");
	dst = ip("127.0.0.1", 2);
	n = proxyproto_build(1, &src, &dst, buf, sizeof(buf));
	ok(n == 15 && memcmp(buf, "PROXY UNKNOWN\r\n", n) == 0,
	   "mixed families: v1 says PROXY UNKNOWN");
	n = proxyproto_build(2, &src, &dst, buf, sizeof(buf));
	ok(n == 16 && parse((char *)buf, n, &info) == 16 && info.local,
	   "mixed families: v2 sends LOCAL without addresses");
	ok(proxyproto_build(2, &src, &dst, buf, 15) == 0, "a buffer too small for LOCAL: 0");
}

/* A PROXY command with each family byte: the known ones taken, the rest rejected. */
static void test_v2_families(const uint8_t *proxy_hdr)
{
	struct proxyproto_info info;

	for (unsigned fam = 0; fam < 256; fam++) {
		bool known = fam == 0x00 || fam == 0x11 || fam == 0x12 || fam == 0x21 ||
			     fam == 0x22 || fam == 0x31 || fam == 0x32;
		uint8_t h[16 + 216] = { 0 };
		memcpy(h, proxy_hdr, 16);
		h[13] = (uint8_t)fam;
		h[15] = 216;
		if ((parse((char *)h, sizeof(h), &info) == -1) == known) {
			ok(0, "v2 PROXY with family 0x%02x is %s", fam,
			   known ? "taken" : "rejected");
			break;
		}
		if (fam == 255)
			ok(1, "v2 PROXY takes the 7 known families and rejects the 249 others");
	}
}

static void test_v2_local_and_bad(void)
{
	struct proxyproto_info info;

	/* LOCAL with TLVs, then data: only the header is taken. */
	uint8_t local[16 + 7 + 3] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55,
				      0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x07, 0x04, 0x00,
				      0x04, 'a',  'b',  'c',  'd',  'x',  'y',  'z' };
	ok(parse((char *)local, sizeof(local), &info) == 23 && info.local,
	   "v2 LOCAL with a TLV: 23 bytes, local");
	uint8_t bad[16];
	memcpy(bad, local, 16);
	bad[12] = 0x31;
	ok(parse((char *)bad, 16, &info) == -1, "v2 with version 3 is rejected");
	memcpy(bad, local, 16);
	bad[12] = 0x22;
	ok(parse((char *)bad, 16, &info) == -1, "v2 with an unknown command is rejected");
	memcpy(bad, local, 16);
	bad[14] = 0x10;
	ok(parse((char *)bad, 16, &info) == -1, "v2 longer than the limit is rejected");
	memcpy(bad, local, 16);
	bad[12] = 0x21;
	bad[13] = 0x11;
	bad[15] = 4;
	uint8_t shortv4[20];
	memcpy(shortv4, bad, 16);
	memset(shortv4 + 16, 0, 4);
	ok(parse((char *)shortv4, 20, &info) == -1, "v2 TCP4 with short addresses is rejected");
	test_v2_families(bad);
}

int main(void)
{
	test_v1();
	test_v2_and_build();
	test_v2_local_and_bad();
	return tap_done();
}
