/*
 * main: command line, startup, and the main thread's signal loop.
 *
 * Every signal is blocked before any thread starts; the main thread then
 * takes SIGHUP (reload), SIGTERM and SIGINT (graceful stop) with sigwait,
 * so no other thread ever runs a signal handler.
 *
 * Startup order: parse the command line → load and check the configuration
 * → lock the pidfile → detach (-d) → bind every listener → drop privileges
 * (user/group) → start the threads → write the pidfile, tell the waiting
 * parent and systemd that we are ready.  Nothing runs as root after the
 * drop, and no thread exists before it or before the fork.
 */
#include "auto-config.h"

#include "admin.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "runtime.h"
#include "tls.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <json-c/json_c_version.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

struct options {
	const char *config_path;
	const char *pidfile;
	bool check_only;
	bool daemon;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: linkerd-tcp [OPTIONS] <PATH>\n"
		"A TCP load balancer for the linkerd service mesh.\n"
		"\n"
		"  PATH                 configuration file (YAML or JSON), or - for stdin\n"
		"  -n, --check-config   check the configuration, print \"configuration OK\"\n"
		"  -d, --daemon         detach and log to syslog (default: foreground, stderr)\n"
		"  -p, --pidfile PATH   write the process id to PATH while running; refuse\n"
		"                       to start when a running instance holds it\n"
		"  -V, --version        print the version and the library versions\n"
		"  -h, --help           print this help\n"
		"\n"
		"Signals: SIGHUP reloads the configuration; SIGTERM and SIGINT stop\n"
		"accepting, let open connections finish (admin.grace_secs), then exit.\n"
		"Environment: LINKERD_TCP_LOG=error|warn|info|debug|trace (or RUST_LOG).\n");
}

static void version(void)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	printf("linkerd-tcp %s\n", PACKAGE_VERSION);
	printf("GnuTLS %s\n", gnutls_check_version(NULL));
	printf("libyaml %s\n", yaml_get_version_string());
	printf("libcurl %s\n", cv->version);
	printf("json-c %s\n", json_c_version());
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "check-config", no_argument, NULL, 'n' },  { "daemon", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'p' }, { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "ndp:Vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			o->check_only = true;
			break;
		case 'd':
			o->daemon = true;
			break;
		case 'p':
			if (!optarg[0]) {
				fprintf(stderr, "linkerd-tcp: --pidfile needs a path\n");
				usage(stderr);
				return -1;
			}
			o->pidfile = optarg;
			break;
		case 'V':
			version();
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "linkerd-tcp: %s\n",
			optind == argc ? "missing configuration PATH" : "too many arguments");
		usage(stderr);
		return -1;
	}
	o->config_path = argv[optind];
	return 0;
}

/* Loads the configuration, printing every problem; NULL on error. */
static struct config *load_config(const char *path, bool to_log)
{
	struct cfg_diag diag = { 0 };
	struct config *cfg = config_load(path, &diag);

	/* Key and certificate files are part of the configuration: check them too. */
	if (cfg && tls_check_config(cfg, &diag) > 0) {
		config_unref(cfg);
		cfg = NULL;
	}

	for (size_t i = 0; i < diag.nwarn; i++) {
		if (to_log)
			log_warn("%s", diag.warns[i]);
		else
			fprintf(stderr, "warning: %s\n", diag.warns[i]);
	}
	for (size_t i = 0; i < diag.n; i++) {
		if (to_log)
			log_error("%s", diag.msgs[i]);
		else
			fprintf(stderr, "%s\n", diag.msgs[i]);
	}
	if (diag.more && to_log)
		log_error("... and %zu more error(s) in the configuration", diag.more);
	if (!cfg && !to_log)
		fprintf(stderr, "linkerd-tcp: %zu error(s) in the configuration%s\n",
			diag.n + diag.more, diag.more ? " (the first ones are listed)" : "");
	cfg_diag_clear(&diag);
	return cfg;
}

