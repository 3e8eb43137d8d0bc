/* ue-wal-fetch: PostgreSQL's restore_command. Exit 0 delivered; 1 not archived
 * in any repository; 2..125 could not look (configuration, storage down after
 * retries): PostgreSQL retries or ends recovery; above 125 the file exists but
 * cannot be delivered intact, and PostgreSQL aborts recovery rather than
 * promoting on a partial history. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "repo.h"
#include "walpush.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Which failure wins when repositories disagree: an intact-delivery failure
 * anywhere outranks "could not look", which outranks "not there". */
static int rank(uw_code c)
{
    if (c > 125)
        return 3;
    if (c == UW_E_NOT_FOUND)
        return 1;
    return 2;
}

static int fetch(const uw_config *cfg, uw_err *err)
{
    if (uw_config_argc(cfg) != 2)
        return uw_fail(err, UW_E_OPTION, "expected two arguments: the WAL file name (%%f) and "
                                         "the destination path (%%p)");
    const char *name = uw_config_arg(cfg, 0), *dest = uw_config_arg(cfg, 1);
    uw_wal_name w;
    if (uw_wal_parse(name, &w, err) < 0) {
        err->code = UW_E_OPTION;
        return -1;
    }
    uw_repo *repos;
    int n;
    if (uw_repos_open(cfg, &repos, &n, err) < 0)
        return -1;
    uw_err worst;
    uw_err_clear(&worst);
    int rc = -1;
    for (int i = 0; i < n; i++) {
        uw_err e;
        uw_err_clear(&e);
        double t0 = now_ms();
        uint64_t bytes = 0;
        if (uw_repo_load(&repos[i], cfg, &e) == 0 &&
            uw_fetch_one(&repos[i], name, dest, &bytes, &e) == 0) {
            uw_log(UW_LOG_INFO, "fetched %s from %s (%llu bytes, %.0f ms)", name,
                   repos[i].st->desc, (unsigned long long)bytes, now_ms() - t0);
            rc = 0;
            break;
        }
        if (e.code != UW_E_NOT_FOUND && i + 1 < n)
            uw_log(UW_LOG_WARN, "%s; trying the next repository", e.msg);
        if (worst.code == UW_OK || rank(e.code) > rank(worst.code))
            worst = e;
    }
    uw_repos_close(repos, n);
    if (rc < 0) {
        *err = worst;
        if (worst.code == UW_E_NOT_FOUND)
            uw_fail(err, UW_E_NOT_FOUND, "%s is not in the archive", name);
    }
    return rc;
}

int main(int argc, char **argv)
{
    int code;
    uw_config *cfg = uw_cmd_start(argc, argv, UW_CMD_FETCH,
                                  "ue-wal-fetch [options] --stanza NAME WALNAME DESTPATH",
                                  "Restore one WAL file (restore_command = 'ue-wal-fetch --stanza "
                                  "NAME %f %p').",
                                  &code);
    if (!cfg)
        return code;
    uw_err err;
    uw_err_clear(&err);
    if (fetch(cfg, &err) == 0)
        code = 0;
    else if (err.code == UW_E_NOT_FOUND) {
        /* Routine at the end of every recovery: not an error. */
        uw_log(UW_LOG_INFO, "%s", err.msg);
        code = UW_E_NOT_FOUND;
    } else
        code = uw_cmd_fail(&err);
    uw_config_free(cfg);
    return code;
}
