#include "auto-config.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

int log_current_level = LL_INFO;
static bool log_syslog;
/* While detached but not yet started, messages up to this level also go to
 * stderr, so the operator who ran `linkerd-tcp -d` sees why it failed. */
static atomic_int log_stderr_copy = -1;

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };
static const char *const level_tags[] = { "ERROR", "WARN ", "INFO ", "DEBUG", "TRACE" };
static const int level_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG };

void log_set_level(enum log_level level)
{
	log_current_level = (int)level;
}

void log_use_syslog(bool on)
{
	if (on && !log_syslog)
		openlog("linkerd-tcp", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = on;
}

void log_copy_to_stderr(int max_level)
{
	atomic_store_explicit(&log_stderr_copy, max_level, memory_order_relaxed);
}

static int level_from_word(const char *w, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (strlen(level_names[i]) == n && strncasecmp(w, level_names[i], n) == 0)
			return (int)i;
	if (n == 7 && strncasecmp(w, "warning", n) == 0)
		return LL_WARN;
	return -1;
}

/* RUST_LOG is a comma list of "level" or "target=level" directives; only a
 * bare level or the linkerd_tcp target concern us.  The most specific wins. */
int log_parse_level(const char *spec, bool rust_syntax)
{
	int bare = -1, targeted = -1;
	const char *p = spec;

	if (!rust_syntax) {
		size_t n = strlen(spec);
		while (n > 0 && (spec[n - 1] == ' ' || spec[n - 1] == '\n'))
			n--;
		return level_from_word(spec, n);
	}
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', n);

		if (!eq) {
			int l = level_from_word(p, n);
			if (l >= 0)
				bare = l;
		} else if ((size_t)(eq - p) == strlen("linkerd_tcp") &&
			   strncmp(p, "linkerd_tcp", (size_t)(eq - p)) == 0) {
			int l = level_from_word(eq + 1, n - (size_t)(eq - p) - 1);
			if (l >= 0)
				targeted = l;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return targeted >= 0 ? targeted : bare;
}

int log_init_from_env(const char **bad)
{
	const char *v = getenv("LINKERD_TCP_LOG");
	int l;

	if (v && *v) {
		l = log_parse_level(v, false);
		if (l < 0) {
			*bad = "LINKERD_TCP_LOG";
			return -1;
		}
		log_set_level((enum log_level)l);
		return 0;
	}
	v = getenv("RUST_LOG");
	if (v && *v) {
		l = log_parse_level(v, true);
		if (l >= 0)
			log_set_level((enum log_level)l);
	}
	return 0;
}

/* Formats one timestamped line and writes it to fd with a single write(2). */
static void write_line(int fd, enum log_level level, const char *fmt, va_list ap)
{
	char buf[2048];
	size_t n;
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000,
			      level_tags[level]);
	int r = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	if (r < 0)
		r = 0;
	n = MIN(n + (size_t)r, sizeof(buf) - 2);
	buf[n++] = '\n';
	ssize_t w = write(fd, buf, n);
	(void)w;
}

static void write_stderr(enum log_level level, const char *fmt, va_list ap)
{
	write_line(STDERR_FILENO, level, fmt, ap);
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	int saved = errno;

	if (log_syslog) {
		char buf[2048];
		va_list copy;

		va_copy(copy, ap);
		vsnprintf(buf, sizeof(buf), fmt, copy);
		va_end(copy);
		syslog(level_prio[level], "%s", buf);
		if ((int)level <= atomic_load_explicit(&log_stderr_copy, memory_order_relaxed))
			write_stderr(level, fmt, ap);
		errno = saved;
		return;
	}
	write_stderr(level, fmt, ap);
	errno = saved;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/* The access log is written through one descriptor number, access_slot,
 * for the life of the process: a reopen dup3()s the new file onto it and
 * turning the log off dup3()s /dev/null onto it, so a relay thread that
 * loaded access_fd just before never writes to a closed or reused fd.
 * access_fd is the slot while the log is on, -1 while it is off. */
static atomic_int access_fd = -1;
static int access_slot = -1; /* main thread only */

/* Opens path for appending: a regular file, never through a symlink, and
 * without blocking on a FIFO. */
static int access_file_open(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
		      0640);
	struct stat st;

	if (fd < 0) {
		/* ENXIO: a FIFO without a reader (O_NONBLOCK). */
		snprintf(err, errlen, "access log %s: %s", path,
			 errno == ELOOP   ? "is a symbolic link (refused)"
			 : errno == ENXIO ? "not a regular file"
					  : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "access log %s: not a regular file", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* Puts fd (closed here) into the slot; -1 with err on failure. */
static int access_slot_fill(int fd, const char *what, char *err, size_t errlen)
{
	if (access_slot < 0) {
		access_slot = fd;
		return 0;
	}
	int rc = dup3(fd, access_slot, O_CLOEXEC);
	if (rc < 0)
		snprintf(err, errlen, "access log %s: %s", what, strerror(errno));
	close(fd);
	return rc;
}

int log_access_open(const char *path, char *err, size_t errlen)
{
	int fd;

	if (!path) {
		if (atomic_load(&access_fd) < 0)
			return 0;
		atomic_store(&access_fd, -1);
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		return fd < 0 ? 0 : access_slot_fill(fd, "/dev/null", err, errlen);
	}
	fd = access_file_open(path, err, errlen);
	if (fd < 0 || access_slot_fill(fd, path, err, errlen) < 0)
		return -1;
	atomic_store(&access_fd, access_slot);
	return 0;
}

bool log_access_wanted(void)
{
	return atomic_load_explicit(&access_fd, memory_order_relaxed) >= 0 || log_enabled(LL_INFO);
}

void log_access(const char *fmt, ...)
{
	int fd = atomic_load_explicit(&access_fd, memory_order_relaxed);
	va_list ap;

	if (fd < 0 && !log_enabled(LL_INFO))
		return;
	va_start(ap, fmt);
	if (fd >= 0)
		write_line(fd, LL_INFO, fmt, ap);
	else
		log_vmsg(LL_INFO, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
