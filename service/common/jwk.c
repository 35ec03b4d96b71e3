#include "jwk.h"

#include "b64url.h"
#include "jwk_params.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* RFC 7517 and RFC 7518 section 6: members that carry private or symmetric key material. */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
#define PRIVATE_MEMBER_COUNT (sizeof(private_members) / sizeof(private_members[0]))

/* Public parameters copied into a normalised JWK, in output order. */
static const char *const rsa_public_members[] = {"n", "e", NULL};
static const char *const ec_public_members[] = {"crv", "x", "y", NULL};
static const char *const okp_public_members[] = {"crv", "x", NULL};

/* RFC 7638 section 3.2: the required members of each key type in lexicographic order. */
static const char *const rsa_thumbprint_members[] = {"e", "kty", "n", NULL};
static const char *const ec_thumbprint_members[] = {"crv", "kty", "x", "y", NULL};
static const char *const okp_thumbprint_members[] = {"crv", "kty", "x", NULL};

/* The kid, use and alg members of a JWK, borrowed from it. */
struct jwk_members {
    const char *kid;
    size_t kid_len;
    const char *use;
    size_t use_len;
    const char *alg;
    size_t alg_len;
};

const char *jwk_reject_name(enum jwk_reject reason)
{
    switch (reason) {
    case JWK_OK:
        return "ok";
    case JWK_REJECT_NOT_OBJECT:
        return "not_object";
    case JWK_REJECT_PRIVATE_MEMBER:
        return "private_member";
    case JWK_REJECT_KTY:
        return "kty";
    case JWK_REJECT_MISSING_MEMBER:
        return "missing_member";
    case JWK_REJECT_KID:
        return "kid";
    case JWK_REJECT_USE_ENC:
        return "use_enc";
    case JWK_REJECT_USE:
        return "use";
    case JWK_REJECT_ALG:
        return "alg";
    case JWK_REJECT_BAD_KEY:
        return "bad_key";
    case JWK_REJECT_COUNT:
        break;
    }
    return "unknown";
}

static const char *kty_name(enum jwk_kty kty)
{
    switch (kty) {
    case JWK_KTY_RSA:
        return "RSA";
    case JWK_KTY_EC:
        return "EC";
    case JWK_KTY_OKP:
        return "OKP";
    }
    return "";
}

static void reason_clear(char *reason, size_t reason_len)
{
    if (reason != NULL && reason_len > 0)
        reason[0] = '\0';
}

/* Rejects a non-object and then any private member, before every other check so that a leaked
 * private key is reported as such whatever else is wrong with the JWK. */
static enum jwk_reject check_object_and_private(const json_t *jwk, char *reason, size_t reason_len)
{
    if (!json_is_object(jwk))
        return jwk_reject_with(reason, reason_len, JWK_REJECT_NOT_OBJECT,
                               "JWK is not a JSON object");

    for (size_t i = 0; i < PRIVATE_MEMBER_COUNT; i++) {
        if (json_object_get(jwk, private_members[i]) != NULL)
            return jwk_reject_with(reason, reason_len, JWK_REJECT_PRIVATE_MEMBER,
                                   "JWK member \"%s\" is a private key member; publish only the "
                                   "public key",
                                   private_members[i]);
    }
    return JWK_OK;
}

static enum jwk_reject require_string(const json_t *jwk, const char *name, const char **value,
                                      size_t *value_len, char *reason, size_t reason_len)
{
    if (jwk_string_member(jwk, name, value, value_len))
        return JWK_OK;
    return jwk_reject_with(reason, reason_len, JWK_REJECT_MISSING_MEMBER,
                           "JWK member \"%s\" is missing or not a string", name);
}

static enum jwk_reject check_kid(const char *kid, size_t kid_len, char *reason, size_t reason_len)
{
    if (kid_len == 0)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_KID, "JWK member \"kid\" is empty");
    if (kid_len > JWK_KID_MAX_BYTES)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_KID,
                               "JWK member \"kid\" is %zu bytes long; the maximum is %d bytes",
                               kid_len, JWK_KID_MAX_BYTES);
    for (size_t i = 0; i < kid_len; i++) {
        unsigned char c = (unsigned char)kid[i];
        if (c < 0x21 || c > 0x7e)
            return jwk_reject_with(reason, reason_len, JWK_REJECT_KID,
                                   "JWK member \"kid\" has byte 0x%02x at offset %zu; use only "
                                   "printable ASCII without spaces (0x21 to 0x7e)",
                                   c, i);
    }
    return JWK_OK;
}

