#include "redis_conn.h"

#include "clock.h"
#include "redis_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REDIS_READ_CHUNK_BYTES 16384

struct redis_conn {
    struct redis_settings settings;
    char endpoint[300];
    int fd;
    int wakeup_fd;
    struct redis_tls *tls; /* NULL on a plain-text connection */
    size_t received_bytes; /* since connecting, to tell a peer that never answered */
    redisReader *reader;
    enum redis_status status;
    char *pipeline;
    size_t pipeline_len;
    size_t pipeline_count;
};

static char *copy_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

struct redis_conn *redis_conn_create(const struct redis_settings *settings)
{
    struct redis_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->settings = *settings;
    c->settings.host = copy_or_null(settings->host);
    c->settings.username = copy_or_null(settings->username);
    c->settings.password = copy_or_null(settings->password);
    c->settings.client_name = copy_or_null(settings->client_name);
    c->settings.tls_ca_file = copy_or_null(settings->tls_ca_file);
    c->settings.tls_server_name = copy_or_null(settings->tls_server_name);
    c->settings.tls_cert_file = copy_or_null(settings->tls_cert_file);
    c->settings.tls_key_file = copy_or_null(settings->tls_key_file);
    c->fd = -1;
    c->wakeup_fd = -1;
    c->status = REDIS_STATUS_DISCONNECTED;
    if (c->settings.host == NULL || (settings->username && !c->settings.username) ||
        (settings->password && !c->settings.password) ||
        (settings->client_name && !c->settings.client_name) ||
        (settings->tls_ca_file && !c->settings.tls_ca_file) ||
        (settings->tls_server_name && !c->settings.tls_server_name) ||
        (settings->tls_cert_file && !c->settings.tls_cert_file) ||
        (settings->tls_key_file && !c->settings.tls_key_file)) {
        redis_conn_destroy(c);
        return NULL;
    }
    if (strchr(c->settings.host, ':') != NULL)
        snprintf(c->endpoint, sizeof(c->endpoint), "[%s]:%d", c->settings.host, c->settings.port);
    else
        snprintf(c->endpoint, sizeof(c->endpoint), "%s:%d", c->settings.host, c->settings.port);
    return c;
}

void redis_conn_destroy(struct redis_conn *c)
{
    if (c == NULL)
        return;
    redis_conn_close(c);
    free(c->settings.host);
    free(c->settings.username);
    if (c->settings.password != NULL) {
        explicit_bzero(c->settings.password, strlen(c->settings.password));
        free(c->settings.password);
    }
    free(c->settings.client_name);
    free(c->settings.tls_ca_file);
    free(c->settings.tls_server_name);
    free(c->settings.tls_cert_file);
    free(c->settings.tls_key_file);
    free(c);
}

bool redis_conn_is_connected(const struct redis_conn *c)
{
    return c->fd >= 0;
}

bool redis_status_is_configuration(enum redis_status status)
{
    return status == REDIS_STATUS_TLS || status == REDIS_STATUS_REJECTED;
}

void redis_conn_close(struct redis_conn *c)
{
    redis_tls_destroy(c->tls);
    c->tls = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->reader != NULL)
        redisReaderFree(c->reader);
    c->reader = NULL;
    free(c->pipeline);
    c->pipeline = NULL;
    c->pipeline_len = 0;
    c->pipeline_count = 0;
}

void redis_conn_set_wakeup_fd(struct redis_conn *c, int fd)
{
    c->wakeup_fd = fd;
}

enum redis_status redis_conn_status(const struct redis_conn *c)
{
    return c->status;
}

const char *redis_conn_endpoint(const struct redis_conn *c)
{
    return c->endpoint;
}

/* Marks the connection failed with status and closes it, so the next call reconnects. */
static void fail(struct redis_conn *c, enum redis_status status)
{
    c->status = status;
    redis_conn_close(c);
}

