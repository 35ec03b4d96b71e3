#include "tls_options.h"

#include <stdlib.h>
#include <string.h>

static const char *given_or_env(const char *given, const char *env)
{
    if (given != NULL)
        return given[0] != '\0' ? given : NULL;
    const char *value = getenv(env);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

static int copy_setting(char **target, const char *value, struct error *err)
{
    if (value == NULL)
        return 0;
    *target = strdup(value);
    if (*target == NULL) {
        error_set(err, "out of memory");
        return -1;
    }
    return 0;
}

int tls_options_apply(const struct tls_options *o, struct redis_settings *redis, struct error *err)
{
    const char *verify = given_or_env(o->verify, "KCHUB_REDIS_TLS_VERIFY");
    if (verify != NULL && strcmp(verify, "true") != 0 && strcmp(verify, "false") != 0) {
        error_set(err,
                  "--redis-tls-verify (KCHUB_REDIS_TLS_VERIFY): expected true or false, got "
                  "\"%.20s\"",
                  verify);
        return -1;
    }
    redis->tls_skip_verify = verify != NULL && strcmp(verify, "false") == 0;
    if (copy_setting(&redis->tls_ca_file, given_or_env(o->ca_file, "KCHUB_REDIS_TLS_CA_FILE"),
                     err) != 0 ||
        copy_setting(&redis->tls_server_name,
                     given_or_env(o->server_name, "KCHUB_REDIS_TLS_SERVER_NAME"), err) != 0 ||
        copy_setting(&redis->tls_cert_file, given_or_env(o->cert_file, "KCHUB_REDIS_TLS_CERT_FILE"),
                     err) != 0 ||
        copy_setting(&redis->tls_key_file, given_or_env(o->key_file, "KCHUB_REDIS_TLS_KEY_FILE"),
                     err) != 0)
        return -1;
    if ((redis->tls_cert_file == NULL) != (redis->tls_key_file == NULL)) {
        error_set(err, "--redis-tls-cert-file and --redis-tls-key-file (KCHUB_REDIS_TLS_CERT_FILE, "
                       "KCHUB_REDIS_TLS_KEY_FILE) go together; give both or neither");
        return -1;
    }
    bool tls_set = redis->tls_ca_file != NULL || redis->tls_server_name != NULL ||
                   redis->tls_cert_file != NULL || redis->tls_skip_verify;
    if (tls_set && !redis->tls) {
        error_set(err, "TLS options are given but the Redis URL starts with redis://; use "
                       "rediss:// to connect with TLS");
        return -1;
    }
    return 0;
}
