/* The fold of one namespace's key stream: which keys are live, which are retiring, and when each
 * leaves. Pure state, no I/O or clock of its own: callers pass every time in milliseconds of the
 * Redis clock. Not thread-safe; the stream thread owns each store. */
#ifndef KCHUB_KEY_STORE_H
#define KCHUB_KEY_STORE_H

#include "protocol.h"

#include <stddef.h>
#include <stdint.h>

#define KEY_STORE_NO_DEADLINE INT64_MAX

struct key_store;

/* One served key, as key_store_foreach shows it. Pointers stay valid until the next change. */
struct key_view {
    const char *kid;
    const char *instance;
    const char *alg;
    const char *jwk_json;
    int64_t published_ms; /* entry time of the first publish the store saw */
    int64_t renewed_ms;   /* entry time of the latest publish */
    int64_t lease_end_ms;
    int64_t retire_at_ms; /* 0 unless a retire entry is counting down */
};

/* Creates an empty store. retire_grace_ms is how long a retired key stays served; max_keys caps
 * the live keys, so a runaway publisher cannot exhaust memory. NULL when out of memory. */
struct key_store *key_store_create(int64_t retire_grace_ms, size_t max_keys);

void key_store_destroy(struct key_store *store);

/* Applies one parsed event whose stream entry ID carries time entry_ms. A publish adds the key
 * or renews it (and cancels a pending retire); it takes the JWK out of event->key on success.
 * A retire starts the grace period of the named key, or of all the instance's keys when the
 * event has no kid; retiring an unknown kid does nothing. Returns EVENT_OK, or
 * EVENT_REJECT_KID_CONFLICT (kid live with other key material), EVENT_REJECT_KID_OWNER (kid live
 * for another instance) or EVENT_REJECT_TOO_LARGE (store full), with a reason sentence. */
enum event_reject key_store_apply(struct key_store *store, int64_t entry_ms,
                                  struct key_event *event, char *reason, size_t reason_len);

/* Removes keys whose lease ended or whose retire grace passed at or before now_ms. Returns the
 * number removed. */
size_t key_store_expire(struct key_store *store, int64_t now_ms);

/* The earliest time at which a key leaves, or KEY_STORE_NO_DEADLINE. */
int64_t key_store_next_deadline(const struct key_store *store);

size_t key_store_count(const struct key_store *store);

/* A counter that changes whenever the set of served JWKs changes, so callers rebuild the JWKS
 * body only then. Renewals and retire countdowns do not change it. */
uint64_t key_store_version(const struct key_store *store);

/* Renders {"keys":[...]} with the keys ordered by kid (byte order), so every hub replica that has
 * folded the same stream serves the same bytes. Returns a new NUL-terminated string (caller
 * frees) and its length in *len, or NULL when out of memory. */
char *key_store_render_jwks(const struct key_store *store, size_t *len);

/* Calls visit for every key in kid order. */
void key_store_foreach(const struct key_store *store,
                       void (*visit)(const struct key_view *key, void *context), void *context);

#endif
