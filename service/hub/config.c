#include "config.h"

#include "config_redis.h"
#include "protocol.h"
#include "redis_url.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_FILE_MAX_BYTES   (1024 * 1024)
#define PASSWORD_FILE_MAX_BYTES 4096
#define NAMESPACE_MAX_COUNT     1000
#define MODULE                  "config"

static const char *const top_members[] = {"listen", "http_threads", "http_connection_limit",
                                          "http_connection_timeout_s", "http_body_max_bytes",
                                          "admin_listen", "shutdown_drain_ms",
                                          "degraded_not_ready_after_ms",
                                          "log_level", "log_format",
                                          "redis", "keys", "jwks", "namespaces", NULL};
static const char *const redis_members[] = {"url", "password_file", "client_name",
                                            "connect_timeout_ms", "command_timeout_ms",
                                            CONFIG_REDIS_MEMBERS, NULL};
static const char *const keys_members[] = {"lease_max_ms", "retire_grace_ms",
                                           "clock_ahead_max_ms", "max_count", NULL};
static const char *const jwks_members[] = {"cache_control", NULL};
static const char *const namespace_members[] = {"name", "logout", NULL};

/* Where a value came from, for error messages: "KCHUB_LEASE_MAX_MS", for example. */
struct source {
    const char *name;
};

static int replace_string(char **target, const char *value, struct error *err)
{
    char *copy = strdup(value);
    if (copy == NULL) {
        error_set(err, "out of memory");
        return -1;
    }
    free(*target);
    *target = copy;
    return 0;
}

static int parse_integer(const char *text, struct source from, int64_t min, int64_t max,
                         int64_t *out, struct error *err)
{
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || errno != 0 || value < min || value > max) {
        error_set(err, "invalid setting %s: expected an integer from %lld to %lld, got \"%.40s\"",
                  from.name, (long long)min, (long long)max, text);
        return -1;
    }
    *out = value;
    return 0;
}

static bool header_value_is_valid(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p < 0x20 || *p > 0x7e)
            return false;
    }
    return true;
}

/* Checks that text is HOST:PORT or [IPV6]:PORT with a port from 0 to 65535 (0 picks a free one);
 * whether the host is an address of this machine is found out when binding. */
static int check_listen(const char *text, const char *setting, struct error *err)
{
    const char *colon = strrchr(text, ':');
    const char *port = colon != NULL ? colon + 1 : "";
    size_t host_len = colon != NULL ? (size_t)(colon - text) : 0;
    long value = -1;
    if (*port != '\0' && strspn(port, "0123456789") == strlen(port) && strlen(port) <= 5)
        value = strtol(port, NULL, 10);
    bool bracketed = host_len >= 2 && text[0] == '[' && text[host_len - 1] == ']';
    bool bare_v6 = host_len > 0 && memchr(text, ':', host_len) != NULL && !bracketed;
    if (host_len == 0 || value < 0 || value > 65535 || bare_v6) {
        error_set(err, "invalid setting %s: expected HOST:PORT with a port from 0 to 65535, as in "
                  "127.0.0.1:8080 or [::1]:8080, got \"%.80s\"", setting, text);
        return -1;
    }
    return 0;
}

static int check_members(json_t *object, const char *path, const char *const *allowed,
                         struct error *err)
{
    if (!json_is_object(object)) {
        error_set(err, "invalid setting %s: expected a JSON object", path);
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value) {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            error_set(err, "unknown setting \"%s%s%s\" in the config file; check its spelling",
                      path[0] != '\0' ? path : "", path[0] != '\0' ? "." : "", key);
            return -1;
        }
    }
    return 0;
}

/* Reads member name of object into *out when present. */
static int json_string_member(json_t *object, const char *path, const char *name, char **out,
                              struct error *err)
{
    json_t *value = json_object_get(object, name);
    if (value == NULL)
        return 0;
    if (!json_is_string(value)) {
        error_set(err, "invalid setting %s%s%s: expected a string", path, path[0] ? "." : "", name);
        return -1;
    }
    return replace_string(out, json_string_value(value), err);
}

