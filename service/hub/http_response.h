/* Response builders shared by the HTTP routes. */
#ifndef KCHUB_HTTP_RESPONSE_H
#define KCHUB_HTTP_RESPONSE_H

#include <microhttpd.h>

/* Builds {"error": error, "error_description": description} with Content-Type application/json
 * and Cache-Control no-store. Returns NULL when out of memory. */
struct MHD_Response *http_json_error(const char *error, const char *description);

/* Queues a one-off JSON error and logs it when status is 500 or above. */
enum MHD_Result http_queue_json_error(struct MHD_Connection *connection, unsigned status,
                                      const char *error, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

#endif
