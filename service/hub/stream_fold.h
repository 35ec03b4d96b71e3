/* Folding stream entries into namespaces: parse each entry, check it against the Redis clock,
 * apply it to the key store, log and count rejections, expire keys, and publish a new JWKS
 * snapshot when a key set changes. No Redis I/O: input is the replies the stream thread read. */
#ifndef KCHUB_STREAM_FOLD_H
#define KCHUB_STREAM_FOLD_H

#include "clock.h"
#include "namespace.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

struct stream_fold_settings {
    int64_t lease_max_ms;       /* the longest lease accepted */
    int64_t clock_ahead_max_ms; /* how far an entry ID may lie ahead of the Redis clock */
    const char *cache_control;  /* Cache-Control of JWKS responses; borrowed */
};

/* Rejection log lines are capped per window, so a flood of bad entries cannot flood the log;
 * the namespace counters still count every rejection. */
struct reject_log_budget {
    int64_t window_start_ms;
    unsigned lines;
    unsigned suppressed;
};

struct stream_fold {
    struct stream_fold_settings settings;
    const struct remote_clock *redis_clock; /* borrowed; the Redis clock as last sampled */
    struct reject_log_budget budget;
    struct jwk_cache *jwk_cache; /* owned by the stream thread; NULL validates every entry */
};

/* Applies every entry of an entries array reply ([[id, [field, value, ...]], ...]) to ns in
 * order, advancing ns->last_id past each. Returns the number of entries. */
size_t stream_fold_entries(struct stream_fold *fold, struct hub_namespace *ns,
                           const redisReply *entries);

/* Removes the keys whose time has come in every namespace and publishes the changed sets of the
 * namespaces that are replayed. */
void stream_fold_expire(struct stream_fold *fold, struct hub_namespace *const *list, size_t count);

/* Publishes ns's key set as a new snapshot if it changed since the last one (or always, before
 * the first one). Returns 0, or -1 when out of memory (the old snapshot stays). */
int stream_fold_publish(struct stream_fold *fold, struct hub_namespace *ns);

/* The earliest time, on the Redis clock, at which a key of any namespace leaves. */
int64_t stream_fold_next_deadline(struct hub_namespace *const *list, size_t count);

#endif
