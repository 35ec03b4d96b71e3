#include "b64url.h"
#include "jwk.h"
#include "logout_token.h"
#include "realm_keys.h"
#include "unit.h"

#include <jansson.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ISSUER    "https://sso.example.test/realms/demo"
#define CLIENT_ID "portal"
/* A fixed "now" for every case: 2023-11-14T22:13:20Z. */
#define NOW_S  1700000000LL
#define NOW_MS (NOW_S * 1000)

/* Which key and computation signs a test token. */
enum signer { SIGN_RS256, SIGN_PS256, SIGN_ES256, SIGN_EDDSA, SIGN_HS256, SIGN_NONE };

/* How a signed token is damaged after signing. */
enum tamper {
    TAMPER_NONE,
    TAMPER_FLIP_SIGNATURE, /* flips one bit of the first signature byte */
    TAMPER_BAD_ALPHABET,   /* replaces the first signature character with '+' */
    TAMPER_PADDING,        /* appends "=" to the header part */
    TAMPER_DROP_SIGNATURE, /* leaves two parts */
    TAMPER_EXTRA_PART,     /* appends a fourth part */
    TAMPER_TRUNCATE_ECDSA, /* drops the last signature byte */
};

static EVP_PKEY *rsa_key;
static EVP_PKEY *ec_key;
static EVP_PKEY *ed_key;
static struct realm_key_set *key_set;

static const char default_header[] = "{\"alg\":\"RS256\",\"typ\":\"logout+jwt\",\"kid\":\"rsa-1\"}";

/* Claims of a token Keycloak 25 would send, issued 5 s before NOW_S. */
static json_t *default_claims(void)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:{s:{}}, s:s}", "iss", ISSUER, "aud",
                     CLIENT_ID, "iat", (json_int_t)(NOW_S - 5), "exp", (json_int_t)(NOW_S + 115),
                     "jti", "2f1c4a7e-jti", "sub", "user-42", "sid", "session-7", "events",
                     LOGOUT_TOKEN_EVENT, "typ", "Logout");
}

static size_t sign_with(EVP_PKEY *pkey, const EVP_MD *md, int padding, const char *input,
                        unsigned char *sig, size_t sig_size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pkey_ctx = NULL;
    size_t len = sig_size;
    if (ctx == NULL || EVP_DigestSignInit(ctx, &pkey_ctx, md, NULL, pkey) != 1)
        len = 0;
    if (len != 0 && padding == RSA_PKCS1_PSS_PADDING &&
        (EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, padding) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pkey_ctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        len = 0;
    if (len != 0 &&
        EVP_DigestSign(ctx, sig, &len, (const unsigned char *)input, strlen(input)) != 1)
        len = 0;
    EVP_MD_CTX_free(ctx);
    return len;
}

/* Converts a DER ECDSA signature to the JWS form: r and s as 32 big-endian bytes each. */
static size_t ecdsa_der_to_raw(unsigned char *sig, size_t der_len)
{
    const unsigned char *p = sig;
    ECDSA_SIG *parsed = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (parsed == NULL)
        return 0;
    unsigned char raw[64];
    int ok = BN_bn2binpad(ECDSA_SIG_get0_r(parsed), raw, 32) == 32 &&
             BN_bn2binpad(ECDSA_SIG_get0_s(parsed), raw + 32, 32) == 32;
    ECDSA_SIG_free(parsed);
    if (!ok)
        return 0;
    memcpy(sig, raw, sizeof(raw));
    return sizeof(raw);
}

/* HS256 with the DER of the RSA public key as the secret: the classic key-confusion attack. */
static size_t sign_hs256(const char *input, unsigned char *sig, size_t sig_size)
{
    unsigned char *secret = NULL;
    int secret_len = i2d_PUBKEY(rsa_key, &secret);
    size_t len = 0;
    if (secret_len <= 0 ||
        EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, (size_t)secret_len,
                  (const unsigned char *)input, strlen(input), sig, sig_size, &len) == NULL)
        len = 0;
    OPENSSL_free(secret);
    return len;
}

