/* Unit tests of the namerd Addr JSON decoder (reference/namerd-api.md §4.1). */
#include "auto-config.h"

#include "namerd_json.h"
#include "tap.h"

#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The literal bodies of namerd-api.md §4.1, exactly as written there. */
static const char BODY_PLAIN[] =
	"{\"type\":\"bound\",\"addrs\":[{\"ip\":\"127.0.0.1\",\"port\":9990,\"meta\":{}}],"
	"\"meta\":{}}";
static const char BODY_TWO[] =
	"{\"type\":\"bound\",\"addrs\":[{\"ip\":\"127.0.0.1\",\"port\":9990,\"meta\":{}},"
	"{\"ip\":\"127.0.0.2\",\"port\":9990,\"meta\":{}}],\"meta\":{}}";
static const char BODY_WEIGHTS[] =
	"{\"type\":\"bound\",\"addrs\":[{\"ip\":\"10.0.0.5\",\"port\":8080,\"meta\":"
	"{\"endpoint_addr_weight\":3.0,\"nodeName\":\"node-a\"}},{\"ip\":\"10.0.0.6\",\"port\":"
	"8080,\"meta\":{\"endpoint_addr_weight\":1.0}}],\"meta\":{\"authority\":"
	"\"web.service.dc1.consul\"}}";
static const char BODY_EMPTY[] = "{\"type\":\"bound\",\"addrs\":[],\"meta\":{}}";
static const char BODY_NEG[] = "{\"type\":\"neg\"}";
static const char BODY_FAILED[] = "{\"type\":\"failed\",\"cause\":\"malformed address: 10.0.0.7\"}";
static const char BODY_PENDING[] = "{\"type\":\"pending\"}";
static const char BODY_DTAB[] =
	"{\"type\":\"bound\",\"addrs\":[{\"ip\":\"127.0.0.1\",\"port\":1,\"meta\":{\"isa-meta\":"
	"\"isa-data\"}}],\"meta\":{\"bound-meta\":\"bound-data\"}}";

static const char *kind_name(enum namerd_kind k)
{
	switch (k) {
	case NAMERD_BOUND:
		return "bound";
	case NAMERD_NEG:
		return "neg";
	case NAMERD_FAILED:
		return "failed";
	case NAMERD_PENDING:
		return "pending";
	}
	return "?";
}

static int decode(const char *text, struct namerd_answer *a, char *err)
{
	return namerd_json_decode(text, strlen(text), a, err, NAMERD_ERRLEN);
}

static void ep_name(const struct namerd_answer *a, size_t i, char *buf)
{
	buf[0] = '\0';
	if (i < a->n)
		netaddr_format(&a->eps[i].addr, buf, NETADDR_STRLEN);
}

/* Decodes text and checks its kind and endpoint count; the caller clears *a. */
static int expect_kind(const char *label, const char *text, enum namerd_kind kind, size_t n,
		       struct namerd_answer *a)
{
	char err[NAMERD_ERRLEN] = "";
	int rc = decode(text, a, err);

	return ok(rc == 0 && a->kind == kind && a->n == n && (n > 0) == (a->eps != NULL),
		  "%s: %s with %zu endpoints (rc %d, %s, n %zu%s%s)", label, kind_name(kind), n, rc,
		  kind_name(a->kind), a->n, err[0] ? ", " : "", err);
}

/* One address: text decodes to a single bound endpoint named name with weight w. */
static void one_ep(const char *label, const char *text, const char *name, double w)
{
	struct namerd_answer a;
	char got[NETADDR_STRLEN] = "";
	char err[NAMERD_ERRLEN] = "";
	int rc = decode(text, &a, err);

	ep_name(&a, 0, got);
	ok(rc == 0 && a.kind == NAMERD_BOUND && a.n == 1 && strcmp(got, name) == 0 &&
		   a.eps[0].weight == w,
	   "%s: %s weight %g (got %s weight %g%s%s)", label, name, w, got,
	   a.n ? a.eps[0].weight : -1.0, err[0] ? ", " : "", err);
	namerd_answer_clear(&a);
}

/* A bound body with one address whose meta is meta_json. */
static char *with_meta(const char *ip, const char *port, const char *meta_json)
{
	return xasprintf("{\"type\":\"bound\",\"addrs\":[{\"ip\":\"%s\",\"port\":%s,\"meta\":%s}],"
			 "\"meta\":{}}",
			 ip, port, meta_json);
}

static void weight_is(const char *label, const char *meta_json, double w)
{
	char *text = with_meta("10.0.0.1", "80", meta_json);

	one_ep(label, text, "10.0.0.1:80", w);
	free(text);
}

static void bad_len(const char *label, const char *text, size_t len)
{
	struct namerd_answer a;
	char err[NAMERD_ERRLEN] = "";
	int rc = namerd_json_decode(text, len, &a, err, sizeof(err));

	ok(rc == -1 && err[0] != '\0' && strchr(err, '\n') == NULL && a.kind == NAMERD_PENDING &&
		   a.eps == NULL && a.n == 0 && a.cause == NULL,
	   "reject %s (%s)", label, err);
	namerd_answer_clear(&a);
}

static void bad(const char *label, const char *text)
{
	bad_len(label, text, strlen(text));
}

