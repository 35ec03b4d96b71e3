#include "realm_fetch.h"

#include "body_buffer.h"

#include "clock.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISCOVERY_PATH "/.well-known/openid-configuration"
/* Maximum characters of a response value quoted in an error message; longer ones are cut. */
#define QUOTED_VALUE_MAX_CHARS 200

/* Sets the options of one transfer. Returns 0, or -1 when libcurl rejects an option that the
 * protocol, redirect or TLS checks depend on (an older or differently built libcurl). */
static int configure_transfer(CURL *curl, const struct realm_fetch_settings *settings,
                              const char *url, int64_t remaining_ms)
{
    int64_t connect_ms =
        settings->connect_timeout_ms < remaining_ms ? settings->connect_timeout_ms : remaining_ms;
    if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK)
        return -1;
    if (settings->ca_file != NULL && settings->ca_file[0] != '\0' &&
        curl_easy_setopt(curl, CURLOPT_CAINFO, settings->ca_file) != CURLE_OK)
        return -1;
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* Timeouts must not use SIGALRM in threads. */
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)remaining_ms);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)REALM_KEYS_BODY_MAX_BYTES);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "kc-cluster-hub/" KCHUB_VERSION);
    return 0;
}

/* Writes the error of a failed transfer, with what to check. */
static void describe_transfer_error(CURLcode result, const char *curl_error,
                                    const struct body_buffer *body,
                                    const struct realm_fetch_settings *settings, struct error *err)
{
    const char *detail = curl_error[0] != '\0' ? curl_error : curl_easy_strerror(result);
    if (body->too_large || result == CURLE_FILESIZE_EXCEEDED) {
        error_set(err,
                  "the response is larger than %zu bytes; check that the URL serves the "
                  "realm's document and not something else",
                  REALM_KEYS_BODY_MAX_BYTES);
    } else if (result == CURLE_OPERATION_TIMEDOUT) {
        error_set(err,
                  "timed out (%s); check that the server is reachable and answers within "
                  "the timeouts (connect %lld ms, total %lld ms)",
                  detail, (long long)settings->connect_timeout_ms,
                  (long long)settings->total_timeout_ms);
    } else if (result == CURLE_PEER_FAILED_VERIFICATION || result == CURLE_SSL_CACERT_BADFILE ||
               result == CURLE_SSL_CONNECT_ERROR) {
        error_set(err, "TLS failed (%s); check the server certificate and the CA file setting",
                  detail);
    } else if (result == CURLE_UNSUPPORTED_PROTOCOL) {
        error_set(err, "the URL scheme is not allowed (%s); use an http or https URL", detail);
    } else {
        error_set(err, "the request failed (%s); check the URL and that the server is reachable",
                  detail);
    }
}

/* GETs url into *body (caller frees body->data) before deadline_ms on the monotonic clock.
 * what names the document in errors. Returns 0 on a 2xx response, or -1 with err set. */
static int http_get(const struct realm_fetch_settings *settings, const char *url, const char *what,
                    int64_t deadline_ms, struct body_buffer *body, struct error *err)
{
    char curl_error[CURL_ERROR_SIZE] = "";
    long status = 0;
    int rc = -1;

    memset(body, 0, sizeof(*body));
    body->max = REALM_KEYS_BODY_MAX_BYTES;
    int64_t remaining_ms = deadline_ms - clock_monotonic_ms();
    if (remaining_ms < 1) {
        error_set(err,
                  "fetching the %s from %s: no time left of the total timeout of %lld ms; "
                  "raise the total timeout",
                  what, url, (long long)settings->total_timeout_ms);
        return -1;
    }
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        error_set(err, "fetching the %s from %s: libcurl could not create a transfer", what, url);
        return -1;
    }
    if (configure_transfer(curl, settings, url, remaining_ms) != 0) {
        error_set(err,
                  "fetching the %s from %s: libcurl rejected the protocol, redirect or TLS "
                  "options; use libcurl 7.85 or later built with TLS support",
                  what, url);
        goto cleanup;
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_buffer_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);

    CURLcode result = curl_easy_perform(curl);
    if (result != CURLE_OK) {
        describe_transfer_error(result, curl_error, body, settings, err);
        error_prefix(err, "fetching the %s from %s", what, url);
        goto cleanup;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        error_set(err, "fetching the %s from %s: HTTP status %ld, expected 2xx%s", what, url,
                  status,
                  status >= 300 && status < 400
                      ? " (redirects are not followed, so configure the final URL)"
                      : "; check the issuer and JWKS URL settings");
        goto cleanup;
    }
    rc = 0;

