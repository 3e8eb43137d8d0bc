/* metrics: Prometheus text format for every stanza of the configuration (or
 * --stanza), from what the commands recorded at their end in the spool
 * (work/state.h: backup, push, verify, drill, expire, check) plus one walk of
 * each repository's stanza directory (bytes stored, complete backups, newest
 * archived segment) and the archiver's backlog (pg_wal/archive_status when
 * pg-path is readable here, and the asynchronous pusher's status). Cheap
 * enough for every minute: no manifest, no WAL, no cipher key is read.
 *
 * A state file that is missing gives no sample (never a zero that reads as
 * "never" or "1970"); a repository that cannot be listed gives
 * backup_repo_up 0. Either failure is logged, the other samples are still
 * written, and the exit code is the first failure's.
 *
 * --textfile DIR writes DIR/ue_wal.prom (mode 0644) through a temporary file
 * in DIR and a rename, so node_exporter's textfile collector never reads
 * half a file. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/cmd.h"
#include "metrics.h"
#include "pitr.h"
#include "repo/repo.h"
#include "work/state.h"

/* Deeper than any repository layout goes (backup/<id>/pg_data/base/<db>/...). */
#define WALK_DEPTH_MAX 24

typedef struct {
    uw_prom *p;
    const char *stanza;
    int64_t now;
    uw_err first; /* the first failure, reported as the exit code */
} collector;

static void failed(collector *c, const uw_err *e)
{
    uw_log(UW_LOG_WARN, "metrics of stanza '%s': %s", c->stanza, e->msg);
    if (c->first.code == UW_OK)
        c->first = *e;
}

/* One sample labelled with the stanza, the repository (when repo > 0) and
 * one more label (when k is not NULL). */
static void add(collector *c, const char *name, const char *type, const char *help, double v,
                int repo, const char *k, const char *kv)
{
    char r[16];
    snprintf(r, sizeof r, "%d", repo);
    const char *labels[] = {"stanza", c->stanza, "repo", repo > 0 ? r : NULL, k, kv, NULL};
    if (!k)
        labels[4] = NULL;
    uw_prom_add(c->p, name, type, help, v, labels);
}

/* A numeric state value, if present and a number. */
static bool state_num(const uw_state *st, const char *key, double *v)
{
    const char *s = uw_state_get(st, key);
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return !*end && !errno;
}

static bool repo_num(const uw_state *st, int repo, const char *key, double *v)
{
    char k[96];
    snprintf(k, sizeof k, "repo%d_%s", repo, key);
    return state_num(st, k, v);
}

/* ------------------------------------------------------------ backup -- */

static void backup_of_type(collector *c, const uw_state *st, int repo, const char *type)
{
    char k[64];
    double v;
    snprintf(k, sizeof k, "%s_size_bytes", type);
    if (repo_num(st, repo, k, &v))
        add(c, "backup_size_bytes", "gauge",
            "Bytes the last successful backup of this type stored in the repository", v, repo,
            "type", type);
    snprintf(k, sizeof k, "%s_db_size_bytes", type);
    if (repo_num(st, repo, k, &v))
        add(c, "backup_database_size_bytes", "gauge",
            "Size of the cluster's files at the last successful backup of this type", v, repo,
            "type", type);
    snprintf(k, sizeof k, "%s_duration_seconds", type);
    if (repo_num(st, repo, k, &v))
        add(c, "backup_duration_seconds", "gauge",
            "Duration of the last successful backup of this type", v, repo, "type", type);
}

/* What ue-basebackup recorded for repository `repo` (backup.state). */
static void backup_metrics(collector *c, const uw_state *st, int repo)
{
    double v;
    if (repo_num(st, repo, "last_success_end", &v))
        add(c, "backup_last_success_timestamp", "gauge",
            "Unix time the last successful backup ended", v, repo, NULL, NULL);
    if (repo_num(st, repo, "last_end", &v))
        add(c, "backup_last_execution_timestamp", "gauge",
            "Unix time the last backup run ended, successful or not", v, repo, NULL, NULL);
    if (repo_num(st, repo, "last_code", &v))
        add(c, "backup_last_exit_code", "gauge", "Exit code of the last backup run (0: success)", v,
            repo, NULL, NULL);
    if (repo_num(st, repo, "failures_total", &v))
        add(c, "backup_failures_total", "counter", "Backup runs that failed", v, repo, NULL, NULL);
    backup_of_type(c, st, repo, "full");
    backup_of_type(c, st, repo, "incr");
}