static int json_integer_member(json_t *object, const char *path, const char *name, int64_t min,
                               int64_t max, int64_t *out, struct error *err)
{
    json_t *value = json_object_get(object, name);
    if (value == NULL)
        return 0;
    json_int_t number = json_is_integer(value) ? json_integer_value(value) : 0;
    if (!json_is_integer(value) || number < min || number > max) {
        error_set(err, "invalid setting %s%s%s: expected an integer from %lld to %lld", path,
                  path[0] ? "." : "", name, (long long)min, (long long)max);
        return -1;
    }
    *out = number;
    return 0;
}

struct string_setting {
    const char *section; /* "" for the top level */
    const char *name;
    const char *env;
    char **value;
};

struct integer_setting {
    const char *section;
    const char *name;
    const char *env;
    int64_t min;
    int64_t max;
    int64_t *value;
};

/* Settings read as strings before they are parsed; they live only while loading. */
struct loading {
    char *log_level;
    char *log_format;
    char *client_name;
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
};

#define STRING_SETTING_COUNT  8
#define INTEGER_SETTING_COUNT 12

static void string_settings(struct hub_config *c, struct loading *l, struct string_setting *out)
{
    const struct string_setting table[STRING_SETTING_COUNT] = {
        {"", "listen", "KCHUB_LISTEN", &c->listen},
        {"", "admin_listen", "KCHUB_ADMIN_LISTEN", &c->admin_listen},
        {"", "log_level", "KCHUB_LOG_LEVEL", &l->log_level},
        {"", "log_format", "KCHUB_LOG_FORMAT", &l->log_format},
        {"redis", "url", "KCHUB_REDIS_URL", &c->redis_url},
        {"redis", "password_file", "KCHUB_REDIS_PASSWORD_FILE", &c->redis_password_file},
        {"redis", "client_name", "KCHUB_REDIS_CLIENT_NAME", &l->client_name},
        {"jwks", "cache_control", "KCHUB_JWKS_CACHE_CONTROL", &c->cache_control},
    };
    memcpy(out, table, sizeof(table));
}

static void integer_settings(struct hub_config *c, struct loading *l, struct integer_setting *out)
{
    const struct integer_setting table[INTEGER_SETTING_COUNT] = {
        {"", "http_threads", "KCHUB_HTTP_THREADS", 1, 256, &c->http_threads},
        {"", "http_connection_limit", "KCHUB_HTTP_CONNECTION_LIMIT", 1, 1000000,
         &c->http_connection_limit},
        {"", "http_connection_timeout_s", "KCHUB_HTTP_CONNECTION_TIMEOUT_S", 1, 3600,
         &c->http_connection_timeout_s},
        {"", "http_body_max_bytes", "KCHUB_HTTP_BODY_MAX_BYTES", 1024, 16777216,
         &c->http_body_max_bytes},
        {"", "shutdown_drain_ms", "KCHUB_SHUTDOWN_DRAIN_MS", 0, 600000, &c->shutdown_drain_ms},
        {"", "degraded_not_ready_after_ms", "KCHUB_DEGRADED_NOT_READY_AFTER_MS", 0, 86400000,
         &c->degraded_not_ready_after_ms},
        {"redis", "connect_timeout_ms", "KCHUB_REDIS_CONNECT_TIMEOUT_MS", 100, 600000,
         &l->connect_timeout_ms},
        {"redis", "command_timeout_ms", "KCHUB_REDIS_COMMAND_TIMEOUT_MS", 100, 600000,
         &l->command_timeout_ms},
        {"keys", "lease_max_ms", "KCHUB_LEASE_MAX_MS", PROTOCOL_LEASE_MIN_MS, 86400000,
         &c->lease_max_ms},
        {"keys", "retire_grace_ms", "KCHUB_RETIRE_GRACE_MS", 0, 86400000, &c->retire_grace_ms},
        {"keys", "clock_ahead_max_ms", "KCHUB_CLOCK_AHEAD_MAX_MS", 0, 3600000,
         &c->clock_ahead_max_ms},
        {"keys", "max_count", "KCHUB_KEYS_MAX", 1, 10000000, &c->keys_max},
    };
    memcpy(out, table, sizeof(table));
}