static enum jwk_reject check_use(const char *use, size_t use_len, char *reason, size_t reason_len)
{
    if (use_len == 3 && memcmp(use, "sig", 3) == 0)
        return JWK_OK;
    if (use_len == 3 && memcmp(use, "enc", 3) == 0)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_USE_ENC,
                               "JWK member \"use\" is \"enc\", which is not supported because "
                               "Keycloak encrypts every token to the first \"enc\" key of the set, "
                               "so per-instance encryption keys cannot work; publish signing keys "
                               "with use \"sig\"");

    char quoted[48];
    return jwk_reject_with(reason, reason_len, JWK_REJECT_USE,
                           "JWK member \"use\" is \"%s\", but only \"sig\" is supported",
                           jwk_quote_value(use, use_len, quoted, sizeof(quoted)));
}

static enum jwk_reject read_members(const json_t *jwk, struct jwk_members *members, char *reason,
                                    size_t reason_len)
{
    enum jwk_reject rc =
        require_string(jwk, "kid", &members->kid, &members->kid_len, reason, reason_len);
    if (rc == JWK_OK)
        rc = require_string(jwk, "use", &members->use, &members->use_len, reason, reason_len);
    if (rc == JWK_OK)
        rc = require_string(jwk, "alg", &members->alg, &members->alg_len, reason, reason_len);
    if (rc == JWK_OK)
        rc = check_kid(members->kid, members->kid_len, reason, reason_len);
    if (rc == JWK_OK)
        rc = check_use(members->use, members->use_len, reason, reason_len);
    return rc;
}

/* Copies the string members listed in names from one object to another, in that order. Returns 0,
 * or -1 when a member is missing or memory runs out. */
static int copy_strings(json_t *to, const json_t *from, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        const char *value;
        size_t value_len;
        if (!jwk_string_member(from, names[i], &value, &value_len))
            return -1;
        if (json_object_set_new(to, names[i], json_stringn(value, value_len)) != 0)
            return -1;
    }
    return 0;
}

/* Computes the RFC 7638 SHA-256 thumbprint of jwk, whose members must already be validated (so
 * they are plain ASCII strings that JSON encodes without escapes). Returns 0, or -1 when a
 * required member is missing or memory runs out. */
static int thumbprint_compute(const json_t *jwk, enum jwk_kty kty, char out[JWK_THUMBPRINT_BYTES])
{
    const char *const *names = kty == JWK_KTY_RSA  ? rsa_thumbprint_members
                               : kty == JWK_KTY_EC ? ec_thumbprint_members
                                                   : okp_thumbprint_members;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    char *text = NULL;
    int rc = -1;
    json_t *canonical = json_object();

    if (canonical == NULL || copy_strings(canonical, jwk, names) != 0)
        goto cleanup;
    text = json_dumps(canonical, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL)
        goto cleanup;
    if (EVP_Digest(text, strlen(text), digest, &digest_len, EVP_sha256(), NULL) != 1 ||
        b64url_encoded_len(digest_len) + 1 != JWK_THUMBPRINT_BYTES) {
        ERR_clear_error();
        goto cleanup;
    }
    b64url_encode_to(digest, digest_len, out);
    rc = 0;

cleanup:
    free(text);
    json_decref(canonical);
    return rc;
}

/* Builds the normalised JSON, thumbprint and strings of a JWK that passed every check. */
static enum jwk_reject build_output(const json_t *jwk, enum jwk_kty kty,
                                    const struct jwk_members *members, struct jwk_public *out,
                                    char *reason, size_t reason_len)
{
    const char *const *params = kty == JWK_KTY_RSA  ? rsa_public_members
                                : kty == JWK_KTY_EC ? ec_public_members
                                                    : okp_public_members;
    enum jwk_reject rc = JWK_REJECT_BAD_KEY;
    json_t *normalized = json_object();

    if (normalized == NULL || json_object_set_new(normalized, "kty", json_string(kty_name(kty))) ||
        json_object_set_new(normalized, "kid", json_stringn(members->kid, members->kid_len)) ||
        json_object_set_new(normalized, "use", json_string("sig")) ||
        json_object_set_new(normalized, "alg", json_stringn(members->alg, members->alg_len)) ||
        copy_strings(normalized, jwk, params) != 0)
        goto out_of_memory;

    out->json = json_dumps(normalized, JSON_COMPACT | JSON_PRESERVE_ORDER);
    out->kid = strndup(members->kid, members->kid_len);
    out->alg = strndup(members->alg, members->alg_len);
    if (out->json == NULL || out->kid == NULL || out->alg == NULL ||
        thumbprint_compute(normalized, kty, out->thumbprint) != 0)
        goto out_of_memory;
    out->json_len = strlen(out->json);
    rc = JWK_OK;
    goto cleanup;

out_of_memory:
    jwk_public_dispose(out);
    rc = jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                         "normalising the JWK failed: out of memory");
