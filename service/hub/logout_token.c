#include "logout_token.h"

#include "b64url.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The latest NumericDate accepted, 9999-12-31T23:59:59Z, so that converting to ms cannot
 * overflow. */
#define NUMERIC_DATE_MAX_S 253402300799LL

enum part { PART_HEADER, PART_PAYLOAD, PART_SIGNATURE, PART_COUNT };

/* The three decoded parts of a compact JWS. The signing input is the token up to the second dot. */
struct decoded_token {
    unsigned char *part[PART_COUNT];
    size_t part_len[PART_COUNT];
    size_t signing_input_len;
};

/* The header members that pick the key. kid points into the header JSON and is NULL when
 * absent. */
struct header_fields {
    enum jws_alg alg;
    const char *kid;
    size_t kid_len;
};

enum key_family { FAMILY_RSA_PKCS1, FAMILY_RSA_PSS, FAMILY_ECDSA, FAMILY_EDDSA };

/* The verification method of one enum jws_alg. digest is NULL for EdDSA, which hashes
 * internally. */
struct alg_method {
    enum key_family family;
    const EVP_MD *(*digest)(void);
    size_t ec_coordinate_bytes; /* ECDSA only: the length of r and of s in the JWS signature */
};

static const struct alg_method alg_methods[JWS_ALG_COUNT] = {
    [JWS_ALG_RS256] = {FAMILY_RSA_PKCS1, EVP_sha256, 0},
    [JWS_ALG_RS384] = {FAMILY_RSA_PKCS1, EVP_sha384, 0},
    [JWS_ALG_RS512] = {FAMILY_RSA_PKCS1, EVP_sha512, 0},
    [JWS_ALG_PS256] = {FAMILY_RSA_PSS, EVP_sha256, 0},
    [JWS_ALG_PS384] = {FAMILY_RSA_PSS, EVP_sha384, 0},
    [JWS_ALG_PS512] = {FAMILY_RSA_PSS, EVP_sha512, 0},
    [JWS_ALG_ES256] = {FAMILY_ECDSA, EVP_sha256, 32},
    [JWS_ALG_ES384] = {FAMILY_ECDSA, EVP_sha384, 48},
    [JWS_ALG_ES512] = {FAMILY_ECDSA, EVP_sha512, 66},
    [JWS_ALG_EDDSA] = {FAMILY_EDDSA, NULL, 0},
};

static const char *const result_names[LOGOUT_TOKEN_RESULT_COUNT] = {
    [LOGOUT_TOKEN_OK] = "ok",
    [LOGOUT_TOKEN_TOO_LARGE] = "token_too_large",
    [LOGOUT_TOKEN_PARTS] = "wrong_part_count",
    [LOGOUT_TOKEN_BASE64URL] = "invalid_base64url",
    [LOGOUT_TOKEN_HEADER_INVALID] = "invalid_header",
    [LOGOUT_TOKEN_PAYLOAD_INVALID] = "invalid_payload",
    [LOGOUT_TOKEN_DUPLICATE_MEMBER] = "duplicate_member",
    [LOGOUT_TOKEN_ALG_NONE] = "alg_none",
    [LOGOUT_TOKEN_ALG_SYMMETRIC] = "alg_symmetric",
    [LOGOUT_TOKEN_ALG_NOT_ACCEPTED] = "alg_not_accepted",
    [LOGOUT_TOKEN_TYP] = "invalid_typ",
    [LOGOUT_TOKEN_CRIT] = "crit_present",
    [LOGOUT_TOKEN_UNKNOWN_KID] = "unknown_kid",
    [LOGOUT_TOKEN_KID_AMBIGUOUS] = "kid_ambiguous",
    [LOGOUT_TOKEN_KEY_ALG_MISMATCH] = "key_alg_mismatch",
    [LOGOUT_TOKEN_KEY_TYPE_MISMATCH] = "key_type_mismatch",
    [LOGOUT_TOKEN_SIGNATURE] = "bad_signature",
    [LOGOUT_TOKEN_ISS] = "invalid_iss",
    [LOGOUT_TOKEN_AUD] = "invalid_aud",
    [LOGOUT_TOKEN_IAT_INVALID] = "invalid_iat",
    [LOGOUT_TOKEN_IAT_FUTURE] = "iat_in_future",
    [LOGOUT_TOKEN_IAT_TOO_OLD] = "iat_too_old",
    [LOGOUT_TOKEN_EXP_INVALID] = "invalid_exp",
    [LOGOUT_TOKEN_EXP_MISSING] = "exp_missing",
    [LOGOUT_TOKEN_EXPIRED] = "expired",
    [LOGOUT_TOKEN_SUBJECT] = "invalid_subject",
    [LOGOUT_TOKEN_EVENTS] = "invalid_events",
    [LOGOUT_TOKEN_NONCE] = "nonce_present",
    [LOGOUT_TOKEN_JTI] = "invalid_jti",
    [LOGOUT_TOKEN_INTERNAL] = "internal_error",
};

