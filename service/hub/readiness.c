#include "readiness.h"

#include "clock.h"

#include <pthread.h>

#define ERROR_TEXT_BYTES 256

static json_t *namespace_state(struct hub_namespace *ns, int64_t now_ms,
                               int64_t degraded_not_ready_after_ms, bool *ready)
{
    int64_t since_ms = 0;
    char error[ERROR_TEXT_BYTES] = "";
    bool connected = hub_namespace_redis_state(ns, &since_ms, error, sizeof(error));
    bool replayed = atomic_load(&ns->replayed);
    const char *state = "ready";
    if (!replayed) {
        state = "replaying";
        *ready = false;
    } else if (!connected) {
        state = "degraded";
        if (degraded_not_ready_after_ms > 0 && since_ms > 0 &&
            now_ms - since_ms > degraded_not_ready_after_ms)
            *ready = false;
    }
    json_t *item = json_pack("{s:s, s:s, s:b, s:b, s:I}", "name", ns->name, "state", state,
                             "replayed", replayed, "redis_connected", connected, "keys_served",
                             (json_int_t)atomic_load(&ns->keys_served));
    if (item != NULL && since_ms > 0)
        json_object_set_new(item, "redis_state_since_ms", json_integer(since_ms));
    if (item != NULL && !connected && error[0] != '\0')
        json_object_set_new(item, "reason", json_string(error));
    return item;
}

json_t *readiness_report(struct hub_namespace *const *list, size_t count,
                         int64_t degraded_not_ready_after_ms, bool *ready)
{
    *ready = true;
    bool degraded = false;
    int64_t now_ms = clock_realtime_ms();
    json_t *namespaces = json_array();
    for (size_t i = 0; namespaces != NULL && i < count; i++) {
        json_t *item = namespace_state(list[i], now_ms, degraded_not_ready_after_ms, ready);
        const char *state = json_string_value(json_object_get(item, "state"));
        degraded = degraded || (state != NULL && state[0] == 'd');
        json_array_append_new(namespaces, item);
    }
    const char *status = "ready";
    if (!*ready)
        status = "not_ready";
    else if (degraded)
        status = "degraded";
    return json_pack("{s:s, s:o}", "status", status, "namespaces", namespaces);
}

static void add_key(const struct key_view *key, void *context)
{
    json_t *keys = context;
    json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "kid", key->kid, "instance",
                             key->instance, "alg", key->alg, "state",
                             key->retire_at_ms != 0 ? "retiring" : "live", "published_at_ms",
                             (json_int_t)key->published_ms, "renewed_at_ms",
                             (json_int_t)key->renewed_ms, "lease_end_ms",
                             (json_int_t)key->lease_end_ms);
    if (item != NULL && key->retire_at_ms != 0)
        json_object_set_new(item, "retire_at_ms", json_integer(key->retire_at_ms));
    json_array_append_new(keys, item);
}

json_t *readiness_keys_report(struct hub_namespace *ns)
{
    json_t *keys = json_array();
    if (keys == NULL)
        return NULL;
    pthread_mutex_lock(&ns->store_lock);
    key_store_foreach(ns->store, add_key, keys);
    pthread_mutex_unlock(&ns->store_lock);
    return json_pack("{s:s, s:b, s:o}", "namespace", ns->name, "replayed",
                     atomic_load(&ns->replayed), "keys", keys);
}
