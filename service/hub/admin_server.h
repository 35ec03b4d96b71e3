/* The admin listener, for operators and orchestrators, separate from the public one (by default
 * on loopback): GET /healthz, /readyz, /metrics and /<namespace>/keys. */
#ifndef KCHUB_ADMIN_SERVER_H
#define KCHUB_ADMIN_SERVER_H

#include "error.h"
#include "http_metrics.h"
#include "namespace.h"

#include <stddef.h>
#include <stdint.h>

struct admin_settings {
    const char *listen;                  /* "host:port"; port 0 picks a free one */
    const struct http_metrics *metrics;  /* the public listener's, borrowed */
    int64_t degraded_not_ready_after_ms; /* 0: a degraded hub stays ready (the default) */
};

struct admin_server;

/* Binds and starts serving the namespaces in list (borrowed). Returns NULL with err set. */
struct admin_server *admin_server_start(const struct admin_settings *settings,
                                        struct hub_namespace *const *list, size_t count,
                                        struct error *err);

/* Stops and frees the server. Safe on NULL. */
void admin_server_stop(struct admin_server *server);

#endif
