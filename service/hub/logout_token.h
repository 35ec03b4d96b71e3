/* Validation of one OpenID Connect Back-Channel Logout 1.0 logout token, a compact JWS signed by
 * the realm, against a policy and the realm's key set. It checks the JWS structure and header,
 * the signature, then the claims that section 2.6 of the specification requires of a receiver.
 * The result is either the claims a logout needs or one rejection value with a stable name and a
 * fixed one-sentence description that never contains any part of the token. Nothing here logs,
 * so the caller logs the result with jti and sid or sub, and never the token. Validations may run
 * in parallel because they only read the key set. */
#ifndef KCHUB_LOGOUT_TOKEN_H
#define KCHUB_LOGOUT_TOKEN_H

#include "realm_keys.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGOUT_TOKEN_MAX_BYTES     16384
#define LOGOUT_TOKEN_JTI_MAX_BYTES 256

/* The member of "events" that marks a logout token. */
#define LOGOUT_TOKEN_EVENT "http://schemas.openid.net/event/backchannel-logout"

/* Policy defaults. The skew equals the allowance Keycloak gives client assertions. The maximum
 * age equals the lifetime Keycloak gives a logout token (exp = iat + 120 s), which it sends
 * during the user's logout request, so an older token is a replay or a stuck clock. exp is
 * optional by default because Keycloak releases before 22 send none. */
#define LOGOUT_TOKEN_CLOCK_SKEW_MS_DEFAULT 15000
#define LOGOUT_TOKEN_MAX_AGE_MS_DEFAULT    120000

/* The rules a token must satisfy. Strings are borrowed and must outlive the calls that use
 * them. */
struct logout_token_policy {
    const char *issuer;     /* iss must equal it byte for byte */
    const char *client_id;  /* aud must be it, or an array that contains it */
    unsigned accepted_algs; /* JWS_ALG_BIT set; "none" and HS* are rejected anyway */
    int64_t clock_skew_ms;  /* allowance for clock differences, applied to iat and exp */
    int64_t max_age_ms;     /* reject when now - iat is over max_age_ms + clock_skew_ms */
    bool require_exp;       /* reject a token without exp */
};

/* Sets issuer and client_id, accepted_algs to RS256 only (Keycloak's default), the default skew
 * and maximum age, and require_exp to false. */
void logout_token_policy_init(struct logout_token_policy *policy, const char *issuer,
                              const char *client_id);

/* The claims a logout notice needs. Strings are owned by the struct and free of NUL bytes. */
struct logout_token_claims {
    char *iss;
    char *sub; /* NULL when absent; sub or sid is always present */
    char *sid; /* NULL when absent */
    char *jti;
    int64_t iat;                /* NumericDate: seconds since the Unix epoch */
    int64_t exp;                /* NumericDate, 0 when absent */
    bool revoke_offline_access; /* events has "revoke_offline_access": true (the JSON literal),
                                 * Keycloak's request to end offline sessions as well */
};

/* The outcome of a validation: success or the one rule a token broke. logout_token_result_name
 * gives each a stable snake_case name for the response's error field, logs and metrics. */
