/* Readiness of published keys: polling the hub's JWKS URLs until every published key is served,
 * waiting out Keycloak's refetch window, then announcing the keys as safe to sign with and
 * writing the ready file.
 *
 * Keycloak refetches a client's JWKS at most once per 10 s per node (its minTimeBetweenRequests
 * default), and only when it meets an unknown kid. A key that every hub replica has served for
 * longer than that window is therefore known to every Keycloak node that asks for it. */
#ifndef KCHUB_SERVE_CHECK_H
#define KCHUB_SERVE_CHECK_H

#include "error.h"
#include "jwk.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERVE_CHECK_POLL_INTERVAL_MS   200
#define SERVE_CHECK_CONNECT_TIMEOUT_MS 1000
#define SERVE_CHECK_TOTAL_TIMEOUT_MS   2000
/* The largest JWKS response read. At an estimated 850 bytes per RSA-4096 JWK, that is about
 * 19,000 keys. */
#define SERVE_CHECK_BODY_MAX_BYTES (16 * 1024 * 1024)

/* The readiness check's inputs. The pointers must stay valid for the checker's lifetime. */
struct serve_check_settings {
    const char *const *jwks_urls; /* may be empty: serving is then assumed, not observed */
    size_t url_count;
    const struct jwk_public *keys; /* the published keys */
    size_t key_count;
    int64_t safe_window_ms;
    const char *ready_file; /* NULL: no ready file */
};

struct serve_check;

/* Creates a checker and removes a ready file left by an earlier run, so a stale file cannot
 * announce readiness for new keys. Returns NULL with err set when the file cannot be removed or
 * libcurl cannot be set up. Call curl_global_init before. */
struct serve_check *serve_check_create(const struct serve_check_settings *settings,
                                       struct error *err);

/* Frees the checker and aborts a poll in progress. Safe on NULL. */
void serve_check_destroy(struct serve_check *check);

/* Starts the check after the first successful publish, which finished at monotonic time
 * published_ms. Without JWKS URLs it logs a warning and counts the window from published_ms. */
void serve_check_begin(struct serve_check *check, int64_t published_ms);

/* True after serve_check_begin. */
bool serve_check_started(const struct serve_check *check);

/* True once the keys were announced as safe and the ready file was written. */
bool serve_check_is_ready(const struct serve_check *check);

/* Polls the URLs and advances the readiness state, waiting at most until monotonic time
 * until_ms. Returns early when the state changed, when a poll round finished, or as soon as
 * wakeup_fd (-1: none) is readable. Returns 0, or -1 with err set when writing the ready file
 * failed. A failing URL is logged and retried, never an error. */
int serve_check_run(struct serve_check *check, int64_t until_ms, int wakeup_fd, struct error *err);

#endif
