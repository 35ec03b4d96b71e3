#include "redis_url.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define REDIS_DEFAULT_PORT 6379

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Returns a new string with %XX sequences decoded, or NULL if one is invalid or out of memory. */
static char *percent_decode(const char *text, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '%') {
            out[n++] = text[i];
            continue;
        }
        int high = i + 1 < len ? hex_value(text[i + 1]) : -1;
        int low = i + 2 < len ? hex_value(text[i + 2]) : -1;
        if (high < 0 || low < 0 || (high == 0 && low == 0)) {
            free(out);
            return NULL;
        }
        out[n++] = (char)(high * 16 + low);
        i += 2;
    }
    out[n] = '\0';
    return out;
}

static int parse_port(const char *text, size_t len, int *port)
{
    if (len == 0 || len > 5)
        return -1;
    int value = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i]))
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    if (value < 1 || value > 65535)
        return -1;
    *port = value;
    return 0;
}

static int parse_userinfo(const char *start, size_t len, struct redis_settings *out,
                          struct error *err)
{
    const char *colon = memchr(start, ':', len);
    size_t user_len = colon != NULL ? (size_t)(colon - start) : len;
    if (user_len > 0) {
        out->username = percent_decode(start, user_len);
        if (out->username == NULL) {
            error_set(err, "invalid user name in the Redis URL: bad %%-escape");
            return -1;
        }
    }
    if (colon != NULL) {
        out->password = percent_decode(colon + 1, len - user_len - 1);
        if (out->password == NULL) {
            error_set(err, "invalid password in the Redis URL: bad %%-escape");
            return -1;
        }
    }
    return 0;
}

static int parse_host_port(const char *start, size_t len, struct redis_settings *out,
                           struct error *err)
{
    const char *host = start;
    size_t host_len;
    const char *rest;
    if (len > 0 && start[0] == '[') {
        const char *close = memchr(start, ']', len);
        if (close == NULL) {
            error_set(err, "invalid Redis URL host: '[' without ']' around an IPv6 address");
            return -1;
        }
        host = start + 1;
        host_len = (size_t)(close - host);
        rest = close + 1;
    } else {
        const char *colon = memchr(start, ':', len);
        host_len = colon != NULL ? (size_t)(colon - start) : len;
        rest = start + host_len;
    }
    if (host_len == 0) {
        error_set(err, "invalid Redis URL: the host is missing; expected redis://host:port");
        return -1;
    }
    size_t rest_len = len - (size_t)(rest - start);
    out->port = REDIS_DEFAULT_PORT;
    if (rest_len > 0) {
        if (rest[0] != ':' || parse_port(rest + 1, rest_len - 1, &out->port) != 0) {
            error_set(err, "invalid Redis URL port \"%.*s\": expected a number from 1 to 65535",
                      (int)(rest_len > 1 ? rest_len - 1 : 0), rest + 1);
            return -1;
        }
    }
    out->host = strndup(host, host_len);
    if (out->host == NULL) {
        error_set(err, "out of memory");
        return -1;
    }
    return 0;
}

static int parse_database(const char *path, struct redis_settings *out, struct error *err)
{
    out->database = 0;
    if (*path == '\0' || strcmp(path, "/") == 0)
        return 0;
    char *end;
    long value = strtol(path + 1, &end, 10);
    if (!isdigit((unsigned char)path[1]) || *end != '\0' || value < 0 || value > 1000000) {
        error_set(err, "invalid Redis URL database \"%s\": expected /NUMBER", path + 1);
        return -1;
    }
    out->database = (int)value;
    return 0;
}

int redis_url_parse(const char *url, struct redis_settings *out, struct error *err)
{
    const char *rest;
    if (strncmp(url, "redis://", 8) == 0) {
        out->tls = false;
        rest = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        out->tls = true;
        rest = url + 9;
    } else {
        error_set(err, "invalid Redis URL: expected redis://host:port or rediss://host:port");
        return -1;
    }
    out->host = out->username = out->password = NULL;

    const char *path = strchr(rest, '/');
    size_t authority_len = path != NULL ? (size_t)(path - rest) : strlen(rest);
    if (strchr(rest, '?') != NULL) {
        error_set(err, "invalid Redis URL: query parameters are not supported; use the settings");
        return -1;
    }
    const char *at = memrchr(rest, '@', authority_len);
    const char *hostport = rest;
    if (at != NULL) {
        if (parse_userinfo(rest, (size_t)(at - rest), out, err) != 0)
            goto fail;
        hostport = at + 1;
    }
    if (parse_host_port(hostport, authority_len - (size_t)(hostport - rest), out, err) != 0)
        goto fail;
    if (parse_database(path != NULL ? path : "", out, err) != 0)
        goto fail;
    return 0;

fail:
    free(out->host);
    free(out->username);
    if (out->password != NULL)
        explicit_bzero(out->password, strlen(out->password));
    free(out->password);
    out->host = out->username = out->password = NULL;
    return -1;
}

void redis_settings_dispose(struct redis_settings *s)
{
    free(s->host);
    free(s->username);
    if (s->password != NULL) {
        explicit_bzero(s->password, strlen(s->password));
        free(s->password);
    }
    free(s->client_name);
    free(s->tls_ca_file);
    free(s->tls_server_name);
    free(s->tls_cert_file);
    free(s->tls_key_file);
    s->host = s->username = s->password = s->client_name = NULL;
    s->tls_ca_file = s->tls_server_name = s->tls_cert_file = s->tls_key_file = NULL;
}
