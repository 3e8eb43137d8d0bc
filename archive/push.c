/* ue-wal-push: PostgreSQL's archive_command. Exit 0 only when every configured
 * repository durably holds the file; any failure exits 1..125 so that the
 * archiver keeps the WAL and retries (above 125 it would treat it as fatal). */
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

static int push(const uw_config *cfg, uw_err *err)
{
    if (uw_config_argc(cfg) != 1)
        return uw_fail(err, UW_E_OPTION, "expected exactly one argument: the WAL file path (%%p)");
    const char *path = uw_config_arg(cfg, 0);
    const char *slash = strrchr(path, '/');
    uw_push_job job = {0};
    job.path = path;
    job.name = slash ? slash + 1 : path;
    uw_repo *repos;
    int n;
    if (uw_repos_open(cfg, &repos, &n, err) < 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = uw_repo_load(&repos[i], cfg, err);
    /* Validate and hash once; every repository stores the same bytes. */
    if (rc == 0)
        rc = uw_push_prepare(cfg, &repos[0], &job, err);
    for (int i = 1; i < n && rc == 0; i++)
        if (repos[i].info.system_id != repos[0].info.system_id)
            rc = uw_fail(err, UW_E_STANZA, "stanza '%s' differs between %s and %s",
                         repos[0].stanza, repos[0].st->desc, repos[i].st->desc);
    for (int i = 0; i < n && rc == 0; i++) {
        double t0 = now_ms();
        int already = 0;
        uint64_t stored = 0;
        rc = uw_push_one(&repos[i], &job, &already, &stored, err);
        if (rc < 0)
            break;
        if (already)
            uw_log(UW_LOG_INFO, "%s already archived in %s with the same checksum", job.name,
                   repos[i].st->desc);
        else
            uw_log(UW_LOG_INFO, "pushed %s to %s (%llu -> %llu bytes, %.0f ms)", job.name,
                   repos[i].st->desc, (unsigned long long)job.size, (unsigned long long)stored,
                   now_ms() - t0);
    }
    uw_repos_close(repos, n);
    return rc;
}

int main(int argc, char **argv)
{
    int code;
    uw_config *cfg = uw_cmd_start(argc, argv, UW_CMD_PUSH, "ue-wal-push [options] --stanza NAME WALPATH",
                                  "Archive one WAL file (archive_command = 'ue-wal-push --stanza NAME %p').",
                                  &code);
    if (!cfg)
        return code;
    uw_err err;
    uw_err_clear(&err);
    code = push(cfg, &err) < 0 ? uw_cmd_fail(&err) : 0;
    /* The archiver must never see a code above 125 from us. */
    if (code > 125)
        code = err.code == UW_E_DECRYPT ? UW_E_CRYPTO : UW_E_INTERNAL;
    uw_config_free(cfg);
    return code;
}
