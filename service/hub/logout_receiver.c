#include "logout_receiver.h"

#include "b64url.h"
#include "clock.h"
#include "form_body.h"
#include "log.h"
#include "logout_token.h"
#include "realm_fetch.h"
#include "realm_keys.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "logout"
/* Characters of the logged hash of sub: enough to follow one user through the log. */
#define SUB_HASH_CHARS 12

struct logout_receiver {
    const char *ns;
    const struct logout_config *settings;
    struct logout_fanout *fanout;
    struct realm_keys *keys;
    struct logout_token_policy policy;
    struct logout_counters counters;
};

static const char *const request_reason_names[LOGOUT_REASON_COUNT] = {
    "replayed_jti", "missing_logout_token", "invalid_form", "unsupported_content_type",
    "body_too_large"};

const char *logout_request_reason_name(enum logout_request_reason reason)
{
    return reason < LOGOUT_REASON_COUNT ? request_reason_names[reason] : "unknown";
}

const struct logout_counters *logout_receiver_counters(const struct logout_receiver *r)
{
    return &r->counters;
}

static void count(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* Refreshes the realm keys if the interval allows, counting the fetches. */
static enum realm_keys_refresh refresh_keys(struct logout_receiver *r)
{
    enum realm_keys_refresh result = realm_keys_refresh_if_allowed(r->keys, clock_monotonic_ms());
    if (result == REALM_KEYS_REFRESHED)
        count(&r->counters.key_fetches_ok);
    else if (result == REALM_KEYS_FAILED)
        count(&r->counters.key_fetches_failed);
    return result;
}

struct logout_receiver *logout_receiver_create(const char *ns, const struct logout_config *settings,
                                               struct logout_fanout *fanout, struct error *err)
{
    struct logout_receiver *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        error_set(err, "out of memory");
        return NULL;
    }
    r->ns = ns;
    r->settings = settings;
    r->fanout = fanout;
    struct realm_fetch_settings fetch = {
        .issuer = settings->issuer,
        .jwks_url = settings->jwks_url,
        .ca_file = settings->ca_file,
        .connect_timeout_ms = REALM_FETCH_CONNECT_TIMEOUT_MS_DEFAULT,
        .total_timeout_ms = settings->fetch_timeout_ms,
    };
    if (fetch.connect_timeout_ms > fetch.total_timeout_ms)
        fetch.connect_timeout_ms = fetch.total_timeout_ms;
    r->keys = realm_keys_create(&fetch, settings->refresh_interval_ms, err);
    if (r->keys == NULL) {
        free(r);
        return NULL;
    }
    logout_token_policy_init(&r->policy, settings->issuer, settings->client_id);
    r->policy.accepted_algs = settings->algs;
    r->policy.clock_skew_ms = settings->clock_skew_ms;
    r->policy.max_age_ms = settings->max_age_ms;
    r->policy.require_exp = settings->require_exp;
    return r;
}

void logout_receiver_destroy(struct logout_receiver *r)
{
    if (r == NULL)
        return;
    realm_keys_destroy(r->keys);
    free(r);
}

void logout_receiver_prefetch(struct logout_receiver *r)
{
    enum realm_keys_refresh result = refresh_keys(r);
    if (result == REALM_KEYS_REFRESHED)
        log_info(MODULE, "namespace %s: fetched the signing keys of issuer %s", r->ns,
                 r->settings->issuer);
}

static void answer_with(struct logout_answer *answer, unsigned status, const char *error,
                        const char *format, ...) __attribute__((format(printf, 4, 5)));

static void answer_with(struct logout_answer *answer, unsigned status, const char *error,
                        const char *format, ...)
{
    answer->status = status;
    answer->error = error;
    va_list args;
    va_start(args, format);
    vsnprintf(answer->description, sizeof(answer->description), format, args);
    va_end(args);
}

/* Validates token, refetching the realm keys once when its kid is unknown. */
static enum logout_token_result validate(struct logout_receiver *r, const char *token,
                                         size_t token_len, struct logout_token_claims *claims,
                                         const char **description)
{
    struct realm_key_set *set = realm_keys_acquire(r->keys);
    enum logout_token_result result = logout_token_validate(
        token, token_len, &r->policy, set, clock_realtime_ms(), claims, description);
    realm_key_set_release(set);
    if (result != LOGOUT_TOKEN_UNKNOWN_KID)
        return result;

    enum realm_keys_refresh refresh = refresh_keys(r);
    if (refresh != REALM_KEYS_REFRESHED)
        return result;
    log_info(MODULE, "namespace %s: refetched the signing keys of issuer %s for an unknown kid",
             r->ns, r->settings->issuer);
    logout_token_claims_dispose(claims);
    set = realm_keys_acquire(r->keys);
    result = logout_token_validate(token, token_len, &r->policy, set, clock_realtime_ms(), claims,
                                   description);
    realm_key_set_release(set);
    return result;
}

static void copy_claim(char *out, const char *value)
{
    snprintf(out, LOGOUT_CLAIM_MAX_BYTES + 1, "%s", value != NULL ? value : "");
}

