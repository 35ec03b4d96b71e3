#include "serve_check.h"

#include "body_buffer.h"

#include "clock.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DETAIL_BYTES 300

enum check_state {
    CHECK_IDLE,    /* nothing published yet */
    CHECK_POLLING, /* waiting until every URL serves every key */
    CHECK_WINDOW,  /* every key served; waiting out the safe window */
    CHECK_READY,   /* keys announced as safe */
};

/* The result of one URL's last poll. */
enum url_state {
    URL_UNKNOWN,
    URL_FAILED,   /* no JWKS: transport error, HTTP status other than 200, or not a JWKS */
    URL_MISSING,  /* a JWKS without some published kid */
    URL_CONFLICT, /* a JWKS with a published kid bound to other key material */
    URL_SERVING,  /* a JWKS with every published key */
};

struct url_probe {
    const char *url;
    CURL *easy;
    struct body_buffer body;
    bool in_flight;
    char curl_error[CURL_ERROR_SIZE];
    enum url_state state;
    char detail[DETAIL_BYTES]; /* why the last poll failed or fell short */
    unsigned failed_polls;     /* polls in a row that did not serve every key */
};

struct serve_check {
    struct serve_check_settings settings;
    enum check_state state;
    CURLM *multi;
    struct url_probe *probes;
    bool round_active;
    int64_t next_round_ms;
    int64_t window_end_ms;
};

static int probe_init(struct url_probe *probe, const char *url, struct error *err)
{
    probe->url = url;
    probe->body.max = SERVE_CHECK_BODY_MAX_BYTES;
    probe->easy = curl_easy_init();
    if (probe->easy == NULL) {
        error_set(err, "libcurl could not create a transfer for --jwks-url %s", url);
        return -1;
    }
    CURL *e = probe->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* Checks the hub itself, never through a proxy. */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)SERVE_CHECK_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)SERVE_CHECK_TOTAL_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE, (long)SERVE_CHECK_BODY_MAX_BYTES);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_buffer_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &probe->body);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, probe->curl_error);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kc-cluster-ctl/" KCHUB_VERSION);
    return 0;
}

static int remove_stale_ready_file(const char *path, struct error *err)
{
    if (path == NULL)
        return 0;
    if (unlink(path) == 0) {
        log_info("serve", "removed the ready file %s left by an earlier run", path);
        return 0;
    }
    if (errno == ENOENT)
        return 0;
    error_set(err,
              "--ready-file %s: cannot remove the file left by an earlier run: %s; remove "
              "it or choose another path",
              path, strerror(errno));
    return -1;
}

struct serve_check *serve_check_create(const struct serve_check_settings *settings,
                                       struct error *err)
{
    if (remove_stale_ready_file(settings->ready_file, err) != 0)
        return NULL;
    struct serve_check *check = calloc(1, sizeof(*check));
    if (check == NULL) {
        error_set(err, "out of memory creating the readiness check");
        return NULL;
    }
    check->settings = *settings;
    check->state = CHECK_IDLE;
    if (settings->url_count == 0)
        return check;

    check->multi = curl_multi_init();
    check->probes = calloc(settings->url_count, sizeof(*check->probes));
    if (check->multi == NULL || check->probes == NULL) {
        error_set(err, "out of memory creating the readiness check");
        serve_check_destroy(check);
        return NULL;
    }
    for (size_t i = 0; i < settings->url_count; i++) {
        if (probe_init(&check->probes[i], settings->jwks_urls[i], err) != 0) {
            serve_check_destroy(check);
            return NULL;
        }
    }
    return check;
}

static void abort_round(struct serve_check *check)
{
    for (size_t i = 0; i < check->settings.url_count; i++) {
        struct url_probe *probe = &check->probes[i];
        if (probe->in_flight)
            curl_multi_remove_handle(check->multi, probe->easy);
        probe->in_flight = false;
    }
    check->round_active = false;
}

void serve_check_destroy(struct serve_check *check)
{
    if (check == NULL)
        return;
    if (check->probes != NULL) {
        abort_round(check);
        for (size_t i = 0; i < check->settings.url_count; i++) {
            curl_easy_cleanup(check->probes[i].easy);
            free(check->probes[i].body.data);
        }
        free(check->probes);
    }
    curl_multi_cleanup(check->multi);
    free(check);
}

