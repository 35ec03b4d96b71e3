/* Unit tests of the key store: the fold of publish and retire events into the served key set. */
#include "key_store.h"
#include "unit.h"

#include <stdlib.h>

#define GRACE_MS 120000
#define LEASE_MS 60000

/* Builds a publish event with a hand-made normalised JWK; the store only compares the JSON. */
static struct key_event publish_event(const char *instance, const char *kid, const char *material)
{
    struct key_event event;
    memset(&event, 0, sizeof(event));
    event.type = KEY_EVENT_PUBLISH;
    snprintf(event.instance, sizeof(event.instance), "%s", instance);
    snprintf(event.kid, sizeof(event.kid), "%s", kid);
    event.lease_ms = LEASE_MS;
    char json[256];
    snprintf(json, sizeof(json), "{\"kty\":\"OKP\",\"kid\":\"%s\",\"use\":\"sig\",\"alg\":\"EdDSA\","
             "\"crv\":\"Ed25519\",\"x\":\"%s\"}", kid, material);
    event.key.kid = strdup(kid);
    event.key.alg = strdup("EdDSA");
    event.key.json = strdup(json);
    event.key.json_len = strlen(json);
    return event;
}

static struct key_event retire_event(const char *instance, const char *kid)
{
    struct key_event event;
    memset(&event, 0, sizeof(event));
    event.type = KEY_EVENT_RETIRE;
    snprintf(event.instance, sizeof(event.instance), "%s", instance);
    snprintf(event.kid, sizeof(event.kid), "%s", kid);
    return event;
}

static enum event_reject apply(struct key_store *store, int64_t at_ms, struct key_event event)
{
    char reason[256];
    enum event_reject verdict = key_store_apply(store, at_ms, &event, reason, sizeof(reason));
    if (verdict != EVENT_OK)
        CHECK(reason[0] != '\0');
    key_event_dispose(&event);
    return verdict;
}

static char *render(const struct key_store *store)
{
    size_t len = 0;
    char *body = key_store_render_jwks(store, &len);
    CHECK(body != NULL);
    CHECK_INT(body != NULL ? strlen(body) : 0, len);
    return body;
}

static void test_publish_and_order(void)
{
    UNIT_CASE("publish and order");
    struct key_store *store = key_store_create(GRACE_MS, 100);
    CHECK_INT(key_store_count(store), 0);
    char *empty = render(store);
    CHECK_STR(empty, "{\"keys\":[]}");
    free(empty);

    uint64_t version = key_store_version(store);
    CHECK_INT(apply(store, 1000, publish_event("b", "kid-b", "BBB")), EVENT_OK);
    CHECK_INT(apply(store, 1001, publish_event("a", "kid-a", "AAA")), EVENT_OK);
    CHECK_INT(key_store_count(store), 2);
    CHECK(key_store_version(store) != version);

    char *body = render(store);
    char *a = strstr(body, "kid-a"), *b = strstr(body, "kid-b");
    CHECK(a != NULL);
    CHECK(b != NULL);
    CHECK(a < b);
    free(body);
    CHECK_INT(key_store_next_deadline(store), 1000 + LEASE_MS);
    key_store_destroy(store);
}

static void test_renewal_extends_lease(void)
{
    UNIT_CASE("renewal extends lease");
    struct key_store *store = key_store_create(GRACE_MS, 100);
    apply(store, 1000, publish_event("a", "k", "AAA"));
    uint64_t version = key_store_version(store);
    CHECK_INT(apply(store, 30000, publish_event("a", "k", "AAA")), EVENT_OK);
    CHECK_INT(key_store_version(store), version);
    CHECK_INT(key_store_next_deadline(store), 30000 + LEASE_MS);
    CHECK_INT(key_store_expire(store, 1000 + LEASE_MS), 0);
    CHECK_INT(key_store_expire(store, 30000 + LEASE_MS), 1);
    CHECK_INT(key_store_count(store), 0);
    CHECK(key_store_version(store) != version);
    key_store_destroy(store);
}

static void test_lease_end_removes(void)
{
    UNIT_CASE("lease end removes");
    struct key_store *store = key_store_create(GRACE_MS, 100);
    apply(store, 1000, publish_event("a", "k", "AAA"));
    CHECK_INT(key_store_expire(store, 1000 + LEASE_MS - 1), 0);
    CHECK_INT(key_store_count(store), 1);
    CHECK_INT(key_store_expire(store, 1000 + LEASE_MS), 1);
    CHECK_INT(key_store_next_deadline(store), KEY_STORE_NO_DEADLINE);
    key_store_destroy(store);
}

