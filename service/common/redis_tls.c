#include "redis_tls.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_NAME_MAX_BYTES 256

struct redis_tls {
    SSL_CTX *ctx;
    SSL *ssl;
    char server_name[TLS_NAME_MAX_BYTES]; /* the name the certificate must carry, for errors */
};

/* Formats the oldest queued OpenSSL error, or fallback when the queue is empty, and clears it. */
static const char *openssl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long code = ERR_get_error();
    if (code == 0)
        snprintf(buf, len, "%s", fallback);
    else
        ERR_error_string_n(code, buf, len);
    ERR_clear_error();
    return buf;
}

static bool is_ip_literal(const char *name)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

static const char *expected_name(const struct redis_settings *s)
{
    return s->tls_server_name != NULL && s->tls_server_name[0] != '\0' ? s->tls_server_name
                                                                       : s->host;
}

static int load_trust(SSL_CTX *ctx, const struct redis_settings *s, struct error *err)
{
    char reason[256];
    if (s->tls_ca_file != NULL && s->tls_ca_file[0] != '\0') {
        if (SSL_CTX_load_verify_locations(ctx, s->tls_ca_file, NULL) != 1) {
            error_set(err, "cannot load the Redis TLS CA file %s: %s", s->tls_ca_file,
                      openssl_reason(reason, sizeof(reason), "unreadable"));
            return -1;
        }
        return 0;
    }
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        error_set(err, "cannot load the system trust store: %s; set a TLS CA file",
                  openssl_reason(reason, sizeof(reason), "unknown error"));
        return -1;
    }
    return 0;
}

static int load_client_certificate(SSL_CTX *ctx, const struct redis_settings *s, struct error *err)
{
    bool has_cert = s->tls_cert_file != NULL && s->tls_cert_file[0] != '\0';
    bool has_key = s->tls_key_file != NULL && s->tls_key_file[0] != '\0';
    if (!has_cert && !has_key)
        return 0;
    if (has_cert != has_key) {
        error_set(err, "a TLS client certificate needs its key, and a key its certificate");
        return -1;
    }
    char reason[256];
    if (SSL_CTX_use_certificate_chain_file(ctx, s->tls_cert_file) != 1) {
        error_set(err, "cannot load the Redis TLS client certificate %s: %s", s->tls_cert_file,
                  openssl_reason(reason, sizeof(reason), "unreadable"));
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, s->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        error_set(err,
                  "cannot load the Redis TLS client key %s, or it does not match the "
                  "certificate: %s",
                  s->tls_key_file, openssl_reason(reason, sizeof(reason), "unreadable"));
        return -1;
    }
    return 0;
}

static SSL_CTX *create_context(const struct redis_settings *s, struct error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        error_set(err, "out of memory creating the TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, s->tls_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if ((!s->tls_skip_verify && load_trust(ctx, s, err) != 0) ||
        load_client_certificate(ctx, s, err) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Sets SNI (never for an IP literal, which RFC 6066 forbids) and the name the certificate must
 * carry. OpenSSL 3 matches an IP literal given to SSL_set1_host against the IP SANs. */
static int set_server_name(SSL *ssl, const struct redis_settings *s, struct error *err)
{
    const char *name = expected_name(s);
    if (!is_ip_literal(name) && SSL_set_tlsext_host_name(ssl, name) != 1) {
        error_set(err, "invalid TLS server name \"%s\"", name);
        return -1;
    }
    if (!s->tls_skip_verify && SSL_set1_host(ssl, name) != 1) {
        error_set(err, "invalid TLS server name \"%s\" for the certificate check", name);
        return -1;
    }
    return 0;
}

struct redis_tls *redis_tls_create(const struct redis_settings *settings, int fd,
                                   enum redis_tls_failure *failure, struct error *err)
{
    *failure = REDIS_TLS_FAILURE_SETUP;
    struct redis_tls *tls = calloc(1, sizeof(*tls));
    if (tls == NULL) {
        error_set(err, "out of memory");
        return NULL;
    }
    tls->ctx = create_context(settings, err);
    if (tls->ctx == NULL)
        goto failed;
    tls->ssl = SSL_new(tls->ctx);
    if (tls->ssl == NULL || SSL_set_fd(tls->ssl, fd) != 1) {
        error_set(err, "out of memory creating the TLS session");
        goto failed;
    }
    if (set_server_name(tls->ssl, settings, err) != 0)
        goto failed;
    snprintf(tls->server_name, sizeof(tls->server_name), "%s", expected_name(settings));
    SSL_set_connect_state(tls->ssl);
    *failure = REDIS_TLS_FAILURE_NONE;
    return tls;

failed:
    redis_tls_destroy(tls);
    return NULL;
}

void redis_tls_destroy(struct redis_tls *tls)
{
    if (tls == NULL)
        return;
    SSL_free(tls->ssl);
    SSL_CTX_free(tls->ctx);
    free(tls);
}

/* Sorts a failed handshake into a failure kind and writes the reason. */
static enum redis_tls_failure classify_handshake(struct redis_tls *tls, int ssl_error,
                                                 struct error *err)
{
    long verify = SSL_get_verify_result(tls->ssl);
    char reason[256];
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        ERR_clear_error();
        error_set(err,
                  "the Redis server's certificate does not match the name \"%s\"; set "
                  "the TLS server name (KCHUB_REDIS_TLS_SERVER_NAME) to a name it carries",
                  tls->server_name);
        return REDIS_TLS_FAILURE_NAME;
    }
    if (verify != X509_V_OK) {
        ERR_clear_error();
        error_set(err,
                  "the Redis server's certificate did not verify: %s; set the TLS "
                  "CA file (KCHUB_REDIS_TLS_CA_FILE) to the CA that issued it",
                  X509_verify_cert_error_string(verify));
        return REDIS_TLS_FAILURE_VERIFY;
    }
    if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN) {
        int saved = errno;
        ERR_clear_error();
        error_set(err, "the connection closed during the TLS handshake%s%s", saved != 0 ? ": " : "",
                  saved != 0 ? strerror(saved) : "");
        return REDIS_TLS_FAILURE_NETWORK;
    }
    error_set(err,
              "the TLS handshake failed: %s; check that the port serves TLS, or use "
              "redis:// for a plain-text port",
              openssl_reason(reason, sizeof(reason), "unknown error"));
    return REDIS_TLS_FAILURE_PROTOCOL;
}

