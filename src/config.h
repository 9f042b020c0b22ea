/*
 * config: the configuration snapshot and its table-driven YAML loader.
 *
 * config_load() parses a file (or "-" for stdin) with libyaml, fills the
 * structs below from one key table per section, checks ranges and
 * cross-field rules, and reports every problem as "FILE:LINE:COL: message"
 * in a cfg_diag.  A linkerd-tcp 0.1.x file (a top-level "routers" key) is
 * read with that schema's tables and converted into the same structs.  A
 * loaded config is immutable and reference counted: the main thread owns
 * one reference, each proxy runtime and each connection that needs its
 * settings hold another.  Reload builds a new snapshot and swaps it only
 * when loading succeeds.
 */
#ifndef LTCP_CONFIG_H
#define LTCP_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "net.h"

struct cfg_mark {
	unsigned line, col; /* 1-based; 0 when the value came from a default */
};

struct cfg_strlist {
	size_t n;
	char **v;
};

/* A list of sections; v points at n items of the section's struct. */
struct cfg_list {
	size_t n;
	void *v;
};

struct cfg_hostport {
	char *text; /* as written */
	struct hostport hp;
	struct cfg_mark mark;
};

/* Every section struct starts with its mark. */
struct cfg_endpoint {
	struct cfg_mark mark;
	struct cfg_hostport addr;
	double weight;
};

struct cfg_identity {
	struct cfg_mark mark;
	char *server_name;
	char *private_key_path;
	struct cfg_strlist cert_paths;
};

struct cfg_server_tls {
	struct cfg_mark mark;
	char *private_key_path;
	struct cfg_strlist cert_paths;
	struct cfg_list identities; /* of struct cfg_identity */
	struct cfg_strlist alpn_protocols;
	struct cfg_strlist client_ca_paths;
	char *priority;
};

enum proxy_protocol { PROXY_PROTOCOL_NONE, PROXY_PROTOCOL_V1, PROXY_PROTOCOL_V2 };
/* defer_accept: auto is on where the client always speaks first. */
enum defer_accept { DEFER_ACCEPT_AUTO, DEFER_ACCEPT_ON, DEFER_ACCEPT_OFF };

struct cfg_server {
	struct cfg_mark mark;
	struct cfg_hostport addr;
	struct cfg_server_tls *tls; /* NULL: plaintext */
	int64_t connect_timeout_ms;
	int64_t idle_timeout_secs;          /* 0: none */
	int64_t connection_lifetime_secs;   /* 0: none */
	int proxy_protocol;                 /* enum proxy_protocol */
	bool accept_proxy_protocol;         /* a PROXY header precedes each client's bytes */
	int64_t max_connections_per_client; /* open at once per client address; 0: no limit */
	struct cfg_strlist server_names;    /* SNI names routed here; none: the address's default */
	bool sni_passthrough;               /* forward the TLS bytes untouched (no tls: here) */
	int defer_accept;                   /* enum defer_accept */
};

/* The identity of a listening address across proxies: "host:port" with the
 * host lowercased (entries with equal keys share one socket). */
#define CFG_LISTEN_KEY_MAX 300
void cfg_listen_key(const struct cfg_hostport *a, char *buf, size_t len);
/* True when entries of this address route by the TLS ClientHello's SNI name:
 * several proxies share it, or its one entry names servers or passes TLS through. */
bool cfg_server_routes_sni(const struct cfg_server *sc, bool shared);
/* True when the kernel should hand over this address's connections only once
 * the client has sent something (TCP_DEFER_ACCEPT): defer_accept, where auto
 * means a TLS, SNI-routed or PROXY-protocol entry (the client speaks first). */
bool cfg_server_defer_accept(const struct cfg_server *sc);

enum namerd_mode { NAMERD_WATCH, NAMERD_POLL };
enum limit_policy { LIMIT_WAIT, LIMIT_REFUSE };

