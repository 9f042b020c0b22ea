/*
 * Unit tests of the ClientHello reader and the server_names match: the
 * ClientHellos real clients sent (tests/fuzz/corpus/clienthello, captured by
 * tests/lib/hello_capture.py), whole, byte by byte and re-cut into records;
 * built ones for each rule.  `test-clienthello --dump FILE...` prints what
 * the reader makes of files instead (tests/integration/clienthello.py).
 */
#include "auto-config.h"

#include "clienthello.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ building */

struct buf {
	uint8_t b[40000];
	size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > sizeof(b->b))
		abort();
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void put8(struct buf *b, size_t v)
{
	uint8_t x = (uint8_t)v;
	put(b, &x, 1);
}

static void put16(struct buf *b, size_t v)
{
	put8(b, v >> 8);
	put8(b, v);
}

static void put24(struct buf *b, size_t v)
{
	put8(b, v >> 16);
	put16(b, v);
}

static void ext(struct buf *exts, unsigned type, const void *data, size_t n)
{
	put16(exts, type);
	put16(exts, n);
	put(exts, data, n);
}

static void ext_sni(struct buf *exts, const char *name, size_t n)
{
	struct buf e = { .n = 0 };

	put16(&e, n + 3);
	put8(&e, 0);
	put16(&e, n);
	put(&e, name, n);
	ext(exts, 0, e.b, e.n);
}

/* protos: NUL-separated, ending in an empty one. */
static void ext_alpn(struct buf *exts, const char *protos)
{
	struct buf l = { .n = 0 }, e = { .n = 0 };

	for (const char *p = protos; *p; p += strlen(p) + 1) {
		put8(&l, strlen(p));
		put(&l, p, strlen(p));
	}
	put16(&e, l.n);
	put(&e, l.b, l.n);
	ext(exts, 16, e.b, e.n);
}

/* The handshake message: a ClientHello whose extensions block is exts (NULL:
 * none at all). */
static void hello(struct buf *msg, const struct buf *exts)
{
	struct buf body = { .n = 0 };
	static const uint8_t suites[] = { 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f };

	put16(&body, 0x0303);
	for (int i = 0; i < 32; i++)
		put8(&body, i); /* random */
	put8(&body, 32);
	for (int i = 0; i < 32; i++)
		put8(&body, 0xa0 + i); /* session id */
	put16(&body, sizeof(suites));
	put(&body, suites, sizeof(suites));
	put8(&body, 1);
	put8(&body, 0);
	if (exts) {
		put16(&body, exts->n);
		put(&body, exts->b, exts->n);
	}
	msg->n = 0;
	put8(msg, 1);
	put24(msg, body.n);
	put(msg, body.b, body.n);
}

/* The message in records of at most `each` bytes (0: one record), version 3.1. */
static void records(struct buf *out, const struct buf *msg, size_t each)
{
	out->n = 0;
	for (size_t at = 0; at < msg->n;) {
		size_t k = each && each < msg->n - at ? each : msg->n - at;
		put8(out, 0x16);
		put16(out, 0x0301);
		put16(out, k);
		put(out, msg->b + at, k);
		at += k;
	}
}

/* The handshake message inside a capture (one or more records). */
static void unwrap(struct buf *msg, const struct buf *rec)
{
	msg->n = 0;
	for (size_t at = 0; at + 5 <= rec->n;) {
		size_t k = (size_t)rec->b[at + 3] << 8 | rec->b[at + 4];
		put(msg, rec->b + at + 5, k);
		at += 5 + k;
	}
}

/* ------------------------------------------------------------ checking */

static enum clienthello_status parse(const struct buf *b, struct clienthello *h)
{
	return clienthello_parse(b->b, b->n, h);
}

static int same(const struct clienthello *a, const struct clienthello *b)
{
	return strcmp(a->sni, b->sni) == 0 && strcmp(a->alpn, b->alpn) == 0 &&
	       a->alpn_count == b->alpn_count && a->version == b->version;
}

static void done_with(const struct buf *b, const char *sni, const char *alpn, const char *what)
{
	struct clienthello h;
	enum clienthello_status s = parse(b, &h);

	ok(s == CLIENTHELLO_DONE && h.used <= b->n && strcmp(h.sni, sni) == 0 &&
		   strcmp(h.alpn, alpn) == 0,
	   "%s: done, SNI \"%s\", ALPN \"%s\" (got %s%s%s, \"%s\", \"%s\")", what, sni, alpn,
	   clienthello_status_name(s), h.why ? ": " : "", h.why ? h.why : "", h.sni, h.alpn);
}

