#include "auto-config.h"

#include "clienthello.h"

#include <string.h>

/*
 * The handshake message is read front to back through a cursor that steps
 * over record headers as it goes, so a ClientHello spread over several
 * records needs no copy.  Every check looks only at bytes already read, in
 * the same order whatever the length given: a prefix of some bytes gives
 * NEED_MORE or the very answer that the whole gives.  Lengths are checked
 * against their enclosing block before anything inside is read.
 */

#define REC_HEADER   5
#define REC_MAX      16384 /* RFC 8446 5.1: a plaintext fragment is at most 2^14 bytes */
#define HS_HEADER    4
#define HS_CLIENT    1  /* HandshakeType client_hello */
#define HS_MIN_BODY  41 /* version 2, random 32, 3 empty-ish vectors: 1 + 2+2 + 1+1 */
#define EXT_SNI      0
#define EXT_ALPN     16
#define SNI_HOSTNAME 0
#define LABEL_MAX    63

enum { STEP_OK = 0, STEP_MORE = 1, STEP_BAD = -1 };

struct cursor {
	const uint8_t *buf;
	size_t len;       /* bytes given, at most CLIENTHELLO_MAX */
	size_t pos;       /* next byte of buf to read */
	size_t rec_left;  /* bytes of the current record's fragment not yet read */
	uint16_t version; /* the first record's version */
	size_t off;       /* bytes of the handshake message read (header included) */
	size_t msg_len;   /* the whole message, header included; 0 until known */
	struct clienthello *out;
	uint64_t seen[65536 / 64]; /* extension types met */
};

static int bad(struct cursor *c, const char *why)
{
	c->out->why = why;
	return STEP_BAD;
}

/* The fewest bytes the whole ClientHello can take, from what is known
 * (the message's remaining bytes, and a record header if they cannot all be
 * in the current record). */
static size_t lower_bound(const struct cursor *c)
{
	if (c->msg_len == 0)
		return 0;
	size_t msg_left = c->msg_len - c->off;
	return c->pos + msg_left + (msg_left > c->rec_left ? REC_HEADER : 0);
}

/* Once the message length is known: it must fit in CLIENTHELLO_MAX, and the
 * current record must not run past its end. */
static int check_bounds(struct cursor *c)
{
	if (c->msg_len == 0)
		return STEP_OK;
	if (lower_bound(c) > CLIENTHELLO_MAX)
		return bad(c, "ClientHello too large");
	if (c->rec_left > c->msg_len - c->off)
		return bad(c, "record holds more than the ClientHello");
	return STEP_OK;
}

/* The byte at at - 1 is the next one needed: nothing can change before it. */
static int more(struct cursor *c, size_t at)
{
	if (at > CLIENTHELLO_MAX)
		return bad(c, "ClientHello too large");
	c->out->need = at;
	return STEP_MORE;
}

/* Reads the header of the record at c->pos, checking each byte as it comes. */
static int next_record(struct cursor *c)
{
	const uint8_t *h = c->buf + c->pos;
	size_t have = c->len - c->pos;

	if (have >= 1 && h[0] != 0x16)
		return bad(c, "another record type inside the ClientHello");
	if (have >= 3 && (h[1] << 8 | h[2]) != c->version)
		return bad(c, "record version changes inside the ClientHello");
	if (have < REC_HEADER)
		return more(c, c->pos + (have == 0 ? 1 : have < 3 ? 3 : REC_HEADER));
	size_t n = (size_t)h[3] << 8 | h[4];
	if (n == 0)
		return bad(c, "empty handshake record");
	if (n > REC_MAX)
		return bad(c, "record longer than 2^14 bytes");
	c->pos += REC_HEADER;
	c->rec_left = n;
	return check_bounds(c);
}

/* Reads n bytes of the handshake message into out (NULL: skips them). */
static int take(struct cursor *c, size_t n, uint8_t *out)
{
	while (n > 0) {
		if (c->rec_left == 0) {
			int rc = next_record(c);
			if (rc != STEP_OK)
				return rc;
		}
		size_t k = n < c->rec_left ? n : c->rec_left;
		if (c->pos + k > c->len)
			return more(c, c->pos + k);
		if (out) {
			memcpy(out, c->buf + c->pos, k);
			out += k;
		}
		c->pos += k;
		c->rec_left -= k;
		c->off += k;
		n -= k;
	}
	return STEP_OK;
}

static int take_u8(struct cursor *c, size_t *v)
{
	uint8_t b[1] = { 0 };
	int rc = take(c, 1, b);

	*v = b[0];
	return rc;
}

static int take_u16(struct cursor *c, size_t *v)
{
	uint8_t b[2] = { 0 };
	int rc = take(c, 2, b);

	*v = (size_t)b[0] << 8 | b[1];
	return rc;
}

/* A vector's length: it and then the vector must fit in their block (end). */
static int take_len(struct cursor *c, int bytes, size_t end, size_t *n, const char *why)
{
	if (c->off + (size_t)bytes > end)
		return bad(c, why);
	int rc = bytes == 1 ? take_u8(c, n) : take_u16(c, n);
	if (rc != STEP_OK)
		return rc;
	return c->off + *n > end ? bad(c, why) : STEP_OK;
}

