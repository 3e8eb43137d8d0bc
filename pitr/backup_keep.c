/* backup-keep: pin a backup so that expire never removes it (--set ID
 * [--until TIME]), or remove the pin (--set ID --unset). The pin is stored in
 * every repository holding the backup (repo/backup_pin.h); a repository
 * without it is skipped, and none holding it is an error. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "pitr.h"
#include "repo/backup_pin.h"
#include "repo/manifest.h"
#include "repo/retention.h"
#include "restore.h"

static int keep_one(uw_repo *r, const uw_config *cfg, const char *id, int64_t until, bool unset,
                    bool *found, uw_err *err)
{
    if (uw_repo_load(r, cfg, err) < 0)
        return -1;
    uw_manifest m;
    uw_manifest_init(&m);
    uw_err e;
    uw_err_clear(&e);
    if (uw_manifest_load(r, id, &m, &e) < 0) {
        if (e.code != UW_E_NOT_FOUND) {
            *err = e;
            return -1;
        }
        return 0;
    }
    uw_manifest_free(&m);
    *found = true;
    int rc = unset ? uw_backup_pin_clear(r, id, err) : uw_backup_pin_set(r, id, until, err);
    if (rc == 0) {
        char when[40] = "forever";
        if (until != UW_PIN_FOREVER)
            uw_iso_time(until * INT64_C(1000000), when, sizeof when);
        if (unset)
            printf("%s: backup %s is no longer pinned\n", r->st->desc, id);
        else
            printf("%s: backup %s pinned until %s\n", r->st->desc, id, when);
    }
    return rc;
}

int pitr_backup_keep(const uw_config *cfg, uw_err *err)
{
    const char *id = uw_cfg_str(cfg, UW_OPT_SET);
    if (!id)
        return uw_fail(err, UW_E_OPTION, "backup-keep needs --set ID: the backup to pin");
    bool unset = uw_cfg_bool(cfg, UW_OPT_UNSET);
    const char *u = uw_cfg_str(cfg, UW_OPT_UNTIL);
    if (unset && u)
        return uw_fail(err, UW_E_OPTION, "--until and --unset cannot be used together");
    int64_t until = UW_PIN_FOREVER;
    if (u) {
        int64_t us;
        if (restore_parse_time(u, &us) < 0)
            return uw_fail(err, UW_E_OPTION,
                           "invalid value '%s' for option 'until': a timestamp with an offset, "
                           "e.g. 2027-01-31 04:00:00Z",
                           u);
        until = us / 1000000;
    }
    uw_repo *repos;
    int n;
    if (uw_repos_open(cfg, &repos, &n, err) < 0)
        return -1;
    bool found = false;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = keep_one(&repos[i], cfg, id, until, unset, &found, err);
    if (rc == 0 && !found)
        rc = uw_fail(err, UW_E_NOT_FOUND, "backup '%s' does not exist in any repository", id);
    fflush(stdout);
    uw_repos_close(repos, n);
    return rc;
}