static void malformed(const struct buf *b, const char *why, const char *what)
{
	struct clienthello h;
	enum clienthello_status s = parse(b, &h);

	ok(s == CLIENTHELLO_MALFORMED && h.why && strstr(h.why, why),
	   "%s: malformed, \"%s\" (got %s%s%s)", what, why, clienthello_status_name(s),
	   h.why ? ": " : "", h.why ? h.why : "");
}

/* Every strict prefix needs more (and says how much, beyond itself);
 * growing one byte at a time ends in the same answer as the whole. */
static void prefixes(const struct buf *b, const char *what)
{
	struct clienthello whole, h;
	enum clienthello_status s = parse(b, &whole);

	for (size_t n = 0; n < whole.used; n++) {
		enum clienthello_status ps = clienthello_parse(b->b, n, &h);
		if (ps != CLIENTHELLO_NEED_MORE || h.need <= n || h.need > whole.used) {
			ok(0, "%s: the first %zu bytes need more (got %s, need %zu)", what, n,
			   clienthello_status_name(ps), h.need);
			return;
		}
	}
	ok(s == CLIENTHELLO_DONE && clienthello_parse(b->b, whole.used, &h) == s &&
		   same(&h, &whole),
	   "%s: fed one byte at a time, need more for each of %zu prefixes, then done, same "
	   "result",
	   what, whole.used);
}

static int load(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		return -1;
	b->n = fread(b->b, 1, sizeof(b->b), f);
	fclose(f);
	return 0;
}

/* ------------------------------------------------------------ tests */

static const struct capture {
	const char *file, *sni, *alpn;
} captures[] = {
	{ "gnutls-cli.bin", "gnutls.example.test", "h2,http/1.1" },
	{ "openssl.bin", "openssl.example.test", "h2,http/1.1" }, /* sent as OpenSSL.Example.Test */
	{ "openssl-3-records.bin", "openssl.example.test", "h2,http/1.1" },
	{ "curl.bin", "curl.example.test", "h2,http/1.1" },
	{ "python-ssl.bin", "python.example.test", "h2,http/1.1,x-test" },
	{ "chromium.bin", "chromium.example.test", "h2,http/1.1" },
};

static void test_captures(void)
{
	const char *top = getenv("LTCP_SRCDIR");
	static struct buf b, msg, re;
	struct clienthello h;
	char path[4096];

	for (size_t i = 0; i < sizeof(captures) / sizeof(captures[0]); i++) {
		const struct capture *c = &captures[i];
		snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/clienthello/%s", top ? top : ".",
			 c->file);
		if (!ok(load(path, &b) == 0, "%s: read", path))
			continue;
		done_with(&b, c->sni, c->alpn, c->file);
		ok(parse(&b, &h) == CLIENTHELLO_DONE && h.used == b.n, "... all %zu bytes used",
		   b.n);
		prefixes(&b, c->file);
		/* Re-cut into 2 and 3 records, and into records of one byte. */
		unwrap(&msg, &b);
		records(&re, &msg, (msg.n + 1) / 2);
		done_with(&re, c->sni, c->alpn, "... in 2 records");
		prefixes(&re, "... in 2 records");
		records(&re, &msg, (msg.n + 2) / 3);
		done_with(&re, c->sni, c->alpn, "... in 3 records");
		records(&re, &msg, 1);
		done_with(&re, c->sni, c->alpn, "... in records of one byte");
		/* Whatever follows the ClientHello is not looked at. */
		put(&b, "\x17\x03\x03\x00\x01x", 6);
		done_with(&b, c->sni, c->alpn, "... followed by another record");
	}
}

