#include "b64url.h"
#include "jwk.h"
#include "unit.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REASON_BYTES 512

/* The RSA key of RFC 7638 section 3.1 and its SHA-256 thumbprint from that section. */
static const char rfc7638_n[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc"
    "_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQ"
    "R0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bF"
    "TWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
static const char rfc7638_thumbprint[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/* The Ed25519 key of RFC 8037 appendix A.2 and its thumbprint from appendix A.3. */
static const char rfc8037_x[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
static const char rfc8037_thumbprint[] = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

static const char *const rsa_order[] = {"kty", "kid", "use", "alg", "n", "e", NULL};
static const char *const ec_order[] = {"kty", "kid", "use", "alg", "crv", "x", "y", NULL};
static const char *const okp_order[] = {"kty", "kid", "use", "alg", "crv", "x", NULL};

enum fixture_id { RSA2048, P256, P384, P521, ED25519, ED448, RSA1024, FIXTURE_COUNT };

/* A generated key and its JWK text. RSA1024 is built by hand because jwk_from_pkey rejects it. */
struct fixture {
    const char *name;
    const char *alg;                 /* alg jwk_from_pkey picks by default */
    const char *const *member_order; /* expected normalised member order */
    EVP_PKEY *pkey;
    char *json;
};

static struct fixture fixtures[FIXTURE_COUNT] = {
    [RSA2048] = {"rsa 2048", "RS256", rsa_order, NULL, NULL},
    [P256] = {"ec p-256", "ES256", ec_order, NULL, NULL},
    [P384] = {"ec p-384", "ES384", ec_order, NULL, NULL},
    [P521] = {"ec p-521", "ES512", ec_order, NULL, NULL},
    [ED25519] = {"okp ed25519", "EdDSA", okp_order, NULL, NULL},
    [ED448] = {"okp ed448", "EdDSA", okp_order, NULL, NULL},
    [RSA1024] = {"rsa 1024", "RS256", rsa_order, NULL, NULL},
};

static bool verbose;

/* Base64url of an RSA public parameter of pkey, for the hand-built RSA 1024 JWK. */
static json_t *rsa_param_string(EVP_PKEY *pkey, const char *param)
{
    BIGNUM *bn = NULL;
    json_t *result = NULL;
    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
        return NULL;
    int len = BN_num_bytes(bn);
    unsigned char *bytes = malloc((size_t)len);
    if (bytes != NULL && BN_bn2bin(bn, bytes) == len) {
        char *text = b64url_encode(bytes, (size_t)len);
        result = json_string(text);
        free(text);
    }
    free(bytes);
    BN_free(bn);
    return result;
}

static char *rsa_json_by_hand(EVP_PKEY *pkey)
{
    json_t *jwk =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "kty", "RSA", "kid", "weak", "use", "sig",
                  "alg", "RS256", "n", rsa_param_string(pkey, OSSL_PKEY_PARAM_RSA_N), "e",
                  rsa_param_string(pkey, OSSL_PKEY_PARAM_RSA_E));
    char *text = json_dumps(jwk, JSON_COMPACT);
    json_decref(jwk);
    return text;
}

static EVP_PKEY *generate(enum fixture_id id)
{
    switch (id) {
    case RSA2048:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    case RSA1024:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    case P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case P384:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case P521:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    case ED25519:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    case ED448:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    case FIXTURE_COUNT:
        break;
    }
    return NULL;
}

/* Generates every fixture key. Returns false when OpenSSL or jwk_from_pkey fails. */
static bool fixtures_setup(void)
{
    for (int id = 0; id < FIXTURE_COUNT; id++) {
        struct fixture *f = &fixtures[id];
        f->pkey = generate((enum fixture_id)id);
        if (f->pkey == NULL) {
            fprintf(stderr, "generating the %s key failed\n", f->name);
            return false;
        }
        if (id == RSA1024) {
            f->json = rsa_json_by_hand(f->pkey);
        } else {
            struct jwk_public key;
            char reason[REASON_BYTES];
            if (jwk_from_pkey(f->pkey, NULL, NULL, &key, reason, sizeof(reason)) == JWK_OK)
                f->json = strdup(key.json);
            else
                fprintf(stderr, "jwk_from_pkey on the %s key failed: %s\n", f->name, reason);
            jwk_public_dispose(&key);
        }
        if (f->json == NULL)
            return false;
    }
    return true;
}

static void fixtures_teardown(void)
{
    for (int id = 0; id < FIXTURE_COUNT; id++) {
        EVP_PKEY_free(fixtures[id].pkey);
        free(fixtures[id].json);
    }
}

static json_t *fixture_jwk(enum fixture_id id)
{
    return json_loads(fixtures[id].json, 0, NULL);
}

/* Decodes a base64url member of jwk into a new buffer with room for one extra byte. */
static unsigned char *member_bytes(const json_t *jwk, const char *name, size_t *len)
{
    const char *text = json_string_value(json_object_get(jwk, name));
    unsigned char *bytes = NULL;
    if (text == NULL || b64url_decode(text, strlen(text), &bytes, len) != 0)
        return NULL;
    unsigned char *grown = realloc(bytes, *len + 1);
    if (grown == NULL)
        free(bytes);
    return grown;
}

static void set_member_bytes(json_t *jwk, const char *name, const unsigned char *bytes, size_t len)
{
    char *text = b64url_encode(bytes, len);
    json_object_set_new(jwk, name, json_string(text));
    free(text);
}

/* Replaces the character at offset in a string member. */
static void set_member_char(json_t *jwk, const char *name, size_t offset, char c)
{
    char *text = strdup(json_string_value(json_object_get(jwk, name)));
    if (text == NULL || offset >= strlen(text)) {
        free(text);
        return;
    }
    text[offset] = c;
    json_object_set_new(jwk, name, json_string(text));
    free(text);
}

static void append_to_member(json_t *jwk, const char *name, const char *suffix)
{
    const char *text = json_string_value(json_object_get(jwk, name));
    char *joined = NULL;
    if (text != NULL && asprintf(&joined, "%s%s", text, suffix) >= 0) {
        json_object_set_new(jwk, name, json_string(joined));
        free(joined);
    }
}

static void mutate_n_leading_zero(json_t *jwk)
{
    size_t len = 0;
    unsigned char *n = member_bytes(jwk, "n", &len);
    if (n == NULL)
        return;
    memmove(n + 1, n, len);
    n[0] = 0;
    set_member_bytes(jwk, "n", n, len + 1);
    free(n);
}

static void mutate_n_even(json_t *jwk)
{
    size_t len = 0;
    unsigned char *n = member_bytes(jwk, "n", &len);
    if (n == NULL)
        return;
    n[len - 1] ^= 1;
    set_member_bytes(jwk, "n", n, len);
    free(n);
}

static void mutate_n_too_long(json_t *jwk)
{
    /* 1025 bytes with a top byte of 1 make an 8193-bit modulus. */
    unsigned char n[1025];
    memset(n, 0xff, sizeof(n));
    n[0] = 0x01;
    set_member_bytes(jwk, "n", n, sizeof(n));
}

static void mutate_n_padded(json_t *jwk)
{
    /* A 256-byte modulus leaves two characters in the last group, so padding adds "==". */
    append_to_member(jwk, "n", "==");
}

static void mutate_n_plus(json_t *jwk)
{
    set_member_char(jwk, "n", 10, '+');
}

static void mutate_n_slash(json_t *jwk)
{
    set_member_char(jwk, "n", 10, '/');
}

static void mutate_n_newline(json_t *jwk)
{
    set_member_char(jwk, "n", 64, '\n');
}

static void mutate_e_too_long(json_t *jwk)
{
    /* 9 bytes is one over the 64-bit exponent OpenSSL verifies with. */
    unsigned char e[9];
    memset(e, 0x01, sizeof(e));
    set_member_bytes(jwk, "e", e, sizeof(e));
}

static void mutate_x_short(json_t *jwk)
{
    size_t len = 0;
    unsigned char *x = member_bytes(jwk, "x", &len);
    if (x == NULL)
        return;
    set_member_bytes(jwk, "x", x + 1, len - 1);
    free(x);
}

static void mutate_x_long(json_t *jwk)
{
    size_t len = 0;
    unsigned char *x = member_bytes(jwk, "x", &len);
    if (x == NULL)
        return;
    x[len] = 0x5a;
    set_member_bytes(jwk, "x", x, len + 1);
    free(x);
}

static void mutate_y_bit_flip(json_t *jwk)
{
    size_t len = 0;
    unsigned char *y = member_bytes(jwk, "y", &len);
    if (y == NULL)
        return;
    y[len - 1] ^= 1;
    set_member_bytes(jwk, "y", y, len);
    free(y);
}

static void mutate_x_above_field(json_t *jwk)
{
    /* 66 bytes of 0xff are far above the P-521 field prime. */
    unsigned char x[66];
    memset(x, 0xff, sizeof(x));
    set_member_bytes(jwk, "x", x, sizeof(x));
}

static void mutate_kid_long(json_t *jwk)
{
    char kid[JWK_KID_MAX_BYTES + 2];
    memset(kid, 'a', JWK_KID_MAX_BYTES + 1);
    kid[JWK_KID_MAX_BYTES + 1] = '\0';
    json_object_set_new(jwk, "kid", json_string(kid));
}

static void mutate_private_no_kty(json_t *jwk)
{
    json_object_del(jwk, "kty");
    json_object_set_new(jwk, "d", json_string("AQAB"));
}

static void mutate_oct_key(json_t *jwk)
{
    json_object_clear(jwk);
    json_object_set_new(jwk, "kty", json_string("oct"));
    json_object_set_new(jwk, "kid", json_string("hmac"));
    json_object_set_new(jwk, "k", json_string("GawgguFyGrWKav7AX4VKUg"));
}

typedef void (*mutation_fn)(json_t *jwk);

/* One rejected JWK: a fixture with one member set (value is JSON text) or deleted (value NULL),
 * or changed by mutate, and the results expected from jwk_normalize and jwk_to_pkey. */
struct bad_case {
    const char *name;
    enum fixture_id base;
    const char *member;
    const char *value;
    mutation_fn mutate;
    enum jwk_reject normalize_rc;
    enum jwk_reject to_pkey_rc;
};

#define PRIVATE JWK_REJECT_PRIVATE_MEMBER
#define BAD_KEY JWK_REJECT_BAD_KEY

static const struct bad_case bad_cases[] = {
    {"private d", RSA2048, "d", "\"AQAB\"", NULL, PRIVATE, PRIVATE},
    {"private p", RSA2048, "p", "\"AQAB\"", NULL, PRIVATE, PRIVATE},
    {"private q", RSA2048, "q", "\"AQAB\"", NULL, PRIVATE, PRIVATE},
    {"private dp", RSA2048, "dp", "\"AQAB\"", NULL, PRIVATE, PRIVATE},
    {"private dq", RSA2048, "dq", "\"AQAB\"", NULL, PRIVATE, PRIVATE},
    {"private qi", RSA2048, "qi", "\"AQAB\"", NULL, PRIVATE, PRIVATE},
    {"private oth", RSA2048, "oth", "[]", NULL, PRIVATE, PRIVATE},
    {"private k", RSA2048, "k", "\"AQAB\"", NULL, PRIVATE, PRIVATE},
    {"private d null", RSA2048, "d", "null", NULL, PRIVATE, PRIVATE},
    {"private d on ec", P256, "d", "\"AQAB\"", NULL, PRIVATE, PRIVATE},
    {"private d on okp", ED25519, "d", "\"AQAB\"", NULL, PRIVATE, PRIVATE},
    {"private d without kty", RSA2048, NULL, NULL, mutate_private_no_kty, PRIVATE, PRIVATE},
    {"private k on oct", RSA2048, NULL, NULL, mutate_oct_key, PRIVATE, PRIVATE},
    {"kty oct", RSA2048, "kty", "\"oct\"", NULL, JWK_REJECT_KTY, JWK_REJECT_KTY},
    {"kty missing", RSA2048, "kty", NULL, NULL, JWK_REJECT_KTY, JWK_REJECT_KTY},
    {"kty lower case", RSA2048, "kty", "\"rsa\"", NULL, JWK_REJECT_KTY, JWK_REJECT_KTY},
    {"kty number", RSA2048, "kty", "7", NULL, JWK_REJECT_KTY, JWK_REJECT_KTY},
    {"kty long value", RSA2048, "kty", "\"RSA-with-a-very-long-name-that-is-cut-off\"", NULL,
     JWK_REJECT_KTY, JWK_REJECT_KTY},
    {"kty nul byte", RSA2048, "kty", "\"RSA\\u0000\"", NULL, JWK_REJECT_KTY, JWK_REJECT_KTY},
    {"kid missing", RSA2048, "kid", NULL, NULL, JWK_REJECT_MISSING_MEMBER, JWK_OK},
    {"kid number", P256, "kid", "42", NULL, JWK_REJECT_MISSING_MEMBER, JWK_OK},
    {"use missing", RSA2048, "use", NULL, NULL, JWK_REJECT_MISSING_MEMBER, JWK_OK},
    {"alg missing", RSA2048, "alg", NULL, NULL, JWK_REJECT_MISSING_MEMBER, JWK_OK},
    {"alg null", ED25519, "alg", "null", NULL, JWK_REJECT_MISSING_MEMBER, JWK_OK},
    {"kid empty", RSA2048, "kid", "\"\"", NULL, JWK_REJECT_KID, JWK_OK},
    {"kid too long", RSA2048, NULL, NULL, mutate_kid_long, JWK_REJECT_KID, JWK_OK},
    {"kid control char", RSA2048, "kid", "\"ab\\u0001c\"", NULL, JWK_REJECT_KID, JWK_OK},
    {"kid nul byte", RSA2048, "kid", "\"ab\\u0000c\"", NULL, JWK_REJECT_KID, JWK_OK},
    {"kid space", RSA2048, "kid", "\"a b\"", NULL, JWK_REJECT_KID, JWK_OK},
    {"kid non-ascii", RSA2048, "kid", "\"caf\\u00e9\"", NULL, JWK_REJECT_KID, JWK_OK},
    {"use enc", RSA2048, "use", "\"enc\"", NULL, JWK_REJECT_USE_ENC, JWK_OK},
    {"use foo", RSA2048, "use", "\"foo\"", NULL, JWK_REJECT_USE, JWK_OK},
    {"use upper case", P256, "use", "\"SIG\"", NULL, JWK_REJECT_USE, JWK_OK},
    {"alg es256 on rsa", RSA2048, "alg", "\"ES256\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"alg none on rsa", RSA2048, "alg", "\"none\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"alg hs256 on rsa", RSA2048, "alg", "\"HS256\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"alg rsa-oaep on rsa", RSA2048, "alg", "\"RSA-OAEP\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"alg rs256 on p-256", P256, "alg", "\"RS256\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"alg es384 on p-256", P256, "alg", "\"ES384\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"alg eddsa on p-256", P256, "alg", "\"EdDSA\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"alg es512 on p-384", P384, "alg", "\"ES512\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"alg es256 on p-521", P521, "alg", "\"ES256\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"alg es256 on ed25519", ED25519, "alg", "\"ES256\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"alg ed25519 on ed25519", ED25519, "alg", "\"Ed25519\"", NULL, JWK_REJECT_ALG, JWK_OK},
    {"rsa 1024 bits", RSA1024, NULL, NULL, NULL, BAD_KEY, BAD_KEY},
    {"rsa even exponent", RSA2048, "e", "\"AQAA\"", NULL, BAD_KEY, BAD_KEY},
    {"rsa exponent 1", RSA2048, "e", "\"AQ\"", NULL, BAD_KEY, BAD_KEY},
    {"rsa exponent 2", RSA2048, "e", "\"Ag\"", NULL, BAD_KEY, BAD_KEY},
    {"rsa exponent empty", RSA2048, "e", "\"\"", NULL, BAD_KEY, BAD_KEY},
    {"rsa exponent leading zero", RSA2048, "e", "\"AAEAAQ\"", NULL, BAD_KEY, BAD_KEY},
    {"rsa exponent too long", RSA2048, NULL, NULL, mutate_e_too_long, BAD_KEY, BAD_KEY},
    {"rsa n leading zero", RSA2048, NULL, NULL, mutate_n_leading_zero, BAD_KEY, BAD_KEY},
    {"rsa n even", RSA2048, NULL, NULL, mutate_n_even, BAD_KEY, BAD_KEY},
    {"rsa n too long", RSA2048, NULL, NULL, mutate_n_too_long, BAD_KEY, BAD_KEY},
    {"rsa n padded", RSA2048, NULL, NULL, mutate_n_padded, BAD_KEY, BAD_KEY},
    {"rsa n plus", RSA2048, NULL, NULL, mutate_n_plus, BAD_KEY, BAD_KEY},
    {"rsa n slash", RSA2048, NULL, NULL, mutate_n_slash, BAD_KEY, BAD_KEY},
    {"rsa n newline", RSA2048, NULL, NULL, mutate_n_newline, BAD_KEY, BAD_KEY},
    {"rsa n missing", RSA2048, "n", NULL, NULL, BAD_KEY, BAD_KEY},
    {"rsa n number", RSA2048, "n", "12345", NULL, BAD_KEY, BAD_KEY},
    {"ec x short", P256, NULL, NULL, mutate_x_short, BAD_KEY, BAD_KEY},
    {"ec x long", P384, NULL, NULL, mutate_x_long, BAD_KEY, BAD_KEY},
    {"ec x empty", P256, "x", "\"\"", NULL, BAD_KEY, BAD_KEY},
    {"ec y missing", P256, "y", NULL, NULL, BAD_KEY, BAD_KEY},
    {"ec p-256 off curve", P256, NULL, NULL, mutate_y_bit_flip, BAD_KEY, BAD_KEY},
    {"ec p-384 off curve", P384, NULL, NULL, mutate_y_bit_flip, BAD_KEY, BAD_KEY},
    {"ec p-521 off curve", P521, NULL, NULL, mutate_y_bit_flip, BAD_KEY, BAD_KEY},
    {"ec p-521 x above field", P521, NULL, NULL, mutate_x_above_field, BAD_KEY, BAD_KEY},
    {"ec crv unknown", P256, "crv", "\"P-192\"", NULL, BAD_KEY, BAD_KEY},
    {"ec crv secp256k1", P256, "crv", "\"secp256k1\"", NULL, BAD_KEY, BAD_KEY},
    {"ec crv missing", P256, "crv", NULL, NULL, BAD_KEY, BAD_KEY},
    {"ec crv ed25519", P256, "crv", "\"Ed25519\"", NULL, BAD_KEY, BAD_KEY},
    {"okp x long", ED25519, NULL, NULL, mutate_x_long, BAD_KEY, BAD_KEY},
    {"okp x short", ED25519, NULL, NULL, mutate_x_short, BAD_KEY, BAD_KEY},
    {"okp ed448 x short", ED448, NULL, NULL, mutate_x_short, BAD_KEY, BAD_KEY},
    {"okp x missing", ED448, "x", NULL, NULL, BAD_KEY, BAD_KEY},
    {"okp crv x25519", ED25519, "crv", "\"X25519\"", NULL, BAD_KEY, BAD_KEY},
    {"okp crv x448", ED448, "crv", "\"X448\"", NULL, BAD_KEY, BAD_KEY},
    {"okp crv p-256", ED25519, "crv", "\"P-256\"", NULL, BAD_KEY, BAD_KEY},
};

static json_t *bad_case_jwk(const struct bad_case *c)
{
    json_t *jwk = fixture_jwk(c->base);
    if (jwk == NULL)
        return NULL;
    if (c->mutate != NULL) {
        c->mutate(jwk);
    } else if (c->member != NULL && c->value == NULL) {
        json_object_del(jwk, c->member);
    } else if (c->member != NULL) {
        json_t *value = json_loads(c->value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        CHECK(value != NULL);
        json_object_set_new(jwk, c->member, value);
    }
    return jwk;
}

static void check_rejected(const char *name, const json_t *jwk, enum jwk_reject normalize_rc,
                           enum jwk_reject to_pkey_rc)
{
    struct jwk_public key;
    char reason[REASON_BYTES];
    UNIT_CASE(name);

    CHECK_INT(jwk_normalize(jwk, &key, reason, sizeof(reason)), normalize_rc);
    CHECK(reason[0] != '\0');
    CHECK(key.json == NULL);
    CHECK(key.kid == NULL);
    if (verbose)
        printf("%-28s %-16s %s\n", name, jwk_reject_name(normalize_rc), reason);
    jwk_public_dispose(&key);

    EVP_PKEY *pkey = NULL;
    CHECK_INT(jwk_to_pkey(jwk, &pkey, reason, sizeof(reason)), to_pkey_rc);
    if (to_pkey_rc == JWK_OK) {
        CHECK(pkey != NULL);
    } else {
        CHECK(pkey == NULL);
        CHECK(reason[0] != '\0');
    }
    EVP_PKEY_free(pkey);
}

static void test_bad_cases(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        UNIT_CASE(c->name);
        json_t *jwk = bad_case_jwk(c);
        CHECK(jwk != NULL);
        check_rejected(c->name, jwk, c->normalize_rc, c->to_pkey_rc);
        json_decref(jwk);
    }
}

static void test_not_object(void)
{
    json_t *wrapped = json_pack("[o]", fixture_jwk(RSA2048));
    json_t *text = json_string("{\"kty\":\"RSA\"}");

    check_rejected("not object array", wrapped, JWK_REJECT_NOT_OBJECT, JWK_REJECT_NOT_OBJECT);
    check_rejected("not object string", text, JWK_REJECT_NOT_OBJECT, JWK_REJECT_NOT_OBJECT);
    check_rejected("not object null", NULL, JWK_REJECT_NOT_OBJECT, JWK_REJECT_NOT_OBJECT);
    json_decref(wrapped);
    json_decref(text);
}

static void check_member_order(const json_t *jwk, const char *const *expected)
{
    size_t i = 0;
    for (void *iter = json_object_iter((json_t *)(uintptr_t)jwk); iter != NULL;
         iter = json_object_iter_next((json_t *)(uintptr_t)jwk, iter), i++) {
        CHECK(expected[i] != NULL);
        if (expected[i] == NULL)
            return;
        CHECK_STR(json_object_iter_key(iter), expected[i]);
    }
    CHECK(expected[i] == NULL);
}

static void check_no_private_member(const json_t *jwk, const char *json)
{
    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++) {
        char quoted[8];
        snprintf(quoted, sizeof(quoted), "\"%s\"", private_members[i]);
        CHECK(json_object_get(jwk, private_members[i]) == NULL);
        CHECK(strstr(json, quoted) == NULL);
    }
}

/* Normalises jwk again after adding members that must be dropped, and expects expected_json. */
static void check_extra_members_dropped(const json_t *jwk, const char *expected_json)
{
    json_t *extended = json_deep_copy(jwk);
    struct jwk_public key;
    char reason[REASON_BYTES];

    json_object_set_new(extended, "x5c", json_pack("[s]", "MIIB"));
    json_object_set_new(extended, "key_ops", json_pack("[s]", "verify"));
    json_object_set_new(extended, "ext", json_true());
    CHECK_INT(jwk_normalize(extended, &key, reason, sizeof(reason)), JWK_OK);
    CHECK_STR(key.json, expected_json);
    jwk_public_dispose(&key);
    json_decref(extended);
}

/* Converts jwk back to an OpenSSL key, compares it with the original, and exports it again. */
static void check_pkey_round_trip(const json_t *jwk, EVP_PKEY *original, const char *expected_json)
{
    EVP_PKEY *pkey = NULL;
    char reason[REASON_BYTES];

    CHECK_INT(jwk_to_pkey(jwk, &pkey, reason, sizeof(reason)), JWK_OK);
    CHECK(pkey != NULL);
    if (pkey == NULL)
        return;
    CHECK_INT(EVP_PKEY_eq(pkey, original), 1);

    struct jwk_public key;
    CHECK_INT(jwk_from_pkey(pkey, NULL, NULL, &key, reason, sizeof(reason)), JWK_OK);
    CHECK_STR(key.json, expected_json);
    jwk_public_dispose(&key);
    EVP_PKEY_free(pkey);
}

static void test_good_fixture(enum fixture_id id)
{
    const struct fixture *f = &fixtures[id];
    struct jwk_public key;
    struct jwk_public again;
    char reason[REASON_BYTES];
    UNIT_CASE(f->name);

    CHECK_INT(jwk_from_pkey(f->pkey, NULL, NULL, &key, reason, sizeof(reason)), JWK_OK);
    CHECK_STR(reason, "");
    CHECK(key.json != NULL);
    if (key.json == NULL)
        return;
    CHECK_STR(key.kid, key.thumbprint);
    CHECK_STR(key.alg, f->alg);
    CHECK_INT(strlen(key.thumbprint), JWK_THUMBPRINT_BYTES - 1);
    CHECK_INT(key.json_len, strlen(key.json));
    CHECK(strchr(key.json, ' ') == NULL);

    json_t *parsed = json_loads(key.json, 0, NULL);
    CHECK(parsed != NULL);
    check_member_order(parsed, f->member_order);
    check_no_private_member(parsed, key.json);
    CHECK_STR(json_string_value(json_object_get(parsed, "use")), "sig");

    CHECK_INT(jwk_normalize(parsed, &again, reason, sizeof(reason)), JWK_OK);
    CHECK_STR(again.json, key.json);
    CHECK_STR(again.thumbprint, key.thumbprint);
    CHECK_STR(again.kid, key.kid);
    jwk_public_dispose(&again);

    check_extra_members_dropped(parsed, key.json);
    check_pkey_round_trip(parsed, f->pkey, key.json);

    json_decref(parsed);
    jwk_public_dispose(&key);
}

static void test_good_fixtures(void)
{
    for (int id = 0; id < FIXTURE_COUNT; id++) {
        if (id != RSA1024)
            test_good_fixture((enum fixture_id)id);
    }
}

static void test_rfc7638_thumbprint(void)
{
    struct jwk_public key;
    char reason[REASON_BYTES];
    UNIT_CASE("jwk rfc7638 thumbprint");

    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "n", rfc7638_n, "e",
                            "AQAB", "alg", "RS256", "kid", "2011-04-29", "use", "sig");
    CHECK_INT(jwk_normalize(jwk, &key, reason, sizeof(reason)), JWK_OK);
    CHECK_STR(key.thumbprint, rfc7638_thumbprint);
    CHECK_STR(key.kid, "2011-04-29");
    CHECK_STR(key.alg, "RS256");

    char *expected = NULL;
    CHECK(asprintf(&expected,
                   "{\"kty\":\"RSA\",\"kid\":\"2011-04-29\",\"use\":\"sig\",\"alg\":\"RS256\","
                   "\"n\":\"%s\",\"e\":\"AQAB\"}",
                   rfc7638_n) > 0);
    CHECK_STR(key.json, expected);
    free(expected);
    jwk_public_dispose(&key);

    /* Realm keys often lack use and alg: jwk_to_pkey takes the bare key. */
    json_object_del(jwk, "use");
    json_object_del(jwk, "alg");
    json_object_del(jwk, "kid");
    EVP_PKEY *pkey = NULL;
    CHECK_INT(jwk_to_pkey(jwk, &pkey, reason, sizeof(reason)), JWK_OK);
    CHECK(pkey != NULL);
    CHECK_INT(EVP_PKEY_get_bits(pkey), 2048);
    EVP_PKEY_free(pkey);
    json_decref(jwk);
}

