#include "realm_keys.h"

#include "clock.h"
#include "jwk.h"
#include "log.h"
#include "realm_fetch.h"

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REASON_BYTES 256
/* Maximum characters of a kid or other JWK member value in a log line; longer ones are cut. */
#define LOG_VALUE_MAX_CHARS 64

static const char *const alg_names[JWS_ALG_COUNT] = {
    [JWS_ALG_RS256] = "RS256", [JWS_ALG_RS384] = "RS384", [JWS_ALG_RS512] = "RS512",
    [JWS_ALG_PS256] = "PS256", [JWS_ALG_PS384] = "PS384", [JWS_ALG_PS512] = "PS512",
    [JWS_ALG_ES256] = "ES256", [JWS_ALG_ES384] = "ES384", [JWS_ALG_ES512] = "ES512",
    [JWS_ALG_EDDSA] = "EdDSA",
};

#define RSA_ALGS                                                                                   \
    (JWS_ALG_BIT(JWS_ALG_RS256) | JWS_ALG_BIT(JWS_ALG_RS384) | JWS_ALG_BIT(JWS_ALG_RS512) |        \
     JWS_ALG_BIT(JWS_ALG_PS256) | JWS_ALG_BIT(JWS_ALG_PS384) | JWS_ALG_BIT(JWS_ALG_PS512))

struct realm_key_set {
    atomic_uint references;
    size_t count;
    struct realm_key keys[];
};

struct realm_keys {
    pthread_mutex_t lock; /* protects current only */
    struct realm_key_set *current;

    pthread_mutex_t refresh_lock; /* protects the refresh state below */
    pthread_cond_t refresh_done;  /* signalled when a fetch ends, waited on with CLOCK_MONOTONIC */
    bool fetching;
    bool attempted;
    int64_t last_attempt_ms;
    uint64_t fetches_finished;
    bool last_fetch_ok;

    int64_t refresh_interval_ms;
    char *issuer;
    char *jwks_url;
    char *ca_file;
    int64_t connect_timeout_ms;
    int64_t total_timeout_ms;
};

const char *jws_alg_name(enum jws_alg alg)
{
    if ((unsigned)alg >= JWS_ALG_COUNT)
        return "unknown";
    return alg_names[alg];
}

int jws_alg_parse(const char *name, size_t len, enum jws_alg *out)
{
    for (int alg = 0; alg < JWS_ALG_COUNT; alg++) {
        if (strlen(alg_names[alg]) == len && memcmp(alg_names[alg], name, len) == 0) {
            *out = (enum jws_alg)alg;
            return 0;
        }
    }
    return -1;
}

/* Maps an EC key's group to the NID of its curve. OpenSSL may report the group by its short
 * name ("prime256v1") or its NIST name ("P-256"), depending on how the key was built. */
static int ec_curve_nid(const EVP_PKEY *pkey)
{
    char group[64];
    size_t group_len = 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &group_len) != 1)
        return NID_undef;
    int nid = OBJ_sn2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    return nid;
}