static void test_built(void)
{
	static struct buf exts, msg, b;
	struct clienthello h;

	exts.n = 0;
	ext_sni(&exts, "Www.Example.COM.", 16);
	ext_alpn(&exts, "h2\0http/1.1\0spdy/3\0");
	hello(&msg, &exts);
	records(&b, &msg, 0);
	done_with(&b, "www.example.com", "h2,http/1.1,spdy/3",
		  "built: mixed case and a trailing dot, three ALPN protocols");
	ok(parse(&b, &h) == CLIENTHELLO_DONE && h.alpn_count == 3 && h.version == 0x0303,
	   "... alpn_count 3, version 0x0303");
	prefixes(&b, "built");

	exts.n = 0;
	ext_alpn(&exts, "h2\0");
	hello(&msg, &exts);
	records(&b, &msg, 0);
	done_with(&b, "", "h2", "no server_name: SNI empty");

	hello(&msg, NULL);
	records(&b, &msg, 0);
	done_with(&b, "", "", "no extensions at all");
	ok(parse(&b, &h) == CLIENTHELLO_DONE && h.alpn_count == 0, "... alpn_count 0");

	exts.n = 0;
	hello(&msg, &exts);
	records(&b, &msg, 0);
	done_with(&b, "", "", "an empty extensions block");

	/* server_name with only a name type other than host_name. */
	exts.n = 0;
	ext(&exts, 0, "\x00\x06\x07\x00\x03\x61\x62\x63", 8);
	hello(&msg, &exts);
	records(&b, &msg, 0);
	done_with(&b, "", "", "server_name of an unknown name type only: SNI empty");

	/* ALPN protocols needing escapes, and more than fit. */
	exts.n = 0;
	ext_alpn(&exts, "a,b\0x\\y\0\x01\xff\0");
	hello(&msg, &exts);
	records(&b, &msg, 0);
	done_with(&b, "", "a\\x2cb,x\\x5cy,\\x01\\xff",
		  "ALPN bytes outside '!'..'~', ',', '\\' escaped");
	exts.n = 0;
	ext_alpn(&exts, "protocol-number-0001\0protocol-number-0002\0protocol-number-0003\0"
			"protocol-number-0004\0protocol-number-0005\0protocol-number-0006-long\0"
			"h2\0");
	hello(&msg, &exts);
	records(&b, &msg, 0);
	enum clienthello_status s = parse(&b, &h);
	ok(s == CLIENTHELLO_DONE && h.alpn_count == 7 && strlen(h.alpn) < 128 &&
		   strstr(h.alpn, "protocol-number-0005,h2") && !strstr(h.alpn, "0006"),
	   "ALPN: a protocol that does not fit is left out, a shorter one after it kept, all "
	   "counted "
	   "(%u: %s)",
	   h.alpn_count, h.alpn);

	/* Other extensions are stepped over, an unknown one and GREASE included. */
	exts.n = 0;
	ext(&exts, 0x0a0a, "", 0);
	ext(&exts, 0x002b, "\x04\x03\x04\x03\x03", 5);
	ext_sni(&exts, "a.b", 3);
	ext(&exts, 0x1a1a, "\x00", 1);
	hello(&msg, &exts);
	records(&b, &msg, 0);
	done_with(&b, "a.b", "", "SNI among other extensions");
}

static void sni_case(const char *name, const char *want, const char *what)
{
	static struct buf exts, msg, b;

	exts.n = 0;
	ext_sni(&exts, name, strlen(name));
	hello(&msg, &exts);
	records(&b, &msg, 0);
	if (want)
		done_with(&b, want, "", what);
	else
		malformed(&b, "server name", what);
}

static void test_names(void)
{
	char n[300];

	sni_case("localhost", "localhost", "one label");
	sni_case("_srv.x-y.Example.", "_srv.x-y.example", "underscore, hyphen, case, trailing dot");
	sni_case("192.0.2.1", "192.0.2.1",
		 "an IPv4 literal passes the syntax (RFC 6066 forbids it)");
	sni_case("a..b", NULL, "an empty label");
	sni_case(".a", NULL, "a leading dot");
	sni_case("a..", NULL, "two trailing dots");
	sni_case(".", NULL, "only a dot");
	sni_case("a b", NULL, "a space");
	sni_case("2001:db8::1", NULL, "an IPv6 literal");
	sni_case("caf\xc3\xa9.fr", NULL, "UTF-8 (not A-label)");
	sni_case("a/b", NULL, "a slash");
	/* A NUL in the middle. */
	{
		static struct buf exts, msg, b;
		exts.n = 0;
		ext_sni(&exts, "a\0b.com", 7);
		hello(&msg, &exts);
		records(&b, &msg, 0);
		malformed(&b, "server name", "a NUL byte");
	}
	memset(n, 'a', sizeof(n));
	for (int i = 63; i < 256; i += 64)
		n[i] = '.';
	n[255] = '\0';
	sni_case(n, n, "255 bytes");
	{
		char dotted[310];
		snprintf(dotted, sizeof(dotted), "%s.", n);
		sni_case(dotted, n, "255 bytes and a trailing dot");
	}
	n[255] = 'a';
	n[256] = '\0';
	sni_case(n, NULL, "256 bytes");
	memset(n, 'a', 64);
	n[64] = '\0';
	sni_case(n, NULL, "a label of 64 bytes");
	n[63] = '\0';
	sni_case(n, n, "a label of 63 bytes");
}

