/*
 * config_compat: what config.c (this version's schema) and config_compat.c
 * (the linkerd-tcp 0.1.x schema and its conversion) share.
 *
 * config.c asks config_compat_detect which schema a document uses and hands
 * a 0.1.x document to config_compat_load, which reads it with the walker
 * into its own structs, converts them into the caller's struct config (its
 * defaults already set) and frees them.  The conversion fills the sections
 * it creates from this version's tables, which config.c exports below with
 * the name syntax both schemas check.  Private to the configuration loader;
 * called on the thread that loads (the main thread).
 */
#ifndef LTCP_CONFIG_COMPAT_H
#define LTCP_CONFIG_COMPAT_H

#include "cfgload.h"
#include "config.h"

#include <stdbool.h>

enum cfg_schema { SCHEMA_CURRENT, SCHEMA_C01, SCHEMA_BOTH };

/* A top-level "routers" key selects the linkerd-tcp 0.1.x schema; both
 * "routers" and "proxies" is an error, reported here. */
enum cfg_schema config_compat_detect(struct ctx *c, yaml_node_t *root);
/* Loads a 0.1.x document and, when it has no error, converts it into cfg. */
void config_compat_load(struct ctx *c, yaml_node_t *root, struct config *cfg);

/* From config.c: this version's key tables, and the name syntax check. */
extern const struct cfg_section config_endpoint_sec, config_server_tls_sec, config_server_sec,
	config_namerd_sec, config_client_tls_sec, config_proxy_sec;
/* Finagle Path syntax: "/" alone, or "/label(/label)*" without a trailing slash. */
bool config_name_path_ok(const char *p);

#endif
