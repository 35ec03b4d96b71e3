#include "http_server.h"

#include "log.h"

#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MODULE                      "http"
#define CONNECTION_MEMORY_LIMIT     (32 * 1024)
#define ERROR_DESCRIPTION_MAX_BYTES 300
#define JWKS_ROUTE                  "jwks"

struct http_server {
    struct MHD_Daemon *daemon;
    struct hub_namespace *const *list;
    size_t count;
    struct MHD_Response *method_not_allowed;
    struct MHD_Response *not_loaded;
    unsigned port;
};

static struct MHD_Response *json_error_response(const char *error, const char *description)
{
    json_t *body = json_pack("{s:s, s:s}", "error", error, "error_description", description);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return NULL;
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (response == NULL) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return response;
}

/* Queues a one-off JSON error. */
static enum MHD_Result queue_error(struct MHD_Connection *connection, unsigned status,
                                   const char *error, const char *format, ...)
{
    char description[ERROR_DESCRIPTION_MAX_BYTES];
    va_list args;
    va_start(args, format);
    vsnprintf(description, sizeof(description), format, args);
    va_end(args);
    struct MHD_Response *response = json_error_response(error, description);
    if (response == NULL)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    if (status >= 500)
        log_error(MODULE, "answered %u: %s", status, description);
    return rc;
}

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

static enum MHD_Result on_request(void *context, struct MHD_Connection *connection,
                                  const char *url, const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **request_context)
{
    (void)version;
    (void)upload_data;
    struct http_server *server = context;
    static int request_seen;
    /* libmicrohttpd 0.9.75 closes the connection when a response is queued on the first call,
     * before the request is complete, so answer on the second call to keep connections alive. */
    if (*request_context == NULL) {
        *request_context = &request_seen;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* No route reads a body; discard it. */
        return MHD_YES;
    }
    const char *ns_name = NULL, *route = NULL;
    size_t ns_len = 0;
    if (split_path(url, &ns_name, &ns_len, &route) != 0 || strcmp(route, JWKS_ROUTE) != 0)
        return queue_error(connection, MHD_HTTP_NOT_FOUND, "not_found",
                           "no such route; the key set is at /<namespace>/jwks");
    struct hub_namespace *ns = hub_namespace_find(server->list, server->count, ns_name, ns_len);
    if (ns == NULL)
        return queue_error(connection, MHD_HTTP_NOT_FOUND, "not_found",
                           "namespace \"%.*s\" is not served by this hub", ns_len > 64 ? 64 : (int)ns_len,
                           ns_name);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return MHD_queue_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED, server->method_not_allowed);
    return serve_jwks(server, connection, ns);
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

/* Resolves settings->listen into a socket address. */
static int resolve_listen(const char *listen, struct sockaddr_storage *address, struct error *err)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon[1] == '\0') {
        error_set(err, "invalid listen address \"%s\": expected HOST:PORT, for example "
                  "127.0.0.1:8080 or [::1]:8080", listen);
        return -1;
    }
    char host[256];
    const char *start = listen, *end = colon;
    if (*start == '[' && end > start && end[-1] == ']') {
        start++;
        end--;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(end - start), start);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host[0] != '\0' ? host : NULL, colon + 1, &hints, &found);
    if (rc != 0) {
        error_set(err, "invalid listen address \"%s\": %s", listen, gai_strerror(rc));
        return -1;
    }
    memset(address, 0, sizeof(*address));
    memcpy(address, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    return 0;
}

static int build_static_responses(struct http_server *server)
{
    server->method_not_allowed =
        json_error_response("method_not_allowed", "the key set supports GET and HEAD only");
    server->not_loaded = json_error_response(
        "not_ready", "the hub has not finished reading this namespace's key stream; retry shortly");
    if (server->method_not_allowed == NULL || server->not_loaded == NULL)
        return -1;
    MHD_add_response_header(server->method_not_allowed, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    MHD_add_response_header(server->not_loaded, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    return 0;
}

struct http_server *http_server_start(const struct http_settings *settings,
                                      struct hub_namespace *const *list, size_t count,
                                      struct error *err)
{
    struct sockaddr_storage address;
    if (resolve_listen(settings->listen, &address, err) != 0)
        return NULL;
    struct http_server *server = calloc(1, sizeof(*server));
    if (server == NULL || build_static_responses(server) != 0) {
        error_set(err, "out of memory starting the HTTP server");
        http_server_stop(server);
        return NULL;
    }
    server->list = list;
    server->count = count;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (address.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger goes first so that option errors reach it. */
    server->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, server, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address, MHD_OPTION_THREAD_POOL_SIZE,
        settings->threads, MHD_OPTION_CONNECTION_LIMIT, settings->connection_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, settings->connection_timeout_s, MHD_OPTION_END);
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

void http_server_stop(struct http_server *server)
{
    if (server == NULL)
        return;
    if (server->daemon != NULL) {
        MHD_stop_daemon(server->daemon);
        log_info(MODULE, "stopped listening");
    }
    if (server->method_not_allowed != NULL)
        MHD_destroy_response(server->method_not_allowed);
    if (server->not_loaded != NULL)
        MHD_destroy_response(server->not_loaded);
    free(server);
}
