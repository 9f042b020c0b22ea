/*
 * daemon: what makes linkerd-tcp a well-behaved system service.
 *
 *   - detaching (-d): double fork, a new session, cwd /, stdio on
 *     /dev/null.  The process that ran `linkerd-tcp -d` waits until the
 *     daemon has bound its listeners and started (or failed) and exits
 *     with the daemon's startup status, so an init script knows the
 *     outcome;
 *   - the pidfile (-p): locked with flock(2) for the daemon's lifetime, so
 *     a second instance is refused while the first runs and a pidfile left
 *     behind by a dead process (not locked) is taken over; a symbolic
 *     link, or anything but a regular file with one link, is refused
 *     rather than truncated;
 *   - the privilege drop to the configured user/group after binding;
 *   - readiness and status notification to systemd: the sd_notify(3)
 *     datagram protocol, spoken directly (no libsystemd), so every build
 *     notifies when $NOTIFY_SOCKET is set.
 *
 * MUST be called from the main thread, and all but daemon_notify and
 * pidfile_remove before any other thread is started (fork and setuid).
 */
#ifndef LTCP_DAEMON_H
#define LTCP_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Opens and locks the pidfile (made absolute against the current
 * directory).  -1 with err when another live instance holds it, it cannot
 * be created, or it is a symbolic link, not a regular file, or has more
 * than one link.  The pid is written later, by pidfile_write. */
int pidfile_open(const char *path, char *err, size_t errlen) MUSTCHECK;
/* Writes the current pid; -1 with err on failure. */
int pidfile_write(char *err, size_t errlen) MUSTCHECK;
/* Removes the pidfile (empties it when its directory is no longer
 * writable after a privilege drop) and releases the lock.  No-op without
 * a pidfile. */
void pidfile_remove(void);

/* Detaches from the terminal.  Returns 0 in the daemon; the original
 * process never returns: it exits with the status given to
 * daemon_started (1 when the daemon dies first).  -1 with err if the
 * first fork fails. */
int daemon_detach(char *err, size_t errlen) MUSTCHECK;
/* Reports the startup outcome to the process waiting in daemon_detach;
 * on success (0) stderr moves to /dev/null too.  No-op when not detached
 * or already reported. */
void daemon_started(int status);
bool daemon_detached(void);

/* Switches to user and/or group (either may be NULL; names or numeric
 * ids).  As root: supplementary groups, gid, then uid, and checks that
 * root cannot be regained.  Not as root: succeeds only if already running
 * as them.  -1 with err on any failure. */
int privileges_drop(const char *user, const char *group, char *err, size_t errlen) MUSTCHECK;

/* Sends a printf-style state ("READY=1", "STATUS=...") to the socket in
 * $NOTIFY_SOCKET, as sd_notify(3) does; no-op when it is unset.  A socket
 * it cannot use is logged (a warning the first time) and ignored. */
void daemon_notify(const char *fmt, ...) PRINTF(1, 2);

#endif
