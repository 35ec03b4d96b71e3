/* Unit tests of logout notice serialisation and parsing. */
#include "logout_notice.h"
#include "unit.h"

#include <stdlib.h>

static struct logout_notice sample(void)
{
    struct logout_notice n;
    memset(&n, 0, sizeof(n));
    snprintf(n.iss, sizeof(n.iss), "https://kc.example/realms/r");
    snprintf(n.sid, sizeof(n.sid), "session-1");
    snprintf(n.jti, sizeof(n.jti), "jti-1");
    n.iat = 1700000000;
    n.revoke_offline_access = true;
    n.received_at_ms = 1700000000123;
    return n;
}

static void test_round_trip(void)
{
    UNIT_CASE("round trip");
    struct logout_notice n = sample();
    char *json = logout_notice_to_json(&n);
    CHECK_STR(json, "{\"v\":1,\"iss\":\"https://kc.example/realms/r\",\"sub\":null,\"sid\":"
                    "\"session-1\",\"jti\":\"jti-1\",\"iat\":1700000000,\"exp\":null,"
                    "\"revoke_offline_access\":true,\"received_at_ms\":1700000000123}");
    struct logout_notice parsed;
    char reason[128];
    CHECK_INT(logout_notice_parse(json, strlen(json), &parsed, reason, sizeof(reason)), 0);
    CHECK_STR(parsed.sid, "session-1");
    CHECK_STR(parsed.sub, "");
    CHECK_INT(parsed.exp, 0);
    CHECK(parsed.revoke_offline_access);
    CHECK_INT(parsed.received_at_ms, 1700000000123LL);
    free(json);
}

static void expect_invalid(const char *json)
{
    struct logout_notice parsed;
    char reason[128] = "";
    CHECK_INT(logout_notice_parse(json, strlen(json), &parsed, reason, sizeof(reason)), -1);
    CHECK(reason[0] != '\0');
}

static void test_invalid_notices(void)
{
    UNIT_CASE("invalid notices");
    expect_invalid("[]");
    expect_invalid("{\"v\":2,\"iss\":\"i\",\"sid\":\"s\",\"jti\":\"j\",\"iat\":1,"
                   "\"revoke_offline_access\":false,\"received_at_ms\":1}");
    expect_invalid("{\"v\":1,\"sid\":\"s\",\"jti\":\"j\",\"iat\":1,\"revoke_offline_access\":false,"
                   "\"received_at_ms\":1}");
    expect_invalid("{\"v\":1,\"iss\":\"i\",\"jti\":\"j\",\"iat\":1,\"revoke_offline_access\":false,"
                   "\"received_at_ms\":1}");
    expect_invalid("{\"v\":1,\"iss\":\"i\",\"sid\":\"s\",\"jti\":\"j\",\"iat\":\"1\","
                   "\"revoke_offline_access\":false,\"received_at_ms\":1}");
    expect_invalid("{\"v\":1,\"iss\":\"i\",\"sid\":\"s\",\"jti\":\"j\",\"iat\":1,"
                   "\"revoke_offline_access\":\"yes\",\"received_at_ms\":1}");
    expect_invalid("{\"v\":1,\"v\":1}");
}

int main(void)
{
    test_round_trip();
    test_invalid_notices();
    return unit_finish("logout_notice");
}