/* ------------------------------------------------------ repository walk -- */

typedef struct {
    char **dirs;
    int ndirs;
    uw_repo_usage *u;
    const char *dir;   /* the listed directory, relative to the root */
    size_t stanza_len; /* strlen("<stanza>/") */
} walk_ctx;

static int walk_entry(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    walk_ctx *w = ctx;
    char *path = uw_sprintf("%s/%s", w->dir, name);
    if (is_dir) {
        w->dirs = uw_realloc(w->dirs, sizeof(char *) * (size_t)(w->ndirs + 1));
        w->dirs[w->ndirs++] = path;
        return 0;
    }
    uw_repo_usage_add(w->u, path + w->stanza_len, size);
    free(path);
    return 0;
}

/* Every object under dir, depth first; subdirectories are listed after the
 * listing of their parent ended (a driver's listing is not re-entrant). */
static int walk(uw_storage *st, const char *dir, size_t stanza_len, uw_repo_usage *u, int depth,
                uw_err *err)
{
    if (depth > WALK_DEPTH_MAX)
        return uw_fail(err, UW_E_REPO_FORMAT, "'%s' is nested deeper than any backup", dir);
    walk_ctx w = {NULL, 0, u, dir, stanza_len};
    int rc = uw_storage_list(st, dir, walk_entry, &w, err);
    for (int i = 0; i < w.ndirs; i++) {
        if (rc == 0)
            rc = walk(st, w.dirs[i], stanza_len, u, depth + 1, err);
        free(w.dirs[i]);
    }
    free(w.dirs);
    return rc;
}

static void repo_metrics(collector *c, uw_repo *r)
{
    int repo = r->st->repo;
    uw_repo_usage u;
    memset(&u, 0, sizeof u);
    uw_err e;
    uw_err_clear(&e);
    char *top = uw_strdup(c->stanza);
    int rc = walk(r->st, top, strlen(top) + 1, &u, 0, &e);
    free(top);
    add(c, "backup_repo_up", "gauge", "1 when the repository could be listed for these metrics",
        rc == 0, repo, NULL, NULL);
    if (rc < 0) {
        failed(c, &e);
        return;
    }
    add(c, "backup_storage_usage_bytes", "gauge",
        "Bytes the stanza holds in the repository (backups and archived WAL)", (double)u.bytes,
        repo, NULL, NULL);
    add(c, "backup_storage_usage_bytes_by_kind", "gauge",
        "Bytes the stanza holds in the repository, by kind (backup or wal)", (double)u.backup_bytes,
        repo, "kind", "backup");
    add(c, "backup_storage_usage_bytes_by_kind", "gauge",
        "Bytes the stanza holds in the repository, by kind (backup or wal)", (double)u.wal_bytes,
        repo, "kind", "wal");
    add(c, "backup_repo_backups", "gauge", "Complete backups (with a manifest) in the repository",
        u.backups, repo, NULL, NULL);
    add(c, "backup_wal_archived_segments", "gauge", "WAL segments archived in the repository",
        (double)u.wal_segments, repo, NULL, NULL);
    if (u.backups) {
        int64_t oldest = uw_backup_id_time(u.oldest);
        add(c, "backup_oldest_restorable_timestamp", "gauge",
            "Unix time the oldest complete backup started (from its id): restores reach back to "
            "its end",
            (double)oldest, repo, NULL, NULL);
        add(c, "backup_retention_days", "gauge",
            "Days from the oldest complete backup to now: how far back a restore can go",
            (double)(c->now - oldest) / 86400.0, repo, NULL, NULL);
        add(c, "backup_newest_backup_timestamp", "gauge",
            "Unix time the newest complete backup in the repository started (from its id)",
            (double)uw_backup_id_time(u.newest), repo, NULL, NULL);
    }
}

/* ------------------------------------------------------------- archive -- */