static size_t compute_signature(enum signer signer, const char *input, unsigned char *sig,
                                size_t sig_size)
{
    switch (signer) {
    case SIGN_RS256:
        return sign_with(rsa_key, EVP_sha256(), RSA_PKCS1_PADDING, input, sig, sig_size);
    case SIGN_PS256:
        return sign_with(rsa_key, EVP_sha256(), RSA_PKCS1_PSS_PADDING, input, sig, sig_size);
    case SIGN_ES256:
        return ecdsa_der_to_raw(sig, sign_with(ec_key, EVP_sha256(), 0, input, sig, sig_size));
    case SIGN_EDDSA:
        return sign_with(ed_key, NULL, 0, input, sig, sig_size);
    case SIGN_HS256:
        return sign_hs256(input, sig, sig_size);
    case SIGN_NONE:
        return 0;
    }
    return 0;
}

/* Returns "a.b.c" in a new string, or "a.b" when c is NULL. */
static char *join_parts(const char *a, const char *b, const char *c)
{
    size_t len = strlen(a) + strlen(b) + (c != NULL ? strlen(c) : 0) + 3;
    char *out = malloc(len);
    if (out != NULL && c != NULL)
        snprintf(out, len, "%s.%s.%s", a, b, c);
    else if (out != NULL)
        snprintf(out, len, "%s.%s", a, b);
    return out;
}

/* Builds a compact JWS of header and payload (JSON text), signed by signer, then damaged by
 * tamper. Returns a new string; ends the test program when signing fails. */
static char *make_token(const char *header, const char *payload, enum signer signer,
                        enum tamper tamper)
{
    char *h = b64url_encode((const unsigned char *)header, strlen(header));
    char *p = b64url_encode((const unsigned char *)payload, strlen(payload));
    char *input = join_parts(h, p, NULL);
    unsigned char sig[1024];
    size_t sig_len = compute_signature(signer, input, sig, sizeof(sig));
    char *token = NULL;
    if (signer != SIGN_NONE && sig_len == 0) {
        fprintf(stderr, "signing a test token failed\n");
        exit(1); /* Every later check would fail for the same reason. */
    }
    if (tamper == TAMPER_FLIP_SIGNATURE)
        sig[0] ^= 0x01;
    if (tamper == TAMPER_TRUNCATE_ECDSA)
        sig_len--;
    char *s = b64url_encode(sig, sig_len);
    if (tamper == TAMPER_BAD_ALPHABET)
        s[0] = '+';

    if (tamper == TAMPER_PADDING) {
        char padded[2048];
        snprintf(padded, sizeof(padded), "%s=", h);
        token = join_parts(padded, p, s);
    } else if (tamper == TAMPER_DROP_SIGNATURE) {
        token = strdup(input);
    } else if (tamper == TAMPER_EXTRA_PART) {
        char with_extra[4096];
        snprintf(with_extra, sizeof(with_extra), "%s.%s", s, s);
        token = join_parts(h, p, with_extra);
    } else {
        token = join_parts(h, p, s);
    }

    free(h);
    free(p);
    free(input);
    free(s);
    return token;
}

/* Returns the default claims with patch (a JSON object) merged over them and the members named in
 * remove (space-separated) deleted, as compact JSON. */
static char *claims_text(const char *patch, const char *remove)
{
    json_t *claims = default_claims();
    if (patch != NULL) {
        json_t *overlay = json_loads(patch, 0, NULL);
        if (overlay == NULL)
            fprintf(stderr, "test patch is not JSON: %s\n", patch);
        json_object_update(claims, overlay);
        json_decref(overlay);
    }
    char names[256];
    snprintf(names, sizeof(names), "%s", remove != NULL ? remove : "");
    for (char *save = NULL, *name = strtok_r(names, " ", &save); name != NULL;
         name = strtok_r(NULL, " ", &save))
        json_object_del(claims, name);
    char *text = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    return text;
}

