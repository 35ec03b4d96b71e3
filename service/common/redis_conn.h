/* One Redis connection: the project's own socket I/O driving hiredis's command formatter and
 * reply reader, so the transport (plain TCP, or TLS through redis_tls.h) stays under this
 * module's control. Blocking calls with timeouts. A connection is used by one thread at a time. */
#ifndef KCHUB_REDIS_CONN_H
#define KCHUB_REDIS_CONN_H

#include "error.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

/* Where and how to connect. Strings are owned by whoever fills the struct; redis_conn_create
 * copies them. */
struct redis_settings {
    char *host;
    int port;
    char *username; /* NULL: AUTH with the password alone (the default user) */
    char *password; /* NULL: no AUTH */
    int database;   /* SELECT when not 0 */
    bool tls;       /* rediss:// */
    char *tls_ca_file;     /* PEM trust anchors; NULL: the system trust store */
    char *tls_server_name; /* SNI and the name the certificate must carry; NULL: host */
    char *tls_cert_file;   /* PEM client certificate chain, with tls_key_file; NULL: none */
    char *tls_key_file;    /* PEM private key of tls_cert_file */
    bool tls_skip_verify;  /* accept any server certificate; the zero value verifies */
    char *client_name; /* NULL: no CLIENT SETNAME (some providers forbid CLIENT) */
    int connect_timeout_ms;
    int command_timeout_ms;
};

/* How the last call failed. Every failure closes the connection, because the reply stream can
 * no longer be trusted. REDIS_STATUS_TLS and REDIS_STATUS_REJECTED mean a setting is wrong
 * (redis_status_is_configuration); REDIS_STATUS_REJECTED comes only from redis_conn_connect. */
enum redis_status {
    REDIS_STATUS_OK = 0,
    REDIS_STATUS_DISCONNECTED, /* the call needs a connection and there is none */
    REDIS_STATUS_CONNECT,      /* resolving or connecting failed */
    REDIS_STATUS_TIMEOUT,      /* no complete reply within the timeout */
    REDIS_STATUS_IO,           /* the peer closed the connection or a socket call failed */
    REDIS_STATUS_PROTOCOL,     /* the reply could not be parsed */
    REDIS_STATUS_INTERRUPTED,  /* the wakeup descriptor became readable while waiting */
    REDIS_STATUS_REPLY_ERROR,  /* a handshake command got an error that retrying may clear,
                                  such as LOADING or BUSY */
    REDIS_STATUS_TLS,          /* TLS setup or the handshake failed: certificate, name, files,
                                  or a peer that does not speak TLS */
    REDIS_STATUS_REJECTED,     /* AUTH, SELECT or CLIENT SETNAME got an error such as WRONGPASS
                                  or NOPERM */
};

/* True for the statuses that a retry cannot fix because a setting is wrong. */
bool redis_status_is_configuration(enum redis_status status);

struct redis_conn;

/* Creates a disconnected connection with a copy of settings. NULL when out of memory. */
struct redis_conn *redis_conn_create(const struct redis_settings *settings);

/* Closes and frees c. Safe on NULL. */
void redis_conn_destroy(struct redis_conn *c);

/* Connects: resolves the host, connects and (for rediss://) completes the TLS handshake within
 * connect_timeout_ms, then AUTH, SELECT and CLIENT SETNAME as the settings ask, each within
 * connect_timeout_ms. Closes an existing connection first. Returns 0, or -1 with err naming the
 * step and the server's answer (never the password) and redis_conn_status() telling why. */
int redis_conn_connect(struct redis_conn *c, struct error *err);

bool redis_conn_is_connected(const struct redis_conn *c);

/* Closes the socket. Safe when not connected. */
void redis_conn_close(struct redis_conn *c);

/* Makes waits return REDIS_STATUS_INTERRUPTED as soon as fd is readable (-1 turns it off). The
 * descriptor is only polled, never read. */
void redis_conn_set_wakeup_fd(struct redis_conn *c, int fd);

/* Sends one command given as argc binary-safe arguments and waits up to timeout_ms (0: the
 * settings' command timeout) for its reply. Returns the reply, which the caller frees with
 * freeReplyObject; an error reply from the server is returned as a reply of type
 * REDIS_REPLY_ERROR. Returns NULL on failure with err set; redis_conn_status() tells why. */
redisReply *redis_conn_command(struct redis_conn *c, int argc, const char **argv,
                               const size_t *lens, int timeout_ms, struct error *err);

/* Queues one command for a pipeline; nothing is sent until redis_conn_pipeline_run. */
int redis_conn_pipeline_add(struct redis_conn *c, int argc, const char **argv, const size_t *lens,
                            struct error *err);

/* Sends every queued command and reads one reply for each into replies[0..count-1], where count
 * must equal the number queued. On failure frees what it read, sets every slot to NULL and
 * returns -1. */
int redis_conn_pipeline_run(struct redis_conn *c, redisReply **replies, size_t count,
                            int timeout_ms, struct error *err);

/* The status of the last call on c. */
enum redis_status redis_conn_status(const struct redis_conn *c);

/* A "host:port" label for logs. */
const char *redis_conn_endpoint(const struct redis_conn *c);

#endif
