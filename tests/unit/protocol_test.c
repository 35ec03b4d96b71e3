/* Unit tests of stream entry parsing (protocol version 1). */
#include "protocol.h"
#include "unit.h"

#include <stdlib.h>

#define LEASE_MAX_MS 3600000

static char jwk_json[1024];
/* NULL in the first pass of the cases; a cache in the second, which must not change a verdict. */
static struct jwk_cache *parse_cache;
static char jwk_kid[JWK_KID_MAX_BYTES + 1];

static void make_key(void)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    struct jwk_public key;
    char reason[256];
    CHECK(pkey != NULL);
    CHECK_INT(jwk_from_pkey(pkey, "test-kid", NULL, &key, reason, sizeof(reason)), JWK_OK);
    snprintf(jwk_json, sizeof(jwk_json), "%s", key.json);
    snprintf(jwk_kid, sizeof(jwk_kid), "%s", key.kid);
    jwk_public_dispose(&key);
    EVP_PKEY_free(pkey);
}

/* Fields as name/value string pairs, ending with NULL. */
static enum event_reject parse(const char *const *pairs, struct key_event *event)
{
    struct protocol_field fields[64];
    size_t count = 0;
    for (; pairs[2 * count] != NULL; count++)
        fields[count] = (struct protocol_field){pairs[2 * count], strlen(pairs[2 * count]),
                                                pairs[2 * count + 1], strlen(pairs[2 * count + 1])};
    char reason[512] = "";
    enum event_reject verdict =
        key_event_parse(fields, count, LEASE_MAX_MS, parse_cache, event, reason, sizeof(reason));
    if (verdict != EVENT_OK)
        CHECK(reason[0] != '\0');
    return verdict;
}

static enum event_reject verdict_of(const char *const *pairs)
{
    struct key_event event;
    enum event_reject verdict = parse(pairs, &event);
    key_event_dispose(&event);
    return verdict;
}

static void test_valid_publish(void)
{
    UNIT_CASE("valid publish");
    const char *pairs[] = {"v", "1", "type", "publish", "instance", "app-1", "kid", jwk_kid,
                           "lease_ms", "60000", "jwk", jwk_json, "extra", "ignored", NULL};
    struct key_event event;
    CHECK_INT(parse(pairs, &event), EVENT_OK);
    CHECK_INT(event.type, KEY_EVENT_PUBLISH);
    CHECK_STR(event.instance, "app-1");
    CHECK_STR(event.kid, "test-kid");
    CHECK_INT(event.lease_ms, 60000);
    CHECK(event.key.json != NULL);
    CHECK(event.key.json != NULL && strstr(event.key.json, "\"kid\":\"test-kid\"") != NULL);
    key_event_dispose(&event);
}

static void test_valid_retire(void)
{
    UNIT_CASE("valid retire");
    const char *with_kid[] = {"v", "1", "type", "retire", "instance", "app-1", "kid", "k", NULL};
    const char *all_keys[] = {"v", "1", "type", "retire", "instance", "app-1", NULL};
    struct key_event event;
    CHECK_INT(parse(with_kid, &event), EVENT_OK);
    CHECK_STR(event.kid, "k");
    key_event_dispose(&event);
    CHECK_INT(parse(all_keys, &event), EVENT_OK);
    CHECK_STR(event.kid, "");
    key_event_dispose(&event);
}

static void test_header_rejections(void)
{
    UNIT_CASE("header rejections");
    const char *no_v[] = {"type", "retire", "instance", "a", NULL};
    const char *v2[] = {"v", "2", "type", "retire", "instance", "a", NULL};
    const char *no_type[] = {"v", "1", "instance", "a", NULL};
    const char *bad_type[] = {"v", "1", "type", "delete", "instance", "a", NULL};
    const char *no_instance[] = {"v", "1", "type", "retire", NULL};
    const char *bad_instance[] = {"v", "1", "type", "retire", "instance", "has space", NULL};
    const char *twice[] = {"v", "1", "v", "1", "type", "retire", "instance", "a", NULL};
    CHECK_INT(verdict_of(no_v), EVENT_REJECT_MALFORMED);
    CHECK_INT(verdict_of(v2), EVENT_REJECT_VERSION);
    CHECK_INT(verdict_of(no_type), EVENT_REJECT_MALFORMED);
    CHECK_INT(verdict_of(bad_type), EVENT_REJECT_MALFORMED);
    CHECK_INT(verdict_of(no_instance), EVENT_REJECT_MALFORMED);
    CHECK_INT(verdict_of(bad_instance), EVENT_REJECT_MALFORMED);
    CHECK_INT(verdict_of(twice), EVENT_REJECT_MALFORMED);
}

static void test_instance_kept_for_logs(void)
{
    UNIT_CASE("instance kept for logs");
    const char *pairs[] = {"v", "9", "type", "publish", "instance", "app-7", NULL};
    struct key_event event;
    CHECK_INT(parse(pairs, &event), EVENT_REJECT_VERSION);
    CHECK_STR(event.instance, "app-7");
    key_event_dispose(&event);
}