static void bad_ep(const char *label, const char *ip, const char *port, const char *meta_json)
{
	char *text = with_meta(ip, port, meta_json);

	bad(label, text);
	free(text);
}

/* A body (with a trailing newline when nl) that binds exactly these two endpoints. */
static void two_eps(const char *label, const char *body, int nl, const char *first, double w0,
		    const char *second, double w1)
{
	char *t = xasprintf("%s%s", body, nl ? "\n" : "");
	char *what = xasprintf("%s%s", label, nl ? " + \\n" : "");
	char n0[NETADDR_STRLEN], n1[NETADDR_STRLEN];
	struct namerd_answer a;

	if (expect_kind(what, t, NAMERD_BOUND, 2, &a)) {
		ep_name(&a, 0, n0);
		ep_name(&a, 1, n1);
		ok(strcmp(n0, first) == 0 && a.eps[0].weight == w0 && strcmp(n1, second) == 0 &&
			   a.eps[1].weight == w1,
		   "%s: %s w %g, %s w %g", what, n0, a.eps[0].weight, n1, a.eps[1].weight);
	}
	namerd_answer_clear(&a);
	free(what);
	free(t);
}

static void test_literal_bodies(void)
{
	struct namerd_answer a;

	for (int nl = 0; nl < 2; nl++) {
		const char *sfx = nl ? " + \\n" : "";
		char *t;

		t = xasprintf("%s%s", BODY_PLAIN, nl ? "\n" : "");
		one_ep(nl ? "bound plain + \\n" : "bound plain", t, "127.0.0.1:9990", 1.0);
		free(t);

		two_eps("bound two", BODY_TWO, nl, "127.0.0.1:9990", 1.0, "127.0.0.2:9990", 1.0);
		two_eps("bound weights", BODY_WEIGHTS, nl, "10.0.0.5:8080", 3.0, "10.0.0.6:8080",
			1.0);

		t = xasprintf("%s%s", BODY_EMPTY, nl ? "\n" : "");
		expect_kind(nl ? "bound empty + \\n" : "bound empty", t, NAMERD_BOUND, 0, &a);
		namerd_answer_clear(&a);
		free(t);

		t = xasprintf("%s%s", BODY_NEG, nl ? "\n" : "");
		expect_kind(nl ? "neg + \\n" : "neg", t, NAMERD_NEG, 0, &a);
		ok(a.cause == NULL, "neg%s has no cause", sfx);
		namerd_answer_clear(&a);
		free(t);

		t = xasprintf("%s%s", BODY_FAILED, nl ? "\n" : "");
		expect_kind(nl ? "failed + \\n" : "failed", t, NAMERD_FAILED, 0, &a);
		ok(a.cause && strcmp(a.cause, "malformed address: 10.0.0.7") == 0,
		   "failed%s cause '%s'", sfx, a.cause ? a.cause : "(null)");
		namerd_answer_clear(&a);
		free(t);

		t = xasprintf("%s%s", BODY_PENDING, nl ? "\n" : "");
		expect_kind(nl ? "pending + \\n" : "pending", t, NAMERD_PENDING, 0, &a);
		namerd_answer_clear(&a);
		free(t);

		t = xasprintf("%s%s", BODY_DTAB, nl ? "\n" : "");
		one_ep(nl ? "resolve w/ dtab + \\n" : "resolve w/ dtab", t, "127.0.0.1:1", 1.0);
		free(t);
	}
}

static void test_addresses(void)
{
	struct namerd_answer a;
	char *t;
	unsigned lo = if_nametoindex("lo");

	t = with_meta("0:0:0:0:0:0:0:1", "8080", "{}");
	one_ep("Java IPv6 loopback long form", t, "[::1]:8080", 1.0);
	free(t);
	t = with_meta("2001:db8:0:0:0:0:0:5", "443", "{}");
	one_ep("Java IPv6 long form", t, "[2001:db8::5]:443", 1.0);
	free(t);
	t = with_meta("::1", "1", "{}");
	one_ep("compressed IPv6", t, "[::1]:1", 1.0);
	free(t);
	t = with_meta("0:0:0:0:0:ffff:a00:1", "80", "{}");
	one_ep("IPv4-mapped IPv6 long form", t, "[::ffff:10.0.0.1]:80", 1.0);
	free(t);
	t = with_meta("255.255.255.255", "65535", "{}");
	one_ep("port 65535", t, "255.255.255.255:65535", 1.0);
	free(t);

	t = with_meta("fe80:0:0:0:0:0:0:1%2", "80", "{}");
	one_ep("numeric scope", t, "[fe80::1]:80", 1.0);
	decode(t, &a, NULL);
	ok(a.n == 1 && ((struct sockaddr_in6 *)&a.eps[0].addr.ss)->sin6_scope_id == 2,
	   "numeric scope %%2 -> sin6_scope_id 2");
	namerd_answer_clear(&a);
	free(t);
	if (lo != 0) {
		t = with_meta("fe80:0:0:0:0:0:0:1%lo", "80", "{}");
		decode(t, &a, NULL);
		ok(a.n == 1 && ((struct sockaddr_in6 *)&a.eps[0].addr.ss)->sin6_scope_id == lo,
		   "named scope %%lo -> sin6_scope_id %u", lo);
		namerd_answer_clear(&a);
		free(t);
	} else {
		ok(1, "# SKIP no interface lo");
	}

	t = xasprintf("{\"type\":\"bound\",\"addrs\":[%s,%s,%s],\"meta\":{}}",
		      "{\"ip\":\"10.0.0.1\",\"port\":80,\"meta\":{}}",
		      "{\"ip\":\"10.0.0.1\",\"port\":80,\"meta\":{}}",
		      "{\"ip\":\"10.0.0.1\",\"port\":81,\"meta\":{}}");
	expect_kind("duplicate addresses are kept", t, NAMERD_BOUND, 3, &a);
	namerd_answer_clear(&a);
	free(t);
}

