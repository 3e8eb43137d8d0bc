/* ue-pitr restore-table: the runbook's single-table restore without touching
 * production. A scratch instance (scratch.c) is recovered to the target and
 * pg_dump writes the named tables, definitions and rows, to --out.
 *
 * Only the database holding the tables is restored: its oid is read from
 * the backup's own pg_database (global/1262, restored first), and every
 * relation file of the other databases is created as a sparse file of
 * zeroes of its size, never read from the repository (WAL replay writes a
 * full page image of a page before any other change to it after the
 * backup's checkpoint, so the zeroes are never read as data; those
 * databases are garbage in the scratch instance, which nobody connects to).
 * The catalog and the other relations of the chosen database are restored
 * whole: which files hold the named tables is known only from that
 * database's pg_class, which this does not parse. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "drill.h"
#include "pitr.h"
#include "work/restore_file.h"

#define MAX_DB_OIDS 16

typedef struct {
    const char *db;
    uint32_t oids[MAX_DB_OIDS];
    int noids;
} table_scope;

/* pg_database as of the backup: the oids `name` had (every version). */
static int read_pg_database(restore *rs, table_scope *sc, uw_err *err)
{
    const uw_mf_entry *e = uw_manifest_find(&rs->m, "global/1262");
    if (!e)
        return 0;
    const uw_manifest **manifests = uw_calloc(rs->nchain + 1, sizeof *manifests);
    manifests[0] = &rs->m;
    for (size_t i = 0; i < rs->nchain; i++)
        manifests[i + 1] = &rs->chain[i];
    uw_restore_ctx ctx = {rs->repo,      manifests, rs->nchain + 1, rs->pgdata, false,
                          rs->set_owner, rs->uid,   rs->gid,        true};
    uw_restore_result res;
    int rc = uw_restore_file(&ctx, e, &res, err);
    free(manifests);
    if (rc < 0)
        return -1;
    char *path = uw_sprintf("%s/global/1262", rs->pgdata);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > (64 << 20)) {
        if (fd >= 0)
            close(fd);
        return 0; /* restore everything */
    }
    uint8_t *data = uw_malloc((size_t)st.st_size + 1);
    ssize_t n = read(fd, data, (size_t)st.st_size);
    close(fd);
    if (n == st.st_size)
        sc->noids = drill_pg_database_oids(data, (size_t)n, sc->db, sc->oids, MAX_DB_OIDS);
    free(data);
    return 0;
}

static int before_files(restore *rs, uw_err *err)
{
    table_scope *sc = rs->hook_arg;
    if (read_pg_database(rs, sc, err) < 0)
        return -1;
    if (sc->noids)
        uw_log(UW_LOG_INFO,
               "restoring database '%s' (oid %u) only: the other databases' relation files stay "
               "sparse",
               sc->db, sc->oids[0]);
    else
        uw_log(UW_LOG_INFO,
               "database '%s' is not in the backup's pg_database: restoring every "
               "database",
               sc->db);
    return 0;
}

static bool sparse(const restore *rs, const uw_mf_entry *e)
{
    const table_scope *sc = rs->hook_arg;
    uint32_t db;
    if (!sc->noids || !drill_relation_db(e->path, &db))
        return false;
    for (int i = 0; i < sc->noids; i++)
        if (sc->oids[i] == db)
            return false;
    return true;
}

/* ---------------------------------------------------------------- pg_dump -- */

static int run_pg_dump(const scratch *s, const char *db, char **patterns, size_t n,
                       const char *format, const char *out, uw_err *err)
{
    char *pg_dump = uw_sprintf("%s/pg_dump", s->bindir);
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    const char **args = uw_calloc(n + 16, sizeof *args);
    size_t k = 0;
    args[k++] = pg_dump;
    args[k++] = "--host";
    args[k++] = s->dir;
    args[k++] = "--port";
    args[k++] = port;
    args[k++] = "--username";
    args[k++] = s->user;
    args[k++] = "--dbname";
    args[k++] = db;
    args[k++] = "--file";
    args[k++] = out;
    args[k++] = !strcmp(format, "custom") ? "--format=custom" : "--format=plain";
    args[k++] = "--strict-names";
    char **targs = uw_calloc(n, sizeof *targs);
    for (size_t i = 0; i < n; i++)
        args[k++] = targs[i] = uw_sprintf("--table=%s", patterns[i]);
    args[k] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        execv(pg_dump, (char *const *)args);
        fprintf(stderr, "ue-pitr: unable to run '%s': %s\n", pg_dump, strerror(errno));
        _exit(127);
    }
    int status = 0, rc = 0;
    if (pid < 0)
        rc = uw_fail(err, UW_E_RESTORE, "unable to fork: %s", strerror(errno));
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        rc = uw_fail(err, UW_E_PG, "'%s' failed (exit status %d): see its message above", pg_dump,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    for (size_t i = 0; i < n; i++)
        free(targs[i]);
    free(targs);
    free(args);
    free(pg_dump);
    return rc;
}

