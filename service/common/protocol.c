#include "protocol.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reject_names[EVENT_REJECT_COUNT] = {
    [EVENT_OK] = "ok",
    [EVENT_REJECT_MALFORMED] = "malformed",
    [EVENT_REJECT_TOO_LARGE] = "too_large",
    [EVENT_REJECT_VERSION] = "version",
    [EVENT_REJECT_LEASE] = "lease",
    [EVENT_REJECT_BAD_JSON] = "bad_json",
    [EVENT_REJECT_KID_MISMATCH] = "kid_mismatch",
    [EVENT_REJECT_PRIVATE_MEMBER] = "private_member",
    [EVENT_REJECT_KTY] = "kty",
    [EVENT_REJECT_MISSING_MEMBER] = "missing_member",
    [EVENT_REJECT_KID] = "kid",
    [EVENT_REJECT_USE_ENC] = "use_enc",
    [EVENT_REJECT_USE] = "use",
    [EVENT_REJECT_ALG] = "alg",
    [EVENT_REJECT_BAD_KEY] = "bad_key",
    [EVENT_REJECT_KID_CONFLICT] = "kid_conflict",
    [EVENT_REJECT_KID_OWNER] = "kid_owner",
    [EVENT_REJECT_FUTURE_ID] = "future_id",
};

const char *event_reject_name(enum event_reject reason)
{
    if ((int)reason < 0 || reason >= EVENT_REJECT_COUNT)
        return "unknown";
    return reject_names[reason];
}

enum event_reject event_reject_from_jwk(enum jwk_reject reason)
{
    switch (reason) {
    case JWK_OK:
        return EVENT_OK;
    case JWK_REJECT_PRIVATE_MEMBER:
        return EVENT_REJECT_PRIVATE_MEMBER;
    case JWK_REJECT_KTY:
        return EVENT_REJECT_KTY;
    case JWK_REJECT_MISSING_MEMBER:
        return EVENT_REJECT_MISSING_MEMBER;
    case JWK_REJECT_KID:
        return EVENT_REJECT_KID;
    case JWK_REJECT_USE_ENC:
        return EVENT_REJECT_USE_ENC;
    case JWK_REJECT_USE:
        return EVENT_REJECT_USE;
    case JWK_REJECT_ALG:
        return EVENT_REJECT_ALG;
    case JWK_REJECT_NOT_OBJECT:
        return EVENT_REJECT_BAD_JSON;
    case JWK_REJECT_BAD_KEY:
    case JWK_REJECT_COUNT:
        break;
    }
    return EVENT_REJECT_BAD_KEY;
}

bool protocol_namespace_is_valid(const char *ns)
{
    size_t len = strlen(ns);
    if (len == 0 || len > PROTOCOL_NAMESPACE_MAX_BYTES || !isalnum((unsigned char)ns[0]))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)ns[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

bool protocol_instance_is_valid(const char *instance, size_t len)
{
    if (len == 0 || len > PROTOCOL_INSTANCE_MAX_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)instance[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static int parse_u64(const char *text, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i]))
            return -1;
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    *out = value;
    return 0;
}

int protocol_stream_id_parse(const char *id, uint64_t *ms, uint64_t *seq)
{
    const char *dash = strchr(id, '-');
    if (dash == NULL)
        return -1;
    if (parse_u64(id, (size_t)(dash - id), ms) != 0)
        return -1;
    return parse_u64(dash + 1, strlen(dash + 1), seq);
}

/* The fields of one entry, by name. Each points into the caller's buffers. */
struct entry_fields {
    const struct protocol_field *v, *type, *instance, *kid, *jwk, *lease_ms;
};

static const struct protocol_field **slot_for(struct entry_fields *f,
                                              const struct protocol_field *p)
{
    static const struct {
        const char *name;
        size_t offset;
    } known[] = {
        {"v", offsetof(struct entry_fields, v)},
        {"type", offsetof(struct entry_fields, type)},
        {"instance", offsetof(struct entry_fields, instance)},
        {"kid", offsetof(struct entry_fields, kid)},
        {"jwk", offsetof(struct entry_fields, jwk)},
        {"lease_ms", offsetof(struct entry_fields, lease_ms)},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (p->name_len == strlen(known[i].name) &&
            memcmp(p->name, known[i].name, p->name_len) == 0)
            return (const struct protocol_field **)((char *)f + known[i].offset);
    }
    return NULL;
}

