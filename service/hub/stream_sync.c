#include "stream_sync.h"

#include "clock.h"
#include "log.h"
#include "redis_check.h"
#include "stream_fold.h"
#include "stream_resync.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPLAY_PAGE_ENTRIES  500
#define FOLLOW_BATCH_ENTRIES "500"
#define FOLLOW_BLOCK_MAX_MS  5000
#define CLOCK_RESAMPLE_MS    60000
#define TRIM_INTERVAL_MS     60000
#define BACKOFF_START_MS     100
#define BACKOFF_MAX_MS       5000
/* How often every stream is checked for lost entries while connected, because a FLUSHALL does
 * not drop the connection. Each check is one XINFO STREAM per namespace. */
#define LOSS_CHECK_INTERVAL_MS 5000
/* Distinct JWK texts the fold remembers as valid; past three quarters of it the cache starts
 * over. Sized for about ten thousand live keys, the largest fleet measured. */
#define FOLD_JWK_CACHE_ENTRIES 16384
#define MODULE                 "redis"

struct stream_sync {
    pthread_t thread;
    int wakeup_pipe[2];
    struct redis_conn *conn;
    struct hub_namespace *const *list;
    size_t count;
    struct stream_sync_settings settings;
    struct remote_clock redis_clock;
    struct stream_fold fold;
    int64_t clock_sampled_at_ms;
    int64_t trimmed_at_ms;
    int64_t loss_checked_at_ms;
    int command_timeout_ms;
    bool check_access_pending; /* the ACL check has not passed on any connection yet */
    bool down;                 /* the loss of the connection was logged and not yet recovered */
    int64_t down_since_ms;
    unsigned failed_attempts; /* connection attempts since the last success */
    int64_t backoff_ms;
    char *username;    /* the Redis user, for messages; NULL for the default user */
    char reseeder[96]; /* reseeded_by value: host name and process id */
};

static bool stop_requested(const struct stream_sync *sync)
{
    struct pollfd fd = {.fd = sync->wakeup_pipe[0], .events = POLLIN};
    return poll(&fd, 1, 0) > 0;
}

/* Sleeps up to ms, returning early when a stop is requested. */
static void wait_or_stop(const struct stream_sync *sync, int64_t ms)
{
    struct pollfd fd = {.fd = sync->wakeup_pipe[0], .events = POLLIN};
    int64_t deadline = clock_monotonic_ms() + ms;
    for (int64_t left = ms; left > 0; left = deadline - clock_monotonic_ms()) {
        int n = poll(&fd, 1, (int)left);
        if (n > 0 || (n < 0 && errno != EINTR))
            return;
    }
}

static redisReply *command(struct stream_sync *sync, int argc, const char **argv, int timeout_ms,
                           struct error *err)
{
    size_t lens[16];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return redis_conn_command(sync->conn, argc, argv, lens, timeout_ms, err);
}

/* Samples the Redis clock with TIME, taking the midpoint of the round trip as its instant. */
static int sample_clock(struct stream_sync *sync, struct error *err)
{
    const char *argv[] = {"TIME"};
    int64_t sent_at = clock_monotonic_ms();
    redisReply *reply = command(sync, 1, argv, 0, err);
    int64_t received_at = clock_monotonic_ms();
    if (reply == NULL)
        return -1;
    int rc = -1;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        int64_t seconds = strtoll(reply->element[0]->str, NULL, 10);
        int64_t micros = strtoll(reply->element[1]->str, NULL, 10);
        remote_clock_sample(&sync->redis_clock, seconds * 1000 + micros / 1000,
                            sent_at + (received_at - sent_at) / 2);
        sync->clock_sampled_at_ms = received_at;
        log_debug(MODULE, "Redis clock is %" PRId64 " ms ahead of this host",
                  remote_clock_now_ms(&sync->redis_clock) - clock_realtime_ms());
        rc = 0;
    } else {
        error_set(err, "TIME returned %s",
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "an unexpected reply");
    }
    freeReplyObject(reply);
    return rc;
}

/* Waits out one backoff step: the delay doubles up to BACKOFF_MAX_MS, with up to 25% jitter so
 * replicas do not reconnect in lockstep. Keys keep expiring while it waits. */
