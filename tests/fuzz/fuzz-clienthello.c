/*
 * libFuzzer target: the ClientHello reader on arbitrary bytes, with its
 * invariants: a prefix gives NEED_MORE or exactly the whole's answer; the
 * bytes below a NEED_MORE's need change nothing; DONE is reached at `used`
 * and not a byte before; a whole message is never NEED_MORE; a name found
 * is canonical and matches itself.
 */
#include "auto-config.h"

#include "clienthello.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

static void same(enum clienthello_status sa, const struct clienthello *a,
		 enum clienthello_status sb, const struct clienthello *b)
{
	check(sa == sb);
	check(a->need == b->need && a->used == b->used && a->version == b->version);
	check(a->alpn_count == b->alpn_count);
	check(strcmp(a->sni, b->sni) == 0 && strcmp(a->alpn, b->alpn) == 0);
	check((a->why == NULL) == (b->why == NULL));
	check(!a->why || strcmp(a->why, b->why) == 0);
}

static void sane(enum clienthello_status s, const struct clienthello *h, size_t len)
{
	size_t n = strlen(h->sni);

	switch (s) {
	case CLIENTHELLO_NEED_MORE:
		check(h->need > len && h->need <= CLIENTHELLO_MAX && !h->why);
		break;
	case CLIENTHELLO_MALFORMED:
		check(h->why && *h->why);
		break;
	case CLIENTHELLO_NOT_TLS:
		check(len >= 1);
		break;
	case CLIENTHELLO_DONE:
		check(h->used <= len && h->used <= CLIENTHELLO_MAX && h->used > 45);
		check(n <= CLIENTHELLO_NAME_MAX && strlen(h->alpn) < CLIENTHELLO_ALPN_MAX);
		check(h->version >> 8 == 3);
		for (size_t i = 0; i < n; i++) {
			char ch = h->sni[i];
			check((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			      ch == '_' || ch == '.');
		}
		if (n > 0) {
			check(h->sni[0] != '.' && h->sni[n - 1] != '.' && !strstr(h->sni, ".."));
			check(clienthello_name_matches(h->sni, h->sni));
		}
		check((h->alpn[0] != '\0') <= (h->alpn_count > 0));
		break;
	default:
		check(0);
	}
}

/* Whether the handshake records at the start of data already hold a whole
 * handshake message (walked here independently of the reader). */
static int message_whole(const uint8_t *data, size_t len)
{
	uint8_t head[4];
	size_t got = 0, pos = 0;

	while (pos + 5 <= len && data[pos] == 0x16) {
		size_t n = (size_t)data[pos + 3] << 8 | data[pos + 4];
		size_t have = len - pos - 5 < n ? len - pos - 5 : n;
		for (size_t i = 0; i < have && got + i < 4; i++)
			head[got + i] = data[pos + 5 + i];
		got += have;
		if (got >= 4 && got >= 4 + ((size_t)head[1] << 16 | (size_t)head[2] << 8 | head[3]))
			return 1;
		if (have < n)
			break;
		pos += 5 + n;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct clienthello whole, part, again;
	enum clienthello_status s = clienthello_parse(data, size, &whole);
	size_t len = size < CLIENTHELLO_MAX ? size : CLIENTHELLO_MAX;

	sane(s, &whole, len);
	/* The reader never waits for bytes past the end of the message. */
	if (message_whole(data, len))
		check(s != CLIENTHELLO_NEED_MORE);
	/* Bytes past CLIENTHELLO_MAX are never looked at. */
	if (size > CLIENTHELLO_MAX) {
		check(clienthello_parse(data, CLIENTHELLO_MAX, &part) == s);
		same(s, &whole, s, &part);
	}
	/* A caller's way: from nothing, each time up to the need given. */
	size_t at = 0;
	for (;;) {
		enum clienthello_status ps = clienthello_parse(data, at, &part);
		sane(ps, &part, at);
		if (ps != CLIENTHELLO_NEED_MORE) {
			same(ps, &part, s, &whole);
			break;
		}
		if (part.need > len) {
			check(s == CLIENTHELLO_NEED_MORE && part.need == whole.need);
			break;
		}
		/* Just below the need: still the same answer. */
		check(clienthello_parse(data, part.need - 1, &again) == CLIENTHELLO_NEED_MORE);
		same(ps, &part, CLIENTHELLO_NEED_MORE, &again);
		at = part.need;
	}
	if (s == CLIENTHELLO_DONE) {
		check(clienthello_parse(data, whole.used - 1, &part) == CLIENTHELLO_NEED_MORE);
		check(part.need == whole.used);
	}
	/* A few more prefixes, spread over the input. */
	for (size_t k = 1; k < 8 && len > 0; k++) {
		size_t p = len * k / 8;
		enum clienthello_status ps = clienthello_parse(data, p, &part);
		if (ps != CLIENTHELLO_NEED_MORE)
			same(ps, &part, s, &whole);
	}
	return 0;
}