/* Adds the public JWK of pkey to keys, with alg removed when alg is NULL. */
static void add_jwk(json_t *keys, EVP_PKEY *pkey, const char *kid, const char *alg)
{
    struct jwk_public jwk;
    char reason[256];
    if (jwk_from_pkey(pkey, kid, alg != NULL ? alg : NULL, &jwk, reason, sizeof(reason)) !=
        JWK_OK) {
        fprintf(stderr, "exporting test key %s failed: %s\n", kid, reason);
        return;
    }
    json_t *object = json_loads(jwk.json, 0, NULL);
    if (alg == NULL)
        json_object_del(object, "alg");
    json_array_append_new(keys, object);
    jwk_public_dispose(&jwk);
}

static bool setup(void)
{
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (rsa_key == NULL || ec_key == NULL || ed_key == NULL) {
        fprintf(stderr, "generating the test keys failed\n");
        return false;
    }

    json_t *keys = json_array();
    add_jwk(keys, rsa_key, "rsa-1", "RS256");
    add_jwk(keys, rsa_key, "rsa-noalg", NULL);
    add_jwk(keys, ec_key, "ec-1", "ES256");
    add_jwk(keys, ec_key, "ec-noalg", NULL);
    add_jwk(keys, ed_key, "ed-1", "EdDSA");
    json_t *jwks = json_pack("{s:o}", "keys", keys);
    char *text = json_dumps(jwks, JSON_COMPACT);
    json_decref(jwks);

    struct error err = {{0}};
    key_set = realm_key_set_parse(text, strlen(text), &err);
    free(text);
    if (key_set == NULL || realm_key_set_count(key_set) != 5) {
        fprintf(stderr, "parsing the test JWKS failed: %s\n", err.message);
        return false;
    }
    return true;
}

/* The policy of most cases: the four alg families a realm can be set to sign with. */
static void wide_policy(struct logout_token_policy *policy)
{
    logout_token_policy_init(policy, ISSUER, CLIENT_ID);
    policy->accepted_algs = JWS_ALG_BIT(JWS_ALG_RS256) | JWS_ALG_BIT(JWS_ALG_PS256) |
                            JWS_ALG_BIT(JWS_ALG_ES256) | JWS_ALG_BIT(JWS_ALG_ES384) |
                            JWS_ALG_BIT(JWS_ALG_EDDSA);
}

/* One row of the rule table. */
struct token_case {
    const char *name;
    enum logout_token_result expected;
    const char *header;  /* NULL: default_header */
    const char *payload; /* literal payload text; NULL: the default claims, patched */
    const char *patch;   /* JSON object merged over the default claims */
    const char *remove;  /* claims removed, space-separated */
    enum signer signer;
    enum tamper tamper;
    unsigned algs;    /* accepted_algs; 0 for wide_policy's set */
    bool require_exp; /* policy->require_exp */
};

