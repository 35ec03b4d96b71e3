#include "http_server.h"

#include "http_logout.h"
#include "http_metrics.h"
#include "http_response.h"
#include "job_pool.h"
#include "listen_address.h"
#include "log.h"
#include "logout_receiver.h"

#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MODULE                      "http"
#define JWKS_ROUTE                  "jwks"
#define LOGOUT_ROUTE                "backchannel-logout"
/* Requests waiting for a logout job thread at most; past that the hub responds 503. */
#define LOGOUT_QUEUE_CAPACITY       1024

struct http_server {
    struct MHD_Daemon *daemon;
    struct hub_namespace *const *list;
    size_t count;
    struct MHD_Response *method_not_allowed;
    struct MHD_Response *post_only;
    struct MHD_Response *not_loaded;
    struct job_pool *jobs;
    size_t body_max_bytes;
    struct http_metrics *metrics;
    unsigned port;
    atomic_int in_flight; /* requests started and not yet completed, for the drain */
};

static enum MHD_Result serve_jwks(struct http_server *server, struct MHD_Connection *connection,
                                  struct hub_namespace *ns)
{
    struct jwks_snapshot *snapshot = atomic_load(&ns->replayed) ? jwks_slot_acquire(&ns->slot) : NULL;
    if (snapshot == NULL)
        return MHD_queue_response(connection, MHD_HTTP_SERVICE_UNAVAILABLE, server->not_loaded);
    const char *if_none_match =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    enum MHD_Result rc;
    if (if_none_match != NULL && jwks_snapshot_matches(snapshot, if_none_match))
        rc = MHD_queue_response(connection, MHD_HTTP_NOT_MODIFIED,
                                jwks_snapshot_response_not_modified(snapshot));
    else
        rc = MHD_queue_response(connection, MHD_HTTP_OK, jwks_snapshot_response_ok(snapshot));
    jwks_snapshot_release(snapshot);
    return rc;
}

/* Splits "/<namespace>/<route>" into its two segments. Returns 0, or -1 for any other shape. */
static int split_path(const char *url, const char **ns, size_t *ns_len, const char **route)
{
    if (url[0] != '/')
        return -1;
    const char *slash = strchr(url + 1, '/');
    if (slash == NULL || slash == url + 1)
        return -1;
    *ns = url + 1;
    *ns_len = (size_t)(slash - *ns);
    *route = slash + 1;
    return 0;
}

/* The request context of every request that is not a logout: only marks the first call done. */
static int plain_request;

/* Per connection (libmicrohttpd's socket context): when the current request started and which
 * route it took, for the request metrics. Allocated once per connection, not per request. */
struct connection_state {
    int64_t started_ns;
    enum http_route route;
};

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static struct connection_state *connection_state_of(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info != NULL ? info->socket_context : NULL;
}

static void on_connection(void *context, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)context;
    (void)connection;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(struct connection_state));
    } else {
        free(*socket_context);
        *socket_context = NULL;
    }
}

static bool method_is(const char *method, const char *expected)
{
    return strcmp(method, expected) == 0;
}

/* Handles the first call of a request. libmicrohttpd 0.9.75 closes the connection when a
 * response is queued on the first call, before the request is complete, so every route responds
 * on a later call, except a logout body announced over the limit, which is refused at once. */
static enum MHD_Result start_request(struct http_server *server, struct MHD_Connection *connection,
                                     struct hub_namespace *ns, bool logout_route,
                                     const char *method, void **request_context)
{
    if (!logout_route || ns == NULL || ns->logout == NULL || !method_is(method, MHD_HTTP_METHOD_POST)) {
        *request_context = &plain_request;
        return MHD_YES;
    }
    const char *length =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length != NULL && strtoull(length, NULL, 10) > server->body_max_bytes) {
        *request_context = &plain_request;
        logout_receiver_note_oversized(ns->logout, server->body_max_bytes);
        return http_queue_json_error(connection, MHD_HTTP_CONTENT_TOO_LARGE, "invalid_request",
                                     "body_too_large: the body is over %zu bytes",
                                     server->body_max_bytes);
    }
    struct http_logout_request *request = http_logout_create(ns->logout, server->body_max_bytes);
    if (request == NULL)
        return MHD_NO;
    *request_context = request;
    return MHD_YES;
}

