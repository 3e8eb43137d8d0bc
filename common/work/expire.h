/* Expire: apply the retention policy (repo/retention.h) to one repository.
 *
 * Per repository, on its own: list the backups (and their pins), decide, then
 * remove the backups that go (the manifest first, so that a removal cut short
 * leaves an interrupted backup, never a listed one with missing files; newest
 * first, so that an incremental never outlives what it is built on), the
 * archived WAL no kept backup needs (in parallel batches: one DeleteObjects
 * per 1000 objects on S3, pool workers elsewhere), history files of timelines
 * no kept backup can follow, interrupted backups and stale temporaries.
 *
 * A backup in progress is recognised by the backup lock (the one
 * ue-basebackup holds, repo.h): expire takes it for the whole run, so that no
 * backup starts against a backup being removed; when a backup holds it, the
 * directories without a manifest are backups in progress (kept, and so is the
 * newest backup, which an incremental is taken against), else interrupted
 * ones (removed). A dry run decides and reports the same, and removes nothing.
 *
 * What goes and why is reported through `say` (one line per backup, per WAL
 * range, per history file). */
#ifndef UW_EXPIRE_H
#define UW_EXPIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "repo/repo.h"
#include "repo/retention.h"

typedef struct {
    const uw_config *cfg;
    int64_t now;    /* unix seconds the policy is evaluated at */
    bool dry_run;   /* report, remove nothing */
    bool lock_held; /* the caller holds the backup lock (ue-basebackup) */
    /* One line of the report (no newline); NULL: logged at info. */
    void (*say)(void *ctx, const char *line);
    void *say_ctx;
} uw_expire_opts;

typedef struct {
    uint64_t backups_removed, wal_removed, history_removed, interrupted_removed;
    uint64_t bytes_freed; /* stored bytes of what went (backups: their own files) */
    uint64_t temps_removed;
} uw_expire_stats;

/* The retention options from the configuration; a malformed period is
 * UW_E_OPTION naming the option. */
int uw_expire_options(const uw_config *cfg, uw_ret_options *o, uw_err *err);
/* Expire one opened repository (loads its stanza info). Adds to stats. */
int uw_expire_repo(uw_repo *r, const uw_expire_opts *eo, const uw_ret_options *ro,
                   uw_expire_stats *stats, uw_err *err);

/* Record the outcome in <spool>/<stanza>/state/expire.state (work/state.h);
 * outcome NULL is success. A state that cannot be written only warns. */
void uw_expire_record(const uw_config *cfg, int64_t start, const uw_expire_stats *s,
                      const uw_err *outcome);

#endif
