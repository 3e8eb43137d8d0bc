/* restore: bring a base backup back into a data directory and set it up to
 * recover to a target with ue-wal-fetch.
 *
 * Everything that can be checked is checked before the first byte is written:
 * the target options, the backup chain (every manifest the backup refers to),
 * the WAL the target needs (a target the archive cannot reach would only fail
 * after the copy, in the server log), and the state of the data directory and
 * the tablespace locations. Then directories, tablespace links, files (in
 * parallel, each verified against the manifest's SHA-256), and global/pg_control
 * last: a restore interrupted half-way leaves a directory PostgreSQL refuses to
 * start, instead of one that starts on a partial copy.
 *
 * This file is the driver over those phases (restore.h lists where each one
 * lives). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "pg/wal.h"
#include "pitr.h"
#include "restore.h"

void restore_free(restore *rs)
{
    if (rs->have_m)
        uw_manifest_free(&rs->m);
    for (size_t i = 0; i < rs->nchain; i++)
        uw_manifest_free(&rs->chain[i]);
    free(rs->chain);
    if (rs->have_arch)
        uw_archive_free(&rs->arch);
    uw_tl_history_free(&rs->hist);
    if (rs->repos)
        uw_repos_close(rs->repos, rs->nrepos);
    free(rs->usable);
    free(rs->pgdata);
    restore_ts_map_free(&rs->map);
}

/* Open every repository, keep those holding the stanza of one cluster (the
 * first one loaded), and scan their archives into one. */
static int load_repos(restore *rs, uw_err *err)
{
    if (uw_repos_open(rs->cfg, &rs->repos, &rs->nrepos, err) < 0)
        return -1;
    rs->usable = uw_calloc((size_t)rs->nrepos, sizeof(bool));
    uw_err first;
    uw_err_clear(&first);
    const uw_repo *ref = NULL;
    for (int i = 0; i < rs->nrepos; i++) {
        uw_repo *r = &rs->repos[i];
        uw_err e;
        uw_err_clear(&e);
        if (uw_repo_load(r, rs->cfg, &e) < 0) {
            if (first.code == UW_OK)
                first = e;
            uw_log(UW_LOG_WARN, "%s", e.msg);
            continue;
        }
        if (ref && r->info.system_id != ref->info.system_id) {
            uw_log(UW_LOG_WARN,
                   "stanza '%s' in %s belongs to database system %" PRIu64 " but in %s to %" PRIu64
                   ": ignoring %s",
                   r->stanza, r->st->desc, r->info.system_id, ref->st->desc, ref->info.system_id,
                   r->st->desc);
            continue;
        }
        if (!ref)
            ref = r;
        rs->usable[i] = true;
    }
    if (!ref) {
        *err = first;
        return -1;
    }
    uw_archive_init(&rs->arch, ref->info.wal_seg_size);
    rs->have_arch = true;
    for (int i = 0; i < rs->nrepos; i++) {
        if (!rs->usable[i])
            continue;
        uw_err e;
        if (uw_archive_scan(&rs->arch, &rs->repos[i], &e) < 0)
            uw_log(UW_LOG_WARN, "%s: the archive of this repository is not considered", e.msg);
    }
    uw_archive_build(&rs->arch);
    return 0;
}

/* Phase 1, nothing written yet: which backup, what its manifest may create,
 * whether the archive reaches the target, whether the data directory can take
 * it, and pg_ctl for --start. */