void serve_check_begin(struct serve_check *check, int64_t published_ms)
{
    if (check->state != CHECK_IDLE)
        return;
    if (check->settings.url_count > 0) {
        check->state = CHECK_POLLING;
        check->next_round_ms = published_ms;
        log_info("serve", "polling %zu JWKS URL(s) every %d ms until every published kid is served",
                 check->settings.url_count, SERVE_CHECK_POLL_INTERVAL_MS);
        return;
    }
    check->state = CHECK_WINDOW;
    check->window_end_ms = published_ms + check->settings.safe_window_ms;
    log_warn("serve",
             "no --jwks-url given, so serving by the hub cannot be confirmed; the keys "
             "are announced as safe %lld ms after the first publish",
             (long long)check->settings.safe_window_ms);
}

bool serve_check_started(const struct serve_check *check)
{
    return check->state != CHECK_IDLE;
}

bool serve_check_is_ready(const struct serve_check *check)
{
    return check->state == CHECK_READY;
}

/* Compares every member of our normalised JWK with the served one, so a kid served with another
 * key's material does not count as served. Returns true when they match. */
static bool served_key_matches(const json_t *served, const struct jwk_public *key)
{
    json_t *ours = json_loadb(key->json, key->json_len, 0, NULL);
    if (ours == NULL)
        return false;
    bool same = true;
    const char *name;
    json_t *value;
    json_object_foreach(ours, name, value)
    {
        if (!json_equal(value, json_object_get(served, name)))
            same = false;
    }
    json_decref(ours);
    return same;
}

/* Finds each published key in a parsed JWKS. Returns URL_SERVING, or URL_MISSING or
 * URL_CONFLICT with detail. */
static enum url_state find_keys(const json_t *keys, const struct serve_check_settings *s,
                                char *detail, size_t detail_len)
{
    for (size_t k = 0; k < s->key_count; k++) {
        const json_t *found = NULL;
        size_t i;
        json_t *entry;
        json_array_foreach(keys, i, entry)
        {
            const char *kid = json_string_value(json_object_get(entry, "kid"));
            if (kid != NULL && strcmp(kid, s->keys[k].kid) == 0) {
                found = entry;
                break;
            }
        }
        if (found == NULL) {
            snprintf(detail, detail_len, "kid %s is not in \"keys\"", s->keys[k].kid);
            return URL_MISSING;
        }
        if (!served_key_matches(found, &s->keys[k])) {
            snprintf(detail, detail_len,
                     "kid %s is served with other key material; another "
                     "instance may publish the same kid",
                     s->keys[k].kid);
            return URL_CONFLICT;
        }
    }
    return URL_SERVING;
}

static enum url_state evaluate_response(struct url_probe *probe, CURLcode result,
                                        const struct serve_check_settings *s)
{
    long status = 0;
    if (result != CURLE_OK) {
        if (probe->body.too_large || result == CURLE_FILESIZE_EXCEEDED)
            snprintf(probe->detail, sizeof(probe->detail), "the response is larger than %d bytes",
                     SERVE_CHECK_BODY_MAX_BYTES);
        else
            snprintf(probe->detail, sizeof(probe->detail), "%s",
                     probe->curl_error[0] ? probe->curl_error : curl_easy_strerror(result));
        return URL_FAILED;
    }
    curl_easy_getinfo(probe->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(probe->detail, sizeof(probe->detail), "HTTP status %ld%s", status,
                 status == 503 ? " (the hub has not finished reading the stream yet)" : "");
        return URL_FAILED;
    }
    json_error_t json_error;
    json_t *doc = probe->body.data ? json_loadb(probe->body.data, probe->body.len, 0, &json_error) : NULL;
    json_t *keys = json_object_get(doc, "keys");
    enum url_state state;
    if (!json_is_array(keys)) {
        snprintf(probe->detail, sizeof(probe->detail),
                 "the response is not a JWKS "
                 "(a JSON object with a \"keys\" array)");
        state = URL_FAILED;
    } else {
        state = find_keys(keys, s, probe->detail, sizeof(probe->detail));
    }
    json_decref(doc);
    return state;
}

