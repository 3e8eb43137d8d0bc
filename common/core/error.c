#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int uw_fail(uw_err *err, uw_code code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
        err->retried = 0;
    }
    return -1;
}

int uw_wrap(uw_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t pl = strlen(prefix), cap = sizeof err->msg - 1, n = 0;
    for (size_t i = 0; i < pl && n < cap; i++)
        err->msg[n++] = prefix[i];
    for (const char *s = ": "; *s && n < cap; s++)
        err->msg[n++] = *s;
    for (size_t i = 0; old[i] && n < cap; i++)
        err->msg[n++] = old[i];
    err->msg[n] = '\0';
    return -1;
}

void uw_err_clear(uw_err *err)
{
    if (err) {
        err->code = UW_OK;
        err->msg[0] = '\0';
        err->retried = 0;
    }
}

const char *uw_code_name(uw_code code)
{
    switch (code) {
#define UW_ERROR_NAME(sym, num, name, meaning)                                                     \
    case sym: return name;
        UW_ERROR_CODES(UW_ERROR_NAME)
#undef UW_ERROR_NAME
    }
    return "unknown";
}

const char *uw_code_meaning(uw_code code)
{
    switch (code) {
#define UW_ERROR_MEANING(sym, num, name, meaning)                                                  \
    case sym: return meaning;
        UW_ERROR_CODES(UW_ERROR_MEANING)
#undef UW_ERROR_MEANING
    }
    return NULL;
}

static void *oom(void)
{
    fputs("ue-wal: FATAL: out of memory\n", stderr);
    exit(UW_E_INTERNAL);
}

void *uw_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom();
}

void *uw_calloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    return p ? p : oom();
}

void *uw_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom();
}

char *uw_strdup(const char *s)
{
    char *p = strdup(s);
    return p ? p : oom();
}

char *uw_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = uw_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

char *uw_strndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    return p ? p : oom();
}
