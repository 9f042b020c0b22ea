#include "auto-config.h"

#include "daemon.h"

#include "log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ pidfile */

static int pid_fd = -1;
static char *pid_path;

static char *absolute(const char *path)
{
	char cwd[PATH_MAX];

	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return xstrdup(path);
	return xasprintf("%s/%s", cwd, path);
}

/* The pid written in the file open on fd, or 0. */
static long read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char *end;
	long pid;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

/* Explains why the pidfile at path could not be opened (errno e). */
static void open_error(const char *path, int e, char *err, size_t errlen)
{
	struct stat st;

	if (e == ELOOP && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		snprintf(err, errlen, "refusing the pidfile %s: it is a symbolic link", path);
	else
		snprintf(err, errlen, "cannot open the pidfile %s: %s", path, strerror(e));
}

/* Explains why the pidfile open on fd could not be locked (errno e). */
static void lock_error(int fd, const char *path, int e, char *err, size_t errlen)
{
	long pid = read_pid(fd);

	if (e == EWOULDBLOCK && pid)
		snprintf(err, errlen, "linkerd-tcp is already running as pid %ld (pidfile %s)", pid,
			 path);
	else if (e == EWOULDBLOCK)
		snprintf(err, errlen, "another linkerd-tcp is starting with the pidfile %s", path);
	else
		snprintf(err, errlen, "cannot lock the pidfile %s: %s", path, strerror(e));
}

/* Only a regular file with a single link may be truncated: anything else
 * (a device, a FIFO, a hard link to some other file) is not ours to
 * overwrite. */
static int check_file(const struct stat *st, const char *path, char *err, size_t errlen)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "refusing the pidfile %s: it is not a regular file", path);
		return -1;
	}
	if (st->st_nlink != 1) {
		snprintf(err, errlen, "refusing the pidfile %s: it has %lu hard links, not 1", path,
			 (unsigned long)st->st_nlink);
		return -1;
	}
	return 0;
}

/* One attempt at opening and locking the pidfile: 0 with the locked
 * descriptor in *fdp, 1 when the file was replaced meanwhile (try again),
 * -1 with err.  Never follows a symbolic link, and never blocks or takes a
 * controlling terminal when the path names a FIFO or a device. */
static int lock_once(const char *path, int *fdp, char *err, size_t errlen)
{
	int flags = O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
	int fd = open(path, flags, 0644);
	struct stat a, b;

	if (fd < 0) {
		open_error(path, errno, err, errlen);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		lock_error(fd, path, errno, err, errlen);
		goto fail;
	}
	/* The holder may have removed the file between our open and our
	 * lock: then we locked an unlinked file; start over. */
	if (fstat(fd, &a) < 0 || lstat(path, &b) < 0 || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev) {
		close(fd);
		return 1;
	}
	if (check_file(&a, path, err, errlen) < 0)
		goto fail;
	*fdp = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

int pidfile_open(const char *path, char *err, size_t errlen)
{
	char *abs = absolute(path);
	int fd = -1, rc = 1;
	long stale;

	for (int tries = 0; tries < 10 && rc == 1; tries++)
		rc = lock_once(abs, &fd, err, errlen);
	if (rc == 1)
		snprintf(err, errlen, "cannot lock the pidfile %s: it keeps changing", abs);
	if (rc != 0)
		goto fail;
	stale = read_pid(fd);
	if (stale && stale != (long)getpid())
		log_debug("pidfile %s names pid %ld, which no longer holds it; replacing it", abs,
			  stale);
	if (ftruncate(fd, 0) < 0) {
		snprintf(err, errlen, "cannot write the pidfile %s: %s", abs, strerror(errno));
		close(fd);
		goto fail;
	}
	pid_fd = fd;
	pid_path = abs;
	return 0;
fail:
	free(abs);
	return -1;
}

int pidfile_write(char *err, size_t errlen)
{
	char buf[32];
	int n;

	if (pid_fd < 0)
		return 0;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(pid_fd, 0) < 0 || pwrite(pid_fd, buf, (size_t)n, 0) != n) {
		snprintf(err, errlen, "cannot write the pidfile %s: %s", pid_path, strerror(errno));
		return -1;
	}
	return 0;
}

