/* loadgen: the small load tools that bench/run needs and that Debian's tools
 * do not provide.  Loopback only; every mode is bounded in time.
 *
 *   loadgen idle HOST PORT N [STALL_SECS]
 *                                       open N idle connections, print
 *                                       "connected C failed F", then on each
 *                                       stdin line "check" print "alive A";
 *                                       EOF or "quit" closes all and exits.
 *                                       Connects still pending when none has
 *                                       completed for STALL_SECS (default 5;
 *                                       a listener whose backlog is full
 *                                       drops SYNs) are given up as failed.
 *   loadgen wake HOST PORT N [PAUSE_MS] open N connections to an echo service,
 *                                       then on each, one at a time, a 64-byte
 *                                       round trip to warm it up and one that
 *                                       is measured ("unparked"); then silence
 *                                       for PAUSE_MS (default 1500) and one
 *                                       more round trip on each, one at a time
 *                                       ("woken": the first bytes after the
 *                                       pause).  Prints one JSON object.
 *   loadgen echo PORT SECS              accept on 127.0.0.1:PORT and send back
 *                                       what arrives (one epoll thread), at
 *                                       most SECS seconds
 *   loadgen tlsconn HOST PORT CONC SECS [SNI]
 *                                       full TLS handshakes (no resumption) at
 *                                       concurrency CONC, each followed by one
 *                                       HTTP request ("GET /64", Connection:
 *                                       close) read to EOF
 *   loadgen tlsbulk HOST PORT STREAMS SECS [SNI]
 *                                       TLS bulk upload through STREAMS
 *                                       connections for SECS seconds
 *   loadgen sink PORT SECS              accept on 127.0.0.1:PORT and discard
 *                                       what arrives, at most SECS seconds
 *
 * tlsconn and tlsbulk print one JSON object on stdout.  Their ClientHello
 * carries the server name SNI (default "bench.test"): SNI-routing proxies
 * choose the backend by it.  Certificates are not verified: the peers under
 * test use a throw-away self-signed certificate.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define IDLE_MAX_SECS 600 /* an idle holder never outlives this */

static struct sockaddr_in target;
static double deadline;
static atomic_uint_fast64_t n_ok, n_err, n_bytes;
static gnutls_certificate_credentials_t xcred;
static const char *priority = "NORMAL";
static const char *sni = "bench.test";

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void set_target(const char *host, const char *port)
{
	memset(&target, 0, sizeof(target));
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)atoi(port));
	if (inet_pton(AF_INET, host, &target.sin_addr) != 1) {
		fprintf(stderr, "loadgen: %s: not an IPv4 address\n", host);
		exit(2);
	}
	if ((ntohl(target.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "loadgen: %s: loopback (127.0.0.0/8) only\n", host);
		exit(2);
	}
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int tcp_connect(void)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ------------------------------------------------------------------ idle */

static int mode_idle(int n, double stall)
{
	int *fds = calloc((size_t)n, sizeof(int));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int connected = 0, failed = 0, pending = 0, opened = 0;
	double stop = now() + 60, progress = now();
	char line[64];

	if (!fds || ep < 0)
		die("setup");
	/* Open in batches so the listener's backlog never overflows. */
	while ((opened < n || pending > 0) && now() < stop) {
		while (opened < n && pending < 256) {
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd < 0)
				die("socket");
			fds[opened] = fd;
			if (connect(fd, (struct sockaddr *)&target, sizeof(target)) == 0) {
				connected++;
			} else if (errno == EINPROGRESS) {
				struct epoll_event ev = { .events = EPOLLOUT,
							  .data.u32 = (uint32_t)opened };
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				pending++;
			} else {
				failed++;
				close(fd);
				fds[opened] = -1;
			}
			opened++;
		}
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 100);
		if (k > 0)
			progress = now();
		else if (now() - progress > stall)
			break; /* the listener stopped completing handshakes */
		for (int i = 0; i < k; i++) {
			int idx = (int)evs[i].data.u32, err = 0;
			socklen_t len = sizeof(err);
			getsockopt(fds[idx], SOL_SOCKET, SO_ERROR, &err, &len);
			epoll_ctl(ep, EPOLL_CTL_DEL, fds[idx], NULL);
			pending--;
			if (err) {
				failed++;
				close(fds[idx]);
				fds[idx] = -1;
			} else {
				connected++;
			}
		}
	}
	if (pending > 0) { /* given up: close what is still connecting */
		for (int i = 0; i < opened; i++) {
			int err = 0;
			socklen_t len = sizeof(err);
			struct pollfd p = { .fd = fds[i], .events = POLLOUT };
			if (fds[i] >= 0 &&
			    (poll(&p, 1, 0) != 1 ||
			     getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
			     err != 0)) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
		connected = 0;
		for (int i = 0; i < opened; i++)
			connected += fds[i] >= 0;
	}
	failed = n - connected;
	printf("connected %d failed %d\n", connected, failed);
	fflush(stdout);
	alarm(IDLE_MAX_SECS);
	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "check", 5) == 0) {
			int alive = 0;
			for (int i = 0; i < opened; i++) {
				struct pollfd p = { .fd = fds[i], .events = POLLIN | POLLRDHUP };
				if (fds[i] >= 0 && poll(&p, 1, 0) == 0)
					alive++;
			}
			printf("alive %d\n", alive);
			fflush(stdout);
		} else if (strncmp(line, "quit", 4) == 0) {
			break;
		}
	}
	for (int i = 0; i < opened; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return 0;
}

