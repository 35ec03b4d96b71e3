/* The back-channel logout settings of one namespace: the issuer and client whose logout tokens it
 * accepts, how strictly, where the realm's keys come from, and how long the notice stream gets. */
#ifndef KCHUB_CONFIG_LOGOUT_H
#define KCHUB_CONFIG_LOGOUT_H

#include "error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct logout_config {
    char *issuer;    /* iss must equal it exactly; discovery starts from it */
    char *client_id; /* the expected aud */
    char *jwks_url;  /* NULL: discover jwks_uri from the issuer */
    char *ca_file;   /* NULL: the system CA store */
    unsigned algs;   /* JWS_ALG_BIT set, RS256 only by default */
    int64_t clock_skew_ms;
    int64_t max_age_ms;
    int64_t refresh_interval_ms;
    int64_t fetch_timeout_ms;
    int64_t stream_max_len;
    bool require_exp;
};

/* Reads a "logout" object of the config file at path (for messages, like
 * "namespaces[0].logout") into *out, starting from the defaults. Returns 0, or -1 with err naming
 * the member and the expected form. On failure *out holds nothing to dispose. */
int logout_config_from_json(json_t *object, const char *path, struct logout_config *out,
                            struct error *err);

/* Reads the KCHUB_LOGOUT_* variables. Sets *present when any is set, and then fills *out from
 * the defaults and the variables. Returns 0, or -1 with err naming the variable. */
int logout_config_from_env(const char *(*lookup)(const char *name), struct logout_config *out,
                           bool *present, struct error *err);

void logout_config_dispose(struct logout_config *config);

#endif
