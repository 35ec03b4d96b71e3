#include "jwk_params.h"

#include "b64url.h"

#include <inttypes.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenSSL's RSA public-key operations (encryption and signature verification) reject an exponent
 * over OPENSSL_RSA_MAX_PUBEXP_BITS (64) when the modulus is over 3072 bits, so such a key could
 * never verify a signature. */
#define RSA_EXPONENT_MAX_BYTES (OPENSSL_RSA_MAX_PUBEXP_BITS / 8)
/* The longest EC coordinate (P-521) and the uncompressed point 0x04 || x || y built from it. */
#define EC_COORDINATE_MAX_BYTES 66
#define EC_POINT_MAX_BYTES      (1 + 2 * EC_COORDINATE_MAX_BYTES)
#define QUOTE_MAX_BYTES         32

static const struct jwk_curve jwk_curves[] = {
    {"P-256", JWK_KTY_EC, "prime256v1", 32, "ES256"},
    {"P-384", JWK_KTY_EC, "secp384r1", 48, "ES384"},
    {"P-521", JWK_KTY_EC, "secp521r1", 66, "ES512"},
    {"Ed25519", JWK_KTY_OKP, "ED25519", 32, "EdDSA"},
    {"Ed448", JWK_KTY_OKP, "ED448", 57, "EdDSA"},
    {"X25519", JWK_KTY_OKP, "X25519", 32, NULL},
    {"X448", JWK_KTY_OKP, "X448", 56, NULL},
};
#define JWK_CURVE_COUNT (sizeof(jwk_curves) / sizeof(jwk_curves[0]))

static const char *const rsa_algs[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"};
#define RSA_ALG_COUNT (sizeof(rsa_algs) / sizeof(rsa_algs[0]))

enum jwk_reject jwk_reject_with(char *reason, size_t reason_len, enum jwk_reject code,
                                const char *format, ...)
{
    if (reason != NULL && reason_len > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(reason, reason_len, format, args);
        va_end(args);
    }
    return code;
}

const char *jwk_quote_value(const char *value, size_t value_len, char *buf, size_t buf_len)
{
    if (buf_len == 0)
        return buf;

    size_t written = 0;
    for (size_t i = 0; i < value_len && i < QUOTE_MAX_BYTES && written + 1 < buf_len; i++) {
        unsigned char c = (unsigned char)value[i];
        buf[written++] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
    }
    if (value_len > QUOTE_MAX_BYTES && written + 4 <= buf_len) {
        memcpy(buf + written, "...", 3);
        written += 3;
    }
    buf[written] = '\0';
    return buf;
}

bool jwk_string_member(const json_t *jwk, const char *name, const char **value, size_t *value_len)
{
    const json_t *member = json_object_get(jwk, name);
    if (!json_is_string(member))
        return false;
    *value = json_string_value(member);
    *value_len = json_string_length(member);
    return true;
}

static bool string_equals(const char *value, size_t value_len, const char *expected)
{
    return value_len == strlen(expected) && memcmp(value, expected, value_len) == 0;
}

static enum jwk_reject identify_curve(const json_t *jwk, struct jwk_key_type *type, char *reason,
                                      size_t reason_len)
{
    const char *kty = type->kty == JWK_KTY_EC ? "EC" : "OKP";
    const char *supported = type->kty == JWK_KTY_EC ? "P-256, P-384 or P-521" : "Ed25519 or Ed448";
    const char *crv;
    size_t crv_len;

    if (!jwk_string_member(jwk, "crv", &crv, &crv_len))
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "JWK member \"crv\" is missing or not a string; %s keys need one of "
                               "%s",
                               kty, supported);

    for (size_t i = 0; i < JWK_CURVE_COUNT; i++) {
        const struct jwk_curve *curve = &jwk_curves[i];
        if (curve->kty != type->kty || !string_equals(crv, crv_len, curve->crv))
            continue;
        if (curve->alg == NULL)
            return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                                   "JWK member \"crv\" is \"%s\", a key-agreement curve that "
                                   "cannot sign; publish an Ed25519 or Ed448 signing key",
                                   curve->crv);
        type->curve = curve;
        return JWK_OK;
    }

    char quoted[QUOTE_MAX_BYTES + 4];
    return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                           "JWK member \"crv\" is \"%s\", which is not a supported %s curve; use "
                           "%s",
                           jwk_quote_value(crv, crv_len, quoted, sizeof(quoted)), kty, supported);
}