enum logout_token_result {
    LOGOUT_TOKEN_OK = 0,
    LOGOUT_TOKEN_TOO_LARGE,         /* over LOGOUT_TOKEN_MAX_BYTES */
    LOGOUT_TOKEN_PARTS,             /* not three dot-separated parts */
    LOGOUT_TOKEN_BASE64URL,         /* a part is not strict base64url */
    LOGOUT_TOKEN_HEADER_INVALID,    /* header not a JSON object, or kid not a string */
    LOGOUT_TOKEN_PAYLOAD_INVALID,   /* payload not a JSON object */
    LOGOUT_TOKEN_DUPLICATE_MEMBER,  /* header or payload repeats a member name */
    LOGOUT_TOKEN_ALG_NONE,          /* alg "none" */
    LOGOUT_TOKEN_ALG_SYMMETRIC,     /* an HMAC alg: any name starting with HS */
    LOGOUT_TOKEN_ALG_NOT_ACCEPTED,  /* alg missing, unknown or outside the policy's set */
    LOGOUT_TOKEN_TYP,               /* typ present but not JWT or logout+jwt */
    LOGOUT_TOKEN_CRIT,              /* crit present */
    LOGOUT_TOKEN_UNKNOWN_KID,       /* no key with the kid; or no kid and no key for the alg */
    LOGOUT_TOKEN_KID_AMBIGUOUS,     /* no kid and several keys fit the alg */
    LOGOUT_TOKEN_KEY_ALG_MISMATCH,  /* the JWK's alg differs from the token's */
    LOGOUT_TOKEN_KEY_TYPE_MISMATCH, /* the key's type or curve does not fit the alg */
    LOGOUT_TOKEN_SIGNATURE,         /* signature invalid */
    LOGOUT_TOKEN_ISS,               /* iss missing or not the issuer */
    LOGOUT_TOKEN_AUD,               /* aud missing or without the client_id */
    LOGOUT_TOKEN_IAT_INVALID,       /* iat missing or not an integer NumericDate */
    LOGOUT_TOKEN_IAT_FUTURE,        /* iat later than now + skew */
    LOGOUT_TOKEN_IAT_TOO_OLD,       /* iat earlier than now - max age - skew */
    LOGOUT_TOKEN_EXP_INVALID,       /* exp present but not an integer NumericDate */
    LOGOUT_TOKEN_EXP_MISSING,       /* exp absent although the policy requires it */
    LOGOUT_TOKEN_EXPIRED,           /* exp not later than now - skew */
    LOGOUT_TOKEN_SUBJECT,           /* neither sub nor sid, or one that is not a non-empty string */
    LOGOUT_TOKEN_EVENTS,            /* events lacks the logout event as a JSON object */
    LOGOUT_TOKEN_NONCE,             /* nonce present */
    LOGOUT_TOKEN_JTI,               /* jti missing, not a string, empty or over the limit */
    LOGOUT_TOKEN_INTERNAL,          /* out of memory or an OpenSSL failure; not the token's fault */
    LOGOUT_TOKEN_RESULT_COUNT
};

/* Returns the stable name of a result ("ok", "unknown_kid", "bad_signature"). */
const char *logout_token_result_name(enum logout_token_result result);

/* Validates token (token_len bytes, no terminator needed) at now_ms (milliseconds since the Unix
 * epoch) against policy, with the keys of keys (NULL means an empty set). Checks, in order: size,
 * three strict base64url parts, the header (a JSON object without duplicate members; alg not
 * "none" or HS* and in policy->accepted_algs; typ absent or, case-insensitively, "JWT",
 * "logout+jwt" or either with an "application/" prefix; no crit), the key (the key with the
 * header's kid, or without a kid the only key usable for the alg; its JWK alg, when present,
 * equal to the token's; its type and curve fitting the alg), the signature, and the claims (iss,
 * aud, iat, exp, sub or sid, events, nonce, jti). iat and exp must be JSON integers: a NumericDate
 * with a fraction or an exponent is rejected, as Keycloak never sends one. Unknown header
 * parameters and claims are ignored.
 *
 * On LOGOUT_TOKEN_OK fills *claims. On any other result leaves *claims zeroed, and a caller that
 * gets LOGOUT_TOKEN_UNKNOWN_KID may refetch the realm keys once and validate again. In both cases
 * sets *description to a static one-sentence description of the rule (for error_description),
 * and the caller calls logout_token_claims_dispose. */
enum logout_token_result logout_token_validate(const char *token, size_t token_len,
                                               const struct logout_token_policy *policy,
                                               const struct realm_key_set *keys, int64_t now_ms,
                                               struct logout_token_claims *claims,
                                               const char **description);

/* Frees the strings of claims and zeroes it. Safe on a zeroed struct. */
void logout_token_claims_dispose(struct logout_token_claims *claims);

#endif