static int set_defaults(struct hub_config *c, struct loading *l, struct error *err)
{
    memset(c, 0, sizeof(*c));
    memset(l, 0, sizeof(*l));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->http_threads = cores > 0 && cores <= 256 ? cores : 2;
    c->http_connection_limit = 10000;
    c->http_connection_timeout_s = 30;
    c->http_body_max_bytes = 65536;
    c->shutdown_drain_ms = 5000;
    c->lease_max_ms = 3600000;
    c->retire_grace_ms = 120000;
    c->clock_ahead_max_ms = 5000;
    c->keys_max = 100000;
    l->connect_timeout_ms = 2000;
    l->command_timeout_ms = 2000;
    if (replace_string(&c->listen, "127.0.0.1:8080", err) != 0 ||
        replace_string(&c->admin_listen, "127.0.0.1:8081", err) != 0 ||
        replace_string(&c->redis_url, "redis://127.0.0.1:6379", err) != 0 ||
        replace_string(&c->cache_control, "no-cache", err) != 0 ||
        replace_string(&l->log_level, "info", err) != 0 ||
        replace_string(&l->log_format, "text", err) != 0 ||
        replace_string(&l->client_name, "kc-cluster-hub", err) != 0)
        return -1;
    return 0;
}

static json_t *section_of(json_t *root, const char *section)
{
    return section[0] == '\0' ? root : json_object_get(root, section);
}

