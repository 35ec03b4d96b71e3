#include "metrics_render.h"

#include "logout_receiver.h"
#include "logout_token.h"

#include <stdatomic.h>

static uint64_t load(const atomic_uint_fast64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

static void render_keys(struct hub_namespace *const *list, size_t count, struct prom_text *out)
{
    prom_text_family(out, "kc_cluster_hub_keys_served", "gauge",
                     "Keys in the namespace's served JWKS, live and retiring.");
    for (size_t i = 0; i < count; i++) {
        const char *labels[] = {"namespace", list[i]->name, NULL};
        prom_text_sample_u64(out, "kc_cluster_hub_keys_served", labels, load(&list[i]->keys_served));
    }
    prom_text_family(out, "kc_cluster_hub_key_events_applied_total", "counter",
                     "Key stream entries applied to the key set.");
    for (size_t i = 0; i < count; i++) {
        const char *labels[] = {"namespace", list[i]->name, NULL};
        prom_text_sample_u64(out, "kc_cluster_hub_key_events_applied_total", labels,
                             load(&list[i]->events_applied));
    }
    prom_text_family(out, "kc_cluster_hub_key_events_rejected_total", "counter",
                     "Key stream entries rejected, by reason.");
    for (size_t i = 0; i < count; i++) {
        for (int reason = EVENT_OK + 1; reason < EVENT_REJECT_COUNT; reason++) {
            const char *labels[] = {"namespace", list[i]->name, "reason",
                                    event_reject_name((enum event_reject)reason), NULL};
            prom_text_sample_u64(out, "kc_cluster_hub_key_events_rejected_total", labels,
                                 load(&list[i]->events_rejected[reason]));
        }
    }
    prom_text_family(out, "kc_cluster_hub_stream_lag_seconds", "gauge",
                     "How long after Redis added it the hub applied the latest key entry.");
    for (size_t i = 0; i < count; i++) {
        const char *labels[] = {"namespace", list[i]->name, NULL};
        prom_text_sample(out, "kc_cluster_hub_stream_lag_seconds", labels,
                         (double)atomic_load(&list[i]->apply_delay_ms) / 1000.0);
    }
    prom_text_family(out, "kc_cluster_hub_stream_replayed", "gauge",
                     "1 once the namespace's key stream was read to its end after the start.");
    for (size_t i = 0; i < count; i++) {
        const char *labels[] = {"namespace", list[i]->name, NULL};
        prom_text_sample_u64(out, "kc_cluster_hub_stream_replayed", labels,
                             atomic_load(&list[i]->replayed) ? 1 : 0);
    }
}

static void render_logout_of(const struct hub_namespace *ns, struct prom_text *out)
{
    const struct logout_counters *c = logout_receiver_counters(ns->logout);
    const char *name = "kc_cluster_hub_logouts_total";
    const char *delivered[] = {"namespace", ns->name, "result", "delivered", "reason", "none", NULL};
    const char *unavailable[] = {"namespace", ns->name, "result", "unavailable", "reason",
                                 "redis", NULL};
    prom_text_sample_u64(out, name, delivered, load(&c->delivered));
    prom_text_sample_u64(out, name, unavailable, load(&c->unavailable));
    for (int r = LOGOUT_TOKEN_OK + 1; r < LOGOUT_TOKEN_RESULT_COUNT; r++) {
        const char *labels[] = {"namespace", ns->name, "result", "rejected", "reason",
                                logout_token_result_name((enum logout_token_result)r), NULL};
        prom_text_sample_u64(out, name, labels, load(&c->rejected_token[r]));
    }
    for (int r = 0; r < LOGOUT_REASON_COUNT; r++) {
        const char *labels[] = {"namespace", ns->name, "result", "rejected", "reason",
                                logout_request_reason_name((enum logout_request_reason)r), NULL};
        prom_text_sample_u64(out, name, labels, load(&c->rejected_request[r]));
    }
}

static void render_logouts(struct hub_namespace *const *list, size_t count, struct prom_text *out)
{
    prom_text_family(out, "kc_cluster_hub_logouts_total", "counter",
                     "Back-channel logouts received, by result and reason.");
    for (size_t i = 0; i < count; i++) {
        if (list[i]->logout != NULL)
            render_logout_of(list[i], out);
    }
    prom_text_family(out, "kc_cluster_hub_realm_key_fetches_total", "counter",
                     "Fetches of the issuer's signing keys, by result.");
    for (size_t i = 0; i < count; i++) {
        if (list[i]->logout == NULL)
            continue;
        const struct logout_counters *c = logout_receiver_counters(list[i]->logout);
        const char *ok[] = {"namespace", list[i]->name, "result", "ok", NULL};
        const char *failed[] = {"namespace", list[i]->name, "result", "failed", NULL};
        prom_text_sample_u64(out, "kc_cluster_hub_realm_key_fetches_total", ok,
                             load(&c->key_fetches_ok));
        prom_text_sample_u64(out, "kc_cluster_hub_realm_key_fetches_total", failed,
                             load(&c->key_fetches_failed));
    }
}

static void render_redis(struct hub_namespace *const *list, size_t count, struct prom_text *out)
{
    prom_text_family(out, "kc_cluster_hub_redis_connected", "gauge",
                     "1 while the stream thread's Redis connection is up.");
    for (size_t i = 0; i < count; i++) {
        const char *labels[] = {"namespace", list[i]->name, NULL};
        prom_text_sample_u64(out, "kc_cluster_hub_redis_connected", labels,
                             atomic_load(&list[i]->redis_connected) ? 1 : 0);
    }
    prom_text_family(out, "kc_cluster_hub_redis_reconnects_total", "counter",
                     "Connects of the stream thread to Redis after the first one.");
    for (size_t i = 0; i < count; i++) {
        const char *labels[] = {"namespace", list[i]->name, NULL};
        uint64_t connects = load(&list[i]->redis_connects);
        prom_text_sample_u64(out, "kc_cluster_hub_redis_reconnects_total", labels,
                             connects > 0 ? connects - 1 : 0);
    }
}

void metrics_render(struct hub_namespace *const *list, size_t count,
                    const struct http_metrics *http, struct prom_text *out)
{
    prom_text_family(out, "kc_cluster_hub_build_info", "gauge",
                     "Build information; the value is always 1.");
    const char *build[] = {"version", KCHUB_VERSION, NULL};
    prom_text_sample_u64(out, "kc_cluster_hub_build_info", build, 1);
    if (http != NULL)
        http_metrics_render(http, out);
    render_keys(list, count, out);
    render_redis(list, count, out);
    render_logouts(list, count, out);
}
