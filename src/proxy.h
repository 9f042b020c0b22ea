/*
 * proxy: one configured proxy at run time: its balancer, its listeners,
 * its current settings and its counters.
 *
 * The main thread creates, reconfigures and stops proxies.  Each listener
 * of a proxy is wrapped in a proxy_server (its server section, TLS
 * credentials and counters); its acceptor thread calls back into the proxy
 * to reserve a relay thread and a max_connections slot, then hands the
 * connection to the pool as a proxy_job.  Relay threads read the job's
 * snapshot and release it at teardown.  A proxy is reference counted: the
 * runtime holds one reference and every connection another, so a proxy
 * removed by a reload lives until its last connection ends.  p->lock
 * guards the settings (cfg, pc, each server's section and credentials)
 * and the admission count; it is never held across I/O.
 */
#ifndef LTCP_PROXY_H
#define LTCP_PROXY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "histogram.h"
#include "net.h"
#include "pool.h"

struct balancer;
struct listener;

/* Why a connection ended: the cause label of linkerd_tcp_closes_total. */
enum close_cause {
	CLOSE_DONE,           /* both directions reached EOF */
	CLOSE_NO_ENDPOINTS,   /* nothing to connect to (fail fast) */
	CLOSE_NOT_RESOLVED,   /* namerd never answered within the wait */
	CLOSE_CONNECT_FAILED, /* every attempt failed */
	CLOSE_CLIENT_TLS,     /* the client's TLS handshake failed */
	CLOSE_CLIENT_ERROR,   /* a read or write on the client failed */
	CLOSE_ENDPOINT_ERROR, /* a read or write on the endpoint failed */
	CLOSE_IDLE,           /* idle_timeout_secs */
	CLOSE_LIFETIME,       /* connection_lifetime_secs */
	CLOSE_SHUTDOWN,       /* cut at the end of the grace period */
	CLOSE_OVER_LIMIT,     /* refused at once: max_connections reached (policy refuse) */
	CLOSE_CLIENT_LIMIT,   /* refused at once: max_connections_per_client reached */
	CLOSE_DRAINED,        /* closed while idle during a drain */
	CLOSE_CAUSES
};
const char *close_cause_name(enum close_cause c);

/* Per listener address; entries live as long as the proxy (a listener
 * closed by a reload keeps its counters if its address comes back). */
struct server_stats {
	struct server_stats *next;
	char name[NETADDR_STRLEN];
	atomic_uint_fast64_t accepts;
	atomic_uint_fast64_t active;
	atomic_uint_fast64_t bytes_from_client;
	atomic_uint_fast64_t bytes_to_client;
	atomic_uint_fast64_t tls_handshake_failures; /* with clients */
	atomic_uint_fast64_t closes[CLOSE_CAUSES];
};

struct proxy_stats {
	atomic_uint_fast64_t connect_failures;      /* failed attempts, all endpoints */
	atomic_uint_fast64_t endpoint_tls_failures; /* failed handshakes with endpoints */
	struct histogram connect_latency;           /* accept -> endpoint ready */
	struct histogram duration;                  /* accept -> close */
};

struct proxy;

/* Builds a proxy from cfg->proxies[index] and binds its listeners;
 * NULL with err filled when a listener cannot bind or an endpoint cannot
 * be resolved.  Nothing accepts until proxy_start. */
struct proxy *proxy_new(struct config *cfg, size_t index, char *err, size_t errlen);
void proxy_start(struct proxy *p, struct pool *pool);
/* Stops accepting on every listener (closes them) and the namerd thread;
 * connections go on.  Main thread only, before it drops its reference. */
void proxy_stop(struct proxy *p);
struct proxy *proxy_ref(struct proxy *p);
/* Any thread; the last reference frees the proxy, which must be stopped. */
void proxy_unref(struct proxy *p);

/* Reload, in two steps: prepare binds new listeners and resolves
 * endpoints without changing anything visible (-1 with err on failure,
 * after which proxy_abort_reload undoes it); commit swaps settings,
 * endpoints and listeners. */
int proxy_prepare_reload(struct proxy *p, struct config *cfg, size_t index, char *err,
			 size_t errlen);
void proxy_commit_reload(struct proxy *p);
void proxy_abort_reload(struct proxy *p);

const char *proxy_label(const struct proxy *p);
struct balancer *proxy_balancer(struct proxy *p);
struct pool *proxy_pool(struct proxy *p);
struct proxy_stats *proxy_stats(struct proxy *p);
/* Calls fn for each listener address's counters, under the proxy's lock. */
void proxy_for_each_server(struct proxy *p, void (*fn)(const struct server_stats *, void *),
			   void *arg);
/* True when the proxy has endpoints to offer (static, or namerd answered). */
bool proxy_ready(struct proxy *p);
/* The proxy's namerd client, or NULL (static endpoints).  The pointer
 * changes only on the main thread under the runtime's write lock: call it
 * from the main thread or while holding the runtime's read lock. */
struct namerd *proxy_namerd(struct proxy *p);
/* Calls fn with each listener's bound address and whether it terminates
 * TLS; the same rule as proxy_namerd: main thread or the runtime's read lock. */
void proxy_for_each_listener(struct proxy *p, void (*fn)(const char *name, bool tls, void *arg),
			     void *arg);

/* One accepted connection as the pool hands it to a relay thread: the
 * client socket and a snapshot of the settings it was accepted under.  The
 * acceptor allocates and fills it (taking a reference to the proxy, the
 * listener, the configuration and the TLS credentials) after reserving a
 * relay thread and a max_connections slot; the relay gives all of it back
 * with proxy_job_release.  A parked connection goes back to the pool as the
 * same job (proxy_job_resume), with `conn` pointing at the relay's state. */
struct proxy_job {
	struct pool_job pj;
	void *conn; /* the relay's, once it ran: NULL for a new connection */
	int fd;     /* accepted client socket, non-blocking */
	struct netaddr peer;
	int64_t accept_us;
	struct proxy *proxy;
	struct config *cfg;
	const struct cfg_proxy *pc;
	const struct cfg_server *sc;
	char server[NETADDR_STRLEN];  /* the listener's bound address */
	struct tls_creds *server_tls; /* NULL: plaintext from the client */
	struct tls_creds *client_tls; /* NULL: plaintext to endpoints */
	struct server_stats *ss;      /* the listener's counters; live as long as the proxy */
	struct listener *listener;    /* accepted here: parks here */
	bool client_counted;          /* counted for max_connections_per_client */
	char sni[256];                /* routed by this SNI name ("" otherwise) */
};
/* The job of a pool job (relay_run's argument). */
struct proxy_job *proxy_job_of(struct pool_job *pj);
/* A parked connection woke up: queues its job for a relay thread; never blocks. */
void proxy_job_resume(struct proxy_job *job);
/* Relay thread, at teardown: frees the slot, drops the references, frees job. */
void proxy_job_release(struct proxy_job *job);

#endif