static const struct token_case cases[] = {
    {"alg outside the list", LOGOUT_TOKEN_ALG_NOT_ACCEPTED, "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}",
     NULL, NULL, NULL, SIGN_ES256, TAMPER_NONE, JWS_ALG_BIT(JWS_ALG_RS256), false},
    {"alg unknown", LOGOUT_TOKEN_ALG_NOT_ACCEPTED, "{\"alg\":\"RS1\",\"kid\":\"rsa-1\"}", NULL,
     NULL, NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"alg missing", LOGOUT_TOKEN_ALG_NOT_ACCEPTED, "{\"kid\":\"rsa-1\"}", NULL, NULL, NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"alg none", LOGOUT_TOKEN_ALG_NONE, "{\"alg\":\"none\"}", NULL, NULL, NULL, SIGN_NONE,
     TAMPER_NONE, JWS_ALG_ALL, false},
    {"HS256 keyed with public key", LOGOUT_TOKEN_ALG_SYMMETRIC,
     "{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}", NULL, NULL, NULL, SIGN_HS256, TAMPER_NONE,
     JWS_ALG_ALL, false},
    {"typ wrong", LOGOUT_TOKEN_TYP, "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"typ\":\"at+jwt\"}",
     NULL, NULL, NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"typ not a string", LOGOUT_TOKEN_TYP, "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"typ\":1}", NULL,
     NULL, NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"crit present", LOGOUT_TOKEN_CRIT,
     "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"crit\":[\"exp\"],\"exp\":1}", NULL, NULL, NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"kid not a string", LOGOUT_TOKEN_HEADER_INVALID, "{\"alg\":\"RS256\",\"kid\":7}", NULL, NULL,
     NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"header not an object", LOGOUT_TOKEN_HEADER_INVALID, "[\"RS256\"]", NULL, NULL, NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"header duplicate member", LOGOUT_TOKEN_DUPLICATE_MEMBER,
     "{\"alg\":\"RS256\",\"alg\":\"none\",\"kid\":\"rsa-1\"}", NULL, NULL, NULL, SIGN_RS256,
     TAMPER_NONE, 0, false},
    {"unknown kid", LOGOUT_TOKEN_UNKNOWN_KID, "{\"alg\":\"RS256\",\"kid\":\"rotated-away\"}", NULL,
     NULL, NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"no kid and no key for alg", LOGOUT_TOKEN_UNKNOWN_KID, "{\"alg\":\"ES384\"}", NULL, NULL, NULL,
     SIGN_ES256, TAMPER_NONE, 0, false},
    {"no kid and two keys for alg", LOGOUT_TOKEN_KID_AMBIGUOUS, "{\"alg\":\"RS256\"}", NULL, NULL,
     NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"alg differs from JWK alg", LOGOUT_TOKEN_KEY_ALG_MISMATCH,
     "{\"alg\":\"PS256\",\"kid\":\"rsa-1\"}", NULL, NULL, NULL, SIGN_PS256, TAMPER_NONE, 0, false},
    {"alg does not fit key type", LOGOUT_TOKEN_KEY_TYPE_MISMATCH,
     "{\"alg\":\"RS256\",\"kid\":\"ec-noalg\"}", NULL, NULL, NULL, SIGN_RS256, TAMPER_NONE, 0,
     false},
    {"signature byte flipped", LOGOUT_TOKEN_SIGNATURE, NULL, NULL, NULL, NULL, SIGN_RS256,
     TAMPER_FLIP_SIGNATURE, 0, false},
    {"ecdsa signature flipped", LOGOUT_TOKEN_SIGNATURE, "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}",
     NULL, NULL, NULL, SIGN_ES256, TAMPER_FLIP_SIGNATURE, 0, false},
    {"ecdsa signature short", LOGOUT_TOKEN_SIGNATURE, "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", NULL,
     NULL, NULL, SIGN_ES256, TAMPER_TRUNCATE_ECDSA, 0, false},
    {"eddsa signature flipped", LOGOUT_TOKEN_SIGNATURE, "{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}",
     NULL, NULL, NULL, SIGN_EDDSA, TAMPER_FLIP_SIGNATURE, 0, false},
    {"RS256 header over PSS signature", LOGOUT_TOKEN_SIGNATURE,
     "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", NULL, NULL, NULL, SIGN_PS256, TAMPER_NONE, 0, false},
    {"base64url bad alphabet", LOGOUT_TOKEN_BASE64URL, NULL, NULL, NULL, NULL, SIGN_RS256,
     TAMPER_BAD_ALPHABET, 0, false},
    {"base64url padded", LOGOUT_TOKEN_BASE64URL, NULL, NULL, NULL, NULL, SIGN_RS256, TAMPER_PADDING,
     0, false},
    {"two parts", LOGOUT_TOKEN_PARTS, NULL, NULL, NULL, NULL, SIGN_RS256, TAMPER_DROP_SIGNATURE, 0,
     false},
    {"four parts", LOGOUT_TOKEN_PARTS, NULL, NULL, NULL, NULL, SIGN_RS256, TAMPER_EXTRA_PART, 0,
     false},
    {"iss wrong", LOGOUT_TOKEN_ISS, NULL, NULL,
     "{\"iss\":\"https://sso.example.test/realms/other\"}", NULL, SIGN_RS256, TAMPER_NONE, 0,
     false},
    {"iss with trailing slash", LOGOUT_TOKEN_ISS, NULL, NULL, "{\"iss\":\"" ISSUER "/\"}", NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"iss missing", LOGOUT_TOKEN_ISS, NULL, NULL, NULL, "iss", SIGN_RS256, TAMPER_NONE, 0, false},
    {"aud wrong", LOGOUT_TOKEN_AUD, NULL, NULL, "{\"aud\":\"billing\"}", NULL, SIGN_RS256,
     TAMPER_NONE, 0, false},
    {"aud array without client", LOGOUT_TOKEN_AUD, NULL, NULL, "{\"aud\":[\"billing\",\"crm\"]}",
     NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"aud missing", LOGOUT_TOKEN_AUD, NULL, NULL, NULL, "aud", SIGN_RS256, TAMPER_NONE, 0, false},
    {"iat missing", LOGOUT_TOKEN_IAT_INVALID, NULL, NULL, NULL, "iat", SIGN_RS256, TAMPER_NONE, 0,
     false},
    {"iat with fraction", LOGOUT_TOKEN_IAT_INVALID, NULL, NULL, "{\"iat\":1699999995.5}", NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"iat a string", LOGOUT_TOKEN_IAT_INVALID, NULL, NULL, "{\"iat\":\"1699999995\"}", NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"iat in the future", LOGOUT_TOKEN_IAT_FUTURE, NULL, NULL, "{\"iat\":1700000016}", NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"iat too old", LOGOUT_TOKEN_IAT_TOO_OLD, NULL, NULL, "{\"iat\":1699999864}", "exp", SIGN_RS256,
     TAMPER_NONE, 0, false},
    {"exp passed", LOGOUT_TOKEN_EXPIRED, NULL, NULL, "{\"iat\":1699999900,\"exp\":1699999985}",
     NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"exp a string", LOGOUT_TOKEN_EXP_INVALID, NULL, NULL, "{\"exp\":\"later\"}", NULL, SIGN_RS256,
     TAMPER_NONE, 0, false},
    {"exp missing but required", LOGOUT_TOKEN_EXP_MISSING, NULL, NULL, NULL, "exp", SIGN_RS256,
     TAMPER_NONE, 0, true},
    {"events missing", LOGOUT_TOKEN_EVENTS, NULL, NULL, NULL, "events", SIGN_RS256, TAMPER_NONE, 0,
     false},
    {"events without logout event", LOGOUT_TOKEN_EVENTS, NULL, NULL,
     "{\"events\":{\"revoke_offline_access\":true}}", NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"logout event not an object", LOGOUT_TOKEN_EVENTS, NULL, NULL,
     "{\"events\":{\"" LOGOUT_TOKEN_EVENT "\":true}}", NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"nonce present", LOGOUT_TOKEN_NONCE, NULL, NULL, "{\"nonce\":\"n-0S6_WzA2Mj\"}", NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"neither sub nor sid", LOGOUT_TOKEN_SUBJECT, NULL, NULL, NULL, "sub sid", SIGN_RS256,
     TAMPER_NONE, 0, false},
    {"sub not a string", LOGOUT_TOKEN_SUBJECT, NULL, NULL, "{\"sub\":42}", NULL, SIGN_RS256,
     TAMPER_NONE, 0, false},
    {"sid empty", LOGOUT_TOKEN_SUBJECT, NULL, NULL, "{\"sid\":\"\"}", NULL, SIGN_RS256, TAMPER_NONE,
     0, false},
    {"jti missing", LOGOUT_TOKEN_JTI, NULL, NULL, NULL, "jti", SIGN_RS256, TAMPER_NONE, 0, false},
    {"jti not a string", LOGOUT_TOKEN_JTI, NULL, NULL, "{\"jti\":12}", NULL, SIGN_RS256,
     TAMPER_NONE, 0, false},
    {"payload not an object", LOGOUT_TOKEN_PAYLOAD_INVALID, NULL, "[\"" ISSUER "\"]", NULL, NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"payload not JSON", LOGOUT_TOKEN_PAYLOAD_INVALID, NULL, "iss=" ISSUER, NULL, NULL, SIGN_RS256,
     TAMPER_NONE, 0, false},
    {"payload duplicate member", LOGOUT_TOKEN_DUPLICATE_MEMBER, NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" CLIENT_ID "\",\"aud\":\"other\"}", NULL, NULL, SIGN_RS256,
     TAMPER_NONE, 0, false},
    /* Edges that must pass. */
    {"iat at skew edge", LOGOUT_TOKEN_OK, NULL, NULL, "{\"iat\":1700000015}", NULL, SIGN_RS256,
     TAMPER_NONE, 0, false},
    {"iat at max age edge", LOGOUT_TOKEN_OK, NULL, NULL, "{\"iat\":1699999865}", "exp", SIGN_RS256,
     TAMPER_NONE, 0, false},
    {"exp within skew", LOGOUT_TOKEN_OK, NULL, NULL, "{\"iat\":1699999900,\"exp\":1699999986}",
     NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"aud array with client", LOGOUT_TOKEN_OK, NULL, NULL,
     "{\"aud\":[\"billing\",\"" CLIENT_ID "\"]}", NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"typ JWT", LOGOUT_TOKEN_OK, "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"typ\":\"JWT\"}", NULL,
     NULL, NULL, SIGN_RS256, TAMPER_NONE, 0, false},
    {"typ media type uppercase", LOGOUT_TOKEN_OK,
     "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"typ\":\"Application/LOGOUT+JWT\"}", NULL, NULL, NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"typ absent", LOGOUT_TOKEN_OK, "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", NULL, NULL, NULL,
     SIGN_RS256, TAMPER_NONE, 0, false},
    {"no kid and one key for alg", LOGOUT_TOKEN_OK, "{\"alg\":\"EdDSA\"}", NULL, NULL, NULL,
     SIGN_EDDSA, TAMPER_NONE, 0, false},
    {"kid without JWK alg", LOGOUT_TOKEN_OK, "{\"alg\":\"PS256\",\"kid\":\"rsa-noalg\"}", NULL,
     NULL, NULL, SIGN_PS256, TAMPER_NONE, 0, false},
};