static void test_weights(void)
{
	struct namerd_answer a;
	char *t;

	weight_is("weight int", "{\"endpoint_addr_weight\":2}", 2.0);
	weight_is("weight double", "{\"endpoint_addr_weight\":2.5}", 2.5);
	weight_is("weight 1.0E-4", "{\"endpoint_addr_weight\":1.0E-4}", 1.0E-4);
	weight_is("weight 1e2", "{\"endpoint_addr_weight\":1e2}", 100.0);
	weight_is("weight 0 (out of rotation)", "{\"endpoint_addr_weight\":0}", 0.0);
	weight_is("weight 0.0", "{\"endpoint_addr_weight\":0.0}", 0.0);
	weight_is("weight string \"2\"", "{\"endpoint_addr_weight\":\"2\"}", 2.0);
	weight_is("weight string \" 1.5E-3 \"", "{\"endpoint_addr_weight\":\" 1.5E-3 \"}", 1.5E-3);
	weight_is("weight string \"heavy\" -> 1", "{\"endpoint_addr_weight\":\"heavy\"}", 1.0);
	weight_is("weight string \"\" -> 1", "{\"endpoint_addr_weight\":\"\"}", 1.0);
	weight_is("weight string \"2x\" -> 1", "{\"endpoint_addr_weight\":\"2x\"}", 1.0);
	weight_is("weight string \"NaN\" -> 1", "{\"endpoint_addr_weight\":\"NaN\"}", 1.0);
	weight_is("weight string \"0x10\" -> 1", "{\"endpoint_addr_weight\":\"0x10\"}", 1.0);
	weight_is("weight null -> 1", "{\"endpoint_addr_weight\":null}", 1.0);
	weight_is("weight true -> 1", "{\"endpoint_addr_weight\":true}", 1.0);
	weight_is("weight object -> 1", "{\"endpoint_addr_weight\":{\"v\":2}}", 1.0);
	weight_is("weight array -> 1", "{\"endpoint_addr_weight\":[2]}", 1.0);
	weight_is("weight absent -> 1", "{\"nodeName\":\"n\"}", 1.0);

	t = with_meta("10.0.0.1", "80", "{\"endpoint_addr_weight\":-0.0}");
	decode(t, &a, NULL);
	ok(a.n == 1 && a.eps[0].weight == 0.0 && !signbit(a.eps[0].weight), "weight -0.0 -> +0");
	namerd_answer_clear(&a);
	free(t);
}

static void test_meta(void)
{
	struct namerd_answer a;

	weight_is("meta with nested objects, bools, null, arrays",
		  "{\"nodeName\":\"node-a\",\"ssl\":true,\"tls\":false,\"zone\":null,"
		  "\"consul\":{\"dc\":\"dc1\",\"tags\":[\"a\",1,2.5,null,{\"x\":[[]]}]},"
		  "\"n\":-7,\"big\":1e300,\"endpoint_addr_weight\":4}",
		  4.0);
	weight_is("address meta null", "null", 1.0);
	weight_is("address meta string", "\"x\"", 1.0);
	weight_is("address meta array", "[1,{\"endpoint_addr_weight\":9}]", 1.0);
	weight_is("address meta number", "3", 1.0);
	one_ep("address meta missing",
	       "{\"type\":\"bound\",\"addrs\":[{\"ip\":\"10.0.0.1\",\"port\":80}]}", "10.0.0.1:80",
	       1.0);
	one_ep("top-level meta with any values",
	       "{\"type\":\"bound\",\"addrs\":[{\"ip\":\"10.0.0.1\",\"port\":80,\"meta\":{}}],"
	       "\"meta\":{\"authority\":\"a\",\"n\":1,\"b\":false,\"o\":{\"p\":[null]},\"z\":null}"
	       "}",
	       "10.0.0.1:80", 1.0);
	one_ep("top-level meta null",
	       "{\"type\":\"bound\",\"addrs\":[{\"ip\":\"10.0.0.1\",\"port\":80,\"meta\":{}}],"
	       "\"meta\":null}",
	       "10.0.0.1:80", 1.0);
	one_ep("top-level meta an array",
	       "{\"type\":\"bound\",\"addrs\":[{\"ip\":\"10.0.0.1\",\"port\":80,\"meta\":{}}],"
	       "\"meta\":[1,2]}",
	       "10.0.0.1:80", 1.0);
	one_ep("any key order, unknown fields, pretty-printed",
	       "  {\n  \"meta\" : { },\n  \"extra\" : [ 1, \"two\" ],\n  \"addrs\" : [ {\n"
	       "    \"meta\" : { \"endpoint_addr_weight\" : 2.0 },\n    \"port\" : 9990,\n"
	       "    \"ip\" : \"127.0.0.1\", \"id\": \"x\"\n  } ],\n  \"type\" : \"bound\"\n}\r\n",
	       "127.0.0.1:9990", 2.0);
	expect_kind("neg with stray addrs", "{\"type\":\"neg\",\"addrs\":\"junk\"}", NAMERD_NEG, 0,
		    &a);
	namerd_answer_clear(&a);
}