/* Returns the JWS_ALG_BIT set that the key's type and curve fit, 0 for any other key. */
static unsigned fitting_algs_of(const EVP_PKEY *pkey)
{
    if (EVP_PKEY_is_a(pkey, "RSA"))
        return RSA_ALGS;
    if (EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448"))
        return JWS_ALG_BIT(JWS_ALG_EDDSA);
    if (!EVP_PKEY_is_a(pkey, "EC"))
        return 0;
    switch (ec_curve_nid(pkey)) {
    case NID_X9_62_prime256v1:
        return JWS_ALG_BIT(JWS_ALG_ES256);
    case NID_secp384r1:
        return JWS_ALG_BIT(JWS_ALG_ES384);
    case NID_secp521r1:
        return JWS_ALG_BIT(JWS_ALG_ES512);
    default:
        return 0;
    }
}

/* Reads an optional string member. Returns 0 with *value NULL when absent, 0 with *value set for
 * a string without NUL bytes, and -1 for anything else. */
static int optional_string(const json_t *jwk, const char *name, const char **value)
{
    const json_t *member = json_object_get(jwk, name);
    *value = NULL;
    if (member == NULL)
        return 0;
    if (!json_is_string(member) || strlen(json_string_value(member)) != json_string_length(member))
        return -1;
    *value = json_string_value(member);
    return 0;
}

/* Checks the members that decide whether the JWK is a signing key to keep. Returns 0, or -1 with
 * reason set. */
static int check_signing_members(const json_t *jwk, const char **kid, const char **alg,
                                 char *reason, size_t reason_len)
{
    const char *use;
    if (optional_string(jwk, "kid", kid) != 0) {
        snprintf(reason, reason_len, "member \"kid\" is not a string or contains a NUL byte");
        return -1;
    }
    if (optional_string(jwk, "use", &use) != 0) {
        snprintf(reason, reason_len, "member \"use\" is not a string");
        return -1;
    }
    if (use != NULL && strcmp(use, "sig") != 0) {
        snprintf(reason, reason_len, "member \"use\" is \"%.*s\", not \"sig\"", LOG_VALUE_MAX_CHARS,
                 use);
        return -1;
    }
    if (optional_string(jwk, "alg", alg) != 0) {
        snprintf(reason, reason_len, "member \"alg\" is not a string");
        return -1;
    }
    return 0;
}

/* Fills *out from one JWK of the set. Returns 0, or -1 with reason set (the key is skipped). */
static int key_from_jwk(const json_t *jwk, struct realm_key *out, char *reason, size_t reason_len)
{
    const char *kid = NULL, *alg = NULL;
    EVP_PKEY *pkey = NULL;

    if (!json_is_object(jwk)) {
        snprintf(reason, reason_len, "the entry is not a JSON object");
        return -1;
    }
    if (check_signing_members(jwk, &kid, &alg, reason, reason_len) != 0)
        return -1;
    if (jwk_to_pkey(jwk, &pkey, reason, reason_len) != JWK_OK)
        return -1;

    unsigned fitting = fitting_algs_of(pkey);
    if (fitting == 0) {
        snprintf(reason, reason_len, "the key type fits no supported JWS algorithm");
        EVP_PKEY_free(pkey);
        return -1;
    }
    out->kid = kid != NULL ? strdup(kid) : NULL;
    out->alg = alg != NULL ? strdup(alg) : NULL;
    if ((kid != NULL && out->kid == NULL) || (alg != NULL && out->alg == NULL)) {
        snprintf(reason, reason_len, "out of memory copying kid and alg");
        free(out->kid);
        free(out->alg);
        EVP_PKEY_free(pkey);
        return -1;
    }
    out->fitting_algs = fitting;
    out->pkey = pkey;
    return 0;
}

static void log_skipped_key(size_t index, const json_t *jwk, const char *reason)
{
    const char *kid = json_string_value(json_object_get(jwk, "kid"));
    log_debug("realm_keys", "JWKS key %zu (kid \"%.*s\") skipped: %s", index, LOG_VALUE_MAX_CHARS,
              kid != NULL ? kid : "(none)", reason);
}

/* Loads the body and returns its "keys" array (borrowed from *root), or NULL with err set. */
static const json_t *load_keys_array(const char *body, size_t len, json_t **root, struct error *err)
{
    json_error_t json_error;
    *root = NULL;
    if (len > REALM_KEYS_BODY_MAX_BYTES) {
        error_set(err, "JWKS body is %zu bytes, over the limit of %zu bytes", len,
                  REALM_KEYS_BODY_MAX_BYTES);
        return NULL;
    }
    *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &json_error);
    if (*root == NULL) {
        error_set(err,
                  "JWKS body is not valid JSON: %s at line %d column %d; check that the URL "
                  "serves the realm's keys",
                  json_error.text, json_error.line, json_error.column);
        return NULL;
    }
    const json_t *keys = json_object_get(*root, "keys");
    if (!json_is_array(keys)) {
        error_set(err, "JWKS body has no \"keys\" array; check that the URL serves a JWK set");
        return NULL;
    }
    return keys;
}

struct realm_key_set *realm_key_set_parse(const char *body, size_t len, struct error *err)
{
    json_t *root;
    const json_t *keys = load_keys_array(body, len, &root, err);
    if (keys == NULL) {
        json_decref(root);
        return NULL;
    }

    size_t total = json_array_size(keys);
    size_t capacity = total < REALM_KEYS_MAX_KEYS ? total : REALM_KEYS_MAX_KEYS;
    struct realm_key_set *set = calloc(1, sizeof(*set) + capacity * sizeof(set->keys[0]));
    if (set == NULL) {
        error_set(err, "out of memory parsing a JWKS of %zu keys", total);
        json_decref(root);
        return NULL;
    }
    atomic_init(&set->references, 1);

    char reason[REASON_BYTES];
    for (size_t i = 0; i < total; i++) {
        const json_t *jwk = json_array_get(keys, i);
        if (set->count == capacity)
            snprintf(reason, sizeof(reason), "the set already contains %d keys, the maximum kept",
                     REALM_KEYS_MAX_KEYS);
        if (set->count == capacity ||
            key_from_jwk(jwk, &set->keys[set->count], reason, sizeof(reason)) != 0) {
            log_skipped_key(i, jwk, reason);
            ERR_clear_error();
            continue;
        }
        set->count++;
    }
    json_decref(root);

