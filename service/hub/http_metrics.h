/* Counters and a latency histogram of the public HTTP listener, by route and status. Lock-free:
 * every HTTP thread adds with relaxed atomics; the admin listener reads. */
#ifndef KCHUB_HTTP_METRICS_H
#define KCHUB_HTTP_METRICS_H

#include "prom_text.h"

#include <stdint.h>

enum http_route { HTTP_ROUTE_JWKS, HTTP_ROUTE_LOGOUT, HTTP_ROUTE_OTHER, HTTP_ROUTE_COUNT };

struct http_metrics;

struct http_metrics *http_metrics_create(void);

void http_metrics_destroy(struct http_metrics *metrics);

/* Counts one answered request of route with status (100 to 599) that took duration_ns. */
void http_metrics_observe(struct http_metrics *metrics, enum http_route route, unsigned status,
                          int64_t duration_ns);

/* Appends kc_cluster_hub_http_requests_total and kc_cluster_hub_http_request_duration_seconds. */
void http_metrics_render(const struct http_metrics *metrics, struct prom_text *out);

#endif
