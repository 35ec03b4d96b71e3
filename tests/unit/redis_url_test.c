/* Unit tests of Redis URL parsing. */
#include "redis_url.h"
#include "unit.h"

static void test_full_url(void)
{
    UNIT_CASE("full url");
    struct redis_settings s = {0};
    struct error err = {""};
    CHECK_INT(redis_url_parse("rediss://kcc-app:p%40ss@cache.example:6380/2", &s, &err), 0);
    CHECK(s.tls);
    CHECK_STR(s.host, "cache.example");
    CHECK_INT(s.port, 6380);
    CHECK_STR(s.username, "kcc-app");
    CHECK_STR(s.password, "p@ss");
    CHECK_INT(s.database, 2);
    redis_settings_dispose(&s);
}

static void test_defaults(void)
{
    UNIT_CASE("defaults");
    struct redis_settings s = {0};
    struct error err = {""};
    CHECK_INT(redis_url_parse("redis://127.0.0.1", &s, &err), 0);
    CHECK(!s.tls);
    CHECK_INT(s.port, 6379);
    CHECK(s.username == NULL);
    CHECK(s.password == NULL);
    CHECK_INT(s.database, 0);
    redis_settings_dispose(&s);
}

static void test_password_only_and_ipv6(void)
{
    UNIT_CASE("password only and ipv6");
    struct redis_settings s = {0};
    struct error err = {""};
    CHECK_INT(redis_url_parse("redis://:secret@[::1]:7000", &s, &err), 0);
    CHECK(s.username == NULL);
    CHECK_STR(s.password, "secret");
    CHECK_STR(s.host, "::1");
    CHECK_INT(s.port, 7000);
    redis_settings_dispose(&s);
}

static void test_invalid_urls(void)
{
    UNIT_CASE("invalid urls");
    const char *bad[] = {
        "http://host", "redis://", "redis://host:0", "redis://host:99999", "redis://host:abc",
        "redis://host/x", "redis://[::1", "redis://u:bad%zz@host", "redis://host?tls=1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct redis_settings s = {0};
        struct error err = {""};
        CHECK_INT(redis_url_parse(bad[i], &s, &err), -1);
        CHECK(err.message[0] != '\0');
        CHECK(s.host == NULL && s.password == NULL);
    }
}

static void test_error_hides_password(void)
{
    UNIT_CASE("error hides password");
    struct redis_settings s = {0};
    struct error err = {""};
    CHECK_INT(redis_url_parse("redis://user:hunter2@host:notaport", &s, &err), -1);
    CHECK(strstr(err.message, "hunter2") == NULL);
}

int main(void)
{
    test_full_url();
    test_defaults();
    test_password_only_and_ipv6();
    test_invalid_urls();
    test_error_hides_password();
    return unit_finish("redis_url");
}