static void test_failed(void)
{
	struct namerd_answer a;
	char *t, *big;
	size_t i;

	expect_kind("failed without cause", "{\"type\":\"failed\"}", NAMERD_FAILED, 0, &a);
	ok(a.cause == NULL, "failed without cause: cause NULL");
	namerd_answer_clear(&a);
	expect_kind("failed with null cause", "{\"type\":\"failed\",\"cause\":null}", NAMERD_FAILED,
		    0, &a);
	ok(a.cause == NULL, "failed with null cause: cause NULL");
	namerd_answer_clear(&a);
	expect_kind("failed cause with controls",
		    "{\"type\":\"failed\",\"cause\":\"line1\\nline2\\u0000\\tend\"}", NAMERD_FAILED,
		    0, &a);
	ok(a.cause && strcmp(a.cause, "line1 line2  end") == 0, "cause kept on one line: '%s'",
	   a.cause ? a.cause : "(null)");
	namerd_answer_clear(&a);

	/* 700 two-byte characters: cut at NAMERD_CAUSE_MAX on a character boundary. */
	big = xmalloc(1400 + 1);
	for (i = 0; i < 700; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	big[1400] = '\0';
	t = xasprintf("{\"type\":\"failed\",\"cause\":\"%s\"}", big);
	expect_kind("failed long cause", t, NAMERD_FAILED, 0, &a);
	ok(a.cause && strlen(a.cause) == NAMERD_CAUSE_MAX &&
		   strncmp(a.cause, big, NAMERD_CAUSE_MAX) == 0,
	   "long cause cut to %d bytes on a UTF-8 boundary (%zu)", NAMERD_CAUSE_MAX,
	   a.cause ? strlen(a.cause) : 0);
	namerd_answer_clear(&a);
	free(t);
	free(big);

	bad("cause a number", "{\"type\":\"failed\",\"cause\":42}");
	bad("cause an object", "{\"type\":\"failed\",\"cause\":{\"m\":\"x\"}}");
	bad("cause invalid UTF-8", "{\"type\":\"failed\",\"cause\":\"\xff\xfe\"}");
}

/* Documents that are not an Addr at all. */
static void test_malformed_documents(void)
{
	static const char trunc[] = "{\"type\":\"bound\",\"addrs\":[{\"ip\":\"127.0.";

	bad("empty", "");
	bad_len("NULL text", NULL, 0);
	bad("whitespace only", " \r\n\t");
	bad("{", "{");
	bad("truncated mid-string", trunc);
	bad("truncated before the last brace",
	    "{\"type\":\"bound\",\"addrs\":[{\"ip\":\"127.0.0.1\",\"port\":9990,\"meta\":{}}],"
	    "\"meta\":{}");
	bad("[]", "[]");
	bad("\"x\"", "\"x\"");
	bad("42", "42");
	bad("null", "null");
	bad("true", "true");
	bad("not JSON (server error text)", "name tree failed");
	bad("missing type", "{}");
	bad("missing type with addrs", "{\"addrs\":[]}");
	bad("type a number", "{\"type\":1}");
	bad("type null", "{\"type\":null}");
	bad("type an object", "{\"type\":{\"bound\":1}}");
	bad("unknown type leaf", "{\"type\":\"leaf\"}");
	bad("unknown type Bound", "{\"type\":\"Bound\"}");
	bad("type with NUL", "{\"type\":\"neg\\u0000\"}");
	bad("type with newline", "{\"type\":\"ne\\ng\"}");
	bad("bound without addrs", "{\"type\":\"bound\",\"meta\":{}}");
	bad("addrs null", "{\"type\":\"bound\",\"addrs\":null}");
	bad("addrs an object", "{\"type\":\"bound\",\"addrs\":{\"ip\":\"10.0.0.1\",\"port\":80}}");
	bad("addrs a string", "{\"type\":\"bound\",\"addrs\":\"10.0.0.1:80\"}");
	bad("trailing garbage", "{\"type\":\"neg\"}x");
	bad("trailing garbage after newline", "{\"type\":\"neg\"}\nx");
	bad("two objects", "{\"type\":\"neg\"}{\"type\":\"neg\"}");
	bad("two lines", "{\"type\":\"neg\"}\n{\"type\":\"neg\"}\n");
	bad_len("NUL then garbage", "{\"type\":\"neg\"}\0x", 16);
	bad_len("trailing NUL", "{\"type\":\"neg\"}\0", 15);
	bad("trailing comma", "{\"type\":\"neg\",}");
	bad("unterminated escape", "{\"type\":\"neg\\");
	bad("bad escape", "{\"type\":\"n\\x\"}");
	bad("invalid UTF-8 in meta", "{\"type\":\"neg\",\"meta\":{\"k\":\"\xc3\x28\"}}");
	bad("TRUE is not JSON", "{\"type\":\"neg\",\"m\":TRUE}");
}

/* Addresses, ports, scopes and weights that must reject the whole answer. */
static void test_malformed_addresses(void)
{
	bad("address a number", "{\"type\":\"bound\",\"addrs\":[1]}");
	bad("address null", "{\"type\":\"bound\",\"addrs\":[null]}");
	bad("address missing ip", "{\"type\":\"bound\",\"addrs\":[{\"port\":80,\"meta\":{}}]}");
	bad("address missing port", "{\"type\":\"bound\",\"addrs\":[{\"ip\":\"10.0.0.1\"}]}");
	bad("bad second address", "{\"type\":\"bound\",\"addrs\":[{\"ip\":\"10.0.0.1\",\"port\":80}"
				  ",{\"ip\":\"10.0.0.2\"}]}");
	bad("ip a number", "{\"type\":\"bound\",\"addrs\":[{\"ip\":167772161,\"port\":80}]}");
	bad("ip null", "{\"type\":\"bound\",\"addrs\":[{\"ip\":null,\"port\":80}]}");
	bad("ip an array", "{\"type\":\"bound\",\"addrs\":[{\"ip\":[10,0,0,1],\"port\":80}]}");
	bad_ep("port 0", "10.0.0.1", "0", "{}");
	bad_ep("port -1", "10.0.0.1", "-1", "{}");
	bad_ep("port 65536", "10.0.0.1", "65536", "{}");
	bad_ep("port 99999999999999999999", "10.0.0.1", "99999999999999999999", "{}");
	bad_ep("port -99999999999999999999", "10.0.0.1", "-99999999999999999999", "{}");
	bad_ep("port 80.0", "10.0.0.1", "80.0", "{}");
	bad_ep("port 8e1", "10.0.0.1", "8e1", "{}");
	bad_ep("port a string", "10.0.0.1", "\"80\"", "{}");
	bad_ep("port null", "10.0.0.1", "null", "{}");
	bad_ep("port true", "10.0.0.1", "true", "{}");
	bad_ep("hostname localhost", "localhost", "80", "{}");
	bad_ep("hostname with dots", "web.service.dc1.consul", "80", "{}");
	bad_ep("empty ip", "", "80", "{}");
	bad_ep("ip with NUL", "10.0.0.1\\u0000", "80", "{}");
	bad_ep("ip with port", "10.0.0.1:80", "80", "{}");
	bad_ep("ip 3 parts", "10.0.1", "80", "{}");
	bad_ep("ip with space", " 10.0.0.1", "80", "{}");
	bad_ep("ip in brackets", "[::1]", "80", "{}");
	bad_ep("ip too long", "0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:1", "80", "{}");
	bad_ep("scope on IPv4", "10.0.0.1%2", "80", "{}");
	bad_ep("named scope on IPv4", "10.0.0.1%lo", "80", "{}");
	bad_ep("scope on a hostname", "localhost%lo", "80", "{}");
	bad_ep("empty scope", "fe80:0:0:0:0:0:0:1%", "80", "{}");
	bad_ep("scope id over 32 bits", "fe80:0:0:0:0:0:0:1%4294967296", "80", "{}");
	bad_ep("unknown scope interface", "fe80:0:0:0:0:0:0:1%nosuchif9", "80", "{}");
	bad_ep("scope name too long", "fe80:0:0:0:0:0:0:1%abcdefghijklmnopq", "80", "{}");
	bad_ep("negative weight", "10.0.0.1", "80", "{\"endpoint_addr_weight\":-1.0}");
	bad_ep("negative tiny weight", "10.0.0.1", "80", "{\"endpoint_addr_weight\":-1E-300}");
	bad_ep("NaN weight", "10.0.0.1", "80", "{\"endpoint_addr_weight\":NaN}");
	bad_ep("Infinity weight", "10.0.0.1", "80", "{\"endpoint_addr_weight\":Infinity}");
	bad_ep("-Infinity weight", "10.0.0.1", "80", "{\"endpoint_addr_weight\":-Infinity}");
	bad_ep("overflowing weight 1e999", "10.0.0.1", "80", "{\"endpoint_addr_weight\":1e999}");
	bad_ep("negative string weight", "10.0.0.1", "80", "{\"endpoint_addr_weight\":\"-2\"}");
	bad_ep("overflowing string weight", "10.0.0.1", "80",
	       "{\"endpoint_addr_weight\":\"1e999\"}");
}

/* Deep nesting, alone and inside meta. */
static void test_malformed_nesting(void)
{
	char *t;
	size_t n, len;

	/* 10000 levels of arrays, alone and inside meta. */
	n = 10000;
	t = xmalloc(2 * n + 64);
	memset(t, '[', n);
	memset(t + n, ']', n);
	t[2 * n] = '\0';
	bad("10000 nested arrays", t);
	len = (size_t)sprintf(t, "{\"type\":\"neg\",\"meta\":");
	memset(t + len, '[', n);
	memset(t + len + n, ']', n);
	strcpy(t + len + 2 * n, "}");
	bad("10000 nested arrays in meta", t);
	memset(t, '{', n); /* "{{{{": not even a key */
	t[n] = '\0';
	bad("10000 open braces", t);
	free(t);
	t = xstrdup("{\"type\":\"neg\",\"meta\":");
	for (int i = 0; i < 100; i++) {
		char *u = xasprintf("%s{\"a\":", t);

		free(t);
		t = u;
	}
	{
		char *u = xasprintf("%snull%.101s", t,
				    "}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}"
				    "}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}");

		free(t);
		t = u;
	}
	bad("meta nested 100 objects deep", t);
	free(t);
}

/*
 * A document whose top-level addrs is an array decodes in pieces; spelling
 * the key "\u0061ddrs" sends the same document through the whole tree.
 * Both must agree on valid documents and on thousands of mutations of them.
 */
static const char *const piece_seeds[] = {
	BODY_PLAIN,
	BODY_TWO,
	BODY_WEIGHTS,
	BODY_EMPTY,
	BODY_DTAB,
	"{\"meta\":{\"a\":[1,{\"b\":\"]}\\\"\"}]},\"addrs\":[ {\"ip\":\"fe80:0:0:0:0:0:0:1%1\","
	"\"port\":1,\"meta\":{\"x\":[[],{}],\"endpoint_addr_weight\":\"2\"}} ,\n{\"ip\":"
	"\"10.0.0.1\",\"port\":65535} ],\"type\":\"bound\"}\n",
	"{\"type\":\"neg\",\"addrs\":[{\"ip\":\"10.0.0.1\",\"port\":80,\"meta\":{}}]}",
	"{\"type\":\"failed\",\"cause\":\"x\",\"addrs\":[[],{},\"\\u005d\",null,1.5,true]}",
	"{\"addrs\":[{\"ip\":\"10.0.0.1\",\"port\":80,\"meta\":{\"s\":\"a,b]c}\\\\\"}}],\"type\":"
	"\"bound\",\"addrs2\":[],\"m\":{\"addrs\":[1]}}",
	"{\"type\":\"bound\",\"addrs\":[{\"ip\":\"10.0.0.1\",\"port\":80},{\"ip\":\"10.0.0.1\","
	"\"port\":80,\"meta\":{\"endpoint_addr_weight\":0}}],\"addrs\":[]}",
	"{\"type\":\"bound\",\"addrs\":[{\"ip\":\"10.0.0.1\",\"port\":80}],\"\\u0061ddrs\":[]}",
};

static char *whole_variant(const char *text, size_t len, size_t *vlen)
{
	const char *at = memmem(text, len, "\"addrs\"", 7);
	char *v = xmalloc(len + 8);

	if (!at) {
		memcpy(v, text, len);
		*vlen = len;
		return v;
	}
	size_t pre = (size_t)(at - text);
	memcpy(v, text, pre);
	memcpy(v + pre, "\"\\u0061ddrs\"", 12);
	memcpy(v + pre + 12, at + 7, len - pre - 7);
	*vlen = len + 5;
	return v;
}

static bool same_answer(const struct namerd_answer *a, const struct namerd_answer *b)
{
	if (a->kind != b->kind || a->n != b->n || !a->cause != !b->cause)
		return false;
	if (a->cause && strcmp(a->cause, b->cause) != 0)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->eps[i].weight != b->eps[i].weight ||
		    memcmp(&a->eps[i].addr, &b->eps[i].addr, sizeof(a->eps[i].addr)) != 0)
			return false;
	return true;
}

