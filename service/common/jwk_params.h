/* Private to jwk.c: the key types and curves a JWK may name, and the checks and OpenSSL
 * conversions of their public parameters. */
#ifndef KCHUB_JWK_PARAMS_H
#define KCHUB_JWK_PARAMS_H

#include "jwk.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

enum jwk_kty { JWK_KTY_RSA, JWK_KTY_EC, JWK_KTY_OKP };

/* One named curve of kty EC or OKP. */
struct jwk_curve {
    const char *crv;         /* JWK "crv" value */
    enum jwk_kty kty;        /* JWK_KTY_EC or JWK_KTY_OKP */
    const char *ossl_name;   /* OpenSSL group name (EC) or key type name (OKP) */
    size_t coordinate_bytes; /* length of x (and y for EC) */
    const char *alg;         /* the JWS alg for the curve, NULL for key-agreement curves */
};

/* The key type of a JWK, from its kty and crv. */
struct jwk_key_type {
    enum jwk_kty kty;
    const struct jwk_curve *curve; /* NULL for RSA */
};

/* Writes a formatted one-sentence reason into reason (when reason_len > 0) and returns code. */
enum jwk_reject jwk_reject_with(char *reason, size_t reason_len, enum jwk_reject code,
                                const char *format, ...) __attribute__((format(printf, 4, 5)));

/* Copies a member value from an untrusted JWK into buf for a reason message: at most 32 bytes,
 * bytes outside printable ASCII replaced by '?', and "..." appended when cut. Returns buf. */
const char *jwk_quote_value(const char *value, size_t value_len, char *buf, size_t buf_len);

/* Reads kty and, for EC and OKP, crv. Rejects with JWK_REJECT_KTY for a missing, non-string or
 * unsupported kty, and with JWK_REJECT_BAD_KEY for a missing, unknown or key-agreement crv. */
enum jwk_reject jwk_params_identify(const json_t *jwk, struct jwk_key_type *type, char *reason,
                                    size_t reason_len);

/* Checks that alg is a JWS algorithm for the key type. Rejects with JWK_REJECT_ALG. */
enum jwk_reject jwk_params_check_alg(const struct jwk_key_type *type, const char *alg,
                                     size_t alg_len, char *reason, size_t reason_len);

/* Returns the alg jwk_from_pkey uses when the caller gives none. */
const char *jwk_params_default_alg(const struct jwk_key_type *type);

/* Decodes and checks the public parameters of jwk for its type (already identified) and builds an
 * OpenSSL public key that passes EVP_PKEY_public_check. On JWK_OK sets *out to a new key the
 * caller frees. Rejects with JWK_REJECT_BAD_KEY. */
enum jwk_reject jwk_params_to_pkey(const json_t *jwk, const struct jwk_key_type *type,
                                   EVP_PKEY **out, char *reason, size_t reason_len);

/* Adds kty and the public parameters of pkey to jwk (n, e for RSA; crv, x, y for EC; crv, x for
 * OKP, coordinates left-padded to the curve's length) and sets *type. Reads public parameters
 * only. Rejects with JWK_REJECT_BAD_KEY for an unsupported key type or curve, and also when an
 * allocation or an OpenSSL call fails (the reason then says so). */
enum jwk_reject jwk_params_from_pkey(EVP_PKEY *pkey, json_t *jwk, struct jwk_key_type *type,
                                     char *reason, size_t reason_len);

/* Returns true when jwk has a string member name, and sets *value and *value_len (the length
 * counts embedded NUL bytes, which jansson allows). */
bool jwk_string_member(const json_t *jwk, const char *name, const char **value, size_t *value_len);

#endif
