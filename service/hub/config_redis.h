/* The TLS and access-check settings of the hub's "redis" section: the TLS files, the server
 * name, whether to verify the certificate, and whether to check the ACL at start. config.c calls
 * these after its own tables, so file and environment precedence stay the same. */
#ifndef KCHUB_CONFIG_REDIS_H
#define KCHUB_CONFIG_REDIS_H

#include "error.h"
#include "redis_conn.h"

#include <jansson.h>
#include <stdbool.h>

/* The members of the "redis" object that this module reads, for the unknown-member check. */
#define CONFIG_REDIS_MEMBERS                                                                       \
    "tls_ca_file", "tls_server_name", "tls_cert_file", "tls_key_file", "tls_verify", "check_access"

/* Reads the module's members of the config file's "redis" object (NULL: none) into redis and
 * *skip_access_check (check_access false). Returns 0, or -1 with err naming the member and the
 * expected type. */
int config_redis_read_file(json_t *section, struct redis_settings *redis, bool *skip_access_check,
                           struct error *err);

/* Applies KCHUB_REDIS_TLS_CA_FILE, _SERVER_NAME, _CERT_FILE, _KEY_FILE, KCHUB_REDIS_TLS_VERIFY
 * and KCHUB_REDIS_CHECK_ACCESS ("true" or "false"), then checks the combination: a client
 * certificate needs its key, and TLS settings need a rediss:// url. Returns 0, or -1 with err
 * naming the setting. */
int config_redis_read_env(const char *(*lookup)(const char *name), const char *url,
                          struct redis_settings *redis, bool *skip_access_check, struct error *err);

#endif
