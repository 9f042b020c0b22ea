/* LD_PRELOAD experiments for bench/profile (never used by bench/run's numbers),
 * to measure what a change to linkerd-tcp would buy without touching src/:
 *   BENCH_PIPE_SIZE=N   every pipe made with pipe2() gets capacity N bytes
 *                       (F_SETPIPE_SZ), and splice() calls that ask for 64 KiB
 *                       (linkerd-tcp's PIPE_CHUNK) ask for N instead;
 *   BENCH_FUTEX_SLOTS=N at start, prctl(PR_FUTEX_HASH, SET_SLOTS, N): the size
 *                       of the process-private futex hash (Linux >= 6.16); 0
 *                       selects the global hash. */
#define _GNU_SOURCE
#include <dlfcn.h>
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
