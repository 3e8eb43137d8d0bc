/* Expire one repository: see expire.h. */
#include "work/expire.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/log.h"
#include "repo/archive_info.h"
#include "repo/backup_pin.h"
#include "repo/manifest.h"
#include "work/pool.h"
#include "work/state.h"

int uw_expire_options(const uw_config *cfg, uw_ret_options *o, uw_err *err)
{
    memset(o, 0, sizeof *o);
    const struct {
        uw_opt_id id;
        uw_period *p;
    } periods[] = {{UW_OPT_RETENTION_INCR, &o->incr},
                   {UW_OPT_RETENTION_DAILY, &o->daily},
                   {UW_OPT_RETENTION_WEEKLY, &o->weekly},
                   {UW_OPT_RETENTION_MONTHLY, &o->monthly},
                   {UW_OPT_RETENTION_YEARLY, &o->yearly}};
    for (size_t i = 0; i < sizeof periods / sizeof periods[0]; i++) {
        const char *v = uw_cfg_str(cfg, periods[i].id);
        if (v && uw_period_parse(v, periods[i].p) < 0) {
            char name[UW_OPT_NAME_MAX];
            uw_opt_name(periods[i].id, 0, name, sizeof name);
            return uw_fail(err, UW_E_OPTION,
                           "invalid value '%s' for option '%s': a period is N followed by d "
                           "(days), w (weeks), m (months) or y (years), e.g. 30d",
                           v, name);
        }
    }
    if (uw_cfg_isset(cfg, UW_OPT_RETENTION_FULL))
        o->full_count = (int)uw_cfg_int(cfg, UW_OPT_RETENTION_FULL);
    if (uw_cfg_isset(cfg, UW_OPT_RETENTION_ARCHIVE))
        o->archive_count = (int)uw_cfg_int(cfg, UW_OPT_RETENTION_ARCHIVE);
    return 0;
}

static void say(const uw_expire_opts *eo, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const uw_expire_opts *eo, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (eo->say)
        eo->say(eo->say_ctx, line);
    else
        uw_log(UW_LOG_INFO, "%s", line);
}

/* ------------------------------------------------------------ archive -- */

/* The archive is planned one directory at a time, as it is listed: what
 * goes depends only on the retention result (known before: it needs the
 * backups, not the WAL), and the report gives runs of consecutive objects
 * that go, which carry over from one directory to the next (directories are
 * taken in name order, so objects come in (timeline, segment) order). A
 * repository of 100,000 segments is then planned holding one directory's
 * objects; a real run keeps the paths of what goes, a dry run nothing. */
typedef struct {
    char *name; /* file name in its directory */
    char walname[48];
    uint32_t tli;
    uint64_t segno;
    uint64_t size;
    bool history;
} wal_obj;

typedef struct {
    wal_obj *v;
    size_t n, cap;
    uint32_t seg_size;
} wal_dir;

static int dir_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    (void)size;
    char ***dirs = ctx;
    if (!is_dir || (strlen(name) != 16 && strcmp(name, "history") != 0))
        return 0;
    size_t n = 0;
    while (*dirs && (*dirs)[n])
        n++;
    *dirs = uw_realloc(*dirs, (n + 2) * sizeof **dirs);
    (*dirs)[n] = uw_strdup(name);
    (*dirs)[n + 1] = NULL;
    return 0;
}

/* Objects named <walname>-<content id>[.ext]; anything else (temporaries of
 * writers) is the sweep's. */
static int obj_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    wal_dir *l = ctx;
    const char *dash = strchr(name, '-');
    if (is_dir || !dash || dash - name >= 48 || strstr(name, ".uwtmp."))
        return 0;
    wal_obj o = {0};
    memcpy(o.walname, name, (size_t)(dash - name));
    uw_wal_name w;
    if (uw_wal_parse(o.walname, &w, NULL) < 0)
        return 0;
    o.tli = w.tli;
    o.history = w.kind == UW_WAL_HISTORY;
    o.segno = o.history ? 0 : uw_wal_segno(&w, l->seg_size);
    o.size = size;
    o.name = uw_strdup(name);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = uw_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = o;
    return 0;
}

