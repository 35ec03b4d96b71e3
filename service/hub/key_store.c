#include "key_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct key_record {
    struct jwk_public key; /* key.kid is the lookup key */
    char instance[PROTOCOL_INSTANCE_MAX_BYTES + 1];
    int64_t published_ms;
    int64_t renewed_ms;
    int64_t lease_end_ms;
    int64_t retire_at_ms;
};

/* The stream thread calls key_store_expire and key_store_next_deadline after every batch of
 * events, so with many keys a scan of every record each time shows in profiles. The store keeps
 * earliest_ms, the earliest deadline of any record, and rescans only when that may have moved
 * later: when the record that had it was renewed, removed or lost its retirement. */
struct key_store {
    struct key_record **records; /* sorted by kid */
    size_t count;
    size_t capacity;
    size_t max_keys;
    int64_t retire_grace_ms;
    uint64_t version;
    int64_t earliest_ms; /* no record leaves before this; exact unless earliest_stale */
    bool earliest_stale; /* a later deadline may have replaced the earliest one */
};

struct key_store *key_store_create(int64_t retire_grace_ms, size_t max_keys)
{
    struct key_store *store = calloc(1, sizeof(*store));
    if (store == NULL)
        return NULL;
    store->retire_grace_ms = retire_grace_ms;
    store->max_keys = max_keys;
    store->earliest_ms = KEY_STORE_NO_DEADLINE;
    return store;
}

static int64_t record_deadline(const struct key_record *record)
{
    if (record->retire_at_ms != 0 && record->retire_at_ms < record->lease_end_ms)
        return record->retire_at_ms;
    return record->lease_end_ms;
}

/* Updates earliest_ms after one record's deadline went from before_ms to after_ms
 * (KEY_STORE_NO_DEADLINE for an added or a removed record). */
static void note_deadline_change(struct key_store *store, int64_t before_ms, int64_t after_ms)
{
    if (after_ms < store->earliest_ms)
        store->earliest_ms = after_ms;
    else if (before_ms == store->earliest_ms && after_ms != before_ms)
        store->earliest_stale = true;
}

static int64_t scan_earliest(const struct key_store *store)
{
    int64_t next = KEY_STORE_NO_DEADLINE;
    for (size_t i = 0; i < store->count; i++) {
        int64_t deadline = record_deadline(store->records[i]);
        if (deadline < next)
            next = deadline;
    }
    return next;
}

static void record_free(struct key_record *record)
{
    jwk_public_dispose(&record->key);
    free(record);
}

void key_store_destroy(struct key_store *store)
{
    if (store == NULL)
        return;
    for (size_t i = 0; i < store->count; i++)
        record_free(store->records[i]);
    free(store->records);
    free(store);
}

/* Binary search by kid. Returns the index of the match, or of the insertion point with *found
 * false. */
static size_t find_index(const struct key_store *store, const char *kid, bool *found)
{
    size_t low = 0, high = store->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int order = strcmp(store->records[mid]->key.kid, kid);
        if (order == 0) {
            *found = true;
            return mid;
        }
        if (order < 0)
            low = mid + 1;
        else
            high = mid;
    }
    *found = false;
    return low;
}

static void remove_at(struct key_store *store, size_t index)
{
    note_deadline_change(store, record_deadline(store->records[index]), KEY_STORE_NO_DEADLINE);
    record_free(store->records[index]);
    memmove(&store->records[index], &store->records[index + 1],
            (store->count - index - 1) * sizeof(store->records[0]));
    store->count--;
    store->version++;
}

static bool record_gone_at(const struct key_record *record, int64_t ms)
{
    return record->lease_end_ms <= ms || (record->retire_at_ms != 0 && record->retire_at_ms <= ms);
}

static enum event_reject insert_at(struct key_store *store, size_t index, int64_t entry_ms,
                                   struct key_event *event, char *reason, size_t reason_len)
{
    if (store->count >= store->max_keys) {
        snprintf(reason, reason_len, "the namespace already has %zu live keys, the maximum",
                 store->count);
        return EVENT_REJECT_TOO_LARGE;
    }
    if (store->count == store->capacity) {
        size_t capacity = store->capacity == 0 ? 16 : store->capacity * 2;
        struct key_record **grown = realloc(store->records, capacity * sizeof(*grown));
        if (grown == NULL) {
            snprintf(reason, reason_len, "out of memory adding the key");
            return EVENT_REJECT_TOO_LARGE;
        }
        store->records = grown;
        store->capacity = capacity;
    }
    struct key_record *record = calloc(1, sizeof(*record));
    if (record == NULL) {
        snprintf(reason, reason_len, "out of memory adding the key");
        return EVENT_REJECT_TOO_LARGE;
    }
    record->key = event->key;
    memset(&event->key, 0, sizeof(event->key));
    memcpy(record->instance, event->instance, sizeof(record->instance));
    record->published_ms = record->renewed_ms = entry_ms;
    record->lease_end_ms = entry_ms + event->lease_ms;
    memmove(&store->records[index + 1], &store->records[index],
            (store->count - index) * sizeof(store->records[0]));
    store->records[index] = record;
    store->count++;
    store->version++;
    note_deadline_change(store, KEY_STORE_NO_DEADLINE, record_deadline(record));
    return EVENT_OK;
}

