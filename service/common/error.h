/* Error reporting shared by every module: a status return plus a caller-owned message buffer. */
#ifndef KCHUB_ERROR_H
#define KCHUB_ERROR_H

#include <stddef.h>

#define ERROR_MESSAGE_BYTES 512

/* A human-readable description of the last failure, written by the callee, owned by the caller.
 * Functions that take one return 0 on success and -1 on failure unless their header says other. */
struct error {
    char message[ERROR_MESSAGE_BYTES];
};

/* Formats a message into err, which may be NULL (the message is then dropped). */
void error_set(struct error *err, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes err's current message with a formatted context, as "context: message". */
void error_prefix(struct error *err, const char *format, ...) __attribute__((format(printf, 2, 3)));

#endif