static int by_tli_segno(const void *pa, const void *pb)
{
    const wal_obj *a = pa, *b = pb;
    if (a->history != b->history)
        return a->history ? 1 : -1;
    if (a->tli != b->tli)
        return a->tli < b->tli ? -1 : 1;
    if (a->segno != b->segno)
        return a->segno < b->segno ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void wal_dir_clear(wal_dir *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    l->n = 0;
}

/* ------------------------------------------------------- removal pool -- */

typedef struct {
    const uw_config *cfg;
    uw_repo *src;
    uw_repo *clones; /* one per worker */
    const char *const *paths;
    size_t n, batch;
} remove_ctx;

static int remove_job(void *ctx, size_t i, uw_err *err)
{
    remove_ctx *c = ctx;
    uw_repo *mine = &c->clones[uw_pool_worker_id()];
    if (!mine->st && uw_repo_clone(c->cfg, c->src, mine, err) < 0)
        return -1;
    size_t from = i * c->batch, n = c->n - from < c->batch ? c->n - from : c->batch;
    return uw_storage_remove_many(mine->st, c->paths + from, n, err);
}

/* Remove paths in parallel batches. */
static int remove_paths(uw_repo *r, const uw_config *cfg, const char *const *paths, size_t n,
                        uw_err *err)
{
    if (!n)
        return 0;
    int workers = (int)uw_cfg_int(cfg, UW_OPT_PROCESS_MAX);
    remove_ctx c = {cfg,   r, uw_calloc((size_t)workers, sizeof(uw_repo)),
                    paths, n, uw_storage_remove_batch(r->st)};
    int rc = uw_pool_run(workers, (n + c.batch - 1) / c.batch, remove_job, &c, err);
    for (int i = 0; i < workers; i++)
        if (c.clones[i].st)
            uw_repo_release(&c.clones[i]);
    free(c.clones);
    return rc;
}

/* ------------------------------------------------------------- plan -- */

typedef struct {
    uw_repo *r;
    const uw_expire_opts *eo;
    const uw_ret_options *ro;
    int lockfd;
    bool busy; /* a backup holds the lock: directories without a manifest are in progress */
    uw_manifest *list;
    int nlist;
    char **incomplete;
    uw_ret_backup *in;
    size_t nin;
    uw_ret_result res;
    /* The WAL plan: report lines (said after the backups'), the run of
     * objects that go being gathered, and what a real run removes. */
    char **lines;
    size_t nlines;
    bool run_open;
    wal_obj run_first, run_last;
    size_t run_count;
    uint64_t run_bytes;
    char **go; /* paths */
    size_t ngo, capgo;
    uint64_t go_bytes, go_segs, go_hist;
} expire_run;

static int take_lock(expire_run *x, uw_err *err)
{
    if (x->eo->lock_held)
        return 0;
    char *path = uw_repo_backup_lock_path(x->r);
    x->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (x->lockfd < 0) {
        uw_fail(err, UW_E_FILE, "unable to open lock file '%s': %s", path, strerror(errno));
        free(path);
        return -1;
    }
    free(path);
    if (flock(x->lockfd, LOCK_EX | LOCK_NB) < 0) {
        x->busy = true;
        uw_log(UW_LOG_INFO,
               "a backup of stanza '%s' is running: keeping it and what it is "
               "built on",
               x->r->stanza);
    }
    return 0;
}

static void seg_name(const uw_repo *r, uint32_t tli, uint64_t segno, char *buf, size_t len)
{
    uw_seg_name(tli, segno, r->info.wal_seg_size, buf, len);
}

/* The policy's input: complete backups with their pins, and backups in
 * progress when one runs. */
static int build_input(expire_run *x, uw_err *err)
{
    size_t ninc = 0;
    while (x->busy && x->incomplete && x->incomplete[ninc])
        ninc++;
    x->in = uw_calloc((size_t)x->nlist + ninc + 1, sizeof *x->in);
    uint32_t seg = x->r->info.wal_seg_size;
    for (int i = 0; i < x->nlist; i++) {
        const uw_manifest *m = &x->list[i];
        uw_ret_backup *b = &x->in[x->nin++];
        b->label = m->id;
        b->full = !strcmp(m->type, "full");
        b->prior = m->prior[0] ? m->prior : NULL;
        b->start_time = m->start_time;
        b->stop_time = m->stop_time;
        b->timeline = m->timeline;
        b->start_segno = m->start_lsn / seg;
        b->stop_segno = (m->stop_lsn ? m->stop_lsn - 1 : 0) / seg;
        if (uw_backup_pin_get(x->r, m->id, &b->pinned_until, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < ninc; i++) {
        uw_ret_backup *b = &x->in[x->nin++];
        const char *id = x->incomplete[i];
        b->label = id;
        b->in_progress = true;
        b->full = id[strlen(id) - 1] == 'F';
        /* ue-basebackup takes an incremental against the newest backup. */
        b->prior = !b->full && x->nlist ? x->list[x->nlist - 1].id : NULL;
    }
    return 0;
}

static void report_backups(expire_run *x)
{
    const char *verb = x->eo->dry_run ? "would remove" : "remove";
    for (size_t i = 0; i < x->nin; i++) {
        const uw_ret_backup *b = &x->in[i];
        char when[40], why[512];
        uw_iso_time(b->start_time * INT64_C(1000000), when, sizeof when);
        if (b->in_progress)
            say(x->eo, "keep backup %s (in progress)", b->label);
        else if (x->res.rules[i])
            say(x->eo, "keep backup %s (%s, %s): %s", b->label, b->full ? "full" : "incr", when,
                uw_ret_rules_str(x->res.rules[i], why, sizeof why));
        else
            say(x->eo, "%s backup %s (%s, %s): %s", verb, b->label, b->full ? "full" : "incr", when,
                uw_ret_removal_str(b, x->ro, why, sizeof why));
    }
}

static void plan_line(expire_run *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void plan_line(expire_run *x, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    x->lines = uw_realloc(x->lines, (x->nlines + 1) * sizeof *x->lines);
    x->lines[x->nlines++] = uw_strdup(line);
}

/* The report line of the run of segments that go, if one is open. */
static void plan_close_run(expire_run *x)
{
    if (!x->run_open)
        return;
    x->run_open = false;
    const char *verb = x->eo->dry_run ? "would remove" : "remove";
    const wal_obj *o = &x->run_first, *last = &x->run_last;
    char first_name[32], last_name[32], need[32], sz[32];
    seg_name(x->r, o->tli, o->segno, first_name, sizeof first_name);
    seg_name(x->r, last->tli, last->segno, last_name, sizeof last_name);
    uw_fmt_size(x->run_bytes, sz, sizeof sz);
    uint64_t oldest = uw_ret_oldest_needed(&x->res, o->tli);
    if (oldest == UINT64_MAX)
        plan_line(x,
                  "%s WAL %s..%s (%zu files, %s): no kept backup or point-in-time window needs "
                  "timeline %" PRIu32,
                  verb, first_name, last_name, x->run_count, sz, o->tli);
    else {
        seg_name(x->r, o->tli, oldest, need, sizeof need);
        plan_line(x,
                  "%s WAL %s..%s (%zu files, %s): %s %s, the oldest WAL the kept backups need on "
                  "timeline %" PRIu32 ", outside the point-in-time window",
                  verb, first_name, last_name, x->run_count, sz,
                  o->segno < oldest ? "before" : "after", need, o->tli);
    }
}

/* Decide whether one WAL object (in (timeline, segment) order) goes; runs of
 * segments that go are reported as ranges per timeline. */
static void plan_obj(expire_run *x, const char *dir, const wal_obj *o)
{
    bool go = o->history ? !uw_ret_history_needed(&x->res, o->tli)
                         : !uw_ret_wal_needed(&x->res, o->tli, o->segno);
    if (!go) {
        plan_close_run(x);
        return;
    }
    if (!x->eo->dry_run) {
        if (x->ngo == x->capgo) {
            x->capgo = x->capgo ? x->capgo * 2 : 256;
            x->go = uw_realloc(x->go, x->capgo * sizeof *x->go);
        }
        x->go[x->ngo++] = uw_sprintf("%s/%s", dir, o->name);
    }
    x->go_bytes += o->size;
    if (o->history) {
        x->go_hist++;
        plan_close_run(x);
        plan_line(x, "%s history file %s: no kept backup is on timeline %" PRIu32 " or before",
                  x->eo->dry_run ? "would remove" : "remove", o->walname, o->tli);
        return;
    }
    x->go_segs++;
    if (x->run_open && x->run_first.tli != o->tli)
        plan_close_run(x);
    if (!x->run_open) {
        x->run_open = true;
        x->run_first = *o;
        x->run_count = 0;
        x->run_bytes = 0;
    }
    x->run_last = *o;
    x->run_count++;
    x->run_bytes += o->size;
}

/* List the archive directory by directory and plan each one. */
static int plan_wal(expire_run *x, uw_err *err)
{
    uw_repo *r = x->r;
    char *root = uw_sprintf("%s/archive", r->stanza);
    char **dirs = NULL;
    int rc = uw_storage_list(r->st, root, dir_cb, &dirs, err);
    size_t ndirs = 0;
    while (dirs && dirs[ndirs])
        ndirs++;
    if (ndirs)
        qsort(dirs, ndirs, sizeof *dirs, cmp_str);
    wal_dir l = {0};
    l.seg_size = r->info.wal_seg_size;
    for (size_t i = 0; rc == 0 && i < ndirs; i++) {
        char *dir = uw_sprintf("%s/%s", root, dirs[i]);
        rc = uw_storage_list(r->st, dir, obj_cb, &l, err);
        if (rc == 0 && l.n)
            qsort(l.v, l.n, sizeof *l.v, by_tli_segno);
        for (size_t k = 0; rc == 0 && k < l.n; k++)
            plan_obj(x, dir, &l.v[k]);
        wal_dir_clear(&l);
        free(dir);
    }
    if (rc == 0)
        plan_close_run(x);
    free(l.v);
    for (size_t i = 0; i < ndirs; i++)
        free(dirs[i]);
    free(dirs);
    free(root);
    return rc;
}

static int cmp_start_desc(const void *pa, const void *pb)
{
    const uw_ret_backup *a = *(const uw_ret_backup *const *)pa;
    const uw_ret_backup *b = *(const uw_ret_backup *const *)pb;
    return a->start_time != b->start_time ? (a->start_time > b->start_time ? -1 : 1)
                                          : strcmp(b->label, a->label);
}

/* Manifest first (the backup stops being listed), then its files; newest
 * first, so an incremental goes before what it is built on. */
static int remove_backups(expire_run *x, uw_expire_stats *st, uw_err *err)
{
    const uw_ret_backup **go = uw_calloc(x->nin + 1, sizeof *go);
    size_t n = 0;
    for (size_t i = 0; i < x->nin; i++)
        if (!x->res.rules[i])
            go[n++] = &x->in[i];
    qsort(go, n, sizeof *go, cmp_start_desc);
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        char *dir = uw_backup_dir(x->r, go[k]->label);
        char *mf = uw_sprintf("%s/manifest", dir);
        rc = uw_storage_remove(x->r->st, mf, err);
        if (rc == 0)
            rc = uw_storage_remove_tree(x->r->st, dir, err);
        if (rc == 0) {
            st->backups_removed++;
            for (int i = 0; i < x->nlist; i++)
                if (x->list[i].id == go[k]->label)
                    st->bytes_freed += x->list[i].stored;
            uw_log(UW_LOG_DETAIL, "removed backup %s from %s", go[k]->label, x->r->st->desc);
        }
        free(mf);
        free(dir);
    }
    free(go);
    return rc;
}

static int remove_wal(expire_run *x, uw_expire_stats *st, uw_err *err)
{
    int rc = remove_paths(x->r, x->eo->cfg, (const char *const *)x->go, x->ngo, err);
    if (rc == 0) {
        st->wal_removed += x->go_segs;
        st->history_removed += x->go_hist;
        st->bytes_freed += x->go_bytes;
    }
    return rc;
}

/* Interrupted backups (no backup running) and stale temporaries. */
static void remove_leftovers(expire_run *x, uw_expire_stats *st)
{
    for (int i = 0; !x->busy && x->incomplete && x->incomplete[i]; i++) {
        const char *id = x->incomplete[i];
        if (x->eo->dry_run) {
            say(x->eo, "would remove interrupted backup %s (no manifest)", id);
            continue;
        }
        say(x->eo, "remove interrupted backup %s (no manifest)", id);
        uw_err e;
        uw_err_clear(&e);
        uw_sweep_stats sw = {0};
        if (uw_backup_remove_interrupted(x->r, id, &sw, &e) < 0)
            uw_log(UW_LOG_WARN, "unable to remove interrupted backup %s: %s; the next run retries",
                   id, e.msg);
        else
            st->interrupted_removed++;
        if (sw.uploads)
            say(x->eo, "aborted %" PRIu64 " unfinished multipart uploads of backup %s", sw.uploads,
                id);
    }
    if (x->eo->dry_run)
        return;
    uw_sweep_stats sw = {0};
    uw_err e;
    uw_err_clear(&e);
    if (uw_storage_sweep(x->r->st, x->r->stanza, UW_TEMP_MAX_AGE, &sw, &e) < 0)
        uw_log(UW_LOG_WARN, "sweeping stale temporaries of %s: %s; the next run retries",
               x->r->st->desc, e.msg);
    st->temps_removed += sw.count;
    st->bytes_freed += sw.bytes;
    if (sw.count)
        say(x->eo, "removed %" PRIu64 " stale temporaries (%" PRIu64 " bytes)", sw.count, sw.bytes);
    if (sw.uploads)
        say(x->eo,
            "aborted %" PRIu64 " unfinished multipart uploads initiated more than %d hours ago",
            sw.uploads, (int)(UW_TEMP_MAX_AGE / 3600));
}

static void run_free(expire_run *x)
{
    if (x->lockfd >= 0)
        close(x->lockfd);
    uw_backups_free(x->list, x->nlist);
    for (int i = 0; x->incomplete && x->incomplete[i]; i++)
        free(x->incomplete[i]);
    free(x->incomplete);
    free(x->in);
    uw_ret_result_free(&x->res);
    for (size_t i = 0; i < x->nlines; i++)
        free(x->lines[i]);
    free(x->lines);
    for (size_t i = 0; i < x->ngo; i++)
        free(x->go[i]);
    free(x->go);
}

int uw_expire_repo(uw_repo *r, const uw_expire_opts *eo, const uw_ret_options *ro,
                   uw_expire_stats *stats, uw_err *err)
{
    expire_run x;
    memset(&x, 0, sizeof x);
    x.r = r;
    x.eo = eo;
    x.ro = ro;
    x.lockfd = -1;
    int rc = r->have_info ? 0 : uw_repo_load(r, eo->cfg, err);
    if (rc == 0)
        rc = take_lock(&x, err);
    if (rc == 0)
        rc = uw_backups_list(r, &x.list, &x.nlist, &x.incomplete, err);
    if (rc == 0)
        rc = build_input(&x, err);
    if (rc == 0) {
        /* The policy needs the backups only; the WAL is planned with it. */
        uw_retention_apply(x.in, x.nin, ro, eo->now, &x.res);
        rc = plan_wal(&x, err);
    }
    if (rc == 0) {
        say(eo, "%s:", r->st->desc);
        report_backups(&x);
        for (size_t i = 0; i < x.nlines; i++)
            say(eo, "%s", x.lines[i]);
        if (!eo->dry_run)
            rc = remove_backups(&x, stats, err);
        if (rc == 0 && !eo->dry_run)
            rc = remove_wal(&x, stats, err);
        if (rc == 0)
            remove_leftovers(&x, stats);
    }
    run_free(&x);
    return rc;
}

/* expire.state, for metrics. Keys: result, code, end, message (on failure),
 * start, backups_removed, wal_removed, bytes_freed (summed over the
 * repositories; bytes_freed counts the stored size of what went). A dry run
 * records nothing. A state that cannot be written only warns. */
void uw_expire_record(const uw_config *cfg, int64_t start, const uw_expire_stats *s,
                      const uw_err *outcome)
{
    const char *stanza = uw_cfg_str(cfg, UW_OPT_STANZA);
    uw_err e;
    uw_err_clear(&e);
    uw_state *st = uw_state_load(cfg, stanza, "expire", &e);
    if (!st) {
        uw_log(UW_LOG_WARN, "not recording the outcome of expire: %s", e.msg);
        return;
    }
    uw_state_set_int(st, "start", start);
    uw_state_set_int(st, "backups_removed", (int64_t)s->backups_removed);
    uw_state_set_int(st, "wal_removed", (int64_t)s->wal_removed);
    uw_state_set_int(st, "bytes_freed", (int64_t)s->bytes_freed);
    uw_state_outcome(st, outcome);
    if (uw_state_save(cfg, stanza, "expire", st, &e) < 0)
        uw_log(UW_LOG_WARN, "not recording the outcome of expire: %s", e.msg);
    uw_state_free(st);
}
