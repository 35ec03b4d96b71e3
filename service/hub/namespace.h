/* One served namespace: its name, its key store (owned by the stream thread), the JWKS slot that
 * HTTP threads read, and counters that any thread may read. */
#ifndef KCHUB_NAMESPACE_H
#define KCHUB_NAMESPACE_H

#include "jwks_snapshot.h"
#include "key_store.h"
#include "logout_receiver.h"
#include "protocol.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define STREAM_ID_MAX_BYTES 48

struct hub_namespace {
    char name[PROTOCOL_NAMESPACE_MAX_BYTES + 1];
    char stream_key[PROTOCOL_NAMESPACE_MAX_BYTES + sizeof(PROTOCOL_JWKS_STREAM_SUFFIX)];

    /* Owned by the stream thread, which holds store_lock while it changes the store, so the
     * admin keys route can read it. The JWKS path never takes it. */
    pthread_mutex_t store_lock;
    struct key_store *store;
    char last_id[STREAM_ID_MAX_BYTES]; /* the last entry applied, "0-0" before any */
    uint64_t published_version;        /* store version of the snapshot in the slot */

    /* Shared with HTTP threads. */
    struct logout_receiver *logout; /* NULL when logout is not configured; set before serving */
    struct jwks_slot slot;
    atomic_bool replayed; /* the initial replay is done and a snapshot is in the slot */
    atomic_uint_fast64_t events_applied;
    atomic_uint_fast64_t events_rejected[EVENT_REJECT_COUNT];
    atomic_uint_fast64_t keys_served;
    atomic_int_fast64_t apply_delay_ms; /* Redis time of applying the latest entry minus its ID
                                         * time, while following (not during the replay) */

    /* The stream thread's Redis connection, for readiness. All namespaces share it. */
    atomic_bool redis_connected;
    atomic_uint_fast64_t redis_connects; /* successful connects; all after the first are
                                          * reconnects */
    atomic_int_fast64_t redis_state_since_ms; /* epoch ms of the last change, 0 before any */
    pthread_mutex_t redis_error_lock;         /* guards redis_error */
    char redis_error[256];                    /* why it is down; "" while connected */
};

/* Creates a namespace named name (which must pass protocol_namespace_is_valid) with an empty
 * store. NULL when out of memory. */
struct hub_namespace *hub_namespace_create(const char *name, int64_t retire_grace_ms,
                                           size_t max_keys);

void hub_namespace_destroy(struct hub_namespace *ns);

/* Records the Redis connection state (the stream thread calls it on every change). error says
 * why it is down and may be NULL. */
void hub_namespace_set_redis_state(struct hub_namespace *ns, bool connected, const char *error);

/* Reads the Redis connection state: returns whether it is connected, and fills *since_ms (epoch
 * ms of the last change, 0 before the first) and error (up to error_len bytes, "" when none). */
bool hub_namespace_redis_state(struct hub_namespace *ns, int64_t *since_ms, char *error,
                               size_t error_len);

/* Finds a namespace by name of name_len bytes in the array, or NULL. */
struct hub_namespace *hub_namespace_find(struct hub_namespace *const *list, size_t count,
                                         const char *name, size_t name_len);

#endif
