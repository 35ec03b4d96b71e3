/* Fetches an issuer's signing keys over HTTP with libcurl: the JWKS URL either comes from the
 * settings or is discovered as jwks_uri in <issuer>/.well-known/openid-configuration. TLS peer
 * and host verification are always on, only http and https are allowed, redirects are not
 * followed, every response needs a 2xx status, and bodies over REALM_KEYS_BODY_MAX_BYTES abort
 * the transfer while it is read. libcurl's proxy environment variables (https_proxy, no_proxy)
 * apply. The process must call curl_global_init before the first fetch and before it starts
 * threads. */
#ifndef KCHUB_REALM_FETCH_H
#define KCHUB_REALM_FETCH_H

#include "error.h"
#include "realm_keys.h"

#include <stdint.h>

/* Defaults that keep a refetch inside a logout request well below the 5 s that Keycloak waits
 * for the back-channel logout response. */
#define REALM_FETCH_CONNECT_TIMEOUT_MS_DEFAULT 1000
#define REALM_FETCH_TOTAL_TIMEOUT_MS_DEFAULT   3000

/* The URLs, CA file and timeouts of a fetch. Strings are borrowed for the duration of a call. */
struct realm_fetch_settings {
    const char *issuer;   /* the expected iss, such as https://host/realms/name; required */
    const char *jwks_url; /* NULL or empty: discover jwks_uri from the issuer */
    const char *ca_file;  /* PEM CA bundle; NULL or empty: libcurl's default CA store */
    int64_t connect_timeout_ms;
    int64_t total_timeout_ms; /* bounds the whole fetch, discovery and JWKS together */
};

/* Fetches and parses the key set. With discovery, the document's "issuer" must equal
 * settings->issuer exactly and its "jwks_uri" must be an http or https URL (https when the issuer
 * is https). Returns a new key set (see realm_key_set_parse), or NULL with err naming the URL,
 * what failed and what to check. */
struct realm_key_set *realm_fetch_key_set(const struct realm_fetch_settings *settings,
                                          struct error *err);

/* Returns the URL of the issuer's discovery document in a new string (caller frees): the issuer
 * without a trailing slash, then "/.well-known/openid-configuration", as OpenID Connect
 * Discovery 1.0 section 4 builds it. NULL when out of memory. */
char *realm_fetch_discovery_url(const char *issuer);

#endif
