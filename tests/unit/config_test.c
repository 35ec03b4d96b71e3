/* Unit tests of configuration loading: defaults, the JSON file, the environment, and errors. */
#include "config.h"
#include "unit.h"

#include <stdlib.h>
#include <unistd.h>

/* The environment the loader sees: name/value pairs ending with NULL. */
static const char *const *environment;

static const char *lookup(const char *name)
{
    for (size_t i = 0; environment != NULL && environment[i] != NULL; i += 2) {
        if (strcmp(environment[i], name) == 0)
            return environment[i + 1];
    }
    return NULL;
}

static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/kchub-config-test-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int load(const char *file_text, const char *const *env, struct hub_config *config,
                struct error *err)
{
    environment = env;
    char *path = file_text != NULL ? write_temp(file_text) : NULL;
    int rc = config_load(config, path, lookup, err);
    if (path != NULL)
        unlink(path);
    return rc;
}

static void test_env_only(void)
{
    UNIT_CASE("env only");
    const char *env[] = {"KCHUB_NAMESPACE", "app-a,app-b", "KCHUB_LEASE_MAX_MS", "60000",
                         "KCHUB_REDIS_URL", "redis://u@10.0.0.1:6380", "KCHUB_REDIS_PASSWORD",
                         "pw", NULL};
    struct hub_config c;
    struct error err = {""};
    CHECK_INT(load(NULL, env, &c, &err), 0);
    CHECK_INT(c.namespace_count, 2);
    CHECK_STR(c.namespaces[1].name, "app-b");
    CHECK(c.namespaces[1].logout == NULL);
    CHECK_INT(c.lease_max_ms, 60000);
    CHECK_INT(c.retire_grace_ms, 120000);
    CHECK_STR(c.listen, "127.0.0.1:8080");
    CHECK_STR(c.redis.username, "u");
    CHECK_STR(c.redis.password, "pw");
    CHECK_STR(c.redis.client_name, "kc-cluster-hub");
    CHECK_INT(c.redis.port, 6380);
    config_dispose(&c);
}

static void test_file_then_env(void)
{
    UNIT_CASE("file then env");
    const char *file = "{\"listen\": \"0.0.0.0:9000\", \"keys\": {\"retire_grace_ms\": 3000},"
                       " \"jwks\": {\"cache_control\": \"max-age=5\"},"
                       " \"redis\": {\"client_name\": \"\"},"
                       " \"namespaces\": [{\"name\": \"from-file\"}]}";
    const char *env[] = {"KCHUB_LISTEN", "127.0.0.1:9100", NULL};
    struct hub_config c;
    struct error err = {""};
    CHECK_INT(load(file, env, &c, &err), 0);
    CHECK_STR(c.listen, "127.0.0.1:9100");
    config_dispose(&c);
    const char *v6[] = {"KCHUB_NAMESPACE", "a", "KCHUB_LISTEN", "[::1]:0", NULL};
    CHECK_INT(load(NULL, v6, &c, &err), 0);
    CHECK_STR(c.listen, "[::1]:0");
    config_dispose(&c);
    CHECK_INT(load(file, env, &c, &err), 0);
    CHECK_INT(c.retire_grace_ms, 3000);
    CHECK_STR(c.cache_control, "max-age=5");
    CHECK(c.redis.client_name == NULL);
    CHECK_INT(c.namespace_count, 1);
    CHECK_STR(c.namespaces[0].name, "from-file");
    config_dispose(&c);
}

static void test_password_file(void)
{
    UNIT_CASE("password file");
    char *path = write_temp("from-file-secret\n");
    char copy[64];
    snprintf(copy, sizeof(copy), "%s", path);
    const char *env[] = {"KCHUB_NAMESPACE", "a", "KCHUB_REDIS_PASSWORD_FILE", copy,
                         "KCHUB_REDIS_PASSWORD", "ignored", NULL};
    struct hub_config c;
    struct error err = {""};
    environment = env;
    CHECK_INT(config_load(&c, NULL, lookup, &err), 0);
    CHECK_STR(c.redis.password, "from-file-secret");
    config_dispose(&c);
    unlink(copy);
}

/* Each case: file text (or NULL), environment, and a word the error must contain. */
static void expect_error(const char *file, const char *const *env, const char *word)
{
    struct hub_config c;
    struct error err = {""};
    CHECK_INT(load(file, env, &c, &err), -1);
    if (strstr(err.message, word) == NULL)
        fprintf(stderr, "  error \"%s\" does not name \"%s\"\n", err.message, word);
    CHECK(strstr(err.message, word) != NULL);
}