void pidfile_remove(void)
{
	if (pid_fd < 0)
		return;
	/* After a privilege drop the directory (e.g. /run) may not be ours
	 * any more: an empty pidfile then tells that nothing runs. */
	if (unlink(pid_path) < 0 && ftruncate(pid_fd, 0) < 0)
		log_warn("cannot remove the pidfile %s: %s", pid_path, strerror(errno));
	close(pid_fd);
	pid_fd = -1;
	free(pid_path);
	pid_path = NULL;
}

/* ------------------------------------------------------------------ detaching */

static int ready_fd = -1;
static bool detached;

static void to_dev_null(int fd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null < 0)
		return;
	if (null != fd) {
		dup2(null, fd);
		close(null);
	}
}

/* Closes every descriptor above stderr that the starting process left open
 * (a pipe of the shell or of start-stop-daemon must not stay open in the
 * daemon), except the pidfile and `keep`. */
static void close_inherited(int keep)
{
	DIR *d = opendir("/proc/self/fd");
	int fds[256], n = 0;
	struct dirent *e;

	if (!d) {
		for (int fd = 3; fd < 1024; fd++)
			if (fd != keep && fd != pid_fd)
				close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL && n < (int)ARRAY_SIZE(fds)) {
		int fd = atoi(e->d_name);
		if (fd > STDERR_FILENO && fd != dirfd(d) && fd != keep && fd != pid_fd)
			fds[n++] = fd;
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* The original process: waits for the daemon's startup status. */
static noreturn void wait_started(pid_t child, int fd)
{
	unsigned char status = 1;
	sigset_t stop;
	ssize_t n;

	/* Let ^C and kill end the wait (all signals are blocked by now). */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	do
		n = read(fd, &status, 1);
	while (n < 0 && errno == EINTR);
	_exit(n == 1 ? status : 1);
}

int daemon_detach(char *err, size_t errlen)
{
	int p[2];
	pid_t pid;

	fflush(NULL);
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot detach: pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "cannot detach: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		wait_started(pid, p[0]);
	}
	close(p[0]);
	/* The first child leads a new session without a terminal, then leaves
	 * so that the daemon, not a session leader, can never acquire one. */
	if (setsid() < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);
	ready_fd = p[1];
	detached = true;
	close_inherited(ready_fd);
	if (chdir("/") < 0)
		log_warn("cannot change directory to /: %s", strerror(errno));
	to_dev_null(STDIN_FILENO);
	to_dev_null(STDOUT_FILENO);
	/* stderr stays until daemon_started: startup errors reach the operator. */
	return 0;
}

void daemon_started(int status)
{
	unsigned char c = (unsigned char)status;

	if (ready_fd < 0)
		return;
	if (status == 0)
		to_dev_null(STDERR_FILENO);
	if (write(ready_fd, &c, 1) != 1)
		log_debug("the starting process is gone: %s", strerror(errno));
	close(ready_fd);
	ready_fd = -1;
}

bool daemon_detached(void)
{
	return detached;
}

/* ------------------------------------------------------------------ privileges */

static bool numeric(const char *s, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *out < (unsigned long)UINT_MAX;
}

/* The uid, gid and user name (NULL when unknown) that user and group name. */
static int privileges_lookup(const char *user, const char *group, uid_t *uid, gid_t *gid,
			     char **name, char *err, size_t errlen)
{
	unsigned long id;

	if (user) {
		struct passwd *pw = getpwnam(user);
		if (!pw && !numeric(user, &id)) {
			snprintf(err, errlen, "user '%s' does not exist", user);
			return -1;
		}
		if (!pw)
			pw = getpwuid((uid_t)id);
		*uid = pw ? pw->pw_uid : (uid_t)id;
		*gid = pw ? pw->pw_gid : (gid_t)id;
		*name = pw ? xstrdup(pw->pw_name) : NULL;
	}
	if (group) {
		struct group *gr = getgrnam(group);
		if (!gr && !numeric(group, &id)) {
			snprintf(err, errlen, "group '%s' does not exist", group);
			return -1;
		}
		*gid = gr ? gr->gr_gid : (gid_t)id;
	}
	return 0;
}

/* Switches groups then user for good, and checks root cannot come back. */
static int privileges_switch(uid_t uid, gid_t gid, const char *name, char *err, size_t errlen)
{
	if (name ? initgroups(name, gid) < 0 : setgroups(1, &gid) < 0) {
		snprintf(err, errlen, "cannot set the supplementary groups: %s", strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) < 0) {
		snprintf(err, errlen, "cannot switch to group %lu: %s", (unsigned long)gid,
			 strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) < 0) {
		snprintf(err, errlen, "cannot switch to user %lu: %s", (unsigned long)uid,
			 strerror(errno));
		return -1;
	}
	if (uid != 0 && (setuid(0) == 0 || geteuid() == 0 || getuid() == 0)) {
		snprintf(err, errlen, "still able to regain root after switching to user %lu",
			 (unsigned long)uid);
		return -1;
	}
	return 0;
}

int privileges_drop(const char *user, const char *group, char *err, size_t errlen)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	char *name = NULL;
	int rc = -1;

	if (!user && !group)
		return 0;
	if (privileges_lookup(user, group, &uid, &gid, &name, err, errlen) < 0)
		goto out;
	if (geteuid() != 0) {
		/* Fine if we already are who the configuration asks for (e.g. a
		 * systemd unit with User=); anything else needs root. */
		if (uid != geteuid() || uid != getuid() || gid != getegid() || gid != getgid()) {
			snprintf(err, errlen,
				 "cannot switch to user %s, group %s: not running as root",
				 user ? user : "(unchanged)", group ? group : "(unchanged)");
			goto out;
		}
	} else if (privileges_switch(uid, gid, name, err, errlen) < 0) {
		goto out;
	} else {
		log_info("running as uid %lu (%s), gid %lu", (unsigned long)uid, name ? name : "-",
			 (unsigned long)gid);
	}
	rc = 0;
out:
	free(name);
	return rc;
}