const char *logout_token_result_name(enum logout_token_result result)
{
    if ((unsigned)result >= LOGOUT_TOKEN_RESULT_COUNT)
        return "unknown";
    return result_names[result];
}

void logout_token_policy_init(struct logout_token_policy *policy, const char *issuer,
                              const char *client_id)
{
    policy->issuer = issuer;
    policy->client_id = client_id;
    policy->accepted_algs = JWS_ALG_BIT(JWS_ALG_RS256);
    policy->clock_skew_ms = LOGOUT_TOKEN_CLOCK_SKEW_MS_DEFAULT;
    policy->max_age_ms = LOGOUT_TOKEN_MAX_AGE_MS_DEFAULT;
    policy->require_exp = false;
}

void logout_token_claims_dispose(struct logout_token_claims *claims)
{
    free(claims->iss);
    free(claims->sub);
    free(claims->sid);
    free(claims->jti);
    memset(claims, 0, sizeof(*claims));
}

static enum logout_token_result reject(const char **description, enum logout_token_result result,
                                       const char *text)
{
    *description = text;
    return result;
}

static void decoded_token_dispose(struct decoded_token *decoded)
{
    for (int i = 0; i < PART_COUNT; i++)
        free(decoded->part[i]);
}

static enum logout_token_result split_and_decode(const char *token, size_t token_len,
                                                 struct decoded_token *decoded,
                                                 const char **description)
{
    if (token_len > LOGOUT_TOKEN_MAX_BYTES)
        return reject(description, LOGOUT_TOKEN_TOO_LARGE,
                      "The logout token is longer than the limit of 16384 bytes.");

    /* Part i spans the bytes from start[i] up to, not including, start[i + 1] - 1: its dot, or
     * for the last part the end of the token. */
    size_t start[PART_COUNT + 1];
    size_t found = 0;
    start[0] = 0;
    for (size_t i = 0; i < token_len; i++) {
        if (token[i] != '.')
            continue;
        if (++found == PART_COUNT)
            break;
        start[found] = i + 1;
    }
    if (found != PART_COUNT - 1)
        return reject(description, LOGOUT_TOKEN_PARTS,
                      "The logout token is not a compact JWS of three dot-separated parts.");
    start[PART_COUNT] = token_len + 1;
    decoded->signing_input_len = start[PART_SIGNATURE] - 1;

    for (int i = 0; i < PART_COUNT; i++) {
        size_t len = start[i + 1] - 1 - start[i];
        if (b64url_decode(token + start[i], len, &decoded->part[i], &decoded->part_len[i]) != 0)
            return reject(description, LOGOUT_TOKEN_BASE64URL,
                          "A part of the logout token is not unpadded base64url in its canonical "
                          "form.");
    }
    return LOGOUT_TOKEN_OK;
}

/* Parses a header or payload as a JSON object. jansson rejects \u0000 without JSON_ALLOW_NUL,
 * so every string read from the result is free of NUL bytes. */
