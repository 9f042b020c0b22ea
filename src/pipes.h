/*
 * pipes: a process-wide cache of pipes for splice(2).
 *
 * A relay takes a pipe only while bytes flow through a plain-to-plain
 * direction and gives it back empty, so idle connections hold no pipe and
 * the fd budget stays near two descriptors per connection.  New pipes are
 * enlarged to PIPES_SIZE where the system allows it (fewer, larger splices).
 * When the cache is empty and the cap is reached, pipes_get fails and the
 * relay copies through a buffer instead.  Safe from any thread (one mutex).
 */
#ifndef LTCP_PIPES_H
#define LTCP_PIPES_H

#include <stdbool.h>
#include <stddef.h>

#define PIPES_SIZE (256u << 10)

struct pipe {
	int fd[2];  /* read end, write end; -1 when no pipe is held */
	size_t cap; /* bytes it holds at most */
};

#define PIPE_NONE ((struct pipe){ .fd = { -1, -1 }, .cap = 0 })

void pipes_init(unsigned max_pipes);
/* Fills p with an empty pipe; false when none can be had. */
bool pipes_get(struct pipe *p);
/* Returns an empty pipe to the cache (or closes it); p becomes PIPE_NONE. */
void pipes_put(struct pipe *p);
/* Closes a pipe that may hold data; p becomes PIPE_NONE. */
void pipes_discard(struct pipe *p);
void pipes_shutdown(void);
unsigned pipes_in_use(void);

#endif
