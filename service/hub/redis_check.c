#include "redis_check.h"

#include "log.h"
#include "redis_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "redis"
/* The logout notices go out on this channel; the constant lives with the logout code. */
#define CHECK_LOGOUT_CHANNEL_SUFFIX ":logout"
#define CHECK_CHANNEL_MAX_BYTES     (PROTOCOL_NAMESPACE_MAX_BYTES + 16)

/* One probe: a command the hub needs, run so that it changes nothing. */
struct probe {
    const char *action; /* "read the key app:jwks", for messages */
    int argc;
    const char **argv;
    const char *allowed_error; /* an error reply that still means the command was allowed */
};

static bool starts_with(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

static const char *hint_for(const char *reply)
{
    if (starts_with(reply, "NOPERM"))
        return "grant the user ~<namespace>:* &<namespace>:* and the commands of the access "
               "string in docs/redis.md";
    if (starts_with(reply, "NOAUTH") || starts_with(reply, "WRONGPASS"))
        return "set the user and password in the URL or KCHUB_REDIS_PASSWORD_FILE";
    if (starts_with(reply, "WRONGTYPE"))
        return "the key holds another type, not a stream; remove it or use another namespace";
    return "the hub needs Redis 7.0 or later with stream commands";
}

static bool reply_is_transient(const char *reply)
{
    return starts_with(reply, "LOADING") || starts_with(reply, "BUSY") ||
           starts_with(reply, "MASTERDOWN") || starts_with(reply, "TRYAGAIN");
}

static enum redis_check_result run_probe(struct redis_conn *conn, const char *username,
                                         const struct probe *probe, struct error *err)
{
    size_t lens[8];
    for (int i = 0; i < probe->argc; i++)
        lens[i] = strlen(probe->argv[i]);
    redisReply *reply = redis_conn_command(conn, probe->argc, probe->argv, lens, 0, err);
    if (reply == NULL) {
        error_prefix(err, "the access check could not %s", probe->action);
        return REDIS_CHECK_UNREACHABLE;
    }
    enum redis_check_result result = REDIS_CHECK_OK;
    if (reply->type == REDIS_REPLY_ERROR &&
        (probe->allowed_error == NULL || strstr(reply->str, probe->allowed_error) == NULL)) {
        result = reply_is_transient(reply->str) ? REDIS_CHECK_UNREACHABLE : REDIS_CHECK_REJECTED;
        bool subcommand = probe->argc > 1 && strcmp(probe->argv[0], "XINFO") == 0;
        error_set(err, "the Redis user \"%s\" may not %s: %s%s%s returned \"%s\"; %s",
                  username != NULL ? username : "default", probe->action, probe->argv[0],
                  subcommand ? " " : "", subcommand ? probe->argv[1] : "", reply->str,
                  hint_for(reply->str));
    }
    freeReplyObject(reply);
    return result;
}

/* Probes the stream key of ns: three reads and two writes that cannot change it (XADD with ID
 * 0-0 is rejected after the ACL check, XTRIM MINID 0 removes nothing). */
static enum redis_check_result check_stream(struct redis_conn *conn, const char *username,
                                            const struct hub_namespace *ns, struct error *err)
{
    const char *key = ns->stream_key;
    char read_action[128], write_action[128];
    snprintf(read_action, sizeof(read_action), "read the key %s", key);
    snprintf(write_action, sizeof(write_action), "write the key %s", key);
    const char *xinfo[] = {"XINFO", "STREAM", key};
    const char *xrange[] = {"XRANGE", key, "+", "-", "COUNT", "1"};
    const char *xread[] = {"XREAD", "COUNT", "1", "STREAMS", key, "$"};
    const char *xadd[] = {"XADD", key, "0-0", "v", "0"};
    const char *xtrim[] = {"XTRIM", key, "MINID", "0"};
    const struct probe probes[] = {
        {read_action, 3, xinfo, "no such key"}, {read_action, 6, xrange, NULL},
        {read_action, 6, xread, NULL},          {write_action, 5, xadd, "must be greater than 0-0"},
        {write_action, 4, xtrim, NULL},
    };
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        enum redis_check_result result = run_probe(conn, username, &probes[i], err);
        if (result != REDIS_CHECK_OK)
            return result;
    }
    return REDIS_CHECK_OK;
}

/* Probes the logout channel of ns with SUBSCRIBE, whose channel check is the same as PUBLISH's,
 * then leaves it again, which returns the connection to normal replies. */
static enum redis_check_result check_channel(struct redis_conn *conn, const char *username,
                                             const struct hub_namespace *ns, struct error *err)
{
    char channel[CHECK_CHANNEL_MAX_BYTES], action[CHECK_CHANNEL_MAX_BYTES + 32];
    snprintf(channel, sizeof(channel), "%s" CHECK_LOGOUT_CHANNEL_SUFFIX, ns->name);
    snprintf(action, sizeof(action), "publish to the channel %s", channel);
    const char *subscribe[] = {"SUBSCRIBE", channel};
    const char *unsubscribe[] = {"UNSUBSCRIBE", channel};
    struct probe probe = {action, 2, subscribe, NULL};
    enum redis_check_result result = run_probe(conn, username, &probe, err);
    if (result != REDIS_CHECK_OK)
        return result;
    probe.argv = unsubscribe;
    return run_probe(conn, username, &probe, err);
}

