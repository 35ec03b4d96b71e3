/* The ctl's Redis TLS settings: the --redis-tls-* options, with the same KCHUB_REDIS_TLS_*
 * variables as the hub as the fallback, applied to the connection settings. */
#ifndef KCHUB_TLS_OPTIONS_H
#define KCHUB_TLS_OPTIONS_H

#include "error.h"
#include "redis_conn.h"

/* The option values as given; NULL when not given. Strings point into argv. */
struct tls_options {
    const char *ca_file;
    const char *server_name;
    const char *cert_file;
    const char *key_file;
    const char *verify; /* "true" or "false" */
};

/* Fills the unset options from KCHUB_REDIS_TLS_CA_FILE, _SERVER_NAME, _CERT_FILE, _KEY_FILE and
 * KCHUB_REDIS_TLS_VERIFY, copies them into redis, and checks them against the URL's scheme (TLS
 * settings need rediss://) and each other (a certificate needs its key). Returns 0, or -1 with
 * err naming the option and the expected form. */
int tls_options_apply(const struct tls_options *options, struct redis_settings *redis,
                      struct error *err);

#endif
