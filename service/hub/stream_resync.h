/* Detecting that Redis lost entries of a namespace's key stream (a restart without persistence,
 * FLUSHALL, a failover to a replica that was behind), and the re-seed that follows: the hub keeps
 * every key whose lease still runs and writes it back to the stream as a publish entry with its
 * remaining lease, so a hub replica that starts after the loss reads the full key set. */
#ifndef KCHUB_STREAM_RESYNC_H
#define KCHUB_STREAM_RESYNC_H

#include "error.h"
#include "namespace.h"
#include "redis_conn.h"

#include <stdbool.h>
#include <stdint.h>

/* What XINFO STREAM reports about a stream. */
struct stream_info {
    bool exists;
    char last_generated_id[STREAM_ID_MAX_BYTES]; /* the newest ID Redis ever gave out */
    char first_entry_id[STREAM_ID_MAX_BYTES];    /* "" when the stream is empty or gone */
};

enum stream_loss {
    STREAM_LOSS_NONE,
    STREAM_LOSS_GONE,            /* the stream no longer exists */
    STREAM_LOSS_BEHIND,          /* its newest ID is older than the last one the hub applied */
    STREAM_LOSS_ENTRIES_MISSING, /* it starts after the latest entry of a key the hub serves */
};

/* How a data loss is handled: where to read the stream on from, and which keys lost the entry
 * that keeps them served. */
struct stream_resync_plan {
    enum stream_loss loss;
    char resume_id[STREAM_ID_MAX_BYTES]; /* read the entries after this ID */
    int64_t lost_after_ms; /* entries after this time are gone, INT64_MAX when only older went */
};

/* Runs XINFO STREAM on key. Returns 0 with out->exists false when the key does not exist, or -1
 * with err set when the connection failed or Redis returned another error. */
int stream_info_read(struct redis_conn *conn, const char *key, struct stream_info *out,
                     struct error *err);

/* Compares the stream as info describes it with what ns applied, and fills plan. Returns
 * plan->loss. Entries above the newest ID of a stream that is behind are read again, because
 * they were written after the failover; a stream that is gone or was recreated is read from its
 * start, which applies no event twice in a way that changes a key, because every publish sets the
 * lease from its own entry and a retire keeps the first grace it started. */
enum stream_loss stream_loss_detect(const struct hub_namespace *ns, const struct stream_info *info,
                                    struct stream_resync_plan *plan);

/* One sentence describing the loss, with the IDs involved, for the log. */
void stream_loss_describe(const struct hub_namespace *ns, const struct stream_info *info,
                          const struct stream_resync_plan *plan, char *out, size_t out_len);

/* Writes a publish entry to ns's stream for every key whose latest entry the stream no longer
 * holds: renewed before the stream's first entry (info after the resync), or after
 * plan->lost_after_ms. Each entry carries the key's instance, kid and JWK, a lease_ms that ends
 * the lease where it ended (or, for a retiring key, where its grace ends), and the field
 * reseeded_by with reseeder. Keys with less than the minimum lease left are skipped. Returns the
 * number written, or -1 with err set when the connection failed. */
long stream_reseed(struct redis_conn *conn, struct hub_namespace *ns,
                   const struct stream_info *info, const struct stream_resync_plan *plan,
                   int64_t redis_now_ms, const char *reseeder, struct error *err);

#endif
