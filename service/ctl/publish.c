#include "publish.h"

#include "clock.h"
#include "log.h"
#include "protocol.h"
#include "serve_check.h"
#include "stop_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define STREAM_KEY_BYTES  (PROTOCOL_NAMESPACE_MAX_BYTES + sizeof(PROTOCOL_JWKS_STREAM_SUFFIX))
#define PUBLISH_ARG_COUNT 15
#define RETIRE_ARG_COUNT  11

struct publisher {
    const struct publish_settings *settings;
    struct redis_conn *conn;
    struct serve_check *check;
    char stream[STREAM_KEY_BYTES];
    char lease[24];
    bool ever_connected;
    bool published;           /* every key was XADDed at least once */
    bool maybe_published;     /* a publish was sent, even if its reply never came */
    int64_t last_publish_ms;  /* monotonic time of the last successful publish */
    int64_t next_attempt_ms;  /* monotonic time of the next XADD, INT64_MAX for none */
    unsigned failed_attempts; /* failures since the last success */
    bool lease_lost_logged;
    uint64_t jitter_state;
};

static uint64_t jitter_next(struct publisher *p)
{
    /* xorshift64: spreads the retries of instances that failed at the same moment. */
    p->jitter_state ^= p->jitter_state << 13;
    p->jitter_state ^= p->jitter_state >> 7;
    p->jitter_state ^= p->jitter_state << 17;
    return p->jitter_state;
}

static int64_t retry_cap_ms(const struct publisher *p)
{
    int64_t cap_ms = p->settings->lease_ms / 3;
    if (cap_ms <= 0)
        return PUBLISH_RETRY_MAX_MS; /* retire alone has no lease */
    return cap_ms < PUBLISH_RETRY_MAX_MS ? cap_ms : PUBLISH_RETRY_MAX_MS;
}

/* The wait before retry number attempt (1 for the first): the capped exponential delay, of
 * which a random part of up to half is taken away ("equal jitter"). */
static int64_t retry_delay_ms(struct publisher *p, unsigned attempt)
{
    int64_t cap_ms = retry_cap_ms(p);
    int64_t delay_ms = PUBLISH_RETRY_INITIAL_MS;
    for (unsigned i = 1; i < attempt && delay_ms < cap_ms; i++)
        delay_ms *= 2;
    if (delay_ms > cap_ms)
        delay_ms = cap_ms;
    int64_t half = delay_ms / 2;
    return half + (int64_t)(jitter_next(p) % (uint64_t)(half + 1));
}

static int ensure_connected(struct publisher *p, struct error *err)
{
    if (redis_conn_is_connected(p->conn))
        return 0;
    if (redis_conn_connect(p->conn, err) != 0)
        return -1;
    log_info("redis", "%s Redis at %s", p->ever_connected ? "reconnected to" : "connected to",
             redis_conn_endpoint(p->conn));
    p->ever_connected = true;
    return 0;
}

/* Checks that each of count replies is an XADD entry ID and logs them at debug. */
static int check_entry_ids(struct publisher *p, redisReply **replies, size_t count,
                           const char *entry_type, const char *const *kids, struct error *err)
{
    for (size_t i = 0; i < count; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            error_set(err, "XADD %s on %s failed: %s", entry_type, p->stream, replies[i]->str);
            return -1;
        }
        if (replies[i]->type != REDIS_REPLY_STRING) {
            error_set(err, "XADD %s on %s returned reply type %d, not an entry ID", entry_type,
                      p->stream, replies[i]->type);
            return -1;
        }
        log_debug("publish", "wrote %s entry %s for kid %s", entry_type, replies[i]->str,
                  kids[i] != NULL ? kids[i] : "(every key of the instance)");
    }
    return 0;
}

/* Sends the queued commands and checks their replies. kids names each entry in logs. */
static int run_pipeline(struct publisher *p, size_t count, const char *entry_type,
                        const char *const *kids, struct error *err)
{
    redisReply *replies[PUBLISH_KEYS_MAX];
    if (strcmp(entry_type, "publish") == 0)
        p->maybe_published = true;
    if (redis_conn_pipeline_run(p->conn, replies, count, 0, err) != 0)
        return -1;
    int rc = check_entry_ids(p, replies, count, entry_type, kids, err);
    for (size_t i = 0; i < count; i++)
        freeReplyObject(replies[i]);
    return rc;
}

