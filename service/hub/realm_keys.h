/* The issuer's signing keys, as the realm publishes them at its jwks_uri: the JWS algorithms the
 * hub verifies, an immutable parsed key set with lookup by kid, and a holder that HTTP threads
 * share. The holder swaps in a new set after a refetch; readers take a reference and never wait
 * on the network while holding a lock. Refetches are rate-limited like Keycloak's own (at most
 * one per interval), and a failed refetch keeps the previous set. */
#ifndef KCHUB_REALM_KEYS_H
#define KCHUB_REALM_KEYS_H

#include "error.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* JWS signature algorithms of RFC 7518 and RFC 8037 that a realm key can verify. */
enum jws_alg {
    JWS_ALG_RS256,
    JWS_ALG_RS384,
    JWS_ALG_RS512,
    JWS_ALG_PS256,
    JWS_ALG_PS384,
    JWS_ALG_PS512,
    JWS_ALG_ES256,
    JWS_ALG_ES384,
    JWS_ALG_ES512,
    JWS_ALG_EDDSA,
    JWS_ALG_COUNT
};

/* One bit per enum jws_alg, for sets of algorithms. */
#define JWS_ALG_BIT(alg) (1u << (unsigned)(alg))
#define JWS_ALG_ALL      (JWS_ALG_BIT(JWS_ALG_COUNT) - 1u)

/* Returns the registered name ("RS256", "EdDSA"). */
const char *jws_alg_name(enum jws_alg alg);

/* Looks up a name of len bytes, compared case-sensitively as RFC 7515 requires. Returns 0 and
 * sets *out, or -1 for a name that is not one of enum jws_alg. */
int jws_alg_parse(const char *name, size_t len, enum jws_alg *out);

/* Upper bounds for a JWKS body and for the keys kept from it. Keys beyond the count are skipped. */
#define REALM_KEYS_BODY_MAX_BYTES ((size_t)1024 * 1024)
#define REALM_KEYS_MAX_KEYS       100

/* Default minimum time between two refetches, the same as Keycloak's minTimeBetweenRequests. */
#define REALM_KEYS_REFRESH_INTERVAL_MS_DEFAULT 10000

/* One signing key of the set. Read-only; it lives as long as the set that contains it. */
struct realm_key {
    char *kid;             /* NULL when the JWK has no kid */
    char *alg;             /* the JWK's alg, NULL when absent; may name an algorithm the hub
                            * cannot verify, which then never matches a token */
    unsigned fitting_algs; /* JWS_ALG_BIT set of the algorithms the key type and curve fit:
                            * RS and PS for RSA, ES256/384/512 for P-256/384/521, EdDSA for
                            * Ed25519 and Ed448 */
    EVP_PKEY *pkey;        /* public key, checked by jwk_to_pkey */
};

/* An immutable, reference-counted set of signing keys. */
struct realm_key_set;

/* Parses a JWKS body ({"keys": [...]}, duplicate members rejected) of at most
 * REALM_KEYS_BODY_MAX_BYTES. Keeps each key whose use is absent or "sig" and that jwk_to_pkey
 * accepts, with a string kid and alg when present. Every other key is skipped: use "enc" or any
 * other value, unknown kty, private members, invalid parameters, a non-string kid or alg, a kid
 * with a NUL byte, or a key beyond the first REALM_KEYS_MAX_KEYS kept. Each skipped key is logged
 * once at debug level with its kid and the reason, and never fails the set. Returns a new set
 * with one reference, or NULL with err set when the body is too large, not JSON, has no "keys"
 * array, or contains no usable signing key (a set that can verify nothing would only replace a
 * working one). */
struct realm_key_set *realm_key_set_parse(const char *body, size_t len, struct error *err);

/* Adds a reference and returns set. Safe on NULL. */
struct realm_key_set *realm_key_set_retain(struct realm_key_set *set);

/* Drops one reference; the last one frees the set and its keys. Safe on NULL. */
void realm_key_set_release(struct realm_key_set *set);

size_t realm_key_set_count(const struct realm_key_set *set);

/* The key at index (0 to count - 1), in the order of the JWKS. */
const struct realm_key *realm_key_set_at(const struct realm_key_set *set, size_t index);

/* Finds a key by kid (kid_len bytes). When several keys share the kid, prefers the first whose
 * alg is absent or equals alg_name (NULL: no preference), as Keycloak does, and otherwise returns
 * the first with the kid, so the caller can report the mismatch. NULL when no key has the kid or
 * set is NULL. */
const struct realm_key *realm_key_set_find(const struct realm_key_set *set, const char *kid,
                                           size_t kid_len, const char *alg_name);

/* Counts the keys that can verify alg: the key type fits it and the JWK's alg is absent or equal
 * to its name. Sets *first to the first such key (NULL when none). Returns 0 for a NULL set. */
size_t realm_key_set_count_usable(const struct realm_key_set *set, enum jws_alg alg,
                                  const struct realm_key **first);

/* The holder of one issuer's current key set, shared by threads. */
struct realm_keys;

struct realm_fetch_settings;

/* Result of realm_keys_refresh_if_allowed. */
enum realm_keys_refresh {
    REALM_KEYS_REFRESHED,    /* a new set is installed (by this call or one it waited for) */
    REALM_KEYS_RATE_LIMITED, /* the last fetch started less than the interval ago; no fetch */
    REALM_KEYS_FAILED,       /* the fetch failed or did not end in time; the old set is kept */
};

/* Creates a holder with no key set that fetches with settings (strings copied) and refetches at
 * most once per refresh_interval_ms (at least 0). Fetches nothing yet. Returns NULL with err set
 * when a setting is invalid (an issuer or JWKS URL that is not http or https, a timeout below
 * 1 ms, a negative interval) or memory runs out. */
struct realm_keys *realm_keys_create(const struct realm_fetch_settings *settings,
                                     int64_t refresh_interval_ms, struct error *err);

/* Frees the holder and drops its reference to the current set. No thread may be using it. */
void realm_keys_destroy(struct realm_keys *keys);

/* Returns a new reference to the current set (release it), or NULL before the first successful
 * fetch or publish. Takes the holder's lock only for the pointer copy. */
struct realm_key_set *realm_keys_acquire(struct realm_keys *keys);

/* Installs set (taking over the caller's reference) and releases the one it replaces. */
void realm_keys_publish(struct realm_keys *keys, struct realm_key_set *set);

/* Fetches the key set again unless a fetch started less than the refresh interval before now_ms,
 * a monotonic clock reading in ms as clock_monotonic_ms returns. The first call always fetches.
 * Failed fetches count against the interval too, so a failing issuer is asked at most once per
 * interval. Only one fetch runs at a time. A call that arrives during one waits for its result
 * for at most the total fetch timeout, and returns REFRESHED or FAILED according to it (FAILED
 * when the wait times out). A failure is logged at warn level with the URL and the reason, and
 * the old set stays installed. */
enum realm_keys_refresh realm_keys_refresh_if_allowed(struct realm_keys *keys, int64_t now_ms);

#endif
