/* Logging to stderr: one line per event, a level, a module tag, text or JSON lines.
 * Thread-safe: each line goes out in a single write(2). The level is checked before formatting. */
#ifndef KCHUB_LOG_H
#define KCHUB_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* Sets the minimum level written and the line format. Call before starting threads. */
void log_configure(enum log_level min_level, enum log_format format);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1 for any other text. */
int log_level_parse(const char *text, enum log_level *out);

/* Parses "text" or "json". Returns 0, or -1 for any other text. */
int log_format_parse(const char *text, enum log_format *out);

bool log_enabled(enum log_level level);

/* Writes one line. module names the subsystem ("http", "redis", "stream"). Newlines and other
 * control characters in the message are escaped, so a value read from Redis cannot forge lines. */
void log_write(enum log_level level, const char *module, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#define log_at(level, module, ...)                                                                 \
    do {                                                                                           \
        if (log_enabled(level))                                                                    \
            log_write(level, module, __VA_ARGS__);                                                 \
    } while (0)
#define log_debug(module, ...) log_at(LOG_LEVEL_DEBUG, module, __VA_ARGS__)
#define log_info(module, ...)  log_at(LOG_LEVEL_INFO, module, __VA_ARGS__)
#define log_warn(module, ...)  log_at(LOG_LEVEL_WARN, module, __VA_ARGS__)
#define log_error(module, ...) log_at(LOG_LEVEL_ERROR, module, __VA_ARGS__)

#endif