static void test_retire_after_grace(void)
{
    UNIT_CASE("retire after grace");
    struct key_store *store = key_store_create(5000, 100);
    apply(store, 1000, publish_event("a", "k1", "AAA"));
    apply(store, 1000, publish_event("a", "k2", "BBB"));
    apply(store, 1000, publish_event("b", "k3", "CCC"));
    CHECK_INT(apply(store, 2000, retire_event("a", "k1")), EVENT_OK);
    CHECK_INT(key_store_count(store), 3);
    CHECK_INT(key_store_next_deadline(store), 7000);
    CHECK_INT(key_store_expire(store, 6999), 0);
    CHECK_INT(key_store_expire(store, 7000), 1);
    CHECK_INT(key_store_count(store), 2);

    /* A retire without kid covers every key of the instance and no other. */
    CHECK_INT(apply(store, 8000, retire_event("a", "")), EVENT_OK);
    CHECK_INT(key_store_expire(store, 13000), 1);
    CHECK_INT(key_store_count(store), 1);
    key_store_destroy(store);
}

static void test_publish_cancels_retire(void)
{
    UNIT_CASE("publish cancels retire");
    struct key_store *store = key_store_create(5000, 100);
    apply(store, 1000, publish_event("a", "k", "AAA"));
    apply(store, 2000, retire_event("a", "k"));
    CHECK_INT(apply(store, 3000, publish_event("a", "k", "AAA")), EVENT_OK);
    CHECK_INT(key_store_expire(store, 8000), 0);
    CHECK_INT(key_store_count(store), 1);
    key_store_destroy(store);
}

static void test_retire_unknown_kid(void)
{
    UNIT_CASE("retire unknown kid");
    struct key_store *store = key_store_create(5000, 100);
    apply(store, 1000, publish_event("a", "k", "AAA"));
    CHECK_INT(apply(store, 2000, retire_event("a", "other")), EVENT_OK);
    CHECK_INT(key_store_next_deadline(store), 1000 + LEASE_MS);
    key_store_destroy(store);
}

static void test_conflicts_first_wins(void)
{
    UNIT_CASE("conflicts first wins");
    struct key_store *store = key_store_create(GRACE_MS, 100);
    apply(store, 1000, publish_event("a", "k", "AAA"));
    CHECK_INT(apply(store, 2000, publish_event("a", "k", "ZZZ")), EVENT_REJECT_KID_CONFLICT);
    CHECK_INT(apply(store, 2000, publish_event("b", "k", "AAA")), EVENT_REJECT_KID_OWNER);
    CHECK_INT(apply(store, 2000, retire_event("b", "k")), EVENT_REJECT_KID_OWNER);
    char *body = render(store);
    CHECK(strstr(body, "AAA") != NULL);
    CHECK(strstr(body, "ZZZ") == NULL);
    free(body);
    /* The rejected renewals did not extend the first key's lease. */
    CHECK_INT(key_store_next_deadline(store), 1000 + LEASE_MS);
    key_store_destroy(store);
}

static void test_expired_kid_reusable(void)
{
    UNIT_CASE("expired kid reusable");
    struct key_store *store = key_store_create(GRACE_MS, 100);
    apply(store, 1000, publish_event("a", "k", "AAA"));
    /* Replay order: the old key's lease ended before the new entry, even before any expire. */
    CHECK_INT(apply(store, 1000 + LEASE_MS, publish_event("b", "k", "ZZZ")), EVENT_OK);
    char *body = render(store);
    CHECK(strstr(body, "ZZZ") != NULL);
    CHECK(strstr(body, "AAA") == NULL);
    free(body);
    key_store_destroy(store);
}

static void test_max_keys(void)
{
    UNIT_CASE("max keys");
    struct key_store *store = key_store_create(GRACE_MS, 2);
    CHECK_INT(apply(store, 1000, publish_event("a", "k1", "A")), EVENT_OK);
    CHECK_INT(apply(store, 1000, publish_event("a", "k2", "B")), EVENT_OK);
    CHECK_INT(apply(store, 1000, publish_event("a", "k3", "C")), EVENT_REJECT_TOO_LARGE);
    CHECK_INT(apply(store, 2000, publish_event("a", "k1", "A")), EVENT_OK);
    CHECK_INT(key_store_count(store), 2);
    key_store_destroy(store);
}

static void count_key(const struct key_view *key, void *context)
{
    int *count = context;
    CHECK(key->kid != NULL);
    CHECK(key->instance != NULL);
    CHECK(key->jwk_json != NULL);
    CHECK(key->lease_end_ms > key->published_ms);
    (*count)++;
}

static void test_foreach_views(void)
{
    UNIT_CASE("foreach views");
    struct key_store *store = key_store_create(GRACE_MS, 100);
    apply(store, 1000, publish_event("a", "k1", "A"));
    apply(store, 5000, publish_event("a", "k1", "A"));
    apply(store, 1000, publish_event("b", "k2", "B"));
    int count = 0;
    key_store_foreach(store, count_key, &count);
    CHECK_INT(count, 2);
    key_store_destroy(store);
}

int main(void)
{
    test_publish_and_order();
    test_renewal_extends_lease();
    test_lease_end_removes();
    test_retire_after_grace();
    test_publish_cancels_retire();
    test_retire_unknown_kid();
    test_conflicts_first_wins();
    test_expired_kid_reusable();
    test_max_keys();
    test_foreach_views();
    return unit_finish("key_store");
}