static void test_rsa_exponent_limits(void)
{
    /* 3 is the smallest valid exponent and 2^56 + 1 fills the 64-bit limit. */
    static const char *const exponents[] = {"Aw", "AQAB", "AQAAAAAAAAE"};
    char reason[REASON_BYTES];
    UNIT_CASE("jwk rsa exponent limits");

    for (size_t i = 0; i < sizeof(exponents) / sizeof(exponents[0]); i++) {
        json_t *jwk = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", rfc7638_n, "e", exponents[i]);
        EVP_PKEY *pkey = NULL;
        CHECK_INT(jwk_to_pkey(jwk, &pkey, reason, sizeof(reason)), JWK_OK);
        CHECK(pkey != NULL);
        EVP_PKEY_free(pkey);
        json_decref(jwk);
    }
}

static void test_rfc8037_thumbprint(void)
{
    struct jwk_public key;
    char reason[REASON_BYTES];
    UNIT_CASE("jwk rfc8037 thumbprint");

    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x",
                            rfc8037_x, "kid", "ed", "use", "sig", "alg", "EdDSA");
    CHECK_INT(jwk_normalize(jwk, &key, reason, sizeof(reason)), JWK_OK);
    CHECK_STR(key.thumbprint, rfc8037_thumbprint);
    jwk_public_dispose(&key);
    json_decref(jwk);
}