static int plan(restore *rs, char **pg_ctl, uw_err *err)
{
    int rc = load_repos(rs, err);
    if (rc == 0)
        rc = restore_choose_backup(rs, err);
    /* Before anything else reads its entries: the links and modes it may ask
     * for, and the tablespace locations. */
    if (rc == 0)
        rc = restore_confine(&rs->m, &rs->map, err);
    if (rc == 0)
        rc = restore_check_wal(rs, err);
    if (rc == 0)
        rc = restore_check_chain(rs, err);
    if (rc == 0)
        rc = restore_check_pgdata(rs, err);
    if (rc < 0)
        return -1;
    *pg_ctl = restore_find_pg_ctl(rs->m.pg_version);
    if (!*pg_ctl && uw_cfg_bool(rs->cfg, UW_OPT_START))
        return uw_fail(err, UW_E_RESTORE,
                       "--start: no pg_ctl of PostgreSQL %d found (looked in "
                       "/usr/lib/postgresql/%d/bin, /usr/pgsql-%d/bin and pg_config --bindir)",
                       rs->m.pg_version, rs->m.pg_version, rs->m.pg_version);
    return 0;
}

/* Phase 2: the data directory changes. */
static int write_pgdata(restore *rs, uw_err *err)
{
    char tdesc[160], sz[32];
    restore_target_describe(&rs->t, tdesc, sizeof tdesc);
    uw_fmt_size(rs->m.total_size, sz, sizeof sz);
    uw_log(UW_LOG_INFO, "restoring backup %s (%s, %s, from %s) into '%s' for recovery to %s%s",
           rs->m.id, rs->m.type, sz, rs->repo->st->desc, rs->pgdata, tdesc,
           rs->delta ? " (delta)" : "");
    int rc = 0;
    if (rs->delta && rs->pgdata_exists)
        rc = restore_clean(rs, err);
    if (rc == 0)
        rc = restore_make_tree(rs, err);
    if (rc == 0)
        rc = restore_files(rs, err);
    if (rc == 0) {
        restore_dir_times(rs);
        rc = restore_write_recovery(rs, err);
    }
    /* A scratch instance's restore (drill, restore-table) is removed, not
     * resumed: no advice about --delta for it. */
    if (rc < 0 && !rs->cancel)
        uw_log(UW_LOG_WARN,
               "the restore into '%s' is incomplete (it cannot be started: "
               "global/pg_control is %s); run it again with --delta to finish it",
               rs->pgdata, "missing or from before the failure");
    return rc;
}

/* What recovery will do, and how far the archive reaches. */
static void report_recovery(const restore *rs)
{
    char tdesc[160], end[32], seg[48];
    restore_target_describe(&rs->t, tdesc, sizeof tdesc);
    uint64_t e = rs->have_wal_end ? rs->wal_end.end_lsn : rs->reach.end_lsn;
    uw_lsn_format(e, end, sizeof end);
    uw_seg_name(rs->reach.last_tli, rs->reach.last_segno, rs->arch.seg_size, seg, sizeof seg);
    printf("  recovery to %s on timeline %s (%" PRIu32 "), then %s; the archive reaches %s "
           "(segment %s)",
           tdesc, rs->t.tli_text ? rs->t.tli_text : "latest", rs->rec_tli,
           rs->t.kind == RT_NONE ? "promote" : rs->t.action, end, seg);
    if (rs->have_wal_end && rs->wal_end.have_xact) {
        char xt[48];
        uw_iso_time(rs->wal_end.xact_time_us, xt, sizeof xt);
        printf(", last transaction at %s", xt);
    }
    printf("\n");
}