/* 0 when text decodes the same both ways; *rc is the pieces' result. */
static int compare_paths(const char *text, size_t len, int *rc)
{
	struct namerd_answer a, b;
	size_t vlen;
	char *v = whole_variant(text, len, &vlen);
	int rb, differ;

	*rc = namerd_json_decode(text, len, &a, NULL, 0);
	rb = namerd_json_decode(v, vlen, &b, NULL, 0);
	differ = *rc != rb || (*rc == 0 && !same_answer(&a, &b));
	if (differ)
		diag("differ (%d vs %d): %.*s", *rc, rb, (int)len, text);
	namerd_answer_clear(&a);
	namerd_answer_clear(&b);
	free(v);
	return differ ? -1 : 0;
}

static size_t mutate(char *t, size_t len, size_t cap, uint64_t *seed)
{
	static const char set[] = "{}[]\",:\\ 0a-.\n";
	uint64_t r;
	size_t at;

	*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
	r = *seed >> 16;
	at = len ? (size_t)(r >> 8) % len : 0;
	switch (r % 4) {
	case 0:
		if (len)
			t[at] = set[(r >> 40) % (sizeof(set) - 1)];
		break;
	case 1:
		if (len)
			memmove(t + at, t + at + 1, --len - at);
		break;
	case 2:
		if (len < cap) {
			memmove(t + at + 1, t + at, len++ - at);
			t[at] = set[(r >> 40) % (sizeof(set) - 1)];
		}
		break;
	default:
		if (len && len + 20 <= cap) {
			size_t from = (size_t)(r >> 32) % len,
			       n = MIN((size_t)(r >> 48) % 20, len - from);
			memmove(t + at + n, t + at, len - at);
			memmove(t + at, t + (from >= at ? from + n : from), n);
			len += n;
		}
	}
	return len;
}

