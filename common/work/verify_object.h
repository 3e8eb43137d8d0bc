/* Per-object worker for `ue-pitr verify`: read one repository object through
 * the same verifying reader restore and fetch use (header, system identifier,
 * name binding, GCM tags when encrypted, decompression, trailer size and
 * SHA-256, and the checksum the caller expects), and throw the content away:
 * nothing is written anywhere, plaintext included. Memory is the reader's
 * buffers, whatever the object's size. Thread-safe for distinct repository
 * handles (uw_repo_clone one per worker). */
#ifndef UW_VERIFY_OBJECT_H
#define UW_VERIFY_OBJECT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "repo/repo.h"

typedef struct {
    const char *path;      /* object, relative to the repository root */
    const char *bind;      /* name the header is bound to (WAL name, backup file path) */
    const uint8_t *expect; /* SHA-256 (or content id) the content must have; NULL: trailer only */
    bool expect_is_id;     /* expect is a content id (WAL object names) */
    uint64_t max_size;     /* most bytes the content may have (0: no limit) */
} uw_verify_obj;

typedef struct {
    uint64_t read;    /* bytes read from the repository */
    char sha256[65];  /* verified SHA-256 of the content */
    uint64_t content; /* content size */
} uw_verify_result;

/* Returns 0 when the object is sound; -1 with the reader's code otherwise
 * (UW_E_NOT_FOUND when it vanished, UW_E_CORRUPT, UW_E_DECRYPT, UW_E_FOREIGN,
 * UW_E_FORMAT_VERSION, UW_E_STORAGE ...). Transient storage errors are retried
 * with backoff. */
int uw_verify_object(uw_repo *r, const uw_verify_obj *o, uw_verify_result *res, uw_err *err);

#endif
