/*
 * runtime: everything that runs for one configuration: the relay pool and
 * the proxies.  Only the main thread calls these functions, but for the
 * admin-side readers grouped at the end.
 *
 * Startup binds every listener before anything accepts.  Reload prepares
 * the new configuration completely (binds new listeners, resolves
 * endpoints) and installs it only when all of it worked; on any failure
 * the running configuration stays as it was.  Shutdown stops accepting,
 * waits for open connections up to the grace period, then cuts the rest.
 */
#ifndef LTCP_RUNTIME_H
#define LTCP_RUNTIME_H

#include <stdbool.h>
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
/* Begins the drain (runtime_drain_begin), then closes every listener and
 * closes the parked connections; running ones close once quiet. */
void runtime_stop_accepting(struct runtime *rt);
/* Relay threads running a connection right now. */
unsigned runtime_active(struct runtime *rt);
/* Woken connections waiting for a relay thread. */
unsigned runtime_queued(struct runtime *rt);
/* Open connections right now, parked ones included. */
unsigned runtime_open(struct runtime *rt);
/* Waits up to deadline_ms for every connection to close; returns those left. */
unsigned runtime_wait_closed(struct runtime *rt, int64_t deadline_ms);
/* Ends every open connection at once. */
void runtime_abort_connections(struct runtime *rt);
const struct config *runtime_config(const struct runtime *rt);

/* For the admin side (any thread): */
struct proxy;
/* Calls fn for every running proxy, holding the runtime's read lock. */
void runtime_for_each_proxy(struct runtime *rt, void (*fn)(struct proxy *, void *), void *arg);
/* True when every proxy has an endpoint set. */
bool runtime_ready(struct runtime *rt);
unsigned runtime_pool_size(struct runtime *rt);
double runtime_start_time(const struct runtime *rt);
/* A drain has begun: from then on /ready fails and /reload waits end.
 * Idempotent; the main thread (SIGTERM) or an admin thread (/shutdown). */
void runtime_drain_begin(struct runtime *rt);
bool runtime_draining(struct runtime *rt);
/* The main thread brackets each reload (SIGHUP or admin): begin before it
 * reads the file, note with the outcome. */
void runtime_reload_begin(struct runtime *rt);
void runtime_note_reload(struct runtime *rt, bool ok);
/* For POST /reload.  Concurrent requests share reloads: a ticket names the
 * first reload to begin after this call, so it reads the file as it is now;
 * *ask is true for the first caller of that ticket, which then sends the
 * SIGHUP (the others wait for the same reload). */
uint64_t runtime_reload_ticket(struct runtime *rt, bool *ask);
enum reload_outcome { RELOAD_OK, RELOAD_FAILED, RELOAD_TIMEOUT, RELOAD_STOPPING };
/* Waits until the reload of ticket (or a later one) has finished, the drain
 * begins, or deadline_ms passes. */
enum reload_outcome runtime_wait_reload(struct runtime *rt, uint64_t ticket, int64_t deadline_ms);
uint64_t runtime_reloads(struct runtime *rt, bool ok);
void runtime_free(struct runtime *rt);

#endif
