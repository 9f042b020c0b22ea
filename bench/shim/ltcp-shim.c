/* LD_PRELOAD experiments for bench/profile (never used by bench/run's numbers),
 * to measure what a change to linkerd-tcp would buy without touching src/:
 *   BENCH_PIPE_SIZE=N   every pipe made with pipe2() gets capacity N bytes
 *                       (F_SETPIPE_SZ), and splice() calls that ask for 64 KiB
 *                       (linkerd-tcp's PIPE_CHUNK) ask for N instead;
 *   BENCH_FUTEX_SLOTS=N at start, prctl(PR_FUTEX_HASH, SET_SLOTS, N): the size
 *                       of the process-private futex hash (Linux >= 6.16); 0
 *                       selects the global hash;
 *   BENCH_DEFER_ACCEPT=S every listening socket gets TCP_DEFER_ACCEPT of S
 *                       seconds (accept only once the client has sent data);
 *   BENCH_CPUS=LIST     at start, pin the process (all its threads) to the
 *                       CPUs in LIST, e.g. "1" or "0,1" (sched_setaffinity);
 *   BENCH_SPREAD=1      every thread made with pthread_create is pinned to one
 *                       CPU, round-robin over the CPUs online. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <pthread.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH           78
#define PR_FUTEX_HASH_SET_SLOTS 1
#define PR_FUTEX_HASH_GET_SLOTS 2
#endif

__attribute__((constructor)) static void futex_slots(void)
{
	const char *s = getenv("BENCH_FUTEX_SLOTS");

	if (!s)
		return;
	int rc = prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, strtoul(s, NULL, 0), 0);
	fprintf(stderr, "shim: futex hash slots %s: %s (now %d)\n", s, rc == 0 ? "set" : "refused",
		prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0));
}

static size_t want(void)
{
	const char *s = getenv("BENCH_PIPE_SIZE");
	return s ? (size_t)strtoul(s, NULL, 0) : 0;
}

int pipe2(int fds[2], int flags)
{
	static int (*real)(int *, int);
	size_t sz = want();

	if (!real)
		real = (int (*)(int *, int))dlsym(RTLD_NEXT, "pipe2");
	int rc = real(fds, flags);
	if (rc == 0 && sz)
		(void)fcntl(fds[1], F_SETPIPE_SZ, (int)sz);
	return rc;
}

ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
	       unsigned int flags)
{
	static ssize_t (*real)(int, loff_t *, int, loff_t *, size_t, unsigned int);
	size_t sz = want();

	if (!real)
		real = (ssize_t(*)(int, loff_t *, int, loff_t *, size_t, unsigned int))dlsym(
			RTLD_NEXT, "splice");
	if (sz && len == 65536)
		len = sz;
	return real(fd_in, off_in, fd_out, off_out, len, flags);
}

int listen(int fd, int backlog)
{
	static int (*real)(int, int);
	const char *s = getenv("BENCH_DEFER_ACCEPT");

	if (!real)
		real = (int (*)(int, int))dlsym(RTLD_NEXT, "listen");
	if (s) {
		int secs = atoi(s);
		(void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
	}
	return real(fd, backlog);
}

__attribute__((constructor)) static void pin_cpus(void)
{
	const char *s = getenv("BENCH_CPUS");
	cpu_set_t set;

	if (!s)
		return;
	CPU_ZERO(&set);
	for (const char *p = s; *p; p += strcspn(p, ","), p += *p == ',')
		CPU_SET(atoi(p), &set);
	fprintf(stderr, "shim: pinned to CPUs %s: %s\n", s,
		sched_setaffinity(0, sizeof(set), &set) == 0 ? "ok" : "refused");
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	static unsigned next;

	if (!real)
		real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
				void *))dlsym(RTLD_NEXT, "pthread_create");
	int rc = real(t, attr, fn, arg);
	if (rc == 0 && getenv("BENCH_SPREAD")) {
		cpu_set_t set;
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		CPU_ZERO(&set);
		CPU_SET((int)(__atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % (unsigned)n), &set);
		(void)pthread_setaffinity_np(*t, sizeof(set), &set);
	}
	return rc;
}
