/* An HTTP response body collected through libcurl's write callback, with a size limit. */
#ifndef KCHUB_BODY_BUFFER_H
#define KCHUB_BODY_BUFFER_H

#include <stdbool.h>
#include <stddef.h>

struct body_buffer {
    char *data; /* NUL-terminated once anything arrived; the owner frees it */
    size_t len;
    size_t max;     /* bytes accepted at most */
    bool too_large; /* a chunk would have passed max; the transfer was stopped */
};

/* A CURLOPT_WRITEFUNCTION callback with a struct body_buffer as CURLOPT_WRITEDATA. Appends the
 * chunk and returns its length, or returns 0, which makes libcurl fail the transfer with
 * CURLE_WRITE_ERROR, when the body would pass max (too_large is then set) or memory runs out. */
size_t body_buffer_write(char *data, size_t size, size_t count, void *buffer);

#endif