/* Phase 3: what was restored, and how to start it. */
static void report(const restore *rs, const char *pg_ctl, double t0)
{
    double secs = (uw_now_ms() / 1e3) - t0;
    char wsz[32], ssz[32], rsz[32], lsn[32], when[48];
    uw_fmt_size(rs->bytes_written, wsz, sizeof wsz);
    uw_fmt_size(rs->bytes_skipped, ssz, sizeof ssz);
    uw_fmt_size(rs->bytes_read, rsz, sizeof rsz);
    printf("restored backup %s (%s, consistent at ", rs->m.id, rs->m.type);
    uw_lsn_format(rs->m.stop_lsn, lsn, sizeof lsn);
    uw_iso_time(rs->m.stop_time * INT64_C(1000000), when, sizeof when);
    printf("%s, LSN %s) from %s into %s\n", when, lsn, rs->repo->st->desc, rs->pgdata);
    printf("  %zu files, %s written (%s read from the repository) in %.1f s with %lld "
           "worker(s)\n",
           rs->files_written + rs->files_skipped, wsz, rsz, secs,
           (long long)uw_cfg_int(rs->cfg, UW_OPT_PROCESS_MAX));
    if (rs->delta)
        printf("  delta: %zu files (%" PRIu64 " bytes) rewritten, %zu files (%" PRIu64
               " bytes, %s) unchanged, %zu stale entries removed\n",
               rs->files_written, rs->bytes_written, rs->files_skipped, rs->bytes_skipped, ssz,
               rs->removed);
    report_recovery(rs);
    char *log = restore_log_path(rs);
    printf("start the server with:\n  ");
    if (geteuid() == 0 && rs->uid != 0)
        printf("runuser -u %s -- ", rs->owner);
    printf("%s -D %s -l %s start\n", pg_ctl ? pg_ctl : "pg_ctl", rs->pgdata, log);
    free(log);
    if (geteuid() == 0 && rs->uid == 0)
        uw_log(UW_LOG_WARN,
               "'%s' belongs to root, and PostgreSQL refuses to run as root: "
               "chown -R it (and the tablespace locations) to the server's user "
               "before starting it",
               rs->pgdata);
    fflush(stdout);
}

int restore_prepare(restore *rs, uw_err *err)
{
    if (restore_target_from_config(rs->cfg, &rs->t, err) < 0)
        return -1;
    return restore_ts_map_parse(uw_cfg_str(rs->cfg, UW_OPT_TABLESPACE_MAP),
                                uw_cfg_str(rs->cfg, UW_OPT_TABLESPACE_MAP_ALL), &rs->map, err);
}

int restore_execute(restore *rs, char **pg_ctl, uw_err *err)
{
    *pg_ctl = NULL;
    if (!rs->into)
        return uw_fail(err, UW_E_OPTION,
                       "option 'pgdata' is required: the directory to restore into");
    int rc = plan(rs, pg_ctl, err);
    if (rc == 0)
        rc = write_pgdata(rs, err);
    return rc;
}

int pitr_restore(const uw_config *cfg, uw_err *err)
{
    restore rs;
    memset(&rs, 0, sizeof rs);
    rs.cfg = cfg;
    rs.delta = uw_cfg_bool(cfg, UW_OPT_DELTA);
    rs.into = uw_cfg_str(cfg, UW_OPT_PGDATA);
    rs.port = uw_cfg_isset(cfg, UW_OPT_PORT) ? (long long)uw_cfg_int(cfg, UW_OPT_PORT) : 0;
    rs.archive_off = !strcmp(uw_cfg_str(cfg, UW_OPT_ARCHIVE_MODE), "off");
    if (restore_target_from_config(cfg, &rs.t, err) < 0)
        return -1;
    if (!rs.into)
        return uw_fail(err, UW_E_OPTION,
                       "option 'pgdata' is required: the directory to restore into");
    if (restore_ts_map_parse(uw_cfg_str(cfg, UW_OPT_TABLESPACE_MAP),
                             uw_cfg_str(cfg, UW_OPT_TABLESPACE_MAP_ALL), &rs.map, err) < 0)
        return -1;
    double t0 = (uw_now_ms() / 1e3);
    char *pg_ctl = NULL;
    int rc = restore_execute(&rs, &pg_ctl, err);
    if (rc == 0) {
        report(&rs, pg_ctl, t0);
        if (uw_cfg_bool(cfg, UW_OPT_START))
            rc = restore_start_server(&rs, pg_ctl, err);
        else if (uw_cfg_isset(cfg, UW_OPT_PORT))
            printf("(it will listen on port %lld: written to postgresql.auto.conf)\n",
                   (long long)uw_cfg_int(cfg, UW_OPT_PORT));
    }
    free(pg_ctl);
    restore_free(&rs);
    return rc;
}