static int add_namespace(struct hub_config *c, const char *name, size_t len, const char *setting,
                         struct error *err)
{
    char text[PROTOCOL_NAMESPACE_MAX_BYTES + 1];
    snprintf(text, sizeof(text), "%.*s", (int)len, name);
    if (len > PROTOCOL_NAMESPACE_MAX_BYTES || !protocol_namespace_is_valid(text)) {
        error_set(err, "invalid setting %s: namespace \"%.*s\" must be 1 to %d characters of "
                  "A-Z a-z 0-9 . _ - starting with a letter or digit", setting,
                  (int)(len > 80 ? 80 : len), name, PROTOCOL_NAMESPACE_MAX_BYTES);
        return -1;
    }
    for (size_t i = 0; i < c->namespace_count; i++) {
        if (strcmp(c->namespaces[i].name, text) == 0) {
            error_set(err, "invalid setting %s: namespace \"%s\" is listed twice", setting, text);
            return -1;
        }
    }
    if (c->namespace_count >= NAMESPACE_MAX_COUNT) {
        error_set(err, "invalid setting %s: more than %d namespaces", setting, NAMESPACE_MAX_COUNT);
        return -1;
    }
    struct namespace_config *grown =
        realloc(c->namespaces, (c->namespace_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        error_set(err, "out of memory");
        return -1;
    }
    c->namespaces = grown;
    grown[c->namespace_count] = (struct namespace_config){.name = strdup(text), .logout = NULL};
    if (grown[c->namespace_count].name == NULL) {
        error_set(err, "out of memory");
        return -1;
    }
    c->namespace_count++;
    return 0;
}

static void clear_namespaces(struct hub_config *c)
{
    for (size_t i = 0; i < c->namespace_count; i++) {
        free(c->namespaces[i].name);
        if (c->namespaces[i].logout != NULL)
            logout_config_dispose(c->namespaces[i].logout);
        free(c->namespaces[i].logout);
    }
    free(c->namespaces);
    c->namespaces = NULL;
    c->namespace_count = 0;
}

/* Reads the "logout" object of the namespace added last. */
static int read_file_logout(struct hub_config *c, json_t *logout, const char *namespace_path,
                            struct error *err)
{
    char path[64];
    snprintf(path, sizeof(path), "%s.logout", namespace_path);
    struct logout_config *settings = calloc(1, sizeof(*settings));
    if (settings == NULL) {
        error_set(err, "out of memory");
        return -1;
    }
    if (logout_config_from_json(logout, path, settings, err) != 0) {
        free(settings);
        return -1;
    }
    c->namespaces[c->namespace_count - 1].logout = settings;
    return 0;
}

/* Applies the KCHUB_LOGOUT_* variables to the only namespace. */
static int read_environment_logout(struct hub_config *c, config_env_lookup lookup,
                                   struct error *err)
{
    struct logout_config settings;
    bool present = false;
    if (logout_config_from_env(lookup, &settings, &present, err) != 0)
        return -1;
    if (!present)
        return 0;
    if (c->namespace_count != 1) {
        logout_config_dispose(&settings);
        error_set(err, "invalid setting KCHUB_LOGOUT_*: these variables configure the only "
                  "namespace, but %zu are configured; set \"logout\" per namespace in the config "
                  "file instead", c->namespace_count);
        return -1;
    }
    struct namespace_config *ns = &c->namespaces[0];
    if (ns->logout == NULL && (ns->logout = calloc(1, sizeof(*ns->logout))) == NULL) {
        logout_config_dispose(&settings);
        error_set(err, "out of memory");
        return -1;
    }
    logout_config_dispose(ns->logout);
    *ns->logout = settings;
    return 0;
}

static int read_file_namespaces(struct hub_config *c, json_t *list, struct error *err)
{
    if (list == NULL)
        return 0;
    if (!json_is_array(list)) {
        error_set(err, "invalid setting namespaces: expected an array of {\"name\": \"...\"}");
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        char path[48];
        snprintf(path, sizeof(path), "namespaces[%zu]", i);
        if (check_members(item, path, namespace_members, err) != 0)
            return -1;
        json_t *name = json_object_get(item, "name");
        if (!json_is_string(name)) {
            error_set(err, "invalid setting %s.name: expected a string", path);
            return -1;
        }
        if (add_namespace(c, json_string_value(name), json_string_length(name), path, err) != 0)
            return -1;
        json_t *logout = json_object_get(item, "logout");
        if (logout != NULL && read_file_logout(c, logout, path, err) != 0)
            return -1;
    }
    return 0;
}

static int read_file(struct hub_config *c, struct loading *l, const char *path, struct error *err)
{
    json_error_t json_error;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &json_error);
    if (root == NULL) {
        error_set(err, "cannot read config file %s: %s (line %d, column %d)", path,
                  json_error.text, json_error.line, json_error.column);
        return -1;
    }
    int rc = -1;
    if (check_members(root, "", top_members, err) != 0)
        goto done;
    const struct {
        const char *name;
        const char *const *members;
    } sections[] = {{"redis", redis_members}, {"keys", keys_members}, {"jwks", jwks_members}};
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
        json_t *section = json_object_get(root, sections[i].name);
        if (section != NULL && check_members(section, sections[i].name, sections[i].members, err) != 0)
            goto done;
    }
    struct string_setting strings[STRING_SETTING_COUNT];
    string_settings(c, l, strings);
    for (size_t i = 0; i < STRING_SETTING_COUNT; i++) {
        json_t *section = section_of(root, strings[i].section);
        if (section != NULL &&
            json_string_member(section, strings[i].section, strings[i].name, strings[i].value, err) != 0)
            goto done;
    }
    struct integer_setting integers[INTEGER_SETTING_COUNT];
    integer_settings(c, l, integers);
    for (size_t i = 0; i < INTEGER_SETTING_COUNT; i++) {
        const struct integer_setting *s = &integers[i];
        json_t *section = section_of(root, s->section);
        if (section != NULL &&
            json_integer_member(section, s->section, s->name, s->min, s->max, s->value, err) != 0)
            goto done;
    }
    if (config_redis_read_file(json_object_get(root, "redis"), &c->redis,
                               &c->redis_skip_access_check, err) != 0)
        goto done;
    rc = read_file_namespaces(c, json_object_get(root, "namespaces"), err);