cleanup:
    curl_easy_cleanup(curl);
    if (rc != 0) {
        free(body->data);
        memset(body, 0, sizeof(*body));
    }
    return rc;
}

char *realm_fetch_discovery_url(const char *issuer)
{
    size_t len = strlen(issuer);
    if (len > 0 && issuer[len - 1] == '/')
        len--;
    size_t size = len + sizeof(DISCOVERY_PATH);
    char *url = malloc(size);
    if (url != NULL)
        snprintf(url, size, "%.*s%s", (int)len, issuer, DISCOVERY_PATH);
    return url;
}

static bool has_scheme(const char *url, const char *scheme)
{
    size_t len = strlen(scheme);
    return strncmp(url, scheme, len) == 0 && strncmp(url + len, "://", 3) == 0;
}

/* Reads jwks_uri from a discovery document after checking its issuer. Returns a new string, or
 * NULL with err set. */
static char *jwks_uri_from_discovery(const struct realm_fetch_settings *settings, const char *url,
                                     const struct body_buffer *body, struct error *err)
{
    json_error_t json_error;
    char *jwks_uri = NULL;
    json_t *doc = json_loadb(body->data, body->len, JSON_REJECT_DUPLICATES, &json_error);
    if (!json_is_object(doc)) {
        error_set(err,
                  "the discovery document at %s is not a JSON object (%s); check the issuer "
                  "setting",
                  url, doc == NULL ? json_error.text : "another JSON value");
        goto cleanup;
    }

    const char *issuer = json_string_value(json_object_get(doc, "issuer"));
    if (issuer == NULL || strcmp(issuer, settings->issuer) != 0 ||
        strlen(issuer) != json_string_length(json_object_get(doc, "issuer"))) {
        error_set(err,
                  "the discovery document at %s names issuer \"%.*s\", but the configured "
                  "issuer is \"%s\"; set the issuer to exactly the value the realm reports",
                  url, QUOTED_VALUE_MAX_CHARS, issuer != NULL ? issuer : "(none)",
                  settings->issuer);
        goto cleanup;
    }

    const char *uri = json_string_value(json_object_get(doc, "jwks_uri"));
    if (uri == NULL || (!has_scheme(uri, "https") && !has_scheme(uri, "http"))) {
        error_set(err,
                  "the discovery document at %s has no http or https \"jwks_uri\"; check "
                  "that the issuer is an OpenID provider, or set the JWKS URL",
                  url);
        goto cleanup;
    }
    if (has_scheme(settings->issuer, "https") && !has_scheme(uri, "https")) {
        error_set(err,
                  "the discovery document at %s names jwks_uri \"%.*s\", which is not https "
                  "although the issuer is; set the JWKS URL if that is intended",
                  url, QUOTED_VALUE_MAX_CHARS, uri);
        goto cleanup;
    }
    jwks_uri = strdup(uri);
    if (jwks_uri == NULL)
        error_set(err, "out of memory reading the discovery document at %s", url);

cleanup:
    json_decref(doc);
    return jwks_uri;
}

/* Fetches the discovery document and returns its jwks_uri (caller frees), or NULL with err. */
static char *discover_jwks_uri(const struct realm_fetch_settings *settings, int64_t deadline_ms,
                               struct error *err)
{
    char *url = realm_fetch_discovery_url(settings->issuer);
    if (url == NULL) {
        error_set(err, "out of memory building the discovery URL of %s", settings->issuer);
        return NULL;
    }
    struct body_buffer body;
    char *jwks_uri = NULL;
    if (http_get(settings, url, "discovery document", deadline_ms, &body, err) == 0)
        jwks_uri = jwks_uri_from_discovery(settings, url, &body, err);
    free(body.data);
    free(url);
    return jwks_uri;
}

struct realm_key_set *realm_fetch_key_set(const struct realm_fetch_settings *settings,
                                          struct error *err)
{
    int64_t deadline_ms = clock_monotonic_ms() + settings->total_timeout_ms;
    char *discovered = NULL;
    const char *url = settings->jwks_url;
    if (url == NULL || url[0] == '\0') {
        discovered = discover_jwks_uri(settings, deadline_ms, err);
        if (discovered == NULL)
            return NULL;
        url = discovered;
    }

    struct body_buffer body;
    struct realm_key_set *set = NULL;
    if (http_get(settings, url, "JWKS", deadline_ms, &body, err) == 0) {
        set = realm_key_set_parse(body.data != NULL ? body.data : "", body.len, err);
        if (set == NULL)
            error_prefix(err, "the JWKS at %s", url);
    }
    free(body.data);
    free(discovered);
    return set;
}
