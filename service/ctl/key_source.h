/* Loading a --key file into the public JWK that kc-cluster-ctl publishes. */
#ifndef KCHUB_KEY_SOURCE_H
#define KCHUB_KEY_SOURCE_H

#include "error.h"
#include "jwk.h"

/* The largest key file read, PEM or JSON. A 16384-bit RSA private key in PEM is about 12 KiB. */
#define KEY_SOURCE_FILE_MAX_BYTES 65536

/* The result of key_source_load. */
enum key_source_status {
    KEY_SOURCE_OK = 0,
    KEY_SOURCE_IO,      /* the file could not be opened or read */
    KEY_SOURCE_INVALID, /* the content is not a usable key: rejected by design, not retryable */
};

/* Reads path and builds the normalised public JWK of the key in it. The file may hold a PEM
 * private key (PKCS#8 or traditional, unencrypted), a PEM public key (SubjectPublicKeyInfo), or a
 * JSON object with one public JWK. A JWK with private members is rejected. A NULL kid selects
 * the JWK file's own kid, or else the RFC 7638 thumbprint. A NULL alg selects the JWK file's alg,
 * or else the default for the key type (see jwk_from_pkey).
 *
 * The private key, if any, lives only inside this call: the OpenSSL key is freed and the file
 * buffer is wiped before it returns. On KEY_SOURCE_OK fills *out (release with
 * jwk_public_dispose). Otherwise sets err naming the file and what to do. */
enum key_source_status key_source_load(const char *path, const char *kid, const char *alg,
                                       struct jwk_public *out, struct error *err);

#endif
