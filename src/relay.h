/*
 * relay: one proxied connection, run start to end on one relay thread.
 *
 * relay_run connects to an endpoint (balancer choice, connect timeout,
 * retries on other endpoints), then copies bytes both ways until both
 * directions have reached EOF: the thread sleeps in poll(2) on the two
 * sockets and moves what each is ready for, with splice(2) through a pipe
 * for plain-to-plain.  EOF on one side half-closes the other.  One
 * teardown function closes everything and logs the summary line.
 */
#ifndef LTCP_RELAY_H
#define LTCP_RELAY_H

#include <stddef.h>

/* Called once at startup: buffer size and splice pipe budget. */
void relay_init(size_t buffer_size, unsigned max_pipes);
/* Pool handler: runs one connection (job is a struct proxy_job). */
void relay_run(void *job, void **thread_state);
void relay_thread_state_free(void *state);
/* Makes every running relay end its connection now (grace expired). */
void relay_abort_all(void);
void relay_shutdown(void);

#endif
