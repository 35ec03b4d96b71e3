/* application/x-www-form-urlencoded request bodies, as a back-channel logout POST sends them. */
#ifndef KCHUB_FORM_BODY_H
#define KCHUB_FORM_BODY_H

#include <stdbool.h>
#include <stddef.h>

/* True when a Content-Type header value is application/x-www-form-urlencoded, in any letter
 * case, with or without parameters (Keycloak sends "; charset=ISO-8859-1"). */
bool form_content_type_matches(const char *content_type);

/* Finds the field name in body (body_len bytes) and decodes its value ('+' as space, %XX escapes)
 * into a new NUL-terminated string in *value (caller frees), its length in *value_len. Returns 1
 * when found, 0 when absent, -1 when the value has an invalid escape or decodes to a NUL byte, or
 * when out of memory. With the field repeated, the first one counts. */
int form_field_find(const char *body, size_t body_len, const char *name, char **value,
                    size_t *value_len);

#endif
