/* Writing the Prometheus text exposition format (version 0.0.4) into a growable buffer. */
#ifndef KCHUB_PROM_TEXT_H
#define KCHUB_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prom_text {
    char *data;
    size_t len;
    size_t capacity;
    bool failed; /* an allocation failed; the text is incomplete */
};

/* Appends formatted text. */
void prom_text_printf(struct prom_text *t, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends the # HELP and # TYPE lines of a metric family. */
void prom_text_family(struct prom_text *t, const char *name, const char *type, const char *help);

/* Appends one sample: name{labels} value. labels is NULL or pairs of name and value strings
 * ending with NULL; values are escaped as the format requires. */
void prom_text_sample(struct prom_text *t, const char *name, const char *const *labels,
                      double value);

/* Same for an integer value, written exactly. */
void prom_text_sample_u64(struct prom_text *t, const char *name, const char *const *labels,
                          uint64_t value);

void prom_text_dispose(struct prom_text *t);

#endif
