#include "auto-config.h"

#include "namerd_json.h"

#include "util.h"

#include <json-c/json.h>

#include <arpa/inet.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENER_FLAGS (JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8)

/*
 * json-c builds a whole tree, and its nodes cost far more than their text
 * (measured on 0.16/x86-64: about 800 bytes per object, a 16-slot hash
 * table; 150 per array; 90 per other value), so 16 MiB of "{}," would need
 * 4 GiB.  A linear pre-scan estimates the tree, rounding these costs up,
 * from the structural characters outside strings.
 */
#define COST_OBJECT 800
#define COST_ARRAY  200
#define COST_VALUE  96

/* "ffff:...:ffff%" plus an interface name or a 32-bit decimal scope. */
#define IP_TEXT_MAX (INET6_ADDRSTRLEN + 1 + IF_NAMESIZE)

/* The last named scope looked up, so a large set costs one lookup. */
struct scope_cache {
	char name[IF_NAMESIZE];
	unsigned index;
};

PRINTF(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* json-c strings may hold "\u0000"; names and addresses must not. */
static bool string_is(json_object *o, const char *s)
{
	size_t n = strlen(s);

	return (size_t)json_object_get_string_len(o) == n &&
	       memcmp(json_object_get_string(o), s, n) == 0;
}

static const char *type_name(json_object *o)
{
	return json_type_to_name(json_object_get_type(o));
}

/* A short printable-ASCII excerpt of a string value, for error messages. */
static const char *excerpt(json_object *o, char *buf, size_t size)
{
	size_t n = (size_t)json_object_get_string_len(o);
	const char *s = json_object_get_string(o);
	size_t i;

	for (i = 0; i < n && i + 1 < size; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* Sets *scope from the text after '%': a decimal id or an interface name. */
static int parse_scope(const char *s, struct scope_cache *cache, uint32_t *scope, const char **why)
{
	size_t n = strlen(s);

	if (n == 0) {
		*why = "empty scope after '%'";
		return -1;
	}
	if (strspn(s, "0123456789") == n) {
		unsigned long v;

		if (n > 10 || (v = strtoul(s, NULL, 10)) > UINT32_MAX) {
			*why = "scope id out of range";
			return -1;
		}
		*scope = (uint32_t)v;
		return 0;
	}
	if (n >= IF_NAMESIZE) {
		*why = "scope name too long";
		return -1;
	}
	if (cache->index == 0 || strcmp(cache->name, s) != 0) {
		unsigned idx = if_nametoindex(s);

		if (idx == 0) {
			*why = "unknown scope interface";
			return -1;
		}
		memcpy(cache->name, s, n + 1);
		cache->index = idx;
	}
	*scope = cache->index;
	return 0;
}

/* An IPv4 or IPv6 literal, IPv6 with an optional "%scope"; never a name. */
static int parse_ip(json_object *o, uint16_t port, struct scope_cache *cache, struct netaddr *out,
		    const char **why)
{
	size_t n = (size_t)json_object_get_string_len(o);
	const char *s = json_object_get_string(o);
	char buf[IP_TEXT_MAX + 1];
	char *pct;
	uint32_t scope = 0;

	if (n == 0) {
		*why = "empty";
		return -1;
	}
	if (n > IP_TEXT_MAX || memchr(s, '\0', n)) {
		*why = "not an IP address";
		return -1;
	}
	memcpy(buf, s, n + 1);
	pct = strchr(buf, '%');
	if (pct)
		*pct = '\0';
	if (netaddr_from_ip(buf, port, out) < 0) {
		*why = "not an IP address";
		return -1;
	}
	if (!pct)
		return 0;
	if (out->ss.ss_family != AF_INET6) {
		*why = "scope on an IPv4 address";
		return -1;
	}
	if (parse_scope(pct + 1, cache, &scope, why) < 0)
		return -1;
	((struct sockaddr_in6 *)&out->ss)->sin6_scope_id = scope;
	return 0;
}

/* True when s[0..n) is one JSON number, optionally surrounded by whitespace. */
static bool is_json_number(const char *s, size_t n)
{
	size_t i = 0, d;

	while (n > 0 && is_ws(s[n - 1]))
		n--;
	while (i < n && is_ws(s[i]))
		i++;
	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0') {
		i++;
	} else {
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return false;
	}
	if (i < n && s[i] == '.') {
		for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return false;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return false;
	}
	return i == n;
}

/* Weight from an address's meta; -1 when the weight is negative or not finite. */
static int parse_weight(json_object *meta, double *weight)
{
	json_object *w = NULL;
	double d = 1.0;

	if (json_object_is_type(meta, json_type_object))
		json_object_object_get_ex(meta, "endpoint_addr_weight", &w);
	if (json_object_is_type(w, json_type_double) || json_object_is_type(w, json_type_int)) {
		d = json_object_get_double(w);
	} else if (json_object_is_type(w, json_type_string) &&
		   is_json_number(json_object_get_string(w),
				  (size_t)json_object_get_string_len(w))) {
		/* json-c converts in the C locale whatever the process locale is. */
		json_object *num = json_tokener_parse(json_object_get_string(w));

		if (json_object_is_type(num, json_type_double) ||
		    json_object_is_type(num, json_type_int))
			d = json_object_get_double(num);
		json_object_put(num);
	}
	if (isnan(d) || isinf(d) || d < 0)
		return -1;
	*weight = d == 0 ? 0.0 : d; /* -0 is 0 */
	return 0;
}

static int decode_addr(json_object *a, size_t i, struct scope_cache *cache,
		       struct endpoint_spec *ep, char *err, size_t errlen)
{
	json_object *ip = NULL, *port = NULL, *meta = NULL;
	const char *why = NULL;
	char text[IP_TEXT_MAX + 1];
	int64_t p;

	if (!json_object_is_type(a, json_type_object))
		return fail(err, errlen, "addrs[%zu] is %s, not an object", i, type_name(a));
	json_object_object_get_ex(a, "ip", &ip);
	json_object_object_get_ex(a, "port", &port);
	json_object_object_get_ex(a, "meta", &meta);
	if (!ip)
		return fail(err, errlen, "addrs[%zu] has no ip", i);
	if (!json_object_is_type(ip, json_type_string))
		return fail(err, errlen, "addrs[%zu].ip is %s, not a string", i, type_name(ip));
	if (!port)
		return fail(err, errlen, "addrs[%zu] has no port", i);
	if (!json_object_is_type(port, json_type_int))
		return fail(err, errlen, "addrs[%zu].port is %s, not an integer", i,
			    type_name(port));
	p = json_object_get_int64(port);
	if (p < 1 || p > 65535)
		return fail(err, errlen, "addrs[%zu].port %lld is out of range 1..65535", i,
			    (long long)p);
	if (parse_ip(ip, (uint16_t)p, cache, &ep->addr, &why) < 0)
		return fail(err, errlen, "addrs[%zu].ip \"%s\": %s", i,
			    excerpt(ip, text, sizeof(text)), why);
	if (parse_weight(meta, &ep->weight) < 0)
		return fail(err, errlen,
			    "addrs[%zu]: endpoint_addr_weight is negative or not finite", i);
	return 0;
}

/* Bytes text[at, at + len) of a document. */
struct span {
	size_t at, len;
};

/* The addrs array of a document decoded in pieces (see decode_pieces). */
struct pieces {
	const char *text;
	struct span *elem;
	size_t n, cap;
	struct json_tokener *tok; /* NAMERD_JSON_DEPTH - 2: elements sit two levels down */
};

static json_object *piece_parse(struct json_tokener *tok, const char *text, size_t len);

/* Element i of addrs: from the tree, or parsed from its piece (the caller puts it). */
static json_object *addr_at(json_object *addrs, struct pieces *p, size_t i)
{
	if (!p)
		return json_object_array_get_idx(addrs, i);
	return piece_parse(p->tok, p->text + p->elem[i].at, p->elem[i].len);
}

static int decode_bound(json_object *root, struct pieces *p, struct namerd_answer *out, char *err,
			size_t errlen)
{
	struct scope_cache cache = { .index = 0 };
	json_object *addrs = NULL;
	size_t n;

	if (!json_object_object_get_ex(root, "addrs", &addrs) || !addrs)
		return fail(err, errlen, "bound answer without addrs");
	if (!json_object_is_type(addrs, json_type_array))
		return fail(err, errlen, "addrs is %s, not an array", type_name(addrs));
	n = p ? p->n : json_object_array_length(addrs);
	if (n > NAMERD_MAX_ADDRS)
		return fail(err, errlen, "%zu addresses, more than %d", n, NAMERD_MAX_ADDRS);
	if (n == 0)
		return 0;
	out->eps = xcalloc(n, sizeof(*out->eps));
	for (size_t i = 0; i < n; i++) {
		json_object *a = addr_at(addrs, p, i);
		int rc = a ? decode_addr(a, i, &cache, &out->eps[i], err, errlen) : -1;

		if (p)
			json_object_put(a);
		if (rc < 0)
			return -1;
	}
	out->n = n;
	return 0;
}

/* A copy of cause that fits one log line: cut on a UTF-8 boundary, no controls. */
static char *copy_cause(json_object *o)
{
	size_t n = (size_t)json_object_get_string_len(o);
	char *c = xmalloc(MIN(n, NAMERD_CAUSE_MAX) + 1);

	util_sanitize(c, MIN(n, NAMERD_CAUSE_MAX) + 1, json_object_get_string(o), n);
	return c;
}

static int decode_root(json_object *root, struct pieces *p, struct namerd_answer *out, char *err,
		       size_t errlen)
{
	json_object *type = NULL, *cause = NULL;
	char text[33];

	if (!json_object_is_type(root, json_type_object))
		return fail(err, errlen, "top level is %s, not an object", type_name(root));
	if (!json_object_object_get_ex(root, "type", &type) || !type)
		return fail(err, errlen, "no type");
	if (!json_object_is_type(type, json_type_string))
		return fail(err, errlen, "type is %s, not a string", type_name(type));
	if (string_is(type, "bound")) {
		out->kind = NAMERD_BOUND;
		return decode_bound(root, p, out, err, errlen);
	}
	if (string_is(type, "neg")) {
		out->kind = NAMERD_NEG;
		return 0;
	}
	if (string_is(type, "pending")) {
		out->kind = NAMERD_PENDING;
		return 0;
	}
	if (string_is(type, "failed")) {
		out->kind = NAMERD_FAILED;
		json_object_object_get_ex(root, "cause", &cause);
		if (cause && !json_object_is_type(cause, json_type_string))
			return fail(err, errlen, "cause is %s, not a string", type_name(cause));
		if (cause)
			out->cause = copy_cause(cause);
		return 0;
	}
	return fail(err, errlen, "unknown type \"%s\"", excerpt(type, text, sizeof(text)));
}

/* About how many heap bytes json-c will need for text[0..len). */
static uint64_t tree_cost(const char *text, size_t len)
{
	uint64_t objects = 0, arrays = 0, values = 1;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"')
			in_string = true;
		else if (c == '{')
			objects++;
		else if (c == '[')
			arrays++;
		else if (c == ',' || c == ':')
			values++;
	}
	return objects * COST_OBJECT + arrays * COST_ARRAY + values * COST_VALUE + len;
}

static int parse_error(size_t len, struct json_tokener *tok, char *err, size_t errlen)
{
	enum json_tokener_error jerr = json_tokener_get_error(tok);

	if (jerr == json_tokener_continue)
		return fail(err, errlen, "truncated JSON after %zu bytes", len);
	if (jerr == json_tokener_error_depth)
		return fail(err, errlen, "JSON nested deeper than %d", NAMERD_JSON_DEPTH);
	return fail(err, errlen, "bad JSON at byte %zu: %s", json_tokener_get_parse_end(tok),
		    json_tokener_error_desc(jerr));
}

/* ------------------------------------------------------------------ pieces */

/*
 * As one tree, a bound answer of 100,000 addresses costs json-c about 200
 * MiB and, mostly in page faults, a second or more.  So a document whose
 * top-level "addrs" is an array is decoded in pieces: the document with
 * that array emptied (the skeleton), then each element alone, each freed
 * before the next, so that memory stays small and warm.  Together the
 * pieces are exactly the document: the split is lexical (strings and
 * nesting only), json-c checks every piece as strictly as it would the
 * whole (elements two levels shallower), and only commas and whitespace
 * may sit between elements.  Anything else, an escaped top-level key,
 * "addrs" twice, and every failure go to the whole-tree path, which gives
 * the same answer or the error message.
 */

static size_t skip_ws(const char *t, size_t len, size_t i)
{
	while (i < len && is_ws(t[i]))
		i++;
	return i;
}

/* Just past the string whose '"' is at t[i], or len. */
static size_t skip_string(const char *t, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (t[i] == '\\')
			i++;
		else if (t[i] == '"')
			return i + 1;
	}
	return len;
}