static void test_bad(void)
{
	static struct buf exts, msg, b, good;
	struct clienthello h;

	exts.n = 0;
	ext_sni(&exts, "example.com", 11);
	ext_alpn(&exts, "h2\0");
	hello(&msg, &exts);
	records(&good, &msg, 0);
	/* Offsets in the one-record hello: record 0..4, handshake header 5..8,
	 * version 9, random 11, session id length 43, suites length 76, their
	 * 6 bytes 78, compression 84 (length) 85 (null), extensions length 86. */
#define MUTATE(at, val, why, what)                                                                 \
	do {                                                                                       \
		b = good;                                                                          \
		b.b[at] = (uint8_t)(val);                                                          \
		malformed(&b, why, what);                                                          \
	} while (0)
	ok(parse(&good, &h) == CLIENTHELLO_DONE && good.b[97] == 'e' && good.b[88] == 0 &&
		   good.b[89] == 0,
	   "the hello mutated below is good as built, its fields where the offsets say");
	MUTATE(2, 5, "record version", "record version 3.5");
	MUTATE(5, 2, "not a ClientHello", "handshake type ServerHello");
	MUTATE(8, 10, "too short", "handshake length 10");
	MUTATE(4, good.b[4] + 1, "record holds more", "record longer than the handshake message");
	MUTATE(9, 2, "version", "ClientHello version 2.3");
	MUTATE(43, 33, "session id", "session id of 33 bytes");
	MUTATE(43, 255, "session id", "session id length past the end");
	MUTATE(77, 5, "cipher suites", "odd cipher suites length");
	MUTATE(76, 0xff, "cipher suites", "cipher suites length past the end");
	MUTATE(85, 1, "null", "compression methods without null");
	MUTATE(84, 0, "compression", "no compression methods");
	MUTATE(87, good.b[87] + 1, "extensions length", "extensions length one too many");
	MUTATE(87, good.b[87] - 1, "extension", "extensions length one too few");
	MUTATE(91, 0xff, "extension length", "an extension length past the end");
	MUTATE(93, good.b[93] + 1, "server_name list length", "server_name list length");
	MUTATE(96, good.b[96] + 1, "server name length", "host name length past the list");
	MUTATE(96, 0, "server name length", "an empty host name");
#undef MUTATE

	/* Handshake records: an empty one, a long one, another type, another version. */
	b.n = 0;
	put(&b, "\x16\x03\x01\x00\x00", 5);
	malformed(&b, "empty handshake record", "a record of length 0");
	b.n = 0;
	put(&b, "\x16\x03\x01\x40\x01", 5);
	malformed(&b, "2^14", "a record of 2^14 + 1 bytes");
	records(&b, &msg, 50);
	b.b[55] = 0x17;
	malformed(&b, "record type", "application data between the records of a ClientHello");
	records(&b, &msg, 50);
	b.b[57] = 0x03;
	malformed(&b, "record version", "the record version changes");

	/* Duplicates. */
	exts.n = 0;
	ext_alpn(&exts, "h2\0");
	ext_sni(&exts, "a.com", 5);
	ext_alpn(&exts, "h2\0");
	hello(&msg, &exts);
	records(&b, &msg, 0);
	malformed(&b, "duplicate extension", "ALPN twice");
	exts.n = 0;
	ext(&exts, 0, "\x00\x0a\x00\x00\x03\x61\x62\x63\x00\x00\x01\x64", 12);
	hello(&msg, &exts);
	records(&b, &msg, 0);
	malformed(&b, "twice", "two host names in server_name");
	exts.n = 0;
	ext(&exts, 0, "\x00\x00", 2);
	hello(&msg, &exts);
	records(&b, &msg, 0);
	malformed(&b, "empty server_name list", "an empty server_name list");
	exts.n = 0;
	ext(&exts, 16, "\x00\x03\x02h2\x00", 6);
	hello(&msg, &exts);
	records(&b, &msg, 0);
	malformed(&b, "ALPN", "ALPN list length one short of its extension");
	exts.n = 0;
	ext(&exts, 16, "\x00\x04\x02h2\x00", 6);
	hello(&msg, &exts);
	records(&b, &msg, 0);
	malformed(&b, "empty ALPN protocol", "an empty ALPN protocol");
	exts.n = 0;
	ext(&exts, 16, "\x00\x00", 2);
	hello(&msg, &exts);
	records(&b, &msg, 0);
	malformed(&b, "empty ALPN list", "an empty ALPN list");
	exts.n = 0;
	ext(&exts, 16, "\x00\x03\x03h2", 5);
	hello(&msg, &exts);
	records(&b, &msg, 0);
	malformed(&b, "ALPN protocol length", "an ALPN protocol past its list");
	/* Extensions too short for their list length: the reader must not read
	 * on into what follows (the next extension, or past the message). */
	exts.n = 0;
	ext_alpn(&exts, "h2\0");
	ext(&exts, 0, "", 0);
	hello(&msg, &exts);
	records(&b, &msg, 0);
	malformed(&b, "server_name list length", "an empty server_name extension, last");
	exts.n = 0;
	ext(&exts, 0, "\x00", 1);
	ext_alpn(&exts, "h2\0");
	hello(&msg, &exts);
	records(&b, &msg, 0);
	malformed(&b, "server_name list length", "a server_name extension of one byte");
	exts.n = 0;
	ext(&exts, 16, "", 0);
	hello(&msg, &exts);
	records(&b, &msg, 0);
	malformed(&b, "ALPN list length", "an empty ALPN extension, last");
	/* Three bytes after the compression methods: not even an extensions header. */
	hello(&msg, NULL);
	put(&msg, "\x00\x01\x00", 3);
	msg.b[3] += 3;
	records(&b, &msg, 0);
	malformed(&b, "extension", "a truncated extension block");
}

