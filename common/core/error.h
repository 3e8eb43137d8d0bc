/* Error kinds with stable numbers: the number is the process exit status and is
 * documented in README.md. Operators' scripts and PostgreSQL itself act on them
 * (restore_command: 1 means "not archived", >125 aborts recovery), so never
 * renumber; only append. */
#ifndef UW_ERROR_H
#define UW_ERROR_H

#include <stddef.h>

/* The one list of error kinds: X(enum name, number, short name, meaning). The
 * enum, uw_code_name(), uw_code_meaning() and README.md's exit-code table
 * (checked by tests/unit/test_error.c) all come from it.
 * Above 125: the object exists but cannot be delivered intact. PostgreSQL
 * treats restore_command exit codes above 125 as fatal and stops recovery
 * instead of promoting on a partial history. */
#define UW_ERROR_CODES(X)                                                                          \
    X(UW_OK, 0, "ok", "success")                                                                   \
    X(UW_E_NOT_FOUND, 1, "not-found",                                                              \
      "ue-wal-fetch: the file is not in any repository (normal at the end of recovery)")           \
    X(UW_E_OPTION, 2, "option", "unknown option, bad value, bad usage")                            \
    X(UW_E_CONFIG, 3, "config", "configuration file unreadable or malformed")                      \
    X(UW_E_FILE, 4, "file", "a local file could not be read or written")                           \
    X(UW_E_STORAGE, 5, "storage", "a repository failed (after retries with backoff)")              \
    X(UW_E_STANZA, 6, "stanza", "stanza missing, or belonging to another cluster")                 \
    X(UW_E_ARCHIVE_MISMATCH, 7, "archive-mismatch",                                                \
      "different content is already archived under that name: nothing overwritten")                \
    X(UW_E_WAL_CLUSTER, 8, "wal-cluster",                                                          \
      "ue-wal-push: the WAL file belongs to another cluster or segment size")                      \
    X(UW_E_CRYPTO, 9, "crypto", "cipher misconfigured (no passphrase, ...)")                       \
    X(UW_E_PG, 10, "postgres", "PostgreSQL connection or query failed, or libpq missing")          \
    X(UW_E_WAL_INVALID, 11, "wal-invalid", "not a valid WAL file name or header")                  \
    X(UW_E_TIMEOUT, 12, "timeout", "e.g. the backup's WAL did not reach the archive in time")      \
    X(UW_E_INTERNAL, 13, "internal",                                                               \
      "out of memory, a missing run-time library (libcurl) or a bug")                              \
    X(UW_E_RESTORE, 14, "restore",                                                                 \
      "restore refused (data directory not empty, postmaster running, target outside the "         \
      "restorable window)")                                                                        \
    X(UW_E_BACKUP, 15, "backup", "backup refused or failed")                                       \
    X(UW_E_REPO_FORMAT, 16, "repo-format",                                                         \
      "repository metadata (stanza info, manifest) is corrupt or unsupported, or a symbolic link " \
      "or "                                                                                        \
      "non-regular file is inside the repository; ue-pitr restore names the manifest that hid "    \
      "the "                                                                                       \
      "backups (not \"does not exist\")")                                                          \
    X(UW_E_STORAGE_DENIED, 17, "storage-denied",                                                   \
      "the repository refused the request (credentials, permissions, missing bucket or "           \
      "container, a file of a posix repository it may not open): not retried")                     \
    X(UW_E_VERIFY, 18, "verify",                                                                   \
      "verify: the repository has problems (each named on its own line)")                          \
    X(UW_E_CHECK, 19, "check",                                                                     \
      "check: PostgreSQL does not archive into this stanza (archive_mode, archive_command)")       \
    X(UW_E_DRILL, 20, "drill", "ue-pitr drill: a step or check failed (the message names it)")     \
    X(UW_E_CORRUPT, 150, "corrupt",                                                                \
      "the object exists but is corrupt or truncated (checksum mismatch)")                         \
    X(UW_E_DECRYPT, 151, "decrypt",                                                                \
      "wrong cipher passphrase, a tampered encrypted object or stanza.info, "                      \
      "or an unencrypted stanza where the configuration asks for encryption")                      \
    X(UW_E_FOREIGN, 152, "foreign",                                                                \
      "the object belongs to another cluster (its header names another system identifier, or "     \
      "none: 0 is no wildcard)")                                                                   \
    X(UW_E_FORMAT_VERSION, 153, "format-version",                                                  \
      "the object or stanza.info was written by another repository format "                        \
      "version (see Repository layout)")                                                           \
    X(UW_E_UNREADABLE, 154, "unreadable",                                                          \
      "ue-wal-fetch: the object is listed in the repository but cannot be "                        \
      "opened or read (a dangling link, permission denied): fix the "                              \
      "repository; never taken for \"not archived\"")

typedef enum {
#define UW_ERROR_ENUM(sym, num, name, meaning) sym = num,
    UW_ERROR_CODES(UW_ERROR_ENUM)
#undef UW_ERROR_ENUM
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
/* Short stable name of a code, e.g. "corrupt"; "unknown" for a number not in
 * the table. */
const char *uw_code_name(uw_code code);
/* One-line meaning of a code, as README.md's exit-code table gives it; NULL
 * for a number not in the table. */
const char *uw_code_meaning(uw_code code);

/* Memory helpers that never return NULL: out of memory aborts, as there is no
 * sane recovery for a CLI and a NULL check on every allocation hides real bugs. */
void *uw_malloc(size_t n);
void *uw_calloc(size_t n, size_t m);
void *uw_realloc(void *p, size_t n);
char *uw_strdup(const char *s);
char *uw_strndup(const char *s, size_t n);
char *uw_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