/* Just past the value that starts at t[i], skipped lexically (json-c checks it later). */
static size_t skip_value(const char *t, size_t len, size_t i)
{
	size_t depth = 0;

	if (i < len && t[i] != '"' && t[i] != '{' && t[i] != '[') {
		while (i < len && t[i] != ',' && t[i] != '}' && t[i] != ']' && !is_ws(t[i]))
			i++;
		return i;
	}
	while (i < len) {
		char c = t[i];

		i = c == '"' ? skip_string(t, len, i) : i + 1;
		if (c == '{' || c == '[')
			depth++;
		else if ((c == '}' || c == ']') && --depth == 0)
			return i;
		else if (c == '"' && depth == 0)
			return i;
	}
	return len;
}

/* The span of the value of the one top-level "addrs", if that is an array. */
static int find_addrs(const char *t, size_t len, struct span *arr)
{
	size_t i = skip_ws(t, len, 1), found = 0;

	while (i < len && t[i] == '"') {
		size_t key = i, key_end = skip_string(t, len, i), end;

		if (memchr(t + key, '\\', key_end - key))
			return -1; /* "\u0061ddrs" is addrs too: let json-c read the keys */
		i = skip_ws(t, len, key_end);
		if (i >= len || t[i] != ':')
			return -1;
		i = skip_ws(t, len, i + 1);
		end = skip_value(t, len, i);
		if (key_end - key == 7 && memcmp(t + key, "\"addrs\"", 7) == 0) {
			if (found++ || i >= len || t[i] != '[')
				return -1;
			arr->at = i;
			arr->len = end - i;
		}
		i = skip_ws(t, len, end);
		if (i >= len || t[i] != ',')
			break;
		i = skip_ws(t, len, i + 1);
	}
	return found && i < len && t[i] == '}' ? 0 : -1;
}