/* ------------------------------------------------------------------ systemd */

/* The sd_notify(3) protocol, spoken directly so that every build notifies:
 * one datagram of newline-separated VAR=value lines to the AF_UNIX socket
 * that $NOTIFY_SOCKET names, a path or, with a leading '@', an abstract
 * name.  Problems are logged (the first as a warning) and never fatal. */

static atomic_bool notify_warned;

static void notify_failed(const char *name, const char *why)
{
	if (!atomic_exchange(&notify_warned, true))
		log_warn("cannot notify systemd at NOTIFY_SOCKET=%s: %s; carrying on without", name,
			 why);
	else
		log_debug("cannot notify systemd at NOTIFY_SOCKET=%s: %s", name, why);
}

/* The address that name ("/path" or "@abstract") stands for, and its exact
 * length (an abstract name is not NUL-terminated); -1 with why if none. */
static int notify_address(const char *name, struct sockaddr_un *sa, socklen_t *len,
			  const char **why)
{
	size_t n = strlen(name);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (name[0] == '/' && n < sizeof(sa->sun_path)) {
		memcpy(sa->sun_path, name, n + 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		return 0;
	}
	if (name[0] == '@' && n > 1 && n <= sizeof(sa->sun_path)) {
		memcpy(sa->sun_path + 1, name + 1, n - 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		return 0;
	}
	if (name[0] == '/' || name[0] == '@')
		*why = n > 1 ? "the name is too long for a unix socket address" : "an empty name";
	else
		*why = "not an absolute path or an @abstract name";
	return -1;
}

void daemon_notify(const char *fmt, ...)
{
	const char *name = getenv("NOTIFY_SOCKET");
	const char *why = NULL;
	struct sockaddr_un sa;
	socklen_t salen;
	char buf[1024];
	va_list ap;
	int fd = -1, n;

	if (!name || !name[0])
		return;
	if (notify_address(name, &sa, &salen, &why) < 0)
		goto fail;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0) {
		why = "cannot format the message";
		goto fail;
	}
	n = MIN(n, (int)sizeof(buf) - 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    sendto(fd, buf, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) != n) {
		why = strerror(errno);
		goto fail;
	}
	close(fd);
	return;
fail:
	notify_failed(name, why);
	if (fd >= 0)
		close(fd);
}