/* ------------------------------------------------------------------ wake */

#define WAKE_MSG 64

/* A blocking connect bounded by ms milliseconds; TCP_NODELAY. */
static int tcp_connect_ms(int ms)
{
	int one = 1, err = 0;
	socklen_t len = sizeof(err);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		if (errno != EINPROGRESS || poll(&p, 1, ms) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* One WAKE_MSG-byte round trip on a non-blocking socket: microseconds, or
 * -1 if the echo did not come back whole within 2 seconds. */
static double round_trip(int fd, unsigned seq)
{
	char msg[WAKE_MSG], buf[WAKE_MSG];
	size_t got = 0;
	double t0, limit;

	memset(msg, 'w', sizeof(msg));
	memcpy(msg, &seq, sizeof(seq));
	msg[WAKE_MSG - 1] = '\n';
	t0 = now();
	limit = t0 + 2.0;
	if (write(fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		return -1;
	while (got < sizeof(buf)) {
		ssize_t k = read(fd, buf + got, sizeof(buf) - got);
		if (k > 0) {
			got += (size_t)k;
			continue;
		}
		if (k == 0 || (errno != EAGAIN && errno != EINTR))
			return -1;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)((limit - now()) * 1000) + 1;
		if (left <= 0 || poll(&p, 1, left) < 0)
			return -1;
	}
	if (memcmp(msg, buf, sizeof(buf)) != 0)
		return -1;
	return (now() - t0) * 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The p-th percentile (0 < p <= 1, nearest rank) of k sorted values. */
static double pct(const double *v, int k, double p)
{
	int i = (int)(p * k + 0.999999) - 1;

	if (k == 0)
		return 0;
	return v[i < 0 ? 0 : (i >= k ? k - 1 : i)];
}

static int mode_wake(int n, int pause_ms)
{
	int *fds = calloc((size_t)n, sizeof(int));
	double *unparked = calloc((size_t)n, sizeof(double));
	double *woken = calloc((size_t)n, sizeof(double));
	int connected = 0, errors = 0, nu = 0, nw = 0;
	double t_open, t_first;

	if (!fds || !unparked || !woken)
		die("setup");
	alarm(IDLE_MAX_SECS);
	t_open = now();
	for (int i = 0; i < n; i++) {
		fds[i] = tcp_connect_ms(5000);
		connected += fds[i] >= 0;
	}
	t_open = now() - t_open;
	/* Unparked: a warm-up round trip (the connection may have waited
	 * longer than a park delay since it was opened), then the measured one
	 * right after it. */
	t_first = now();
	for (int i = 0; i < n; i++) {
		double r;
		if (fds[i] < 0)
			continue;
		if (round_trip(fds[i], 2u * (unsigned)i) < 0 ||
		    (r = round_trip(fds[i], 2u * (unsigned)i + 1)) < 0) {
			errors++;
			close(fds[i]);
			fds[i] = -1;
			continue;
		}
		unparked[nu++] = r;
	}
	t_first = now() - t_first;
	/* Every connection now silent for at least pause_ms: the last one was
	 * used just now, the others before it. */
	usleep((useconds_t)pause_ms * 1000);
	for (int i = 0; i < n; i++) {
		double r;
		if (fds[i] < 0)
			continue;
		if ((r = round_trip(fds[i], 0xffff0000u + (unsigned)i)) < 0) {
			errors++;
			continue;
		}
		woken[nw++] = r;
	}
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	qsort(unparked, (size_t)nu, sizeof(double), cmp_double);
	qsort(woken, (size_t)nw, sizeof(double), cmp_double);
	printf("{\"n\": %d, \"connected\": %d, \"errors\": %d, \"pause_ms\": %d, "
	       "\"open_secs\": %.3f, \"first_pass_secs\": %.3f, "
	       "\"unparked\": %d, \"unparked_p50_us\": %.1f, \"unparked_p99_us\": %.1f, "
	       "\"unparked_max_us\": %.1f, "
	       "\"woken\": %d, \"woken_p50_us\": %.1f, \"woken_p99_us\": %.1f, "
	       "\"woken_max_us\": %.1f}\n",
	       n, connected, errors, pause_ms, t_open, t_first, nu, pct(unparked, nu, 0.5),
	       pct(unparked, nu, 0.99), nu ? unparked[nu - 1] : 0.0, nw, pct(woken, nw, 0.5),
	       pct(woken, nw, 0.99), nw ? woken[nw - 1] : 0.0);
	return nw > 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ echo */

static int mode_echo(double secs)
{
	int one = 1;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	static char buf[1 << 16];

	if (lfd < 0 || ep < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&target, sizeof(target)) < 0 || listen(lfd, 4096) < 0)
		die("listen");
	struct epoll_event lev = { .events = EPOLLIN, .data.fd = lfd };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
		die("epoll_ctl");
	alarm((unsigned)secs);
	for (;;) {
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, -1);
		if (k < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c;
				while ((c = accept4(lfd, NULL, NULL,
						    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct epoll_event ev = { .events = EPOLLIN, .data.fd = c };
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
						close(c);
				}
				if (errno == EMFILE || errno == ENFILE)
					usleep(10000);
				continue;
			}
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				close(fd); /* also leaves the epoll set */
				continue;
			}
			/* Small messages: the send buffer has room; else wait for it. */
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(fd, buf + off, (size_t)(n - off));
				if (w > 0) {
					off += w;
				} else if (w < 0 && errno == EAGAIN) {
					struct pollfd p = { .fd = fd, .events = POLLOUT };
					if (poll(&p, 1, 2000) != 1)
						break;
				} else if (!(w < 0 && errno == EINTR)) {
					break;
				}
			}
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ TLS */

static gnutls_session_t tls_open(int fd)
{
	gnutls_session_t s;
	int rc;

	if (gnutls_init(&s, GNUTLS_CLIENT) < 0)
		return NULL;
	if (gnutls_priority_set_direct(s, priority, NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, xcred) < 0) {
		gnutls_deinit(s);
		return NULL;
	}
	gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni));
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, 5000);
	do {
		rc = gnutls_handshake(s);
	} while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0) {
		gnutls_deinit(s);
		return NULL;
	}
	return s;
}

static void *tlsconn_worker(void *arg)
{
	static const char req[] = "GET /64 HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
	char buf[4096], head[12];
	(void)arg;

	while (now() < deadline) {
		int fd = tcp_connect();
		gnutls_session_t s;
		size_t got = 0;
		bool ok = false;
		ssize_t n;

		if (fd < 0) {
			atomic_fetch_add(&n_err, 1);
			usleep(1000);
			continue;
		}
		struct timeval tv = { .tv_sec = 5 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		s = tls_open(fd);
		if (s) {
			if (gnutls_record_send(s, req, sizeof(req) - 1) ==
			    (ssize_t)(sizeof(req) - 1)) {
				while ((n = gnutls_record_recv(s, buf, sizeof(buf))) > 0 ||
				       n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
					if (n <= 0)
						continue;
					if (got < sizeof(head))
						memcpy(head + got, buf,
						       MIN((size_t)n, sizeof(head) - got));
					got += (size_t)n;
				}
				ok = got >= 64 && memcmp(head, "HTTP/1.1 200", 12) == 0;
			}
			gnutls_bye(s, GNUTLS_SHUT_WR);
			gnutls_deinit(s);
		}
		close(fd);
		atomic_fetch_add(ok ? &n_ok : &n_err, 1);
	}
	return NULL;
}

static void *tlsbulk_worker(void *arg)
{
	static char chunk[1 << 16];
	(void)arg;
	int fd = tcp_connect();
	gnutls_session_t s;

	if (fd < 0) {
		atomic_fetch_add(&n_err, 1);
		return NULL;
	}
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	s = tls_open(fd);
	if (!s) {
		atomic_fetch_add(&n_err, 1);
		close(fd);
		return NULL;
	}
	while (now() < deadline) {
		ssize_t n = gnutls_record_send(s, chunk, sizeof(chunk));
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0) {
			fprintf(stderr, "loadgen: tlsbulk: %s\n", gnutls_strerror((int)n));
			atomic_fetch_add(&n_err, 1);
			break;
		}
		atomic_fetch_add(&n_bytes, (uint64_t)n);
	}
	atomic_fetch_add(&n_ok, 1);
	gnutls_deinit(s);
	close(fd);
	return NULL;
}

static int run_threads(void *(*fn)(void *), int nthreads, double secs, bool bulk)
{
	pthread_t *t = calloc((size_t)nthreads, sizeof(*t));
	pthread_attr_t attr;
	double start;
	int started = 0;

	gnutls_global_init();
	gnutls_certificate_allocate_credentials(&xcred);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 << 10);
	start = now();
	deadline = start + secs;
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], &attr, fn, NULL) == 0)
			started++;
		else
			break;
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	double el = now() - start;
	uint64_t ok = atomic_load(&n_ok), err = atomic_load(&n_err), by = atomic_load(&n_bytes);
	if (bulk)
		printf("{\"streams\": %llu, \"errors\": %llu, \"bytes\": %llu, \"secs\": %.3f, "
		       "\"gbit_s\": %.4f}\n",
		       (unsigned long long)ok, (unsigned long long)err, (unsigned long long)by, el,
		       (double)by * 8 / el / 1e9);
	else
		printf("{\"ok\": %llu, \"errors\": %llu, \"secs\": %.3f, \"per_sec\": %.1f}\n",
		       (unsigned long long)ok, (unsigned long long)err, el, (double)ok / el);
	return ok > 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ sink */

