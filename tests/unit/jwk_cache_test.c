/* Unit tests of the cache of validated JWK texts. */
#include "jwk_cache.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

static struct jwk_public make_key(int n)
{
    struct jwk_public key;
    memset(&key, 0, sizeof(key));
    char kid[32], json[96];
    snprintf(kid, sizeof(kid), "kid-%d", n);
    snprintf(json, sizeof(json), "{\"kid\":\"%s\"}", kid);
    key.kid = strdup(kid);
    key.alg = strdup("EdDSA");
    key.json = strdup(json);
    key.json_len = strlen(json);
    snprintf(key.thumbprint, sizeof(key.thumbprint), "thumb-%d", n);
    return key;
}

static void test_store_and_lookup(void)
{
    UNIT_CASE("store and lookup");
    struct jwk_cache *cache = jwk_cache_create(16);
    struct jwk_public key = make_key(1), found;
    CHECK(!jwk_cache_lookup(cache, "text-1", 6, &found));
    jwk_cache_store(cache, "text-1", 6, &key);
    CHECK(jwk_cache_lookup(cache, "text-1", 6, &found));
    CHECK_STR(found.kid, "kid-1");
    CHECK_STR(found.json, key.json);
    CHECK_INT(found.json_len, key.json_len);
    CHECK_STR(found.thumbprint, "thumb-1");
    CHECK(found.json != key.json); /* a copy the caller owns */
    jwk_public_dispose(&found);
    CHECK(!jwk_cache_lookup(cache, "text-1 ", 7, &found));
    jwk_public_dispose(&key);
    jwk_cache_destroy(cache);
}

static void test_full_cache_starts_over(void)
{
    UNIT_CASE("full cache starts over");
    struct jwk_cache *cache = jwk_cache_create(16);
    char text[32];
    for (int i = 0; i < 100; i++) {
        struct jwk_public key = make_key(i);
        snprintf(text, sizeof(text), "text-%d", i);
        jwk_cache_store(cache, text, strlen(text), &key);
        jwk_public_dispose(&key);
    }
    struct jwk_public found;
    CHECK(jwk_cache_lookup(cache, "text-99", 7, &found));
    CHECK_STR(found.kid, "kid-99");
    jwk_public_dispose(&found);
    CHECK(!jwk_cache_lookup(cache, "text-0", 6, &found));
    jwk_cache_destroy(cache);
}

int main(void)
{
    test_store_and_lookup();
    test_full_cache_starts_over();
    return unit_finish("jwk_cache");
}
