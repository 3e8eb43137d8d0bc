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
    case UW_OK: return "ok";
    case UW_E_NOT_FOUND: return "not-found";
    case UW_E_OPTION: return "option";
    case UW_E_CONFIG: return "config";
    case UW_E_FILE: return "file";
    case UW_E_STORAGE: return "storage";
    case UW_E_STANZA: return "stanza";
    case UW_E_ARCHIVE_MISMATCH: return "archive-mismatch";
    case UW_E_WAL_CLUSTER: return "wal-cluster";
    case UW_E_CRYPTO: return "crypto";
    case UW_E_PG: return "postgres";
    case UW_E_WAL_INVALID: return "wal-invalid";
    case UW_E_TIMEOUT: return "timeout";
    case UW_E_INTERNAL: return "internal";
    case UW_E_RESTORE: return "restore";
    case UW_E_BACKUP: return "backup";
    case UW_E_REPO_FORMAT: return "repo-format";
    case UW_E_STORAGE_DENIED: return "storage-denied";
    case UW_E_CORRUPT: return "corrupt";
    case UW_E_DECRYPT: return "decrypt";
    case UW_E_FOREIGN: return "foreign";
    case UW_E_FORMAT_VERSION: return "format-version";
    case UW_E_UNREADABLE: return "unreadable";
    }
    return "unknown";
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