/* Waits until fd is ready for events, the deadline passes, or the wakeup descriptor is readable.
 * Returns 0 when ready, or -1 with c->status set. */
static int wait_ready(struct redis_conn *c, short events, int64_t deadline_ms, struct error *err)
{
    for (;;) {
        int64_t left = deadline_ms - clock_monotonic_ms();
        if (left <= 0) {
            error_set(err, "Redis at %s did not answer within the timeout", c->endpoint);
            c->status = REDIS_STATUS_TIMEOUT;
            return -1;
        }
        struct pollfd fds[2] = {{.fd = c->fd, .events = events},
                                {.fd = c->wakeup_fd, .events = POLLIN}};
        int n = poll(fds, c->wakeup_fd >= 0 ? 2 : 1, (int)(left > 60000 ? 60000 : left));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            error_set(err, "poll on the Redis socket failed: %s", strerror(errno));
            c->status = REDIS_STATUS_IO;
            return -1;
        }
        if (c->wakeup_fd >= 0 && (fds[1].revents & POLLIN)) {
            error_set(err, "the wait for Redis was interrupted");
            c->status = REDIS_STATUS_INTERRUPTED;
            return -1;
        }
        if (fds[0].revents != 0)
            return 0;
    }
}

/* The transport, plain TCP or TLS. Each call returns the byte count, or 0 when it would block,
 * with *events set to the readiness to wait for (TLS may need the opposite direction). It returns
 * -1 with err set when the peer closed the connection or a call failed, and TRANSPORT_TLS_FAILED
 * when the TLS layer failed, as on the peer's alert that it rejects the client certificate. */
#define TRANSPORT_TLS_FAILED (-2)

static ssize_t transport_send(struct redis_conn *c, const char *buf, size_t len, short *events,
                              struct error *err)
{
    *events = POLLOUT;
    if (c->tls != NULL) {
        size_t done = 0;
        enum redis_tls_io io = redis_tls_write(c->tls, buf, len, &done, err);
        if (io == REDIS_TLS_IO_WANT_READ || io == REDIS_TLS_IO_WANT_WRITE)
            *events = io == REDIS_TLS_IO_WANT_READ ? POLLIN : POLLOUT;
        else if (io != REDIS_TLS_IO_DONE)
            return io == REDIS_TLS_IO_FAILED ? TRANSPORT_TLS_FAILED : -1;
        return (ssize_t)done;
    }
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n < 0)
        error_set(err, "%s", strerror(errno));
    return n;
}

static ssize_t transport_recv(struct redis_conn *c, char *buf, size_t len, short *events,
                              struct error *err)
{
    *events = POLLIN;
    if (c->tls != NULL) {
        size_t done = 0;
        enum redis_tls_io io = redis_tls_read(c->tls, buf, len, &done, err);
        if (io == REDIS_TLS_IO_WANT_READ || io == REDIS_TLS_IO_WANT_WRITE)
            *events = io == REDIS_TLS_IO_WANT_READ ? POLLIN : POLLOUT;
        else if (io != REDIS_TLS_IO_DONE)
            return io == REDIS_TLS_IO_FAILED ? TRANSPORT_TLS_FAILED : -1;
        return (ssize_t)done;
    }
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n == 0)
        error_set(err, "the server closed the connection");
    else if (n < 0)
        error_set(err, "%s", strerror(errno));
    return n > 0 ? n : -1;
}

static int send_all(struct redis_conn *c, const char *buf, size_t len, int64_t deadline_ms,
                    struct error *err)
{
    size_t sent = 0;
    while (sent < len) {
        short events;
        ssize_t n = transport_send(c, buf + sent, len - sent, &events, err);
        if (n < 0) {
            error_prefix(err, "sending to Redis at %s failed", c->endpoint);
            c->status = n == TRANSPORT_TLS_FAILED ? REDIS_STATUS_TLS : REDIS_STATUS_IO;
            return -1;
        }
        sent += (size_t)n;
        if (n == 0 && wait_ready(c, events, deadline_ms, err) != 0)
            return -1;
    }
    return 0;
}