static enum logout_token_result parse_object(const unsigned char *data, size_t len,
                                             enum logout_token_result invalid, json_t **out,
                                             const char **description)
{
    json_error_t error;
    *out = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &error);
    if (*out == NULL && json_error_code(&error) == json_error_duplicate_key)
        return reject(description, LOGOUT_TOKEN_DUPLICATE_MEMBER,
                      "The logout token's header or payload repeats a member name.");
    if (json_is_object(*out))
        return LOGOUT_TOKEN_OK;
    return reject(description, invalid,
                  invalid == LOGOUT_TOKEN_HEADER_INVALID
                      ? "The logout token's header is not a JSON object."
                      : "The logout token's payload is not a JSON object.");
}

/* Accepts typ values that name a JWT or a logout token. RFC 7515 section 4.1.9 compares media
 * types case-insensitively and lets "application/" be left out. */
static bool typ_accepted(const char *typ)
{
    static const char prefix[] = "application/";
    if (strncasecmp(typ, prefix, sizeof(prefix) - 1) == 0)
        typ += sizeof(prefix) - 1;
    return strcasecmp(typ, "jwt") == 0 || strcasecmp(typ, "logout+jwt") == 0;
}

static enum logout_token_result check_alg(const json_t *header,
                                          const struct logout_token_policy *policy,
                                          enum jws_alg *alg, const char **description)
{
    const json_t *member = json_object_get(header, "alg");
    if (!json_is_string(member))
        return reject(description, LOGOUT_TOKEN_ALG_NOT_ACCEPTED,
                      "The logout token's header has no alg string.");
    const char *name = json_string_value(member);
    if (strcmp(name, "none") == 0)
        return reject(description, LOGOUT_TOKEN_ALG_NONE,
                      "The logout token is unsigned (alg none), which is never accepted.");
    if (strncmp(name, "HS", 2) == 0)
        return reject(description, LOGOUT_TOKEN_ALG_SYMMETRIC,
                      "The logout token uses an HMAC alg (HS*), which is never accepted.");
    if (jws_alg_parse(name, json_string_length(member), alg) != 0 ||
        (policy->accepted_algs & JWS_ALG_BIT(*alg)) == 0)
        return reject(description, LOGOUT_TOKEN_ALG_NOT_ACCEPTED,
                      "The logout token's alg is not one of the accepted algorithms.");
    return LOGOUT_TOKEN_OK;
}

static enum logout_token_result check_header(const json_t *header,
                                             const struct logout_token_policy *policy,
                                             struct header_fields *fields, const char **description)
{
    enum logout_token_result result = check_alg(header, policy, &fields->alg, description);
    if (result != LOGOUT_TOKEN_OK)
        return result;

    const json_t *typ = json_object_get(header, "typ");
    if (typ != NULL && (!json_is_string(typ) || !typ_accepted(json_string_value(typ))))
        return reject(description, LOGOUT_TOKEN_TYP,
                      "The logout token's typ is neither JWT nor logout+jwt.");
    if (json_object_get(header, "crit") != NULL)
        return reject(description, LOGOUT_TOKEN_CRIT,
                      "The logout token's header has crit, and no critical extension is "
                      "supported.");

    const json_t *kid = json_object_get(header, "kid");
    if (kid != NULL && !json_is_string(kid))
        return reject(description, LOGOUT_TOKEN_HEADER_INVALID,
                      "The logout token's kid is not a string.");
    fields->kid = json_string_value(kid);
    fields->kid_len = json_string_length(kid);
    return LOGOUT_TOKEN_OK;
}