done:
    json_decref(root);
    return rc;
}

static int read_environment(struct hub_config *c, struct loading *l, config_env_lookup lookup,
                            struct error *err)
{
    struct string_setting strings[STRING_SETTING_COUNT];
    string_settings(c, l, strings);
    for (size_t i = 0; i < STRING_SETTING_COUNT; i++) {
        const char *value = lookup(strings[i].env);
        if (value != NULL && replace_string(strings[i].value, value, err) != 0)
            return -1;
    }
    struct integer_setting integers[INTEGER_SETTING_COUNT];
    integer_settings(c, l, integers);
    for (size_t i = 0; i < INTEGER_SETTING_COUNT; i++) {
        const char *value = lookup(integers[i].env);
        struct source from = {integers[i].env};
        if (value != NULL &&
            parse_integer(value, from, integers[i].min, integers[i].max, integers[i].value, err) != 0)
            return -1;
    }
    if (config_redis_read_env(lookup, c->redis_url, &c->redis, &c->redis_skip_access_check,
                              err) != 0)
        return -1;
    const char *list = lookup("KCHUB_NAMESPACE");
    if (list == NULL)
        return 0;
    clear_namespaces(c);
    for (const char *start = list;;) {
        const char *comma = strchr(start, ',');
        size_t len = comma != NULL ? (size_t)(comma - start) : strlen(start);
        if (add_namespace(c, start, len, "KCHUB_NAMESPACE", err) != 0)
            return -1;
        if (comma == NULL)
            return 0;
        start = comma + 1;
    }
}

/* Reads the password file: one line, the trailing newline dropped. */
static int read_password_file(const char *path, char **out, struct error *err)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        error_set(err, "cannot read the Redis password file %s: %s", path, strerror(errno));
        return -1;
    }
    char buffer[PASSWORD_FILE_MAX_BYTES + 2];
    size_t len = fread(buffer, 1, sizeof(buffer) - 1, file);
    fclose(file);
    if (len > PASSWORD_FILE_MAX_BYTES) {
        error_set(err, "the Redis password file %s is over %d bytes", path, PASSWORD_FILE_MAX_BYTES);
        return -1;
    }
    buffer[len] = '\0';
    while (len > 0 && (buffer[len - 1] == '\n' || buffer[len - 1] == '\r'))
        buffer[--len] = '\0';
    int rc = replace_string(out, buffer, err);
    explicit_bzero(buffer, sizeof(buffer));
    return rc;
}

static int resolve_redis(struct hub_config *c, struct loading *l, config_env_lookup lookup,
                         struct error *err)
{
    if (redis_url_parse(c->redis_url, &c->redis, err) != 0) {
        error_prefix(err, "invalid setting redis.url (KCHUB_REDIS_URL)");
        return -1;
    }
    const char *password = lookup("KCHUB_REDIS_PASSWORD");
    if (c->redis_password_file != NULL && c->redis_password_file[0] != '\0') {
        if (read_password_file(c->redis_password_file, &c->redis.password, err) != 0)
            return -1;
    } else if (password != NULL && replace_string(&c->redis.password, password, err) != 0) {
        return -1;
    }
    if (l->client_name[0] != '\0' && replace_string(&c->redis.client_name, l->client_name, err) != 0)
        return -1;
    c->redis.connect_timeout_ms = (int)l->connect_timeout_ms;
    c->redis.command_timeout_ms = (int)l->command_timeout_ms;
    return 0;
}

