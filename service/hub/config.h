/* The hub's settings: defaults, then a JSON config file, then environment variables, validated
 * once at start. Every invalid value is reported with the setting's name and the expected form. */
#ifndef KCHUB_CONFIG_H
#define KCHUB_CONFIG_H

#include "config_logout.h"
#include "error.h"
#include "log.h"
#include "redis_conn.h"

#include <stddef.h>
#include <stdint.h>

/* One served namespace and its optional back-channel logout settings. */
struct namespace_config {
    char *name;
    struct logout_config *logout; /* NULL: POST /<name>/backchannel-logout answers 404 */
};

struct hub_config {
    char *listen;
    int64_t http_threads;
    int64_t http_connection_limit;
    int64_t http_connection_timeout_s;
    enum log_level log_level;
    enum log_format log_format;
    char *redis_url;
    char *redis_password_file;
    struct redis_settings redis; /* from redis_url, the password sources and the redis section */
    bool redis_skip_access_check; /* redis.check_access false: no ACL check at start */
    int64_t lease_max_ms;
    int64_t retire_grace_ms;
    int64_t clock_ahead_max_ms;
    int64_t keys_max;
    char *cache_control;
    int64_t http_body_max_bytes;
    char *admin_listen;
    int64_t shutdown_drain_ms;           /* how long SIGTERM waits for open connections */
    int64_t degraded_not_ready_after_ms; /* 0: a hub that lost Redis stays ready */
    struct namespace_config *namespaces;
    size_t namespace_count;
};

/* Returns the value of an environment variable, or NULL. */
typedef const char *(*config_env_lookup)(const char *name);

/* Fills *out from the defaults, the file at path (NULL: none) and the variables lookup finds.
 * Returns 0, or -1 with err naming the setting, the expected form and the value found (never a
 * password). On failure *out holds nothing that needs disposing. */
int config_load(struct hub_config *out, const char *path, config_env_lookup lookup,
                struct error *err);

void config_dispose(struct hub_config *config);

/* Logs the effective settings at info level, without secrets. */
void config_log_summary(const struct hub_config *config);

#endif