static void push_metrics(collector *c, const uw_state *st)
{
    double v;
    if (!state_num(st, "last_success_end", &v))
        return;
    add(c, "backup_wal_last_archived_timestamp", "gauge",
        "Unix time WAL last reached every repository (ue-wal-push)", v, 0, NULL, NULL);
    add(c, "backup_wal_archive_age_seconds", "gauge",
        "Seconds since WAL last reached every repository: the achieved RPO",
        (double)c->now - v < 0 ? 0 : (double)c->now - v, 0, NULL, NULL);
}

/* .ready files in pg-path/pg_wal/archive_status: what the archiver has yet
 * to archive. No sample when that directory cannot be read from here. */
static void backlog_pg_wal(collector *c, const uw_config *cfg)
{
    const char *pg = uw_cfg_str(cfg, UW_OPT_PG_PATH);
    if (!pg)
        return;
    char *dir = uw_sprintf("%s/pg_wal/archive_status", pg);
    DIR *d = opendir(dir);
    if (!d) {
        uw_log(UW_LOG_DEBUG, "no archiver backlog for stanza '%s': unable to open '%s': %s",
               c->stanza, dir, strerror(errno));
        free(dir);
        return;
    }
    free(dir);
    int ready = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        ready += l > 6 && strcmp(de->d_name + l - 6, ".ready") == 0;
    }
    closedir(d);
    add(c, "backup_wal_archive_backlog_files", "gauge",
        "WAL files waiting to be archived (source: pg_wal archive_status now, or the "
        "asynchronous pusher's last look)",
        ready, 0, "source", "pg_wal");
}

/* The asynchronous pusher's <spool>/<stanza>/push/status (archive/push.c). */
static void backlog_async(collector *c, const uw_config *cfg)
{
    char *path = uw_sprintf("%s/%s/push/status", uw_cfg_str(cfg, UW_OPT_SPOOL_PATH), c->stanza);
    FILE *f = fopen(path, "re");
    free(path);
    if (!f)
        return;
    char line[1200];
    double ready = -1, updated = -1, failed_n = -1;
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        double v = strtod(eq + 1, NULL);
        if (!strcmp(line, "ready"))
            ready = v;
        else if (!strcmp(line, "updated"))
            updated = v;
        else if (!strcmp(line, "failed"))
            failed_n = v;
    }
    fclose(f);
    if (ready >= 0)
        add(c, "backup_wal_archive_backlog_files", "gauge",
            "WAL files waiting to be archived (source: pg_wal archive_status now, or the "
            "asynchronous pusher's last look)",
            ready, 0, "source", "async_status");
    if (updated >= 0)
        add(c, "backup_wal_async_status_timestamp", "gauge",
            "Unix time the asynchronous pusher last wrote its status", updated, 0, NULL, NULL);
    if (failed_n >= 0)
        add(c, "backup_wal_async_failed_files", "gauge",
            "Files the last asynchronous pusher failed to push", failed_n, 0, NULL, NULL);
}

/* ------------------------------------------------------------ commands -- */

/* The last success of a command: last_success_end, or end when the last run
 * succeeded (a state written before last_success_end existed). */
static bool last_success(const uw_state *st, double *v)
{
    if (state_num(st, "last_success_end", v))
        return true;
    const char *r = uw_state_get(st, "result");
    return r && !strcmp(r, "ok") && state_num(st, "end", v);
}

static void command_metrics(collector *c, const char *name, const uw_state *st)
{
    double v;
    if (state_num(st, "code", &v))
        add(c, "backup_command_last_exit_code", "gauge",
            "Exit code of the command's last run (0: success)", v, 0, "command", name);
    if (state_num(st, "end", &v))
        add(c, "backup_command_last_execution_timestamp", "gauge",
            "Unix time the command's last run ended", v, 0, "command", name);
    if (last_success(st, &v))
        add(c, "backup_command_last_success_timestamp", "gauge",
            "Unix time the command last succeeded", v, 0, "command", name);
}

/* ---------------------------------------------------------------- stanza -- */

static uw_state *load_state(collector *c, const uw_config *cfg, const char *name)
{
    uw_err e;
    uw_err_clear(&e);
    uw_state *st = uw_state_load(cfg, c->stanza, name, &e);
    if (!st) {
        failed(c, &e);
        st = uw_state_new(); /* no samples from it */
    }
    return st;
}

