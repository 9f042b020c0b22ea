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
static struct pipe pipes_cache[PIPES_CACHE_MAX];
static unsigned pipes_ncache;
static unsigned pipes_max, pipes_used;

void pipes_init(unsigned max_pipes)
{
	pthread_mutex_lock(&pipes_lock);
	pipes_max = max_pipes;
	pthread_mutex_unlock(&pipes_lock);
}

/* A new pipe, as large as the system lets this process make it. */
static bool pipe_new(struct pipe *p)
{
	int cap;

	if (pipe2(p->fd, O_CLOEXEC | O_NONBLOCK) < 0)
		return false;
	(void)fcntl(p->fd[1], F_SETPIPE_SZ, (int)PIPES_SIZE); /* may exceed a user's quota */
	cap = fcntl(p->fd[1], F_GETPIPE_SZ);
	p->cap = cap > 0 ? (size_t)cap : 65536;
	return true;
}

bool pipes_get(struct pipe *p)
{
	bool ok = false;

	pthread_mutex_lock(&pipes_lock);
	if (pipes_ncache > 0) {
		*p = pipes_cache[--pipes_ncache];
		ok = true;
	} else if (pipes_used < pipes_max) {
		ok = pipe_new(p);
	}
	if (ok)
		pipes_used++;
	pthread_mutex_unlock(&pipes_lock);
	if (!ok)
		*p = PIPE_NONE;
	return ok;
}

void pipes_put(struct pipe *p)
{
	if (p->fd[0] < 0)
		return;
	pthread_mutex_lock(&pipes_lock);
	pipes_used--;
	if (pipes_ncache < PIPES_CACHE_MAX) {
		pipes_cache[pipes_ncache++] = *p;
		*p = PIPE_NONE;
	}
	pthread_mutex_unlock(&pipes_lock);
	close_fd(&p->fd[0]);
	close_fd(&p->fd[1]);
	*p = PIPE_NONE;
}

void pipes_discard(struct pipe *p)
{
	if (p->fd[0] < 0)
		return;
	pthread_mutex_lock(&pipes_lock);
	pipes_used--;
	pthread_mutex_unlock(&pipes_lock);
	close_fd(&p->fd[0]);
	close_fd(&p->fd[1]);
	*p = PIPE_NONE;
}

void pipes_shutdown(void)
{
	pthread_mutex_lock(&pipes_lock);
	while (pipes_ncache > 0) {
		pipes_ncache--;
		close(pipes_cache[pipes_ncache].fd[0]);
		close(pipes_cache[pipes_ncache].fd[1]);
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
