#include "form_body.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FORM_MEDIA_TYPE "application/x-www-form-urlencoded"

bool form_content_type_matches(const char *content_type)
{
    if (content_type == NULL)
        return false;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t len = strlen(FORM_MEDIA_TYPE);
    if (strncasecmp(content_type, FORM_MEDIA_TYPE, len) != 0)
        return false;
    const char *rest = content_type + len;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

static int hex_digit(char c)
{
    if (isdigit((unsigned char)c))
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int decode(const char *text, size_t len, char **value, size_t *value_len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int high = i + 1 < len ? hex_digit(text[i + 1]) : -1;
            int low = i + 2 < len ? hex_digit(text[i + 2]) : -1;
            if (high < 0 || low < 0 || (high | low) == 0) {
                free(out);
                return -1;
            }
            c = (char)(high * 16 + low);
            i += 2;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    *value = out;
    *value_len = n;
    return 0;
}

int form_field_find(const char *body, size_t body_len, const char *name, char **value,
                    size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *end = body + body_len;
    for (const char *pair = body; pair < end;) {
        const char *amp = memchr(pair, '&', (size_t)(end - pair));
        const char *pair_end = amp != NULL ? amp : end;
        const char *eq = memchr(pair, '=', (size_t)(pair_end - pair));
        size_t key_len = (size_t)((eq != NULL ? eq : pair_end) - pair);
        if (key_len == name_len && memcmp(pair, name, name_len) == 0) {
            const char *start = eq != NULL ? eq + 1 : pair_end;
            return decode(start, (size_t)(pair_end - start), value, value_len) == 0 ? 1 : -1;
        }
        pair = pair_end + 1;
    }
    return 0;
}
