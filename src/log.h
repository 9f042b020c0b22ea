/*
 * log: leveled logging to stderr (foreground) or syslog (daemon).
 *
 * Every message is formatted into a local buffer and written with one
 * write(2) or syslog(3) call, so lines from different threads never
 * interleave.  The level check happens before formatting.  The level comes
 * from LINKERD_TCP_LOG (error|warn|info|debug|trace) or, as the original
 * linkerd-tcp documented, RUST_LOG ("linkerd_tcp=info", "trace").
 * Safe from any thread; log_init/log_set_* only from main before threads.
 */
#ifndef LTCP_LOG_H
#define LTCP_LOG_H

#include <stdbool.h>
#include <stdnoreturn.h>

#include "util.h"

enum log_level { LL_ERROR, LL_WARN, LL_INFO, LL_DEBUG, LL_TRACE };

extern int log_current_level;

/* Picks the level from the environment; returns -1 with *bad set to the
 * offending variable when its value is not a level. */
int log_init_from_env(const char **bad);
void log_set_level(enum log_level level);
void log_use_syslog(bool on);
/* With syslog on, also copy messages up to max_level to stderr (-1: none). */
void log_copy_to_stderr(int max_level);
/* Parses "info", "linkerd_tcp=debug,hyper=warn", ...; -1 if no level found. */
int log_parse_level(const char *spec, bool rust_syntax);

void log_msg(enum log_level level, const char *fmt, ...) PRINTF(2, 3);
/* One line per connection: to the access log file when one is open,
 * otherwise to the log at level info.  Any thread. */
void log_access(const char *fmt, ...) PRINTF(1, 2);
/* Whether log_access writes anywhere (lets callers skip formatting). */
bool log_access_wanted(void);
/* Opens the access log (or reopens it, for log rotation); NULL closes it.
 * Main thread only. */
int log_access_open(const char *path, char *err, size_t errlen);
noreturn void fatal(const char *fmt, ...) PRINTF(1, 2);

#define log_enabled(l) ((int)(l) <= log_current_level)
#define LOG_AT(l, ...)                                                                             \
	do {                                                                                       \
		if (log_enabled(l))                                                                \
			log_msg(l, __VA_ARGS__);                                                   \
	} while (0)
#define log_error(...) LOG_AT(LL_ERROR, __VA_ARGS__)
#define log_warn(...)  LOG_AT(LL_WARN, __VA_ARGS__)
#define log_info(...)  LOG_AT(LL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LL_DEBUG, __VA_ARGS__)
#define log_trace(...) LOG_AT(LL_TRACE, __VA_ARGS__)

#endif