enum jwk_reject jwk_params_identify(const json_t *jwk, struct jwk_key_type *type, char *reason,
                                    size_t reason_len)
{
    const char *kty;
    size_t kty_len;

    type->curve = NULL;
    if (!jwk_string_member(jwk, "kty", &kty, &kty_len))
        return jwk_reject_with(reason, reason_len, JWK_REJECT_KTY,
                               "JWK member \"kty\" is missing or not a string; use RSA, EC or OKP");

    if (string_equals(kty, kty_len, "RSA")) {
        type->kty = JWK_KTY_RSA;
        return JWK_OK;
    }
    if (string_equals(kty, kty_len, "EC")) {
        type->kty = JWK_KTY_EC;
        return identify_curve(jwk, type, reason, reason_len);
    }
    if (string_equals(kty, kty_len, "OKP")) {
        type->kty = JWK_KTY_OKP;
        return identify_curve(jwk, type, reason, reason_len);
    }

    char quoted[QUOTE_MAX_BYTES + 4];
    return jwk_reject_with(reason, reason_len, JWK_REJECT_KTY,
                           "JWK member \"kty\" is \"%s\", but only RSA, EC and OKP keys are "
                           "supported (names are case-sensitive)",
                           jwk_quote_value(kty, kty_len, quoted, sizeof(quoted)));
}

enum jwk_reject jwk_params_check_alg(const struct jwk_key_type *type, const char *alg,
                                     size_t alg_len, char *reason, size_t reason_len)
{
    char quoted[QUOTE_MAX_BYTES + 4];

    if (type->kty == JWK_KTY_RSA) {
        for (size_t i = 0; i < RSA_ALG_COUNT; i++) {
            if (string_equals(alg, alg_len, rsa_algs[i]))
                return JWK_OK;
        }
        return jwk_reject_with(reason, reason_len, JWK_REJECT_ALG,
                               "JWK member \"alg\" is \"%s\", which does not fit an RSA key; use "
                               "RS256, RS384, RS512, PS256, PS384 or PS512",
                               jwk_quote_value(alg, alg_len, quoted, sizeof(quoted)));
    }

    if (string_equals(alg, alg_len, type->curve->alg))
        return JWK_OK;
    return jwk_reject_with(reason, reason_len, JWK_REJECT_ALG,
                           "JWK member \"alg\" is \"%s\", which does not fit a key on curve %s; "
                           "use %s",
                           jwk_quote_value(alg, alg_len, quoted, sizeof(quoted)), type->curve->crv,
                           type->curve->alg);
}

const char *jwk_params_default_alg(const struct jwk_key_type *type)
{
    return type->kty == JWK_KTY_RSA ? "RS256" : type->curve->alg;
}

/* Decodes the base64url member name of a kty_name key into a new buffer *out that the caller
 * frees. */
static enum jwk_reject decode_member(const json_t *jwk, const char *kty_name, const char *name,
                                     unsigned char **out, size_t *out_len, char *reason,
                                     size_t reason_len)
{
    const char *text;
    size_t text_len;

    if (!jwk_string_member(jwk, name, &text, &text_len))
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "%s member \"%s\" is missing or not a string", kty_name, name);
    if (b64url_decode(text, text_len, out, out_len) != 0)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "%s member \"%s\" is not valid base64url; use the URL-safe "
                               "alphabet without padding or whitespace",
                               kty_name, name);
    return JWK_OK;
}