static void test_pieces_match_whole(void)
{
	uint64_t seed = 42;
	int bad_seeds = 0, differ = 0, accepted = 0, rc;

	for (size_t i = 0; i < ARRAY_SIZE(piece_seeds); i++)
		bad_seeds += compare_paths(piece_seeds[i], strlen(piece_seeds[i]), &rc) < 0;
	ok(bad_seeds == 0, "%zu documents decode the same in pieces and as one tree",
	   ARRAY_SIZE(piece_seeds));
	for (int round = 0; round < 20000; round++) {
		const char *s = piece_seeds[(size_t)round % ARRAY_SIZE(piece_seeds)];
		size_t len = strlen(s), cap = len + 64;
		char *t = xmalloc(cap);

		memcpy(t, s, len);
		for (int k = 0; k <= round % 3; k++)
			len = mutate(t, len, cap, &seed);
		differ += compare_paths(t, len, &rc) < 0;
		accepted += rc == 0;
		free(t);
	}
	ok(differ == 0, "20000 mutations decode the same both ways (%d accepted)", accepted);
}

/* Small text, huge tree: refused before json-c builds it. */
static void test_tree_limits(void)
{
	size_t len;
	char *t;

	t = xmalloc((1u << 20) + 64);
	len = (size_t)sprintf(t, "{\"type\":\"neg\",\"meta\":[");
	while (len < (1u << 20))
		len += (size_t)sprintf(t + len, "{},");
	strcpy(t + len, "{}]}");
	bad("1 MiB of {} in meta (~270 MiB as a json-c tree)", t);
	free(t);
	t = xmalloc(NAMERD_JSON_MAX);
	len = (size_t)sprintf(t, "{\"type\":\"neg\",\"meta\":[");
	while (len < NAMERD_JSON_MAX - 16)
		len += (size_t)sprintf(t + len, "0,");
	len += (size_t)sprintf(t + len, "0]}");
	bad_len("NAMERD_JSON_MAX of 0, in meta (~1.5 GiB as a json-c tree)", t, len);
	free(t);
}