static bool field_equals(const struct protocol_field *f, const char *text)
{
    return f->value_len == strlen(text) && memcmp(f->value, text, f->value_len) == 0;
}

static enum event_reject collect_fields(const struct protocol_field *fields, size_t count,
                                        struct entry_fields *out, char *reason, size_t reason_len)
{
    memset(out, 0, sizeof(*out));
    if (count > PROTOCOL_FIELD_MAX_COUNT) {
        snprintf(reason, reason_len, "entry has %zu fields, more than the limit of %d", count,
                 PROTOCOL_FIELD_MAX_COUNT);
        return EVENT_REJECT_TOO_LARGE;
    }
    for (size_t i = 0; i < count; i++) {
        const struct protocol_field **slot = slot_for(out, &fields[i]);
        if (slot == NULL)
            continue; /* Unknown fields are ignored, so version 1 can gain optional fields. */
        if (*slot != NULL) {
            snprintf(reason, reason_len, "field \"%.*s\" appears twice", (int)fields[i].name_len,
                     fields[i].name);
            return EVENT_REJECT_MALFORMED;
        }
        *slot = &fields[i];
    }
    return EVENT_OK;
}

static enum event_reject check_header(const struct entry_fields *f, struct key_event *out,
                                      char *reason, size_t reason_len)
{
    if (f->instance != NULL &&
        protocol_instance_is_valid(f->instance->value, f->instance->value_len))
        snprintf(out->instance, sizeof(out->instance), "%.*s", (int)f->instance->value_len,
                 f->instance->value);
    if (f->v == NULL) {
        snprintf(reason, reason_len, "field \"v\" (protocol version) is missing");
        return EVENT_REJECT_MALFORMED;
    }
    if (!field_equals(f->v, PROTOCOL_VERSION)) {
        snprintf(reason, reason_len,
                 "protocol version \"%.*s\" is not supported; this hub reads "
                 "version " PROTOCOL_VERSION,
                 (int)(f->v->value_len > 16 ? 16 : f->v->value_len), f->v->value);
        return EVENT_REJECT_VERSION;
    }
    if (f->instance == NULL || out->instance[0] == '\0') {
        snprintf(reason, reason_len,
                 "field \"instance\" is %s; expected 1 to %d visible ASCII "
                 "characters",
                 f->instance == NULL ? "missing" : "invalid", PROTOCOL_INSTANCE_MAX_BYTES);
        return EVENT_REJECT_MALFORMED;
    }
    if (f->type == NULL) {
        snprintf(reason, reason_len, "field \"type\" is missing; expected publish or retire");
        return EVENT_REJECT_MALFORMED;
    }
    if (field_equals(f->type, "publish")) {
        out->type = KEY_EVENT_PUBLISH;
    } else if (field_equals(f->type, "retire")) {
        out->type = KEY_EVENT_RETIRE;
    } else {
        snprintf(reason, reason_len, "field \"type\" is invalid; expected publish or retire");
        return EVENT_REJECT_MALFORMED;
    }
    return EVENT_OK;
}

static enum event_reject copy_kid(const struct protocol_field *kid, struct key_event *out,
                                  char *reason, size_t reason_len)
{
    if (kid->value_len == 0 || kid->value_len > JWK_KID_MAX_BYTES ||
        memchr(kid->value, '\0', kid->value_len) != NULL) {
        snprintf(reason, reason_len, "field \"kid\" must be 1 to %d bytes", JWK_KID_MAX_BYTES);
        return EVENT_REJECT_MALFORMED;
    }
    memcpy(out->kid, kid->value, kid->value_len);
    out->kid[kid->value_len] = '\0';
    return EVENT_OK;
}