/* Decodes an RSA integer member and requires its minimal big-endian form. */
static enum jwk_reject decode_rsa_integer(const json_t *jwk, const char *name, unsigned char **out,
                                          size_t *out_len, char *reason, size_t reason_len)
{
    enum jwk_reject rc = decode_member(jwk, "RSA", name, out, out_len, reason, reason_len);
    if (rc != JWK_OK)
        return rc;

    if (*out_len == 0)
        rc = jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY, "RSA member \"%s\" is empty",
                             name);
    else if ((*out)[0] == 0)
        rc = jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                             "RSA member \"%s\" has a leading zero byte; encode the integer in "
                             "its minimal length",
                             name);
    if (rc != JWK_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static size_t integer_bits(const unsigned char *bytes, size_t len)
{
    size_t bits = (len - 1) * 8;
    for (unsigned int top = bytes[0]; top != 0; top >>= 1)
        bits++;
    return bits;
}

static enum jwk_reject check_rsa_integers(const unsigned char *n, size_t n_len,
                                          const unsigned char *e, size_t e_len, char *reason,
                                          size_t reason_len)
{
    size_t n_bits = integer_bits(n, n_len);
    if (n_bits < JWK_RSA_MIN_BITS || n_bits > JWK_RSA_MAX_BITS)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "RSA member \"n\" is a %zu-bit modulus; use %d to %d bits", n_bits,
                               JWK_RSA_MIN_BITS, JWK_RSA_MAX_BITS);
    if ((n[n_len - 1] & 1) == 0)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "RSA member \"n\" is even, so it is not an RSA modulus");
    if (e_len > RSA_EXPONENT_MAX_BYTES)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "RSA member \"e\" is %zu bytes long, but OpenSSL verifies only with "
                               "exponents of up to %d bits; use 65537",
                               e_len, OPENSSL_RSA_MAX_PUBEXP_BITS);

    uint64_t exponent = 0;
    for (size_t i = 0; i < e_len; i++)
        exponent = exponent << 8 | e[i];
    if (exponent < 3 || exponent % 2 == 0)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "RSA member \"e\" is %" PRIu64 ", but the public exponent must be "
                               "odd and at least 3; use 65537",
                               exponent);
    return JWK_OK;
}

/* Builds a public key of OpenSSL type type_name from params. Returns NULL when OpenSSL rejects
 * the parameters, and clears the OpenSSL error queue then. */
static EVP_PKEY *pkey_from_params(const char *type_name, OSSL_PARAM *params)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type_name, NULL);

    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* Runs EVP_PKEY_public_check on pkey and returns it. Frees it and returns NULL when the check
 * fails. For RSA the check includes a Miller-Rabin test of n, so a prime modulus (rejected) costs
 * all rounds: measured 0.08 s at 4096 bits and 0.56 s at 8192 bits on one x86-64 core, which is
 * why JWK_RSA_MAX_BITS is 8192. */
static EVP_PKEY *pkey_checked(EVP_PKEY *pkey)
{
    if (pkey == NULL)
        return NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return NULL;
    }
    return pkey;
}

static enum jwk_reject rsa_to_pkey(const json_t *jwk, EVP_PKEY **out, char *reason,
                                   size_t reason_len)
{
    unsigned char *n = NULL, *e = NULL;
    size_t n_len = 0, e_len = 0;
    BIGNUM *n_bn = NULL, *e_bn = NULL;
    OSSL_PARAM_BLD *builder = NULL;
    OSSL_PARAM *params = NULL;
    enum jwk_reject rc = decode_rsa_integer(jwk, "n", &n, &n_len, reason, reason_len);

    if (rc == JWK_OK)
        rc = decode_rsa_integer(jwk, "e", &e, &e_len, reason, reason_len);
    if (rc == JWK_OK)
        rc = check_rsa_integers(n, n_len, e, e_len, reason, reason_len);
    if (rc != JWK_OK)
        goto cleanup;

    n_bn = BN_bin2bn(n, (int)n_len, NULL);
    e_bn = BN_bin2bn(e, (int)e_len, NULL);
    builder = OSSL_PARAM_BLD_new();
    if (n_bn == NULL || e_bn == NULL || builder == NULL ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, n_bn) ||
        !OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, e_bn) ||
        (params = OSSL_PARAM_BLD_to_param(builder)) == NULL) {
        rc = jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                             "building the RSA key failed: out of memory");
        goto cleanup;
    }

    *out = pkey_checked(pkey_from_params("RSA", params));
    if (*out == NULL)
        rc = jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                             "RSA members \"n\" and \"e\" do not form a valid RSA public key "
                             "(OpenSSL public key check failed)");

cleanup:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(builder);
    BN_free(n_bn);
    BN_free(e_bn);
    free(n);
    free(e);
    return rc;
}

/* Decodes an EC or OKP coordinate member and requires the curve's exact length. */
static enum jwk_reject decode_coordinate(const json_t *jwk, const struct jwk_curve *curve,
                                         const char *name, unsigned char **out, char *reason,
                                         size_t reason_len)
{
    const char *kty_name = curve->kty == JWK_KTY_EC ? "EC" : "OKP";
    size_t len = 0;
    enum jwk_reject rc = decode_member(jwk, kty_name, name, out, &len, reason, reason_len);

    if (rc == JWK_OK && len != curve->coordinate_bytes) {
        free(*out);
        *out = NULL;
        rc = jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                             "%s member \"%s\" is %zu bytes long, but %s needs exactly %zu",
                             kty_name, name, len, curve->crv, curve->coordinate_bytes);
    }
    return rc;
}

