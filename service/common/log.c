#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_BYTES    4096
#define LOG_MESSAGE_BYTES 3072

static _Atomic int min_level = LOG_LEVEL_INFO;
static _Atomic int line_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_labels[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

void log_configure(enum log_level level, enum log_format format)
{
    atomic_store(&min_level, (int)level);
    atomic_store(&line_format, (int)format);
}

int log_level_parse(const char *text, enum log_level *out)
{
    for (int i = LOG_LEVEL_DEBUG; i <= LOG_LEVEL_ERROR; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_format_parse(const char *text, enum log_format *out)
{
    if (strcmp(text, "text") == 0) {
        *out = LOG_FORMAT_TEXT;
        return 0;
    }
    if (strcmp(text, "json") == 0) {
        *out = LOG_FORMAT_JSON;
        return 0;
    }
    return -1;
}

bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

static size_t format_timestamp(char *out, size_t size)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    size_t len = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &utc);
    int tail = snprintf(out + len, size - len, ".%03ldZ", now.tv_nsec / 1000000);
    return len + (size_t)(tail > 0 ? tail : 0);
}

/* Copies text into out, escaping control characters (and, for JSON, quotes and backslashes), so
 * one call always yields exactly one line. Returns the new length of out. */
static size_t append_escaped(char *out, size_t len, size_t size, const char *text, bool json)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (len + 8 >= size)
            break;
        if (*p < 0x20 || *p == 0x7f) {
            len += (size_t)snprintf(out + len, size - len, "\\u%04x", *p);
        } else if (json && (*p == '"' || *p == '\\')) {
            out[len++] = '\\';
            out[len++] = (char)*p;
        } else {
            out[len++] = (char)*p;
        }
    }
    out[len] = '\0';
    return len;
}

void log_write(enum log_level level, const char *module, const char *format, ...)
{
    char message[LOG_MESSAGE_BYTES];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);

    char line[LOG_LINE_BYTES];
    char timestamp[40];
    format_timestamp(timestamp, sizeof(timestamp));
    size_t len;
    if (atomic_load_explicit(&line_format, memory_order_relaxed) == LOG_FORMAT_JSON) {
        len =
            (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"",
                             timestamp, level_names[level]);
        len = append_escaped(line, len, sizeof(line), module, true);
        len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"message\":\"");
        len = append_escaped(line, len, sizeof(line), message, true);
        len += (size_t)snprintf(line + len, sizeof(line) - len, "\"}\n");
    } else {
        len = (size_t)snprintf(line, sizeof(line), "%s %s %s: ", timestamp, level_labels[level],
                               module);
        len = append_escaped(line, len, sizeof(line), message, false);
        line[len++] = '\n';
    }
    if (len > sizeof(line))
        len = sizeof(line);
    ssize_t written = write(STDERR_FILENO, line, len);
    (void)written; /* Nowhere to report a failed write to stderr. */
}