/* XADDs one publish entry per key, in one round trip. */
static int publish_keys(struct publisher *p, struct error *err)
{
    const struct publish_settings *s = p->settings;
    const char *kids[PUBLISH_KEYS_MAX];
    if (ensure_connected(p, err) != 0)
        return -1;
    for (size_t i = 0; i < s->key_count; i++) {
        const struct jwk_public *key = &s->keys[i];
        // clang-format off
        const char *argv[PUBLISH_ARG_COUNT] = {
            "XADD", p->stream, "*",
            "v", PROTOCOL_VERSION,
            "type", "publish",
            "instance", s->instance,
            "kid", key->kid,
            "lease_ms", p->lease,
            "jwk", key->json,
        };
        // clang-format on
        size_t lens[PUBLISH_ARG_COUNT];
        for (size_t a = 0; a < PUBLISH_ARG_COUNT - 1; a++)
            lens[a] = strlen(argv[a]);
        lens[PUBLISH_ARG_COUNT - 1] = key->json_len;
        if (redis_conn_pipeline_add(p->conn, PUBLISH_ARG_COUNT, argv, lens, err) != 0) {
            redis_conn_close(p->conn); /* Drops the partly queued pipeline with the socket. */
            return -1;
        }
        kids[i] = key->kid;
    }
    return run_pipeline(p, s->key_count, "publish", kids, err);
}

static void note_publish_success(struct publisher *p, int64_t now_ms)
{
    const struct publish_settings *s = p->settings;
    if (!p->published && p->failed_attempts > 0)
        log_info("publish", "published %zu key(s) to %s on Redis at %s after %u failed attempt(s)",
                 s->key_count, p->stream, redis_conn_endpoint(p->conn), p->failed_attempts);
    else if (!p->published)
        log_info("publish", "published %zu key(s) to %s on Redis at %s", s->key_count, p->stream,
                 redis_conn_endpoint(p->conn));
    else if (p->failed_attempts > 0)
        log_info("publish", "renewing the keys succeeded again after %u failed attempt(s)",
                 p->failed_attempts);
    if (p->lease_lost_logged)
        log_info("publish", "the keys are published again after their lease had ended");
    p->published = true;
    p->failed_attempts = 0;
    p->lease_lost_logged = false;
    p->last_publish_ms = now_ms;
    p->next_attempt_ms = s->once ? INT64_MAX : now_ms + s->lease_ms / 3;
}

static void note_publish_failure(struct publisher *p, int64_t now_ms, const struct error *err)
{
    const struct publish_settings *s = p->settings;
    const char *action = p->published ? "renewing the keys" : "publishing the keys";
    p->failed_attempts++;
    int64_t delay_ms = retry_delay_ms(p, p->failed_attempts);
    p->next_attempt_ms = now_ms + delay_ms;
    if (p->failed_attempts == 1)
        log_warn("publish", "%s failed (attempt 1): %s; retrying with backoff of up to %lld ms",
                 action, err->message, (long long)retry_cap_ms(p));
    else
        log_debug("publish", "%s failed (attempt %u): %s; retrying in %lld ms", action,
                  p->failed_attempts, err->message, (long long)delay_ms);
    /* NOTE: keys already announced as safe stay announced, and the ready file stays, even though
     * a Keycloak node that refetches during the gap will not see them. */
    if (p->published && !p->lease_lost_logged && now_ms - p->last_publish_ms >= s->lease_ms) {
        log_error("publish",
                  "the lease of every published key ended after %u failed renewal(s); "
                  "the hub stops serving them until a renewal succeeds",
                  p->failed_attempts);
        p->lease_lost_logged = true;
    }
}

/* Queues and sends the retire entries: one per kid, or one for every key of the instance when
 * kids is NULL. */
static int retire_attempt(struct publisher *p, const char *const *kids, size_t count,
                          struct error *err)
{
    static const char *const all[1] = {NULL};
    size_t entries = kids != NULL ? count : 1;
    if (ensure_connected(p, err) != 0)
        return -1;
    for (size_t i = 0; i < entries; i++) {
        // clang-format off
        const char *argv[RETIRE_ARG_COUNT] = {
            "XADD", p->stream, "*",
            "v", PROTOCOL_VERSION,
            "type", "retire",
            "instance", p->settings->instance,
            "kid", kids != NULL ? kids[i] : NULL, /* left out for a retire of every key */
        };
        // clang-format on
        int argc = kids != NULL ? RETIRE_ARG_COUNT : RETIRE_ARG_COUNT - 2;
        size_t lens[RETIRE_ARG_COUNT];
        for (int a = 0; a < argc; a++)
            lens[a] = strlen(argv[a]);
        if (redis_conn_pipeline_add(p->conn, argc, argv, lens, err) != 0) {
            redis_conn_close(p->conn); /* Drops the partly queued pipeline with the socket. */
            return -1;
        }
    }
    return run_pipeline(p, entries, "retire", kids != NULL ? kids : all, err);
}