static void test_from_pkey_arguments(void)
{
    struct jwk_public key;
    char reason[REASON_BYTES];
    UNIT_CASE("jwk from_pkey kid and alg");

    CHECK_INT(
        jwk_from_pkey(fixtures[RSA2048].pkey, "instance-1", "PS512", &key, reason, sizeof(reason)),
        JWK_OK);
    CHECK_STR(key.kid, "instance-1");
    CHECK_STR(key.alg, "PS512");
    CHECK(key.json != NULL);
    if (key.json != NULL)
        CHECK(strstr(key.json, "\"kid\":\"instance-1\"") != NULL);
    jwk_public_dispose(&key);

    CHECK_INT(jwk_from_pkey(fixtures[RSA2048].pkey, NULL, "ES256", &key, reason, sizeof(reason)),
              JWK_REJECT_ALG);
    CHECK(reason[0] != '\0');
    CHECK(key.json == NULL);
    CHECK_INT(jwk_from_pkey(fixtures[P256].pkey, "a b", NULL, &key, reason, sizeof(reason)),
              JWK_REJECT_KID);
    CHECK(reason[0] != '\0');
    CHECK_INT(jwk_from_pkey(NULL, NULL, NULL, &key, reason, sizeof(reason)), JWK_REJECT_BAD_KEY);
    CHECK(reason[0] != '\0');
}

