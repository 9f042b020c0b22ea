/*
 * tls: GnuTLS behind a small interface, so that no other module includes
 * <gnutls/gnutls.h>.
 *
 * Credentials are immutable, reference-counted snapshots loaded from the
 * files a server's or a client's `tls` section names: a listener holds its
 * server credentials, a proxy its client credentials, and every connection
 * holds a reference to the ones it started with, so a reload (key rotation)
 * gives new connections new credentials while open ones keep theirs.
 * Loading happens on the main thread; sessions are created, used and freed
 * by the relay thread that owns the connection.
 *
 * Sessions run over non-blocking sockets.  tls_read and tls_write behave
 * like recv and send: they return a byte count, 0 for EOF (a close_notify
 * or the peer's TCP EOF), or -1 with errno EAGAIN when the socket must
 * become ready first (tls_wants says for what: POLLIN or POLLOUT).
 */
#ifndef LTCP_TLS_H
#define LTCP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct tls_creds;
struct tls_conn;

#define TLS_ERRLEN 512

/* Loads a server section's keys and certificates; NULL with err on failure.
 * Warnings (e.g. a key file readable by others) go to warn(msg, arg). */
struct tls_creds *tls_server_creds_load(const struct cfg_server_tls *cfg, char *err,
					void (*warn)(const char *msg, void *arg), void *arg);
/* Loads a client section: trust roots (system store when none are given; a
 * missing file among several is a warning), client certificate, ALPN. */
struct tls_creds *tls_client_creds_load(const struct cfg_client_tls *cfg, char *err,
					void (*warn)(const char *msg, void *arg), void *arg);
struct tls_creds *tls_creds_ref(struct tls_creds *c);
void tls_creds_unref(struct tls_creds *c);

/* Loads every TLS section of cfg to check it; problems go to diag as
 * FILE:LINE:COL messages.  Returns the number of errors. */
size_t tls_check_config(const struct config *cfg, struct cfg_diag *diag);

/* A session on fd (server side for server credentials, client otherwise). */
struct tls_conn *tls_conn_new(struct tls_creds *c, int fd, char *err);
void tls_conn_free(struct tls_conn *t);
/* Runs the handshake until deadline_ms (now_ms clock); a readable stop_fd
 * aborts it.  0, or -1 with err (which names a timeout, the peer's alert or
 * the verification failure). */
int tls_handshake(struct tls_conn *t, int64_t deadline_ms, int stop_fd, char *err);
ssize_t tls_read(struct tls_conn *t, void *buf, size_t len);
ssize_t tls_write(struct tls_conn *t, const void *buf, size_t len);
/* Sends close_notify, then half-closes the socket: 0, or -1 (errno EAGAIN: retry). */
int tls_shutdown_write(struct tls_conn *t);
/* Plaintext already decrypted and waiting: read it before polling. */
size_t tls_pending(struct tls_conn *t);
/* After EAGAIN: POLLIN or POLLOUT. */
short tls_wants(struct tls_conn *t);
/* The reason of the last failed tls_read/tls_write. */
const char *tls_last_error(struct tls_conn *t);

/* What was negotiated, for the logs ("-" when absent). */
const char *tls_version(struct tls_conn *t);
const char *tls_sni(struct tls_conn *t);
const char *tls_alpn(struct tls_conn *t);
const char *tls_peer(struct tls_conn *t);

#endif