    if (set->count == 0) {
        error_set(err,
                  "JWKS has no usable signing key among its %zu keys (run with log level "
                  "debug to see why each was skipped)",
                  total);
        realm_key_set_release(set);
        return NULL;
    }
    return set;
}

struct realm_key_set *realm_key_set_retain(struct realm_key_set *set)
{
    if (set != NULL)
        atomic_fetch_add_explicit(&set->references, 1, memory_order_relaxed);
    return set;
}

void realm_key_set_release(struct realm_key_set *set)
{
    if (set == NULL || atomic_fetch_sub(&set->references, 1) != 1)
        return;
    for (size_t i = 0; i < set->count; i++) {
        free(set->keys[i].kid);
        free(set->keys[i].alg);
        EVP_PKEY_free(set->keys[i].pkey);
    }
    free(set);
}

size_t realm_key_set_count(const struct realm_key_set *set)
{
    return set != NULL ? set->count : 0;
}

const struct realm_key *realm_key_set_at(const struct realm_key_set *set, size_t index)
{
    return &set->keys[index];
}

const struct realm_key *realm_key_set_find(const struct realm_key_set *set, const char *kid,
                                           size_t kid_len, const char *alg_name)
{
    const struct realm_key *first = NULL;
    for (size_t i = 0; i < realm_key_set_count(set); i++) {
        const struct realm_key *key = &set->keys[i];
        if (key->kid == NULL || strlen(key->kid) != kid_len || memcmp(key->kid, kid, kid_len) != 0)
            continue;
        if (alg_name == NULL || key->alg == NULL || strcmp(key->alg, alg_name) == 0)
            return key;
        if (first == NULL)
            first = key;
    }
    return first;
}

size_t realm_key_set_count_usable(const struct realm_key_set *set, enum jws_alg alg,
                                  const struct realm_key **first)
{
    size_t usable = 0;
    *first = NULL;
    for (size_t i = 0; i < realm_key_set_count(set); i++) {
        const struct realm_key *key = &set->keys[i];
        if ((key->fitting_algs & JWS_ALG_BIT(alg)) == 0)
            continue;
        if (key->alg != NULL && strcmp(key->alg, jws_alg_name(alg)) != 0)
            continue;
        if (usable++ == 0)
            *first = key;
    }
    return usable;
}

static int copy_optional(char **to, const char *from)
{
    *to = NULL;
    if (from == NULL || from[0] == '\0')
        return 0;
    *to = strdup(from);
    return *to != NULL ? 0 : -1;
}

static int check_settings(const struct realm_fetch_settings *settings, int64_t refresh_interval_ms,
                          struct error *err)
{
    const char *issuer = settings->issuer;
    if (issuer == NULL ||
        (strncmp(issuer, "https://", 8) != 0 && strncmp(issuer, "http://", 7) != 0)) {
        error_set(err,
                  "realm issuer \"%s\" is not an http or https URL; set it to the realm's "
                  "issuer, such as https://host/realms/name",
                  issuer != NULL ? issuer : "");
        return -1;
    }
    const char *jwks_url = settings->jwks_url;
    if (jwks_url != NULL && jwks_url[0] != '\0' && strncmp(jwks_url, "https://", 8) != 0 &&
        strncmp(jwks_url, "http://", 7) != 0) {
        error_set(err,
                  "realm JWKS URL \"%s\" is not an http or https URL; set it to the "
                  "realm's jwks_uri, or leave it empty to discover it",
                  jwks_url);
        return -1;
    }
    if (settings->connect_timeout_ms < 1 || settings->total_timeout_ms < 1) {
        error_set(err,
                  "realm key fetch timeouts must be at least 1 ms (connect %lld ms, total "
                  "%lld ms)",
                  (long long)settings->connect_timeout_ms, (long long)settings->total_timeout_ms);
        return -1;
    }
    if (refresh_interval_ms < 0) {
        error_set(err, "realm key refresh interval must be at least 0 ms, not %lld ms",
                  (long long)refresh_interval_ms);
        return -1;
    }
    return 0;
}

static int init_sync(struct realm_keys *keys)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&keys->refresh_done, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -1;
    pthread_mutex_init(&keys->lock, NULL);
    pthread_mutex_init(&keys->refresh_lock, NULL);
    return 0;
}