static void back_off(struct stream_sync *sync)
{
    int64_t delay = sync->backoff_ms - (int64_t)(random() % (sync->backoff_ms / 4 + 1));
    sync->backoff_ms =
        sync->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : sync->backoff_ms * 2;
    int64_t until = clock_monotonic_ms() + delay;
    while (!stop_requested(sync)) {
        int64_t now = clock_monotonic_ms();
        if (now >= until)
            return;
        /* Wake for the next key to leave if that comes before the end of the backoff. */
        int64_t wait_ms = until - now;
        int64_t next = stream_fold_next_deadline(sync->list, sync->count);
        if (next != KEY_STORE_NO_DEADLINE) {
            int64_t to_deadline = next - remote_clock_now_ms(&sync->redis_clock) + 1;
            if (to_deadline < wait_ms)
                wait_ms = to_deadline > 0 ? to_deadline : 1;
        }
        wait_or_stop(sync, wait_ms);
        stream_fold_expire(&sync->fold, sync->list, sync->count);
    }
}

static void set_state(struct stream_sync *sync, bool connected, const char *error)
{
    for (size_t i = 0; i < sync->count; i++)
        hub_namespace_set_redis_state(sync->list[i], connected, error);
}

/* Logs the loss of Redis once per outage and marks every namespace disconnected. */
static void mark_down(struct stream_sync *sync, const char *what, const char *message)
{
    if (sync->down)
        return;
    sync->down = true;
    sync->down_since_ms = clock_monotonic_ms();
    log_error(MODULE, "%s: %s; serving the last key sets and retrying with backoff up to %d ms",
              what, message, BACKOFF_MAX_MS);
    set_state(sync, false, message);
}

static int check_access(struct stream_sync *sync, struct error *err)
{
    enum redis_check_result result =
        redis_check_access(sync->conn, sync->username, sync->list, sync->count, err);
    if (result == REDIS_CHECK_OK) {
        sync->check_access_pending = false;
        log_info(MODULE, "the Redis user may read and write the names of all %zu namespaces",
                 sync->count);
        return 0;
    }
    redis_conn_close(sync->conn);
    return -1;
}

static int connect_redis(struct stream_sync *sync)
{
    struct error err = {""};
    int rc = redis_conn_connect(sync->conn, &err);
    if (rc == 0)
        rc = sample_clock(sync, &err);
    if (rc == 0 && sync->check_access_pending)
        rc = check_access(sync, &err);
    if (rc != 0) {
        sync->failed_attempts++;
        char what[400];
        snprintf(what, sizeof(what), "cannot connect to Redis at %s",
                 redis_conn_endpoint(sync->conn));
        mark_down(sync, what, err.message);
        log_debug(MODULE, "connect attempt %u to %s failed: %s", sync->failed_attempts,
                  redis_conn_endpoint(sync->conn), err.message);
        redis_conn_close(sync->conn);
        return -1;
    }
    if (sync->down)
        log_info(MODULE,
                 "reconnected to Redis at %s after %u failed attempts in %" PRId64 " ms; "
                 "resuming after the last applied entries",
                 redis_conn_endpoint(sync->conn), sync->failed_attempts,
                 clock_monotonic_ms() - sync->down_since_ms);
    else
        log_info(MODULE, "connected to Redis at %s", redis_conn_endpoint(sync->conn));
    sync->down = false;
    sync->failed_attempts = 0;
    sync->backoff_ms = BACKOFF_START_MS;
    sync->loss_checked_at_ms = 0; /* Check every stream for lost entries before following. */
    set_state(sync, true, NULL);
    return 0;
}

static void log_lost(struct stream_sync *sync, const char *step, const struct error *err)
{
    if (redis_conn_status(sync->conn) == REDIS_STATUS_INTERRUPTED)
        return;
    char what[200];
    snprintf(what, sizeof(what), "lost Redis at %s: %s failed", redis_conn_endpoint(sync->conn),
             step);
    mark_down(sync, what, err->message);
}

/* Reads ns's stream from after ns->last_id to its end in pages, then publishes the first
 * snapshot. Returns 0, or -1 when the connection failed. */
