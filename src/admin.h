/*
 * admin: the admin HTTP server (libmicrohttpd) on admin.addr.
 *
 *   GET  /           the operator's page (page.h); with admin.token set and
 *                    no token sent, the page without data, which asks for it
 *   GET  /metrics    Prometheus text format 0.0.4
 *   GET  /ready      200 once every proxy has an endpoint set, else 503
 *   GET  /endpoints  JSON: each proxy's endpoints and discovery state
 *   POST /shutdown   stop accepting, drain up to admin.grace_secs, exit 0
 *   POST /reload     reload the configuration (as SIGHUP) and report the result
 *
 * Another method on a known path gets 405, an unknown path 404.  Before
 * routing, every request passes the safety checks (SPEC §8): a Host that is
 * not the admin's own address, an IP literal or localhost gets 421 (DNS
 * rebinding); a request other than GET or HEAD from another site's page
 * (Origin, Sec-Fetch-Site) gets 403; with admin.token set, a request without
 * "Authorization: Bearer <token>" gets 401, except GET /ready and GET /.
 *
 * The server runs on libmicrohttpd's threads (one per admin connection, at
 * most ADMIN_MAX_CONNECTIONS, each with a timeout), apart from the data
 * path: handlers only read counters and take the runtime's read lock and
 * short-lived proxy and balancer locks.  Shutdown and reload are handed to
 * the main thread as signals; /reload waits for the outcome, holding at most
 * ADMIN_RELOAD_WAITERS connections, so /ready always finds a free one.  The
 * main thread starts and stops it.
 */
#ifndef LTCP_ADMIN_H
#define LTCP_ADMIN_H

#include <stddef.h>

#include "config.h"

struct admin;
struct runtime;

/* Binds admin.addr and starts serving; NULL with err when it cannot. */
struct admin *admin_start(const struct cfg_admin *cfg, struct runtime *rt, char *err,
			  size_t errlen);
/* After a reload: installs the new admin.token (admin.addr needs a restart). */
void admin_update(struct admin *a, const struct cfg_admin *cfg);
void admin_stop(struct admin *a);
/* The bound address, e.g. "127.0.0.1:9989". */
const char *admin_name(const struct admin *a);

#endif
