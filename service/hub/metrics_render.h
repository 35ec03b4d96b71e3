/* The whole /metrics page: HTTP, key stream, logout and build metrics of every namespace, in the
 * Prometheus text format 0.0.4, every name in the kc_cluster_hub_ family. */
#ifndef KCHUB_METRICS_RENDER_H
#define KCHUB_METRICS_RENDER_H

#include "http_metrics.h"
#include "namespace.h"
#include "prom_text.h"

#include <stddef.h>

void metrics_render(struct hub_namespace *const *list, size_t count,
                    const struct http_metrics *http, struct prom_text *out);

#endif
