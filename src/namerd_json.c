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

static int decode_bound(json_object *root, struct namerd_answer *out, char *err, size_t errlen)
{
	struct scope_cache cache = { .index = 0 };
	json_object *addrs = NULL;
	size_t n;

	if (!json_object_object_get_ex(root, "addrs", &addrs) || !addrs)
		return fail(err, errlen, "bound answer without addrs");
	if (!json_object_is_type(addrs, json_type_array))
		return fail(err, errlen, "addrs is %s, not an array", type_name(addrs));
	n = json_object_array_length(addrs);
	if (n > NAMERD_MAX_ADDRS)
		return fail(err, errlen, "%zu addresses, more than %d", n, NAMERD_MAX_ADDRS);
	if (n == 0)
		return 0;
	out->eps = xcalloc(n, sizeof(*out->eps));
	for (size_t i = 0; i < n; i++) {
		if (decode_addr(json_object_array_get_idx(addrs, i), i, &cache, &out->eps[i], err,
				errlen) < 0)
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

static int decode_root(json_object *root, struct namerd_answer *out, char *err, size_t errlen)
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
		return decode_bound(root, out, err, errlen);
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

int namerd_json_decode(const char *text, size_t len, struct namerd_answer *out, char *err,
		       size_t errlen)
{
	struct json_tokener *tok;
	json_object *root;
	size_t start = 0;
	uint64_t cost;
	unsigned char c;
	int rc = -1;

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
	cost = tree_cost(text + start, len - start);
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
			rc = decode_root(root, out, err, errlen);
	}
	json_object_put(root);
	json_tokener_free(tok);
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