/* ------------------------------------------------------------ extensions */

/* RFC 6066 3 host_name, made canonical into out: strips one trailing dot,
 * lowercases; letters, digits, '-', '_' and '.', labels of 1 to 63 bytes. */
static int host_name(struct cursor *c, const uint8_t *name, size_t n, char *out)
{
	size_t label = 0;

	if (n > 1 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > CLIENTHELLO_NAME_MAX)
		return bad(c, "server name length");
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = name[i];
		if (ch == '.') {
			if (label == 0)
				return bad(c, "server name has an empty label");
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			   ch == '_') {
			label++;
		} else if (ch >= 'A' && ch <= 'Z') {
			ch = (uint8_t)(ch - 'A' + 'a');
			label++;
		} else {
			return bad(c,
				   "server name has a byte other than a letter, digit, -, _ or .");
		}
		if (label > LABEL_MAX)
			return bad(c, "server name has a label longer than 63 bytes");
		out[i] = (char)ch;
	}
	if (label == 0)
		return bad(c, "server name has an empty label");
	out[n] = '\0';
	return STEP_OK;
}

/* RFC 6066 3: a list of (name type, name), each type at most once.  Names
 * of types other than host_name are taken to have the same 16-bit length
 * form (the RFC leaves them open; no type but host_name was ever defined). */
static int server_name(struct cursor *c, size_t end)
{
	uint64_t types[4] = { 0 };
	size_t list;
	int rc;

	if ((rc = take_len(c, 2, end, &list, "server_name list length")) != STEP_OK)
		return rc;
	if (c->off + list != end)
		return bad(c, "server_name list length");
	if (list == 0)
		return bad(c, "empty server_name list");
	while (c->off < end) {
		size_t type, n;
		uint8_t name[CLIENTHELLO_NAME_MAX + 1];
		if ((rc = take_u8(c, &type)) != STEP_OK)
			return rc;
		if (types[type / 64] & (1ull << (type % 64)))
			return bad(c, "server_name lists a name type twice");
		types[type / 64] |= 1ull << (type % 64);
		if ((rc = take_len(c, 2, end, &n, "server name length")) != STEP_OK)
			return rc;
		if (type != SNI_HOSTNAME) {
			if ((rc = take(c, n, NULL)) != STEP_OK)
				return rc;
			continue;
		}
		if (n == 0 || n > sizeof(name))
			return bad(c, "server name length");
		if ((rc = take(c, n, name)) != STEP_OK)
			return rc;
		if ((rc = host_name(c, name, n, c->out->sni)) != STEP_OK)
			return rc;
	}
	return STEP_OK;
}

/* Appends one protocol to the ALPN text if it fits whole. */
static void alpn_append(struct clienthello *out, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char text[CLIENTHELLO_ALPN_MAX];
	size_t t = 0, have = strlen(out->alpn);

	if (have > 0)
		text[t++] = ',';
	for (size_t i = 0; i < n; i++) {
		if (t + 4 >= sizeof(text))
			return;
		if (p[i] > ' ' && p[i] <= '~' && p[i] != ',' && p[i] != '\\') {
			text[t++] = (char)p[i];
		} else {
			text[t++] = '\\';
			text[t++] = 'x';
			text[t++] = hex[p[i] >> 4];
			text[t++] = hex[p[i] & 15];
		}
	}
	if (have + t >= sizeof(out->alpn))
		return;
	memcpy(out->alpn + have, text, t);
	out->alpn[have + t] = '\0';
}

static int alpn(struct cursor *c, size_t end)
{
	size_t list;
	int rc;

	if ((rc = take_len(c, 2, end, &list, "ALPN list length")) != STEP_OK)
		return rc;
	if (c->off + list != end)
		return bad(c, "ALPN list length");
	if (list == 0)
		return bad(c, "empty ALPN list");
	while (c->off < end) {
		size_t n;
		uint8_t proto[255];
		if ((rc = take_len(c, 1, end, &n, "ALPN protocol length")) != STEP_OK)
			return rc;
		if (n == 0)
			return bad(c, "empty ALPN protocol");
		if ((rc = take(c, n, proto)) != STEP_OK)
			return rc;
		alpn_append(c->out, proto, n);
		c->out->alpn_count++;
	}
	return STEP_OK;
}

static int extensions(struct cursor *c, size_t end)
{
	size_t total;
	int rc;

	if ((rc = take_len(c, 2, end, &total, "extensions length")) != STEP_OK)
		return rc;
	if (c->off + total != end)
		return bad(c, "extensions length");
	while (c->off < end) {
		size_t type, n;
		if (end - c->off < 4)
			return bad(c, "extension header truncated");
		if ((rc = take_u16(c, &type)) != STEP_OK)
			return rc;
		if (c->seen[type / 64] & (1ull << (type % 64)))
			return bad(c, "duplicate extension");
		c->seen[type / 64] |= 1ull << (type % 64);
		if ((rc = take_len(c, 2, end, &n, "extension length")) != STEP_OK)
			return rc;
		if (type == EXT_SNI)
			rc = server_name(c, c->off + n);
		else if (type == EXT_ALPN)
			rc = alpn(c, c->off + n);
		else
			rc = take(c, n, NULL);
		if (rc != STEP_OK)
			return rc;
	}
	return STEP_OK;
}

