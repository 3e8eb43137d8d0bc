/* expire: apply the retention policy to every repository, each on its own
 * (common/work/expire.h does the work). --dry-run shows what would go and the
 * rule that decides; --now evaluates the policy as of another time (a
 * preview, and what the tests use). A repository that fails does not stop the
 * others; the exit code is then the first failure's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "pitr.h"
#include "restore.h"
#include "work/expire.h"

static void print_line(void *ctx, const char *line)
{
    (void)ctx;
    printf("%s\n", line);
}

static int expire_now(const uw_config *cfg, int64_t *now, uw_err *err)
{
    const char *s = uw_cfg_str(cfg, UW_OPT_NOW);
    if (!s) {
        *now = (int64_t)time(NULL);
        return 0;
    }
    int64_t us;
    if (restore_parse_time(s, &us) < 0)
        return uw_fail(err, UW_E_OPTION,
                       "invalid value '%s' for option 'now': a timestamp with an offset, e.g. "
                       "2027-01-31 04:00:00Z",
                       s);
    *now = us / 1000000;
    return 0;
}

int pitr_expire(const uw_config *cfg, uw_err *err)
{
    int64_t start = (int64_t)time(NULL);
    uw_ret_options ro;
    uw_expire_opts eo = {0};
    eo.cfg = cfg;
    eo.dry_run = uw_cfg_bool(cfg, UW_OPT_DRY_RUN);
    eo.say = print_line;
    if (uw_expire_options(cfg, &ro, err) < 0 || expire_now(cfg, &eo.now, err) < 0)
        return -1;
    uw_repo *repos;
    int n;
    if (uw_repos_open(cfg, &repos, &n, err) < 0)
        return -1;
    uw_expire_stats total = {0};
    int rc = 0;
    for (int i = 0; i < n; i++) {
        uw_expire_stats s = {0};
        uw_err e;
        uw_err_clear(&e);
        bool failed = uw_expire_repo(&repos[i], &eo, &ro, &s, &e) < 0;
        if (failed && rc < 0) /* the first failure is the command's, reported at its end */
            uw_log(UW_LOG_ERROR, "expire of %s failed: %s", repos[i].st->desc, e.msg);
        else if (failed) {
            *err = e;
            rc = -1;
        }
        char sz[32];
        uw_fmt_size(s.bytes_freed, sz, sizeof sz);
        if (!eo.dry_run && !failed)
            printf("%s: removed %" PRIu64 " backups, %" PRIu64 " WAL files, %" PRIu64
                   " history files, %" PRIu64 " interrupted backups, %s freed\n",
                   repos[i].st->desc, s.backups_removed, s.wal_removed, s.history_removed,
                   s.interrupted_removed, sz);
        total.backups_removed += s.backups_removed;
        total.wal_removed += s.wal_removed;
        total.bytes_freed += s.bytes_freed;
    }
    fflush(stdout);
    uw_repos_close(repos, n);
    if (!eo.dry_run)
        uw_expire_record(cfg, start, &total, rc < 0 ? err : NULL);
    return rc;
}
