/*
 * pipes: a process-wide cache of pipes for splice(2).
 *
 * A relay takes a pipe only while bytes flow through a plain-to-plain
 * direction and gives it back empty, so idle connections hold no pipe and
 * the fd budget stays near two descriptors per connection.  When the cache
 * is empty and the cap is reached, pipes_get fails and the relay copies
 * through its buffer instead.  Safe from any thread (one mutex).
 */
#ifndef LTCP_PIPES_H
#define LTCP_PIPES_H

#include <stdbool.h>

void pipes_init(unsigned max_pipes);
/* Fills fds with an empty pipe; false when none can be had. */
bool pipes_get(int fds[2]);
/* Returns an empty pipe to the cache (or closes it); sets fds to -1. */
void pipes_put(int fds[2]);
/* Closes a pipe that may hold data; sets fds to -1. */
void pipes_discard(int fds[2]);
void pipes_shutdown(void);
unsigned pipes_in_use(void);

#endif