static void hash_sub(const char *sub, char *out, size_t out_len)
{
    if (sub == NULL) {
        snprintf(out, out_len, "-");
        return;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)sub, strlen(sub), digest);
    char encoded[64];
    b64url_encode_to(digest, sizeof(digest), encoded);
    snprintf(out, out_len, "%.*s", SUB_HASH_CHARS, encoded);
}

/* Claims and fans out a validated token's notice, and fills the response. */
static void deliver(struct logout_receiver *r, const struct logout_token_claims *claims,
                    struct logout_answer *answer)
{
    struct logout_notice notice;
    memset(&notice, 0, sizeof(notice));
    copy_claim(notice.iss, claims->iss);
    copy_claim(notice.sub, claims->sub);
    copy_claim(notice.sid, claims->sid);
    copy_claim(notice.jti, claims->jti);
    notice.iat = claims->iat;
    notice.exp = claims->exp;
    notice.revoke_offline_access = claims->revoke_offline_access;
    notice.received_at_ms = clock_realtime_ms();

    char sub_hash[SUB_HASH_CHARS + 1], stream_id[64] = "";
    hash_sub(claims->sub, sub_hash, sizeof(sub_hash));
    const char *sid = claims->sid != NULL ? claims->sid : "-";
    /* Any replica accepts a token until iat + max_age + skew on its own clock, and replica clocks
     * may differ by the skew, so the claim lasts max_age plus twice the skew. */
    int64_t claim_ms = r->settings->max_age_ms + 2 * r->settings->clock_skew_ms;
    struct error err = {""};
    switch (logout_fanout_deliver(r->fanout, r->ns, &notice, claim_ms, r->settings->stream_max_len,
                                  stream_id, sizeof(stream_id), &err)) {
    case FANOUT_DELIVERED:
        count(&r->counters.delivered);
        answer->status = 200;
        log_info(MODULE, "logout delivered namespace=%s jti=%s sid=%s sub_hash=%s stream_id=%s",
                 r->ns, claims->jti, sid, sub_hash, stream_id);
        return;
    case FANOUT_REPLAYED:
        count(&r->counters.rejected_request[LOGOUT_REASON_REPLAYED_JTI]);
        answer_with(answer, 400, "invalid_request",
                    "replayed_jti: a logout token with this jti was already received");
        log_warn(MODULE, "logout rejected namespace=%s rule=replayed_jti jti=%s sid=%s", r->ns,
                 claims->jti, sid);
        return;
    case FANOUT_UNAVAILABLE:
        break;
    }
    count(&r->counters.unavailable);
    answer_with(answer, 503, "temporarily_unavailable",
                "the logout could not be handed to the application's instances; retry later");
    log_error(MODULE, "logout not delivered namespace=%s jti=%s sid=%s: %s", r->ns, claims->jti,
              sid, err.message);
}

void logout_receiver_note_oversized(struct logout_receiver *r, size_t body_max_bytes)
{
    count(&r->counters.rejected_request[LOGOUT_REASON_BODY_TOO_LARGE]);
    log_warn(MODULE, "logout rejected namespace=%s rule=body_too_large: the body is over %zu bytes",
             r->ns, body_max_bytes);
}

void logout_receiver_handle(struct logout_receiver *r, const char *content_type, const char *body,
                            size_t body_len, struct logout_answer *answer)
{
    memset(answer, 0, sizeof(*answer));
    if (!form_content_type_matches(content_type)) {
        answer_with(answer, 415, "invalid_request", "unsupported_content_type: expected "
                    "application/x-www-form-urlencoded with a logout_token field");
        count(&r->counters.rejected_request[LOGOUT_REASON_CONTENT_TYPE]);
        log_warn(MODULE, "logout rejected namespace=%s rule=unsupported_content_type", r->ns);
        return;
    }
    char *token = NULL;
    size_t token_len = 0;
    int found = form_field_find(body, body_len, "logout_token", &token, &token_len);
    if (found != 1) {
        enum logout_request_reason reason =
            found == 0 ? LOGOUT_REASON_MISSING_TOKEN : LOGOUT_REASON_INVALID_FORM;
        const char *rule = logout_request_reason_name(reason);
        count(&r->counters.rejected_request[reason]);
        answer_with(answer, 400, "invalid_request", "%s: the body must carry logout_token=<JWS> "
                    "in form encoding", rule);
        log_warn(MODULE, "logout rejected namespace=%s rule=%s", r->ns, rule);
        return;
    }
    struct logout_token_claims claims;
    const char *description = "";
    enum logout_token_result result = validate(r, token, token_len, &claims, &description);
    free(token);
    if (result == LOGOUT_TOKEN_OK) {
        deliver(r, &claims, answer);
    } else {
        const char *rule = logout_token_result_name(result);
        count(&r->counters.rejected_token[result]);
        answer_with(answer, result == LOGOUT_TOKEN_INTERNAL ? 500 : 400,
                    result == LOGOUT_TOKEN_INTERNAL ? "server_error" : "invalid_request", "%s: %s",
                    rule, description);
        log_warn(MODULE, "logout rejected namespace=%s rule=%s", r->ns, rule);
    }
    logout_token_claims_dispose(&claims);
}