/* A ClientHello padded to total bytes in records of at most 2^14. */
static void padded(struct buf *b, size_t total)
{
	static struct buf exts, msg;
	size_t base;

	exts.n = 0;
	ext_sni(&exts, "big.example", 11);
	hello(&msg, &exts);
	records(b, &msg, 0);
	base = b->n;
	exts.n = 0;
	ext_sni(&exts, "big.example", 11);
	static uint8_t zero[CLIENTHELLO_MAX];
	ext(&exts, 21, zero, total - base - 4);
	hello(&msg, &exts);
	records(b, &msg, 0);
}

static void test_limits(void)
{
	static struct buf b;
	struct clienthello h;

	padded(&b, CLIENTHELLO_MAX);
	ok(b.n == CLIENTHELLO_MAX, "(a padded hello of %zu bytes)", b.n);
	done_with(&b, "big.example", "", "a ClientHello of exactly CLIENTHELLO_MAX bytes");
	padded(&b, CLIENTHELLO_MAX + 1);
	malformed(&b, "too large", "one byte more");
	ok(clienthello_parse(b.b, 9, &h) == CLIENTHELLO_MALFORMED,
	   "... seen as too large from its first 9 bytes (the handshake length)");
	b.n = 0;
	put(&b, "\x16\x03\x01\x00\x04\x01\xff\xff\xff", 9);
	malformed(&b, "too large", "a handshake length of 2^24 - 1");
	/* Many small records that together pass the limit. */
	{
		static struct buf exts, msg;
		static uint8_t zero[3000];
		exts.n = 0;
		ext(&exts, 21, zero, sizeof(zero));
		hello(&msg, &exts);
		records(&b, &msg, 1);
		ok(b.n > CLIENTHELLO_MAX, "(%zu bytes in records of one byte)", b.n);
		malformed(&b, "too large", "a 3 KB ClientHello in records of one byte");
		b.n = CLIENTHELLO_MAX;
		malformed(&b, "too large", "... given only its first CLIENTHELLO_MAX bytes");
		size_t n = 0;
		while (n < CLIENTHELLO_MAX &&
		       clienthello_parse(b.b, n, &h) == CLIENTHELLO_NEED_MORE)
			n = h.need;
		ok(clienthello_parse(b.b, n, &h) == CLIENTHELLO_MALFORMED &&
			   n < CLIENTHELLO_MAX - 5,
		   "... seen as too large from its first %zu bytes, as soon as the rest of the "
		   "message "
		   "cannot fit",
		   n);
	}
}