static redisReply *read_reply(struct redis_conn *c, int64_t deadline_ms, struct error *err)
{
    char buf[REDIS_READ_CHUNK_BYTES];
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            error_set(err, "invalid reply from Redis at %s: %s", c->endpoint, c->reader->errstr);
            c->status = REDIS_STATUS_PROTOCOL;
            return NULL;
        }
        if (reply != NULL)
            return reply;
        short events;
        ssize_t n = transport_recv(c, buf, sizeof(buf), &events, err);
        if (n < 0) {
            error_prefix(err, "reading from Redis at %s failed", c->endpoint);
            c->status = n == TRANSPORT_TLS_FAILED ? REDIS_STATUS_TLS : REDIS_STATUS_IO;
            return NULL;
        }
        if (n == 0) {
            if (wait_ready(c, events, deadline_ms, err) != 0)
                return NULL;
            continue;
        }
        c->received_bytes += (size_t)n;
        if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
            error_set(err, "invalid reply from Redis at %s: %s", c->endpoint, c->reader->errstr);
            c->status = REDIS_STATUS_PROTOCOL;
            return NULL;
        }
    }
}

static int64_t deadline_after(const struct redis_conn *c, int timeout_ms)
{
    return clock_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : c->settings.command_timeout_ms);
}

redisReply *redis_conn_command(struct redis_conn *c, int argc, const char **argv,
                               const size_t *lens, int timeout_ms, struct error *err)
{
    if (c->fd < 0) {
        error_set(err, "not connected to Redis at %s", c->endpoint);
        c->status = REDIS_STATUS_DISCONNECTED;
        return NULL;
    }
    char *command = NULL;
    int len = redisFormatCommandArgv(&command, argc, argv, lens);
    if (len < 0) {
        error_set(err, "out of memory formatting a Redis command");
        fail(c, REDIS_STATUS_IO);
        return NULL;
    }
    int64_t deadline = deadline_after(c, timeout_ms);
    int sent = send_all(c, command, (size_t)len, deadline, err);
    redisFreeCommand(command);
    redisReply *reply = sent == 0 ? read_reply(c, deadline, err) : NULL;
    if (reply == NULL) {
        fail(c, c->status);
        return NULL;
    }
    c->status = REDIS_STATUS_OK;
    return reply;
}

int redis_conn_pipeline_add(struct redis_conn *c, int argc, const char **argv, const size_t *lens,
                            struct error *err)
{
    char *command = NULL;
    int len = redisFormatCommandArgv(&command, argc, argv, lens);
    if (len < 0) {
        error_set(err, "out of memory formatting a Redis command");
        return -1;
    }
    char *grown = realloc(c->pipeline, c->pipeline_len + (size_t)len);
    if (grown == NULL) {
        redisFreeCommand(command);
        error_set(err, "out of memory queuing a Redis command");
        return -1;
    }
    memcpy(grown + c->pipeline_len, command, (size_t)len);
    redisFreeCommand(command);
    c->pipeline = grown;
    c->pipeline_len += (size_t)len;
    c->pipeline_count++;
    return 0;
}