static enum logout_token_result select_key(const struct realm_key_set *keys,
                                           const struct header_fields *fields,
                                           const struct realm_key **out, const char **description)
{
    const char *alg_name = jws_alg_name(fields->alg);
    const struct realm_key *key;
    if (fields->kid != NULL) {
        key = realm_key_set_find(keys, fields->kid, fields->kid_len, alg_name);
        if (key == NULL)
            return reject(description, LOGOUT_TOKEN_UNKNOWN_KID,
                          "No signing key of the issuer has the logout token's kid.");
    } else {
        size_t usable = realm_key_set_count_usable(keys, fields->alg, &key);
        if (usable == 0)
            return reject(description, LOGOUT_TOKEN_UNKNOWN_KID,
                          "The logout token has no kid and no signing key of the issuer fits "
                          "its alg.");
        if (usable > 1)
            return reject(description, LOGOUT_TOKEN_KID_AMBIGUOUS,
                          "The logout token has no kid and several signing keys of the issuer "
                          "fit its alg.");
    }

    if (key->alg != NULL && strcmp(key->alg, alg_name) != 0)
        return reject(description, LOGOUT_TOKEN_KEY_ALG_MISMATCH,
                      "The logout token's alg differs from the alg of the signing key it names.");
    if ((key->fitting_algs & JWS_ALG_BIT(fields->alg)) == 0)
        return reject(description, LOGOUT_TOKEN_KEY_TYPE_MISMATCH,
                      "The logout token's alg does not fit the type or curve of the signing key "
                      "it names.");
    *out = key;
    return LOGOUT_TOKEN_OK;
}

/* Converts a JWS ECDSA signature (r and s, each coordinate_bytes long, big-endian) to the DER
 * form OpenSSL verifies. Returns the DER length with *der set (caller frees), 0 when the length is
 * wrong, or -1 when memory or OpenSSL fails. */
static int ecdsa_raw_to_der(const unsigned char *raw, size_t raw_len, size_t coordinate_bytes,
                            unsigned char **der)
{
    *der = NULL;
    if (raw_len != 2 * coordinate_bytes)
        return 0;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)coordinate_bytes, NULL);
    BIGNUM *s = BN_bin2bn(raw + coordinate_bytes, (int)coordinate_bytes, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return -1;
    }
    int len = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    return len > 0 ? len : -1;
}

/* Starts a verification with the alg's digest and, for PS*, PSS padding with a salt as long as
 * the hash (RFC 7518 section 3.5). Returns 0, or -1 when OpenSSL fails. */
static int verify_init(EVP_MD_CTX *ctx, const struct alg_method *method, EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *pkey_ctx = NULL;
    const EVP_MD *digest = method->digest != NULL ? method->digest() : NULL;
    if (EVP_DigestVerifyInit(ctx, &pkey_ctx, digest, NULL, pkey) != 1)
        return -1;
    if (method->family == FAMILY_RSA_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pkey_ctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        return -1;
    return 0;
}

static enum logout_token_result verify_signature(const char *token,
                                                 const struct decoded_token *decoded,
                                                 const struct realm_key *key, enum jws_alg alg,
                                                 const char **description)
{
    const struct alg_method *method = &alg_methods[alg];
    const unsigned char *signature = decoded->part[PART_SIGNATURE];
    size_t signature_len = decoded->part_len[PART_SIGNATURE];
    unsigned char *der = NULL;
    enum logout_token_result result = LOGOUT_TOKEN_INTERNAL;

    if (method->family == FAMILY_ECDSA) {
        int der_len = ecdsa_raw_to_der(signature, signature_len, method->ec_coordinate_bytes, &der);
        if (der_len == 0)
            return reject(description, LOGOUT_TOKEN_SIGNATURE,
                          "The logout token's signature has the wrong length for its alg.");
        if (der_len < 0)
            goto done;
        signature = der;
        signature_len = (size_t)der_len;
    }

    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx != NULL && verify_init(ctx, method, key->pkey) == 0) {
        int verified = EVP_DigestVerify(ctx, signature, signature_len, (const unsigned char *)token,
                                        decoded->signing_input_len);
        result = verified == 1 ? LOGOUT_TOKEN_OK : LOGOUT_TOKEN_SIGNATURE;
    }
    EVP_MD_CTX_free(ctx);

done:
    free(der);
    ERR_clear_error();
    if (result == LOGOUT_TOKEN_SIGNATURE)
        return reject(description, result,
                      "The logout token's signature does not verify with the issuer's key.");
    if (result == LOGOUT_TOKEN_INTERNAL)
        return reject(description, result,
                      "Verifying the logout token's signature failed inside the server.");
    return result;
}

/* Reads an integer NumericDate. Returns 1 and sets *value, 0 when absent, -1 when present but not
 * an integer from 0 to NUMERIC_DATE_MAX_S. */