static int replay_namespace(struct stream_sync *sync, struct hub_namespace *ns)
{
    int64_t started = clock_monotonic_ms();
    size_t total = 0;
    char page[16], start[STREAM_ID_MAX_BYTES + 1];
    snprintf(page, sizeof(page), "%d", REPLAY_PAGE_ENTRIES);
    for (;;) {
        snprintf(start, sizeof(start), "(%s", ns->last_id);
        const char *argv[] = {"XRANGE", ns->stream_key, start, "+", "COUNT", page};
        struct error err = {""};
        redisReply *reply = command(sync, 6, argv, 0, &err);
        if (reply == NULL) {
            log_lost(sync, "replaying the stream", &err);
            return -1;
        }
        if (reply->type == REDIS_REPLY_ERROR) {
            char what[200];
            snprintf(what, sizeof(what),
                     "XRANGE %s failed (check that the Redis user may read "
                     "it)",
                     ns->stream_key);
            mark_down(sync, what, reply->str);
            freeReplyObject(reply);
            redis_conn_close(sync->conn);
            return -1;
        }
        size_t n = stream_fold_entries(&sync->fold, ns, reply);
        freeReplyObject(reply);
        total += n;
        if (n < REPLAY_PAGE_ENTRIES)
            break;
    }
    stream_fold_expire(&sync->fold, &ns, 1);
    if (stream_fold_publish(&sync->fold, ns) != 0)
        return -1;
    atomic_store(&ns->replayed, true);
    log_info(MODULE,
             "namespace %s: replayed %zu entries of %s in %" PRId64 " ms, serving %zu "
             "keys",
             ns->name, total, ns->stream_key, clock_monotonic_ms() - started,
             key_store_count(ns->store));
    return 0;
}

/* Trims every stream to the entries that can still matter: the longest lease plus the grace. */
static void trim_streams(struct stream_sync *sync)
{
    int64_t horizon = remote_clock_now_ms(&sync->redis_clock) - sync->settings.lease_max_ms -
                      sync->settings.retire_grace_ms;
    char min_id[32];
    snprintf(min_id, sizeof(min_id), "%" PRId64 "-0", horizon > 0 ? horizon : 0);
    for (size_t i = 0; i < sync->count; i++) {
        const char *argv[] = {"XTRIM", sync->list[i]->stream_key, "MINID", "~", min_id};
        struct error err = {""};
        redisReply *reply = command(sync, 5, argv, 0, &err);
        if (reply == NULL) {
            log_lost(sync, "XTRIM", &err);
            return;
        }
        if (reply->type == REDIS_REPLY_ERROR)
            log_warn(MODULE, "XTRIM %s failed: %s", sync->list[i]->stream_key, reply->str);
        else if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
            log_debug(MODULE, "trimmed %lld old entries from %s", reply->integer,
                      sync->list[i]->stream_key);
        freeReplyObject(reply);
    }
    sync->trimmed_at_ms = clock_monotonic_ms();
}

/* How long XREAD may block: until the next key leaves or the next loss check is due, at most
 * FOLLOW_BLOCK_MAX_MS. */
static int block_ms(const struct stream_sync *sync)
{
    int64_t wait = sync->loss_checked_at_ms + LOSS_CHECK_INTERVAL_MS - clock_monotonic_ms();
    int64_t next = stream_fold_next_deadline(sync->list, sync->count);
    if (next != KEY_STORE_NO_DEADLINE && next - remote_clock_now_ms(&sync->redis_clock) + 1 < wait)
        wait = next - remote_clock_now_ms(&sync->redis_clock) + 1;
    if (wait < 1)
        return 1;
    return wait > FOLLOW_BLOCK_MAX_MS ? FOLLOW_BLOCK_MAX_MS : (int)wait;
}

static void apply_read_reply(struct stream_sync *sync, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY)
        return; /* nil: the block timed out with nothing new */
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *stream = reply->element[i];
        if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2 ||
            stream->element[0]->type != REDIS_REPLY_STRING)
            continue;
        for (size_t k = 0; k < sync->count; k++) {
            if (strcmp(sync->list[k]->stream_key, stream->element[0]->str) == 0)
                stream_fold_entries(&sync->fold, sync->list[k], stream->element[1]);
        }
    }
}

/* Blocks in one XREAD over every namespace's stream and applies what arrives. Returns 0, or -1
 * when the connection failed. */
