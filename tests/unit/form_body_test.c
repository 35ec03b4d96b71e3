/* Unit tests of form body parsing for back-channel logout. */
#include "form_body.h"
#include "unit.h"

#include <stdlib.h>

static void test_content_types(void)
{
    UNIT_CASE("content types");
    CHECK(form_content_type_matches("application/x-www-form-urlencoded"));
    CHECK(form_content_type_matches("application/x-www-form-urlencoded; charset=ISO-8859-1"));
    CHECK(form_content_type_matches("Application/X-WWW-Form-Urlencoded;charset=UTF-8"));
    CHECK(form_content_type_matches("  application/x-www-form-urlencoded ; a=b"));
    CHECK(!form_content_type_matches(NULL));
    CHECK(!form_content_type_matches("application/json"));
    CHECK(!form_content_type_matches("multipart/form-data; boundary=x"));
    CHECK(!form_content_type_matches("application/x-www-form-urlencodedx"));
}

static void expect_field(const char *body, const char *name, int found, const char *expected)
{
    char *value = NULL;
    size_t len = 0;
    CHECK_INT(form_field_find(body, strlen(body), name, &value, &len), found);
    if (found == 1) {
        CHECK_STR(value, expected);
        CHECK_INT(len, strlen(expected));
    }
    free(value);
}

static void test_fields(void)
{
    UNIT_CASE("fields");
    expect_field("logout_token=abc.def.ghi", "logout_token", 1, "abc.def.ghi");
    expect_field("a=1&logout_token=x%2Ey&b=2", "logout_token", 1, "x.y");
    expect_field("logout_token=a+b", "logout_token", 1, "a b");
    expect_field("logout_token=first&logout_token=second", "logout_token", 1, "first");
    expect_field("logout_token=", "logout_token", 1, "");
    expect_field("logout_token", "logout_token", 1, "");
    expect_field("xlogout_token=1&logout_tokenx=2", "logout_token", 0, NULL);
    expect_field("", "logout_token", 0, NULL);
    expect_field("logout_token=%zz", "logout_token", -1, NULL);
    expect_field("logout_token=%4", "logout_token", -1, NULL);
    expect_field("logout_token=a%00b", "logout_token", -1, NULL);
}

int main(void)
{
    test_content_types();
    test_fields();
    return unit_finish("form_body");
}