/* NAMERD_MAX_ADDRS addresses decode; one more is refused. */
static void test_address_limit(void)
{
	const char *addr = "{\"ip\":\"10.0.0.1\",\"port\":80},";
	size_t alen = strlen(addr), len;
	struct namerd_answer a;
	int64_t t0;
	char *t;
	int rc;

	for (size_t n = NAMERD_MAX_ADDRS; n <= NAMERD_MAX_ADDRS + 1; n++) {
		char err[NAMERD_ERRLEN] = "";

		t = xmalloc(64 + n * alen);
		len = (size_t)sprintf(t, "{\"type\":\"bound\",\"addrs\":[");
		for (size_t i = 0; i < n; i++, len += alen)
			memcpy(t + len, addr, alen);
		strcpy(t + len - 1, "],\"meta\":{}}");
		t0 = now_ms();
		rc = namerd_json_decode(t, strlen(t), &a, err, sizeof(err));
		t0 = now_ms() - t0;
		if (n == NAMERD_MAX_ADDRS)
			ok(rc == 0 && a.n == n, "%zu addresses accepted (%lld ms)", n,
			   (long long)t0);
		else
			ok(rc == -1 && err[0] && a.n == 0, "%zu addresses rejected (%s)", n, err);
		namerd_answer_clear(&a);
		free(t);
	}
}

static void test_limits(void)
{
	struct namerd_answer a;
	size_t len;
	char *t;
	int64_t t0;
	int rc;

	/* Over NAMERD_JSON_MAX: a valid body padded with whitespace. */
	len = NAMERD_JSON_MAX + 1;
	t = xmalloc(len);
	memset(t, ' ', len);
	memcpy(t, BODY_NEG, strlen(BODY_NEG));
	bad_len("input over NAMERD_JSON_MAX", t, len);
	ok(namerd_json_decode(t, NAMERD_JSON_MAX, &a, NULL, 0) == 0 && a.kind == NAMERD_NEG,
	   "%u MiB body (mostly whitespace) accepted", NAMERD_JSON_MAX >> 20);
	namerd_answer_clear(&a);
	free(t);

	/* NAMERD_JSON_MAX of a single string. */
	t = xmalloc(NAMERD_JSON_MAX + 1);
	len = (size_t)sprintf(t, "{\"type\":\"failed\",\"cause\":\"");
	memset(t + len, 'a', NAMERD_JSON_MAX - len - 2);
	memcpy(t + NAMERD_JSON_MAX - 2, "\"}", 2);
	t0 = now_ms();
	rc = namerd_json_decode(t, NAMERD_JSON_MAX, &a, NULL, 0);
	t0 = now_ms() - t0;
	ok(rc == 0 && a.cause && strlen(a.cause) == NAMERD_CAUSE_MAX,
	   "%u MiB cause decodes, cut to %d bytes (%lld ms)", NAMERD_JSON_MAX >> 20,
	   NAMERD_CAUSE_MAX, (long long)t0);
	namerd_answer_clear(&a);
	free(t);

	test_tree_limits();
	test_address_limit();
}