static int resolve_rest(struct hub_config *c, const struct loading *l, struct error *err)
{
    if (check_listen(c->listen, "listen (KCHUB_LISTEN)", err) != 0 ||
        check_listen(c->admin_listen, "admin_listen (KCHUB_ADMIN_LISTEN)", err) != 0)
        return -1;
    if (strcmp(c->listen, c->admin_listen) == 0) {
        error_set(err, "invalid setting admin_listen (KCHUB_ADMIN_LISTEN): it equals listen, "
                  "\"%s\"; give the admin routes their own port", c->listen);
        return -1;
    }
    if (log_level_parse(l->log_level, &c->log_level) != 0) {
        error_set(err, "invalid setting log_level (KCHUB_LOG_LEVEL): expected debug, info, warn "
                  "or error, got \"%.40s\"", l->log_level);
        return -1;
    }
    if (log_format_parse(l->log_format, &c->log_format) != 0) {
        error_set(err, "invalid setting log_format (KCHUB_LOG_FORMAT): expected text or json, got "
                  "\"%.40s\"", l->log_format);
        return -1;
    }
    if (!header_value_is_valid(c->cache_control)) {
        error_set(err, "invalid setting jwks.cache_control (KCHUB_JWKS_CACHE_CONTROL): expected "
                  "printable ASCII, as in \"no-cache\" or \"public, max-age=60\"");
        return -1;
    }
    if (c->namespace_count == 0) {
        error_set(err, "no namespace configured: set KCHUB_NAMESPACE=<name> or list them in the "
                  "config file as \"namespaces\": [{\"name\": \"<name>\"}]");
        return -1;
    }
    return 0;
}

int config_load(struct hub_config *out, const char *path, config_env_lookup lookup,
                struct error *err)
{
    struct loading l;
    int rc = set_defaults(out, &l, err);
    if (rc == 0 && path != NULL)
        rc = read_file(out, &l, path, err);
    if (rc == 0)
        rc = read_environment(out, &l, lookup, err);
    if (rc == 0)
        rc = resolve_redis(out, &l, lookup, err);
    if (rc == 0)
        rc = resolve_rest(out, &l, err);
    if (rc == 0)
        rc = read_environment_logout(out, lookup, err);
    free(l.log_level);
    free(l.log_format);
    free(l.client_name);
    if (rc != 0)
        config_dispose(out);
    return rc;
}

void config_dispose(struct hub_config *c)
{
    free(c->listen);
    free(c->admin_listen);
    free(c->redis_url);
    free(c->redis_password_file);
    free(c->cache_control);
    redis_settings_dispose(&c->redis);
    clear_namespaces(c);
    memset(c, 0, sizeof(*c));
}

void config_log_summary(const struct hub_config *c)
{
    const struct redis_settings *r = &c->redis;
    log_info(MODULE, "listen=%s http_threads=%lld redis=%s://%s:%d user=%s password=%s "
             "client_name=%s lease_max_ms=%lld retire_grace_ms=%lld keys_max=%lld "
             "cache_control=\"%s\" namespaces=%zu",
             c->listen, (long long)c->http_threads, r->tls ? "rediss" : "redis", r->host, r->port,
             r->username != NULL ? r->username : "default", r->password != NULL ? "set" : "none",
             r->client_name != NULL ? r->client_name : "(none)", (long long)c->lease_max_ms,
             (long long)c->retire_grace_ms, (long long)c->keys_max, c->cache_control,
             c->namespace_count);
    for (size_t i = 0; i < c->namespace_count; i++) {
        const struct namespace_config *ns = &c->namespaces[i];
        log_info(MODULE, "namespace %s: stream %s%s, JWKS at /%s/jwks", ns->name, ns->name,
                 PROTOCOL_JWKS_STREAM_SUFFIX, ns->name);
        if (ns->logout != NULL)
            log_info(MODULE, "namespace %s: back-channel logout at /%s/backchannel-logout for "
                     "client %s of issuer %s, keys from %s", ns->name, ns->name,
                     ns->logout->client_id, ns->logout->issuer,
                     ns->logout->jwks_url != NULL ? ns->logout->jwks_url : "discovery");
    }
}
