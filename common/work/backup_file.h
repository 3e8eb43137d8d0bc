/* The per-file worker of a base backup: store one file of the data directory
 * (whole, as a block delta, or as a reference to an earlier backup's copy). */
#ifndef UW_BACKUP_FILE_H
#define UW_BACKUP_FILE_H

#include <stdbool.h>

#include "io/compress.h"
#include "repo/manifest.h"
#include "repo/repo.h"

typedef struct {
    uw_repo *repo;
    const char *backup_id;
    const uw_compressor *compressor;
    int level;
    const uw_manifest *prior; /* the backup this incremental is taken against, or NULL */
} uw_backup_ctx;

typedef struct {
    bool vanished;   /* the file disappeared before it could be read */
    bool referenced; /* unchanged since the prior backup: nothing stored */
    bool delta;      /* stored as changed pages only */
    uint64_t pages, changed_pages;
} uw_backup_result;

/* `e` comes in with path, mode, mtime and size from the directory walk; on
 * success it holds sha256, ref, ext, stored and base. src is the absolute path. */
int uw_backup_file(const uw_backup_ctx *ctx, const char *src, uw_mf_entry *e, uw_backup_result *res,
                   uw_err *err);

#endif
