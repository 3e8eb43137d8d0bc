/* Per-file worker for restores: bring one file entry of a backup manifest from
 * the repository into a directory, verified end to end (the object reader
 * checks the header, the cipher tags, the trailer and the SHA-256 recorded in
 * the manifest before the file is renamed into place). Restore calls it from
 * its worker threads; a verify/drill command can call it with no directory to
 * only read and check the object. Thread-safe: it shares nothing but the
 * repository handle, whose storage driver must allow concurrent reads. */
#ifndef UW_RESTORE_FILE_H
#define UW_RESTORE_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"
#include "repo/manifest.h"
#include "repo/repo.h"

typedef struct {
    uw_repo *repo; /* holds the objects (key, system id) */
    /* Manifests an entry may point to as its `base` (block-level incremental:
     * the object holds changed pages only, the rest comes from the same path
     * in the base backup, recursively): the backup's prior chain. */
    const uw_manifest *const *manifests;
    size_t nmanifests;
    const char *root; /* data directory (absolute); NULL: verify only, write nothing */
    bool delta;       /* keep an existing regular file whose size and SHA-256 match */
    bool set_owner;   /* chown what is written to uid:gid */
    uid_t uid;
    gid_t gid;
    /* Skip the per-file fsyncs (keep the atomic renames): the caller syncs the
     * whole file system once at the end (syncfs), which is far cheaper than a
     * thousand fsyncs. */
    bool no_sync;
} uw_restore_ctx;

typedef struct {
    bool skipped;   /* delta: the file on disk already had this content */
    uint64_t bytes; /* original size */
    uint64_t read;  /* bytes read from the repository (0 when skipped) */
} uw_restore_result;

/* Restore entry e (type 'f') to <root>/<path> with the manifest's mode and
 * modification time. The file appears atomically (temporary file, fsync,
 * rename); on failure nothing is left but the previous file, if any. A block
 * delta is rebuilt from its chain (the full copy, then each delta, oldest
 * first), every part verified by its own checksum, and the result checked
 * for the entry's size (not its SHA-256: see restore_delta). Errors name the
 * file; a damaged object keeps its own code (UW_E_CORRUPT ...). */
int uw_restore_file(const uw_restore_ctx *ctx, const uw_mf_entry *e, uw_restore_result *res,
                    uw_err *err);

/* SHA-256 and size of a local file. Returns 1 when it is a regular file, 0
 * when it does not exist or is something else, -1 on a read error. */
int uw_file_digest(const char *path, uw_digest *d, uw_err *err);

/* rm -r that never follows symbolic links: a link is removed, not its target. */
int uw_remove_tree(const char *path, uw_err *err);

#endif
