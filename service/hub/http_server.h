/* The public HTTP listener (libmicrohttpd, epoll with a thread pool): GET and HEAD
 * /<namespace>/jwks from the namespace's current snapshot, with ETag and If-None-Match; POST
 * /<namespace>/backchannel-logout through a job pool, so a logout waiting on Redis never holds up
 * an HTTP thread; JSON errors for everything else. No Redis call and no JSON work runs on the
 * JWKS path. */
#ifndef KCHUB_HTTP_SERVER_H
#define KCHUB_HTTP_SERVER_H

#include "error.h"
#include "http_metrics.h"
#include "namespace.h"

#include <stddef.h>
#include <stdint.h>

struct http_settings {
    const char *listen;            /* "host:port", "[v6]:port"; port 0 picks a free one */
    unsigned threads;              /* worker threads, each with its own epoll loop */
    unsigned connection_limit;     /* open connections at most, over all threads */
    unsigned connection_timeout_s; /* idle keep-alive connections close after this */
    size_t body_max_bytes;         /* request bodies (logout forms) larger than this get 413 */
    size_t logout_workers;         /* threads that run logouts, which wait on Redis */
    struct http_metrics *metrics;  /* borrowed; NULL counts nothing */
};

struct http_server;

/* Binds and starts serving the namespaces in list (borrowed; they must outlive the server).
 * Returns NULL with err naming the address and the cause when it cannot listen. */
struct http_server *http_server_start(const struct http_settings *settings,
                                      struct hub_namespace *const *list, size_t count,
                                      struct error *err);

/* The port actually bound (useful with port 0). */
unsigned http_server_port(const struct http_server *server);

/* Stops accepting connections, then waits until no request is in flight or drain_ms passes.
 * Idle keep-alive connections do not hold it up; http_server_stop closes them. Safe on NULL. */
void http_server_drain(struct http_server *server, int64_t drain_ms);

/* Stops accepting, closes every connection and frees the server. Safe on NULL. */
void http_server_stop(struct http_server *server);

#endif
