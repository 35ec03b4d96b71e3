#include "key_source.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REASON_BYTES 256

/* A key file's content, wiped before it is freed because it may contain a private key. */
struct file_buffer {
    char *data;
    size_t len;
};

static void file_buffer_dispose(struct file_buffer *buf)
{
    if (buf->data != NULL) {
        explicit_bzero(buf->data, buf->len);
        free(buf->data);
    }
    buf->data = NULL;
    buf->len = 0;
}

static enum key_source_status read_all(int fd, const char *path, size_t size,
                                       struct file_buffer *out, struct error *err)
{
    out->data = malloc(size + 1);
    if (out->data == NULL) {
        error_set(err, "--key %s: out of memory reading %zu bytes", path, size);
        return KEY_SOURCE_IO;
    }
    while (out->len < size) {
        ssize_t n = read(fd, out->data + out->len, size - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            error_set(err, "--key %s: reading failed: %s", path, strerror(errno));
            return KEY_SOURCE_IO;
        }
        if (n == 0)
            break; /* The file shrank while being read; parse what is there. */
        out->len += (size_t)n;
    }
    out->data[out->len] = '\0';
    return KEY_SOURCE_OK;
}

static enum key_source_status read_key_file(const char *path, struct file_buffer *out,
                                            struct error *err)
{
    out->data = NULL;
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        error_set(err,
                  "--key %s: cannot open the file: %s; check the path and that this user "
                  "may read it",
                  path, strerror(errno));
        return KEY_SOURCE_IO;
    }
    enum key_source_status status = KEY_SOURCE_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        error_set(err, "--key %s: fstat failed: %s", path, strerror(errno));
        status = KEY_SOURCE_IO;
    } else if (!S_ISREG(st.st_mode)) {
        error_set(err, "--key %s: not a regular file; give a PEM or JWK file", path);
        status = KEY_SOURCE_INVALID;
    } else if (st.st_size == 0 || st.st_size > KEY_SOURCE_FILE_MAX_BYTES) {
        error_set(err, "--key %s: the file is %lld bytes; expected 1 to %d bytes of PEM or JSON",
                  path, (long long)st.st_size, KEY_SOURCE_FILE_MAX_BYTES);
        status = KEY_SOURCE_INVALID;
    } else {
        status = read_all(fd, path, (size_t)st.st_size, out, err);
    }
    close(fd);
    if (status != KEY_SOURCE_OK)
        file_buffer_dispose(out);
    return status;
}

/* Returns the first text of the last OpenSSL error, or a fallback, and clears the queue. */
static const char *openssl_reason(char *buf, size_t len)
{
    unsigned long code = ERR_peek_last_error();
    if (code == 0)
        snprintf(buf, len, "no further detail from OpenSSL");
    else
        ERR_error_string_n(code, buf, len);
    ERR_clear_error();
    return buf;
}

/* A passphrase callback that supplies none, so an encrypted key fails instead of prompting. */
static int supply_no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1;
}

/* Decodes a PEM public key: SubjectPublicKeyInfo ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY"). */
static EVP_PKEY *decode_public_pem(const struct file_buffer *buf)
{
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *ctx =
        OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    if (ctx == NULL)
        return NULL;
    const unsigned char *data = (const unsigned char *)buf->data;
    size_t left = buf->len;
    if (OSSL_DECODER_from_data(ctx, &data, &left) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(ctx);
    return pkey;
}

/* Rejects PEM content that this tool does not read, naming the command that converts it. */
static bool pem_is_unsupported(const struct file_buffer *buf, const char *path, struct error *err)
{
    if (strstr(buf->data, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
        strstr(buf->data, "Proc-Type: 4,ENCRYPTED") != NULL) {
        error_set(err,
                  "--key %s: the private key is encrypted, which is not supported; write "
                  "an unencrypted copy with: openssl pkey -in %s -out NEWFILE",
                  path, path);
        return true;
    }
    if (strstr(buf->data, "-----BEGIN CERTIFICATE-----") != NULL) {
        error_set(err,
                  "--key %s: the file is a certificate; extract its public key with: "
                  "openssl x509 -in %s -pubkey -noout",
                  path, path);
        return true;
    }
    return false;
}

static enum key_source_status load_pem(const struct file_buffer *buf, const char *path,
                                       const char *kid, const char *alg, struct jwk_public *out,
                                       struct error *err)
{
    if (pem_is_unsupported(buf, path, err))
        return KEY_SOURCE_INVALID;

    char detail[REASON_BYTES];
    BIO *bio = BIO_new_mem_buf(buf->data, (int)buf->len);
    if (bio == NULL) {
        error_set(err, "--key %s: out of memory", path);
        return KEY_SOURCE_IO;
    }
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, supply_no_passphrase, NULL);
    BIO_free(bio);
    if (pkey == NULL) {
        ERR_clear_error();
        pkey = decode_public_pem(buf);
    }
    if (pkey == NULL) {
        error_set(err, "--key %s: not a PEM private key, PEM public key or JSON JWK (%s)", path,
                  openssl_reason(detail, sizeof(detail)));
        return KEY_SOURCE_INVALID;
    }

    enum jwk_reject verdict = jwk_from_pkey(pkey, kid, alg, out, detail, sizeof(detail));
    EVP_PKEY_free(pkey); /* The private half, if any, is not needed past this point. */
    if (verdict != JWK_OK) {
        error_set(err, "--key %s: the key cannot be published: %s", path, detail);
        return KEY_SOURCE_INVALID;
    }
    return KEY_SOURCE_OK;
}

/* Names the first private member of jwk, or returns NULL when it has none. */
static const char *find_private_member(const json_t *jwk)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++) {
        if (json_object_get(jwk, private_members[i]) != NULL)
            return private_members[i];
    }
    return NULL;
}

