/* Immutable published JWKS bodies and the slot each namespace serves from. The stream thread
 * builds a snapshot once per change of the key set and swaps it in; HTTP threads take a
 * reference, answer from prebuilt responses, and let go. The slot's lock covers only the pointer
 * swap and a reference count increment, never JSON work or I/O. */
#ifndef KCHUB_JWKS_SNAPSHOT_H
#define KCHUB_JWKS_SNAPSHOT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct jwks_snapshot;

/* Builds a snapshot of body (copied), with a strong ETag derived from its SHA-256 and a
 * prebuilt 200 response (Content-Type, ETag, Cache-Control) and 304 response. cache_control
 * NULL or empty sends no Cache-Control. Returns NULL when out of memory. */
struct jwks_snapshot *jwks_snapshot_create(const char *body, size_t len, const char *cache_control);

/* Drops one reference; the last one frees the snapshot. Safe on NULL. */
void jwks_snapshot_release(struct jwks_snapshot *snapshot);

/* The quoted strong ETag, as sent in the ETag header. */
const char *jwks_snapshot_etag(const struct jwks_snapshot *snapshot);

/* True when an If-None-Match header value (a list of entity tags or "*") matches the snapshot,
 * using the weak comparison that RFC 9110 prescribes for If-None-Match. */
bool jwks_snapshot_matches(const struct jwks_snapshot *snapshot, const char *if_none_match);

/* The prebuilt responses, owned by the snapshot. Queue them while holding a reference. */
struct MHD_Response *jwks_snapshot_response_ok(const struct jwks_snapshot *snapshot);
struct MHD_Response *jwks_snapshot_response_not_modified(const struct jwks_snapshot *snapshot);

/* Where the current snapshot of one namespace lives. Caller-owned. */
struct jwks_slot {
    pthread_mutex_t lock;
    struct jwks_snapshot *current; /* NULL until the first publish */
};

void jwks_slot_init(struct jwks_slot *slot);

/* Releases the current snapshot and the lock. */
void jwks_slot_dispose(struct jwks_slot *slot);

/* Installs snapshot (taking over the caller's reference) and releases the one it replaces. */
void jwks_slot_publish(struct jwks_slot *slot, struct jwks_snapshot *snapshot);

/* Returns a new reference to the current snapshot (release it), or NULL before the first one. */
struct jwks_snapshot *jwks_slot_acquire(struct jwks_slot *slot);

#endif