#define CASE_COUNT (sizeof(cases) / sizeof(cases[0]))

static enum logout_token_result run_case(const struct token_case *c, const char **description)
{
    struct logout_token_policy policy;
    wide_policy(&policy);
    if (c->algs != 0)
        policy.accepted_algs = c->algs;
    policy.require_exp = c->require_exp;

    char *payload = c->payload != NULL ? strdup(c->payload) : claims_text(c->patch, c->remove);
    char *token =
        make_token(c->header != NULL ? c->header : default_header, payload, c->signer, c->tamper);
    free(payload);

    struct logout_token_claims claims;
    enum logout_token_result result =
        logout_token_validate(token, strlen(token), &policy, key_set, NOW_MS, &claims, description);
    if (result != LOGOUT_TOKEN_OK) {
        CHECK(claims.iss == NULL);
        CHECK(claims.jti == NULL);
        CHECK(claims.sub == NULL);
    }
    logout_token_claims_dispose(&claims);
    free(token);
    return result;
}

/* The results some case produced as expected, for the coverage check at the end. */
static bool covered[LOGOUT_TOKEN_RESULT_COUNT];

static void expect_result(enum logout_token_result result, enum logout_token_result expected)
{
    CHECK_STR(logout_token_result_name(result), logout_token_result_name(expected));
    if (result == expected)
        covered[result] = true;
}

