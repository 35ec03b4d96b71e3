#include "http_response.h"

#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESCRIPTION_MAX_BYTES 400

struct MHD_Response *http_json_error(const char *error, const char *description)
{
    json_t *body = json_pack("{s:s, s:s}", "error", error, "error_description", description);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return NULL;
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (response == NULL) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return response;
}

enum MHD_Result http_queue_json_error(struct MHD_Connection *connection, unsigned status,
                                      const char *error, const char *format, ...)
{
    char description[DESCRIPTION_MAX_BYTES];
    va_list args;
    va_start(args, format);
    vsnprintf(description, sizeof(description), format, args);
    va_end(args);
    struct MHD_Response *response = http_json_error(error, description);
    if (response == NULL)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    if (status >= 500)
        log_error("http", "answered %u %s: %s", status, error, description);
    return rc;
}