/* Records a probe's result and logs it when the state changed. */
static void record_result(struct url_probe *probe, enum url_state state)
{
    enum url_state before = probe->state;
    probe->state = state;
    if (state == URL_SERVING) {
        if (before != URL_SERVING && probe->failed_polls > 0)
            log_info("serve", "%s serves every published kid, after %u poll(s) that did not",
                     probe->url, probe->failed_polls);
        else if (before != URL_SERVING)
            log_info("serve", "%s serves every published kid", probe->url);
        probe->failed_polls = 0;
        return;
    }
    probe->failed_polls++;
    if (state == before)
        return;
    if (state == URL_CONFLICT)
        log_warn("serve", "%s: %s; polling every %d ms", probe->url, probe->detail,
                 SERVE_CHECK_POLL_INTERVAL_MS);
    else if (state == URL_FAILED)
        log_warn("serve", "GET %s failed: %s; retrying every %d ms (poll %u)", probe->url,
                 probe->detail, SERVE_CHECK_POLL_INTERVAL_MS, probe->failed_polls);
    else if (before == URL_SERVING)
        log_warn("serve", "%s no longer serves every published kid: %s", probe->url, probe->detail);
    else
        log_info("serve", "%s: %s; polling every %d ms", probe->url, probe->detail,
                 SERVE_CHECK_POLL_INTERVAL_MS);
}

static void start_round(struct serve_check *check)
{
    for (size_t i = 0; i < check->settings.url_count; i++) {
        struct url_probe *probe = &check->probes[i];
        probe->body.len = 0;
        probe->body.too_large = false;
        probe->curl_error[0] = '\0';
        if (curl_multi_add_handle(check->multi, probe->easy) == CURLM_OK) {
            probe->in_flight = true;
        } else {
            snprintf(probe->detail, sizeof(probe->detail), "libcurl could not start the request");
            record_result(probe, URL_FAILED);
        }
    }
    check->round_active = true;
}

static struct url_probe *probe_of(struct serve_check *check, const CURL *easy)
{
    for (size_t i = 0; i < check->settings.url_count; i++) {
        if (check->probes[i].easy == easy)
            return &check->probes[i];
    }
    return NULL;
}

/* Collects finished transfers. Returns true when none is in flight any more. */
static bool collect_finished(struct serve_check *check)
{
    int queued = 0;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(check->multi, &queued)) != NULL) {
        struct url_probe *probe =
            msg->msg == CURLMSG_DONE ? probe_of(check, msg->easy_handle) : NULL;
        if (probe == NULL)
            continue;
        CURLcode result = msg->data.result; /* msg is invalid after remove_handle. */
        curl_multi_remove_handle(check->multi, probe->easy);
        probe->in_flight = false;
        record_result(probe, evaluate_response(probe, result, &check->settings));
    }
    for (size_t i = 0; i < check->settings.url_count; i++) {
        if (check->probes[i].in_flight)
            return false;
    }
    return true;
}

static void finish_round(struct serve_check *check, int64_t now_ms)
{
    bool all_serving = true;
    bool any_missing = false;
    for (size_t i = 0; i < check->settings.url_count; i++) {
        all_serving = all_serving && check->probes[i].state == URL_SERVING;
        any_missing = any_missing || check->probes[i].state == URL_MISSING ||
                      check->probes[i].state == URL_CONFLICT;
    }
    check->round_active = false;
    check->next_round_ms = now_ms + SERVE_CHECK_POLL_INTERVAL_MS;

    if (check->state == CHECK_POLLING && all_serving) {
        /* Counted from the end of the round, which is no earlier than the hub began serving. */
        check->state = CHECK_WINDOW;
        check->window_end_ms = now_ms + check->settings.safe_window_ms;
        log_info("serve",
                 "every JWKS URL serves every published kid; the keys are safe to sign "
                 "with in %lld ms",
                 (long long)check->settings.safe_window_ms);
    } else if (check->state == CHECK_WINDOW && any_missing) {
        /* A failed poll does not restart the window: the hub may still be serving the key. */
        check->state = CHECK_POLLING;
        log_warn("serve", "a JWKS URL stopped serving a published kid; the safe window starts "
                          "again once every URL serves every kid");
    }
}

/* Runs the poll round until it ends, until_ms passes, or wakeup_fd is readable. */
static void drive_round(struct serve_check *check, int64_t until_ms, int wakeup_fd)
{
    for (;;) {
        int running = 0;
        curl_multi_perform(check->multi, &running);
        if (collect_finished(check)) {
            finish_round(check, clock_monotonic_ms());
            return;
        }
        int64_t left_ms = until_ms - clock_monotonic_ms();
        if (left_ms <= 0)
            return;
        struct curl_waitfd wakeup = {.fd = wakeup_fd, .events = CURL_WAIT_POLLIN, .revents = 0};
        curl_multi_poll(check->multi, wakeup_fd >= 0 ? &wakeup : NULL, wakeup_fd >= 0 ? 1 : 0,
                        (int)(left_ms > 1000 ? 1000 : left_ms), NULL);
        if (wakeup.revents != 0)
            return;
    }
}