cleanup:
    json_decref(normalized);
    return rc;
}

enum jwk_reject jwk_normalize(const json_t *jwk, struct jwk_public *out, char *reason,
                              size_t reason_len)
{
    struct jwk_key_type type;
    struct jwk_members members;
    EVP_PKEY *pkey = NULL;

    memset(out, 0, sizeof(*out));
    reason_clear(reason, reason_len);

    enum jwk_reject rc = check_object_and_private(jwk, reason, reason_len);
    if (rc == JWK_OK)
        rc = jwk_params_identify(jwk, &type, reason, reason_len);
    if (rc == JWK_OK)
        rc = read_members(jwk, &members, reason, reason_len);
    if (rc == JWK_OK)
        rc = jwk_params_check_alg(&type, members.alg, members.alg_len, reason, reason_len);
    if (rc == JWK_OK)
        rc = jwk_params_to_pkey(jwk, &type, &pkey, reason, reason_len);
    EVP_PKEY_free(pkey);
    if (rc != JWK_OK)
        return rc;

    return build_output(jwk, type.kty, &members, out, reason, reason_len);
}

enum jwk_reject jwk_to_pkey(const json_t *jwk, EVP_PKEY **out, char *reason, size_t reason_len)
{
    struct jwk_key_type type;

    *out = NULL;
    reason_clear(reason, reason_len);

    enum jwk_reject rc = check_object_and_private(jwk, reason, reason_len);
    if (rc == JWK_OK)
        rc = jwk_params_identify(jwk, &type, reason, reason_len);
    if (rc == JWK_OK)
        rc = jwk_params_to_pkey(jwk, &type, out, reason, reason_len);
    return rc;
}

enum jwk_reject jwk_from_pkey(EVP_PKEY *pkey, const char *kid, const char *alg,
                              struct jwk_public *out, char *reason, size_t reason_len)
{
    struct jwk_key_type type;
    char thumbprint[JWK_THUMBPRINT_BYTES];
    enum jwk_reject rc;
    json_t *jwk = NULL;

    memset(out, 0, sizeof(*out));
    reason_clear(reason, reason_len);
    if (pkey == NULL)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY, "no OpenSSL key was given");

    jwk = json_object();
    if (jwk == NULL) {
        rc = jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                             "exporting the key failed: out of memory");
        goto cleanup;
    }
    rc = jwk_params_from_pkey(pkey, jwk, &type, reason, reason_len);
    if (rc != JWK_OK)
        goto cleanup;

    if (kid == NULL) {
        if (thumbprint_compute(jwk, type.kty, thumbprint) != 0) {
            rc = jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                                 "computing the key thumbprint failed: out of memory");
            goto cleanup;
        }
        kid = thumbprint;
    }
    if (alg == NULL)
        alg = jwk_params_default_alg(&type);
    if (json_object_set_new(jwk, "kid", json_string(kid)) != 0 ||
        json_object_set_new(jwk, "use", json_string("sig")) != 0 ||
        json_object_set_new(jwk, "alg", json_string(alg)) != 0) {
        /* json_string also fails on a kid or alg that is not valid UTF-8. */
        rc = jwk_reject_with(reason, reason_len, JWK_REJECT_MISSING_MEMBER,
                             "setting kid, use and alg failed: kid or alg is not valid UTF-8, or "
                             "memory ran out");
        goto cleanup;
    }

    rc = jwk_normalize(jwk, out, reason, reason_len);

cleanup:
    json_decref(jwk);
    return rc;
}

void jwk_public_dispose(struct jwk_public *k)
{
    free(k->kid);
    free(k->alg);
    free(k->json);
    memset(k, 0, sizeof(*k));
}
