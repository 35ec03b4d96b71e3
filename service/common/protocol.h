/* The Redis protocol between instances and hubs, version 1 (docs/protocol.md): the names under a
 * namespace and the fields of a key event in the stream <namespace>:jwks. Shared by the hub, the
 * ctl and the tests so both sides read and write one format. */
#ifndef KCHUB_PROTOCOL_H
#define KCHUB_PROTOCOL_H

#include "jwk.h"
#include "jwk_cache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTOCOL_VERSION             "1"
#define PROTOCOL_JWKS_STREAM_SUFFIX  ":jwks"
#define PROTOCOL_NAMESPACE_MAX_BYTES 64
#define PROTOCOL_INSTANCE_MAX_BYTES  128
#define PROTOCOL_JWK_MAX_BYTES       16384
#define PROTOCOL_FIELD_MAX_COUNT     32
#define PROTOCOL_LEASE_MIN_MS        1000

/* Why the hub rejected a stream entry. event_reject_name() gives stable snake_case names. The
 * JWK reasons mirror enum jwk_reject. */
enum event_reject {
    EVENT_OK = 0,
    EVENT_REJECT_MALFORMED,      /* missing, repeated or invalid field */
    EVENT_REJECT_TOO_LARGE,      /* a field over its size limit, or too many fields */
    EVENT_REJECT_VERSION,        /* v is not a version this build reads */
    EVENT_REJECT_LEASE,          /* lease_ms outside [PROTOCOL_LEASE_MIN_MS, the maximum] */
    EVENT_REJECT_BAD_JSON,       /* jwk is not valid JSON */
    EVENT_REJECT_KID_MISMATCH,   /* the entry's kid differs from the JWK's kid */
    EVENT_REJECT_PRIVATE_MEMBER, /* the JWK has a private member: a leaked private key */
    EVENT_REJECT_KTY,
    EVENT_REJECT_MISSING_MEMBER,
    EVENT_REJECT_KID,
    EVENT_REJECT_USE_ENC,
    EVENT_REJECT_USE,
    EVENT_REJECT_ALG,
    EVENT_REJECT_BAD_KEY,
    EVENT_REJECT_KID_CONFLICT,   /* kid already live with other key material */
    EVENT_REJECT_KID_OWNER,      /* kid already live for another instance */
    EVENT_REJECT_FUTURE_ID,      /* the entry ID lies ahead of the Redis clock */
    EVENT_REJECT_COUNT
};

const char *event_reject_name(enum event_reject reason);

/* Maps a JWK rejection to the matching event rejection. */
enum event_reject event_reject_from_jwk(enum jwk_reject reason);

enum key_event_type { KEY_EVENT_PUBLISH, KEY_EVENT_RETIRE };

/* One field of a stream entry, pointing into the caller's buffers. */
struct protocol_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* A parsed key event. */
struct key_event {
    enum key_event_type type;
    char instance[PROTOCOL_INSTANCE_MAX_BYTES + 1];
    char kid[JWK_KID_MAX_BYTES + 1]; /* empty on a retire of all the instance's keys */
    int64_t lease_ms;                /* publish only */
    struct jwk_public key;           /* publish only: the validated, normalised JWK */
};

/* Parses and validates the fields of one entry. lease_max_ms is the largest lease accepted.
 * cache, when not NULL, skips the validation of a JWK text that passed before. On
 * EVENT_OK fills *out (release with key_event_dispose). Otherwise writes a one-sentence reason
 * into reason and fills out->instance when the entry named a valid one, so the rejection can be
 * logged with it. */
enum event_reject key_event_parse(const struct protocol_field *fields, size_t count,
                                  int64_t lease_max_ms, struct jwk_cache *cache,
                                  struct key_event *out, char *reason, size_t reason_len);

void key_event_dispose(struct key_event *e);

/* A namespace is 1 to PROTOCOL_NAMESPACE_MAX_BYTES of [A-Za-z0-9._-], starting with a letter or
 * digit, because it appears both as a Redis key prefix and as an URL path segment. */
bool protocol_namespace_is_valid(const char *ns);

/* An instance id is 1 to PROTOCOL_INSTANCE_MAX_BYTES visible ASCII characters other than '"'
 * and '\\'. */
bool protocol_instance_is_valid(const char *instance, size_t len);

/* Splits a stream entry ID "ms-seq" into its parts. Returns 0, or -1 if it is not one. */
int protocol_stream_id_parse(const char *id, uint64_t *ms, uint64_t *seq);

#endif