static void wait_until(int64_t until_ms, int wakeup_fd)
{
    int64_t left_ms = until_ms - clock_monotonic_ms();
    if (left_ms <= 0)
        return;
    struct pollfd fd = {.fd = wakeup_fd, .events = POLLIN};
    if (poll(&fd, wakeup_fd >= 0 ? 1 : 0, (int)(left_ms > 60000 ? 60000 : left_ms)) < 0 &&
        errno != EINTR)
        clock_sleep_ms(left_ms > 1000 ? 1000 : left_ms); /* Never spin when poll fails. */
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static char *ready_document(const struct serve_check_settings *s, int64_t safe_at_ms)
{
    json_t *doc = json_object();
    json_t *kids = json_array();
    for (size_t i = 0; doc != NULL && kids != NULL && i < s->key_count; i++)
        json_array_append_new(kids, json_string(s->keys[i].kid));
    json_object_set_new(doc, "kids", kids);
    json_object_set_new(doc, "safe_at_ms", json_integer((json_int_t)safe_at_ms));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

/* Writes the ready file through a temporary file in the same directory and rename(2), so a
 * reader sees either no file or the whole document. */
static int write_ready_file(const struct serve_check_settings *s, int64_t safe_at_ms,
                            struct error *err)
{
    const char *path = s->ready_file;
    char *text = ready_document(s, safe_at_ms);
    size_t tmp_len = strlen(path) + sizeof(".XXXXXX");
    char *tmp = malloc(tmp_len);
    if (text == NULL || tmp == NULL) {
        error_set(err, "--ready-file %s: out of memory", path);
        free(text);
        free(tmp);
        return -1;
    }
    snprintf(tmp, tmp_len, "%s.XXXXXX", path);
    int rc = -1;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        error_set(err, "--ready-file %s: cannot create a temporary file next to it: %s", path,
                  strerror(errno));
    } else if (fchmod(fd, 0644) != 0 || write_all(fd, text, strlen(text)) != 0 ||
               write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
        error_set(err, "--ready-file %s: writing %s failed: %s", path, tmp, strerror(errno));
    } else if (rename(tmp, path) != 0) {
        error_set(err, "--ready-file %s: renaming %s to it failed: %s", path, tmp, strerror(errno));
    } else {
        rc = 0;
    }
    if (fd >= 0)
        close(fd);
    if (rc != 0 && fd >= 0)
        unlink(tmp);
    free(text);
    free(tmp);
    return rc;
}

static int announce_ready(struct serve_check *check, struct error *err)
{
    if (check->round_active)
        abort_round(check);
    check->state = CHECK_READY;
    int64_t safe_at_ms = clock_realtime_ms();
    for (size_t i = 0; i < check->settings.key_count; i++)
        log_info("serve", "key %s is safe to sign with", check->settings.keys[i].kid);
    if (check->settings.ready_file == NULL)
        return 0;
    if (write_ready_file(&check->settings, safe_at_ms, err) != 0)
        return -1;
    log_info("serve", "wrote ready file %s", check->settings.ready_file);
    return 0;
}

int serve_check_run(struct serve_check *check, int64_t until_ms, int wakeup_fd, struct error *err)
{
    if (check->state == CHECK_IDLE || check->state == CHECK_READY) {
        wait_until(until_ms, wakeup_fd);
        return 0;
    }
    int64_t now_ms = clock_monotonic_ms();
    if (check->state == CHECK_WINDOW && now_ms >= check->window_end_ms)
        return announce_ready(check, err);
    if (check->state == CHECK_WINDOW && check->window_end_ms < until_ms)
        until_ms = check->window_end_ms;
    if (check->settings.url_count == 0) {
        wait_until(until_ms, wakeup_fd);
        return 0;
    }
    if (!check->round_active && now_ms >= check->next_round_ms)
        start_round(check);
    if (check->round_active)
        drive_round(check, until_ms, wakeup_fd);
    else
        wait_until(check->next_round_ms < until_ms ? check->next_round_ms : until_ms, wakeup_fd);
    return 0;
}
