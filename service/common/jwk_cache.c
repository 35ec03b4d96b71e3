#include "jwk_cache.h"

#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct cache_entry {
    bool used;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    struct jwk_public key;
};

struct jwk_cache {
    struct cache_entry *entries;
    size_t capacity; /* a power of two */
    size_t used;
};

struct jwk_cache *jwk_cache_create(size_t capacity)
{
    size_t rounded = 16;
    while (rounded < capacity)
        rounded *= 2;
    struct jwk_cache *cache = calloc(1, sizeof(*cache));
    if (cache == NULL || (cache->entries = calloc(rounded, sizeof(*cache->entries))) == NULL) {
        free(cache);
        return NULL;
    }
    cache->capacity = rounded;
    return cache;
}

static void clear(struct jwk_cache *cache)
{
    for (size_t i = 0; i < cache->capacity; i++) {
        if (cache->entries[i].used)
            jwk_public_dispose(&cache->entries[i].key);
        cache->entries[i].used = false;
    }
    cache->used = 0;
}

void jwk_cache_destroy(struct jwk_cache *cache)
{
    if (cache == NULL)
        return;
    clear(cache);
    free(cache->entries);
    free(cache);
}

/* Returns the slot of digest, or the empty slot where it would go (linear probing). */
static struct cache_entry *slot_of(struct jwk_cache *cache, const unsigned char *digest)
{
    uint64_t start;
    memcpy(&start, digest, sizeof(start));
    for (size_t i = 0; i < cache->capacity; i++) {
        struct cache_entry *entry = &cache->entries[(start + i) & (cache->capacity - 1)];
        if (!entry->used || memcmp(entry->digest, digest, sizeof(entry->digest)) == 0)
            return entry;
    }
    return NULL; /* Full; jwk_cache_store keeps the table at most three quarters full. */
}

static bool copy_key(const struct jwk_public *from, struct jwk_public *to)
{
    memset(to, 0, sizeof(*to));
    to->kid = strdup(from->kid);
    to->alg = strdup(from->alg);
    to->json = malloc(from->json_len + 1);
    if (to->kid == NULL || to->alg == NULL || to->json == NULL) {
        jwk_public_dispose(to);
        return false;
    }
    memcpy(to->json, from->json, from->json_len + 1);
    to->json_len = from->json_len;
    memcpy(to->thumbprint, from->thumbprint, sizeof(to->thumbprint));
    return true;
}

bool jwk_cache_lookup(struct jwk_cache *cache, const char *text, size_t len,
                      struct jwk_public *out)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, len, digest);
    struct cache_entry *entry = slot_of(cache, digest);
    if (entry == NULL || !entry->used)
        return false;
    return copy_key(&entry->key, out);
}

void jwk_cache_store(struct jwk_cache *cache, const char *text, size_t len,
                     const struct jwk_public *key)
{
    if (cache->used + 1 > cache->capacity / 4 * 3)
        clear(cache);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, len, digest);
    struct cache_entry *entry = slot_of(cache, digest);
    if (entry == NULL || entry->used)
        return;
    if (!copy_key(key, &entry->key))
        return;
    memcpy(entry->digest, digest, sizeof(entry->digest));
    entry->used = true;
    cache->used++;
}