/* ------------------------------------------------------------ the message */

/* The first record's header, byte by byte: what tells TLS from not TLS. */
static enum clienthello_status first_record(struct cursor *c)
{
	const uint8_t *b = c->buf;

	if (c->len >= 1 && b[0] != 0x16)
		return CLIENTHELLO_NOT_TLS;
	if (c->len >= 2 && b[1] != 3)
		return CLIENTHELLO_NOT_TLS;
	if (c->len >= 3 && b[2] > 4) {
		c->out->why = "record version";
		return CLIENTHELLO_MALFORMED;
	}
	if (c->len < REC_HEADER) {
		c->out->need = c->len < 3 ? c->len + 1 : REC_HEADER;
		return CLIENTHELLO_NEED_MORE;
	}
	c->version = (uint16_t)(b[1] << 8 | b[2]);
	return CLIENTHELLO_DONE; /* go on */
}

static int client_hello(struct cursor *c)
{
	uint8_t h[HS_HEADER];
	size_t body, n, end;
	int rc;

	if ((rc = take(c, HS_HEADER, h)) != STEP_OK)
		return rc;
	if (h[0] != HS_CLIENT)
		return bad(c, "first handshake message is not a ClientHello");
	body = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	if (body < HS_MIN_BODY)
		return bad(c, "ClientHello too short");
	c->msg_len = HS_HEADER + body;
	end = c->msg_len;
	if ((rc = check_bounds(c)) != STEP_OK)
		return rc;
	if ((rc = take_u16(c, &n)) != STEP_OK)
		return rc;
	if (n >> 8 != 3 || (n & 0xff) > 4)
		return bad(c, "ClientHello version");
	c->out->version = (uint16_t)n;
	if ((rc = take(c, 32, NULL)) != STEP_OK) /* random */
		return rc;
	if ((rc = take_len(c, 1, end, &n, "session id length")) != STEP_OK)
		return rc;
	if (n > 32)
		return bad(c, "session id longer than 32 bytes");
	if ((rc = take(c, n, NULL)) != STEP_OK)
		return rc;
	if ((rc = take_len(c, 2, end, &n, "cipher suites length")) != STEP_OK)
		return rc;
	if (n == 0 || n % 2 != 0)
		return bad(c, "cipher suites length");
	if ((rc = take(c, n, NULL)) != STEP_OK)
		return rc;
	if ((rc = take_len(c, 1, end, &n, "compression methods length")) != STEP_OK)
		return rc;
	if (n == 0)
		return bad(c, "no compression methods");
	bool null = false;
	for (size_t i = 0; i < n; i++) {
		size_t m;
		if ((rc = take_u8(c, &m)) != STEP_OK)
			return rc;
		null |= m == 0;
	}
	if (!null)
		return bad(c, "compression methods lack null");
	if (c->off < end && (rc = extensions(c, end)) != STEP_OK)
		return rc;
	return STEP_OK;
}

enum clienthello_status clienthello_parse(const uint8_t *buf, size_t len, struct clienthello *out)
{
	struct cursor c;
	enum clienthello_status s;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.buf = buf;
	c.len = len < CLIENTHELLO_MAX ? len : CLIENTHELLO_MAX;
	c.out = out;
	if ((s = first_record(&c)) != CLIENTHELLO_DONE)
		return s;
	switch (client_hello(&c)) {
	case STEP_OK:
		out->used = c.pos;
		return CLIENTHELLO_DONE;
	case STEP_MORE: {
		size_t need = out->need;
		memset(out, 0, sizeof(*out));
		out->need = need;
		return CLIENTHELLO_NEED_MORE;
	}
	default: {
		const char *why = out->why;
		memset(out, 0, sizeof(*out));
		out->why = why;
		return CLIENTHELLO_MALFORMED;
	}
	}
}

/* ------------------------------------------------------------ matching */

static int lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static bool same_name(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return false;
	return *a == *b;
}

bool clienthello_name_matches(const char *pattern, const char *name)
{
	if (!pattern || !name || !*name)
		return false;
	if (pattern[0] != '*' || pattern[1] != '.' || pattern[2] == '\0')
		return same_name(pattern, name);
	const char *dot = strchr(name, '.');
	return dot && dot != name && same_name(pattern + 1, dot);
}

const char *clienthello_status_name(enum clienthello_status s)
{
	switch (s) {
	case CLIENTHELLO_NEED_MORE:
		return "need more";
	case CLIENTHELLO_DONE:
		return "done";
	case CLIENTHELLO_NOT_TLS:
		return "not TLS";
	case CLIENTHELLO_MALFORMED:
		return "malformed";
	}
	return "?";
}
