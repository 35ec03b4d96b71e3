/* The public HTTP listener (libmicrohttpd, epoll with a thread pool): GET and HEAD
 * /<namespace>/jwks from the namespace's current snapshot, with ETag and If-None-Match, and JSON
 * errors for everything else. No Redis call and no JSON work runs on the JWKS path. */
#ifndef KCHUB_HTTP_SERVER_H
#define KCHUB_HTTP_SERVER_H

#include "error.h"
#include "namespace.h"

#include <stddef.h>

struct http_settings {
    const char *listen;            /* "host:port", "[v6]:port"; port 0 picks a free one */
    unsigned threads;              /* worker threads, each with its own epoll loop */
    unsigned connection_limit;     /* open connections at most, over all threads */
    unsigned connection_timeout_s; /* idle keep-alive connections close after this */
};

struct http_server;

/* Binds and starts serving the namespaces in list (borrowed; they must outlive the server).
 * Returns NULL with err naming the address and the cause when it cannot listen. */
struct http_server *http_server_start(const struct http_settings *settings,
                                      struct hub_namespace *const *list, size_t count,
                                      struct error *err);

/* The port actually bound (useful with port 0). */
unsigned http_server_port(const struct http_server *server);

/* Stops accepting, closes every connection and frees the server. Safe on NULL. */
void http_server_stop(struct http_server *server);

#endif
