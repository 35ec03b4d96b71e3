/* A minimal unit-test harness: each check prints file:line and the failed condition, and the
 * program ends with a "N passed, N failed" line and a non-zero status when any check failed. */
#ifndef KCHUB_UNIT_H
#define KCHUB_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_checks_passed;
static int unit_checks_failed;
static const char *unit_case_name = "";

#define UNIT_CASE(name) (unit_case_name = (name))

#define CHECK(condition)                                                                           \
    do {                                                                                           \
        if (condition) {                                                                           \
            unit_checks_passed++;                                                                  \
        } else {                                                                                   \
            unit_checks_failed++;                                                                  \
            fprintf(stderr, "%s:%d: [%s] check failed: %s\n", __FILE__, __LINE__,                 \
                    unit_case_name, #condition);                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_INT(actual, expected)                                                                \
    do {                                                                                           \
        long long unit_a = (long long)(actual), unit_e = (long long)(expected);                    \
        if (unit_a == unit_e) {                                                                    \
            unit_checks_passed++;                                                                  \
        } else {                                                                                   \
            unit_checks_failed++;                                                                  \
            fprintf(stderr, "%s:%d: [%s] %s is %lld, expected %lld\n", __FILE__, __LINE__,         \
                    unit_case_name, #actual, unit_a, unit_e);                                      \
        }                                                                                          \
    } while (0)

#define CHECK_STR(actual, expected)                                                                \
    do {                                                                                           \
        const char *unit_a = (actual), *unit_e = (expected);                                       \
        if (unit_a != NULL && unit_e != NULL && strcmp(unit_a, unit_e) == 0) {                     \
            unit_checks_passed++;                                                                  \
        } else {                                                                                   \
            unit_checks_failed++;                                                                  \
            fprintf(stderr, "%s:%d: [%s] %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__,     \
                    unit_case_name, #actual, unit_a ? unit_a : "(null)",                           \
                    unit_e ? unit_e : "(null)");                                                   \
        }                                                                                          \
    } while (0)

/* Prints the summary line and returns the process exit status. */
static inline int unit_finish(const char *unit)
{
    printf("%s: %d passed, %d failed\n", unit, unit_checks_passed, unit_checks_failed);
    return unit_checks_failed == 0 ? 0 : 1;
}

#endif
