#include "http_metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define STATUS_MIN 100
#define STATUS_MAX 599
#define BUCKET_COUNT 14

/* Upper bounds in nanoseconds, from 100 us to 5 s: the JWKS path lives in the first buckets, a
 * logout that waits on Redis or a realm key fetch in the later ones. */
static const int64_t bucket_bounds_ns[BUCKET_COUNT] = {
    100000,    250000,    500000,    1000000,    2500000,    5000000,    10000000,
    25000000,  50000000,  100000000, 250000000,  500000000,  1000000000, 5000000000};
static const char *const bucket_labels[BUCKET_COUNT] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025",  "0.05",    "0.1",    "0.25",  "0.5",    "1",     "5"};
static const char *const route_names[HTTP_ROUTE_COUNT] = {"jwks", "backchannel_logout", "other"};

struct route_histogram {
    atomic_uint_fast64_t buckets[BUCKET_COUNT + 1]; /* the last one is +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_ns;
};

struct http_metrics {
    atomic_uint_fast64_t requests[HTTP_ROUTE_COUNT][STATUS_MAX - STATUS_MIN + 1];
    struct route_histogram durations[HTTP_ROUTE_COUNT];
};

struct http_metrics *http_metrics_create(void)
{
    return calloc(1, sizeof(struct http_metrics)); /* Zeroed atomics are valid zero counters. */
}

void http_metrics_destroy(struct http_metrics *metrics)
{
    free(metrics);
}

void http_metrics_observe(struct http_metrics *m, enum http_route route, unsigned status,
                          int64_t duration_ns)
{
    if (status < STATUS_MIN || status > STATUS_MAX || route >= HTTP_ROUTE_COUNT)
        return;
    atomic_fetch_add_explicit(&m->requests[route][status - STATUS_MIN], 1, memory_order_relaxed);
    struct route_histogram *h = &m->durations[route];
    size_t bucket = 0;
    while (bucket < BUCKET_COUNT && duration_ns > bucket_bounds_ns[bucket])
        bucket++;
    atomic_fetch_add_explicit(&h->buckets[bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint_fast64_t)(duration_ns > 0 ? duration_ns : 0),
                              memory_order_relaxed);
}

static void render_histogram(const struct route_histogram *h, const char *route,
                             struct prom_text *out)
{
    const char *name = "kc_cluster_hub_http_request_duration_seconds";
    uint64_t cumulative = 0;
    char bucket_name[96];
    snprintf(bucket_name, sizeof(bucket_name), "%s_bucket", name);
    for (size_t i = 0; i <= BUCKET_COUNT; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        const char *labels[] = {"route", route, "le", i < BUCKET_COUNT ? bucket_labels[i] : "+Inf",
                                NULL};
        prom_text_sample_u64(out, bucket_name, labels, cumulative);
    }
    const char *labels[] = {"route", route, NULL};
    char sum_name[96], count_name[96];
    snprintf(sum_name, sizeof(sum_name), "%s_sum", name);
    snprintf(count_name, sizeof(count_name), "%s_count", name);
    prom_text_sample(out, sum_name, labels,
                     (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    prom_text_sample_u64(out, count_name, labels, cumulative);
}

void http_metrics_render(const struct http_metrics *m, struct prom_text *out)
{
    prom_text_family(out, "kc_cluster_hub_http_requests_total", "counter",
                     "HTTP requests answered on the public listener, by route and status.");
    for (int route = 0; route < HTTP_ROUTE_COUNT; route++) {
        for (unsigned status = STATUS_MIN; status <= STATUS_MAX; status++) {
            uint64_t n = atomic_load_explicit(&m->requests[route][status - STATUS_MIN],
                                              memory_order_relaxed);
            if (n == 0)
                continue;
            char code[8];
            snprintf(code, sizeof(code), "%u", status);
            const char *labels[] = {"route", route_names[route], "status", code, NULL};
            prom_text_sample_u64(out, "kc_cluster_hub_http_requests_total", labels, n);
        }
    }
    prom_text_family(out, "kc_cluster_hub_http_request_duration_seconds", "histogram",
                     "Time from the start of a request to its completion on the public listener.");
    for (int route = 0; route < HTTP_ROUTE_COUNT; route++)
        render_histogram(&m->durations[route], route_names[route], out);
}
