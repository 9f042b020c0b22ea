/*
 * page: GET /, the operator's page (SPEC §13).
 *
 * One self-contained HTML document: inline CSS and script, no external
 * assets.  The server renders the state of every proxy as plain tables
 * (listeners, discovery, endpoints with their weights, override, state and
 * counters; the relay pool) from the document of GET /endpoints
 * (control_state_json), so it reads without JavaScript.  The script then
 * polls /endpoints every second, updates the tables in place, draws a
 * connection-rate sparkline per endpoint, and offers per endpoint a weight,
 * drain and reset control that calls the control API.
 *
 * With admin.token set, a browser cannot send the token when it navigates:
 * the admin serves a request for / without it the page with no data (see
 * admin.c), and the script asks for the token, keeps it in the tab's
 * sessionStorage and sends it as "Authorization: Bearer" on its requests.
 * Runs on admin threads, under the runtime's read lock.
 */
#ifndef LTCP_PAGE_H
#define LTCP_PAGE_H

#include <stdbool.h>

struct runtime;

/* The HTML document (malloc'd); with_data false: the page without any
 * state, which asks for the admin token. */
char *page_render(struct runtime *rt, bool with_data);

/* The response headers the page goes with, {name, value} pairs ending in
 * {NULL, NULL}: its type, no caching, a Content-Security-Policy that allows
 * only its own inline style and script and requests to its own origin, and
 * no framing. */
extern const char *const page_headers[][2];

#endif
