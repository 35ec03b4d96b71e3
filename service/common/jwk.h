/* JSON Web Keys (RFC 7517, 7518, 8037): strict validation of public signing keys, normalisation
 * to the public members only, RFC 7638 thumbprints, and conversion to OpenSSL keys. */
#ifndef KCHUB_JWK_H
#define KCHUB_JWK_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

#define JWK_KID_MAX_BYTES 128
#define JWK_RSA_MIN_BITS  2048
/* 8192 bits bound the cost of rejecting a prime modulus (about 0.6 s, see jwk_params.c). */
#define JWK_RSA_MAX_BITS  8192
/* An RFC 7638 SHA-256 thumbprint in base64url: 43 characters and a terminator. */
#define JWK_THUMBPRINT_BYTES 44

/* Why a JWK was rejected. jwk_reject_name() gives each a stable snake_case name for logs and
 * metrics labels. */
enum jwk_reject {
    JWK_OK = 0,
    JWK_REJECT_NOT_OBJECT,     /* not a JSON object */
    JWK_REJECT_PRIVATE_MEMBER, /* has d, p, q, dp, dq, qi, oth or k */
    JWK_REJECT_KTY,            /* kty missing, not a string, or not RSA, EC or OKP */
    JWK_REJECT_MISSING_MEMBER, /* kid, use or alg missing or not a string (normalise only) */
    JWK_REJECT_KID,            /* kid empty, over JWK_KID_MAX_BYTES, or not printable ASCII */
    JWK_REJECT_USE_ENC,        /* use is "enc" */
    JWK_REJECT_USE,            /* use is neither "sig" nor "enc" */
    JWK_REJECT_ALG,            /* alg does not fit the key type and curve */
    JWK_REJECT_BAD_KEY,        /* public parameters missing, malformed, weak or not a valid key */
    JWK_REJECT_COUNT
};

const char *jwk_reject_name(enum jwk_reject reason);

/* A validated public signing key. All strings are owned by the struct. */
struct jwk_public {
    char *kid;
    char *alg;
    char *json; /* normalised JWK: compact JSON, members in the order kty, kid, use, alg, then the
                 * public parameters (n, e for RSA; crv, x, y for EC; crv, x for OKP) */
    size_t json_len;
    char thumbprint[JWK_THUMBPRINT_BYTES]; /* RFC 7638 SHA-256 thumbprint, base64url */
};

/* Validates jwk as a public signing key that may be served to Keycloak: no private members, kty
 * RSA, EC or OKP, kid, use ("sig") and alg present, alg fitting the key (RS256/384/512 and
 * PS256/384/512 for RSA; ES256 for P-256, ES384 for P-384, ES512 for P-521; EdDSA for Ed25519
 * and Ed448), and the parameters forming a real public key (RSA modulus of 2048 to 8192 bits
 * without leading zero bytes, odd exponent from 3 up to 64 bits; EC coordinates of full length for
 * the curve and on it; OKP x of the curve's length). Members other than the ones above are
 * dropped. On JWK_OK fills *out (release with jwk_public_dispose). Otherwise writes a one-sentence
 * reason naming the offending member into reason (reason_len bytes, may be 0) and leaves *out
 * empty. */
enum jwk_reject jwk_normalize(const json_t *jwk, struct jwk_public *out, char *reason,
                              size_t reason_len);

/* Builds an OpenSSL public key from jwk's kty and public parameters with the same key checks as
 * jwk_normalize, but without reading kid, use or alg (realm keys often lack alg), so the caller
 * matches those. Rejects private members. On JWK_OK sets *out to a new key the caller frees with
 * EVP_PKEY_free. Otherwise sets *out to NULL and writes a reason as jwk_normalize does. */
enum jwk_reject jwk_to_pkey(const json_t *jwk, EVP_PKEY **out, char *reason, size_t reason_len);

/* Builds the public JWK of an OpenSSL key (private or public; RSA, EC P-256/384/521, Ed25519 or
 * Ed448) and normalises it. kid NULL means the RFC 7638 thumbprint; alg NULL means RS256 for
 * RSA, the curve's ES alg for EC and EdDSA for OKP. use is always "sig". Private parameters are
 * never read. Same result contract as jwk_normalize. */
enum jwk_reject jwk_from_pkey(EVP_PKEY *pkey, const char *kid, const char *alg,
                              struct jwk_public *out, char *reason, size_t reason_len);

/* Frees the strings of k and zeroes it. Safe on a zeroed struct. */
void jwk_public_dispose(struct jwk_public *k);

#endif