/* Runs retire_attempt up to PUBLISH_RETIRE_ATTEMPTS_MAX times, with backoff in between.
 * NOTE: a second SIGTERM or SIGINT does not cut this short. Against a Redis that accepts but
 * never answers it takes about three command timeouts (2 s each with the ctl's settings). */
static int retire_keys(struct publisher *p, const char *const *kids, size_t count,
                       struct error *err)
{
    for (unsigned attempt = 1; attempt <= PUBLISH_RETIRE_ATTEMPTS_MAX; attempt++) {
        if (attempt > 1)
            clock_sleep_ms(retry_delay_ms(p, attempt - 1));
        if (retire_attempt(p, kids, count, err) == 0)
            return 0;
        log_warn("publish", "writing the retire entries failed (attempt %u of %d): %s", attempt,
                 PUBLISH_RETIRE_ATTEMPTS_MAX, err->message);
    }
    return -1;
}

static int retire_published(struct publisher *p, struct error *err)
{
    const struct publish_settings *s = p->settings;
    const char *kids[PUBLISH_KEYS_MAX];
    for (size_t i = 0; i < s->key_count; i++)
        kids[i] = s->keys[i].kid;
    redis_conn_set_wakeup_fd(p->conn, -1); /* The stop pipe stays readable from now on. */
    if (retire_keys(p, kids, s->key_count, err) != 0) {
        error_prefix(err,
                     "the keys could not be retired and stay served until their lease ends "
                     "in at most %lld ms",
                     (long long)s->lease_ms);
        return -1;
    }
    for (size_t i = 0; i < s->key_count; i++)
        log_info("publish", "retired kid %s of instance %s", kids[i], s->instance);
    return 0;
}

/* --once skips the readiness check unless --jwks-url or --ready-file is given. */
static bool readiness_wanted(const struct publish_settings *s)
{
    return !s->once || s->url_count > 0 || s->ready_file != NULL;
}

static bool once_is_done(const struct publisher *p)
{
    const struct publish_settings *s = p->settings;
    if (!s->once || !p->published)
        return false;
    if (!readiness_wanted(s))
        return true;
    return serve_check_is_ready(p->check);
}

/* Makes one publish attempt when it is due. Returns -1 only when --once ran out of attempts. */
static int publish_when_due(struct publisher *p, struct error *err)
{
    int64_t now_ms = clock_monotonic_ms();
    if (now_ms < p->next_attempt_ms)
        return 0;
    if (publish_keys(p, err) == 0) {
        note_publish_success(p, clock_monotonic_ms());
        if (readiness_wanted(p->settings))
            serve_check_begin(p->check, p->last_publish_ms);
        return 0;
    }
    if (redis_conn_status(p->conn) == REDIS_STATUS_INTERRUPTED)
        return 0; /* A stop was requested; the loop ends next. */
    note_publish_failure(p, now_ms, err);
    if (p->settings->once && p->failed_attempts >= PUBLISH_ONCE_ATTEMPTS_MAX) {
        error_prefix(err, "--once: publishing failed %u times", p->failed_attempts);
        return -1;
    }
    return 0;
}

/* With --once nothing renews the keys, so readiness has to come before their lease ends. */
static int check_once_lease(const struct publisher *p, struct error *err)
{
    const struct publish_settings *s = p->settings;
    if (!s->once || !p->published || clock_monotonic_ms() < p->last_publish_ms + s->lease_ms)
        return 0;
    error_set(err,
              "--once: the lease of %lld ms ended before the keys became safe to sign with; "
              "use a lease longer than --safe-window-ms plus the time the hub takes to "
              "serve the keys",
              (long long)s->lease_ms);
    return -1;
}

/* The loop of publish_run. Returns 0 when stopped or done, -1 with err set on a failure. */
static int publish_loop(struct publisher *p, struct error *err)
{
    while (stop_signal_received() == 0) {
        if (publish_when_due(p, err) != 0)
            return -1;
        if (once_is_done(p))
            return 0;
        if (check_once_lease(p, err) != 0)
            return -1;
        if (stop_signal_received() != 0)
            break;
        int64_t until_ms = p->next_attempt_ms;
        if (p->settings->once && p->published)
            until_ms = p->last_publish_ms + p->settings->lease_ms;
        if (serve_check_run(p->check, until_ms, stop_signal_fd(), err) != 0)
            return -1;
    }
    log_info("publish", "received %s; stopping", stop_signal_received() == SIGINT ? "SIGINT" : "SIGTERM");
    return 0;
}