static void test_not_tls(void)
{
	static const struct {
		const char *bytes;
		size_t n;
		enum clienthello_status want;
		const char *what;
	} cases[] = {
		{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, CLIENTHELLO_NOT_TLS, "plaintext HTTP" },
		{ "G", 1, CLIENTHELLO_NOT_TLS, "the G of GET alone" },
		{ "\x80\x2e\x01\x03\x01\x00\x15", 7, CLIENTHELLO_NOT_TLS,
		  "an SSL 2.0 ClientHello" },
		{ "\x15\x03\x03\x00\x02\x02\x28", 7, CLIENTHELLO_NOT_TLS, "a TLS alert record" },
		{ "\x16\x02", 2, CLIENTHELLO_NOT_TLS, "handshake type byte, version major 2" },
		{ "SSH-2.0-OpenSSH_9.2\r\n", 21, CLIENTHELLO_NOT_TLS, "SSH" },
		{ "", 0, CLIENTHELLO_NEED_MORE, "nothing yet" },
		{ "\x16", 1, CLIENTHELLO_NEED_MORE, "0x16 alone" },
		{ "\x16\x03\x01\x00", 4, CLIENTHELLO_NEED_MORE, "4 bytes of a record header" },
	};
	struct clienthello h;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum clienthello_status s =
			clienthello_parse((const uint8_t *)cases[i].bytes, cases[i].n, &h);
		ok(s == cases[i].want, "%s: %s (got %s)", cases[i].what,
		   clienthello_status_name(cases[i].want), clienthello_status_name(s));
	}
	ok(clienthello_parse((const uint8_t *)"", 0, &h) == CLIENTHELLO_NEED_MORE && h.need == 1,
	   "nothing yet: need 1 byte");
	ok(clienthello_parse((const uint8_t *)"\x16\x03\x01", 3, &h) == CLIENTHELLO_NEED_MORE &&
		   h.need == 5,
	   "3 bytes of a record header: need 5");
	ok(clienthello_parse((const uint8_t *)"\x16\x03\x01\x01\x00\x01\x00\x00\xfc", 9, &h) ==
			   CLIENTHELLO_NEED_MORE &&
		   h.need == 11,
	   "after the handshake header: need the 2 version bytes (11)");
}

static void test_match(void)
{
	static const struct {
		const char *pattern, *name;
		bool want;
	} cases[] = {
		{ "example.com", "example.com", true },
		{ "Example.COM", "example.com", true },
		{ "example.com", "EXAMPLE.com", true },
		{ "example.com", "www.example.com", false },
		{ "example.com", "example.co", false },
		{ "example.co", "example.com", false },
		{ "*.example.com", "a.example.com", true },
		{ "*.example.com", "A-1_x.Example.Com", true },
		{ "*.Example.com", "a.example.COM", true },
		{ "*.example.com", "example.com", false },
		{ "*.example.com", "a.b.example.com", false },
		{ "*.example.com", ".example.com", false },
		{ "*.example.com", "aexample.com", false },
		{ "*.example.com", "a.example.com.evil", false },
		{ "*.example.com", "", false },
		{ "*.com", "example.com", true },
		{ "*.", "a.", false },
		{ "*", "a", false },
		{ "a*.example.com", "ab.example.com", false },
		{ "", "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(clienthello_name_matches(cases[i].pattern, cases[i].name) == cases[i].want,
		   "\"%s\" %s \"%s\"", cases[i].pattern,
		   cases[i].want ? "matches" : "does not match", cases[i].name);
	ok(!clienthello_name_matches(NULL, "a") && !clienthello_name_matches("a", NULL),
	   "NULL matches nothing");
}

static int dump(int argc, char **argv)
{
	static struct buf b;
	struct clienthello h;

	for (int i = 0; i < argc; i++) {
		if (load(argv[i], &b) < 0) {
			printf("%s\tunreadable\n", argv[i]);
			continue;
		}
		enum clienthello_status s = parse(&b, &h);
		printf("%s\t%s\t%s\t%s\t%u\t%s\n", argv[i], clienthello_status_name(s), h.sni,
		       h.alpn, h.alpn_count, h.why ? h.why : "");
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--dump") == 0)
		return dump(argc - 2, argv + 2);
	test_captures();
	test_built();
	test_names();
	test_bad();
	test_limits();
	test_not_tls();
	test_match();
	return tap_done();
}
