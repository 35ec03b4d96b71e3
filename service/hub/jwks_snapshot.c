#include "jwks_snapshot.h"

#include "b64url.h"

#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* 18 bytes of SHA-256 give 24 base64url characters: collisions are out of reach for a cache tag. */
#define ETAG_HASH_BYTES 18

struct jwks_snapshot {
    atomic_uint references;
    char etag[ETAG_HASH_BYTES * 2 + 3];
    struct MHD_Response *ok;
    struct MHD_Response *not_modified;
};

static int add_common_headers(struct MHD_Response *response, const char *etag,
                              const char *cache_control)
{
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, etag) != MHD_YES)
        return -1;
    if (cache_control != NULL && cache_control[0] != '\0' &&
        MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, cache_control) != MHD_YES)
        return -1;
    return 0;
}

struct jwks_snapshot *jwks_snapshot_create(const char *body, size_t len, const char *cache_control)
{
    struct jwks_snapshot *snapshot = calloc(1, sizeof(*snapshot));
    if (snapshot == NULL)
        return NULL;
    atomic_init(&snapshot->references, 1);

    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)body, len, digest);
    snapshot->etag[0] = '"';
    size_t n = b64url_encode_to(digest, ETAG_HASH_BYTES, snapshot->etag + 1);
    snapshot->etag[n + 1] = '"';
    snapshot->etag[n + 2] = '\0';

    /* MHD copies the body, so the snapshot needs no buffer of its own. */
    snapshot->ok = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    /* The 304 is built over the same body, so that its Content-Length equals the 200's, as RFC
     * 9110 section 8.6 requires when one is sent; libmicrohttpd sends no body with a 304. */
    snapshot->not_modified =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (snapshot->ok == NULL || snapshot->not_modified == NULL ||
        MHD_add_response_header(snapshot->ok, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
            MHD_YES ||
        add_common_headers(snapshot->ok, snapshot->etag, cache_control) != 0 ||
        add_common_headers(snapshot->not_modified, snapshot->etag, cache_control) != 0) {
        jwks_snapshot_release(snapshot);
        return NULL;
    }
    return snapshot;
}

void jwks_snapshot_release(struct jwks_snapshot *snapshot)
{
    if (snapshot == NULL || atomic_fetch_sub(&snapshot->references, 1) != 1)
        return;
    if (snapshot->ok != NULL)
        MHD_destroy_response(snapshot->ok);
    if (snapshot->not_modified != NULL)
        MHD_destroy_response(snapshot->not_modified);
    free(snapshot);
}

const char *jwks_snapshot_etag(const struct jwks_snapshot *snapshot)
{
    return snapshot->etag;
}

bool jwks_snapshot_matches(const struct jwks_snapshot *snapshot, const char *if_none_match)
{
    const char *own = snapshot->etag;
    size_t own_len = strlen(own);
    const char *p = if_none_match;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        const char *end = p;
        if (*end == '"') {
            end = strchr(end + 1, '"');
            if (end == NULL)
                return false;
            end++;
        } else {
            while (*end != '\0' && *end != ',')
                end++;
        }
        if ((size_t)(end - p) == own_len && memcmp(p, own, own_len) == 0)
            return true;
        p = end;
    }
    return false;
}

struct MHD_Response *jwks_snapshot_response_ok(const struct jwks_snapshot *snapshot)
{
    return snapshot->ok;
}

struct MHD_Response *jwks_snapshot_response_not_modified(const struct jwks_snapshot *snapshot)
{
    return snapshot->not_modified;
}

void jwks_slot_init(struct jwks_slot *slot)
{
    pthread_mutex_init(&slot->lock, NULL);
    slot->current = NULL;
}

void jwks_slot_dispose(struct jwks_slot *slot)
{
    jwks_snapshot_release(slot->current);
    slot->current = NULL;
    pthread_mutex_destroy(&slot->lock);
}

void jwks_slot_publish(struct jwks_slot *slot, struct jwks_snapshot *snapshot)
{
    pthread_mutex_lock(&slot->lock);
    struct jwks_snapshot *previous = slot->current;
    slot->current = snapshot;
    pthread_mutex_unlock(&slot->lock);
    jwks_snapshot_release(previous);
}

struct jwks_snapshot *jwks_slot_acquire(struct jwks_slot *slot)
{
    pthread_mutex_lock(&slot->lock);
    struct jwks_snapshot *snapshot = slot->current;
    if (snapshot != NULL)
        atomic_fetch_add_explicit(&snapshot->references, 1, memory_order_relaxed);
    pthread_mutex_unlock(&slot->lock);
    return snapshot;
}
