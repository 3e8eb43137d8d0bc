/* Whether a backup's files are all in the repository, without reading them:
 * each backup directory holding a file's content is listed once
 * (uw_storage_list_tree: one flat listing on S3, no request per object), and
 * every file entry of the manifest is looked up in that listing. info uses it
 * to mark backups with missing objects not restorable; verify reads the
 * contents themselves. */
#ifndef UW_BACKUP_CHECK_H
#define UW_BACKUP_CHECK_H

#include <stddef.h>

#include "core/error.h"
#include "repo/manifest.h"
#include "repo/repo.h"

typedef struct uw_backup_objects uw_backup_objects;

/* A cache of listings of backup directories in repository r. */
uw_backup_objects *uw_backup_objects_new(uw_repo *r);
void uw_backup_objects_free(uw_backup_objects *c);

/* m with its entries (uw_manifest_load). Sets *missing to the number of file
 * entries whose object is not listed, and *first (caller frees, NULL when
 * none) to the first one's path. Listing failures are errors. */
int uw_backup_check_files(uw_backup_objects *c, const uw_manifest *m, size_t *missing, char **first,
                          uw_err *err);

#endif