static enum MHD_Result route_logout(struct http_server *server, struct MHD_Connection *connection,
                                    struct hub_namespace *ns, const char *method,
                                    void *request_context)
{
    if (ns->logout == NULL)
        return http_queue_json_error(connection, MHD_HTTP_NOT_FOUND, "not_found",
                                     "back-channel logout is not configured for namespace \"%s\"",
                                     ns->name);
    if (!method_is(method, MHD_HTTP_METHOD_POST))
        return MHD_queue_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED, server->post_only);
    return http_logout_step(request_context, connection, server->jobs);
}

static enum MHD_Result on_request(void *context, struct MHD_Connection *connection,
                                  const char *url, const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **request_context)
{
    (void)version;
    struct http_server *server = context;
    const char *ns_name = NULL, *route = "";
    size_t ns_len = 0;
    struct hub_namespace *ns = NULL;
    if (split_path(url, &ns_name, &ns_len, &route) == 0)
        ns = hub_namespace_find(server->list, server->count, ns_name, ns_len);
    bool logout_route = strcmp(route, LOGOUT_ROUTE) == 0;

    if (*request_context == NULL) {
        atomic_fetch_add(&server->in_flight, 1);
        struct connection_state *state = connection_state_of(connection);
        if (state != NULL) {
            state->started_ns = monotonic_ns();
            state->route = logout_route                 ? HTTP_ROUTE_LOGOUT
                           : strcmp(route, JWKS_ROUTE) == 0 ? HTTP_ROUTE_JWKS
                                                            : HTTP_ROUTE_OTHER;
        }
        return start_request(server, connection, ns, logout_route, method, request_context);
    }
    if (*upload_data_size != 0) {
        if (*request_context != &plain_request)
            http_logout_append(*request_context, upload_data, *upload_data_size);
        *upload_data_size = 0; /* Other routes read no body; it is dropped. */
        return MHD_YES;
    }
    if (!logout_route && strcmp(route, JWKS_ROUTE) != 0)
        return http_queue_json_error(connection, MHD_HTTP_NOT_FOUND, "not_found",
                                     "no such route; the key set is at /<namespace>/jwks");
    if (ns == NULL)
        return http_queue_json_error(connection, MHD_HTTP_NOT_FOUND, "not_found",
                                     "namespace \"%.*s\" is not served by this hub",
                                     ns_len > 64 ? 64 : (int)ns_len, ns_name);
    if (logout_route)
        return route_logout(server, connection, ns, method, *request_context);
    if (!method_is(method, MHD_HTTP_METHOD_GET) && !method_is(method, MHD_HTTP_METHOD_HEAD))
        return MHD_queue_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                                  server->method_not_allowed);
    return serve_jwks(server, connection, ns);
}

static void on_request_completed(void *context, struct MHD_Connection *connection,
                                 void **request_context, enum MHD_RequestTerminationCode code)
{
    struct http_server *server = context;
    if (*request_context != NULL)
        atomic_fetch_sub(&server->in_flight, 1);
    struct connection_state *state = connection_state_of(connection);
    const union MHD_ConnectionInfo *status =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_HTTP_STATUS);
    if (code == MHD_REQUEST_TERMINATED_COMPLETED_OK && state != NULL && status != NULL &&
        server->metrics != NULL)
        http_metrics_observe(server->metrics, state->route, status->http_status,
                             monotonic_ns() - state->started_ns);
    if (*request_context != NULL && *request_context != &plain_request)
        http_logout_destroy(*request_context);
    *request_context = NULL;
}