static void test_rule_table(void)
{
    for (size_t i = 0; i < CASE_COUNT; i++) {
        UNIT_CASE(cases[i].name);
        const char *description = NULL;
        enum logout_token_result result = run_case(&cases[i], &description);
        expect_result(result, cases[i].expected);
        CHECK(description != NULL);
        CHECK(description != NULL && description[0] != '\0');
    }
}

/* Every rejection except the internal error (out of memory, OpenSSL failure) has a case. */
static void test_rule_coverage(void)
{
    for (int r = 0; r < LOGOUT_TOKEN_RESULT_COUNT; r++) {
        UNIT_CASE(logout_token_result_name((enum logout_token_result)r));
        if (r != LOGOUT_TOKEN_INTERNAL)
            CHECK(covered[r]);
    }
}

static void test_size_limit(void)
{
    UNIT_CASE("token over 16 KiB");
    struct logout_token_policy policy;
    wide_policy(&policy);
    char *padding = malloc(LOGOUT_TOKEN_MAX_BYTES);
    memset(padding, 'A', LOGOUT_TOKEN_MAX_BYTES - 1);
    padding[LOGOUT_TOKEN_MAX_BYTES - 1] = '\0';
    char *claims_json = claims_text(NULL, NULL);
    char patch[LOGOUT_TOKEN_MAX_BYTES + 64];
    snprintf(patch, sizeof(patch), "{\"filler\":\"%s\"}", padding);
    json_t *claims_object = json_loads(claims_json, 0, NULL);
    json_t *filler = json_loads(patch, 0, NULL);
    json_object_update(claims_object, filler);
    char *payload = json_dumps(claims_object, JSON_COMPACT);
    char *token = make_token(default_header, payload, SIGN_RS256, TAMPER_NONE);

    struct logout_token_claims claims;
    const char *description = NULL;
    CHECK(strlen(token) > LOGOUT_TOKEN_MAX_BYTES);
    expect_result(logout_token_validate(token, strlen(token), &policy, key_set, NOW_MS, &claims,
                                        &description),
                  LOGOUT_TOKEN_TOO_LARGE);
    CHECK(description != NULL);
    CHECK(description != NULL && description[0] != '\0');
    logout_token_claims_dispose(&claims);

    UNIT_CASE("jti over 256 bytes");
    char long_jti[LOGOUT_TOKEN_JTI_MAX_BYTES + 2];
    memset(long_jti, 'j', sizeof(long_jti) - 1);
    long_jti[sizeof(long_jti) - 1] = '\0';
    snprintf(patch, sizeof(patch), "{\"jti\":\"%s\"}", long_jti);
    char *jti_payload = claims_text(patch, NULL);
    char *jti_token = make_token(default_header, jti_payload, SIGN_RS256, TAMPER_NONE);
    CHECK_INT(logout_token_validate(jti_token, strlen(jti_token), &policy, key_set, NOW_MS, &claims,
                                    &description),
              LOGOUT_TOKEN_JTI);
    logout_token_claims_dispose(&claims);

    UNIT_CASE("jti of 256 bytes");
    long_jti[LOGOUT_TOKEN_JTI_MAX_BYTES] = '\0';
    snprintf(patch, sizeof(patch), "{\"jti\":\"%s\"}", long_jti);
    free(jti_payload);
    free(jti_token);
    jti_payload = claims_text(patch, NULL);
    jti_token = make_token(default_header, jti_payload, SIGN_RS256, TAMPER_NONE);
    CHECK_INT(logout_token_validate(jti_token, strlen(jti_token), &policy, key_set, NOW_MS, &claims,
                                    &description),
              LOGOUT_TOKEN_OK);
    CHECK(claims.jti != NULL);
    CHECK(claims.jti != NULL && strlen(claims.jti) == LOGOUT_TOKEN_JTI_MAX_BYTES);
    logout_token_claims_dispose(&claims);

    free(jti_payload);
    free(jti_token);
    free(token);
    free(payload);
    json_decref(filler);
    json_decref(claims_object);
    free(claims_json);
    free(padding);
}