enum redis_check_result redis_check_access(struct redis_conn *conn, const char *username,
                                           struct hub_namespace *const *list, size_t count,
                                           struct error *err)
{
    const char *time[] = {"TIME"};
    const struct probe clock = {"read the server clock", 1, time, NULL};
    enum redis_check_result result = run_probe(conn, username, &clock, err);
    for (size_t i = 0; i < count && result == REDIS_CHECK_OK; i++) {
        result = check_stream(conn, username, list[i], err);
        if (result == REDIS_CHECK_OK)
            result = check_channel(conn, username, list[i], err);
    }
    return result;
}

/* Tells whether the server answers a PING over TLS (tls true) or plain text (tls false), with no
 * credentials and no certificate check. Run after a connect failed without an answer, because a
 * TLS port closes a plain-text connection and a plain-text port never answers a TLS handshake. */
static bool port_answers(const struct redis_settings *settings, bool tls)
{
    struct redis_settings probe = {
        .host = settings->host,
        .port = settings->port,
        .tls = tls,
        .tls_skip_verify = true,
        .connect_timeout_ms = settings->connect_timeout_ms,
        .command_timeout_ms = settings->command_timeout_ms,
    };
    struct redis_conn *conn = redis_conn_create(&probe);
    if (conn == NULL)
        return false;
    struct error ignored = {""};
    redis_conn_connect(conn, &ignored);
    enum redis_status status = redis_conn_status(conn);
    redis_conn_destroy(conn);
    /* Any answer to the PING, even NOAUTH, means the transport matched. */
    return status == REDIS_STATUS_OK || status == REDIS_STATUS_REJECTED ||
           status == REDIS_STATUS_REPLY_ERROR;
}

/* Sorts a failed connect into a setting error or a fault that a retry may clear. */
static enum redis_check_result classify_connect(const struct redis_settings *settings,
                                                const struct redis_conn *conn, struct error *err)
{
    enum redis_status status = redis_conn_status(conn);
    if (redis_status_is_configuration(status))
        return REDIS_CHECK_REJECTED;
    bool no_answer = status == REDIS_STATUS_IO || status == REDIS_STATUS_PROTOCOL ||
                     status == REDIS_STATUS_TIMEOUT;
    if (no_answer && port_answers(settings, !settings->tls)) {
        error_set(err, "Redis at %s %s; use a %s URL", redis_conn_endpoint(conn),
                  settings->tls ? "answers plain text, not TLS" : "expects TLS, not plain text",
                  settings->tls ? "redis://" : "rediss://");
        return REDIS_CHECK_REJECTED;
    }
    return REDIS_CHECK_UNREACHABLE;
}

static void log_result(enum redis_check_result result, const struct redis_conn *conn, size_t count,
                       bool checked, const struct error *err)
{
    if (result == REDIS_CHECK_REJECTED)
        log_error(MODULE, "Redis rejected the configured credentials, certificates or ACL: %s",
                  err->message);
    else if (result == REDIS_CHECK_UNREACHABLE)
        log_warn(MODULE,
                 "cannot check Redis at %s at start: %s; starting anyway, serving 503 "
                 "until the streams are read, and retrying",
                 redis_conn_endpoint(conn), err->message);
    else if (checked)
        log_info(MODULE,
                 "Redis at %s accepted the settings; the user may read and write the "
                 "names of all %zu namespaces",
                 redis_conn_endpoint(conn), count);
    else
        log_info(MODULE, "Redis at %s accepted the settings; the access check is off",
                 redis_conn_endpoint(conn));
}

enum redis_check_result redis_check_start(const struct redis_settings *settings,
                                          struct hub_namespace *const *list, size_t count,
                                          bool check_access, bool *check_pending)
{
    *check_pending = false;
    redis_tls_log_settings(settings, MODULE);
    struct redis_conn *conn = redis_conn_create(settings);
    if (conn == NULL) {
        log_error(MODULE, "out of memory creating the Redis connection");
        return REDIS_CHECK_UNREACHABLE;
    }
    struct error err = {""};
    enum redis_check_result result = REDIS_CHECK_OK;
    if (redis_conn_connect(conn, &err) != 0)
        result = classify_connect(settings, conn, &err);
    else if (check_access)
        result = redis_check_access(conn, settings->username, list, count, &err);
    log_result(result, conn, count, check_access, &err);
    *check_pending = result == REDIS_CHECK_UNREACHABLE && check_access;
    redis_conn_destroy(conn);
    return result;
}
