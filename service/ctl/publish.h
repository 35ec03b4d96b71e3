/* Publishing an instance's public keys to the hub's Redis stream <namespace>:jwks, renewing
 * their lease until SIGTERM or SIGINT, and retiring them on the way out. */
#ifndef KCHUB_PUBLISH_H
#define KCHUB_PUBLISH_H

#include "error.h"
#include "jwk.h"
#include "redis_conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The maximum number of --key files. */
#define PUBLISH_KEYS_MAX 16
/* The first retry of a failed XADD waits about this long; each further retry doubles it. */
#define PUBLISH_RETRY_INITIAL_MS 250
/* The maximum wait between retries, unless a third of the lease is shorter. */
#define PUBLISH_RETRY_MAX_MS 5000
/* With --once, the attempts made before giving up. */
#define PUBLISH_ONCE_ATTEMPTS_MAX 5
/* Attempts at the retire entries when stopping. */
#define PUBLISH_RETIRE_ATTEMPTS_MAX 3

/* The inputs of the publish subcommand. Every pointer is owned by the caller and must stay valid
 * during publish_run. */
struct publish_settings {
    const struct redis_settings *redis;
    const char *namespace_name;
    const char *instance;
    const struct jwk_public *keys; /* normalised public JWKs, distinct kids */
    size_t key_count;
    int64_t lease_ms;
    bool once;                    /* publish once, without renewal and without retiring */
    const char *const *jwks_urls; /* the hub replicas' JWKS URLs, may be empty */
    size_t url_count;
    int64_t safe_window_ms;
    const char *ready_file; /* NULL: none */
};

/* Runs the publish subcommand: XADDs a publish entry for every key, renews them every
 * lease_ms / 3, retries failures with capped exponential backoff and jitter, and runs the
 * readiness check (serve_check.h). On SIGTERM or SIGINT, which interrupt every wait at once, it
 * XADDs a retire entry for every published kid. With once it returns after the first successful
 * publish, or after readiness when URLs or a ready file were given.
 *
 * Returns 0 on a clean stop or a finished --once, or -1 with err set: --once could not publish,
 * the ready file could not be written, or the retire entries could not be written. Installs
 * handlers for SIGTERM and SIGINT and ignores SIGPIPE. */
int publish_run(const struct publish_settings *settings, struct error *err);

/* Runs the retire subcommand: XADDs one retire entry for kid, or for every key of instance when
 * kid is NULL. Returns 0, or -1 with err set when Redis could not be reached or rejected it. */
int publish_retire(const struct redis_settings *redis, const char *namespace_name,
                   const char *instance, const char *kid, struct error *err);

#endif
