/* Error kinds with stable numbers: the number is the process exit status and is
 * documented in README.md. Operators' scripts and PostgreSQL itself act on them
 * (restore_command: 1 means "not archived", >125 aborts recovery), so never
 * renumber; only append. */
#ifndef UW_ERROR_H
#define UW_ERROR_H

#include <stddef.h>

typedef enum {
    UW_OK = 0,
    UW_E_NOT_FOUND = 1,        /* the requested file is not in the repository */
    UW_E_OPTION = 2,           /* unknown option, bad value, bad usage */
    UW_E_CONFIG = 3,           /* configuration file unreadable or malformed */
    UW_E_FILE = 4,             /* local file could not be read or written */
    UW_E_STORAGE = 5,          /* repository unreachable or failing (transient, retried) */
    UW_E_STANZA = 6,           /* stanza missing, or belongs to another cluster */
    UW_E_ARCHIVE_MISMATCH = 7, /* different content already archived under that name */
    UW_E_WAL_CLUSTER = 8,      /* push: WAL file from another cluster / segment size */
    UW_E_CRYPTO = 9,           /* cipher misconfiguration (missing passphrase...) */
    UW_E_PG = 10,              /* PostgreSQL connection or query failed */
    UW_E_WAL_INVALID = 11,     /* push: not a valid WAL file */
    UW_E_TIMEOUT = 12,         /* waited too long (e.g. for WAL to be archived) */
    UW_E_INTERNAL = 13,        /* out of memory or a bug */
    UW_E_RESTORE = 14,         /* restore refused (target, data directory state) */
    UW_E_BACKUP = 15,          /* backup failed */
    UW_E_REPO_FORMAT = 16,     /* repository metadata (stanza info, manifest) unreadable */
    UW_E_STORAGE_DENIED = 17,  /* repository refused the request (credentials, permissions,
                                 missing bucket/container): not retried */
    /* Above 125: the object exists but cannot be delivered intact. PostgreSQL
     * treats restore_command exit codes above 125 as fatal and stops recovery
     * instead of promoting on a partial history. */
    UW_E_CORRUPT = 150,        /* checksum mismatch, truncated or garbled object */
    UW_E_DECRYPT = 151,        /* wrong passphrase or tampered encrypted object */
    UW_E_FOREIGN = 152,        /* object belongs to another cluster */
    UW_E_FORMAT_VERSION = 153, /* object written by an unknown format version */
    UW_E_UNREADABLE = 154      /* object listed but cannot be opened or read (dangling
                                  link, permission denied): not a miss */
} uw_code;

typedef struct {
    uw_code code;
    char msg[1024];
    /* Set by a layer that already retried with backoff (the HTTP client), so
     * callers do not multiply the attempts. */
    int retried;
} uw_err;

/* Fill err (if not NULL) and return -1, so callers can `return uw_fail(...)`. */
int uw_fail(uw_err *err, uw_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix an existing message with context ("pushing 'x': <old>"). */
int uw_wrap(uw_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void uw_err_clear(uw_err *err);
/* Short stable name of a code, e.g. "corrupt". */
const char *uw_code_name(uw_code code);

/* Memory helpers that never return NULL: out of memory aborts, as there is no
 * sane recovery for a CLI and a NULL check on every allocation hides real bugs. */
void *uw_malloc(size_t n);
void *uw_calloc(size_t n, size_t m);
void *uw_realloc(void *p, size_t n);
char *uw_strdup(const char *s);
char *uw_strndup(const char *s, size_t n);
char *uw_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
