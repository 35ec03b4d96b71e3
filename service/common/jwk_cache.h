/* A bounded cache of JWK texts that already passed jwk_normalize, keyed by the SHA-256 of the
 * exact text. Renewals repeat the same bytes every third of a lease, and validating an RSA key
 * runs OpenSSL's public-key check, so the fold validates each distinct text once. Not
 * thread-safe: one cache belongs to one thread. */
#ifndef KCHUB_JWK_CACHE_H
#define KCHUB_JWK_CACHE_H

#include "jwk.h"

#include <stdbool.h>
#include <stddef.h>

struct jwk_cache;

/* Creates a cache of up to capacity entries (rounded up to a power of two). NULL when out of
 * memory. When it fills up, it empties and starts over. */
struct jwk_cache *jwk_cache_create(size_t capacity);

void jwk_cache_destroy(struct jwk_cache *cache);

/* When text (len bytes) was stored before, fills *out with a copy of its normalised key (release
 * with jwk_public_dispose) and returns true. Returns false otherwise, or when out of memory. */
bool jwk_cache_lookup(struct jwk_cache *cache, const char *text, size_t len,
                      struct jwk_public *out);

/* Remembers that text normalises to key (copied). Out of memory only skips the entry. */
void jwk_cache_store(struct jwk_cache *cache, const char *text, size_t len,
                     const struct jwk_public *key);

#endif
