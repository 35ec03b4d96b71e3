#include "stream_resync.h"

#include "protocol.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Re-seed entries go out in pipelines of this many XADDs. */
#define RESEED_BATCH_KEYS 100
#define RESEED_ARG_COUNT  17

static void copy_id(char *out, const redisReply *value)
{
    out[0] = '\0';
    if (value->type == REDIS_REPLY_STRING && value->len < STREAM_ID_MAX_BYTES)
        snprintf(out, STREAM_ID_MAX_BYTES, "%s", value->str);
}

int stream_info_read(struct redis_conn *conn, const char *key, struct stream_info *out,
                     struct error *err)
{
    memset(out, 0, sizeof(*out));
    const char *argv[] = {"XINFO", "STREAM", key};
    size_t lens[] = {5, 6, strlen(key)};
    redisReply *reply = redis_conn_command(conn, 3, argv, lens, 0, err);
    if (reply == NULL)
        return -1;
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "no such key") != NULL) {
        out->exists = false;
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements % 2 == 0) {
        out->exists = true;
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *name = reply->element[i], *value = reply->element[i + 1];
            if (name->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(name->str, "last-generated-id") == 0)
                copy_id(out->last_generated_id, value);
            else if (strcmp(name->str, "first-entry") == 0 && value->type == REDIS_REPLY_ARRAY &&
                     value->elements >= 1)
                copy_id(out->first_entry_id, value->element[0]);
        }
    } else {
        error_set(err, "XINFO STREAM %s returned %s", key,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "an unexpected reply");
        rc = -1;
    }
    freeReplyObject(reply);
    return rc;
}

/* Orders two stream IDs; an ID that does not parse counts as 0-0. */
static int compare_ids(const char *a, const char *b)
{
    uint64_t a_ms = 0, a_seq = 0, b_ms = 0, b_seq = 0;
    protocol_stream_id_parse(a, &a_ms, &a_seq);
    protocol_stream_id_parse(b, &b_ms, &b_seq);
    if (a_ms != b_ms)
        return a_ms < b_ms ? -1 : 1;
    if (a_seq != b_seq)
        return a_seq < b_seq ? -1 : 1;
    return 0;
}

static int64_t id_ms(const char *id)
{
    uint64_t ms = 0, seq = 0;
    protocol_stream_id_parse(id, &ms, &seq);
    return (int64_t)ms;
}

static void oldest_renewal(const struct key_view *key, void *context)
{
    int64_t *oldest = context;
    if (key->renewed_ms < *oldest)
        *oldest = key->renewed_ms;
}

enum stream_loss stream_loss_detect(const struct hub_namespace *ns, const struct stream_info *info,
                                    struct stream_resync_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    plan->lost_after_ms = INT64_MAX;
    snprintf(plan->resume_id, sizeof(plan->resume_id), "0-0");
    bool applied_any = compare_ids(ns->last_id, "0-0") > 0;
    if (!info->exists) {
        plan->loss = applied_any ? STREAM_LOSS_GONE : STREAM_LOSS_NONE;
        return plan->loss;
    }
    if (compare_ids(info->last_generated_id, ns->last_id) < 0) {
        plan->loss = STREAM_LOSS_BEHIND;
        snprintf(plan->resume_id, sizeof(plan->resume_id), "%s", info->last_generated_id);
        plan->lost_after_ms = id_ms(info->last_generated_id);
        return plan->loss;
    }
    int64_t oldest = INT64_MAX;
    key_store_foreach(ns->store, oldest_renewal, &oldest);
    bool empty = info->first_entry_id[0] == '\0';
    if (oldest != INT64_MAX && (empty || id_ms(info->first_entry_id) > oldest))
        plan->loss = STREAM_LOSS_ENTRIES_MISSING;
    return plan->loss;
}

void stream_loss_describe(const struct hub_namespace *ns, const struct stream_info *info,
                          const struct stream_resync_plan *plan, char *out, size_t out_len)
{
    switch (plan->loss) {
    case STREAM_LOSS_GONE:
        snprintf(out, out_len, "the stream %s is gone, but the hub had applied entries up to %s",
                 ns->stream_key, ns->last_id);
        break;
    case STREAM_LOSS_BEHIND:
        snprintf(out, out_len, "the newest ID of %s is %s, behind the last applied ID %s",
                 ns->stream_key, info->last_generated_id, ns->last_id);
        break;
    case STREAM_LOSS_ENTRIES_MISSING:
        snprintf(out, out_len, "%s starts at %s, after the latest entry of a served key",
                 ns->stream_key,
                 info->first_entry_id[0] != '\0' ? info->first_entry_id : "nothing (it is empty)");
        break;
    case STREAM_LOSS_NONE:
        snprintf(out, out_len, "no loss");
        break;
    }
}

