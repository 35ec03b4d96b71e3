#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void error_set(struct error *err, const char *format, ...)
{
    if (err == NULL)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(err->message, sizeof(err->message), format, args);
    va_end(args);
}

void error_prefix(struct error *err, const char *format, ...)
{
    if (err == NULL)
        return;
    char context[ERROR_MESSAGE_BYTES];
    va_list args;
    va_start(args, format);
    vsnprintf(context, sizeof(context), format, args);
    va_end(args);

    /* Build "context: message" in place, keeping as much of both as fits. */
    size_t context_len = strlen(context);
    size_t message_len = strlen(err->message);
    size_t capacity = sizeof(err->message) - 1;
    if (context_len + 2 > capacity)
        context_len = capacity - 2;
    size_t kept =
        message_len < capacity - context_len - 2 ? message_len : capacity - context_len - 2;
    memmove(err->message + context_len + 2, err->message, kept);
    memcpy(err->message, context, context_len);
    err->message[context_len] = ':';
    err->message[context_len + 1] = ' ';
    err->message[context_len + 2 + kept] = '\0';
}