struct cfg_namerd {
	struct cfg_mark mark;
	struct cfg_hostport addr; /* addr.text NULL when url is used */
	char *url;                /* NULL when addr is used */
	char *path;
	char *namespace;
	int64_t interval_secs;
	int mode; /* enum namerd_mode */
	int64_t timeout_ms;
	int64_t watch_idle_secs; /* reopen a silent watch stream; 0: never */
	char *trust_cert_path;   /* CA bundle for https; NULL: the system store */
};

struct cfg_client_tls {
	struct cfg_mark mark;
	char *name;
	struct cfg_strlist trust_cert_paths;
	struct cfg_strlist cert_paths;
	char *private_key_path;
	struct cfg_strlist alpn_protocols;
};

struct cfg_client {
	struct cfg_mark mark;
	int64_t connect_timeout_ms;
	int64_t retries;
	struct cfg_client_tls *tls; /* NULL: plaintext to endpoints */
};

struct cfg_accrual {
	struct cfg_mark mark;
	int64_t consecutive_failures;
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
};

struct cfg_proxy {
	struct cfg_mark mark;
	char *label;
	struct cfg_list servers; /* of struct cfg_server */
	struct cfg_namerd *namerd;
	struct cfg_list endpoints; /* of struct cfg_endpoint */
	bool has_endpoints;        /* the key was given (an empty list is valid) */
	struct cfg_client client;
	int64_t max_connections;    /* 0: unbounded */
	int max_connections_policy; /* enum limit_policy: what happens at the limit */
	struct cfg_accrual failure_accrual;
};

struct cfg_admin {
	struct cfg_mark mark;
	struct cfg_hostport addr;
	int64_t grace_secs;
	char *token; /* NULL: none; else every request but GET /ready needs it */
};

struct config {
	struct cfg_mark mark;
	struct cfg_list proxies; /* of struct cfg_proxy */
	struct cfg_admin admin;
	int64_t buffer_size;
	int64_t relay_threads;
	int64_t park_idle_ms; /* a connection quiet this long gives its thread back; 0: never */
	char *user;
	char *group;
	char *access_log; /* NULL: connection lines go to the log at level info */

	char *path; /* file name as given, "-" for stdin */
	atomic_int refs;
};

/* Diagnostics collected while loading, in order: the first CFG_MAX_ERRORS
 * errors, then how many more were found but not listed. */
#define CFG_MAX_ERRORS 100u
struct cfg_diag {
	size_t n;
	char **msgs;
	size_t more;
	size_t nwarn;
	char **warns;
};

enum {
	CFG_DIAG_WARN = 1u << 0,   /* a warning: never capped */
	CFG_DIAG_UNIQUE = 1u << 1, /* not listed again when the same line is */
};

/* Loads path ("-" reads stdin).  NULL when any error was found; diag then
 * holds every message.  Warnings may be present on success too. */
struct config *config_load(const char *path, struct cfg_diag *diag) MUSTCHECK;
/* Same, from memory; name is used in messages, dir resolves relative paths. */
struct config *config_load_buffer(const char *name, const char *dir, const char *text, size_t len,
				  struct cfg_diag *diag) MUSTCHECK;
struct config *config_ref(struct config *c);
void config_unref(struct config *c);
void cfg_diag_clear(struct cfg_diag *d);
/* Adds "FILE:LINE:COL: message" to d: an error (past CFG_MAX_ERRORS only
 * counted in d->more) or, with CFG_DIAG_WARN, a warning. */
void cfg_diag_add(struct cfg_diag *d, unsigned flags, const char *file, const struct cfg_mark *m,
		  const char *fmt, ...) PRINTF(5, 6);

/* Names of keys that changed between a and b but only take effect on restart. */
void config_changed_static(const struct config *a, const struct config *b,
			   void (*report)(const char *key, void *arg), void *arg);
/* Prints every key as a dotted path, one per line, for the documentation check. */
void config_dump_keys(FILE *out);
/* The same for the keys of the linkerd-tcp 0.1.x schema (a top-level "routers"
 * key), which config_load converts into this version's structs. */
void config_dump_compat_keys(FILE *out);
const char *config_proxy_protocol_name(int v);

#endif