/* The keys that a re-seed writes, gathered first so that no I/O runs inside the store walk. */
struct reseed_list {
    struct key_view *keys;
    size_t count;
    int64_t kept_from_ms;
    int64_t lost_after_ms;
    bool out_of_memory;
};

static void collect_lost(const struct key_view *key, void *context)
{
    struct reseed_list *list = context;
    if (key->renewed_ms >= list->kept_from_ms && key->renewed_ms <= list->lost_after_ms)
        return;
    struct key_view *grown = realloc(list->keys, (list->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        list->out_of_memory = true;
        return;
    }
    list->keys = grown;
    list->keys[list->count++] = *key;
}

static int64_t remaining_ms(const struct key_view *key, int64_t now_ms)
{
    int64_t end = key->lease_end_ms;
    if (key->retire_at_ms != 0 && key->retire_at_ms < end)
        end = key->retire_at_ms;
    return end - now_ms;
}

/* Queues the XADD of one re-seed entry. Returns 0 when queued, 1 when the key is skipped. */
static int queue_entry(struct redis_conn *conn, const struct hub_namespace *ns,
                       const struct key_view *key, int64_t now_ms, const char *reseeder,
                       struct error *err)
{
    int64_t lease = remaining_ms(key, now_ms);
    if (lease < PROTOCOL_LEASE_MIN_MS)
        return 1;
    char lease_text[24];
    snprintf(lease_text, sizeof(lease_text), "%" PRId64, lease);
    const char *argv[RESEED_ARG_COUNT] = {
        "XADD",     ns->stream_key, "*",           "v",           PROTOCOL_VERSION, "type",
        "publish",  "instance",     key->instance, "kid",         key->kid,         "lease_ms",
        lease_text, "jwk",          key->jwk_json, "reseeded_by", reseeder};
    size_t lens[RESEED_ARG_COUNT];
    for (size_t i = 0; i < RESEED_ARG_COUNT; i++)
        lens[i] = strlen(argv[i]);
    return redis_conn_pipeline_add(conn, RESEED_ARG_COUNT, argv, lens, err);
}

/* Sends one pipeline of queued XADDs. Returns 0, or -1 when the connection failed. */
static int send_batch(struct redis_conn *conn, size_t queued, long *written, struct error *err)
{
    if (queued == 0)
        return 0;
    redisReply *replies[RESEED_BATCH_KEYS];
    if (redis_conn_pipeline_run(conn, replies, queued, 0, err) != 0)
        return -1;
    for (size_t i = 0; i < queued; i++) {
        if (replies[i]->type == REDIS_REPLY_STRING)
            (*written)++;
        else if (replies[i]->type == REDIS_REPLY_ERROR)
            error_set(err, "XADD of a re-seed entry returned %s", replies[i]->str);
        freeReplyObject(replies[i]);
    }
    return 0;
}

long stream_reseed(struct redis_conn *conn, struct hub_namespace *ns,
                   const struct stream_info *info, const struct stream_resync_plan *plan,
                   int64_t redis_now_ms, const char *reseeder, struct error *err)
{
    struct reseed_list list = {
        .kept_from_ms = info->first_entry_id[0] != '\0' ? id_ms(info->first_entry_id) : INT64_MAX,
        .lost_after_ms = plan->lost_after_ms,
    };
    key_store_foreach(ns->store, collect_lost, &list);
    if (list.out_of_memory) {
        free(list.keys);
        error_set(err, "out of memory listing the keys to re-seed");
        return -1;
    }
    long written = 0;
    size_t queued = 0;
    int rc = 0;
    for (size_t i = 0; i < list.count && rc == 0; i++) {
        int queue_rc = queue_entry(conn, ns, &list.keys[i], redis_now_ms, reseeder, err);
        if (queue_rc < 0) {
            redis_conn_close(conn); /* Drops the half-queued pipeline with the connection. */
            rc = -1;
            break;
        }
        queued += queue_rc == 0 ? 1 : 0;
        if (queued == RESEED_BATCH_KEYS) {
            rc = send_batch(conn, queued, &written, err);
            queued = 0;
        }
    }
    if (rc == 0)
        rc = send_batch(conn, queued, &written, err);
    free(list.keys);
    return rc == 0 ? written : -1;
}
