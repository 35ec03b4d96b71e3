#include "admin_server.h"

#include "http_response.h"
#include "listen_address.h"
#include "log.h"
#include "metrics_render.h"
#include "readiness.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "admin"
#define PROMETHEUS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct admin_server {
    struct MHD_Daemon *daemon;
    struct admin_settings settings;
    struct hub_namespace *const *list;
    size_t count;
};

/* Queues body (taken over) with status and content type, never cached. */
static enum MHD_Result queue_owned(struct MHD_Connection *connection, unsigned status, char *body,
                                   size_t len, const char *content_type)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (response == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result queue_json(struct MHD_Connection *connection, unsigned status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (text == NULL)
        return http_queue_json_error(connection, 500, "server_error", "out of memory");
    return queue_owned(connection, status, text, strlen(text), "application/json");
}

static enum MHD_Result serve_metrics(struct admin_server *server, struct MHD_Connection *connection)
{
    struct prom_text text = {0};
    metrics_render(server->list, server->count, server->settings.metrics, &text);
    if (text.failed || text.data == NULL) {
        prom_text_dispose(&text);
        return http_queue_json_error(connection, 500, "server_error", "out of memory");
    }
    return queue_owned(connection, MHD_HTTP_OK, text.data, text.len, PROMETHEUS_CONTENT_TYPE);
}

static enum MHD_Result serve_ready(struct admin_server *server, struct MHD_Connection *connection)
{
    bool ready = false;
    json_t *body = readiness_report(server->list, server->count,
                                    server->settings.degraded_not_ready_after_ms, &ready);
    return queue_json(connection, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result route(struct admin_server *server, struct MHD_Connection *connection,
                             const char *url)
{
    if (strcmp(url, "/healthz") == 0)
        return queue_json(connection, MHD_HTTP_OK, json_pack("{s:s}", "status", "alive"));
    if (strcmp(url, "/readyz") == 0)
        return serve_ready(server, connection);
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(server, connection);
    const char *slash = url[0] == '/' ? strchr(url + 1, '/') : NULL;
    if (slash != NULL && strcmp(slash, "/keys") == 0) {
        struct hub_namespace *ns =
            hub_namespace_find(server->list, server->count, url + 1, (size_t)(slash - url - 1));
        if (ns != NULL)
            return queue_json(connection, MHD_HTTP_OK, readiness_keys_report(ns));
        return http_queue_json_error(connection, MHD_HTTP_NOT_FOUND, "not_found",
                                     "namespace \"%.*s\" is not served by this hub",
                                     (int)(slash - url - 1 > 64 ? 64 : slash - url - 1), url + 1);
    }
    return http_queue_json_error(connection, MHD_HTTP_NOT_FOUND, "not_found",
                                 "no such route; the admin routes are /healthz, /readyz, /metrics "
                                 "and /<namespace>/keys");
}

static enum MHD_Result on_request(void *context, struct MHD_Connection *connection,
                                  const char *url, const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **request_context)
{
    (void)version;
    (void)upload_data;
    static int seen;
    if (*request_context == NULL) {
        *request_context = &seen; /* Respond on the second call, so keep-alive holds. */
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        struct MHD_Response *response =
            http_json_error("method_not_allowed", "the admin routes support GET and HEAD only");
        if (response == NULL)
            return MHD_NO;
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        enum MHD_Result rc = MHD_queue_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED, response);
        MHD_destroy_response(response);
        return rc;
    }
    return route(context, connection, url);
}

struct admin_server *admin_server_start(const struct admin_settings *settings,
                                        struct hub_namespace *const *list, size_t count,
                                        struct error *err)
{
    struct sockaddr_storage address;
    if (listen_address_resolve(settings->listen, "admin_listen", &address, err) != 0)
        return NULL;
    struct admin_server *server = calloc(1, sizeof(*server));
    if (server == NULL) {
        error_set(err, "out of memory");
        return NULL;
    }
    server->settings = *settings;
    server->list = list;
    server->count = count;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (address.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    server->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, server,
                                      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
                                      MHD_OPTION_CONNECTION_LIMIT, 64u,
                                      MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (server->daemon == NULL) {
        error_set(err, "cannot listen on %s for the admin routes (address in use?)",
                  settings->listen);
        free(server);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    log_info(MODULE, "admin routes listening on %s (port %u)", settings->listen,
             info != NULL ? info->port : 0);
    return server;
}

void admin_server_stop(struct admin_server *server)
{
    if (server == NULL)
        return;
    MHD_stop_daemon(server->daemon);
    free(server);
}