static void log_start(const struct publisher *p)
{
    const struct publish_settings *s = p->settings;
    log_info("publish",
             "kc-cluster-ctl " KCHUB_VERSION " starting: namespace %s, instance %s, "
             "lease %lld ms%s",
             s->namespace_name, s->instance, (long long)s->lease_ms,
             s->once ? ", once (no renewal)" : ", renewed every lease/3");
    for (size_t i = 0; i < s->key_count; i++)
        log_info("publish", "key %zu: kid %s, alg %s", i + 1, s->keys[i].kid, s->keys[i].alg);
}

static int publisher_init(struct publisher *p, const struct publish_settings *s, struct error *err)
{
    p->settings = s;
    snprintf(p->stream, sizeof(p->stream), "%s" PROTOCOL_JWKS_STREAM_SUFFIX, s->namespace_name);
    snprintf(p->lease, sizeof(p->lease), "%" PRId64, s->lease_ms);
    if (getrandom(&p->jitter_state, sizeof(p->jitter_state), GRND_NONBLOCK) !=
        (ssize_t)sizeof(p->jitter_state))
        p->jitter_state = (uint64_t)clock_realtime_ms() ^ ((uint64_t)getpid() << 32);
    p->jitter_state |= 1; /* xorshift never leaves zero. */

    struct serve_check_settings check = {
        .jwks_urls = s->jwks_urls,
        .url_count = s->url_count,
        .keys = s->keys,
        .key_count = s->key_count,
        .safe_window_ms = s->safe_window_ms,
        .ready_file = s->ready_file,
    };
    p->check = serve_check_create(&check, err);
    if (p->check == NULL)
        return -1;
    p->conn = redis_conn_create(s->redis);
    if (p->conn == NULL) {
        error_set(err, "out of memory creating the Redis connection");
        return -1;
    }
    redis_conn_set_wakeup_fd(p->conn, stop_signal_fd());
    return 0;
}

static void publisher_dispose(struct publisher *p)
{
    serve_check_destroy(p->check);
    redis_conn_destroy(p->conn);
}

/* Retires the keys when the loop ended by a stop or a failure. Returns the final status. */
static int finish_run(struct publisher *p, int rc, struct error *err)
{
    bool stopping = rc != 0 || stop_signal_received() != 0;
    if (!stopping) {
        log_info("publish",
                 "--once: done without renewal; the hub serves the keys until their "
                 "lease ends %lld ms after the publish",
                 (long long)p->settings->lease_ms);
        return 0;
    }
    if (p->conn == NULL || !(p->published || p->maybe_published))
        return rc;
    struct error retire_err;
    if (retire_published(p, &retire_err) == 0)
        return rc;
    if (rc == 0)
        *err = retire_err;
    else
        log_error("publish", "%s", retire_err.message);
    return -1;
}

int publish_run(const struct publish_settings *settings, struct error *err)
{
    if (settings->key_count == 0 || settings->key_count > PUBLISH_KEYS_MAX) {
        error_set(err, "%zu keys given; expected 1 to %d", settings->key_count, PUBLISH_KEYS_MAX);
        return -1;
    }
    struct publisher p;
    memset(&p, 0, sizeof(p));
    if (stop_signal_install(err) != 0)
        return -1;
    int rc = publisher_init(&p, settings, err);
    if (rc == 0) {
        log_start(&p);
        rc = publish_loop(&p, err);
        rc = finish_run(&p, rc, err);
    }
    publisher_dispose(&p);
    if (rc == 0)
        log_info("publish", "stopped");
    return rc;
}

int publish_retire(const struct redis_settings *redis, const char *namespace_name,
                   const char *instance, const char *kid, struct error *err)
{
    struct publish_settings settings = {
        .redis = redis, .namespace_name = namespace_name, .instance = instance};
    struct publisher p;
    memset(&p, 0, sizeof(p));
    p.settings = &settings;
    p.jitter_state = (uint64_t)clock_realtime_ms() | 1;
    snprintf(p.stream, sizeof(p.stream), "%s" PROTOCOL_JWKS_STREAM_SUFFIX, namespace_name);
    p.conn = redis_conn_create(redis);
    if (p.conn == NULL) {
        error_set(err, "out of memory creating the Redis connection");
        return -1;
    }
    const char *kids[1] = {kid};
    int rc = retire_keys(&p, kid != NULL ? kids : NULL, 1, err);
    redis_conn_destroy(p.conn);
    if (rc != 0)
        return -1;
    if (kid != NULL)
        log_info("publish", "retired kid %s of instance %s in %s", kid, instance, p.stream);
    else
        log_info("publish", "retired every key of instance %s in %s", instance, p.stream);
    return 0;
}