static void on_mhd_log(void *context, const char *format, va_list args)
{
    (void)context;
    char message[512];
    vsnprintf(message, sizeof(message), format, args);
    size_t len = strlen(message);
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == ' '))
        message[--len] = '\0';
    log_warn(MODULE, "libmicrohttpd: %s", message);
}

static int build_static_responses(struct http_server *server)
{
    server->method_not_allowed =
        http_json_error("method_not_allowed", "the key set supports GET and HEAD only");
    server->not_loaded = http_json_error(
        "not_ready", "the hub has not finished reading this namespace's key stream; retry shortly");
    if (server->method_not_allowed == NULL || server->not_loaded == NULL)
        return -1;
    server->post_only =
        http_json_error("method_not_allowed", "back-channel logout takes POST only");
    if (server->post_only == NULL)
        return -1;
    MHD_add_response_header(server->method_not_allowed, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    MHD_add_response_header(server->post_only, MHD_HTTP_HEADER_ALLOW, "POST");
    MHD_add_response_header(server->not_loaded, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    return 0;
}

struct http_server *http_server_start(const struct http_settings *settings,
                                      struct hub_namespace *const *list, size_t count,
                                      struct error *err)
{
    struct sockaddr_storage address;
    if (listen_address_resolve(settings->listen, "listen", &address, err) != 0)
        return NULL;
    struct http_server *server = calloc(1, sizeof(*server));
    if (server == NULL || build_static_responses(server) != 0) {
        error_set(err, "out of memory starting the HTTP server");
        http_server_stop(server);
        return NULL;
    }
    server->list = list;
    server->count = count;
    server->body_max_bytes = settings->body_max_bytes;
    server->metrics = settings->metrics;
    server->jobs = job_pool_start(settings->logout_workers, LOGOUT_QUEUE_CAPACITY, err);
    if (server->jobs == NULL) {
        http_server_stop(server);
        return NULL;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (address.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger goes first so that option errors reach it. */
    server->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, server, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address, MHD_OPTION_THREAD_POOL_SIZE,
        settings->threads, MHD_OPTION_CONNECTION_LIMIT, settings->connection_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, settings->connection_timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_request_completed, server, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, NULL, MHD_OPTION_END);
    if (server->daemon == NULL) {
        error_set(err, "cannot listen on %s (address in use, or not an address of this host?)",
                  settings->listen);
        http_server_stop(server);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    server->port = info != NULL ? info->port : 0;
    log_info(MODULE, "listening on %s (port %u) with %u threads", settings->listen, server->port,
             settings->threads);
    return server;
}

unsigned http_server_port(const struct http_server *server)
{
    return server->port;
}

void http_server_drain(struct http_server *server, int64_t drain_ms)
{
    if (server == NULL || server->daemon == NULL)
        return;
    MHD_quiesce_daemon(server->daemon);
    log_info(MODULE, "stopped accepting connections; waiting up to %lld ms for requests in flight",
             (long long)drain_ms);
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    for (;;) {
        int open = atomic_load(&server->in_flight);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t waited = (now.tv_sec - started.tv_sec) * 1000 +
                         (now.tv_nsec - started.tv_nsec) / 1000000;
        if (open == 0)
            return;
        if (waited >= drain_ms) {
            log_warn(MODULE, "closing with %d requests still in flight after the drain time", open);
            return;
        }
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000000};
        nanosleep(&pause, NULL);
    }
}

void http_server_stop(struct http_server *server)
{
    if (server == NULL)
        return;
    /* Stop accepting, let the queued logouts finish (each resumes its connection), then close. */
    if (server->daemon != NULL)
        MHD_quiesce_daemon(server->daemon);
    job_pool_stop(server->jobs);
    if (server->daemon != NULL) {
        MHD_stop_daemon(server->daemon);
        log_info(MODULE, "stopped listening");
    }
    if (server->method_not_allowed != NULL)
        MHD_destroy_response(server->method_not_allowed);
    if (server->not_loaded != NULL)
        MHD_destroy_response(server->not_loaded);
    if (server->post_only != NULL)
        MHD_destroy_response(server->post_only);
    free(server);
}