enum redis_tls_io redis_tls_handshake(struct redis_tls *tls, enum redis_tls_failure *failure,
                                      struct error *err)
{
    *failure = REDIS_TLS_FAILURE_NONE;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(tls->ssl);
    if (rc == 1)
        return REDIS_TLS_IO_DONE;
    int ssl_error = SSL_get_error(tls->ssl, rc);
    if (ssl_error == SSL_ERROR_WANT_READ)
        return REDIS_TLS_IO_WANT_READ;
    if (ssl_error == SSL_ERROR_WANT_WRITE)
        return REDIS_TLS_IO_WANT_WRITE;
    *failure = classify_handshake(tls, ssl_error, err);
    return REDIS_TLS_IO_FAILED;
}

/* Maps the result of SSL_read or SSL_write that returned rc <= 0. */
static enum redis_tls_io map_io_error(struct redis_tls *tls, int rc, const char *verb,
                                      struct error *err)
{
    int ssl_error = SSL_get_error(tls->ssl, rc);
    char reason[256];
    switch (ssl_error) {
    case SSL_ERROR_WANT_READ:
        return REDIS_TLS_IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return REDIS_TLS_IO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        error_set(err, "the server closed the TLS connection");
        return REDIS_TLS_IO_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
            ERR_clear_error();
            error_set(err, "the server closed the connection");
            return REDIS_TLS_IO_CLOSED;
        }
        error_set(err, "TLS %s failed: %s", verb, strerror(errno));
        ERR_clear_error();
        return REDIS_TLS_IO_CLOSED;
    default:
        error_set(err, "TLS %s failed: %s", verb,
                  openssl_reason(reason, sizeof(reason), "unknown error"));
        return REDIS_TLS_IO_FAILED;
    }
}

enum redis_tls_io redis_tls_write(struct redis_tls *tls, const char *buf, size_t len, size_t *done,
                                  struct error *err)
{
    ERR_clear_error();
    errno = 0;
    *done = 0;
    if (SSL_write_ex(tls->ssl, buf, len, done) == 1)
        return REDIS_TLS_IO_DONE;
    enum redis_tls_io io = map_io_error(tls, 0, "write", err);
    if (io != REDIS_TLS_IO_CLOSED)
        return io;
    /* With TLS 1.3 a server that rejects the client certificate sends an alert after the
     * handshake and closes. The alert may be waiting unread, so read once to report it. */
    char scratch[256];
    size_t ignored = 0;
    ERR_clear_error();
    if (SSL_read_ex(tls->ssl, scratch, sizeof(scratch), &ignored) != 1 &&
        SSL_get_error(tls->ssl, 0) == SSL_ERROR_SSL)
        return map_io_error(tls, 0, "write", err);
    return io;
}

enum redis_tls_io redis_tls_read(struct redis_tls *tls, char *buf, size_t len, size_t *done,
                                 struct error *err)
{
    ERR_clear_error();
    errno = 0;
    *done = 0;
    if (SSL_read_ex(tls->ssl, buf, len, done) == 1)
        return REDIS_TLS_IO_DONE;
    return map_io_error(tls, 0, "read", err);
}

void redis_tls_log_settings(const struct redis_settings *s, const char *module)
{
    if (!s->tls)
        return;
    if (s->tls_skip_verify) {
        log_warn(module,
                 "TLS certificate verification for Redis at %s is OFF: any server can "
                 "pose as Redis and read the password; turn verification on",
                 s->host);
        return;
    }
    log_info(module, "TLS to Redis: trust %s, server name %s, client certificate %s",
             s->tls_ca_file != NULL ? s->tls_ca_file : "from the system store", expected_name(s),
             s->tls_cert_file != NULL ? s->tls_cert_file : "none");
}