static void test_errors_name_setting(void)
{
    UNIT_CASE("errors name setting");
    const char *none[] = {NULL};
    const char *bad_ns[] = {"KCHUB_NAMESPACE", "bad:name", NULL};
    const char *dup_ns[] = {"KCHUB_NAMESPACE", "a,a", NULL};
    const char *empty_ns[] = {"KCHUB_NAMESPACE", "a,", NULL};
    const char *bad_lease[] = {"KCHUB_NAMESPACE", "a", "KCHUB_LEASE_MAX_MS", "10", NULL};
    const char *bad_number[] = {"KCHUB_NAMESPACE", "a", "KCHUB_HTTP_THREADS", "two", NULL};
    const char *bad_level[] = {"KCHUB_NAMESPACE", "a", "KCHUB_LOG_LEVEL", "loud", NULL};
    const char *bad_url[] = {"KCHUB_NAMESPACE", "a", "KCHUB_REDIS_URL", "http://x", NULL};
    const char *bad_header[] = {"KCHUB_NAMESPACE", "a", "KCHUB_JWKS_CACHE_CONTROL", "a\nb", NULL};
    const char *missing_file[] = {"KCHUB_NAMESPACE", "a", "KCHUB_REDIS_PASSWORD_FILE",
                                  "/nonexistent/pw", NULL};
    const char *bad_listens[] = {"nope", "127.0.0.1:99999", "127.0.0.1:", ":8080", "::1:8080",
                                 "127.0.0.1:80a"};
    for (size_t i = 0; i < sizeof(bad_listens) / sizeof(bad_listens[0]); i++) {
        const char *bad_listen[] = {"KCHUB_NAMESPACE", "a", "KCHUB_LISTEN", bad_listens[i], NULL};
        expect_error(NULL, bad_listen, "KCHUB_LISTEN");
    }
    expect_error("{\"listen\": \"nope\", \"namespaces\": [{\"name\": \"a\"}]}", none, "listen");
    expect_error(NULL, none, "KCHUB_NAMESPACE");
    expect_error(NULL, bad_ns, "bad:name");
    expect_error(NULL, dup_ns, "twice");
    expect_error(NULL, empty_ns, "KCHUB_NAMESPACE");
    expect_error(NULL, bad_lease, "KCHUB_LEASE_MAX_MS");
    expect_error(NULL, bad_number, "KCHUB_HTTP_THREADS");
    expect_error(NULL, bad_level, "log_level");
    expect_error(NULL, bad_url, "redis.url");
    expect_error(NULL, bad_header, "cache_control");
    expect_error(NULL, missing_file, "/nonexistent/pw");
    expect_error("{\"lisen\": \"x\"}", none, "lisen");
    expect_error("{\"keys\": {\"lease_max_ms\": \"1h\"}}", none, "keys.lease_max_ms");
    expect_error("{\"redis\": {\"urll\": \"x\"}}", none, "redis.urll");
    expect_error("{\"namespaces\": [{\"nam\": \"x\"}]}", none, "namespaces[0].nam");
    expect_error("{\"namespaces\": \"x\"}", none, "namespaces");
    expect_error("{not json", none, "config file");
}

static void test_error_hides_password(void)
{
    UNIT_CASE("error hides password");
    const char *env[] = {"KCHUB_NAMESPACE", "a", "KCHUB_REDIS_URL", "redis://u:hunter2@h:bad", NULL};
    struct hub_config c;
    struct error err = {""};
    CHECK_INT(load(NULL, env, &c, &err), -1);
    CHECK(strstr(err.message, "hunter2") == NULL);
}

