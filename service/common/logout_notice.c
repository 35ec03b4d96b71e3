#include "logout_notice.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static json_t *string_or_null(const char *text)
{
    return text[0] != '\0' ? json_string(text) : json_null();
}

char *logout_notice_to_json(const struct logout_notice *n)
{
    json_t *object = json_object();
    if (object == NULL)
        return NULL;
    int failed = 0;
    failed |= json_object_set_new(object, "v", json_integer(1));
    failed |= json_object_set_new(object, "iss", json_string(n->iss));
    failed |= json_object_set_new(object, "sub", string_or_null(n->sub));
    failed |= json_object_set_new(object, "sid", string_or_null(n->sid));
    failed |= json_object_set_new(object, "jti", json_string(n->jti));
    failed |= json_object_set_new(object, "iat", json_integer(n->iat));
    failed |= json_object_set_new(object, "exp", n->exp != 0 ? json_integer(n->exp) : json_null());
    failed |= json_object_set_new(object, "revoke_offline_access",
                                  json_boolean(n->revoke_offline_access));
    failed |= json_object_set_new(object, "received_at_ms", json_integer(n->received_at_ms));
    char *text = failed == 0 ? json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(object);
    return text;
}

/* Copies the string member name into out (size LOGOUT_CLAIM_MAX_BYTES + 1). A null or absent
 * member leaves out empty when optional. */
static int copy_claim(json_t *object, const char *name, bool optional, char *out, char *reason,
                      size_t reason_len)
{
    json_t *value = json_object_get(object, name);
    out[0] = '\0';
    if ((value == NULL || json_is_null(value)) && optional)
        return 0;
    if (!json_is_string(value) || json_string_length(value) == 0 ||
        json_string_length(value) > LOGOUT_CLAIM_MAX_BYTES) {
        snprintf(reason, reason_len, "member \"%s\" must be a string of 1 to %d bytes", name,
                 LOGOUT_CLAIM_MAX_BYTES);
        return -1;
    }
    memcpy(out, json_string_value(value), json_string_length(value) + 1);
    return 0;
}

static int copy_integer(json_t *object, const char *name, bool optional, int64_t *out,
                        char *reason, size_t reason_len)
{
    json_t *value = json_object_get(object, name);
    *out = 0;
    if ((value == NULL || json_is_null(value)) && optional)
        return 0;
    if (!json_is_integer(value)) {
        snprintf(reason, reason_len, "member \"%s\" must be an integer", name);
        return -1;
    }
    *out = json_integer_value(value);
    return 0;
}

int logout_notice_parse(const char *json, size_t len, struct logout_notice *out, char *reason,
                        size_t reason_len)
{
    memset(out, 0, sizeof(*out));
    if (len > LOGOUT_NOTICE_MAX_BYTES) {
        snprintf(reason, reason_len, "the notice is %zu bytes, over the limit of %d", len,
                 LOGOUT_NOTICE_MAX_BYTES);
        return -1;
    }
    json_error_t error;
    json_t *object = json_loadb(json, len, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object(object)) {
        snprintf(reason, reason_len, "the notice is not a JSON object");
        json_decref(object);
        return -1;
    }
    int rc = -1;
    json_t *version = json_object_get(object, "v");
    if (!json_is_integer(version) || json_integer_value(version) != 1) {
        snprintf(reason, reason_len, "member \"v\" must be 1, the protocol version this build reads");
        goto done;
    }
    json_t *revoke = json_object_get(object, "revoke_offline_access");
    if (copy_claim(object, "iss", false, out->iss, reason, reason_len) != 0 ||
        copy_claim(object, "sub", true, out->sub, reason, reason_len) != 0 ||
        copy_claim(object, "sid", true, out->sid, reason, reason_len) != 0 ||
        copy_claim(object, "jti", false, out->jti, reason, reason_len) != 0 ||
        copy_integer(object, "iat", false, &out->iat, reason, reason_len) != 0 ||
        copy_integer(object, "exp", true, &out->exp, reason, reason_len) != 0 ||
        copy_integer(object, "received_at_ms", false, &out->received_at_ms, reason, reason_len) != 0)
        goto done;
    if (!json_is_boolean(revoke)) {
        snprintf(reason, reason_len, "member \"revoke_offline_access\" must be true or false");
        goto done;
    }
    out->revoke_offline_access = json_is_true(revoke);
    if (out->sub[0] == '\0' && out->sid[0] == '\0') {
        snprintf(reason, reason_len, "the notice has neither \"sub\" nor \"sid\"");
        goto done;
    }
    rc = 0;
done:
    json_decref(object);
    return rc;
}