int redis_conn_pipeline_run(struct redis_conn *c, redisReply **replies, size_t count,
                            int timeout_ms, struct error *err)
{
    for (size_t i = 0; i < count; i++)
        replies[i] = NULL;
    if (c->fd < 0) {
        error_set(err, "not connected to Redis at %s", c->endpoint);
        c->status = REDIS_STATUS_DISCONNECTED;
        return -1;
    }
    if (count != c->pipeline_count) {
        error_set(err, "pipeline holds %zu commands, not %zu", c->pipeline_count, count);
        fail(c, REDIS_STATUS_PROTOCOL);
        return -1;
    }
    int64_t deadline = deadline_after(c, timeout_ms);
    if (send_all(c, c->pipeline, c->pipeline_len, deadline, err) != 0)
        goto failed;
    free(c->pipeline);
    c->pipeline = NULL;
    c->pipeline_len = c->pipeline_count = 0;
    for (size_t i = 0; i < count; i++) {
        replies[i] = read_reply(c, deadline, err);
        if (replies[i] == NULL)
            goto failed;
    }
    c->status = REDIS_STATUS_OK;
    return 0;

failed:
    for (size_t i = 0; i < count; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
    fail(c, c->status);
    return -1;
}

/* Connects one address without blocking past the deadline. Returns the socket or -1. */
static int connect_address(struct redis_conn *c, const struct addrinfo *ai, int64_t deadline_ms,
                           struct error *err)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        error_set(err, "socket() failed: %s", strerror(errno));
        return -1;
    }
    c->fd = fd;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        error_set(err, "connect to Redis at %s failed: %s", c->endpoint, strerror(errno));
        goto failed;
    }
    if (wait_ready(c, POLLOUT, deadline_ms, err) != 0) {
        if (c->status == REDIS_STATUS_TIMEOUT)
            error_set(err, "connect to Redis at %s timed out after %d ms", c->endpoint,
                      c->settings.connect_timeout_ms);
        goto failed;
    }
    int so_error = 0;
    socklen_t so_len = sizeof(so_error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len);
    if (so_error != 0) {
        error_set(err, "connect to Redis at %s failed: %s", c->endpoint, strerror(so_error));
        goto failed;
    }
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    return fd;

failed:
    close(fd);
    c->fd = -1;
    return -1;
}