static void check_from_pkey_rejects(const char *name, EVP_PKEY *pkey)
{
    struct jwk_public key;
    char reason[REASON_BYTES];
    UNIT_CASE(name);

    CHECK(pkey != NULL);
    CHECK_INT(jwk_from_pkey(pkey, NULL, NULL, &key, reason, sizeof(reason)), JWK_REJECT_BAD_KEY);
    CHECK(reason[0] != '\0');
    CHECK(key.json == NULL);
    if (verbose)
        printf("%-28s %s\n", name, reason);
}

static void test_from_pkey_rejects(void)
{
    EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY *x448 = EVP_PKEY_Q_keygen(NULL, NULL, "X448");
    EVP_PKEY *secp256k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");

    check_from_pkey_rejects("jwk from_pkey x25519", x25519);
    check_from_pkey_rejects("jwk from_pkey x448", x448);
    check_from_pkey_rejects("jwk from_pkey secp256k1", secp256k1);
    check_from_pkey_rejects("jwk from_pkey rsa 1024", fixtures[RSA1024].pkey);
    EVP_PKEY_free(x25519);
    EVP_PKEY_free(x448);
    EVP_PKEY_free(secp256k1);
}

static void test_kid_limits(void)
{
    struct jwk_public key;
    char reason[REASON_BYTES];
    char kid[JWK_KID_MAX_BYTES + 1];
    UNIT_CASE("jwk kid at maximum length");

    memset(kid, '~', JWK_KID_MAX_BYTES);
    kid[JWK_KID_MAX_BYTES] = '\0';
    json_t *jwk = fixture_jwk(P256);
    json_object_set_new(jwk, "kid", json_string(kid));
    CHECK_INT(jwk_normalize(jwk, &key, reason, sizeof(reason)), JWK_OK);
    CHECK_STR(key.kid, kid);
    jwk_public_dispose(&key);
    json_decref(jwk);
}