/* One good token per alg family, with the claims the validator must return. */
struct good_case {
    const char *name;
    const char *header;
    enum signer signer;
    const char *patch;
    const char *remove;
    const char *sub; /* expected; NULL when absent */
    const char *sid;
    int64_t exp;
    bool revoke_offline_access;
};

static const struct good_case good_cases[] = {
    {"good RS256", "{\"alg\":\"RS256\",\"typ\":\"logout+jwt\",\"kid\":\"rsa-1\"}", SIGN_RS256, NULL,
     NULL, "user-42", "session-7", NOW_S + 115, false},
    {"good PS256", "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"kid\":\"rsa-noalg\"}", SIGN_PS256,
     "{\"events\":{\"" LOGOUT_TOKEN_EVENT "\":{},\"revoke_offline_access\":true}}", NULL, "user-42",
     "session-7", NOW_S + 115, true},
    {"good ES256", "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", SIGN_ES256, NULL, "sid exp", "user-42",
     NULL, 0, false},
    {"good EdDSA", "{\"alg\":\"EdDSA\",\"typ\":\"application/logout+jwt\",\"kid\":\"ed-1\"}",
     SIGN_EDDSA, "{\"events\":{\"" LOGOUT_TOKEN_EVENT "\":{},\"revoke_offline_access\":false}}",
     "sub", NULL, "session-7", NOW_S + 115, false},
};

