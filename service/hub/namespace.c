#include "namespace.h"

#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hub_namespace *hub_namespace_create(const char *name, int64_t retire_grace_ms,
                                           size_t max_keys)
{
    struct hub_namespace *ns = calloc(1, sizeof(*ns));
    if (ns == NULL)
        return NULL;
    ns->store = key_store_create(retire_grace_ms, max_keys);
    if (ns->store == NULL) {
        free(ns);
        return NULL;
    }
    snprintf(ns->name, sizeof(ns->name), "%s", name);
    snprintf(ns->stream_key, sizeof(ns->stream_key), "%s%s", name, PROTOCOL_JWKS_STREAM_SUFFIX);
    snprintf(ns->last_id, sizeof(ns->last_id), "0-0");
    jwks_slot_init(&ns->slot);
    pthread_mutex_init(&ns->store_lock, NULL);
    atomic_init(&ns->replayed, false);
    atomic_init(&ns->redis_connected, false);
    atomic_init(&ns->redis_state_since_ms, 0);
    pthread_mutex_init(&ns->redis_error_lock, NULL);
    return ns;
}

void hub_namespace_destroy(struct hub_namespace *ns)
{
    if (ns == NULL)
        return;
    jwks_slot_dispose(&ns->slot);
    pthread_mutex_destroy(&ns->store_lock);
    key_store_destroy(ns->store);
    pthread_mutex_destroy(&ns->redis_error_lock);
    free(ns);
}

void hub_namespace_set_redis_state(struct hub_namespace *ns, bool connected, const char *error)
{
    pthread_mutex_lock(&ns->redis_error_lock);
    snprintf(ns->redis_error, sizeof(ns->redis_error), "%s", error != NULL ? error : "");
    pthread_mutex_unlock(&ns->redis_error_lock);
    atomic_store(&ns->redis_state_since_ms, clock_realtime_ms());
    atomic_store(&ns->redis_connected, connected);
    if (connected)
        atomic_fetch_add(&ns->redis_connects, 1);
}

bool hub_namespace_redis_state(struct hub_namespace *ns, int64_t *since_ms, char *error,
                               size_t error_len)
{
    pthread_mutex_lock(&ns->redis_error_lock);
    snprintf(error, error_len, "%s", ns->redis_error);
    pthread_mutex_unlock(&ns->redis_error_lock);
    *since_ms = atomic_load(&ns->redis_state_since_ms);
    return atomic_load(&ns->redis_connected);
}

struct hub_namespace *hub_namespace_find(struct hub_namespace *const *list, size_t count,
                                         const char *name, size_t name_len)
{
    for (size_t i = 0; i < count; i++) {
        if (strlen(list[i]->name) == name_len && memcmp(list[i]->name, name, name_len) == 0)
            return list[i];
    }
    return NULL;
}