/* Resolves the host and connects to its first address that answers before the deadline. */
static int open_socket(struct redis_conn *c, int64_t deadline_ms, struct error *err)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", c->settings.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    /* NOTE: getaddrinfo blocks without a timeout of its own; only the connect waits are bounded. */
    int rc = getaddrinfo(c->settings.host, port, &hints, &list);
    if (rc != 0) {
        error_set(err, "cannot resolve Redis host \"%s\": %s", c->settings.host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (const struct addrinfo *ai = list; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_address(c, ai, deadline_ms, err);
    freeaddrinfo(list);
    return fd < 0 ? -1 : 0;
}

/* Runs the TLS handshake on the connected socket before the deadline. */
static int start_tls(struct redis_conn *c, int64_t deadline_ms, struct error *err)
{
    enum redis_tls_failure failure = REDIS_TLS_FAILURE_NONE;
    c->tls = redis_tls_create(&c->settings, c->fd, &failure, err);
    for (enum redis_tls_io io = REDIS_TLS_IO_FAILED; c->tls != NULL;) {
        io = redis_tls_handshake(c->tls, &failure, err);
        if (io == REDIS_TLS_IO_DONE)
            return 0;
        if (io == REDIS_TLS_IO_FAILED)
            break;
        if (wait_ready(c, io == REDIS_TLS_IO_WANT_READ ? POLLIN : POLLOUT, deadline_ms, err) != 0) {
            if (c->status == REDIS_STATUS_TIMEOUT)
                error_set(err, "the TLS handshake with Redis at %s timed out after %d ms",
                          c->endpoint, c->settings.connect_timeout_ms);
            return -1;
        }
    }
    error_prefix(err, "TLS to Redis at %s", c->endpoint);
    c->status = failure == REDIS_TLS_FAILURE_NETWORK ? REDIS_STATUS_IO : REDIS_STATUS_TLS;
    return -1;
}

/* True for error replies that say the server is busy or starting, which a retry can clear. */
static bool reply_error_is_transient(const char *text)
{
    static const char *const prefixes[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN",
                                           "CLUSTERDOWN"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncmp(text, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    }
    return false;
}

/* Runs one handshake command and checks for an OK-style reply. step names it in errors. */
static int handshake_command(struct redis_conn *c, const char *step, int argc, const char **argv,
                             struct error *err)
{
    size_t lens[4];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    int64_t deadline = clock_monotonic_ms() + c->settings.connect_timeout_ms;
    char *command = NULL;
    int len = redisFormatCommandArgv(&command, argc, argv, lens);
    if (len < 0) {
        error_set(err, "out of memory");
        return -1;
    }
    int sent = send_all(c, command, (size_t)len, deadline, err);
    explicit_bzero(command, (size_t)len); /* The AUTH command carries the password. */
    redisFreeCommand(command);
    redisReply *reply = sent == 0 ? read_reply(c, deadline, err) : NULL;
    if (reply == NULL) {
        if (c->status == REDIS_STATUS_TLS)
            error_prefix(err, "the server ended the TLS session (check the client certificate, "
                              "KCHUB_REDIS_TLS_CERT_FILE and KCHUB_REDIS_TLS_KEY_FILE)");
        else if (c->status == REDIS_STATUS_IO && c->received_bytes == 0 && !c->settings.tls)
            error_prefix(err,
                         "%s (the server closed the connection without answering; if the "
                         "port expects TLS, use a rediss:// URL)",
                         step);
        else
            error_prefix(err, "%s", step);
        return -1;
    }
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        error_set(err, "%s on Redis at %s failed: %s", step, c->endpoint, reply->str);
        c->status =
            reply_error_is_transient(reply->str) ? REDIS_STATUS_REPLY_ERROR : REDIS_STATUS_REJECTED;
        rc = -1;
    }
    freeReplyObject(reply);
    return rc;
}

static int run_handshake(struct redis_conn *c, struct error *err)
{
    const struct redis_settings *s = &c->settings;
    bool sent_any = false;
    if (s->password != NULL) {
        const char *with_user[] = {"AUTH", s->username, s->password};
        const char *default_user[] = {"AUTH", s->password};
        char step[200];
        snprintf(step, sizeof(step), "AUTH as user \"%s\"", s->username ? s->username : "default");
        int rc = s->username != NULL ? handshake_command(c, step, 3, with_user, err)
                                     : handshake_command(c, step, 2, default_user, err);
        if (rc != 0)
            return -1;
        sent_any = true;
    }
    if (s->database != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", s->database);
        const char *argv[] = {"SELECT", db};
        if (handshake_command(c, "SELECT", 2, argv, err) != 0)
            return -1;
        sent_any = true;
    }
    if (s->client_name != NULL && s->client_name[0] != '\0') {
        const char *argv[] = {"CLIENT", "SETNAME", s->client_name};
        if (handshake_command(c, "CLIENT SETNAME (turn it off with an empty client name)", 3, argv,
                              err) != 0)
            return -1;
        sent_any = true;
    }
    /* A PING otherwise, so that a server that rejects the connection fails the connect. */
    const char *ping[] = {"PING"};
    return sent_any ? 0 : handshake_command(c, "PING", 1, ping, err);
}

int redis_conn_connect(struct redis_conn *c, struct error *err)
{
    redis_conn_close(c);
    c->received_bytes = 0;
    c->reader = redisReaderCreate();
    if (c->reader == NULL) {
        error_set(err, "out of memory");
        c->status = REDIS_STATUS_CONNECT;
        return -1;
    }
    int64_t deadline = clock_monotonic_ms() + c->settings.connect_timeout_ms;
    c->status = REDIS_STATUS_CONNECT;
    int rc = open_socket(c, deadline, err);
    if (rc == 0 && c->settings.tls)
        rc = start_tls(c, deadline, err);
    if (rc == 0)
        rc = run_handshake(c, err);
    if (rc != 0) {
        if (c->status == REDIS_STATUS_OK)
            c->status = REDIS_STATUS_CONNECT;
        redis_conn_close(c);
        return -1;
    }
    c->status = REDIS_STATUS_OK;
    return 0;
}