static void test_redis_tls_settings(void)
{
    UNIT_CASE("redis tls settings");
    const char *file = "{\"redis\": {\"url\": \"rediss://u@cache.internal:6380\","
                       " \"tls_ca_file\": \"/etc/ca.pem\", \"tls_server_name\": \"redis.test\","
                       " \"tls_cert_file\": \"/etc/c.pem\", \"tls_key_file\": \"/etc/k.pem\","
                       " \"check_access\": false},"
                       " \"namespaces\": [{\"name\": \"a\"}]}";
    const char *env[] = {"KCHUB_REDIS_TLS_SERVER_NAME", "from-env.test", NULL};
    struct hub_config c;
    struct error err = {""};
    CHECK_INT(load(file, env, &c, &err), 0);
    CHECK(c.redis.tls);
    CHECK_STR(c.redis.tls_ca_file, "/etc/ca.pem");
    CHECK_STR(c.redis.tls_server_name, "from-env.test");
    CHECK_STR(c.redis.tls_cert_file, "/etc/c.pem");
    CHECK_STR(c.redis.tls_key_file, "/etc/k.pem");
    CHECK(!c.redis.tls_skip_verify);
    CHECK(c.redis_skip_access_check);
    config_dispose(&c);

    const char *defaults[] = {"KCHUB_NAMESPACE", "a", NULL};
    CHECK_INT(load(NULL, defaults, &c, &err), 0);
    CHECK(!c.redis.tls);
    CHECK(c.redis.tls_ca_file == NULL);
    CHECK(!c.redis.tls_skip_verify);
    CHECK(!c.redis_skip_access_check);
    config_dispose(&c);

    const char *no_verify[] = {"KCHUB_NAMESPACE", "a", "KCHUB_REDIS_URL", "rediss://h",
                               "KCHUB_REDIS_TLS_VERIFY", "false", "KCHUB_REDIS_CHECK_ACCESS",
                               "true", NULL};
    CHECK_INT(load(NULL, no_verify, &c, &err), 0);
    CHECK(c.redis.tls_skip_verify);
    CHECK(!c.redis_skip_access_check);
    config_dispose(&c);

    const char *file_verify = "{\"redis\": {\"url\": \"rediss://h\", \"tls_verify\": false},"
                              " \"namespaces\": [{\"name\": \"a\"}]}";
    CHECK_INT(load(file_verify, NULL, &c, &err), 0);
    CHECK(c.redis.tls_skip_verify);
    config_dispose(&c);
}

static void test_redis_tls_errors(void)
{
    UNIT_CASE("redis tls errors");
    const char *none[] = {NULL};
    const char *plain_url[] = {"KCHUB_NAMESPACE", "a", "KCHUB_REDIS_TLS_CA_FILE", "/ca.pem", NULL};
    const char *cert_only[] = {"KCHUB_NAMESPACE", "a", "KCHUB_REDIS_URL", "rediss://h",
                               "KCHUB_REDIS_TLS_CERT_FILE", "/c.pem", NULL};
    const char *key_only[] = {"KCHUB_NAMESPACE", "a", "KCHUB_REDIS_URL", "rediss://h",
                              "KCHUB_REDIS_TLS_KEY_FILE", "/k.pem", NULL};
    const char *bad_verify[] = {"KCHUB_NAMESPACE", "a", "KCHUB_REDIS_URL", "rediss://h",
                                "KCHUB_REDIS_TLS_VERIFY", "no", NULL};
    const char *bad_check[] = {"KCHUB_NAMESPACE", "a", "KCHUB_REDIS_CHECK_ACCESS", "0", NULL};
    expect_error(NULL, plain_url, "rediss://");
    expect_error(NULL, cert_only, "tls_key_file");
    expect_error(NULL, key_only, "tls_cert_file");
    expect_error(NULL, bad_verify, "KCHUB_REDIS_TLS_VERIFY");
    expect_error(NULL, bad_check, "KCHUB_REDIS_CHECK_ACCESS");
    expect_error("{\"redis\": {\"tls_verify\": \"false\"}}", none, "redis.tls_verify");
    expect_error("{\"redis\": {\"check_access\": 1}}", none, "redis.check_access");
    expect_error("{\"redis\": {\"tls_ca_file\": 5}}", none, "redis.tls_ca_file");
    expect_error("{\"redis\": {\"tls_ca_flie\": \"x\"}}", none, "redis.tls_ca_flie");
}

