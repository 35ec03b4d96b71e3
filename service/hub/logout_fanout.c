#include "logout_fanout.h"

#include "b64url.h"
#include "clock.h"
#include "log.h"
#include "protocol.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "logout"
/* After a failed connect, requests fail at once for this long instead of each waiting for a
 * connect timeout, so Keycloak gets its response fast while Redis is down. */
#define RECONNECT_PAUSE_MS 1000

/* KEYS[1] is the replay claim and KEYS[2] the notice stream. ARGV[1] is the claim's time to live
 * in ms, ARGV[2] the stream length, ARGV[3] the notice JSON and ARGV[4] the channel. The script
 * returns the new stream ID, or nil for a replay. */
static const char deliver_script[] =
    "if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return false end\n"
    "local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'v', '1', 'notice', "
    "ARGV[3])\n"
    "redis.call('PUBLISH', ARGV[4], ARGV[3])\n"
    "return id\n";

struct pooled_conn {
    struct redis_conn *conn;
    bool busy;
};

struct logout_fanout {
    pthread_mutex_t lock;
    pthread_cond_t released;
    struct pooled_conn *pool;
    size_t pool_size;
    int wait_ms;
    int64_t connect_failed_at_ms; /* guarded by lock; 0 when the last connect worked */
    char script_sha[SHA_DIGEST_LENGTH * 2 + 1];
};

struct logout_fanout *logout_fanout_create(const struct redis_settings *redis, size_t pool_size,
                                           struct error *err)
{
    struct logout_fanout *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->pool = calloc(pool_size, sizeof(*f->pool))) == NULL) {
        free(f);
        error_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->released, NULL);
    f->pool_size = pool_size;
    f->wait_ms = redis->command_timeout_ms;
    for (size_t i = 0; i < pool_size; i++) {
        f->pool[i].conn = redis_conn_create(redis);
        if (f->pool[i].conn == NULL) {
            logout_fanout_destroy(f);
            error_set(err, "out of memory");
            return NULL;
        }
    }
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)deliver_script, strlen(deliver_script), digest);
    for (size_t i = 0; i < sizeof(digest); i++)
        snprintf(f->script_sha + 2 * i, 3, "%02x", digest[i]);
    return f;
}

void logout_fanout_destroy(struct logout_fanout *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->pool_size; i++)
        redis_conn_destroy(f->pool[i].conn);
    free(f->pool);
    pthread_cond_destroy(&f->released);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* Takes a free connection, waiting up to the command timeout. Returns NULL when none came free
 * in time. */
static struct pooled_conn *acquire(struct logout_fanout *f)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += f->wait_ms / 1000;
    until.tv_nsec += (long)(f->wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->lock);
    struct pooled_conn *found = NULL;
    while (found == NULL) {
        for (size_t i = 0; i < f->pool_size && found == NULL; i++) {
            if (!f->pool[i].busy)
                found = &f->pool[i];
        }
        if (found == NULL && pthread_cond_timedwait(&f->released, &f->lock, &until) != 0)
            break;
    }
    if (found != NULL)
        found->busy = true;
    pthread_mutex_unlock(&f->lock);
    return found;
}

static void release(struct logout_fanout *f, struct pooled_conn *slot)
{
    pthread_mutex_lock(&f->lock);
    slot->busy = false;
    pthread_cond_signal(&f->released);
    pthread_mutex_unlock(&f->lock);
}

/* Connects slot when needed, unless a connect failed less than RECONNECT_PAUSE_MS ago. */
static int ensure_connected(struct logout_fanout *f, struct pooled_conn *slot, struct error *err)
{
    if (redis_conn_is_connected(slot->conn))
        return 0;
    pthread_mutex_lock(&f->lock);
    int64_t failed_at = f->connect_failed_at_ms;
    pthread_mutex_unlock(&f->lock);
    if (failed_at != 0 && clock_monotonic_ms() - failed_at < RECONNECT_PAUSE_MS) {
        error_set(err, "Redis at %s was unreachable less than %d ms ago",
                  redis_conn_endpoint(slot->conn), RECONNECT_PAUSE_MS);
        return -1;
    }
    int rc = redis_conn_connect(slot->conn, err);
    pthread_mutex_lock(&f->lock);
    f->connect_failed_at_ms = rc == 0 ? 0 : clock_monotonic_ms();
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static void replay_key(const char *namespace, const struct logout_notice *n, char *out,
                       size_t out_len)
{
    char pair[2 * LOGOUT_CLAIM_MAX_BYTES + 2];
    int len = snprintf(pair, sizeof(pair), "%s\n%s", n->iss, n->jti);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)pair, (size_t)len, digest);
    char hash[64];
    b64url_encode_to(digest, sizeof(digest), hash);
    snprintf(out, out_len, "%s" LOGOUT_REPLAY_SUFFIX "%s", namespace, hash);
}

