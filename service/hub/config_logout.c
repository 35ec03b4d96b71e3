#include "config_logout.h"

#include "realm_fetch.h"
#include "realm_keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_MAX_LEN_DEFAULT 10000

static const char *const logout_members[] = {
    "issuer",     "client_id",           "jwks_url",         "ca_file",        "algs",
    "require_exp", "clock_skew_ms",      "max_age_ms",       "refresh_interval_ms",
    "fetch_timeout_ms", "stream_max_len", NULL};

/* One integer setting, with its file member, its variable and its range. */
struct logout_integer {
    const char *member;
    const char *env;
    int64_t min;
    int64_t max;
    int64_t *value;
};

#define LOGOUT_INTEGER_COUNT 5

static void integer_table(struct logout_config *c, struct logout_integer *out)
{
    const struct logout_integer table[LOGOUT_INTEGER_COUNT] = {
        {"clock_skew_ms", "KCHUB_LOGOUT_CLOCK_SKEW_MS", 0, 300000, &c->clock_skew_ms},
        {"max_age_ms", "KCHUB_LOGOUT_MAX_AGE_MS", 1000, 86400000, &c->max_age_ms},
        {"refresh_interval_ms", "KCHUB_LOGOUT_REFRESH_INTERVAL_MS", 1000, 3600000,
         &c->refresh_interval_ms},
        {"fetch_timeout_ms", "KCHUB_LOGOUT_FETCH_TIMEOUT_MS", 100, 60000, &c->fetch_timeout_ms},
        {"stream_max_len", "KCHUB_LOGOUT_STREAM_MAX_LEN", 1, 100000000, &c->stream_max_len},
    };
    memcpy(out, table, sizeof(table));
}

static void set_defaults(struct logout_config *c)
{
    memset(c, 0, sizeof(*c));
    c->algs = JWS_ALG_BIT(JWS_ALG_RS256);
    c->clock_skew_ms = 15000;
    c->max_age_ms = 120000;
    c->refresh_interval_ms = REALM_KEYS_REFRESH_INTERVAL_MS_DEFAULT;
    c->fetch_timeout_ms = REALM_FETCH_TOTAL_TIMEOUT_MS_DEFAULT;
    c->stream_max_len = STREAM_MAX_LEN_DEFAULT;
}

void logout_config_dispose(struct logout_config *c)
{
    free(c->issuer);
    free(c->client_id);
    free(c->jwks_url);
    free(c->ca_file);
    memset(c, 0, sizeof(*c));
}

static int set_string(char **target, const char *value, struct error *err)
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

/* Adds one alg name to *algs, rejecting none, HS* and names this build cannot verify. */
static int add_alg(const char *name, size_t len, const char *where, unsigned *algs,
                   struct error *err)
{
    enum jws_alg alg;
    if (jws_alg_parse(name, len, &alg) != 0) {
        error_set(err, "invalid setting %s: \"%.*s\" is not an accepted algorithm; expected RS256, "
                  "RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA (never none "
                  "or HS*)", where, (int)(len > 20 ? 20 : len), name);
        return -1;
    }
    *algs |= JWS_ALG_BIT(alg);
    return 0;
}

static int algs_from_json(json_t *list, const char *where, unsigned *algs, struct error *err)
{
    if (!json_is_array(list) || json_array_size(list) == 0) {
        error_set(err, "invalid setting %s: expected a non-empty array such as [\"RS256\"]", where);
        return -1;
    }
    *algs = 0;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        if (!json_is_string(item)) {
            error_set(err, "invalid setting %s: expected strings such as \"RS256\"", where);
            return -1;
        }
        if (add_alg(json_string_value(item), json_string_length(item), where, algs, err) != 0)
            return -1;
    }
    return 0;
}

static int algs_from_text(const char *text, const char *where, unsigned *algs, struct error *err)
{
    *algs = 0;
    for (const char *start = text;;) {
        const char *comma = strchr(start, ',');
        size_t len = comma != NULL ? (size_t)(comma - start) : strlen(start);
        if (add_alg(start, len, where, algs, err) != 0)
            return -1;
        if (comma == NULL)
            return 0;
        start = comma + 1;
    }
}

static int check_required(const struct logout_config *c, const char *where, struct error *err)
{
    if (c->issuer == NULL || c->issuer[0] == '\0') {
        error_set(err, "invalid setting %s: \"issuer\" is missing; set it to the realm's issuer, "
                  "https://host/realms/<realm> for Keycloak", where);
        return -1;
    }
    if (strncmp(c->issuer, "https://", 8) != 0 && strncmp(c->issuer, "http://", 7) != 0) {
        error_set(err, "invalid setting %s: issuer must be an http:// or https:// URL", where);
        return -1;
    }
    if (c->client_id == NULL || c->client_id[0] == '\0') {
        error_set(err, "invalid setting %s: \"client_id\" is missing; set it to the Keycloak "
                  "client's id, the audience of its logout tokens", where);
        return -1;
    }
    return 0;
}

static int read_json_strings(json_t *object, const char *path, struct logout_config *c,
                             struct error *err)
{
    struct {
        const char *member;
        char **value;
    } strings[] = {{"issuer", &c->issuer}, {"client_id", &c->client_id},
                   {"jwks_url", &c->jwks_url}, {"ca_file", &c->ca_file}};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        json_t *value = json_object_get(object, strings[i].member);
        if (value == NULL || json_is_null(value))
            continue;
        if (!json_is_string(value)) {
            error_set(err, "invalid setting %s.%s: expected a string", path, strings[i].member);
            return -1;
        }
        if (set_string(strings[i].value, json_string_value(value), err) != 0)
            return -1;
    }
    return 0;
}

