/* The Redis side of a back-channel logout: claim the token's (iss, jti) once across every hub
 * replica, then hand the notice to every instance, through the capped stream
 * <namespace>:logout:events and the channel <namespace>:logout. One Lua script does all three
 * atomically in one round trip, so a notice is never published without its claim or the other
 * way round. A small pool of connections serves the HTTP threads; each call has a deadline. */
#ifndef KCHUB_LOGOUT_FANOUT_H
#define KCHUB_LOGOUT_FANOUT_H

#include "error.h"
#include "logout_notice.h"
#include "redis_conn.h"

#include <stddef.h>
#include <stdint.h>

enum fanout_result {
    FANOUT_DELIVERED,   /* claimed and published */
    FANOUT_REPLAYED,    /* the (iss, jti) pair was claimed before: nothing published */
    FANOUT_UNAVAILABLE, /* Redis could not be reached, timed out or refused: nothing published */
};

struct logout_fanout;

/* Creates a pool of pool_size connections (connected on first use) with a copy of redis.
 * Returns NULL with err set when out of memory. */
struct logout_fanout *logout_fanout_create(const struct redis_settings *redis, size_t pool_size,
                                           struct error *err);

void logout_fanout_destroy(struct logout_fanout *fanout);

/* Claims the notice's (iss, jti) under namespace for replay_ttl_ms and, on a first delivery,
 * adds the notice to the stream (trimmed to about stream_max_len entries) and publishes it. On
 * FANOUT_DELIVERED writes the new entry's stream ID into stream_id (id_len bytes). On
 * FANOUT_UNAVAILABLE err says why. Safe to call from several threads. */
enum fanout_result logout_fanout_deliver(struct logout_fanout *fanout, const char *namespace,
                                         const struct logout_notice *notice,
                                         int64_t replay_ttl_ms, int64_t stream_max_len,
                                         char *stream_id, size_t id_len, struct error *err);

#endif
