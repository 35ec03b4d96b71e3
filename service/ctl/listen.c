#include "listen.h"

#include "clock.h"
#include "log.h"
#include "logout_notice.h"
#include "protocol.h"
#include "stop_signal.h"

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE             "listen"
#define READ_BATCH_ENTRIES "100"
#define READ_BLOCK_MS      5000
#define BACKOFF_START_MS   100
#define BACKOFF_MAX_MS     5000
#define STREAM_ID_BYTES    48
#define REASON_BYTES       256

struct listener {
    const struct listen_settings *settings;
    struct redis_conn *conn;
    char stream[PROTOCOL_NAMESPACE_MAX_BYTES + sizeof(LOGOUT_STREAM_SUFFIX)];
    char last_id[STREAM_ID_BYTES]; /* "$" until resolved at the first connect */
    unsigned failed_attempts;
    int64_t backoff_ms;
};

static bool stopping(void)
{
    return stop_signal_received() != 0;
}

static void wait_or_stop(int64_t ms)
{
    struct pollfd fd = {.fd = stop_signal_fd(), .events = POLLIN};
    poll(&fd, 1, (int)ms);
}

/* Replaces "$" by the ID of the stream's last entry ("0-0" when empty), so that after a
 * reconnect the listener resumes exactly where it started. */
static int resolve_start(struct listener *l, struct error *err)
{
    if (strcmp(l->last_id, "$") != 0)
        return 0;
    const char *argv[] = {"XREVRANGE", l->stream, "+", "-", "COUNT", "1"};
    size_t lens[6];
    for (size_t i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    redisReply *reply = redis_conn_command(l->conn, 6, argv, lens, 0, err);
    if (reply == NULL)
        return -1;
    int rc = 0;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 0) {
        snprintf(l->last_id, sizeof(l->last_id), "0-0");
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->element[0]->type == REDIS_REPLY_ARRAY &&
               reply->element[0]->elements == 2 &&
               reply->element[0]->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(l->last_id, sizeof(l->last_id), "%s", reply->element[0]->element[0]->str);
    } else {
        error_set(err, "XREVRANGE %s failed: %s", l->stream,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        rc = -1;
    }
    freeReplyObject(reply);
    return rc;
}

static int connect_listener(struct listener *l)
{
    struct error err = {""};
    if (redis_conn_connect(l->conn, &err) == 0 && resolve_start(l, &err) == 0) {
        if (l->failed_attempts > 0)
            log_info(MODULE, "connected to Redis at %s after %u failed attempts; resuming after "
                     "%s", redis_conn_endpoint(l->conn), l->failed_attempts, l->last_id);
        else
            log_info(MODULE, "following %s after entry %s", l->stream, l->last_id);
        l->failed_attempts = 0;
        l->backoff_ms = BACKOFF_START_MS;
        return 0;
    }
    if (stopping())
        return -1;
    if (l->failed_attempts == 0)
        log_warn(MODULE, "cannot read %s: %s; retrying with backoff up to %d ms", l->stream,
                 err.message, BACKOFF_MAX_MS);
    l->failed_attempts++;
    redis_conn_close(l->conn);
    wait_or_stop(l->backoff_ms);
    l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
    return -1;
}

/* Returns the notice field of an entry's field list, or NULL. */
static const redisReply *notice_field(const redisReply *fields)
{
    if (fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *name = fields->element[i];
        if (name->type == REDIS_REPLY_STRING && strcmp(name->str, "notice") == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1];
    }
    return NULL;
}

static void print_entry(struct listener *l, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING || entry->element[0]->len >= STREAM_ID_BYTES)
        return;
    const char *id = entry->element[0]->str;
    snprintf(l->last_id, sizeof(l->last_id), "%s", id);
    const redisReply *field = notice_field(entry->element[1]);
    struct logout_notice notice;
    char reason[REASON_BYTES] = "the entry has no notice field";
    if (field == NULL || logout_notice_parse(field->str, field->len, &notice, reason,
                                             sizeof(reason)) != 0) {
        log_warn(MODULE, "skipped entry %s of %s: %s", id, l->stream, reason);
        return;
    }
    char *json = logout_notice_to_json(&notice);
    if (json == NULL) {
        log_error(MODULE, "out of memory printing entry %s", id);
        return;
    }
    printf("{\"id\":\"%s\",%s\n", id, json + 1);
    fflush(stdout);
    free(json);
}

/* Blocks in one XREAD and prints what arrives. Returns -1 when the connection failed. */
static int read_once(struct listener *l)
{
    char block[16];
    snprintf(block, sizeof(block), "%d", READ_BLOCK_MS);
    const char *argv[] = {"XREAD", "COUNT", READ_BATCH_ENTRIES, "BLOCK", block, "STREAMS",
                          l->stream, l->last_id};
    size_t lens[8];
    for (size_t i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    struct error err = {""};
    redisReply *reply = redis_conn_command(l->conn, 8, argv, lens,
                                           READ_BLOCK_MS + l->settings->redis->command_timeout_ms,
                                           &err);
    if (reply == NULL) {
        if (!stopping())
            log_warn(MODULE, "reading %s failed: %s; reconnecting", l->stream, err.message);
        return -1;
    }
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error(MODULE, "XREAD %s failed: %s; check that the Redis user may read it", l->stream,
                  reply->str);
        redis_conn_close(l->conn);
        rc = -1;
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
               reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2) {
        const redisReply *entries = reply->element[0]->element[1];
        for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++)
            print_entry(l, entries->element[i]);
    }
    freeReplyObject(reply);
    return rc;
}

int listen_run(const struct listen_settings *settings, struct error *err)
{
    uint64_t ms = 0, seq = 0;
    if (strcmp(settings->from_id, "$") != 0 && strcmp(settings->from_id, "0") != 0 &&
        protocol_stream_id_parse(settings->from_id, &ms, &seq) != 0) {
        error_set(err, "invalid --from \"%.60s\": expected a stream entry ID such as "
                  "1700000000000-0, 0 for every notice, or $ for new ones", settings->from_id);
        return -1;
    }
    if (stop_signal_install(err) != 0)
        return -1;
    struct listener l = {.settings = settings, .backoff_ms = BACKOFF_START_MS};
    snprintf(l.stream, sizeof(l.stream), "%s" LOGOUT_STREAM_SUFFIX, settings->namespace_name);
    snprintf(l.last_id, sizeof(l.last_id), "%s", strcmp(settings->from_id, "0") == 0
                                                      ? "0-0" : settings->from_id);
    l.conn = redis_conn_create(settings->redis);
    if (l.conn == NULL) {
        error_set(err, "out of memory");
        return -1;
    }
    redis_conn_set_wakeup_fd(l.conn, stop_signal_fd());
    while (!stopping()) {
        if (!redis_conn_is_connected(l.conn) && connect_listener(&l) != 0)
            continue;
        read_once(&l);
    }
    log_info(MODULE, "received %s; stopped after entry %s",
             stop_signal_received() == SIGINT ? "SIGINT" : "SIGTERM", l.last_id);
    redis_conn_destroy(l.conn);
    return 0;
}