static void *sink_worker(void *arg)
{
	int fd = (int)(intptr_t)arg;
	size_t size = 256 << 10;
	char *buf = malloc(size);

	while (buf && read(fd, buf, size) > 0)
		;
	free(buf);
	close(fd);
	return NULL;
}

static int mode_sink(double secs)
{
	int one = 1;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pthread_attr_t attr;

	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&target, sizeof(target)) < 0 || listen(lfd, 4096) < 0)
		die("listen");
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 128 << 10);
	alarm((unsigned)secs);
	for (;;) {
		pthread_t t;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				usleep(10000);
				continue;
			}
			die("accept");
		}
		if (pthread_create(&t, &attr, sink_worker, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen idle HOST PORT N [STALL_SECS] | "
			"wake HOST PORT N [PAUSE_MS] | tlsconn HOST PORT CONC SECS [SNI] | "
			"tlsbulk HOST PORT STREAMS SECS [SNI] | sink PORT SECS | echo PORT SECS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (getenv("LOADGEN_PRIORITY"))
		priority = getenv("LOADGEN_PRIORITY");
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "idle") == 0) {
		set_target(argv[2], argv[3]);
		return mode_idle(atoi(argv[4]), argc == 6 ? atof(argv[5]) : 5.0);
	}
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "wake") == 0 && atoi(argv[4]) > 0) {
		set_target(argv[2], argv[3]);
		return mode_wake(atoi(argv[4]), argc == 6 ? atoi(argv[5]) : 1500);
	}
	if (argc == 4 && strcmp(argv[1], "echo") == 0) {
		set_target("127.0.0.1", argv[2]);
		return mode_echo(atof(argv[3]));
	}
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "tlsconn") == 0) {
		set_target(argv[2], argv[3]);
		if (argc == 7 && argv[6][0])
			sni = argv[6];
		return run_threads(tlsconn_worker, atoi(argv[4]), atof(argv[5]), false);
	}
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "tlsbulk") == 0) {
		set_target(argv[2], argv[3]);
		if (argc == 7 && argv[6][0])
			sni = argv[6];
		return run_threads(tlsbulk_worker, atoi(argv[4]), atof(argv[5]), true);
	}
	if (argc == 4 && strcmp(argv[1], "sink") == 0) {
		set_target("127.0.0.1", argv[2]);
		return mode_sink(atof(argv[3]));
	}
	usage();
	return 2;
}
