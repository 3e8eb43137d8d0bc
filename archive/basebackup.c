/* ue-basebackup: a full or incremental base backup of a running cluster.
 *
 * Non-exclusive backup protocol: pg_backup_start in a session held open for the
 * whole copy, our own walk and copy of the data directory and tablespaces,
 * pg_backup_stop, then a bounded wait until the WAL up to the stop point is in
 * the archive. The manifest is written last: without it the backup does not
 * exist, and the next run removes the leftovers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "work/backup_file.h"
#include "work/expire.h"
#include "core/cmd.h"
#include "core/progress.h"
#include "repo/manifest.h"
#include "io/object.h"
#include "pg/pg.h"
#include "work/pool.h"
#include "work/state.h"
#include "repo/repo.h"

/* What PostgreSQL's documentation says a base backup should leave out: the
 * contents of these directories (the directories themselves are kept). */
static const char *const exclude_contents[] = {
    "pg_wal",       "pg_dynshmem", "pg_notify",   "pg_replslot", "pg_serial",
    "pg_snapshots", "pg_stat_tmp", "pg_subtrans", NULL,
};
/* Files left out wherever they appear at the top level. */
static const char *const exclude_files[] = {
    "postmaster.pid",
    "postmaster.opts",
    "postgresql.auto.conf.tmp",
    "current_logfiles.tmp",
    "backup_label",
    "tablespace_map",
    "backup_manifest",
    "standby.signal",
    "recovery.signal",
    NULL,
};

static bool in_list(const char *const *list, const char *name)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

typedef struct {
    uw_manifest files; /* everything walked: dirs, links and files to copy */
    char **src;        /* absolute source path of each entry (files only) */
    size_t src_cap;
} walk_state;

static void add(walk_state *w, const char *rel, char type, const struct stat *sb, const char *src,
                const char *link)
{
    uw_mf_entry e = {0};
    e.path = (char *)rel;
    e.type = type;
    e.mode = sb->st_mode & 07777;
    e.mtime = (int64_t)sb->st_mtime;
    e.size = type == 'f' ? (uint64_t)sb->st_size : 0;
    e.link = (char *)link;
    uw_manifest_add(&w->files, &e);
    if (w->files.count > w->src_cap) {
        w->src_cap = w->files.cap;
        w->src = uw_realloc(w->src, w->src_cap * sizeof *w->src);
    }
    w->src[w->files.count - 1] = src ? uw_strdup(src) : NULL;
}

/* Unlogged relations: only their init fork is backed up (PostgreSQL resets
 * them from it at startup). */
static bool unlogged_skip(const char *name, char **inits, int ninits)
{
    if (!ninits || !(name[0] >= '0' && name[0] <= '9'))
        return false;
    size_t n = strspn(name, "0123456789");
    if (strcmp(name + n, "_init") == 0)
        return false;
    for (int i = 0; i < ninits; i++)
        if (strlen(inits[i]) == n && strncmp(inits[i], name, n) == 0)
            return true;
    return false;
}