/* ------------------------------------------------------------------ setup -- */

static int table_patterns(const uw_config *cfg, char ***out, size_t *n, uw_err *err)
{
    const char *list = uw_cfg_str(cfg, UW_OPT_TABLE);
    *out = NULL;
    *n = 0;
    if (!list)
        return uw_fail(err, UW_E_OPTION, "restore-table: --table SCHEMA.TABLE is required");
    char *copy = uw_strdup(list);
    int rc = 0;
    for (char *save = NULL, *t = strtok_r(copy, "\n", &save); t && rc == 0;
         t = strtok_r(NULL, "\n", &save)) {
        char *schema, *table;
        rc = drill_table_parse(t, &schema, &table, err);
        if (rc < 0)
            break;
        *out = uw_realloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = drill_table_pattern(schema, table);
        free(schema);
        free(table);
    }
    free(copy);
    return rc;
}

static int check_options(const uw_config *cfg, uw_err *err)
{
    static const uw_opt_id targets[] = {UW_OPT_TARGET_TIME, UW_OPT_TARGET_LSN, UW_OPT_TARGET_XID,
                                        UW_OPT_TARGET_NAME};
    bool any = false;
    for (size_t i = 0; i < 4; i++)
        any = any || uw_cfg_isset(cfg, targets[i]);
    if (!any)
        return uw_fail(err, UW_E_OPTION,
                       "restore-table: one of --target-time, --target-lsn, "
                       "--target-xid, --target-name is required");
    if (uw_cfg_isset(cfg, UW_OPT_TARGET_ACTION) &&
        strcmp(uw_cfg_str(cfg, UW_OPT_TARGET_ACTION), "promote") != 0)
        return uw_fail(err, UW_E_OPTION,
                       "restore-table: the scratch instance always promotes "
                       "(--target-action promote)");
    const char *out = uw_cfg_str(cfg, UW_OPT_OUT);
    struct stat st;
    if (!out)
        return uw_fail(err, UW_E_OPTION, "restore-table: --out FILE is required");
    if (lstat(out, &st) == 0)
        return uw_fail(err, UW_E_OPTION, "restore-table: '%s' exists: give a new file to --out",
                       out);
    return 0;
}

int pitr_restore_table(const uw_config *cfg, uw_err *err)
{
    char **patterns = NULL;
    size_t n = 0;
    if (check_options(cfg, err) < 0 || table_patterns(cfg, &patterns, &n, err) < 0) {
        for (size_t i = 0; i < n; i++)
            free(patterns[i]);
        free(patterns);
        return -1;
    }
    char *out = restore_absolute(uw_cfg_str(cfg, UW_OPT_OUT));
    const char *db = uw_cfg_str(cfg, UW_OPT_PG_DATABASE);
    table_scope sc = {db, {0}, 0};
    restore hooks;
    memset(&hooks, 0, sizeof hooks);
    hooks.before_files = before_files;
    hooks.sparse = sparse;
    hooks.hook_arg = &sc;
    scratch_signals();
    scratch s;
    double t0 = uw_now_ms() / 1e3;
    int rc = scratch_create(&s, cfg, "table", err);
    if (rc == 0)
        rc = scratch_restore(&s, &hooks, err);
    if (rc == 0)
        rc = scratch_recover(&s, err);
    if (rc == 0 && scratch_cancel)
        rc = uw_fail(err, UW_E_RESTORE, "interrupted by a signal");
    if (rc == 0)
        rc = run_pg_dump(&s, db, patterns, n, uw_cfg_str(cfg, UW_OPT_FORMAT), out, err);
    if (rc == 0) {
        printf("wrote %zu table(s) of database %s as of %s%s (backup %s; %zu files restored, %zu "
               "of other databases left sparse) to %s (%s) in %.1f s\n",
               n, db, s.xact_time && s.xact_time[0] ? "the transaction at " : "LSN ",
               s.xact_time && s.xact_time[0] ? s.xact_time : (s.lsn ? s.lsn : "?"), s.rs.m.id,
               s.rs.files_written, s.rs.files_sparse, out, uw_cfg_str(cfg, UW_OPT_FORMAT),
               uw_now_ms() / 1e3 - t0);
        if (s.stop_line)
            printf("  %s\n", strstr(s.stop_line, "recovery stopping"));
    }
    if (rc < 0)
        unlink(out); /* --out did not exist: a partial dump is ours */
    uw_err cerr;
    uw_err_clear(&cerr);
    if (scratch_cleanup(&s, &cerr) < 0 && rc == 0) {
        *err = cerr;
        rc = -1;
    }
    scratch_free(&s);
    for (size_t i = 0; i < n; i++)
        free(patterns[i]);
    free(patterns);
    free(out);
    return rc;
}