static void test_logout_settings(void)
{
    UNIT_CASE("logout settings");
    const char *file = "{\"namespaces\": [{\"name\": \"a\", \"logout\": {\"issuer\": "
                       "\"https://kc.example/realms/r\", \"client_id\": \"app\", \"algs\": "
                       "[\"RS256\", \"ES256\"], \"require_exp\": true, \"stream_max_len\": 50}},"
                       " {\"name\": \"b\"}]}";
    const char *none[] = {NULL};
    struct hub_config c;
    struct error err = {""};
    CHECK_INT(load(file, none, &c, &err), 0);
    CHECK(c.namespaces[0].logout != NULL);
    CHECK(c.namespaces[1].logout == NULL);
    if (c.namespaces[0].logout != NULL) {
        CHECK_STR(c.namespaces[0].logout->issuer, "https://kc.example/realms/r");
        CHECK_STR(c.namespaces[0].logout->client_id, "app");
        CHECK(c.namespaces[0].logout->jwks_url == NULL);
        CHECK(c.namespaces[0].logout->require_exp);
        CHECK_INT(c.namespaces[0].logout->stream_max_len, 50);
        CHECK_INT(c.namespaces[0].logout->max_age_ms, 120000);
        CHECK_INT(c.namespaces[0].logout->algs, 0x41); /* RS256 and ES256 */
    }
    config_dispose(&c);

    const char *env[] = {"KCHUB_NAMESPACE", "a", "KCHUB_LOGOUT_ISSUER", "http://127.0.0.1:9/r",
                         "KCHUB_LOGOUT_CLIENT_ID", "app", "KCHUB_LOGOUT_ALGS", "EdDSA", NULL};
    CHECK_INT(load(NULL, env, &c, &err), 0);
    CHECK(c.namespaces[0].logout != NULL);
    if (c.namespaces[0].logout != NULL) {
        CHECK_STR(c.namespaces[0].logout->issuer, "http://127.0.0.1:9/r");
        CHECK(!c.namespaces[0].logout->require_exp);
    }
    config_dispose(&c);
}

static void test_logout_errors(void)
{
    UNIT_CASE("logout errors");
    const char *none[] = {NULL};
    expect_error("{\"namespaces\": [{\"name\": \"a\", \"logout\": {\"client_id\": \"x\"}}]}",
                 none, "issuer");
    expect_error("{\"namespaces\": [{\"name\": \"a\", \"logout\": {\"issuer\": \"https://i\"}}]}",
                 none, "client_id");
    expect_error("{\"namespaces\": [{\"name\": \"a\", \"logout\": {\"issuer\": \"https://i\", "
                 "\"client_id\": \"x\", \"algs\": [\"HS256\"]}}]}", none, "namespaces[0].logout.algs");
    expect_error("{\"namespaces\": [{\"name\": \"a\", \"logout\": {\"issuer\": \"https://i\", "
                 "\"client_id\": \"x\", \"algs\": [\"none\"]}}]}", none, "none");
    expect_error("{\"namespaces\": [{\"name\": \"a\", \"logout\": {\"issuer\": \"ftp://i\", "
                 "\"client_id\": \"x\"}}]}", none, "http");
    expect_error("{\"namespaces\": [{\"name\": \"a\", \"logout\": {\"isuer\": \"x\"}}]}", none,
                 "namespaces[0].logout.isuer");
    expect_error("{\"namespaces\": [{\"name\": \"a\", \"logout\": {\"issuer\": \"https://i\", "
                 "\"client_id\": \"x\", \"max_age_ms\": 5}}]}", none, "max_age_ms");
    const char *two[] = {"KCHUB_NAMESPACE", "a,b", "KCHUB_LOGOUT_ISSUER", "https://i",
                         "KCHUB_LOGOUT_CLIENT_ID", "x", NULL};
    expect_error(NULL, two, "KCHUB_LOGOUT_");
    const char *bad_exp[] = {"KCHUB_NAMESPACE", "a", "KCHUB_LOGOUT_ISSUER", "https://i",
                             "KCHUB_LOGOUT_CLIENT_ID", "x", "KCHUB_LOGOUT_REQUIRE_EXP", "yes", NULL};
    expect_error(NULL, bad_exp, "KCHUB_LOGOUT_REQUIRE_EXP");
    const char *bad_alg[] = {"KCHUB_NAMESPACE", "a", "KCHUB_LOGOUT_ISSUER", "https://i",
                             "KCHUB_LOGOUT_CLIENT_ID", "x", "KCHUB_LOGOUT_ALGS", "RS256,HS512", NULL};
    expect_error(NULL, bad_alg, "HS512");
}

int main(void)
{
    test_logout_settings();
    test_logout_errors();
    test_env_only();
    test_file_then_env();
    test_password_file();
    test_errors_name_setting();
    test_error_hides_password();
    test_redis_tls_settings();
    test_redis_tls_errors();
    return unit_finish("config");
}
