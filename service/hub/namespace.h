/* One served namespace: its name, its key store (owned by the stream thread), the JWKS slot that
 * HTTP threads read, and counters that any thread may read. */
#ifndef KCHUB_NAMESPACE_H
#define KCHUB_NAMESPACE_H

#include "jwks_snapshot.h"
#include "key_store.h"
#include "protocol.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define STREAM_ID_MAX_BYTES 48

struct hub_namespace {
    char name[PROTOCOL_NAMESPACE_MAX_BYTES + 1];
    char stream_key[PROTOCOL_NAMESPACE_MAX_BYTES + sizeof(PROTOCOL_JWKS_STREAM_SUFFIX)];

    /* Owned by the stream thread. */
    struct key_store *store;
    char last_id[STREAM_ID_MAX_BYTES]; /* the last entry applied, "0-0" before any */
    uint64_t published_version;        /* store version of the snapshot in the slot */

    /* Shared with HTTP threads. */
    struct jwks_slot slot;
    atomic_bool replayed; /* the initial replay is done and a snapshot is in the slot */
    atomic_uint_fast64_t events_applied;
    atomic_uint_fast64_t events_rejected[EVENT_REJECT_COUNT];
    atomic_uint_fast64_t keys_served;
};

/* Creates a namespace named name (which must pass protocol_namespace_is_valid) with an empty
 * store. NULL when out of memory. */
struct hub_namespace *hub_namespace_create(const char *name, int64_t retire_grace_ms,
                                           size_t max_keys);

void hub_namespace_destroy(struct hub_namespace *ns);

/* Finds a namespace by name of name_len bytes in the array, or NULL. */
struct hub_namespace *hub_namespace_find(struct hub_namespace *const *list, size_t count,
                                         const char *name, size_t name_len);

#endif
