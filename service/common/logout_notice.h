/* Logout notices (protocol version 1): what the hub sends to every instance after it validated a
 * back-channel logout token, on the channel <namespace>:logout and in the capped stream
 * <namespace>:logout:events. Built and read here only, so the hub, the ctl and the tests agree. */
#ifndef KCHUB_LOGOUT_NOTICE_H
#define KCHUB_LOGOUT_NOTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGOUT_CHANNEL_SUFFIX  ":logout"
#define LOGOUT_STREAM_SUFFIX   ":logout:events"
#define LOGOUT_REPLAY_SUFFIX   ":logout:jti:"
#define LOGOUT_NOTICE_MAX_BYTES 4096
#define LOGOUT_CLAIM_MAX_BYTES  256

/* The facts of one logout. Strings are NUL-terminated; an absent sub or sid is empty. */
struct logout_notice {
    char iss[LOGOUT_CLAIM_MAX_BYTES + 1];
    char sub[LOGOUT_CLAIM_MAX_BYTES + 1];
    char sid[LOGOUT_CLAIM_MAX_BYTES + 1];
    char jti[LOGOUT_CLAIM_MAX_BYTES + 1];
    int64_t iat;            /* seconds since the epoch */
    int64_t exp;            /* seconds since the epoch, 0 when the token had none */
    bool revoke_offline_access;
    int64_t received_at_ms; /* when the hub received the token, hub clock */
};

/* Serialises n as compact JSON with members v, iss, sub, sid, jti, iat, exp,
 * revoke_offline_access, received_at_ms (sub, sid and exp are null when absent). Returns a new
 * string the caller frees, or NULL when out of memory. */
char *logout_notice_to_json(const struct logout_notice *n);

/* Parses a notice written by logout_notice_to_json (or by any peer following protocol version 1).
 * Returns 0, or -1 with a one-sentence reason when the text is not a valid notice. */
int logout_notice_parse(const char *json, size_t len, struct logout_notice *out, char *reason,
                        size_t reason_len);

#endif
