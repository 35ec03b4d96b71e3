#include "config_redis.h"

#include <stdlib.h>
#include <string.h>

struct tls_string {
    const char *member;
    const char *env;
    char **value;
};

#define TLS_STRING_COUNT 4

static void tls_strings(struct redis_settings *redis, struct tls_string *out)
{
    const struct tls_string table[TLS_STRING_COUNT] = {
        {"tls_ca_file", "KCHUB_REDIS_TLS_CA_FILE", &redis->tls_ca_file},
        {"tls_server_name", "KCHUB_REDIS_TLS_SERVER_NAME", &redis->tls_server_name},
        {"tls_cert_file", "KCHUB_REDIS_TLS_CERT_FILE", &redis->tls_cert_file},
        {"tls_key_file", "KCHUB_REDIS_TLS_KEY_FILE", &redis->tls_key_file},
    };
    memcpy(out, table, sizeof(table));
}

/* Stores a copy of value, or NULL for an empty value, so "" turns a setting off. */
static int store_string(char **target, const char *value, struct error *err)
{
    char *copy = NULL;
    if (value[0] != '\0' && (copy = strdup(value)) == NULL) {
        error_set(err, "out of memory");
        return -1;
    }
    free(*target);
    *target = copy;
    return 0;
}

static int file_boolean(json_t *section, const char *member, bool *out, struct error *err)
{
    json_t *value = json_object_get(section, member);
    if (value == NULL)
        return 0;
    if (!json_is_boolean(value)) {
        error_set(err, "invalid setting redis.%s: expected true or false", member);
        return -1;
    }
    *out = json_is_true(value);
    return 0;
}

int config_redis_read_file(json_t *section, struct redis_settings *redis, bool *skip_access_check,
                           struct error *err)
{
    if (section == NULL)
        return 0;
    struct tls_string strings[TLS_STRING_COUNT];
    tls_strings(redis, strings);
    for (size_t i = 0; i < TLS_STRING_COUNT; i++) {
        json_t *value = json_object_get(section, strings[i].member);
        if (value == NULL)
            continue;
        if (!json_is_string(value)) {
            error_set(err, "invalid setting redis.%s: expected a string", strings[i].member);
            return -1;
        }
        if (store_string(strings[i].value, json_string_value(value), err) != 0)
            return -1;
    }
    bool verify = !redis->tls_skip_verify, check = !*skip_access_check;
    if (file_boolean(section, "tls_verify", &verify, err) != 0 ||
        file_boolean(section, "check_access", &check, err) != 0)
        return -1;
    redis->tls_skip_verify = !verify;
    *skip_access_check = !check;
    return 0;
}

static int env_boolean(const char *(*lookup)(const char *name), const char *name, bool *out,
                       struct error *err)
{
    const char *value = lookup(name);
    if (value == NULL)
        return 0;
    if (strcmp(value, "true") == 0) {
        *out = true;
    } else if (strcmp(value, "false") == 0) {
        *out = false;
    } else {
        error_set(err, "invalid setting %s: expected true or false, got \"%.20s\"", name, value);
        return -1;
    }
    return 0;
}

static int check_combination(const char *url, const struct redis_settings *redis, struct error *err)
{
    if ((redis->tls_cert_file == NULL) != (redis->tls_key_file == NULL)) {
        error_set(err,
                  "invalid setting redis.%s: a TLS client certificate needs its key; set "
                  "both redis.tls_cert_file (KCHUB_REDIS_TLS_CERT_FILE) and redis.tls_key_file "
                  "(KCHUB_REDIS_TLS_KEY_FILE), or neither",
                  redis->tls_cert_file == NULL ? "tls_cert_file" : "tls_key_file");
        return -1;
    }
    bool tls_set = redis->tls_ca_file != NULL || redis->tls_server_name != NULL ||
                   redis->tls_cert_file != NULL || redis->tls_skip_verify;
    if (tls_set && strncmp(url, "rediss://", 9) != 0) {
        error_set(err,
                  "invalid setting redis.url (KCHUB_REDIS_URL): TLS settings are given but "
                  "the URL does not start with rediss://; use rediss:// to connect with TLS, or "
                  "remove the redis.tls_* settings");
        return -1;
    }
    return 0;
}

int config_redis_read_env(const char *(*lookup)(const char *name), const char *url,
                          struct redis_settings *redis, bool *skip_access_check, struct error *err)
{
    struct tls_string strings[TLS_STRING_COUNT];
    tls_strings(redis, strings);
    for (size_t i = 0; i < TLS_STRING_COUNT; i++) {
        const char *value = lookup(strings[i].env);
        if (value != NULL && store_string(strings[i].value, value, err) != 0)
            return -1;
    }
    bool verify = !redis->tls_skip_verify, check = !*skip_access_check;
    if (env_boolean(lookup, "KCHUB_REDIS_TLS_VERIFY", &verify, err) != 0 ||
        env_boolean(lookup, "KCHUB_REDIS_CHECK_ACCESS", &check, err) != 0)
        return -1;
    redis->tls_skip_verify = !verify;
    *skip_access_check = !check;
    return check_combination(url, redis, err);
}
