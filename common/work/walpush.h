/* Per-file workers for WAL: push one file to one repository, fetch one file
 * from one repository. Commands (and later the async/prefetch schedulers) call
 * these; they never look at the repository type. */
#ifndef UW_WALPUSH_H
#define UW_WALPUSH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/config.h"
#include "io/compress.h"
#include "repo/repo.h"

typedef struct {
    const char *path;   /* local file */
    const char *name;   /* WAL file name */
    uint8_t sha256[32]; /* of the local file, computed before storing */
    uint64_t size;
    const uw_compressor *compressor;
    int level;
    int threads;    /* compression threads for this file */
    struct stat st; /* fstat of the descriptor that was hashed */
} uw_push_job;

/* Open a local file to push for reading; anything but a regular file (a
 * FIFO would block forever) is UW_E_WAL_INVALID. Returns the descriptor or -1. */
int uw_push_open(const char *path, uw_err *err);
/* Validate a local WAL file against the stanza (system id, segment size, page
 * address) and, if `hash`, compute its SHA-256 (needed before storing unless
 * uw_push_single_pass is used). */
int uw_push_prepare(const uw_config *cfg, const uw_repo *r, uw_push_job *job, bool hash,
                    uw_err *err);
/* Whether r can take a push in a single pass (its storage renames). */
bool uw_push_single_pass_ok(const uw_repo *r);
/* Read, hash, compress (and encrypt) the file once into a temporary object,
 * then rename it to <name>-<sha256>: the checksum is known only at the end.
 * Fills job->sha256 and size. *already is set when the name turned out to be
 * archived with the same content meanwhile. */
int uw_push_single_pass(uw_repo *r, uw_push_job *job, int *already, uint64_t *stored, uw_err *err);
/* Store the file in one repository. Returns 0 when stored or already present
 * with the same checksum (*already set), -1 otherwise. */
int uw_push_one(uw_repo *r, const uw_push_job *job, int *already, uint64_t *stored, uw_err *err);
/* Fetch one WAL file from one repository to dest, atomically; file_flags are
 * uw_file_sink's (a restore_command destination needs no fsync: PostgreSQL
 * fsyncs every segment it keeps). `digest` (may be NULL) receives the verified
 * size and SHA-256 of what was delivered. */
int uw_fetch_one(uw_repo *r, const char *name, const char *dest, unsigned file_flags,
                 uw_digest *digest, uw_err *err);

#endif