static int follow_once(struct stream_sync *sync)
{
    size_t argc = 6 + 2 * sync->count;
    const char **argv = calloc(argc, sizeof(*argv));
    size_t *lens = calloc(argc, sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        log_error(MODULE, "out of memory building XREAD");
        return -1;
    }
    char block[16];
    int wait_ms = block_ms(sync);
    snprintf(block, sizeof(block), "%d", wait_ms);
    const char *head[] = {"XREAD", "COUNT", FOLLOW_BATCH_ENTRIES, "BLOCK", block, "STREAMS"};
    memcpy(argv, head, sizeof(head));
    for (size_t i = 0; i < sync->count; i++) {
        argv[6 + i] = sync->list[i]->stream_key;
        argv[6 + sync->count + i] = sync->list[i]->last_id;
    }
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);

    struct error err = {""};
    redisReply *reply = redis_conn_command(sync->conn, (int)argc, argv, lens,
                                           wait_ms + sync->command_timeout_ms, &err);
    free(argv);
    free(lens);
    if (reply == NULL) {
        log_lost(sync, "XREAD", &err);
        return -1;
    }
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        mark_down(sync, "XREAD failed (check that the Redis user may read every stream)",
                  reply->str);
        redis_conn_close(sync->conn);
        rc = -1;
    } else {
        apply_read_reply(sync, reply);
    }
    freeReplyObject(reply);
    return rc;
}

/* Handles lost entries of ns: reads the stream on from plan->resume_id on top of the keys it
 * serves, then writes back the keys whose entries are gone. Returns -1 when the connection
 * failed. */
static int resync_namespace(struct stream_sync *sync, struct hub_namespace *ns,
                            const struct stream_info *info, const struct stream_resync_plan *plan)
{
    char what[400];
    stream_loss_describe(ns, info, plan, what, sizeof(what));
    log_warn(MODULE,
             "namespace %s: Redis lost key events: %s; resyncing from after %s and "
             "keeping the %zu keys served",
             ns->name, what, plan->resume_id, key_store_count(ns->store));
    snprintf(ns->last_id, sizeof(ns->last_id), "%s", plan->resume_id);
    if (replay_namespace(sync, ns) != 0)
        return -1;
    struct stream_info after;
    struct error err = {""};
    if (stream_info_read(sync->conn, ns->stream_key, &after, &err) != 0) {
        log_lost(sync, "XINFO STREAM", &err);
        return -1;
    }
    long written = stream_reseed(sync->conn, ns, &after, plan,
                                 remote_clock_now_ms(&sync->redis_clock), sync->reseeder, &err);
    if (written < 0) {
        log_lost(sync, "re-seeding the stream", &err);
        return -1;
    }
    log_info(MODULE,
             "namespace %s: re-seeded %ld live keys into %s with their remaining leases%s%s",
             ns->name, written, ns->stream_key, err.message[0] != '\0' ? "; " : "", err.message);
    return 0;
}

/* Compares every replayed stream with what the hub applied, and resyncs the ones that lost
 * entries. Returns -1 when the connection failed. */
static int check_for_loss(struct stream_sync *sync)
{
    for (size_t i = 0; i < sync->count; i++) {
        struct hub_namespace *ns = sync->list[i];
        if (!atomic_load(&ns->replayed))
            continue;
        struct stream_info info;
        struct error err = {""};
        if (stream_info_read(sync->conn, ns->stream_key, &info, &err) != 0) {
            if (redis_conn_is_connected(sync->conn))
                log_warn(MODULE, "namespace %s: cannot check for lost entries: %s", ns->name,
                         err.message);
            else
                log_lost(sync, "XINFO STREAM", &err);
            continue;
        }
        struct stream_resync_plan plan;
        if (stream_loss_detect(ns, &info, &plan) != STREAM_LOSS_NONE &&
            resync_namespace(sync, ns, &info, &plan) != 0)
            return -1;
    }
    sync->loss_checked_at_ms = clock_monotonic_ms();
    return redis_conn_is_connected(sync->conn) ? 0 : -1;
}

/* One pass of the loop while connected: replay what is not replayed yet, look for lost entries,
 * keep the clock sample and the trim fresh, then follow. Returns -1 when the connection failed. */
