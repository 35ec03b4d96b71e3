/* The start-up check of the Redis settings: connect (TLS, AUTH, CLIENT SETNAME), then probe
 * every namespace's names with the commands the hub uses, so that a wrong password, certificate,
 * server name, URL scheme or ACL stops the hub at start with a message naming the setting, the
 * key and the missing permission. A refused or timed-out connection is not a setting error: the
 * hub starts and the stream thread keeps retrying. Every probe is allowed by the access string
 * "-@all +@fast +@pubsub +@keyspace +@string +@read +@write +@scripting -@dangerous" (Redis 7.0
 * command categories) and changes no data. */
#ifndef KCHUB_REDIS_CHECK_H
#define KCHUB_REDIS_CHECK_H

#include "error.h"
#include "namespace.h"
#include "redis_conn.h"

#include <stdbool.h>
#include <stddef.h>

enum redis_check_result {
    REDIS_CHECK_OK,
    REDIS_CHECK_UNREACHABLE, /* no answer yet, or a failure that a retry may clear */
    REDIS_CHECK_REJECTED,    /* Redis rejected the credentials, certificates or ACL */
};

/* Connects once with settings and, when check_access, probes the names of every namespace in
 * list. Logs the outcome: an error naming the cause for REDIS_CHECK_REJECTED, a warning for
 * REDIS_CHECK_UNREACHABLE. Sets *check_pending when the access check still has to run on the
 * first connection that succeeds (redis_check_access). */
enum redis_check_result redis_check_start(const struct redis_settings *settings,
                                          struct hub_namespace *const *list, size_t count,
                                          bool check_access, bool *check_pending);

/* Probes, on the connected conn, that the user may run TIME, read each namespace's stream
 * (XINFO STREAM, XRANGE, XREAD), write it (XADD, XTRIM) and use its logout channel (SUBSCRIBE).
 * Returns REDIS_CHECK_OK, REDIS_CHECK_REJECTED with err naming the key, the command and the
 * permission, or REDIS_CHECK_UNREACHABLE with err set when the connection failed. */
enum redis_check_result redis_check_access(struct redis_conn *conn, const char *username,
                                           struct hub_namespace *const *list, size_t count,
                                           struct error *err);

#endif
