#include "prom_text.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(struct prom_text *t, size_t more)
{
    if (t->failed)
        return false;
    if (t->len + more + 1 <= t->capacity)
        return true;
    size_t capacity = t->capacity == 0 ? 4096 : t->capacity;
    while (capacity < t->len + more + 1)
        capacity *= 2;
    char *grown = realloc(t->data, capacity);
    if (grown == NULL) {
        t->failed = true;
        return false;
    }
    t->data = grown;
    t->capacity = capacity;
    return true;
}

void prom_text_printf(struct prom_text *t, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int needed = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (needed < 0 || !reserve(t, (size_t)needed))
        return;
    va_start(args, format);
    vsnprintf(t->data + t->len, t->capacity - t->len, format, args);
    va_end(args);
    t->len += (size_t)needed;
}

void prom_text_family(struct prom_text *t, const char *name, const char *type, const char *help)
{
    prom_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void append_labels(struct prom_text *t, const char *const *labels)
{
    if (labels == NULL || labels[0] == NULL)
        return;
    prom_text_printf(t, "{");
    for (size_t i = 0; labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
        prom_text_printf(t, "%s%s=\"", i > 0 ? "," : "", labels[i]);
        for (const char *c = labels[i + 1]; *c != '\0'; c++) {
            if (*c == '\\' || *c == '"')
                prom_text_printf(t, "\\%c", *c);
            else if (*c == '\n')
                prom_text_printf(t, "\\n");
            else
                prom_text_printf(t, "%c", *c);
        }
        prom_text_printf(t, "\"");
    }
    prom_text_printf(t, "}");
}

void prom_text_sample(struct prom_text *t, const char *name, const char *const *labels,
                      double value)
{
    prom_text_printf(t, "%s", name);
    append_labels(t, labels);
    prom_text_printf(t, " %.9g\n", value);
}

void prom_text_sample_u64(struct prom_text *t, const char *name, const char *const *labels,
                          uint64_t value)
{
    prom_text_printf(t, "%s", name);
    append_labels(t, labels);
    prom_text_printf(t, " %" PRIu64 "\n", value);
}

void prom_text_dispose(struct prom_text *t)
{
    free(t->data);
    memset(t, 0, sizeof(*t));
}
