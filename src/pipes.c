#include "auto-config.h"

#include "pipes.h"

#include "util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* Idle pipes kept open for reuse; the rest are closed on return. */
#define PIPES_CACHE_MAX 64

static pthread_mutex_t pipes_lock = PTHREAD_MUTEX_INITIALIZER;
static int pipes_cache[PIPES_CACHE_MAX][2];
static unsigned pipes_ncache;
static unsigned pipes_max, pipes_used;

void pipes_init(unsigned max_pipes)
{
	pthread_mutex_lock(&pipes_lock);
	pipes_max = max_pipes;
	pthread_mutex_unlock(&pipes_lock);
}

bool pipes_get(int fds[2])
{
	bool ok = false;

	pthread_mutex_lock(&pipes_lock);
	if (pipes_ncache > 0) {
		pipes_ncache--;
		fds[0] = pipes_cache[pipes_ncache][0];
		fds[1] = pipes_cache[pipes_ncache][1];
		ok = true;
	} else if (pipes_used < pipes_max && pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
		ok = true;
	}
	if (ok)
		pipes_used++;
	pthread_mutex_unlock(&pipes_lock);
	if (!ok)
		fds[0] = fds[1] = -1;
	return ok;
}

void pipes_put(int fds[2])
{
	if (fds[0] < 0)
		return;
	pthread_mutex_lock(&pipes_lock);
	pipes_used--;
	if (pipes_ncache < PIPES_CACHE_MAX) {
		pipes_cache[pipes_ncache][0] = fds[0];
		pipes_cache[pipes_ncache][1] = fds[1];
		pipes_ncache++;
		fds[0] = fds[1] = -1;
	}
	pthread_mutex_unlock(&pipes_lock);
	close_fd(&fds[0]);
	close_fd(&fds[1]);
}

void pipes_discard(int fds[2])
{
	if (fds[0] < 0)
		return;
	pthread_mutex_lock(&pipes_lock);
	pipes_used--;
	pthread_mutex_unlock(&pipes_lock);
	close_fd(&fds[0]);
	close_fd(&fds[1]);
}

void pipes_shutdown(void)
{
	pthread_mutex_lock(&pipes_lock);
	while (pipes_ncache > 0) {
		pipes_ncache--;
		close(pipes_cache[pipes_ncache][0]);
		close(pipes_cache[pipes_ncache][1]);
	}
	pthread_mutex_unlock(&pipes_lock);
}

unsigned pipes_in_use(void)
{
	pthread_mutex_lock(&pipes_lock);
	unsigned n = pipes_used;
	pthread_mutex_unlock(&pipes_lock);
	return n;
}