/* The elements of the array at arr, which must end in ']'. */
static int split_array(const char *t, struct span arr, struct pieces *p)
{
	size_t end = arr.at + arr.len - 1, i = skip_ws(t, end, arr.at + 1);

	if (arr.len < 2 || t[end] != ']')
		return -1;
	while (i < end) {
		size_t e = skip_value(t, end, i);

		if (e == i)
			return -1;
		if (p->n == p->cap) {
			p->cap = MAX(p->cap * 2, 1024);
			p->elem = xrealloc(p->elem, p->cap * sizeof(*p->elem));
		}
		p->elem[p->n].at = i;
		p->elem[p->n++].len = e - i;
		i = skip_ws(t, end, e);
		if (i < end && (t[i] != ',' || (i = skip_ws(t, end, i + 1)) == end))
			return -1; /* not a comma, or a trailing one */
	}
	return 0;
}

/* A piece that is exactly one JSON value, else NULL (also when its tree is over budget). */
static json_object *piece_parse(struct json_tokener *tok, const char *text, size_t len)
{
	json_object *o;

	if (tree_cost(text, len) > NAMERD_JSON_BUDGET)
		return NULL;
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o && json_tokener_get_parse_end(tok) != len) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Every element parses (for answers that are not bound, whose addrs are not decoded). */
static int pieces_valid(struct pieces *p)
{
	for (size_t i = 0; i < p->n; i++) {
		json_object *o = addr_at(NULL, p, i);

		if (!o)
			return -1;
		json_object_put(o);
	}
	return 0;
}

