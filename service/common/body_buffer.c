#include "body_buffer.h"

#include <stdlib.h>
#include <string.h>

size_t body_buffer_write(char *data, size_t size, size_t count, void *buffer)
{
    struct body_buffer *body = buffer;
    size_t len = size * count;
    if (len > body->max - body->len) {
        body->too_large = true;
        return 0;
    }
    char *grown = realloc(body->data, body->len + len + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + body->len, data, len);
    body->data = grown;
    body->len += len;
    body->data[body->len] = '\0';
    return len;
}