static int read_numeric_date(const json_t *payload, const char *name, int64_t *value)
{
    const json_t *member = json_object_get(payload, name);
    *value = 0;
    if (member == NULL)
        return 0;
    if (!json_is_integer(member) || json_integer_value(member) < 0 ||
        json_integer_value(member) > NUMERIC_DATE_MAX_S)
        return -1;
    *value = (int64_t)json_integer_value(member);
    return 1;
}

static bool audience_contains(const json_t *aud, const char *client_id)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), client_id) == 0;
    size_t index;
    const json_t *entry;
    json_array_foreach(aud, index, entry)
    {
        if (json_is_string(entry) && strcmp(json_string_value(entry), client_id) == 0)
            return true;
    }
    return false;
}

static enum logout_token_result check_time(const json_t *payload,
                                           const struct logout_token_policy *policy, int64_t now_ms,
                                           struct logout_token_claims *claims,
                                           const char **description)
{
    if (read_numeric_date(payload, "iat", &claims->iat) != 1)
        return reject(description, LOGOUT_TOKEN_IAT_INVALID,
                      "The logout token's iat is missing or not an integer NumericDate.");
    int64_t iat_ms = claims->iat * 1000;
    if (iat_ms > now_ms + policy->clock_skew_ms)
        return reject(description, LOGOUT_TOKEN_IAT_FUTURE,
                      "The logout token's iat is later than now plus the allowed clock skew.");
    if (now_ms - iat_ms > policy->max_age_ms + policy->clock_skew_ms)
        return reject(description, LOGOUT_TOKEN_IAT_TOO_OLD,
                      "The logout token's iat is older than the maximum token age.");

    int exp_found = read_numeric_date(payload, "exp", &claims->exp);
    if (exp_found < 0)
        return reject(description, LOGOUT_TOKEN_EXP_INVALID,
                      "The logout token's exp is not an integer NumericDate.");
    if (exp_found == 0 && policy->require_exp)
        return reject(description, LOGOUT_TOKEN_EXP_MISSING,
                      "The logout token has no exp, which this receiver requires.");
    if (exp_found == 1 && now_ms >= claims->exp * 1000 + policy->clock_skew_ms)
        return reject(description, LOGOUT_TOKEN_EXPIRED,
                      "The logout token's exp has passed, even allowing for clock skew.");
    return LOGOUT_TOKEN_OK;
}

/* Reads sub or sid. Returns 1 for a non-empty string, 0 when absent, -1 otherwise. */
static int read_subject(const json_t *payload, const char *name, const char **value)
{
    const json_t *member = json_object_get(payload, name);
    *value = json_string_value(member);
    if (member == NULL)
        return 0;
    return *value != NULL && (*value)[0] != '\0' ? 1 : -1;
}

static enum logout_token_result check_subject_and_events(const json_t *payload, const char **sub,
                                                         const char **sid,
                                                         bool *revoke_offline_access,
                                                         const char **description)
{
    int has_sub = read_subject(payload, "sub", sub);
    int has_sid = read_subject(payload, "sid", sid);
    if (has_sub < 0 || has_sid < 0 || (has_sub == 0 && has_sid == 0))
        return reject(description, LOGOUT_TOKEN_SUBJECT,
                      "The logout token needs sub or sid, and each present must be a non-empty "
                      "string.");

    const json_t *events = json_object_get(payload, "events");
    if (!json_is_object(events) || !json_is_object(json_object_get(events, LOGOUT_TOKEN_EVENT)))
        return reject(description, LOGOUT_TOKEN_EVENTS,
                      "The logout token's events claim does not hold the back-channel logout "
                      "event as a JSON object.");
    *revoke_offline_access = json_is_true(json_object_get(events, "revoke_offline_access"));
    return LOGOUT_TOKEN_OK;
}