/* The skeleton: text with the addrs array emptied. */
static json_object *skeleton_parse(const char *text, size_t len, struct span arr)
{
	size_t tail = len - arr.at - arr.len, n = arr.at + 2 + tail;
	struct json_tokener *tok = json_tokener_new_ex(NAMERD_JSON_DEPTH);
	char *sk = xmalloc(n);
	json_object *o = NULL;

	memcpy(sk, text, arr.at);
	memcpy(sk + arr.at, "[]", 2);
	memcpy(sk + arr.at + 2, text + arr.at + arr.len, tail);
	if (tok) {
		json_tokener_set_flags(tok, TOKENER_FLAGS);
		o = piece_parse(tok, sk, n);
		json_tokener_free(tok);
	}
	free(sk);
	return o;
}

/* 0 with the answer when the document decodes in pieces; -1: use the whole tree. */
static int decode_pieces(const char *text, size_t len, struct namerd_answer *out)
{
	struct pieces p = { .text = text };
	struct span arr = { 0, 0 };
	json_object *root = NULL;
	int rc = -1;

	while (len > 0 && is_ws(text[len - 1]))
		len--; /* the whole-tree path allows trailing whitespace too */
	if (find_addrs(text, len, &arr) < 0 || split_array(text, arr, &p) < 0)
		goto fail;
	p.tok = json_tokener_new_ex(NAMERD_JSON_DEPTH - 2);
	root = skeleton_parse(text, len, arr);
	if (!p.tok || !root)
		goto fail;
	json_tokener_set_flags(p.tok, TOKENER_FLAGS);
	rc = decode_root(root, &p, out, NULL, 0);
	if (rc == 0 && out->kind != NAMERD_BOUND)
		rc = pieces_valid(&p);
fail:
	json_object_put(root);
	if (p.tok)
		json_tokener_free(p.tok);
	free(p.elem);
	return rc;
}