/* Runs the script by its SHA1, loading it with EVAL when Redis does not know it (after a
 * restart, or on first use). */
static redisReply *run_script(struct logout_fanout *f, struct redis_conn *conn, const char **argv,
                              size_t *lens, struct error *err)
{
    argv[0] = "EVALSHA";
    argv[1] = f->script_sha;
    lens[0] = strlen(argv[0]);
    lens[1] = strlen(argv[1]);
    redisReply *reply = redis_conn_command(conn, 9, argv, lens, 0, err);
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "NOSCRIPT", 8) != 0)
        return reply;
    freeReplyObject(reply);
    argv[0] = "EVAL";
    argv[1] = deliver_script;
    lens[0] = strlen(argv[0]);
    lens[1] = strlen(argv[1]);
    return redis_conn_command(conn, 9, argv, lens, 0, err);
}

static enum fanout_result interpret(const redisReply *reply, char *stream_id, size_t id_len,
                                    struct error *err)
{
    if (reply->type == REDIS_REPLY_NIL)
        return FANOUT_REPLAYED;
    if (reply->type == REDIS_REPLY_STRING) {
        snprintf(stream_id, id_len, "%s", reply->str);
        return FANOUT_DELIVERED;
    }
    error_set(err, "the logout script failed: %s", reply->type == REDIS_REPLY_ERROR
                                                          ? reply->str
                                                          : "unexpected reply type");
    return FANOUT_UNAVAILABLE;
}

enum fanout_result logout_fanout_deliver(struct logout_fanout *f, const char *namespace,
                                         const struct logout_notice *notice,
                                         int64_t replay_ttl_ms, int64_t stream_max_len,
                                         char *stream_id, size_t id_len, struct error *err)
{
    char *json = logout_notice_to_json(notice);
    if (json == NULL) {
        error_set(err, "out of memory building the logout notice");
        return FANOUT_UNAVAILABLE;
    }
    char claim[PROTOCOL_NAMESPACE_MAX_BYTES + 80], stream[PROTOCOL_NAMESPACE_MAX_BYTES + 32];
    char channel[PROTOCOL_NAMESPACE_MAX_BYTES + 32], ttl[24], max_len[24];
    replay_key(namespace, notice, claim, sizeof(claim));
    snprintf(stream, sizeof(stream), "%s" LOGOUT_STREAM_SUFFIX, namespace);
    snprintf(channel, sizeof(channel), "%s" LOGOUT_CHANNEL_SUFFIX, namespace);
    snprintf(ttl, sizeof(ttl), "%" PRId64, replay_ttl_ms);
    snprintf(max_len, sizeof(max_len), "%" PRId64, stream_max_len);
    const char *argv[9] = {NULL, NULL, "2", claim, stream, ttl, max_len, json, channel};
    size_t lens[9];
    for (size_t i = 2; i < 9; i++)
        lens[i] = strlen(argv[i]);

    enum fanout_result result = FANOUT_UNAVAILABLE;
    struct pooled_conn *slot = acquire(f);
    if (slot == NULL) {
        error_set(err, "no Redis connection came free within %d ms", f->wait_ms);
    } else if (ensure_connected(f, slot, err) == 0) {
        redisReply *reply = run_script(f, slot->conn, argv, lens, err);
        if (reply != NULL) {
            result = interpret(reply, stream_id, id_len, err);
            freeReplyObject(reply);
        }
    }
    if (slot != NULL)
        release(f, slot);
    free(json);
    return result;
}
