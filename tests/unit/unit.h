/* Minimal assertion helpers for the unit tests (no external framework).
 *
 * Every CHECK counts; a failing one prints file:line, the expression and an
 * optional message, and makes uw_t_done() return non-zero. Set UNIT_VERBOSE=1 to
 * also print every passing check. Group checks with uw_t_section("name"): the
 * summary prints one line per section with its number of checks. */
#ifndef UW_UNIT_H
#define UW_UNIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static int uw_t_checks, uw_t_failures;
static int uw_t_sec_checks, uw_t_sec_failures;
static const char *uw_t_sec_name; /* points to uw_t_sec_buf while a section is open */
static char uw_t_sec_buf[128];
static bool uw_t_cond_; /* see CHECK */

static inline bool uw_t_verbose(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *v = getenv("UNIT_VERBOSE");
        cached = v && *v && strcmp(v, "0") != 0;
    }
    return cached;
}

static inline void uw_t_section_end(void)
{
    if (uw_t_sec_name)
        printf("%-4s %-44s %4d checks%s\n", uw_t_sec_failures ? "FAIL" : "ok", uw_t_sec_name,
               uw_t_sec_checks, uw_t_sec_failures ? " (some failed)" : "");
    uw_t_sec_name = NULL;
    uw_t_sec_checks = uw_t_sec_failures = 0;
}

/* Start a new section; the name is copied. */
static inline void uw_t_section(const char *name)
{
    uw_t_section_end();
    snprintf(uw_t_sec_buf, sizeof uw_t_sec_buf, "%s", name);
    uw_t_sec_name = uw_t_sec_buf;
    fflush(stdout);
}

/* Returns cond so callers can skip dependent checks. */
static inline bool uw_t_check(bool cond, const char *file, int line, const char *expr,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static inline bool uw_t_check(bool cond, const char *file, int line, const char *expr,
                              const char *fmt, ...)
{
    uw_t_checks++;
    uw_t_sec_checks++;
    if (cond && !uw_t_verbose())
        return true;
    char msg[2048] = "";
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if (cond) {
        printf("  pass %s:%d: %s%s%s\n", file, line, expr, *msg ? " -- " : "", msg);
        return true;
    }
    uw_t_failures++;
    uw_t_sec_failures++;
    printf("  FAILED %s:%d: [%s] %s%s%s\n", file, line, uw_t_sec_name ? uw_t_sec_name : "-", expr,
           *msg ? " -- " : "", msg);
    fflush(stdout);
    return false;
}

static inline int uw_t_done(const char *program)
{
    (void)uw_t_cond_;
    uw_t_section_end();
    printf("%s: %d checks, %d failed\n", program, uw_t_checks, uw_t_failures);
    return uw_t_failures ? 1 : 0;
}

/* The condition is evaluated before the message arguments (comma operator), so
 * a message may show values the condition's calls produced (err.msg...). */
#define CHECK(cond)                                                                                \
    (uw_t_cond_ = (cond), uw_t_check(uw_t_cond_, __FILE__, __LINE__, #cond, "%s", ""))
/* CHECKF(cond, fmt, args...): message printed when the check fails. */
#define CHECKF(cond, ...)                                                                          \
    (uw_t_cond_ = (cond), uw_t_check(uw_t_cond_, __FILE__, __LINE__, #cond, __VA_ARGS__))

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long uw_t_a_ = (long long)(a), uw_t_b_ = (long long)(b);                              \
        uw_t_check(uw_t_a_ == uw_t_b_, __FILE__, __LINE__, #a " == " #b, "%lld != %lld", uw_t_a_,  \
                   uw_t_b_);                                                                       \
    } while (0)

#define CHECK_U64(a, b)                                                                            \
    do {                                                                                           \
        unsigned long long uw_t_a_ = (unsigned long long)(a), uw_t_b_ = (unsigned long long)(b);   \
        uw_t_check(uw_t_a_ == uw_t_b_, __FILE__, __LINE__, #a " == " #b, "0x%llx != 0x%llx",       \
                   uw_t_a_, uw_t_b_);                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *uw_t_a_ = (a), *uw_t_b_ = (b);                                                 \
        uw_t_check(uw_t_a_ &&uw_t_b_ &&strcmp(uw_t_a_, uw_t_b_) == 0, __FILE__, __LINE__,          \
                   #a " == " #b, "'%s' != '%s'", uw_t_a_ ? uw_t_a_ : "(null)",                     \
                   uw_t_b_ ? uw_t_b_ : "(null)");                                                  \
    } while (0)

/* Substring present / absent in a message. */
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *uw_t_h_ = (hay), *uw_t_n_ = (needle);                                          \
        uw_t_check(uw_t_h_ &&strstr(uw_t_h_, uw_t_n_) != NULL, __FILE__, __LINE__,                 \
                   #hay " contains " #needle, "'%s' does not contain '%s'",                        \
                   uw_t_h_ ? uw_t_h_ : "(null)", uw_t_n_);                                         \
    } while (0)
#define CHECK_NOT_CONTAINS(hay, needle)                                                            \
    do {                                                                                           \
        const char *uw_t_h_ = (hay), *uw_t_n_ = (needle);                                          \
        uw_t_check(!uw_t_h_ || strstr(uw_t_h_, uw_t_n_) == NULL, __FILE__, __LINE__,               \
                   #hay " does not contain " #needle, "'%s' contains '%s'",                        \
                   uw_t_h_ ? uw_t_h_ : "(null)", uw_t_n_);                                         \
    } while (0)

/* failed: the call reported failure (rc < 0, NULL...); err: a uw_err. */
#define CHECK_FAIL_CODE(failed, err, want)                                                         \
    do {                                                                                           \
        bool uw_t_f_ = (failed);                                                                   \
        uw_t_check(uw_t_f_ && (err).code == (want), __FILE__, __LINE__, #failed " with " #want,    \
                   "%s; code %s (%d), want %s (%d); msg '%s'", uw_t_f_ ? "failed" : "SUCCEEDED",   \
                   uw_code_name((err).code), (int)(err).code, uw_code_name(want), (int)(want),     \
                   (err).msg);                                                                     \
    } while (0)

/* The call succeeded; print the error otherwise. */
#define CHECK_OK(ok, err)                                                                          \
    (uw_t_cond_ = (ok), uw_t_check(uw_t_cond_, __FILE__, __LINE__, #ok, "error %s (%d): %s",       \
                                   uw_code_name((err).code), (int)(err).code, (err).msg))

#endif