static enum logout_token_result check_claims(const json_t *payload,
                                             const struct logout_token_policy *policy,
                                             int64_t now_ms, struct logout_token_claims *claims,
                                             const char **description)
{
    const char *iss = json_string_value(json_object_get(payload, "iss"));
    if (iss == NULL || strcmp(iss, policy->issuer) != 0)
        return reject(description, LOGOUT_TOKEN_ISS,
                      "The logout token's iss is missing or not the configured issuer.");
    if (!audience_contains(json_object_get(payload, "aud"), policy->client_id))
        return reject(description, LOGOUT_TOKEN_AUD,
                      "The logout token's aud is missing or does not contain the client_id.");
    enum logout_token_result result = check_time(payload, policy, now_ms, claims, description);
    if (result != LOGOUT_TOKEN_OK)
        return result;

    const char *sub, *sid;
    result =
        check_subject_and_events(payload, &sub, &sid, &claims->revoke_offline_access, description);
    if (result != LOGOUT_TOKEN_OK)
        return result;
    if (json_object_get(payload, "nonce") != NULL)
        return reject(description, LOGOUT_TOKEN_NONCE,
                      "The logout token has a nonce, which a logout token must not have.");
    const json_t *jti = json_object_get(payload, "jti");
    if (!json_is_string(jti) || json_string_length(jti) == 0 ||
        json_string_length(jti) > LOGOUT_TOKEN_JTI_MAX_BYTES)
        return reject(description, LOGOUT_TOKEN_JTI,
                      "The logout token's jti is missing, not a string, empty or longer than 256 "
                      "bytes.");

    claims->iss = strdup(iss);
    claims->sub = sub != NULL ? strdup(sub) : NULL;
    claims->sid = sid != NULL ? strdup(sid) : NULL;
    claims->jti = strdup(json_string_value(jti));
    if (claims->iss == NULL || claims->jti == NULL || (sub != NULL && claims->sub == NULL) ||
        (sid != NULL && claims->sid == NULL))
        return reject(description, LOGOUT_TOKEN_INTERNAL,
                      "Copying the logout token's claims failed: out of memory.");
    return LOGOUT_TOKEN_OK;
}

/* Checks the header and the signature; the payload is parsed only once the signature holds. */
static enum logout_token_result check_signed(const char *token, const struct decoded_token *decoded,
                                             const struct logout_token_policy *policy,
                                             const struct realm_key_set *keys,
                                             const char **description)
{
    json_t *header;
    struct header_fields fields = {JWS_ALG_RS256, NULL, 0};
    const struct realm_key *key = NULL;
    enum logout_token_result result =
        parse_object(decoded->part[PART_HEADER], decoded->part_len[PART_HEADER],
                     LOGOUT_TOKEN_HEADER_INVALID, &header, description);
    if (result == LOGOUT_TOKEN_OK)
        result = check_header(header, policy, &fields, description);
    if (result == LOGOUT_TOKEN_OK)
        result = select_key(keys, &fields, &key, description);
    if (result == LOGOUT_TOKEN_OK)
        result = verify_signature(token, decoded, key, fields.alg, description);
    json_decref(header);
    return result;
}

enum logout_token_result logout_token_validate(const char *token, size_t token_len,
                                               const struct logout_token_policy *policy,
                                               const struct realm_key_set *keys, int64_t now_ms,
                                               struct logout_token_claims *claims,
                                               const char **description)
{
    struct decoded_token decoded = {{NULL}, {0}, 0};
    json_t *payload = NULL;

    memset(claims, 0, sizeof(*claims));
    *description = "The logout token is valid.";
    enum logout_token_result result = split_and_decode(token, token_len, &decoded, description);
    if (result == LOGOUT_TOKEN_OK)
        result = check_signed(token, &decoded, policy, keys, description);
    if (result == LOGOUT_TOKEN_OK)
        result = parse_object(decoded.part[PART_PAYLOAD], decoded.part_len[PART_PAYLOAD],
                              LOGOUT_TOKEN_PAYLOAD_INVALID, &payload, description);
    if (result == LOGOUT_TOKEN_OK)
        result = check_claims(payload, policy, now_ms, claims, description);

    if (result != LOGOUT_TOKEN_OK)
        logout_token_claims_dispose(claims);
    json_decref(payload);
    decoded_token_dispose(&decoded);
    return result;
}
