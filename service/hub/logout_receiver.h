/* One namespace's back-channel logout pipeline, independent of HTTP: read the form body, validate
 * the logout token (refetching the realm keys once on an unknown kid), claim and fan out the
 * notice through Redis, and build the response. Logs every outcome with the namespace, jti and
 * sid (sub only as a hash), never the token. Safe to call from several threads at once. */
#ifndef KCHUB_LOGOUT_RECEIVER_H
#define KCHUB_LOGOUT_RECEIVER_H

#include "config_logout.h"
#include "error.h"
#include "logout_fanout.h"
#include "logout_token.h"

#include <stdatomic.h>

#include <stddef.h>

#define LOGOUT_ANSWER_DESCRIPTION_BYTES 320

/* The response to send. A status of 200 has no body, and every other status sends
 * {"error": error, "error_description": description}. */
struct logout_answer {
    unsigned status;
    const char *error; /* static: invalid_request, temporarily_unavailable, ... */
    char description[LOGOUT_ANSWER_DESCRIPTION_BYTES];
};

/* Reasons for rejecting a request before or after token validation, besides the token rules of
 * enum logout_token_result. */
enum logout_request_reason {
    LOGOUT_REASON_REPLAYED_JTI,
    LOGOUT_REASON_MISSING_TOKEN,
    LOGOUT_REASON_INVALID_FORM,
    LOGOUT_REASON_CONTENT_TYPE,
    LOGOUT_REASON_BODY_TOO_LARGE,
    LOGOUT_REASON_COUNT
};

/* Outcome counters of one receiver, for the metrics. Any thread may read them. */
struct logout_counters {
    atomic_uint_fast64_t delivered;
    atomic_uint_fast64_t unavailable;
    atomic_uint_fast64_t rejected_token[LOGOUT_TOKEN_RESULT_COUNT]; /* by enum logout_token_result */
    atomic_uint_fast64_t rejected_request[LOGOUT_REASON_COUNT];
    atomic_uint_fast64_t key_fetches_ok;
    atomic_uint_fast64_t key_fetches_failed;
};

/* The stable name of a request reason ("replayed_jti", "missing_logout_token", ...). */
const char *logout_request_reason_name(enum logout_request_reason reason);

struct logout_receiver;

/* The receiver's counters, valid while it lives. */
const struct logout_counters *logout_receiver_counters(const struct logout_receiver *receiver);

/* Creates the receiver of namespace ns (borrowed, as are settings and fanout: they must outlive
 * it). Returns NULL with err set when out of memory. */
struct logout_receiver *logout_receiver_create(const char *ns, const struct logout_config *settings,
                                               struct logout_fanout *fanout, struct error *err);

void logout_receiver_destroy(struct logout_receiver *receiver);

/* Fetches the realm's keys once, so the first logout does not wait for them. A failure is logged
 * and leaves the set empty; the first token then triggers a fetch. */
void logout_receiver_prefetch(struct logout_receiver *receiver);

/* Logs and counts a POST whose body was over the size limit, which gets a 413 response. */
void logout_receiver_note_oversized(struct logout_receiver *receiver, size_t body_max_bytes);

/* Handles one POST: content_type is the request's Content-Type (NULL when absent) and body the
 * whole request body. Fills *answer. */
void logout_receiver_handle(struct logout_receiver *receiver, const char *content_type,
                            const char *body, size_t body_len, struct logout_answer *answer);

#endif