static enum key_source_status check_jwk_shape(const json_t *jwk, const char *path,
                                              struct error *err)
{
    if (!json_is_object(jwk)) {
        error_set(err, "--key %s: the JSON is not an object; expected one public JWK", path);
        return KEY_SOURCE_INVALID;
    }
    if (json_object_get(jwk, "keys") != NULL) {
        error_set(err, "--key %s: the file is a JWK set; give one JWK per --key file", path);
        return KEY_SOURCE_INVALID;
    }
    const char *member = find_private_member(jwk);
    if (member != NULL) {
        error_set(err,
                  "--key %s: the JWK has the private member \"%s\", so it is a private key "
                  "and was rejected; give its public JWK, or the key as a PEM file, from "
                  "which only the public half is sent",
                  path, member);
        return KEY_SOURCE_INVALID;
    }
    const char *use = json_string_value(json_object_get(jwk, "use"));
    if (use != NULL && strcmp(use, "sig") != 0) {
        error_set(err,
                  "--key %s: the JWK has \"use\": \"%s\"; only signing keys (\"sig\") can "
                  "be published",
                  path, use);
        return KEY_SOURCE_INVALID;
    }
    return KEY_SOURCE_OK;
}

static enum key_source_status load_jwk(const struct file_buffer *buf, const char *path,
                                       const char *kid, const char *alg, struct jwk_public *out,
                                       struct error *err)
{
    json_error_t json_error;
    json_t *jwk = json_loadb(buf->data, buf->len, JSON_REJECT_DUPLICATES, &json_error);
    if (jwk == NULL) {
        error_set(err, "--key %s: invalid JSON at line %d, column %d: %s", path, json_error.line,
                  json_error.column, json_error.text);
        return KEY_SOURCE_INVALID;
    }
    /* NOTE: jansson frees the parsed member strings without wiping them, so the private members
     * of a rejected private JWK stay in freed heap memory. The file buffer itself is wiped. */
    enum key_source_status status = check_jwk_shape(jwk, path, err);
    char reason[REASON_BYTES];
    EVP_PKEY *pkey = NULL;
    if (status == KEY_SOURCE_OK && jwk_to_pkey(jwk, &pkey, reason, sizeof(reason)) != JWK_OK) {
        error_set(err, "--key %s: the JWK is not a usable public key: %s", path, reason);
        status = KEY_SOURCE_INVALID;
    }
    if (status == KEY_SOURCE_OK) {
        /* The file's own kid and alg apply unless the command line names others. */
        if (kid == NULL)
            kid = json_string_value(json_object_get(jwk, "kid"));
        if (alg == NULL)
            alg = json_string_value(json_object_get(jwk, "alg"));
        if (jwk_from_pkey(pkey, kid, alg, out, reason, sizeof(reason)) != JWK_OK) {
            error_set(err, "--key %s: the key cannot be published: %s", path, reason);
            status = KEY_SOURCE_INVALID;
        }
    }
    EVP_PKEY_free(pkey);
    json_decref(jwk);
    return status;
}

static bool looks_like_json(const struct file_buffer *buf)
{
    size_t i = 0;
    while (i < buf->len && strchr(" \t\r\n", buf->data[i]) != NULL)
        i++;
    return i < buf->len && buf->data[i] == '{';
}

enum key_source_status key_source_load(const char *path, const char *kid, const char *alg,
                                       struct jwk_public *out, struct error *err)
{
    memset(out, 0, sizeof(*out));
    struct file_buffer buf;
    enum key_source_status status = read_key_file(path, &buf, err);
    if (status != KEY_SOURCE_OK)
        return status;
    if (looks_like_json(&buf))
        status = load_jwk(&buf, path, kid, alg, out, err);
    else
        status = load_pem(&buf, path, kid, alg, out, err);
    file_buffer_dispose(&buf);
    return status;
}