/* Opens (or reopens) the access log the configuration names, if any. */
static int open_access_log(const struct config *cfg)
{
	char err[512];

	if (log_access_open(cfg->access_log, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

static void reload(struct runtime *rt, struct admin *admin, const char *path)
{
	struct config *cfg;
	int rc = -1;

	runtime_reload_begin(rt);
	if (strcmp(path, "-") == 0) {
		log_warn("reload: the configuration came from stdin; nothing to reload");
		runtime_note_reload(rt, false);
		return;
	}
	daemon_notify("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading %s", (long long)now_us(),
		      path);
	log_info("reload: reading %s", path);
	cfg = load_config(path, true);
	if (!cfg) {
		log_error("reload failed: the configuration has errors; keeping the running one");
	} else {
		rc = runtime_reload(rt, cfg);
		if (rc == 0)
			admin_update(admin, &cfg->admin);
		config_unref(cfg);
	}
	runtime_note_reload(rt, rc == 0);
	open_access_log(runtime_config(rt)); /* reopened on every SIGHUP, for log rotation */
	daemon_notify(
		"READY=1\nSTATUS=running %zu prox%s; %s", runtime_proxies(rt),
		runtime_proxies(rt) == 1 ? "y" : "ies",
		rc == 0 ? "configuration reloaded"
			: "the last reload failed, see the log; kept the running configuration");
}

/* Stop accepting, let connections finish within the grace period; a second
 * SIGTERM or SIGINT cuts them at once. */
static void drain(struct runtime *rt, const sigset_t *set)
{
	int64_t grace_ms = runtime_config(rt)->admin.grace_secs * 1000;
	int64_t deadline = now_ms() + grace_ms;
	unsigned left;

	runtime_stop_accepting(rt);
	left = runtime_open(rt);
	daemon_notify("STOPPING=1\nSTATUS=stopping: draining %u connection(s)", left);
	if (left)
		log_info("draining %u connection(s) for up to %lld s", left,
			 (long long)(grace_ms / 1000));
	while (left > 0 && now_ms() < deadline) {
		struct timespec tick = { 0, 100 * 1000 * 1000 };
		int sig = sigtimedwait(set, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			log_warn("second stop signal: closing %u connection(s) now", left);
			break;
		}
		left = runtime_wait_closed(rt, MIN(now_ms() + 100, deadline));
	}
	left = runtime_open(rt);
	if (left) {
		log_warn("closing %u connection(s) still open", left);
		runtime_abort_connections(rt);
		(void)runtime_wait_closed(rt, now_ms() + 5000);
	}
}

/* Binds, drops privileges, starts the threads and the admin server, and
 * announces readiness; NULL (logged) on failure. */
static struct runtime *start(struct config *cfg, struct admin **admin)
{
	struct runtime *rt;
	char err[512] = "";

	rt = runtime_bind(cfg);
	if (!rt)
		return NULL;
	/* Opened before dropping privileges, like the listeners. */
	if (open_access_log(cfg) < 0) {
		runtime_free(rt);
		return NULL;
	}
	if (privileges_drop(cfg->user, cfg->group, err, sizeof(err)) < 0) {
		log_error("%s; refusing to run with the privileges it was started with", err);
		runtime_free(rt);
		return NULL;
	}
	if (runtime_run(rt) < 0) {
		runtime_free(rt);
		return NULL;
	}
	*admin = admin_start(&cfg->admin, rt, err, sizeof(err));
	if (!*admin) {
		log_error("%s", err);
		runtime_free(rt);
		return NULL;
	}
	if (pidfile_write(err, sizeof(err)) < 0) {
		log_error("%s", err);
		admin_stop(*admin);
		runtime_free(rt);
		return NULL;
	}
	log_info("linkerd-tcp %s running (pid %ld)", PACKAGE_VERSION, (long)getpid());
	daemon_started(0);
	log_copy_to_stderr(-1);
	daemon_notify("READY=1\nSTATUS=running %zu prox%s", runtime_proxies(rt),
		      runtime_proxies(rt) == 1 ? "y" : "ies");
	return rt;
}

static int serve(const char *path, struct config *cfg)
{
	struct runtime *rt;
	struct admin *admin = NULL;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	rt = start(cfg, &admin);
	if (!rt)
		return EXIT_RUNTIME;
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(rt, admin, path);
		} else if (sig == SIGTERM || sig == SIGINT) {
			log_info("received %s; shutting down", strsignal(sig));
			break;
		}
	}
	drain(rt, &set);
	admin_stop(admin);
	runtime_free(rt);
	log_info("stopped");
	return 0;
}

/* Locks the pidfile and detaches, as the options ask; exits on failure. */
static void daemonize(const struct options *o)
{
	char err[512] = "";

	if (o->pidfile && pidfile_open(o->pidfile, err, sizeof(err)) < 0) {
		fprintf(stderr, "linkerd-tcp: %s\n", err);
		exit(EXIT_RUNTIME);
	}
	if (!o->daemon)
		return;
	if (daemon_detach(err, sizeof(err)) < 0) {
		fprintf(stderr, "linkerd-tcp: %s\n", err);
		pidfile_remove();
		exit(EXIT_RUNTIME);
	}
	/* From here on the log goes to syslog; until the daemon has started,
	 * warnings and errors also reach the terminal that started it. */
	log_use_syslog(true);
	log_copy_to_stderr(LL_WARN);
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct config *cfg;
	const char *bad = NULL;
	char *abs_path = NULL;
	sigset_t all;
	int rc;

	if (parse_args(argc, argv, &o) < 0)
		return EXIT_USAGE;
	if (log_init_from_env(&bad) < 0) {
		fprintf(stderr, "linkerd-tcp: %s must be one of error, warn, info, debug, trace\n",
			bad);
		return EXIT_USAGE;
	}
	/* Threads inherit this mask; only the main thread takes signals, in sigwait. */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* A detached daemon runs in /: keep reloads and relative paths working. */
	if (o.daemon && strcmp(o.config_path, "-") != 0 && o.config_path[0] != '/') {
		char *cwd = getcwd(NULL, 0);
		if (cwd) {
			abs_path = xasprintf("%s/%s", cwd, o.config_path);
			o.config_path = abs_path;
			free(cwd);
		}
	}
	cfg = load_config(o.config_path, false);
	if (!cfg) {
		free(abs_path);
		return EXIT_USAGE;
	}
	if (o.check_only) {
		printf("configuration OK\n");
		config_unref(cfg);
		free(abs_path);
		return 0;
	}
	daemonize(&o);
	if (gnutls_global_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatal("cannot initialize the TLS and HTTP libraries");
	rc = serve(o.config_path, cfg);
	daemon_started(rc);
	pidfile_remove();
	config_unref(cfg);
	free(abs_path);
	curl_global_cleanup();
	gnutls_global_deinit();
	return rc;
}
