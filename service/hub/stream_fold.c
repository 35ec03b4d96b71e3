#include "stream_fold.h"

#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REJECT_LOG_WINDOW_MS  10000
#define REJECT_LOG_PER_WINDOW 100
#define REASON_BYTES          512
#define MODULE                "stream"

static int64_t redis_now_ms(const struct stream_fold *fold)
{
    return remote_clock_now_ms(fold->redis_clock);
}

int stream_fold_publish(struct stream_fold *fold, struct hub_namespace *ns)
{
    uint64_t version = key_store_version(ns->store);
    if (atomic_load(&ns->replayed) && version == ns->published_version)
        return 0;
    size_t len = 0;
    char *body = key_store_render_jwks(ns->store, &len);
    struct jwks_snapshot *snapshot =
        body != NULL ? jwks_snapshot_create(body, len, fold->settings.cache_control) : NULL;
    free(body);
    if (snapshot == NULL) {
        log_error(MODULE, "namespace %s: out of memory building the JWKS; still serving the "
                  "previous one", ns->name);
        return -1;
    }
    jwks_slot_publish(&ns->slot, snapshot);
    ns->published_version = version;
    atomic_store(&ns->keys_served, key_store_count(ns->store));
    log_debug(MODULE, "namespace %s: serving %zu keys", ns->name, key_store_count(ns->store));
    return 0;
}

void stream_fold_expire(struct stream_fold *fold, struct hub_namespace *const *list, size_t count)
{
    int64_t now = redis_now_ms(fold);
    for (size_t i = 0; i < count; i++) {
        struct hub_namespace *ns = list[i];
        pthread_mutex_lock(&ns->store_lock);
        size_t removed = key_store_expire(ns->store, now);
        pthread_mutex_unlock(&ns->store_lock);
        if (removed > 0)
            log_info(MODULE, "namespace %s: %zu keys left on lease end or retirement, %zu served",
                     ns->name, removed, key_store_count(ns->store));
        if (atomic_load(&ns->replayed))
            stream_fold_publish(fold, ns);
    }
}

int64_t stream_fold_next_deadline(struct hub_namespace *const *list, size_t count)
{
    int64_t next = KEY_STORE_NO_DEADLINE;
    for (size_t i = 0; i < count; i++) {
        int64_t deadline = key_store_next_deadline(list[i]->store);
        if (deadline < next)
            next = deadline;
    }
    return next;
}

static void log_rejection(struct stream_fold *fold, const struct hub_namespace *ns,
                          const char *id, const char *instance, enum event_reject verdict,
                          const char *reason)
{
    struct reject_log_budget *budget = &fold->budget;
    int64_t now = clock_monotonic_ms();
    if (now - budget->window_start_ms >= REJECT_LOG_WINDOW_MS) {
        if (budget->suppressed > 0)
            log_warn(MODULE, "%u more rejected key events were not logged in the last %d s; the "
                     "rejection counters include them", budget->suppressed,
                     REJECT_LOG_WINDOW_MS / 1000);
        budget->window_start_ms = now;
        budget->lines = budget->suppressed = 0;
    }
    if (budget->lines >= REJECT_LOG_PER_WINDOW) {
        budget->suppressed++;
        return;
    }
    budget->lines++;
    log_warn(MODULE, "rejected key event id=%s namespace=%s instance=%s reason=%s: %s", id,
             ns->name, instance[0] != '\0' ? instance : "-", event_reject_name(verdict), reason);
}

/* Reads the fields of one entry reply [id, [name, value, ...]] into fields. Returns the number of
 * field pairs (which may exceed max, in which case only max are filled), or -1 if the reply does
 * not have the shape of a stream entry. */
static long entry_fields(const redisReply *entry, struct protocol_field *fields, size_t max)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    const redisReply *values = entry->element[1];
    if (values->type == REDIS_REPLY_NIL)
        return 0;
    if (values->type != REDIS_REPLY_ARRAY || values->elements % 2 != 0)
        return -1;
    size_t pairs = values->elements / 2;
    for (size_t i = 0; i < pairs && i < max; i++) {
        const redisReply *name = values->element[2 * i], *value = values->element[2 * i + 1];
        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING)
            return -1;
        fields[i] = (struct protocol_field){name->str, name->len, value->str, value->len};
    }
    return (long)pairs;
}

static enum event_reject fold_entry(struct stream_fold *fold, struct hub_namespace *ns,
                                    int64_t entry_ms, const redisReply *entry,
                                    struct key_event *event, char *reason)
{
    struct protocol_field fields[PROTOCOL_FIELD_MAX_COUNT];
    long count = entry_fields(entry, fields, PROTOCOL_FIELD_MAX_COUNT);
    if (count < 0) {
        snprintf(reason, REASON_BYTES, "the entry does not have the shape of a stream entry");
        return EVENT_REJECT_MALFORMED;
    }
    enum event_reject verdict = key_event_parse(fields, (size_t)count, fold->settings.lease_max_ms,
                                                fold->jwk_cache,
                                                event, reason, REASON_BYTES);
    if (verdict != EVENT_OK)
        return verdict;
    int64_t ahead = entry_ms - redis_now_ms(fold);
    if (ahead > fold->settings.clock_ahead_max_ms) {
        snprintf(reason, REASON_BYTES, "the entry ID lies %" PRId64 " ms ahead of the Redis clock "
                 "(limit %" PRId64 " ms); add entries with ID * so Redis assigns it", ahead,
                 fold->settings.clock_ahead_max_ms);
        return EVENT_REJECT_FUTURE_ID;
    }
    /* While following, the distance to the Redis clock is how far behind the hub applies. */
    if (atomic_load(&ns->replayed))
        atomic_store(&ns->apply_delay_ms, -ahead);
    return key_store_apply(ns->store, entry_ms, event, reason, REASON_BYTES);
}

/* Applies one entry reply to ns and advances ns->last_id past it. */
static void apply_entry(struct stream_fold *fold, struct hub_namespace *ns, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 1 ||
        entry->element[0]->type != REDIS_REPLY_STRING || entry->element[0]->len >= STREAM_ID_MAX_BYTES)
        return;
    const char *id = entry->element[0]->str;
    uint64_t ms = 0, seq = 0;
    if (protocol_stream_id_parse(id, &ms, &seq) != 0)
        return;
    snprintf(ns->last_id, sizeof(ns->last_id), "%s", id);

    struct key_event event;
    char reason[REASON_BYTES] = "";
    memset(&event, 0, sizeof(event));
    enum event_reject verdict = fold_entry(fold, ns, (int64_t)ms, entry, &event, reason);
    if (verdict == EVENT_OK) {
        atomic_fetch_add(&ns->events_applied, 1);
        log_debug(MODULE, "applied key event id=%s namespace=%s instance=%s type=%s kid=%s", id,
                  ns->name, event.instance, event.type == KEY_EVENT_PUBLISH ? "publish" : "retire",
                  event.kid[0] != '\0' ? event.kid : "*");
    } else {
        atomic_fetch_add(&ns->events_rejected[verdict], 1);
        log_rejection(fold, ns, id, event.instance, verdict, reason);
    }
    key_event_dispose(&event);
}

size_t stream_fold_entries(struct stream_fold *fold, struct hub_namespace *ns,
                           const redisReply *entries)
{
    if (entries->type != REDIS_REPLY_ARRAY)
        return 0;
    pthread_mutex_lock(&ns->store_lock);
    for (size_t i = 0; i < entries->elements; i++)
        apply_entry(fold, ns, entries->element[i]);
    pthread_mutex_unlock(&ns->store_lock);
    return entries->elements;
}