static enum jwk_reject ec_to_pkey(const json_t *jwk, const struct jwk_curve *curve, EVP_PKEY **out,
                                  char *reason, size_t reason_len)
{
    unsigned char *x = NULL, *y = NULL;
    unsigned char point[EC_POINT_MAX_BYTES];
    size_t size = curve->coordinate_bytes;
    OSSL_PARAM params[3];
    enum jwk_reject rc = decode_coordinate(jwk, curve, "x", &x, reason, reason_len);

    if (rc == JWK_OK)
        rc = decode_coordinate(jwk, curve, "y", &y, reason, reason_len);
    if (rc != JWK_OK)
        goto cleanup;

    /* OpenSSL takes the public key as an uncompressed SEC 1 point: 0x04 || x || y. */
    point[0] = 0x04;
    memcpy(point + 1, x, size);
    memcpy(point + 1 + size, y, size);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)(uintptr_t)curve->ossl_name, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * size);
    params[2] = OSSL_PARAM_construct_end();

    *out = pkey_checked(pkey_from_params("EC", params));
    if (*out == NULL)
        rc = jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                             "EC members \"x\" and \"y\" are not a valid point on %s", curve->crv);

cleanup:
    free(x);
    free(y);
    return rc;
}

static enum jwk_reject okp_to_pkey(const json_t *jwk, const struct jwk_curve *curve, EVP_PKEY **out,
                                   char *reason, size_t reason_len)
{
    unsigned char *x = NULL;
    enum jwk_reject rc = decode_coordinate(jwk, curve, "x", &x, reason, reason_len);
    if (rc != JWK_OK)
        return rc;

    /* NOTE: OpenSSL 3.0 only checks the length of an Ed25519 or Ed448 public key, not that it
     * decodes to a curve point, so a corrupted x is accepted here and fails every verification. */
    EVP_PKEY *pkey =
        EVP_PKEY_new_raw_public_key_ex(NULL, curve->ossl_name, NULL, x, curve->coordinate_bytes);
    free(x);
    if (pkey == NULL)
        ERR_clear_error();
    *out = pkey_checked(pkey);
    if (*out == NULL)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "OKP member \"x\" is not a valid %s public key", curve->crv);
    return JWK_OK;
}

enum jwk_reject jwk_params_to_pkey(const json_t *jwk, const struct jwk_key_type *type,
                                   EVP_PKEY **out, char *reason, size_t reason_len)
{
    *out = NULL;
    switch (type->kty) {
    case JWK_KTY_RSA:
        return rsa_to_pkey(jwk, out, reason, reason_len);
    case JWK_KTY_EC:
        return ec_to_pkey(jwk, type->curve, out, reason, reason_len);
    case JWK_KTY_OKP:
        return okp_to_pkey(jwk, type->curve, out, reason, reason_len);
    }
    return jwk_reject_with(reason, reason_len, JWK_REJECT_KTY, "JWK key type is not supported");
}

/* Adds member name to jwk as the base64url encoding of bytes. Returns 0, or -1 when out of
 * memory. */
static int set_b64url_member(json_t *jwk, const char *name, const unsigned char *bytes, size_t len)
{
    char *text = b64url_encode(bytes, len);
    if (text == NULL)
        return -1;
    int rc = json_object_set_new(jwk, name, json_string(text));
    free(text);
    return rc == 0 ? 0 : -1;
}

/* Adds member name to jwk as the big-endian bytes of the public parameter param_name of pkey:
 * minimal when fixed_len is 0, otherwise left-padded with zeros to fixed_len bytes. Returns 0, or
 * -1 when the parameter is missing, longer than fixed_len, or memory runs out. */
static int set_bn_member(json_t *jwk, const char *name, EVP_PKEY *pkey, const char *param_name,
                         size_t fixed_len)
{
    BIGNUM *value = NULL;
    unsigned char *bytes = NULL;
    int rc = -1;

    if (EVP_PKEY_get_bn_param(pkey, param_name, &value) != 1)
        goto cleanup;
    int len = fixed_len > 0 ? (int)fixed_len : BN_num_bytes(value);
    bytes = malloc(len > 0 ? (size_t)len : 1);
    if (bytes == NULL || BN_bn2binpad(value, bytes, len) != len)
        goto cleanup;
    rc = set_b64url_member(jwk, name, bytes, (size_t)len);

cleanup:
    free(bytes);
    BN_free(value);
    return rc;
}

