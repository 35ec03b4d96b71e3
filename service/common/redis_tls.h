/* The TLS transport of a Redis connection: OpenSSL over the connection's non-blocking socket.
 * Certificate verification is on unless the settings turn it off: the chain against the system
 * trust store or a CA file, and the server's name (SNI and the certificate's names) against
 * tls_server_name or else the URL's host. redis_conn.c drives it; nothing else should. */
#ifndef KCHUB_REDIS_TLS_H
#define KCHUB_REDIS_TLS_H

#include "error.h"
#include "redis_conn.h"

#include <stddef.h>
#include <sys/types.h>

/* How a TLS call ended. The WANT results name the socket readiness to wait for before calling
 * again, which for TLS may be the opposite direction of the call (a read can need a write). */
enum redis_tls_io {
    REDIS_TLS_IO_DONE,
    REDIS_TLS_IO_WANT_READ,
    REDIS_TLS_IO_WANT_WRITE,
    REDIS_TLS_IO_CLOSED, /* the connection closed or a socket call failed; err says why */
    REDIS_TLS_IO_FAILED, /* the TLS layer failed, for example on an alert from the peer */
};

/* Why a handshake failed, so callers can tell a wrong setting from a network fault. */
enum redis_tls_failure {
    REDIS_TLS_FAILURE_NONE,
    REDIS_TLS_FAILURE_SETUP,    /* a CA, certificate or key file could not be loaded */
    REDIS_TLS_FAILURE_VERIFY,   /* the server's certificate chain did not verify */
    REDIS_TLS_FAILURE_NAME,     /* the certificate does not match the expected server name */
    REDIS_TLS_FAILURE_PROTOCOL, /* the peer does not speak TLS, or the handshake was rejected */
    REDIS_TLS_FAILURE_NETWORK,  /* the connection broke during the handshake */
};

struct redis_tls;

/* Creates the TLS state for one connection on the connected socket fd (borrowed; the caller
 * closes it after redis_tls_destroy). Loads the trust anchors and the optional client
 * certificate from settings on every call, so rotated files are picked up at the next connect.
 * Returns NULL with err set and *failure REDIS_TLS_FAILURE_SETUP. */
struct redis_tls *redis_tls_create(const struct redis_settings *settings, int fd,
                                   enum redis_tls_failure *failure, struct error *err);

/* Frees the TLS state without sending close_notify. Safe on NULL. */
void redis_tls_destroy(struct redis_tls *tls);

/* Advances the handshake. Returns DONE, a WANT result, or FAILED with err and *failure set. */
enum redis_tls_io redis_tls_handshake(struct redis_tls *tls, enum redis_tls_failure *failure,
                                      struct error *err);

/* Writes up to len bytes; *done receives the count written on DONE. */
enum redis_tls_io redis_tls_write(struct redis_tls *tls, const char *buf, size_t len, size_t *done,
                                  struct error *err);

/* Reads up to len bytes; *done receives the count read on DONE. */
enum redis_tls_io redis_tls_read(struct redis_tls *tls, char *buf, size_t len, size_t *done,
                                 struct error *err);

/* Logs the TLS settings at info level (nothing for redis://), and a warning when certificate
 * verification is off. Call once at every start. */
void redis_tls_log_settings(const struct redis_settings *settings, const char *module);

#endif