static void test_reason_buffers(void)
{
    struct jwk_public key;
    char small[10];
    UNIT_CASE("jwk reason buffers");

    json_t *jwk = fixture_jwk(RSA2048);
    json_object_set_new(jwk, "use", json_string("enc"));
    CHECK_INT(jwk_normalize(jwk, &key, NULL, 0), JWK_REJECT_USE_ENC);
    CHECK_INT(jwk_normalize(jwk, &key, small, sizeof(small)), JWK_REJECT_USE_ENC);
    CHECK_INT(strlen(small), sizeof(small) - 1);

    EVP_PKEY *pkey = NULL;
    json_object_set_new(jwk, "d", json_string("AQAB"));
    CHECK_INT(jwk_to_pkey(jwk, &pkey, NULL, 0), JWK_REJECT_PRIVATE_MEMBER);
    CHECK(pkey == NULL);
    json_decref(jwk);
}

static void test_reject_names(void)
{
    UNIT_CASE("jwk reject names");
    for (int i = 0; i < JWK_REJECT_COUNT; i++) {
        const char *name = jwk_reject_name((enum jwk_reject)i);
        CHECK(name != NULL);
        if (name == NULL)
            continue;
        CHECK(name[0] != '\0');
        CHECK(strcmp(name, "unknown") != 0);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(name, jwk_reject_name((enum jwk_reject)j)) != 0);
    }
    CHECK_STR(jwk_reject_name(JWK_REJECT_COUNT), "unknown");
    CHECK_STR(jwk_reject_name(JWK_REJECT_USE_ENC), "use_enc");
}

int main(void)
{
    verbose = getenv("UNIT_VERBOSE") != NULL;
    if (!fixtures_setup()) {
        fixtures_teardown();
        fprintf(stderr, "jwk: fixture setup failed\n");
        return 1;
    }

    test_good_fixtures();
    test_bad_cases();
    test_not_object();
    test_rfc7638_thumbprint();
    test_rsa_exponent_limits();
    test_rfc8037_thumbprint();
    test_from_pkey_arguments();
    test_from_pkey_rejects();
    test_kid_limits();
    test_reason_buffers();
    test_reject_names();

    fixtures_teardown();
    return unit_finish("jwk");
}