struct realm_keys *realm_keys_create(const struct realm_fetch_settings *settings,
                                     int64_t refresh_interval_ms, struct error *err)
{
    if (check_settings(settings, refresh_interval_ms, err) != 0)
        return NULL;
    struct realm_keys *keys = calloc(1, sizeof(*keys));
    if (keys == NULL) {
        error_set(err, "out of memory creating the realm key holder");
        return NULL;
    }
    if (copy_optional(&keys->issuer, settings->issuer) != 0 ||
        copy_optional(&keys->jwks_url, settings->jwks_url) != 0 ||
        copy_optional(&keys->ca_file, settings->ca_file) != 0 || init_sync(keys) != 0) {
        error_set(err, "out of memory creating the realm key holder");
        free(keys->issuer);
        free(keys->jwks_url);
        free(keys->ca_file);
        free(keys);
        return NULL;
    }
    keys->refresh_interval_ms = refresh_interval_ms;
    keys->connect_timeout_ms = settings->connect_timeout_ms;
    keys->total_timeout_ms = settings->total_timeout_ms;
    return keys;
}

void realm_keys_destroy(struct realm_keys *keys)
{
    if (keys == NULL)
        return;
    realm_key_set_release(keys->current);
    pthread_mutex_destroy(&keys->lock);
    pthread_mutex_destroy(&keys->refresh_lock);
    pthread_cond_destroy(&keys->refresh_done);
    free(keys->issuer);
    free(keys->jwks_url);
    free(keys->ca_file);
    free(keys);
}

struct realm_key_set *realm_keys_acquire(struct realm_keys *keys)
{
    pthread_mutex_lock(&keys->lock);
    struct realm_key_set *set = realm_key_set_retain(keys->current);
    pthread_mutex_unlock(&keys->lock);
    return set;
}

void realm_keys_publish(struct realm_keys *keys, struct realm_key_set *set)
{
    pthread_mutex_lock(&keys->lock);
    struct realm_key_set *previous = keys->current;
    keys->current = set;
    pthread_mutex_unlock(&keys->lock);
    realm_key_set_release(previous);
}

/* Runs one fetch without holding any lock and installs its set. Returns true on success. */
static bool fetch_and_publish(struct realm_keys *keys)
{
    struct realm_fetch_settings settings = {
        .issuer = keys->issuer,
        .jwks_url = keys->jwks_url,
        .ca_file = keys->ca_file,
        .connect_timeout_ms = keys->connect_timeout_ms,
        .total_timeout_ms = keys->total_timeout_ms,
    };
    struct error err = {{0}};
    struct realm_key_set *set = realm_fetch_key_set(&settings, &err);
    if (set == NULL) {
        log_warn("realm_keys",
                 "refreshing the signing keys of issuer %s failed, keeping the previous keys: %s",
                 keys->issuer, err.message);
        return false;
    }
    log_info("realm_keys", "refreshed the signing keys of issuer %s: %zu keys", keys->issuer,
             set->count);
    realm_keys_publish(keys, set);
    return true;
}

/* Waits, with refresh_lock held, until the running fetch ends or total_timeout_ms pass. */
static enum realm_keys_refresh wait_for_running_fetch(struct realm_keys *keys)
{
    uint64_t seen = keys->fetches_finished;
    int64_t deadline_ms = clock_monotonic_ms() + keys->total_timeout_ms;
    struct timespec deadline = {
        .tv_sec = (time_t)(deadline_ms / 1000),
        .tv_nsec = (long)(deadline_ms % 1000) * 1000000L,
    };
    int rc = 0;
    while (keys->fetching && keys->fetches_finished == seen && rc == 0)
        rc = pthread_cond_timedwait(&keys->refresh_done, &keys->refresh_lock, &deadline);
    if (keys->fetches_finished != seen && keys->last_fetch_ok)
        return REALM_KEYS_REFRESHED;
    return REALM_KEYS_FAILED;
}

enum realm_keys_refresh realm_keys_refresh_if_allowed(struct realm_keys *keys, int64_t now_ms)
{
    pthread_mutex_lock(&keys->refresh_lock);
    if (keys->fetching) {
        enum realm_keys_refresh result = wait_for_running_fetch(keys);
        pthread_mutex_unlock(&keys->refresh_lock);
        return result;
    }
    if (keys->attempted && now_ms - keys->last_attempt_ms < keys->refresh_interval_ms) {
        pthread_mutex_unlock(&keys->refresh_lock);
        return REALM_KEYS_RATE_LIMITED;
    }
    keys->fetching = true;
    keys->attempted = true;
    keys->last_attempt_ms = now_ms;
    pthread_mutex_unlock(&keys->refresh_lock);

    bool ok = fetch_and_publish(keys);

    pthread_mutex_lock(&keys->refresh_lock);
    keys->fetching = false;
    keys->last_fetch_ok = ok;
    keys->fetches_finished++;
    pthread_cond_broadcast(&keys->refresh_done);
    pthread_mutex_unlock(&keys->refresh_lock);
    return ok ? REALM_KEYS_REFRESHED : REALM_KEYS_FAILED;
}