static int run_connected(struct stream_sync *sync)
{
    for (size_t i = 0; i < sync->count; i++) {
        if (!atomic_load(&sync->list[i]->replayed) && replay_namespace(sync, sync->list[i]) != 0)
            return -1;
    }
    int64_t now = clock_monotonic_ms();
    if (now - sync->loss_checked_at_ms >= LOSS_CHECK_INTERVAL_MS && check_for_loss(sync) != 0)
        return -1;
    struct error err = {""};
    if (now - sync->clock_sampled_at_ms >= CLOCK_RESAMPLE_MS && sample_clock(sync, &err) != 0) {
        log_lost(sync, "TIME", &err);
        return -1;
    }
    if (now - sync->trimmed_at_ms >= TRIM_INTERVAL_MS) {
        trim_streams(sync);
        if (!redis_conn_is_connected(sync->conn))
            return -1;
    }
    int rc = follow_once(sync);
    stream_fold_expire(&sync->fold, sync->list, sync->count);
    return rc;
}

static void *run(void *arg)
{
    struct stream_sync *sync = arg;
    log_info(MODULE, "stream thread started for %zu namespaces", sync->count);
    while (!stop_requested(sync)) {
        if (!redis_conn_is_connected(sync->conn) && connect_redis(sync) != 0) {
            back_off(sync);
            continue;
        }
        if (run_connected(sync) != 0 && !stop_requested(sync))
            back_off(sync);
    }
    redis_conn_close(sync->conn);
    log_info(MODULE, "stream thread stopped; Redis connection closed");
    return NULL;
}

struct stream_sync *stream_sync_start(const struct redis_settings *redis,
                                      struct hub_namespace *const *list, size_t count,
                                      const struct stream_sync_settings *settings,
                                      struct error *err)
{
    struct stream_sync *sync = calloc(1, sizeof(*sync));
    if (sync == NULL) {
        error_set(err, "out of memory");
        return NULL;
    }
    sync->wakeup_pipe[0] = sync->wakeup_pipe[1] = -1;
    sync->list = list;
    sync->count = count;
    sync->settings = *settings;
    sync->command_timeout_ms = redis->command_timeout_ms;
    sync->backoff_ms = BACKOFF_START_MS;
    sync->check_access_pending = settings->check_access_on_connect;
    char host[64] = "hub";
    gethostname(host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(sync->reseeder, sizeof(sync->reseeder), "%s-%ld", host, (long)getpid());
    sync->clock_sampled_at_ms = clock_monotonic_ms();
    sync->trimmed_at_ms = clock_monotonic_ms() - TRIM_INTERVAL_MS;
    sync->fold.settings = (struct stream_fold_settings){
        .lease_max_ms = settings->lease_max_ms,
        .clock_ahead_max_ms = settings->clock_ahead_max_ms,
        .cache_control = settings->cache_control,
    };
    sync->fold.redis_clock = &sync->redis_clock;
    sync->fold.jwk_cache = jwk_cache_create(FOLD_JWK_CACHE_ENTRIES);
    srandom((unsigned)clock_realtime_ms() ^ (unsigned)getpid());

    sync->conn = redis_conn_create(redis);
    sync->username = redis->username != NULL ? strdup(redis->username) : NULL;
    if (sync->conn == NULL || (redis->username != NULL && sync->username == NULL) ||
        sync->fold.jwk_cache == NULL || pipe2(sync->wakeup_pipe, O_CLOEXEC) != 0) {
        error_set(err, "cannot set up the stream thread: %s",
                  sync->conn ? strerror(errno) : "out of memory");
        goto failed;
    }
    redis_conn_set_wakeup_fd(sync->conn, sync->wakeup_pipe[0]);
    int rc = pthread_create(&sync->thread, NULL, run, sync);
    if (rc != 0) {
        error_set(err, "cannot start the stream thread: %s", strerror(rc));
        goto failed;
    }
    return sync;

failed:
    redis_conn_destroy(sync->conn);
    jwk_cache_destroy(sync->fold.jwk_cache);
    free(sync->username);
    if (sync->wakeup_pipe[0] >= 0)
        close(sync->wakeup_pipe[0]);
    if (sync->wakeup_pipe[1] >= 0)
        close(sync->wakeup_pipe[1]);
    free(sync);
    return NULL;
}

void stream_sync_stop(struct stream_sync *sync)
{
    if (sync == NULL)
        return;
    ssize_t written = write(sync->wakeup_pipe[1], "x", 1);
    (void)written; /* A full pipe already wakes the thread. */
    pthread_join(sync->thread, NULL);
    redis_conn_destroy(sync->conn);
    jwk_cache_destroy(sync->fold.jwk_cache);
    close(sync->wakeup_pipe[0]);
    close(sync->wakeup_pipe[1]);
    free(sync->username);
    free(sync);
}