static void test_publish_rejections(void)
{
    UNIT_CASE("publish rejections");
    const char *no_kid[] = {"v", "1", "type", "publish", "instance", "a", "lease_ms", "60000",
                            "jwk", jwk_json, NULL};
    const char *no_lease[] = {"v", "1", "type", "publish", "instance", "a", "kid", jwk_kid,
                              "jwk", jwk_json, NULL};
    const char *bad_lease[] = {"v", "1", "type", "publish", "instance", "a", "kid", jwk_kid,
                               "lease_ms", "60s", "jwk", jwk_json, NULL};
    const char *short_lease[] = {"v", "1", "type", "publish", "instance", "a", "kid", jwk_kid,
                                 "lease_ms", "999", "jwk", jwk_json, NULL};
    const char *long_lease[] = {"v", "1", "type", "publish", "instance", "a", "kid", jwk_kid,
                                "lease_ms", "3600001", "jwk", jwk_json, NULL};
    const char *no_jwk[] = {"v", "1", "type", "publish", "instance", "a", "kid", jwk_kid,
                            "lease_ms", "60000", NULL};
    const char *bad_json[] = {"v", "1", "type", "publish", "instance", "a", "kid", jwk_kid,
                              "lease_ms", "60000", "jwk", "{\"kty\":", NULL};
    const char *mismatch[] = {"v", "1", "type", "publish", "instance", "a", "kid", "other",
                              "lease_ms", "60000", "jwk", jwk_json, NULL};
    CHECK_INT(verdict_of(no_kid), EVENT_REJECT_MALFORMED);
    CHECK_INT(verdict_of(no_lease), EVENT_REJECT_MALFORMED);
    CHECK_INT(verdict_of(bad_lease), EVENT_REJECT_MALFORMED);
    CHECK_INT(verdict_of(short_lease), EVENT_REJECT_LEASE);
    CHECK_INT(verdict_of(long_lease), EVENT_REJECT_LEASE);
    CHECK_INT(verdict_of(no_jwk), EVENT_REJECT_MALFORMED);
    CHECK_INT(verdict_of(bad_json), EVENT_REJECT_BAD_JSON);
    CHECK_INT(verdict_of(mismatch), EVENT_REJECT_KID_MISMATCH);
}

static void test_size_limits(void)
{
    UNIT_CASE("size limits");
    char *big = malloc(PROTOCOL_JWK_MAX_BYTES + 2);
    memset(big, ' ', PROTOCOL_JWK_MAX_BYTES + 1);
    big[PROTOCOL_JWK_MAX_BYTES + 1] = '\0';
    const char *large[] = {"v", "1", "type", "publish", "instance", "a", "kid", jwk_kid,
                           "lease_ms", "60000", "jwk", big, NULL};
    CHECK_INT(verdict_of(large), EVENT_REJECT_TOO_LARGE);
    free(big);

    const char *many[2 * (PROTOCOL_FIELD_MAX_COUNT + 2) + 1];
    for (int i = 0; i < 2 * (PROTOCOL_FIELD_MAX_COUNT + 2); i++)
        many[i] = "x";
    many[2 * (PROTOCOL_FIELD_MAX_COUNT + 2)] = NULL;
    CHECK_INT(verdict_of(many), EVENT_REJECT_TOO_LARGE);
}

static void test_jwk_reasons_mapped(void)
{
    UNIT_CASE("jwk reasons mapped");
    char with_d[1200];
    snprintf(with_d, sizeof(with_d), "%.*s,\"d\":\"AAAA\"}", (int)strlen(jwk_json) - 1, jwk_json);
    const char *pairs[] = {"v", "1", "type", "publish", "instance", "a", "kid", jwk_kid,
                           "lease_ms", "60000", "jwk", with_d, NULL};
    CHECK_INT(verdict_of(pairs), EVENT_REJECT_PRIVATE_MEMBER);
    CHECK_STR(event_reject_name(EVENT_REJECT_PRIVATE_MEMBER), "private_member");
    CHECK_STR(event_reject_name(EVENT_REJECT_FUTURE_ID), "future_id");
    CHECK_INT(event_reject_from_jwk(JWK_REJECT_USE_ENC), EVENT_REJECT_USE_ENC);
}

static void test_names_and_ids(void)
{
    UNIT_CASE("names and ids");
    CHECK(protocol_namespace_is_valid("my-cool-app-prod"));
    CHECK(protocol_namespace_is_valid("a.b_c"));
    CHECK(!protocol_namespace_is_valid(""));
    CHECK(!protocol_namespace_is_valid("-leading"));
    CHECK(!protocol_namespace_is_valid("with:colon"));
    CHECK(!protocol_namespace_is_valid("with/slash"));
    uint64_t ms = 0, seq = 0;
    CHECK_INT(protocol_stream_id_parse("1700000000000-3", &ms, &seq), 0);
    CHECK_INT(ms, 1700000000000LL);
    CHECK_INT(seq, 3);
    CHECK_INT(protocol_stream_id_parse("17000", &ms, &seq), -1);
    CHECK_INT(protocol_stream_id_parse("a-1", &ms, &seq), -1);
    CHECK_INT(protocol_stream_id_parse("1-", &ms, &seq), -1);
}

static void run_cases(void)
{
    test_valid_publish();
    test_valid_retire();
    test_header_rejections();
    test_instance_kept_for_logs();
    test_publish_rejections();
    test_size_limits();
    test_jwk_reasons_mapped();
}

int main(void)
{
    make_key();
    run_cases();
    parse_cache = jwk_cache_create(64);
    run_cases(); /* fills the cache */
    run_cases(); /* uses the cached verdicts */
    jwk_cache_destroy(parse_cache);
    test_names_and_ids();
    return unit_finish("protocol");
}
