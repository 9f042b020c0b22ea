/*
 * util: small helpers shared by every module.
 *
 * Memory policy: xmalloc/xcalloc/xrealloc/xstrdup abort the process when the
 * allocator fails, so callers never check their result.  Time helpers read
 * CLOCK_MONOTONIC in milliseconds.  Safe from any thread.
 */
#ifndef LTCP_UTIL_H
#define LTCP_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUSTCHECK     __attribute__((warn_unused_result))
#define PRINTF(f, a)  __attribute__((format(printf, f, a)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) PRINTF(1, 2);

/* Copies text from outside (a peer, a file) so that it fits one log line:
 * src[0..len) into dst (size bytes, always NUL-terminated when size > 0),
 * cut on a UTF-8 character boundary, with every control character (NUL
 * and DEL included) turned into a space.  Returns the bytes written. */
size_t util_sanitize(char *dst, size_t size, const char *src, size_t len);

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);
/* Microseconds on the monotonic clock. */
int64_t now_us(void);

/* Waits on a CLOCK_MONOTONIC condition variable until deadline_ms (now_ms
 * clock).  Returns false once the deadline has passed. */
bool cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline_ms);

/* A fast per-thread pseudo-random number (xorshift), seeded from getrandom. */
uint64_t rand_u64(void);
/* Uniform double in [0, 1). */
double rand_unit(void);

/* Starts a thread the way every thread of ours starts: with an explicit
 * stack size, every signal blocked (only the main thread takes signals),
 * and a name (cut to 15 characters) for ps and gdb.  0, or an errno value. */
int util_thread_start(pthread_t *t, size_t stack, const char *name, void *(*fn)(void *),
		      void *arg) MUSTCHECK;

/* Closes fd if it is >= 0 and sets it to -1; keeps errno. */
void close_fd(int *fd);

/* Reads a whole file (up to max bytes) into a NUL-terminated buffer. */
char *read_file(const char *path, size_t max, size_t *len) MUSTCHECK;
char *read_stream(int fd, size_t max, size_t *len) MUSTCHECK;

#endif
