/*
 * runtime: everything that runs for one configuration: the relay pool and
 * the proxies.  Only the main thread calls these functions.
 *
 * Startup binds every listener before anything accepts.  Reload prepares
 * the new configuration completely (binds new listeners, resolves
 * endpoints) and installs it only when all of it worked; on any failure
 * the running configuration stays as it was.  Shutdown stops accepting,
 * waits for open connections up to the grace period, then cuts the rest.
 */
#ifndef LTCP_RUNTIME_H
#define LTCP_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct runtime;

/* Startup in two steps, so that privileges can be dropped in between,
 * before any thread runs: runtime_bind raises the open file limit, binds
 * every listener and resolves static endpoints (NULL, logged, on failure);
 * runtime_run starts the relay pool, the acceptors and the namerd threads
 * (-1, logged, on failure; then runtime_free). */
struct runtime *runtime_bind(struct config *cfg);
int runtime_run(struct runtime *rt);
/* Both steps at once; NULL (logged) on failure. */
struct runtime *runtime_start(struct config *cfg);
/* Configured proxies right now. */
size_t runtime_proxies(const struct runtime *rt);
/* Installs cfg if every part of it can be set up; -1 keeps the old one. */
int runtime_reload(struct runtime *rt, struct config *cfg);
/* Closes every listener; open connections carry on. */
void runtime_stop_accepting(struct runtime *rt);
/* Open connections right now. */
unsigned runtime_active(struct runtime *rt);
/* Waits up to deadline_ms for connections to end; returns those left. */
unsigned runtime_wait_idle(struct runtime *rt, int64_t deadline_ms);
/* Ends every open connection at once. */
void runtime_abort_connections(struct runtime *rt);
const struct config *runtime_config(const struct runtime *rt);
void runtime_free(struct runtime *rt);

#endif
