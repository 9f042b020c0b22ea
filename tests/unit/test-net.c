/* Unit tests of address parsing and formatting. */
#include "auto-config.h"

#include "net.h"
#include "tap.h"

#include <string.h>

static void parse_ok(const char *text, const char *host, unsigned port)
{
	struct hostport hp;
	const char *why = NULL;
	int rc = hostport_parse(text, &hp, &why);

	ok(rc == 0 && strcmp(hp.host, host) == 0 && hp.port == port, "parse '%s' -> %s %u", text,
	   host, port);
	if (rc == 0)
		hostport_clear(&hp);
}

static void parse_bad(const char *text, const char *expect)
{
	struct hostport hp;
	const char *why = "";
	int rc = hostport_parse(text, &hp, &why);

	ok(rc < 0 && strstr(why, expect) != NULL, "reject '%s' (%s)", text, why);
}

static void format_ip(const char *ip, unsigned port, const char *expect)
{
	struct netaddr a;
	char buf[NETADDR_STRLEN] = "";

	if (netaddr_from_ip(ip, (uint16_t)port, &a) == 0)
		netaddr_format(&a, buf, sizeof(buf));
	ok(strcmp(buf, expect) == 0, "format %s -> %s (got %s)", ip, expect, buf);
}

int main(void)
{
	parse_ok("127.0.0.1:7474", "127.0.0.1", 7474);
	parse_ok("0.0.0.0:0", "0.0.0.0", 0);
	parse_ok("[::1]:80", "::1", 80);
	parse_ok("[2001:db8::5]:65535", "2001:db8::5", 65535);
	parse_ok("localhost:4180", "localhost", 4180);
	parse_ok("namerd.default.svc.cluster.local:4180", "namerd.default.svc.cluster.local", 4180);
	parse_bad("127.0.0.1", "host:port");
	parse_bad("127.0.0.1:", "port");
	parse_bad("127.0.0.1:65536", "port");
	parse_bad("127.0.0.1:80x", "port");
	parse_bad("::1:80", "[addr]:port");
	parse_bad("[::1]80", "[IPv6]:port");
	parse_bad("[zz::1]:80", "IPv6");
	parse_bad(":80", "host");
	parse_bad("bad host:80", "host");
	format_ip("10.1.2.3", 80, "10.1.2.3:80");
	format_ip("::1", 443, "[::1]:443");
	/* namerd (Java) writes IPv6 in its long form. */
	format_ip("0:0:0:0:0:0:0:1", 8080, "[::1]:8080");
	return tap_done();
}