static enum jwk_reject ec_from_pkey(EVP_PKEY *pkey, json_t *jwk, struct jwk_key_type *type,
                                    char *reason, size_t reason_len)
{
    char group[64];
    size_t group_len = 0;

    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &group_len) != 1) {
        ERR_clear_error();
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "EC key has no named curve; use P-256, P-384 or P-521");
    }

    for (size_t i = 0; i < JWK_CURVE_COUNT; i++) {
        const struct jwk_curve *curve = &jwk_curves[i];
        if (curve->kty != JWK_KTY_EC || strcmp(group, curve->ossl_name) != 0)
            continue;
        type->kty = JWK_KTY_EC;
        type->curve = curve;
        if (json_object_set_new(jwk, "kty", json_string("EC")) != 0 ||
            json_object_set_new(jwk, "crv", json_string(curve->crv)) != 0 ||
            set_bn_member(jwk, "x", pkey, OSSL_PKEY_PARAM_EC_PUB_X, curve->coordinate_bytes) ||
            set_bn_member(jwk, "y", pkey, OSSL_PKEY_PARAM_EC_PUB_Y, curve->coordinate_bytes)) {
            ERR_clear_error();
            return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                                   "exporting the EC %s public key failed (no public point, or out "
                                   "of memory)",
                                   curve->crv);
        }
        return JWK_OK;
    }
    return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                           "EC curve %s is not supported; use P-256, P-384 or P-521", group);
}

static enum jwk_reject okp_from_pkey(EVP_PKEY *pkey, const struct jwk_curve *curve, json_t *jwk,
                                     struct jwk_key_type *type, char *reason, size_t reason_len)
{
    unsigned char x[EC_COORDINATE_MAX_BYTES];
    size_t x_len = sizeof(x);

    if (curve->alg == NULL)
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "%s is a key-agreement curve that cannot sign; use an Ed25519 or "
                               "Ed448 key",
                               curve->crv);

    type->kty = JWK_KTY_OKP;
    type->curve = curve;
    if (EVP_PKEY_get_raw_public_key(pkey, x, &x_len) != 1 || x_len != curve->coordinate_bytes ||
        json_object_set_new(jwk, "kty", json_string("OKP")) != 0 ||
        json_object_set_new(jwk, "crv", json_string(curve->crv)) != 0 ||
        set_b64url_member(jwk, "x", x, x_len) != 0) {
        ERR_clear_error();
        return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                               "exporting the %s public key failed (no public key, or out of "
                               "memory)",
                               curve->crv);
    }
    return JWK_OK;
}

enum jwk_reject jwk_params_from_pkey(EVP_PKEY *pkey, json_t *jwk, struct jwk_key_type *type,
                                     char *reason, size_t reason_len)
{
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        type->kty = JWK_KTY_RSA;
        type->curve = NULL;
        if (json_object_set_new(jwk, "kty", json_string("RSA")) != 0 ||
            set_bn_member(jwk, "n", pkey, OSSL_PKEY_PARAM_RSA_N, 0) != 0 ||
            set_bn_member(jwk, "e", pkey, OSSL_PKEY_PARAM_RSA_E, 0) != 0) {
            ERR_clear_error();
            return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                                   "exporting the RSA public key failed (no modulus, or out of "
                                   "memory)");
        }
        return JWK_OK;
    }
    if (EVP_PKEY_is_a(pkey, "EC"))
        return ec_from_pkey(pkey, jwk, type, reason, reason_len);
    for (size_t i = 0; i < JWK_CURVE_COUNT; i++) {
        if (jwk_curves[i].kty == JWK_KTY_OKP && EVP_PKEY_is_a(pkey, jwk_curves[i].ossl_name))
            return okp_from_pkey(pkey, &jwk_curves[i], jwk, type, reason, reason_len);
    }

    const char *name = EVP_PKEY_get0_type_name(pkey);
    return jwk_reject_with(reason, reason_len, JWK_REJECT_BAD_KEY,
                           "OpenSSL key type %s is not supported; use RSA, EC (P-256, P-384 or "
                           "P-521), Ed25519 or Ed448",
                           name != NULL ? name : "(unknown)");
}