static void test_good_tokens(void)
{
    struct logout_token_policy policy;
    wide_policy(&policy);
    for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
        const struct good_case *g = &good_cases[i];
        UNIT_CASE(g->name);
        char *payload = claims_text(g->patch, g->remove);
        char *token = make_token(g->header, payload, g->signer, TAMPER_NONE);
        struct logout_token_claims claims;
        const char *description = NULL;
        enum logout_token_result result = logout_token_validate(
            token, strlen(token), &policy, key_set, NOW_MS, &claims, &description);
        CHECK_STR(logout_token_result_name(result), "ok");
        CHECK(description != NULL);
        CHECK(description != NULL && description[0] != '\0');
        CHECK_STR(claims.iss, ISSUER);
        CHECK_STR(claims.jti, "2f1c4a7e-jti");
        if (g->sub != NULL)
            CHECK_STR(claims.sub, g->sub);
        else
            CHECK(claims.sub == NULL);
        if (g->sid != NULL)
            CHECK_STR(claims.sid, g->sid);
        else
            CHECK(claims.sid == NULL);
        CHECK_INT(claims.iat, NOW_S - 5);
        CHECK_INT(claims.exp, g->exp);
        CHECK_INT(claims.revoke_offline_access, g->revoke_offline_access);
        logout_token_claims_dispose(&claims);
        CHECK(claims.iss == NULL);
        CHECK(claims.jti == NULL);
        free(token);
        free(payload);
    }
}

static void test_default_policy(void)
{
    UNIT_CASE("default policy");
    struct logout_token_policy policy;
    logout_token_policy_init(&policy, ISSUER, CLIENT_ID);
    CHECK_INT(policy.accepted_algs, JWS_ALG_BIT(JWS_ALG_RS256));
    CHECK_INT(policy.clock_skew_ms, LOGOUT_TOKEN_CLOCK_SKEW_MS_DEFAULT);
    CHECK_INT(policy.max_age_ms, LOGOUT_TOKEN_MAX_AGE_MS_DEFAULT);
    CHECK(!policy.require_exp);

    UNIT_CASE("default policy rejects EdDSA");
    char *payload = claims_text(NULL, NULL);
    char *token =
        make_token("{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}", payload, SIGN_EDDSA, TAMPER_NONE);
    struct logout_token_claims claims;
    const char *description = NULL;
    CHECK_INT(logout_token_validate(token, strlen(token), &policy, key_set, NOW_MS, &claims,
                                    &description),
              LOGOUT_TOKEN_ALG_NOT_ACCEPTED);
    logout_token_claims_dispose(&claims);

    UNIT_CASE("no key set");
    free(token);
    token = make_token(default_header, payload, SIGN_RS256, TAMPER_NONE);
    CHECK_INT(
        logout_token_validate(token, strlen(token), &policy, NULL, NOW_MS, &claims, &description),
        LOGOUT_TOKEN_UNKNOWN_KID);
    logout_token_claims_dispose(&claims);
    free(token);
    free(payload);
}

static void test_result_names(void)
{
    UNIT_CASE("result names distinct");
    for (int a = 0; a < LOGOUT_TOKEN_RESULT_COUNT; a++) {
        const char *name = logout_token_result_name((enum logout_token_result)a);
        CHECK(name[0] != '\0');
        CHECK(strcmp(name, "unknown") != 0);
        for (int b = a + 1; b < LOGOUT_TOKEN_RESULT_COUNT; b++)
            CHECK(strcmp(name, logout_token_result_name((enum logout_token_result)b)) != 0);
    }
    CHECK_STR(logout_token_result_name(LOGOUT_TOKEN_RESULT_COUNT), "unknown");
}

int main(void)
{
    if (!setup())
        return 1;
    test_rule_table();
    test_size_limit();
    test_good_tokens();
    test_default_policy();
    test_result_names();
    test_rule_coverage();

    realm_key_set_release(key_set);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ed_key);
    return unit_finish("logout_token");
}