static enum event_reject apply_publish(struct key_store *store, int64_t entry_ms,
                                       struct key_event *event, char *reason, size_t reason_len)
{
    bool found;
    size_t index = find_index(store, event->key.kid, &found);
    if (found && record_gone_at(store->records[index], entry_ms)) {
        /* The old key had left by the time of this entry, so the kid is free again. */
        remove_at(store, index);
        found = false;
    }
    if (!found)
        return insert_at(store, index, entry_ms, event, reason, reason_len);

    struct key_record *record = store->records[index];
    if (strcmp(record->key.json, event->key.json) != 0) {
        snprintf(reason, reason_len, "kid \"%s\" is already live with other key material "
                 "(published by instance %s); Keycloak would use only the first key with this "
                 "kid, so choose another kid", record->key.kid, record->instance);
        return EVENT_REJECT_KID_CONFLICT;
    }
    if (strcmp(record->instance, event->instance) != 0) {
        snprintf(reason, reason_len, "kid \"%s\" is already live for instance %s; each instance "
                 "must publish its own keys", record->key.kid, record->instance);
        return EVENT_REJECT_KID_OWNER;
    }
    int64_t before_ms = record_deadline(record);
    record->renewed_ms = entry_ms;
    record->lease_end_ms = entry_ms + event->lease_ms;
    record->retire_at_ms = 0;
    note_deadline_change(store, before_ms, record_deadline(record));
    return EVENT_OK;
}

static void start_retire(struct key_store *store, struct key_record *record, int64_t entry_ms)
{
    if (record->retire_at_ms != 0)
        return;
    int64_t before_ms = record_deadline(record);
    record->retire_at_ms = entry_ms + store->retire_grace_ms;
    note_deadline_change(store, before_ms, record_deadline(record));
}

static enum event_reject apply_retire(struct key_store *store, int64_t entry_ms,
                                      const struct key_event *event, char *reason,
                                      size_t reason_len)
{
    if (event->kid[0] == '\0') {
        for (size_t i = 0; i < store->count; i++) {
            if (strcmp(store->records[i]->instance, event->instance) == 0)
                start_retire(store, store->records[i], entry_ms);
        }
        return EVENT_OK;
    }
    bool found;
    size_t index = find_index(store, event->kid, &found);
    if (!found || record_gone_at(store->records[index], entry_ms))
        return EVENT_OK;
    struct key_record *record = store->records[index];
    if (strcmp(record->instance, event->instance) != 0) {
        snprintf(reason, reason_len, "kid \"%s\" belongs to instance %s, which alone may retire it",
                 record->key.kid, record->instance);
        return EVENT_REJECT_KID_OWNER;
    }
    start_retire(store, record, entry_ms);
    return EVENT_OK;
}

enum event_reject key_store_apply(struct key_store *store, int64_t entry_ms,
                                  struct key_event *event, char *reason, size_t reason_len)
{
    if (reason_len > 0)
        reason[0] = '\0';
    if (event->type == KEY_EVENT_PUBLISH)
        return apply_publish(store, entry_ms, event, reason, reason_len);
    return apply_retire(store, entry_ms, event, reason, reason_len);
}

size_t key_store_expire(struct key_store *store, int64_t now_ms)
{
    if (!store->earliest_stale && now_ms < store->earliest_ms)
        return 0;
    size_t kept = 0, removed = 0;
    for (size_t i = 0; i < store->count; i++) {
        struct key_record *record = store->records[i];
        if (record_gone_at(record, now_ms)) {
            record_free(record);
            removed++;
        } else {
            store->records[kept++] = record;
        }
    }
    store->count = kept;
    if (removed > 0)
        store->version++;
    store->earliest_ms = scan_earliest(store);
    store->earliest_stale = false;
    return removed;
}

int64_t key_store_next_deadline(const struct key_store *store)
{
    return store->earliest_stale ? scan_earliest(store) : store->earliest_ms;
}

size_t key_store_count(const struct key_store *store)
{
    return store->count;
}

uint64_t key_store_version(const struct key_store *store)
{
    return store->version;
}

char *key_store_render_jwks(const struct key_store *store, size_t *len)
{
    static const char head[] = "{\"keys\":[";
    static const char tail[] = "]}";
    size_t total = sizeof(head) - 1 + sizeof(tail) - 1 + 1;
    for (size_t i = 0; i < store->count; i++)
        total += store->records[i]->key.json_len + 1;

    char *body = malloc(total);
    if (body == NULL)
        return NULL;
    size_t at = sizeof(head) - 1;
    memcpy(body, head, at);
    for (size_t i = 0; i < store->count; i++) {
        if (i > 0)
            body[at++] = ',';
        memcpy(body + at, store->records[i]->key.json, store->records[i]->key.json_len);
        at += store->records[i]->key.json_len;
    }
    memcpy(body + at, tail, sizeof(tail));
    *len = at + sizeof(tail) - 1;
    return body;
}

void key_store_foreach(const struct key_store *store,
                       void (*visit)(const struct key_view *key, void *context), void *context)
{
    for (size_t i = 0; i < store->count; i++) {
        const struct key_record *record = store->records[i];
        struct key_view view = {
            .kid = record->key.kid,
            .instance = record->instance,
            .alg = record->key.alg,
            .jwk_json = record->key.json,
            .published_ms = record->published_ms,
            .renewed_ms = record->renewed_ms,
            .lease_end_ms = record->lease_end_ms,
            .retire_at_ms = record->retire_at_ms,
        };
        visit(&view, context);
    }
}