static int walk(walk_state *w, const char *abs, const char *rel, int depth, uw_err *err)
{
    DIR *d = opendir(abs);
    if (!d) {
        if (errno == ENOENT && depth > 0)
            return 0; /* dropped while we walked (e.g. DROP DATABASE) */
        return uw_fail(err, UW_E_FILE, "unable to open directory '%s': %s", abs, strerror(errno));
    }
    char **names = NULL, **inits = NULL;
    int n = 0, cap = 0, ninits = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = uw_realloc(names, (size_t)cap * sizeof *names);
            inits = uw_realloc(inits, (size_t)cap * sizeof *inits);
        }
        names[n++] = uw_strdup(de->d_name);
        size_t dn = strspn(de->d_name, "0123456789");
        if (dn && strcmp(de->d_name + dn, "_init") == 0)
            inits[ninits++] = uw_strndup(de->d_name, dn);
    }
    closedir(d);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *name = names[i];
        char *a = uw_sprintf("%s/%s", abs, name);
        char *r = *rel ? uw_sprintf("%s/%s", rel, name) : uw_strdup(name);
        struct stat sb;
        bool skip = false;
        if (lstat(a, &sb) < 0) {
            if (errno != ENOENT)
                rc = uw_fail(err, UW_E_FILE, "unable to stat '%s': %s", a, strerror(errno));
            skip = true;
        }
        if (!skip &&
            (strncmp(name, "pgsql_tmp", 9) == 0 || strcmp(name, "pg_internal.init") == 0 ||
             (depth == 0 && in_list(exclude_files, name)) || unlogged_skip(name, inits, ninits)))
            skip = true;
        if (!skip && S_ISLNK(sb.st_mode) && depth == 1 && strncmp(rel, "pg_tblspc", 9) == 0 &&
            !rel[9]) {
            /* A tablespace: record the link, back up what it points to. */
            char target[4096];
            ssize_t tl = readlink(a, target, sizeof target - 1);
            if (tl < 0) {
                rc = uw_fail(err, UW_E_FILE, "unable to read link '%s': %s", a, strerror(errno));
            } else {
                target[tl] = '\0';
                struct stat tsb;
                if (stat(target, &tsb) < 0)
                    rc = uw_fail(err, UW_E_FILE, "tablespace '%s' points to '%s': %s", r, target,
                                 strerror(errno));
                else {
                    add(w, r, 'l', &tsb, NULL, target);
                    rc = walk(w, target, r, depth + 1, err);
                }
            }
        } else if (!skip && S_ISDIR(sb.st_mode)) {
            add(w, r, 'd', &sb, NULL, NULL);
            if (!(depth == 0 && in_list(exclude_contents, name)))
                rc = walk(w, a, r, depth + 1, err);
        } else if (!skip && S_ISREG(sb.st_mode)) {
            add(w, r, 'f', &sb, a, NULL);
        } else if (!skip && S_ISLNK(sb.st_mode) && depth == 0 && strcmp(name, "pg_wal") == 0) {
            /* pg_wal moved elsewhere with initdb -X: keep an empty directory. */
            sb.st_mode = S_IFDIR | 0700;
            add(w, r, 'd', &sb, NULL, NULL);
        } else if (!skip) {
            uw_log(UW_LOG_WARN, "skipping '%s': not a regular file or directory", a);
        }
        free(a);
        free(r);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    for (int i = 0; i < ninits; i++)
        free(inits[i]);
    free(names);
    free(inits);
    return rc;
}

typedef struct {
    uw_backup_ctx bctx;
    const uw_config *cfg;
    uw_repo *worker_repos; /* one handle per worker thread */
    walk_state *w;
    uw_backup_result *results;
    size_t *jobs; /* indexes of file entries */
    uw_progress *progress;
} copy_state;

static int copy_job(void *ctx, size_t i, uw_err *err)
{
    copy_state *c = ctx;
    size_t idx = c->jobs[i];
    uw_mf_entry *e = &c->w->files.entries[idx];
    uw_backup_ctx b = c->bctx;
    uw_repo *mine = &c->worker_repos[uw_pool_worker_id()];
    if (!mine->st) {
        if (uw_repo_clone(c->cfg, c->bctx.repo, mine, err) < 0)
            return -1;
        /* Made durable all at once before the manifest (backup_finish). */
        mine->st->defer_sync = true;
    }
    b.repo = mine;
    if (uw_backup_file(&b, c->w->src[idx], e, &c->results[idx], err) < 0)
        return uw_wrap(err, "backing up '%s'", e->path);
    uw_progress_add(c->progress, e->size, 1);
    uw_log(UW_LOG_DETAIL, "%s %s (%" PRIu64 " bytes)",
           c->results[idx].vanished     ? "vanished"
           : c->results[idx].referenced ? "unchanged"
                                        : "stored",
           e->path, e->size);
    return 0;
}

/* Store a file whose content comes from PostgreSQL (backup_label, tablespace_map). */
static int store_text(const uw_backup_ctx *b, uw_manifest *m, const char *name, const char *text,
                      uw_err *err)
{
    uw_mf_entry e = {0};
    e.path = (char *)name;
    e.type = 'f';
    e.mode = 0600;
    e.mtime = (int64_t)time(NULL);
    snprintf(e.ref, sizeof e.ref, "%s", b->backup_id);
    snprintf(e.ext, sizeof e.ext, "%s%s", b->compressor->ext, b->repo->have_key ? ".enc" : "");
    char *object = uw_backup_object(b->repo, &e);
    uw_sink *dest = uw_storage_write(b->repo->st, object, err);
    free(object);
    if (!dest)
        return -1;
    dest = uw_count_sink(dest, &e.stored);
    uw_obj_write_opts o = {UW_OBJ_FILE,
                           b->repo->info.system_id,
                           b->compressor,
                           b->level,
                           1,
                           b->repo->have_key ? &b->repo->key : NULL,
                           NULL,
                           e.path};
    uw_digest d;
    uw_sink *wr = uw_object_writer(&o, dest, &d, err);
    if (!wr)
        return -1;
    int rc = uw_sink_write(wr, text, strlen(text), err);
    if (rc == 0)
        rc = uw_sink_finish(wr, err);
    uw_sink_free(wr);
    if (rc < 0)
        return -1;
    memcpy(e.sha256, d.sha256, 32);
    e.size = d.size;
    m->size += e.size;
    m->stored += e.stored;
    m->total_size += e.size;
    uw_manifest_add(m, &e);
    return 0;
}