static enum event_reject parse_lease(const struct protocol_field *lease, int64_t lease_max_ms,
                                     struct key_event *out, char *reason, size_t reason_len)
{
    uint64_t value = 0;
    if (lease == NULL) {
        snprintf(reason, reason_len, "field \"lease_ms\" is missing");
        return EVENT_REJECT_MALFORMED;
    }
    if (parse_u64(lease->value, lease->value_len, &value) != 0) {
        snprintf(reason, reason_len, "field \"lease_ms\" is not a decimal integer");
        return EVENT_REJECT_MALFORMED;
    }
    if (value < PROTOCOL_LEASE_MIN_MS || value > (uint64_t)lease_max_ms) {
        snprintf(reason, reason_len,
                 "lease_ms %" PRIu64 " is out of range; expected %d to %" PRId64, value,
                 PROTOCOL_LEASE_MIN_MS, lease_max_ms);
        return EVENT_REJECT_LEASE;
    }
    out->lease_ms = (int64_t)value;
    return EVENT_OK;
}

/* Checks that the JWK's kid equals the entry's kid field. */
static enum event_reject check_kid_match(struct key_event *out, char *reason, size_t reason_len)
{
    if (strcmp(out->key.kid, out->kid) == 0)
        return EVENT_OK;
    snprintf(reason, reason_len, "field \"kid\" does not match the JWK's kid");
    jwk_public_dispose(&out->key);
    return EVENT_REJECT_KID_MISMATCH;
}

static enum event_reject parse_jwk(const struct protocol_field *field, struct jwk_cache *cache,
                                   struct key_event *out, char *reason, size_t reason_len)
{
    if (field == NULL) {
        snprintf(reason, reason_len, "field \"jwk\" is missing on a publish entry");
        return EVENT_REJECT_MALFORMED;
    }
    if (field->value_len > PROTOCOL_JWK_MAX_BYTES) {
        snprintf(reason, reason_len, "field \"jwk\" is %zu bytes, over the limit of %d",
                 field->value_len, PROTOCOL_JWK_MAX_BYTES);
        return EVENT_REJECT_TOO_LARGE;
    }
    if (cache != NULL && jwk_cache_lookup(cache, field->value, field->value_len, &out->key))
        return check_kid_match(out, reason, reason_len);
    json_error_t json_error;
    json_t *jwk = json_loadb(field->value, field->value_len, JSON_REJECT_DUPLICATES, &json_error);
    if (jwk == NULL) {
        snprintf(reason, reason_len, "field \"jwk\" is not valid JSON: %s at offset %d",
                 json_error.text, json_error.position);
        return EVENT_REJECT_BAD_JSON;
    }
    enum jwk_reject verdict = jwk_normalize(jwk, &out->key, reason, reason_len);
    json_decref(jwk);
    if (verdict != JWK_OK)
        return event_reject_from_jwk(verdict);
    if (cache != NULL)
        jwk_cache_store(cache, field->value, field->value_len, &out->key);
    return check_kid_match(out, reason, reason_len);
}

enum event_reject key_event_parse(const struct protocol_field *fields, size_t count,
                                  int64_t lease_max_ms, struct jwk_cache *cache,
                                  struct key_event *out, char *reason, size_t reason_len)
{
    memset(out, 0, sizeof(*out));
    if (reason_len > 0)
        reason[0] = '\0';
    struct entry_fields f;
    enum event_reject verdict = collect_fields(fields, count, &f, reason, reason_len);
    if (verdict == EVENT_OK)
        verdict = check_header(&f, out, reason, reason_len);
    if (verdict != EVENT_OK)
        return verdict;

    if (f.kid != NULL) {
        verdict = copy_kid(f.kid, out, reason, reason_len);
    } else if (out->type == KEY_EVENT_PUBLISH) {
        snprintf(reason, reason_len, "field \"kid\" is missing on a publish entry");
        verdict = EVENT_REJECT_MALFORMED;
    }
    if (verdict != EVENT_OK || out->type == KEY_EVENT_RETIRE)
        return verdict;

    verdict = parse_lease(f.lease_ms, lease_max_ms, out, reason, reason_len);
    if (verdict == EVENT_OK)
        verdict = parse_jwk(f.jwk, cache, out, reason, reason_len);
    return verdict;
}

void key_event_dispose(struct key_event *e)
{
    jwk_public_dispose(&e->key);
}
