/* The stream thread: one Redis connection that replays every namespace's key stream from its
 * start in pages, then follows all of them with one blocking XREAD, hands each batch to the
 * fold, expires keys on their lease and grace times (also while Redis is unreachable), and trims
 * the streams. It reconnects with capped exponential backoff and jitter, and resumes after the
 * last entry it applied, so nothing is skipped and nothing is applied twice. */
#ifndef KCHUB_STREAM_SYNC_H
#define KCHUB_STREAM_SYNC_H

#include "error.h"
#include "namespace.h"
#include "redis_conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stream_sync_settings {
    int64_t lease_max_ms;         /* the longest lease accepted */
    int64_t retire_grace_ms;      /* how long a retired key stays served */
    int64_t clock_ahead_max_ms;   /* how far an entry ID may lie ahead of the Redis clock */
    const char *cache_control;    /* Cache-Control of JWKS responses; must outlive the sync */
    bool check_access_on_connect; /* run redis_check_access on the first connection */
};

struct stream_sync;

/* Starts the thread for the namespaces in list (borrowed; they must outlive the sync). redis is
 * copied. Returns NULL with err set when the thread cannot start. */
struct stream_sync *stream_sync_start(const struct redis_settings *redis,
                                      struct hub_namespace *const *list, size_t count,
                                      const struct stream_sync_settings *settings,
                                      struct error *err);

/* Interrupts any wait, joins the thread, closes Redis and frees the sync. Safe on NULL. */
void stream_sync_stop(struct stream_sync *sync);

#endif