/* Every segment from the start to the stop segment must be archived. */
static int wait_for_wal(uw_repo *r, PGconn *conn, const uw_manifest *m, int timeout, uw_err *err)
{
    uw_wal_name first, last;
    if (uw_wal_parse(m->start_wal, &first, err) < 0 || uw_wal_parse(m->stop_wal, &last, err) < 0)
        return -1;
    uint64_t seg = uw_wal_segno(&first, m->wal_seg_size),
             end = uw_wal_segno(&last, m->wal_seg_size);
    double deadline = (uw_now_ms() / 1e3) + timeout;
    while (seg <= end) {
        uw_wal_name w;
        char name[64], *obj = NULL, sha[65];
        uw_wal_from_segno(m->timeline, seg, m->wal_seg_size, &w);
        uw_wal_format(&w, name, sizeof name);
        int found = uw_repo_wal_find(r, name, &obj, sha, err);
        free(obj);
        if (found < 0)
            return -1;
        if (found) {
            seg++;
            continue;
        }
        if ((uw_now_ms() / 1e3) > deadline) {
            char detail[256] = "";
            PGresult *res = PQexec(conn, "SELECT failed_count, coalesce(last_failed_wal, '-'), "
                                         "coalesce(last_archived_wal, '-') FROM pg_stat_archiver");
            if (PQresultStatus(res) == PGRES_TUPLES_OK)
                snprintf(detail, sizeof detail,
                         " (pg_stat_archiver: last archived %s, failed %s times, last failed %s)",
                         PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
            PQclear(res);
            return uw_fail(err, UW_E_TIMEOUT,
                           "WAL segment %s needed by the backup was not archived within %d s%s: "
                           "check archive_command",
                           name, timeout, detail);
        }
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* The "YYYYMMDD-HHMMSS" part of an id (its last 16 characters, with the type letter). */
static const char *stamp_of(const char *id)
{
    size_t n = strlen(id);
    return n >= 16 ? id + n - 16 : id;
}

static void make_id(const uw_manifest *prior, char *id, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    if (!prior) {
        snprintf(id, len, "%sF", stamp);
        return;
    }
    /* Incrementals carry their full backup's id, so a chain sorts together. */
    char full[24];
    snprintf(full, sizeof full, "%.16s", prior->id);
    char *us = strchr(full, '_');
    if (us)
        *us = '\0';
    snprintf(id, len, "%s_%sI", full, stamp);
}

/* Everything one backup run holds, so that each phase below is a function
 * and one place (backup_run_free) releases it all, whatever phase failed. */
typedef struct {
    const uw_config *cfg;
    const char *pgdata;
    uw_repo *repos, *r; /* backups go to one repository: --repo, else repo1 */
    int nrepos;
    int lockfd;
    PGconn *conn;
    uw_pg_cluster cluster;
    uw_manifest *list; /* valid backups (headers only) */
    int nlist;
    char **incomplete; /* ids of interrupted backups */
    const uw_manifest *prior;
    uw_manifest m, prior_files;
    walk_state w;
    copy_state cs;
    double t0;
} backup_run;

/* One backup per stanza and repository at a time on this host. */
static int backup_lock(backup_run *b, uw_err *err)
{
    /* Per user: a lock file left by root must not lock the postgres user
     * out. Keyed by the repository too: two clusters on one host may both
     * call their stanza "main" in different repositories. */
    char *lockpath = uw_repo_backup_lock_path(b->r);
    b->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (b->lockfd < 0) {
        uw_fail(err, UW_E_FILE, "unable to open lock file '%s': %s", lockpath, strerror(errno));
        free(lockpath);
        return -1;
    }
    free(lockpath);
    if (flock(b->lockfd, LOCK_EX | LOCK_NB) < 0)
        return uw_fail(err, UW_E_BACKUP, "another backup of stanza '%s' is running", b->r->stanza);
    return 0;
}

/* The server must be the stanza's cluster, pg-path its data directory, and
 * archiving on (the backup is made consistent from the archive). */
static int backup_check_server(backup_run *b, uw_err *err)
{
    if (!(b->conn = uw_pg_connect(b->cfg, err)))
        return -1;
    uw_pg_cluster *c = &b->cluster;
    if (uw_pg_cluster_info(b->conn, c, err) < 0)
        return -1;
    if (c->system_id != b->r->info.system_id)
        return uw_fail(err, UW_E_STANZA,
                       "the server is database system %llu but stanza '%s' is %llu",
                       (unsigned long long)c->system_id, b->r->stanza,
                       (unsigned long long)b->r->info.system_id);
    uint64_t ctl_sysid;
    if (uw_pg_control_system_id(b->pgdata, &ctl_sysid, err) < 0)
        return -1;
    if (ctl_sysid != c->system_id)
        return uw_fail(err, UW_E_STANZA,
                       "pg-path '%s' is not the data directory of the server on the "
                       "configured port",
                       b->pgdata);
    PGresult *res = uw_pg_query(b->conn,
                                "SELECT current_setting('archive_mode'), "
                                "current_setting('archive_command'), pg_is_in_recovery()",
                                err);
    if (!res)
        return -1;
    bool archiving = strcmp(PQgetvalue(res, 0, 0), "off") != 0 && *PQgetvalue(res, 0, 1);
    bool standby = PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);
    if (!archiving)
        return uw_fail(err, UW_E_BACKUP,
                       "archive_mode is off or archive_command is empty: the backup "
                       "could never be made consistent from the archive");
    if (standby)
        return uw_fail(err, UW_E_BACKUP,
                       "backing up a standby is not supported yet: run on the primary");
    return 0;
}

/* Leftovers of interrupted runs go (a failure only warns: the next run
 * retries), stale temporaries are swept, and the prior backup of an
 * incremental is chosen. */
static int backup_plan(backup_run *b, uw_err *err)
{
    uw_repo *r = b->r;
    if (uw_backups_list(r, &b->list, &b->nlist, &b->incomplete, err) < 0)
        return -1;
    for (int i = 0; b->incomplete && b->incomplete[i]; i++) {
        uw_log(UW_LOG_INFO, "removing interrupted backup %s from %s", b->incomplete[i],
               r->st->desc);
        /* A leftover that cannot go now must not stop this backup: it is
         * never listed as valid, and the next run tries again. */
        uw_err e;
        uw_err_clear(&e);
        uw_sweep_stats sw = {0};
        if (uw_backup_remove_interrupted(r, b->incomplete[i], &sw, &e) < 0)
            uw_log(UW_LOG_WARN,
                   "unable to remove interrupted backup %s: %s; continuing, the next backup "
                   "retries",
                   b->incomplete[i], e.msg);
        if (sw.uploads)
            uw_log(UW_LOG_INFO, "aborted %" PRIu64 " unfinished multipart upload%s of backup %s",
                   sw.uploads, sw.uploads == 1 ? "" : "s", b->incomplete[i]);
    }
    /* Temporaries of killed pushes and writers elsewhere in the stanza. */
    uw_storage_sweep_log(r->st, r->stanza, "ue-basebackup");
    bool incr = strcmp(uw_cfg_str(b->cfg, UW_OPT_TYPE), "incr") == 0;
    for (int i = b->nlist - 1; incr && i >= 0 && !b->prior; i--)
        if (b->list[i].system_id == b->cluster.system_id)
            b->prior = &b->list[i];
    if (incr && !b->prior)
        uw_log(UW_LOG_WARN, "no usable prior backup in %s: taking a full backup instead",
               r->st->desc);
    uw_manifest *m = &b->m;
    /* Ids have a one-second resolution: never reuse one, of a valid backup
     * (a backup taken in the same second as the previous one would overwrite
     * it) or of an interrupted one (killed within the same second: its
     * leftover may not have gone, and must never mix with this backup). */
    for (;;) {
        make_id(b->prior, m->id, sizeof m->id);
        bool taken = false;
        for (int i = 0; i < b->nlist && !taken; i++)
            taken = strncmp(stamp_of(b->list[i].id), stamp_of(m->id), 15) == 0;
        for (int i = 0; b->incomplete && b->incomplete[i] && !taken; i++)
            taken = strncmp(stamp_of(b->incomplete[i]), stamp_of(m->id), 15) == 0;
        if (!taken)
            break;
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    snprintf(m->type, sizeof m->type, "%s", b->prior ? "incr" : "full");
    if (b->prior)
        snprintf(m->prior, sizeof m->prior, "%s", b->prior->id);
    snprintf(m->compress_type, sizeof m->compress_type, "%s",
             uw_cfg_str(b->cfg, UW_OPT_COMPRESS_TYPE));
    m->encrypted = r->have_key;
    m->pg_version = r->info.pg_version;
    m->system_id = b->cluster.system_id;
    m->wal_seg_size = b->cluster.wal_seg_size;
    return 0;
}

/* Before any file: the marker that makes this backup's directory listed even
 * if the run is killed before its manifest (manifest.h), so that the next
 * run finds it and removes it whole. */
static int backup_announce(backup_run *b, uw_err *err)
{
    if (uw_backup_marker_put(b->r, b->m.id, b->m.start_time, err) < 0) {
        uw_wrap(err, "unable to start backup %s", b->m.id);
        return -1;
    }
    return 0;
}

/* pg_backup_start: the start LSN, timeline and time. */
static int backup_start(backup_run *b, uw_err *err)
{
    uw_manifest *m = &b->m;
    char *label = uw_sprintf("SELECT pg_backup_start('ue-wal %s', true), timeline_id, "
                             "extract(epoch from now())::bigint FROM pg_control_checkpoint()",
                             m->id);
    uw_log(UW_LOG_INFO, "starting %s backup %s of %s (checkpoint requested)", m->type, m->id,
           b->pgdata);
    PGresult *res = uw_pg_query(b->conn, label, err);
    free(label);
    if (!res)
        return -1;
    if (uw_lsn_parse(PQgetvalue(res, 0, 0), &m->start_lsn) < 0) {
        PQclear(res);
        return uw_fail(err, UW_E_PG, "pg_backup_start returned an unexpected LSN");
    }
    m->timeline = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    m->start_time = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    uw_wal_name sw;
    uw_wal_from_lsn(m->timeline, m->start_lsn, m->wal_seg_size, &sw);
    uw_wal_format(&sw, m->start_wal, sizeof m->start_wal);
    return 0;
}

/* Walk the data directory and store every file, in parallel, pg_control last. */
static int backup_copy(backup_run *b, uw_err *err)
{
    walk_state *w = &b->w;
    copy_state *cs = &b->cs;
    if (walk(w, b->pgdata, "", 0, err) < 0)
        return -1;
    size_t nfiles = 0;
    cs->jobs = uw_calloc(w->files.count + 1, sizeof *cs->jobs);
    cs->results = uw_calloc(w->files.count + 1, sizeof *cs->results);
    ssize_t control = -1;
    for (size_t i = 0; i < w->files.count; i++) {
        if (w->files.entries[i].type != 'f')
            continue;
        /* pg_control goes last, as PostgreSQL's own base backups do. */
        if (strcmp(w->files.entries[i].path, "global/pg_control") == 0)
            control = (ssize_t)i;
        else
            cs->jobs[nfiles++] = i;
    }
    if (control >= 0)
        cs->jobs[nfiles++] = (size_t)control;
    uint64_t total = 0;
    for (size_t i = 0; i < nfiles; i++)
        total += w->files.entries[cs->jobs[i]].size;
    cs->w = w;
    cs->bctx.repo = b->r;
    cs->bctx.backup_id = b->m.id;
    cs->bctx.compressor = uw_compressor_by_name(uw_cfg_str(b->cfg, UW_OPT_COMPRESS_TYPE));
    cs->bctx.level = (int)uw_cfg_int(b->cfg, UW_OPT_COMPRESS_LEVEL);
    /* The list holds headers only: the prior's files, for comparisons. */
    if (b->prior && uw_manifest_load(b->r, b->prior->id, &b->prior_files, err) < 0)
        return -1;
    cs->bctx.prior = b->prior ? &b->prior_files : NULL;
    int workers = (int)uw_cfg_int(b->cfg, UW_OPT_PROCESS_MAX);
    cs->cfg = b->cfg;
    cs->worker_repos = uw_calloc((size_t)workers, sizeof *cs->worker_repos);
    cs->progress = uw_progress_start("backup", total, nfiles, uw_cfg_bool(b->cfg, UW_OPT_PROGRESS));
    int rc = uw_pool_run(workers, control >= 0 ? nfiles - 1 : nfiles, copy_job, cs, err);
    if (rc == 0 && control >= 0)
        rc = copy_job(cs, nfiles - 1, err);
    uw_progress_finish(cs->progress);
    cs->progress = NULL;
    return rc;
}

/* pg_backup_stop; stores backup_label (and tablespace_map) from its answer
 * and adds every copied entry to the manifest. */
static int backup_stop(backup_run *b, uw_err *err)
{
    uw_manifest *m = &b->m;
    PGresult *res =
        uw_pg_query(b->conn,
                    "SELECT lsn, labelfile, spcmapfile, extract(epoch from now())::bigint "
                    "FROM pg_backup_stop(false)",
                    err);
    if (!res)
        return -1;
    if (uw_lsn_parse(PQgetvalue(res, 0, 0), &m->stop_lsn) < 0) {
        PQclear(res);
        return uw_fail(err, UW_E_PG, "pg_backup_stop returned an unexpected LSN");
    }
    m->stop_time = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    char *labelfile = uw_strdup(PQgetvalue(res, 0, 1));
    char *spcmap = uw_strdup(PQgetvalue(res, 0, 2));
    PQclear(res);
    /* The stop LSN points just past the backup-end record: the segment holding
     * its last byte is the last one recovery needs. */
    uw_wal_name ew;
    uw_wal_from_lsn(m->timeline, m->stop_lsn - 1, m->wal_seg_size, &ew);
    uw_wal_format(&ew, m->stop_wal, sizeof m->stop_wal);

    walk_state *w = &b->w;
    for (size_t i = 0; i < w->files.count; i++) {
        uw_mf_entry *e = &w->files.entries[i];
        if (e->type == 'f' && b->cs.results[i].vanished)
            continue;
        if (e->type == 'f') {
            m->total_size += e->size;
            if (!b->cs.results[i].referenced) {
                m->size += e->size;
                m->stored += e->stored;
            }
        }
        uw_manifest_add(m, e);
    }
    int x = store_text(&b->cs.bctx, m, "backup_label", labelfile, err);
    if (x == 0 && *spcmap)
        x = store_text(&b->cs.bctx, m, "tablespace_map", spcmap, err);
    free(labelfile);
    free(spcmap);
    return x;
}

/* Wait for the WAL the backup needs, then write the manifest: only now does
 * the backup exist (a backup without one is an interrupted backup). */
static int backup_finish(backup_run *b, uw_err *err)
{
    uw_manifest *m = &b->m;
    uw_log(UW_LOG_INFO, "backup files stored; waiting for WAL %s..%s to reach the archive",
           m->start_wal, m->stop_wal);
    if (wait_for_wal(b->r, b->conn, m, (int)uw_cfg_int(b->cfg, UW_OPT_ARCHIVE_TIMEOUT), err) < 0)
        return -1;
    m->duration_ms = (int64_t)(((uw_now_ms() / 1e3) - b->t0) * 1000);
    uw_manifest_sort(m);
    /* The files were written without an fsync each: durable before the
     * manifest makes them a backup (a crash before leaves an interrupted
     * backup, which the next run removes). */
    char *dir = uw_backup_dir(b->r, m->id);
    int rc = uw_storage_sync(b->r->st, dir, err);
    free(dir);
    if (rc < 0 || uw_manifest_save(b->r, m, err) < 0)
        return -1;
    uint64_t referenced = 0, delta = 0;
    for (size_t i = 0; i < b->w.files.count; i++) {
        referenced += b->cs.results[i].referenced;
        delta += b->cs.results[i].delta;
    }
    char start[32], stop[32];
    uw_lsn_format(m->start_lsn, start, sizeof start);
    uw_lsn_format(m->stop_lsn, stop, sizeof stop);
    uw_log(UW_LOG_INFO,
           "backup %s complete: %s, %zu entries (%" PRIu64 " unchanged, %" PRIu64
           " as changed pages), %" PRIu64 " bytes read, %" PRIu64
           " bytes stored, LSN %s..%s, %.1f s",
           m->id, m->type, m->count, referenced, delta, m->size, m->stored, start, stop,
           m->duration_ms / 1000.0);
    printf("%s\n", m->id);
    return 0;
}

static void backup_run_free(backup_run *b)
{
    if (b->conn)
        PQfinish(b->conn); /* ends a backup left started: PostgreSQL aborts it */
    if (b->lockfd >= 0)
        close(b->lockfd);
    for (size_t i = 0; i < b->w.files.count; i++)
        free(b->w.src[i]);
    free(b->w.src);
    uw_manifest_free(&b->w.files);
    uw_manifest_free(&b->m);
    uw_manifest_free(&b->prior_files);
    for (int i = 0; b->cs.worker_repos && i < (int)uw_cfg_int(b->cfg, UW_OPT_PROCESS_MAX); i++)
        if (b->cs.worker_repos[i].st)
            uw_repo_release(&b->cs.worker_repos[i]);
    free(b->cs.worker_repos);
    free(b->cs.jobs);
    free(b->cs.results);
    for (int i = 0; b->incomplete && b->incomplete[i]; i++)
        free(b->incomplete[i]);
    free(b->incomplete);
    uw_backups_free(b->list, b->nlist);
    uw_repos_close(b->repos, b->nrepos);
}

/* expire-auto: after a successful backup, expire the repository it went to,
 * still holding the backup lock. Its failure is logged and recorded in
 * expire.state but does not fail the backup: the backup exists, and the next
 * run or `ue-pitr expire` tries again. */
static void backup_expire(backup_run *b)
{
    if (!uw_cfg_bool(b->cfg, UW_OPT_EXPIRE_AUTO))
        return;
    int64_t start = (int64_t)time(NULL);
    uw_ret_options ro;
    uw_expire_opts eo = {0};
    eo.cfg = b->cfg;
    eo.now = start;
    eo.lock_held = true;
    uw_expire_stats st = {0};
    uw_err e;
    uw_err_clear(&e);
    int rc = uw_expire_options(b->cfg, &ro, &e);
    if (rc == 0 && !uw_ret_options_any(&ro)) {
        uw_log(UW_LOG_DETAIL, "no retention-* option set: nothing to expire");
        return;
    }
    if (rc == 0)
        rc = uw_expire_repo(b->r, &eo, &ro, &st, &e);
    if (rc < 0)
        uw_log(UW_LOG_WARN, "backup %s is complete, but expire failed: %s", b->m.id, e.msg);
    else
        uw_log(UW_LOG_INFO, "expire: removed %" PRIu64 " backups, %" PRIu64 " WAL files from %s",
               st.backups_removed, st.wal_removed, b->r->st->desc);
    uw_expire_record(b->cfg, start, &st, rc < 0 ? &e : NULL);
}

/* The run's outcome in <spool-path>/<stanza>/state/backup.state, for
 * `ue-pitr metrics` (work/state.h), success or failure. Keys, besides the
 * shared result, code, end, message and last_success_end:
 *   start                  Unix time this run started
 *   repo                   the repository this run backed up to (1..4)
 *   failures_total         failed runs, every repository, kept across runs
 *   type, label, size_bytes (bytes stored by the backup), db_size_bytes (the
 *   cluster's size), duration_seconds: the last successful backup
 *   repoN_failures_total, repoN_last_end, repoN_last_code, repoN_last_success_end
 *                          the same per repository
 *   repoN_<full|incr>_size_bytes, _db_size_bytes, _duration_seconds, _label,
 *   _end                   the last successful backup of each type per
 *                          repository (a size anomaly compares like with like)
 * Failing to record is a warning: the backup itself is what counts. */
static void backup_record(const uw_config *cfg, const backup_run *b, int64_t start,
                          const uw_err *outcome)
{
    const char *stanza = uw_cfg_str(cfg, UW_OPT_STANZA);
    if (!stanza)
        return;
    uw_err e;
    uw_err_clear(&e);
    uw_state *st = uw_state_load(cfg, stanza, "backup", &e);
    if (!st) {
        uw_log(UW_LOG_WARN, "%s: starting a new one", e.msg);
        st = uw_state_new();
    }
    bool ok = !outcome || outcome->code == UW_OK;
    int repo = b->r                             ? b->r->st->repo
               : uw_cfg_isset(cfg, UW_OPT_REPO) ? (int)uw_cfg_int(cfg, UW_OPT_REPO)
                                                : 1;
    int64_t now = (int64_t)time(NULL);
    char k[64];
    uw_state_set_int(st, "start", start);
    uw_state_set_int(st, "repo", repo);
    snprintf(k, sizeof k, "repo%d_last_end", repo);
    uw_state_set_int(st, k, now);
    snprintf(k, sizeof k, "repo%d_last_code", repo);
    uw_state_set_int(st, k, ok ? 0 : (int64_t)outcome->code);
    if (!ok) {
        uw_state_set_int(st, "failures_total", uw_state_get_int(st, "failures_total", 0) + 1);
        snprintf(k, sizeof k, "repo%d_failures_total", repo);
        uw_state_set_int(st, k, uw_state_get_int(st, k, 0) + 1);
    } else {
        const uw_manifest *m = &b->m;
        double secs = m->duration_ms / 1000.0;
        uw_state_set(st, "type", "%s", m->type);
        uw_state_set(st, "label", "%s", m->id);
        uw_state_set_int(st, "size_bytes", (int64_t)m->stored);
        uw_state_set_int(st, "db_size_bytes", (int64_t)m->total_size);
        uw_state_set(st, "duration_seconds", "%.3f", secs);
        snprintf(k, sizeof k, "repo%d_last_success_end", repo);
        uw_state_set_int(st, k, now);
        snprintf(k, sizeof k, "repo%d_failures_total", repo);
        if (!uw_state_get(st, k))
            uw_state_set_int(st, k, 0); /* a counter from its first run */
        const char *t = strcmp(m->type, "incr") == 0 ? "incr" : "full";
        snprintf(k, sizeof k, "repo%d_%s_size_bytes", repo, t);
        uw_state_set_int(st, k, (int64_t)m->stored);
        snprintf(k, sizeof k, "repo%d_%s_db_size_bytes", repo, t);
        uw_state_set_int(st, k, (int64_t)m->total_size);
        snprintf(k, sizeof k, "repo%d_%s_duration_seconds", repo, t);
        uw_state_set(st, k, "%.3f", secs);
        snprintf(k, sizeof k, "repo%d_%s_label", repo, t);
        uw_state_set(st, k, "%s", m->id);
        snprintf(k, sizeof k, "repo%d_%s_end", repo, t);
        uw_state_set_int(st, k, now);
    }
    if (!uw_state_get(st, "failures_total"))
        uw_state_set_int(st, "failures_total", 0);
    uw_state_outcome(st, outcome);
    uw_err_clear(&e);
    if (uw_state_save(cfg, stanza, "backup", st, &e) < 0)
        uw_log(UW_LOG_WARN, "%s", e.msg);
    uw_state_free(st);
}

static int backup(const uw_config *cfg, uw_err *err)
{
    if (uw_config_argc(cfg) != 0)
        return uw_fail(err, UW_E_OPTION, "unexpected argument '%s'", uw_config_arg(cfg, 0));
    const char *pgdata = uw_cfg_str(cfg, UW_OPT_PG_PATH);
    if (!pgdata)
        return uw_fail(err, UW_E_OPTION,
                       "option 'pg-path' is required: the data directory to copy");
    backup_run b;
    memset(&b, 0, sizeof b);
    b.cfg = cfg;
    b.pgdata = pgdata;
    b.lockfd = -1;
    b.t0 = uw_now_ms() / 1e3;
    uw_manifest_init(&b.m);
    uw_manifest_init(&b.prior_files);
    uw_manifest_init(&b.w.files);
    int64_t start = (int64_t)time(NULL);
    /* Refused as root: nothing is written anywhere, the state file included. */
    if (uw_repo_check_writer(cfg, err) < 0)
        return -1;
    if (uw_repos_open(cfg, &b.repos, &b.nrepos, err) < 0) {
        backup_record(cfg, &b, start, err);
        return -1;
    }
    b.r = &b.repos[0];
    int rc = uw_repo_load(b.r, cfg, err);
    if (rc == 0)
        rc = backup_lock(&b, err);
    if (rc == 0)
        rc = backup_check_server(&b, err);
    if (rc == 0)
        rc = backup_plan(&b, err);
    if (rc == 0)
        rc = backup_start(&b, err);
    if (rc == 0)
        rc = backup_announce(&b, err);
    if (rc == 0)
        rc = backup_copy(&b, err);
    if (rc == 0)
        rc = backup_stop(&b, err);
    if (rc == 0)
        rc = backup_finish(&b, err);
    if (rc == 0)
        backup_expire(&b);
    backup_record(cfg, &b, start, rc == 0 ? NULL : err);
    backup_run_free(&b);
    return rc;
}

int main(int argc, char **argv)
{
    int code;
    uw_config *cfg = uw_cmd_start(
        argc, argv, UW_CMD_BACKUP, "ue-basebackup [options] --stanza NAME [--type full|incr]",
        "Take a base backup of a running cluster into the repository.", &code);
    if (!cfg)
        return code;
    uw_err err;
    uw_err_clear(&err);
    code = backup(cfg, &err) < 0 ? uw_cmd_fail(&err) : 0;
    uw_config_free(cfg);
    return code;
}