/* The whole document as one json-c tree; text[start] is its '{'. */
static int decode_whole(const char *text, size_t len, size_t start, struct namerd_answer *out,
			char *err, size_t errlen)
{
	uint64_t cost = tree_cost(text + start, len - start);
	struct json_tokener *tok;
	json_object *root;
	int rc;

	if (cost > NAMERD_JSON_BUDGET)
		return fail(err, errlen, "document would take about %llu MiB to parse, over %u",
			    (unsigned long long)(cost >> 20), NAMERD_JSON_BUDGET >> 20);
	tok = json_tokener_new_ex(NAMERD_JSON_DEPTH);
	if (!tok)
		return fail(err, errlen, "out of memory");
	json_tokener_set_flags(tok, TOKENER_FLAGS);
	root = json_tokener_parse_ex(tok, text, (int)len);
	if (!root) {
		rc = parse_error(len, tok, err, errlen);
	} else {
		/* Strict mode stops at trailing text, but not at a NUL byte. */
		size_t end = json_tokener_get_parse_end(tok);

		while (end < len && is_ws(text[end]))
			end++;
		if (end < len)
			rc = fail(err, errlen, "trailing data at byte %zu", end);
		else
			rc = decode_root(root, NULL, out, err, errlen);
	}
	json_object_put(root);
	json_tokener_free(tok);
	return rc;
}

int namerd_json_decode(const char *text, size_t len, struct namerd_answer *out, char *err,
		       size_t errlen)
{
	size_t start = 0;
	unsigned char c;
	int rc;

	memset(out, 0, sizeof(*out));
	out->kind = NAMERD_PENDING;
	if (err && errlen > 0)
		err[0] = '\0';
	if (len > NAMERD_JSON_MAX)
		return fail(err, errlen, "document of %zu bytes exceeds %u", len, NAMERD_JSON_MAX);
	while (start < len && is_ws(text[start]))
		start++;
	if (start == len)
		return fail(err, errlen, "empty document");
	/* Not worth parsing: namerd ends a watch stream with plain error text. */
	c = (unsigned char)text[start];
	if (c != '{') {
		if (c > 0x20 && c < 0x7f)
			return fail(err, errlen, "not a JSON object (starts with '%c')", c);
		return fail(err, errlen, "not a JSON object (starts with byte 0x%02x)", c);
	}
	if (decode_pieces(text + start, len - start, out) == 0)
		return 0;
	namerd_answer_clear(out);
	rc = decode_whole(text, len, start, out, err, errlen);
	if (rc < 0) {
		namerd_answer_clear(out);
		if (err && errlen > 0 && err[0] == '\0')
			fail(err, errlen, "malformed answer");
	}
	return rc;
}

void namerd_answer_clear(struct namerd_answer *a)
{
	if (!a)
		return;
	free(a->eps);
	free(a->cause);
	memset(a, 0, sizeof(*a));
	a->kind = NAMERD_PENDING;
}