static int read_json_numbers(json_t *object, const char *path, struct logout_config *c,
                             struct error *err)
{
    struct logout_integer integers[LOGOUT_INTEGER_COUNT];
    integer_table(c, integers);
    for (size_t i = 0; i < LOGOUT_INTEGER_COUNT; i++) {
        json_t *value = json_object_get(object, integers[i].member);
        if (value == NULL)
            continue;
        json_int_t number = json_is_integer(value) ? json_integer_value(value) : 0;
        if (!json_is_integer(value) || number < integers[i].min || number > integers[i].max) {
            error_set(err, "invalid setting %s.%s: expected an integer from %lld to %lld", path,
                      integers[i].member, (long long)integers[i].min, (long long)integers[i].max);
            return -1;
        }
        *integers[i].value = number;
    }
    json_t *require_exp = json_object_get(object, "require_exp");
    if (require_exp != NULL && !json_is_boolean(require_exp)) {
        error_set(err, "invalid setting %s.require_exp: expected true or false", path);
        return -1;
    }
    c->require_exp = json_is_true(require_exp);
    return 0;
}

static int check_members(json_t *object, const char *path, struct error *err)
{
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value) {
        bool known = false;
        for (size_t i = 0; logout_members[i] != NULL && !known; i++)
            known = strcmp(key, logout_members[i]) == 0;
        if (!known) {
            error_set(err, "unknown setting \"%s.%s\" in the config file; check its spelling", path,
                      key);
            return -1;
        }
    }
    return 0;
}

int logout_config_from_json(json_t *object, const char *path, struct logout_config *out,
                            struct error *err)
{
    set_defaults(out);
    if (!json_is_object(object)) {
        error_set(err, "invalid setting %s: expected a JSON object", path);
        return -1;
    }
    char where[96];
    snprintf(where, sizeof(where), "%s.algs", path);
    json_t *algs = json_object_get(object, "algs");
    int rc = check_members(object, path, err);
    if (rc == 0)
        rc = read_json_strings(object, path, out, err);
    if (rc == 0)
        rc = read_json_numbers(object, path, out, err);
    if (rc == 0 && algs != NULL)
        rc = algs_from_json(algs, where, &out->algs, err);
    if (rc == 0)
        rc = check_required(out, path, err);
    if (rc != 0)
        logout_config_dispose(out);
    return rc;
}

static int read_env_values(const char *(*lookup)(const char *), struct logout_config *c,
                           struct error *err)
{
    struct {
        const char *env;
        char **value;
    } strings[] = {{"KCHUB_LOGOUT_ISSUER", &c->issuer}, {"KCHUB_LOGOUT_CLIENT_ID", &c->client_id},
                   {"KCHUB_LOGOUT_JWKS_URL", &c->jwks_url}, {"KCHUB_LOGOUT_CA_FILE", &c->ca_file}};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        const char *value = lookup(strings[i].env);
        if (value != NULL && value[0] != '\0' && set_string(strings[i].value, value, err) != 0)
            return -1;
    }
    struct logout_integer integers[LOGOUT_INTEGER_COUNT];
    integer_table(c, integers);
    for (size_t i = 0; i < LOGOUT_INTEGER_COUNT; i++) {
        const char *value = lookup(integers[i].env);
        if (value == NULL)
            continue;
        char *end = NULL;
        errno = 0;
        long long number = strtoll(value, &end, 10);
        if (value[0] == '\0' || *end != '\0' || errno != 0 || number < integers[i].min ||
            number > integers[i].max) {
            error_set(err, "invalid setting %s: expected an integer from %lld to %lld, got "
                      "\"%.40s\"", integers[i].env, (long long)integers[i].min,
                      (long long)integers[i].max, value);
            return -1;
        }
        *integers[i].value = number;
    }
    return 0;
}

int logout_config_from_env(const char *(*lookup)(const char *name), struct logout_config *out,
                           bool *present, struct error *err)
{
    static const char *const names[] = {
        "KCHUB_LOGOUT_ISSUER",         "KCHUB_LOGOUT_CLIENT_ID",   "KCHUB_LOGOUT_JWKS_URL",
        "KCHUB_LOGOUT_ALGS",           "KCHUB_LOGOUT_CLOCK_SKEW_MS", "KCHUB_LOGOUT_MAX_AGE_MS",
        "KCHUB_LOGOUT_REQUIRE_EXP",    "KCHUB_LOGOUT_CA_FILE",     "KCHUB_LOGOUT_REFRESH_INTERVAL_MS",
        "KCHUB_LOGOUT_FETCH_TIMEOUT_MS", "KCHUB_LOGOUT_STREAM_MAX_LEN", NULL};
    *present = false;
    for (size_t i = 0; names[i] != NULL && !*present; i++)
        *present = lookup(names[i]) != NULL;
    set_defaults(out);
    if (!*present)
        return 0;

    int rc = read_env_values(lookup, out, err);
    const char *algs = lookup("KCHUB_LOGOUT_ALGS");
    if (rc == 0 && algs != NULL)
        rc = algs_from_text(algs, "KCHUB_LOGOUT_ALGS", &out->algs, err);
    const char *require_exp = lookup("KCHUB_LOGOUT_REQUIRE_EXP");
    if (rc == 0 && require_exp != NULL) {
        if (strcmp(require_exp, "true") == 0 || strcmp(require_exp, "false") == 0) {
            out->require_exp = strcmp(require_exp, "true") == 0;
        } else {
            error_set(err, "invalid setting KCHUB_LOGOUT_REQUIRE_EXP: expected true or false");
            rc = -1;
        }
    }
    if (rc == 0)
        rc = check_required(out, "KCHUB_LOGOUT_ISSUER and KCHUB_LOGOUT_CLIENT_ID", err);
    if (rc != 0)
        logout_config_dispose(out);
    return rc;
}