static void stanza_metrics(collector *c, const uw_config *cfg)
{
    static const char *const commands[] = {"verify", "drill", "expire", "check", NULL};
    uw_state *backup = load_state(c, cfg, "backup");
    uw_state *push = load_state(c, cfg, "push");
    uw_repo *repos = NULL;
    int n = 0;
    uw_err e;
    uw_err_clear(&e);
    if (uw_repos_open(cfg, &repos, &n, &e) < 0)
        failed(c, &e);
    for (int i = 0; i < n; i++) {
        backup_metrics(c, backup, repos[i].st->repo);
        repo_metrics(c, &repos[i]);
    }
    if (repos)
        uw_repos_close(repos, n);
    push_metrics(c, push);
    backlog_pg_wal(c, cfg);
    backlog_async(c, cfg);
    double verified = -1, v;
    for (int i = 0; commands[i]; i++) {
        uw_state *st = load_state(c, cfg, commands[i]);
        command_metrics(c, commands[i], st);
        if ((!strcmp(commands[i], "verify") || !strcmp(commands[i], "drill")) &&
            last_success(st, &v) && v > verified)
            verified = v;
        if (!strcmp(commands[i], "drill") && state_num(st, "rto_seconds", &v))
            add(c, "backup_drill_rto_seconds", "gauge",
                "Recovery time the last restore drill measured", v, 0, NULL, NULL);
        uw_state_free(st);
    }
    if (verified >= 0)
        add(c, "backup_verification_last_success", "gauge",
            "Unix time a verification or restore drill last succeeded", verified, 0, NULL, NULL);
    uw_state_free(backup);
    uw_state_free(push);
}

/* DIR/ue_wal.prom, atomically, readable by the collector (0644). */
static int write_textfile(const char *dir, const char *text, uw_err *err)
{
    char *path = uw_sprintf("%s/ue_wal.prom", dir);
    /* 0644 whatever the umask (postgres' is often 027): the collector runs
     * as another user. Single-threaded here, so the umask is ours to set. */
    mode_t mask = umask(022);
    uw_sink *f = uw_file_sink(path, 0644, 0, err);
    umask(mask);
    int rc = f && uw_sink_write(f, text, strlen(text), err) == 0 ? uw_sink_finish(f, err) : -1;
    uw_sink_free(f);
    if (rc < 0)
        uw_wrap(err, "option 'textfile'");
    free(path);
    return rc;
}

int pitr_metrics(const uw_config *cfg, uw_err *err)
{
    char **names = NULL;
    int n = 0;
    const char *given = uw_cfg_str(cfg, UW_OPT_STANZA);
    if (given) {
        names = uw_malloc(sizeof(char *));
        names[n++] = uw_strdup(given);
    } else if (uw_config_stanzas(cfg, &names, &n, err) < 0) {
        return -1;
    } else if (n == 0) {
        return uw_fail(err, UW_E_OPTION,
                       "no --stanza given and no stanza section in the config file%s%s%s",
                       uw_cfg_file(cfg) ? " '" : "", uw_cfg_file(cfg) ? uw_cfg_file(cfg) : "",
                       uw_cfg_file(cfg) ? "'" : " (none was read)");
    }
    collector c;
    memset(&c, 0, sizeof c);
    c.p = uw_prom_new();
    c.now = (int64_t)time(NULL);
    for (int i = 0; i < n; i++) {
        c.stanza = names[i];
        uw_err e;
        uw_err_clear(&e);
        uw_config *sc = given ? NULL : uw_config_for_stanza(cfg, names[i], &e);
        if (!given && !sc)
            failed(&c, &e);
        else
            stanza_metrics(&c, given ? cfg : sc);
        uw_config_free(sc);
    }
    char *text = uw_prom_render(c.p);
    const char *dir = uw_cfg_str(cfg, UW_OPT_TEXTFILE);
    int rc = 0;
    if (dir)
        rc = write_textfile(dir, text, err);
    else {
        fputs(text, stdout);
        fflush(stdout);
    }
    free(text);
    uw_prom_free(c.p);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == 0 && c.first.code != UW_OK) {
        *err = c.first;
        rc = -1;
    }
    return rc;
}