/* 100,000 addresses as a large namerd might send them, the array under key. */
static size_t large_realistic(char *t, size_t cap, const char *key)
{
	size_t len = (size_t)snprintf(t, cap, "{\"type\":\"bound\",\"%s\":[", key);

	for (size_t i = 0; i < NAMERD_MAX_ADDRS; i++)
		len += (size_t)snprintf(
			t + len, cap - len,
			"%s{\"ip\":\"2001:db8:0:0:0:0:%zx:%zx\",\"port\":%zu,\"meta\":{"
			"\"endpoint_addr_weight\":1.0E-4,\"nodeName\":\"gke-prod-default-pool-"
			"3f2a9c1e"
			"-%zu\",\"zone\":\"us-central1-a\"}}",
			i ? "," : "", i >> 16, i & 0xffff, 30000 + i % 1000, i);
	len += (size_t)snprintf(t + len, cap - len,
				"],\"meta\":{\"authority\":\"web.service.dc1.consul\"}}\n");
	return len;
}

static void test_large_realistic(void)
{
	size_t n = NAMERD_MAX_ADDRS, cap = 256 * n, len;
	char *t = xmalloc(cap), err[NAMERD_ERRLEN] = "", name[NETADDR_STRLEN] = "";
	struct namerd_answer a;
	int64_t ms;
	int rc;

	len = large_realistic(t, cap, "addrs");
	ms = now_ms();
	rc = namerd_json_decode(t, len, &a, err, sizeof(err));
	ms = now_ms() - ms;
	ep_name(&a, n - 1, name);
	ok(rc == 0 && a.n == n && a.eps[0].weight == 1.0E-4 &&
		   strcmp(name, "[2001:db8::1:869f]:30999") == 0,
	   "%zu IPv6 addresses with meta, %zu MiB, accepted in %lld ms (%s%s)", n, len >> 20,
	   (long long)ms, name, err);
	namerd_answer_clear(&a);
	len = large_realistic(t, cap, "\\u0061ddrs"); /* the same key, read by json-c */
	rc = namerd_json_decode(t, len, &a, err, sizeof(err));
	ok(rc == -1 && strstr(err, "to parse, over"), "as one tree it would be refused (%s)", err);
	namerd_answer_clear(&a);
	free(t);
}

static void test_api(void)
{
	struct namerd_answer a;
	char small[8];

	ok(namerd_json_decode("{", 1, &a, NULL, 0) == -1, "NULL err buffer");
	memset(small, 'x', sizeof(small));
	ok(namerd_json_decode("{\"type\":\"leaf\"}", 15, &a, small, sizeof(small)) == -1 &&
		   memchr(small, '\0', sizeof(small)) != NULL && small[0] != '\0',
	   "short err buffer is NUL-terminated ('%s')", small);
	ok(namerd_json_decode(BODY_NEG, strlen(BODY_NEG) - 1, &a, NULL, 0) == -1,
	   "len is honoured (body without its last byte)");
	ok(namerd_json_decode(BODY_PLAIN, strlen(BODY_PLAIN), &a, NULL, 0) == 0 && a.n == 1,
	   "decode into an answer");
	namerd_answer_clear(&a);
	namerd_answer_clear(&a);
	namerd_answer_clear(NULL);
	ok(a.eps == NULL && a.n == 0 && a.cause == NULL && a.kind == NAMERD_PENDING,
	   "clear is idempotent and leaves pending");
}

/* Several threads decoding at once get the same answers (run it under TSan too). */
static void *decode_loop(void *arg)
{
	long bad_results = 0;

	(void)arg;
	for (int i = 0; i < 2000; i++) {
		struct namerd_answer a;

		if (namerd_json_decode(BODY_WEIGHTS, strlen(BODY_WEIGHTS), &a, NULL, 0) != 0 ||
		    a.n != 2 || a.eps[0].weight != 3.0)
			bad_results++;
		namerd_answer_clear(&a);
		if (namerd_json_decode(BODY_FAILED, strlen(BODY_FAILED), &a, NULL, 0) != 0 ||
		    !a.cause)
			bad_results++;
		namerd_answer_clear(&a);
		if (namerd_json_decode("{\"type\":\"bound\"", 15, &a, NULL, 0) != -1)
			bad_results++;
	}
	return (void *)bad_results;
}

static void test_threads(void)
{
	pthread_t th[4];
	long total = 0;

	for (size_t i = 0; i < ARRAY_SIZE(th); i++)
		pthread_create(&th[i], NULL, decode_loop, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(th); i++) {
		void *r;

		pthread_join(th[i], &r);
		total += (long)r;
	}
	ok(total == 0, "4 threads decoding concurrently agree (%ld wrong)", total);
}

int main(void)
{
	test_literal_bodies();
	test_addresses();
	test_weights();
	test_meta();
	test_failed();
	test_malformed_documents();
	test_malformed_addresses();
	test_malformed_nesting();
	test_pieces_match_whole();
	test_limits();
	test_large_realistic();
	test_api();
	test_threads();
	return tap_done();
}
