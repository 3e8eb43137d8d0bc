/* ue-pitr verify: prove from the repository alone (never the cluster) that the
 * backups can be restored. For each repository, separately (each is meant to
 * be a full copy):
 *
 *  1. list every object under <stanza>/backup, and the archive's
 *     directories one at a time (once ahead for the progress totals, then
 *     as they are read in step 3), with the change identity the listing
 *     gives (storage.h: uw_storage_list_ident);
 *  2. load and authenticate every manifest (a backup directory without one is
 *     a "missing-manifest" problem, a damaged one "corrupt-manifest");
 *  3. read every object once, in parallel (process-max workers, each with
 *     its own repository handle, each object streamed through the verifying
 *     reader and dropped: memory is a few objects' buffers), unless the
 *     verify cache (work/verify_cache.h) says it is unchanged since it was
 *     found sound, and --full is not given;
 *  4. WAL continuity: gaps per timeline, timelines without their .history
 *     file, forks (reported), and for each backup how far recovery from its
 *     start gets with the sound archived WAL, the way ue-pitr restore computes
 *     it (repo/archive_info.h), from the timelines and gaps of what step 3
 *     found sound (no entry per segment is kept): a backup is restorable
 *     when all its files are sound and the WAL reaches at least its stop
 *     point.
 *
 * Every problem is one line "<kind>: <repository> <object>: <cause>"; any
 * problem makes the exit code UW_E_VERIFY (18). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/progress.h"
#include "json.h"
#include "pitr.h"
#include "repo/archive_info.h"
#include "repo/manifest.h"
#include "work/pool.h"
#include "work/state.h"
#include "work/verify_cache.h"
#include "work/verify_object.h"

/* ------------------------------------------------------------ listing -- */

typedef struct {
    char *path;
    uint64_t size;
    char *ident;
} lentry;

typedef struct {
    lentry *e;
    size_t n, cap;
} listing;

typedef struct {
    listing *l;
    const char *dir;
} list_walk;

static int walk_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    list_walk *w = ctx;
    if (is_dir)
        return 0;
    listing *l = w->l;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->e = uw_realloc(l->e, l->cap * sizeof *l->e);
    }
    l->e[l->n++] =
        (lentry){uw_sprintf("%s/%s", w->dir, name), size, uw_strdup(uw_storage_list_ident())};
    return 0;
}

/* Every object under dir, recursively. */
static int list_tree(uw_storage *st, const char *dir, listing *l, uw_err *err)
{
    list_walk w = {l, dir};
    return uw_storage_list_tree(st, dir, walk_cb, &w, err);
}

static int cmp_lentry(const void *a, const void *b)
{
    return strcmp(((const lentry *)a)->path, ((const lentry *)b)->path);
}

static const lentry *listing_find(const listing *l, const char *path)
{
    lentry key = {(char *)path, 0, NULL};
    return l->n ? bsearch(&key, l->e, l->n, sizeof *l->e, cmp_lentry) : NULL;
}

static void listing_free(listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->e[i].path);
        free(l->e[i].ident);
    }
    free(l->e);
    memset(l, 0, sizeof *l);
}

/* ------------------------------------------------------------- report -- */

typedef struct {
    char kind[24];
    char *line; /* the whole line, "<kind>: <repo> <object>: <cause>" */
} problem;

typedef struct {
    char id[UW_BACKUP_ID_MAX];
    bool files_ok, restorable;
    char *why; /* not restorable: the first reason */
    uw_reach reach;
    uint32_t tli; /* timeline followed */
    uint64_t start_lsn, stop_lsn;
} backup_status;

typedef struct {
    problem *p;
    size_t np;
    uint64_t objects_read, objects_skipped, bytes_read, manifests;
    size_t backups_total, backups_restorable;
    char **info; /* per repository, text lines (backups, timelines) */
    size_t ninfo;
    backup_status *bs;
    size_t nbs;
    int *bs_repo;
} report;

static void add_problem(report *rp, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_problem(report *rp, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *rest;
    if (vasprintf(&rest, fmt, ap) < 0)
        abort();
    va_end(ap);
    rp->p = uw_realloc(rp->p, (rp->np + 1) * sizeof *rp->p);
    problem *p = &rp->p[rp->np++];
    snprintf(p->kind, sizeof p->kind, "%s", kind);
    p->line = uw_sprintf("%s: %s", kind, rest);
    free(rest);
}

static void add_info(report *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_info(report *rp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line;
    if (vasprintf(&line, fmt, ap) < 0)
        abort();
    va_end(ap);
    rp->info = uw_realloc(rp->info, (rp->ninfo + 1) * sizeof *rp->info);
    rp->info[rp->ninfo++] = line;
}

/* --------------------------------------------------------------- jobs -- */

typedef struct {
    char *path, *bind;
    uint8_t expect[32];
    bool has_expect, is_id;
    uint64_t max_size, size;
    const char *ident;
    bool skip; /* unchanged since verified */
    /* results */
    bool done, ok;
    uw_code code;
    char *msg;
    char sha256[65];
    uint64_t read;
} vjob;

typedef struct {
    vjob *j;
    size_t n, cap;
    uw_repo *clones;
    uw_progress *prog; /* stored bytes and objects read, of those not skipped */
} jobs;

static vjob *job_add(jobs *js, const char *path, const char *bind)
{
    if (js->n == js->cap) {
        js->cap = js->cap ? js->cap * 2 : 256;
        js->j = uw_realloc(js->j, js->cap * sizeof *js->j);
    }
    vjob *j = &js->j[js->n++];
    memset(j, 0, sizeof *j);
    j->path = uw_strdup(path);
    j->bind = uw_strdup(bind);
    return j;
}

static int cmp_job(const void *a, const void *b)
{
    return strcmp(((const vjob *)a)->path, ((const vjob *)b)->path);
}

static vjob *job_find(const jobs *js, const char *path)
{
    vjob key = {.path = (char *)path};
    return js->n ? bsearch(&key, js->j, js->n, sizeof *js->j, cmp_job) : NULL;
}

static void jobs_free(jobs *js)
{
    for (size_t i = 0; i < js->n; i++) {
        free(js->j[i].path);
        free(js->j[i].bind);
        free(js->j[i].msg);
    }
    free(js->j);
    memset(js, 0, sizeof *js);
}

static int run_job(void *ctx, size_t index, uw_err *err)
{
    (void)err;
    jobs *js = ctx;
    vjob *j = &js->j[index];
    if (j->skip)
        return 0;
    uw_verify_obj o = {j->path, j->bind, j->has_expect ? j->expect : NULL, j->is_id, j->max_size};
    uw_verify_result res;
    uw_err e;
    uw_err_clear(&e);
    j->done = true;
    j->ok = uw_verify_object(&js->clones[uw_pool_worker_id()], &o, &res, &e) == 0;
    j->read = res.read;
    uw_progress_add(js->prog, j->size, 1);
    if (j->ok)
        memcpy(j->sha256, res.sha256, sizeof j->sha256);
    else {
        j->code = e.code;
        j->msg = uw_strdup(e.msg);
    }
    /* A damaged object is a finding, not a reason to stop the others. */
    return 0;
}

/* The problem kind of a failed object read. */
static const char *fail_kind(uw_code c)
{
    switch (c) {
    case UW_E_NOT_FOUND: return "missing";
    case UW_E_CORRUPT:
    case UW_E_DECRYPT:
    case UW_E_FOREIGN:
    case UW_E_FORMAT_VERSION: return "corrupt";
    default: return "unreadable";
    }
}

/* ------------------------------------------------------------ backups -- */

/* A backup as verify keeps it between passes: the manifest's header only,
 * and the backups it depends on. The file entries are read again from the
 * repository by each pass that needs them (planning, reporting) and freed
 * after it, so a run over hundreds of backups of thousands of files holds one
 * manifest's entries at a time, not all of them. */
typedef struct {
    uw_manifest h; /* entries dropped */
    char **deps;   /* prior, and every other backup a file entry refers to */
    size_t ndeps;
} vbackup;

typedef struct {
    vbackup *b;
    size_t n;
} manifests;

static int cmp_manifest(const void *a, const void *b)
{
    const uw_manifest *x = &((const vbackup *)a)->h, *y = &((const vbackup *)b)->h;
    if (x->stop_time != y->stop_time)
        return x->stop_time < y->stop_time ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void dep_add(vbackup *b, const char *id)
{
    if (!id[0] || !strcmp(id, b->h.id))
        return;
    for (size_t i = 0; i < b->ndeps; i++)
        if (!strcmp(b->deps[i], id))
            return;
    b->deps = uw_realloc(b->deps, (b->ndeps + 1) * sizeof *b->deps);
    b->deps[b->ndeps++] = uw_strdup(id);
}

/* Keep m's header and dependencies; its entries are freed. */
static void vbackup_from(vbackup *b, uw_manifest *m)
{
    memset(b, 0, sizeof *b);
    b->h = *m;
    dep_add(b, m->prior);
    for (size_t k = 0; k < m->count; k++) {
        dep_add(b, m->entries[k].ref);
        dep_add(b, m->entries[k].base);
    }
    uw_manifest_free(m); /* the entries; the header lives on in b->h */
    b->h.entries = NULL;
    b->h.count = b->h.cap = 0;
}

static void manifests_free(manifests *ms)
{
    for (size_t i = 0; i < ms->n; i++) {
        for (size_t k = 0; k < ms->b[i].ndeps; k++)
            free(ms->b[i].deps[k]);
        free(ms->b[i].deps);
    }
    free(ms->b);
    memset(ms, 0, sizeof *ms);
}

/* Read backup b's manifest again, in full (NULL: read, m to be freed; else
 * why it could not be, to be freed). A manifest that changed between the
 * passes (a backup expired and taken again under the same id, a tampered
 * repository) is not used. */
static char *manifest_reread(uw_repo *r, const vbackup *b, uw_manifest *m)
{
    uw_err e;
    uw_manifest_init(m);
    if (uw_manifest_load(r, b->h.id, m, &e) < 0) {
        uw_manifest_free(m);
        return uw_sprintf("its manifest could not be read again: %s", e.msg);
    }
    if (m->start_lsn != b->h.start_lsn || m->stop_lsn != b->h.stop_lsn ||
        strcmp(m->prior, b->h.prior) != 0) {
        uw_manifest_free(m);
        return uw_strdup("its manifest changed while it was being verified");
    }
    return NULL;
}

typedef struct {
    char **ids;
    size_t n;
} id_list;

static int id_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    (void)size;
    id_list *l = ctx;
    if (is_dir) {
        l->ids = uw_realloc(l->ids, (l->n + 1) * sizeof *l->ids);
        l->ids[l->n++] = uw_strdup(name);
    }
    return 0;
}

/* Load every backup's manifest header; missing and damaged ones are
 * problems. */
static int load_manifests(uw_repo *r, report *rp, manifests *ms, uw_err *err)
{
    char *dir = uw_sprintf("%s/backup", r->stanza);
    id_list ids = {0};
    int rc = uw_storage_list(r->st, dir, id_cb, &ids, err);
    for (size_t i = 0; rc == 0 && i < ids.n; i++) {
        uw_manifest m;
        uw_manifest_init(&m);
        uw_err e;
        rp->manifests++;
        if (uw_manifest_load(r, ids.ids[i], &m, &e) == 0) {
            ms->b = uw_realloc(ms->b, (ms->n + 1) * sizeof *ms->b);
            vbackup_from(&ms->b[ms->n++], &m);
        } else if (e.code == UW_E_NOT_FOUND) {
            add_problem(rp, "missing-manifest",
                        "%s %s/%s/manifest: backup '%s' has no manifest (interrupted or running "
                        "backup, or a lost manifest): it cannot be restored",
                        r->st->desc, dir, ids.ids[i], ids.ids[i]);
        } else if (e.code == UW_E_STORAGE || e.code == UW_E_STORAGE_DENIED) {
            *err = e;
            rc = -1;
        } else {
            add_problem(rp, "corrupt-manifest", "%s %s/%s/manifest: %s", r->st->desc, dir,
                        ids.ids[i], e.msg);
        }
    }
    for (size_t i = 0; i < ids.n; i++)
        free(ids.ids[i]);
    free(ids.ids);
    free(dir);
    if (ms->n)
        qsort(ms->b, ms->n, sizeof *ms->b, cmp_manifest);
    return rc;
}

static const vbackup *manifest_by_id(const manifests *ms, const char *id)
{
    for (size_t i = 0; i < ms->n; i++)
        if (!strcmp(ms->b[i].h.id, id))
            return &ms->b[i];
    return NULL;
}

/* --set: the backup and everything it depends on (its prior chain, and the
 * base backups of block deltas). */
static void mark_chain(const manifests *ms, const char *id, bool *want)
{
    for (size_t i = 0; i < ms->n; i++) {
        if (strcmp(ms->b[i].h.id, id) != 0 || want[i])
            continue;
        want[i] = true;
        for (size_t k = 0; k < ms->b[i].ndeps; k++)
            mark_chain(ms, ms->b[i].deps[k], want);
    }
}

/* One job per backup file object the wanted backups use (an object shared by
 * an incremental and its prior is read once). */
static void plan_backup_files(uw_repo *r, const manifests *ms, const bool *want, const listing *l,
                              jobs *js, report *rp)
{
    for (size_t i = 0; i < ms->n; i++) {
        if (!want[i])
            continue;
        uw_manifest m;
        char *why = manifest_reread(r, &ms->b[i], &m);
        if (why) {
            /* Reported as not restorable by backup_report, which reads it
             * again. */
            free(why);
            continue;
        }
        for (size_t k = 0; k < m.count; k++) {
            const uw_mf_entry *e = &m.entries[k];
            if (e->type != 'f')
                continue;
            char *obj = uw_backup_object(r, e);
            const lentry *le = listing_find(l, obj);
            if (!le) {
                add_problem(rp, "missing", "%s %s: file '%s' of backup %s is not in the repository",
                            r->st->desc, obj, e->path, m.id);
            } else {
                vjob *j = job_add(js, obj, e->path);
                j->has_expect = !e->base[0];
                if (j->has_expect)
                    memcpy(j->expect, e->sha256, 32);
                uint64_t max = e->base[0] ? e->size + e->size / 64 + 4096 : e->size;
                j->max_size = max ? max : 1;
                j->size = le->size;
                j->ident = le->ident;
            }
            free(obj);
        }
        uw_manifest_free(&m);
    }
}

/* ---------------------------------------------------------- continuity -- */

static void seg_of(const uw_archive *a, uint32_t tli, uint64_t segno, char *buf, size_t len)
{
    uw_seg_name(tli, segno, a->seg_size, buf, len);
}

static void timelines_report(uw_repo *r, uw_archive *a, report *rp)
{
    for (size_t i = 0; i < a->ntls; i++) {
        const uw_arch_timeline *t = &a->tls[i];
        for (size_t g = 0; g < t->ngaps; g++) {
            char first[32], last[32];
            seg_of(a, t->tli, t->gaps[g].first, first, sizeof first);
            seg_of(a, t->tli, t->gaps[g].last, last, sizeof last);
            add_problem(rp, "gap",
                        "%s %s/archive: timeline %u lacks %s%s%s (%" PRIu64
                        " segment%s not archived or not sound)",
                        r->st->desc, r->stanza, t->tli, first,
                        t->gaps[g].last != t->gaps[g].first ? " to " : "",
                        t->gaps[g].last != t->gaps[g].first ? last : "",
                        t->gaps[g].last - t->gaps[g].first + 1,
                        t->gaps[g].last != t->gaps[g].first ? "s" : "");
        }
        if (t->tli > 1 && !uw_archive_history_file(a, t->tli)) {
            add_problem(rp, "missing-history",
                        "%s %s/archive/history/%08X.history: timeline %u has archived segments "
                        "but no history file: recovery cannot follow it",
                        r->st->desc, r->stanza, t->tli, t->tli);
            continue;
        }
        if (t->tli > 1) {
            uw_tl_history h = {0};
            uw_err e;
            if (uw_archive_tl_history(a, t->tli, &h, &e) < 0) {
                add_problem(rp, "corrupt", "%s %08X.history: %s", r->st->desc, t->tli, e.msg);
                continue;
            }
            if (h.n >= 2) {
                char lsn[32];
                uw_lsn_format(h.e[h.n - 2].end, lsn, sizeof lsn);
                add_info(rp, "  timeline %u forks from timeline %u at %s", t->tli, h.e[h.n - 2].tli,
                         lsn);
            }
            uw_tl_history_free(&h);
        }
    }
}

/* The history recovery from backup m follows: the latest timeline when it
 * holds the backup, else the backup's own (as info and restore choose). */
static void backup_history(const uw_archive *a, const uw_manifest *m, uw_tl_history *h,
                           uint32_t *tli)
{
    uw_err e;
    *tli = uw_archive_latest_tli(a, m->timeline);
    if (uw_archive_tl_history(a, *tli, h, &e) == 0 &&
        uw_tl_of_lsn(h, m->stop_lsn ? m->stop_lsn - 1 : 0) == m->timeline)
        return;
    uw_tl_history_free(h);
    *tli = m->timeline;
    if (uw_archive_tl_history(a, *tli, h, &e) < 0) {
        h->e = uw_malloc(sizeof *h->e);
        h->e[0] = (uw_tl_entry){m->timeline, 0, UINT64_MAX};
        h->n = 1;
    }
}

/* The first bad or missing file object of backup b (NULL: all sound). */
static char *first_bad_file(uw_repo *r, const vbackup *b, const jobs *js)
{
    uw_manifest m;
    char *why = manifest_reread(r, b, &m);
    for (size_t k = 0; !why && k < m.count; k++) {
        const uw_mf_entry *e = &m.entries[k];
        if (e->type != 'f')
            continue;
        char *obj = uw_backup_object(r, e);
        const vjob *j = job_find(js, obj);
        if (!j || (j->done && !j->ok))
            why = uw_sprintf("file '%s' (%s) is %s", e->path, obj,
                             !j ? "missing" : fail_kind(j->code));
        free(obj);
    }
    uw_manifest_free(&m);
    return why;
}

static void backup_report(uw_repo *r, const uw_archive *a, const vbackup *vb, const jobs *js,
                          report *rp)
{
    const uw_manifest *m = &vb->h;
    rp->bs = uw_realloc(rp->bs, (rp->nbs + 1) * sizeof *rp->bs);
    backup_status *b = &rp->bs[rp->nbs++];
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%s", m->id);
    b->start_lsn = m->start_lsn;
    b->stop_lsn = m->stop_lsn;
    rp->backups_total++;
    b->why = first_bad_file(r, vb, js);
    /* An incremental also needs its prior chain's files, which are in js
     * when the chain's objects are referenced (ref) by its own manifest. */
    b->files_ok = !b->why;
    uw_tl_history h = {0};
    backup_history(a, m, &h, &b->tli);
    uw_archive_reach(a, &h, m->start_lsn, &b->reach);
    char start[32], stop[32], reach[32], seg[32], miss[32] = "";
    uw_lsn_format(m->start_lsn, start, sizeof start);
    uw_lsn_format(m->stop_lsn, stop, sizeof stop);
    uw_lsn_format(b->reach.end_lsn, reach, sizeof reach);
    seg_of(a, b->reach.last_tli, b->reach.last_segno, seg, sizeof seg);
    if (b->reach.missing_tli)
        seg_of(a, b->reach.missing_tli, b->reach.missing_segno, miss, sizeof miss);
    bool wal_ok = b->reach.any && b->reach.end_lsn >= m->stop_lsn;
    if (!b->why && !wal_ok)
        b->why = uw_sprintf("the WAL from its start %s to its stop %s is not all archived (%s "
                            "is missing)",
                            start, stop, miss[0] ? miss : "the start segment");
    b->restorable = !b->why;
    if (b->restorable)
        rp->backups_restorable++;
    /* A gap after the stop point: restorable, but only up to the gap, while
     * newer WAL exists on the timeline it follows. */
    const uw_arch_timeline *last = NULL;
    for (size_t i = 0; i < a->ntls; i++)
        if (a->tls[i].tli == h.e[h.n - 1].tli)
            last = &a->tls[i];
    if (wal_ok && miss[0] && last && last->last > b->reach.missing_segno) {
        char newest[32];
        seg_of(a, last->tli, last->last, newest, sizeof newest);
        add_problem(rp, "gap",
                    "%s backup %s: %s is missing, so it can only reach %s (segment %s), not the "
                    "newest archived WAL %s",
                    r->st->desc, m->id, miss, reach, seg, newest);
    }
    if (b->restorable)
        add_info(rp, "  backup %s (%s, timeline %u): restorable, up to %s (segment %s)", m->id,
                 m->type, m->timeline, reach, seg);
    else {
        add_info(rp, "  backup %s (%s, timeline %u): NOT restorable: %s", m->id, m->type,
                 m->timeline, b->why);
        add_problem(rp, "not-restorable", "%s backup %s: %s", r->st->desc, m->id, b->why);
    }
    rp->bs_repo = uw_realloc(rp->bs_repo, rp->nbs * sizeof *rp->bs_repo);
    rp->bs_repo[rp->nbs - 1] = r->st->repo;
    uw_tl_history_free(&h);
}

/* ------------------------------------------------------- one repository -- */

typedef struct {
    const uw_config *cfg;
    bool full;
    const char *set;
    uw_verify_cache *old; /* loaded only when it can be used (see pitr_verify) */
    uw_vc_writer *fresh;  /* NULL: no cache is written */
} verify_opts;

/* Skip the jobs the cache says are unchanged since found sound (and whose
 * content is still the one the manifest expects; WAL objects: the name
 * carries the content id). */
static void jobs_mark_skips(jobs *js, int repo, const verify_opts *o)
{
    for (size_t i = 0; !o->full && i < js->n; i++) {
        vjob *j = &js->j[i];
        const uw_vc_entry *c = uw_verify_cache_match(o->old, repo, j->path, j->size, j->ident);
        uint8_t sha[32];
        j->skip = c && (!j->has_expect || j->is_id ||
                        (uw_unhex(c->sha256, sha, 32) == 0 && !memcmp(sha, j->expect, 32)));
    }
}

/* Count what the jobs read and report what failed. */
static void jobs_account(uw_repo *r, const jobs *js, report *rp)
{
    for (size_t i = 0; i < js->n; i++) {
        const vjob *j = &js->j[i];
        if (j->skip) {
            rp->objects_skipped++;
            continue;
        }
        rp->objects_read++;
        rp->bytes_read += j->read;
        if (!j->ok)
            add_problem(rp, fail_kind(j->code), "%s %s: %s", r->st->desc, j->path, j->msg);
    }
}

/* Into the new cache: the jobs found sound, and the skipped ones as cached. */
static void jobs_cache(uw_repo *r, const jobs *js, const verify_opts *o)
{
    for (size_t i = 0; o->fresh && i < js->n; i++) {
        const vjob *j = &js->j[i];
        if (j->skip) {
            const uw_vc_entry *c =
                uw_verify_cache_match(o->old, r->st->repo, j->path, j->size, j->ident);
            if (c)
                uw_verify_cache_put(o->fresh, r->st->repo, j->path, j->size, j->ident, c->sha256);
        } else if (j->done && j->ok && j->ident && *j->ident)
            uw_verify_cache_put(o->fresh, r->st->repo, j->path, j->size, j->ident, j->sha256);
    }
}

/* Objects under prefix that this run did not look at (--set) keep their
 * entries while the listing shows them unchanged. */
static void cache_carry(uw_repo *r, const jobs *js, const listing *l, const char *prefix,
                        const verify_opts *o)
{
    if (!o->fresh || !o->old)
        return;
    size_t first, n = uw_verify_cache_range(o->old, r->st->repo, prefix, &first);
    for (size_t i = first; i < first + n; i++) {
        const uw_vc_entry *c = &o->old->e[i];
        if (job_find(js, c->path))
            continue;
        const lentry *le = listing_find(l, c->path);
        if (le && le->size == c->size && !strcmp(le->ident, c->ident))
            uw_verify_cache_put(o->fresh, c->repo, c->path, c->size, c->ident, c->sha256);
    }
}

/* The worker pool's repository handles, made once per repository. */
typedef struct {
    uw_repo *clones;
    int workers, made;
    uw_progress *prog;
} pool;

static int pool_open(pool *p, const uw_config *cfg, uw_repo *r, uint64_t total_bytes,
                     uint64_t total_files, uw_err *err)
{
    memset(p, 0, sizeof *p);
    p->workers = (int)uw_cfg_int(cfg, UW_OPT_PROCESS_MAX);
    if (p->workers < 1)
        p->workers = 1;
    p->clones = uw_calloc((size_t)p->workers, sizeof *p->clones);
    int rc = 0;
    for (; p->made < p->workers && rc == 0; p->made++)
        rc = uw_repo_clone(cfg, r, &p->clones[p->made], err);
    p->prog =
        uw_progress_start("verify", total_bytes, total_files, uw_cfg_bool(cfg, UW_OPT_PROGRESS));
    return rc;
}

static void pool_close(pool *p)
{
    uw_progress_finish(p->prog);
    for (int i = 0; i < p->made; i++)
        if (p->clones[i].st)
            uw_repo_release(&p->clones[i]);
    free(p->clones);
    memset(p, 0, sizeof *p);
}

static int jobs_run(pool *p, jobs *js, uw_err *err)
{
    js->clones = p->clones;
    js->prog = p->prog;
    int rc = uw_pool_run(p->workers, js->n, run_job, js, err);
    js->clones = NULL;
    js->prog = NULL;
    return rc;
}

/* Sort the jobs by path and keep one per object (backups share objects). */
static void jobs_unique(jobs *js)
{
    if (js->n)
        qsort(js->j, js->n, sizeof *js->j, cmp_job);
    size_t w = 0;
    for (size_t i = 0; i < js->n; i++) {
        if (w && !strcmp(js->j[w - 1].path, js->j[i].path)) {
            free(js->j[i].path);
            free(js->j[i].bind);
            continue;
        }
        js->j[w++] = js->j[i];
    }
    js->n = w;
}

/* ------------------------------------------------------ archive stream -- */

/* The archive is read one directory at a time (its listing, its jobs, its
 * results), and what continuity needs of it is kept as timelines with their
 * gaps (uw_archive_absorb), so that verifying a repository of 100,000
 * segments holds one directory's worth, not one entry per segment. */
typedef struct {
    uw_repo *r;
    uw_archive *a; /* the directory being read */
    const verify_opts *o;
    report *rp;
    pool *p;
    bool *bad_seg, *bad_hist; /* found not sound, by index in a */
} astream;

static vjob *wal_job(jobs *js, const char *object, const char *name, const char *sha_hex,
                     uint64_t stored, uint32_t seg_size, const listing *l)
{
    const lentry *le = listing_find(l, object);
    vjob *j = job_add(js, object, name);
    j->has_expect = uw_unhex(sha_hex, j->expect, 32) == 0;
    j->is_id = true;
    j->max_size = seg_size;
    j->size = le ? le->size : stored;
    j->ident = le ? le->ident : "";
    return j;
}

/* Verify the objects of directory `dir` (listed in l): segments
 * segs[s0, nsegs) of st->a (those kept for --set), its other files and its
 * history files. */
static int stream_dir(astream *st, const char *dir, const listing *l, size_t s0, uw_err *err)
{
    uw_archive *a = st->a;
    jobs js = {0};
    /* Index of each job's file in the archive: segments first, then the
     * others, then the history files. */
    for (size_t i = s0; i < a->nsegs; i++) {
        uw_arch_file f;
        uw_archive_seg_file(a, &a->segs[i], &f);
        wal_job(&js, f.object, f.name, f.sha256, f.stored, a->seg_size, l);
        free(f.object);
    }
    size_t nseg = a->nsegs - s0;
    for (size_t i = 0; i < a->nother; i++)
        wal_job(&js, a->other[i].object, a->other[i].name, a->other[i].sha256, a->other[i].stored,
                a->seg_size, l);
    for (size_t i = 0; i < a->nhistory; i++)
        wal_job(&js, a->history[i].object, a->history[i].name, a->history[i].sha256,
                a->history[i].stored, a->seg_size, l);
    /* Job i is segment s0 + i, else other file i - nseg, else history file
     * until the results are marked; they are in path order already unless
     * other files sit among the segments (checked). */
    bool ordered = true;
    for (size_t i = 1; i < js.n; i++)
        ordered = ordered && strcmp(js.j[i - 1].path, js.j[i].path) < 0;
    jobs_mark_skips(&js, st->r->st->repo, st->o);
    for (size_t i = 0; i < js.n; i++)
        if (js.j[i].skip)
            uw_progress_add(st->p->prog, js.j[i].size, 1);
    int rc = jobs_run(st->p, &js, err);
    if (rc == 0) {
        for (size_t i = 0; i < js.n; i++) {
            const vjob *j = &js.j[i];
            if (!j->done || j->ok)
                continue;
            if (i < nseg)
                st->bad_seg[s0 + i] = true;
            else if (i >= nseg + a->nother)
                st->bad_hist[i - nseg - a->nother] = true;
        }
        /* Then in path order, as problems are reported and cache_carry
         * looks jobs up. */
        if (!ordered)
            jobs_unique(&js);
        jobs_account(st->r, &js, st->rp);
        jobs_cache(st->r, &js, st->o);
        char *prefix = uw_sprintf("%s/", dir);
        cache_carry(st->r, &js, l, prefix, st->o);
        free(prefix);
    }
    jobs_free(&js);
    return rc;
}

/* Drop from the archive what was found not sound, so that continuity is
 * computed with what a restore can really use. */
static void drop_bad(uw_archive *a, const bool *bad_seg, const bool *bad_hist)
{
    size_t w = 0;
    for (size_t i = 0; i < a->nsegs; i++)
        if (!bad_seg[i])
            a->segs[w++] = a->segs[i];
    a->nsegs = w;
    w = 0;
    for (size_t i = 0; i < a->nhistory; i++) {
        if (bad_hist[i]) {
            free(a->history[i].object);
            continue;
        }
        a->history[w++] = a->history[i];
    }
    a->nhistory = w;
}

/* The first segment of a directory's that verify reads: with --set, those
 * from the backup's start on (a directory holds one timeline's segments, in
 * order once built). */
static size_t first_read(const uw_archive *d, uint64_t from_segno)
{
    size_t i = 0;
    while (i < d->nsegs && d->segs[i].segno < from_segno)
        i++;
    return i;
}

/* What the archive adds to the progress totals: the directories listed once
 * ahead of the reading, one at a time, for the counts alone. */
static int archive_totals(uw_repo *r, char **dirs, size_t ndirs, uint64_t from_segno,
                          uint64_t *bytes, uint64_t *files, uw_err *err)
{
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < ndirs; k++) {
        uw_archive d;
        uw_archive_init(&d, r->info.wal_seg_size);
        rc = uw_archive_scan_dir(&d, r, 1, dirs[k], err);
        if (rc == 0) {
            uw_archive_build(&d);
            for (size_t i = first_read(&d, from_segno); i < d.nsegs; i++)
                *bytes += d.segs[i].stored, (*files)++;
            for (size_t i = 0; i < d.nother; i++)
                *bytes += d.other[i].stored, (*files)++;
            for (size_t i = 0; i < d.nhistory; i++)
                *bytes += d.history[i].stored, (*files)++;
        }
        uw_archive_free(&d);
    }
    return rc;
}

/* Every directory of the archive in name order (the history files' last):
 * listed, its segments from from_segno on and its other files read, what was
 * found sound added to sum. */
static int stream_archive(astream *st, uw_archive *sum, char **dirs, size_t ndirs,
                          uint64_t from_segno, uw_err *err)
{
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < ndirs; k++) {
        char *dir = uw_sprintf("%s/archive/%s", st->r->stanza, dirs[k]);
        listing l = {0};
        list_walk w = {&l, dir};
        /* Flat: the paths are the ones the jobs use (walk_cb skips
         * directories). One listing gives the index of the directory and the
         * sizes and change identities the cache compares; retried as the
         * archive scan retries its own. */
        for (int attempt = 0;; attempt++) {
            rc = uw_storage_list(st->r->st, dir, walk_cb, &w, err);
            if (rc == 0 || !uw_retry_wait(attempt, err))
                break;
            listing_free(&l);
        }
        if (l.n)
            qsort(l.e, l.n, sizeof *l.e, cmp_lentry);
        uw_archive d;
        uw_archive_init(&d, sum->seg_size);
        size_t skip = strlen(dir) + 1;
        for (size_t i = 0; rc == 0 && i < l.n; i++)
            uw_archive_add_object(&d, st->r, 1, dirs[k], l.e[i].path + skip, l.e[i].size);
        uw_archive_build(&d);
        size_t s0 = first_read(&d, from_segno);
        if (rc == 0 && (s0 < d.nsegs || d.nother || d.nhistory)) {
            st->a = &d;
            st->bad_seg = uw_calloc(d.nsegs + 1, sizeof *st->bad_seg);
            st->bad_hist = uw_calloc(d.nhistory + 1, sizeof *st->bad_hist);
            rc = stream_dir(st, dir, &l, s0, err);
            drop_bad(&d, st->bad_seg, st->bad_hist);
            free(st->bad_seg);
            free(st->bad_hist);
            st->a = NULL;
        }
        uw_archive_absorb(sum, &d);
        listing_free(&l);
        free(dir);
    }
    return rc;
}

/* Duplicates in the order a whole-archive uw_archive_build reports them:
 * segments, then history files, then the other files (uw_archive_absorb
 * appends them directory by directory). */
static void report_duplicates(uw_repo *r, const uw_archive *a, report *rp)
{
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < a->nduplicates; i++) {
            const char *name = a->duplicates[i], *dot = strchr(name, '.');
            int kind = !dot ? 0 : !strcmp(dot, ".history") ? 1 : 2;
            if (kind == pass)
                add_problem(rp, "duplicate", "%s %s: stored with more than one content",
                            r->st->desc, name);
        }
}

static int verify_repo(uw_repo *r, const verify_opts *o, report *rp, uw_err *err)
{
    if (uw_repo_load(r, o->cfg, err) < 0)
        return -1;
    listing l = {0};
    manifests ms = {0};
    jobs js = {0};
    /* What the sound archive holds: timelines and gaps, no segments. */
    uw_archive a;
    uw_archive_init(&a, r->info.wal_seg_size);
    char **dirs = NULL;
    size_t ndirs = 0;
    char *bdir = uw_sprintf("%s/backup", r->stanza);
    /* The backups' objects; the archive's are listed one directory at a
     * time as they are read (stream_archive). */
    int rc = list_tree(r->st, bdir, &l, err);
    if (l.n)
        qsort(l.e, l.n, sizeof *l.e, cmp_lentry);
    if (rc == 0)
        rc = load_manifests(r, rp, &ms, err);
    bool *want = uw_calloc(ms.n + 1, sizeof *want);
    uint64_t from_segno = 0;
    if (rc == 0 && o->set) {
        if (!manifest_by_id(&ms, o->set))
            rc = uw_fail(err, UW_E_OPTION,
                         "backup '%s' does not exist in %s (or has no valid "
                         "manifest)",
                         o->set, r->st->desc);
        else {
            mark_chain(&ms, o->set, want);
            from_segno = manifest_by_id(&ms, o->set)->h.start_lsn / r->info.wal_seg_size;
        }
    } else
        for (size_t i = 0; i < ms.n; i++)
            want[i] = true;
    if (rc == 0)
        rc = uw_archive_dirs(r, &dirs, &ndirs, err);
    pool p = {0};
    uint64_t total_bytes = 0, total_files = 0;
    /* The archive's objects: those the cache skips count as done when
     * skipped. */
    if (rc == 0)
        rc = archive_totals(r, dirs, ndirs, from_segno, &total_bytes, &total_files, err);
    if (rc == 0) {
        plan_backup_files(r, &ms, want, &l, &js, rp);
        jobs_unique(&js);
        jobs_mark_skips(&js, r->st->repo, o);
        for (size_t i = 0; i < js.n; i++)
            if (!js.j[i].skip)
                total_bytes += js.j[i].size, total_files++;
        rc = pool_open(&p, o->cfg, r, total_bytes, total_files, err);
    }
    if (rc == 0) {
        /* The archive first, then the backups' files: problems come out in
         * path order, archive before backup. */
        astream st = {r, NULL, o, rp, &p, NULL, NULL};
        rc = stream_archive(&st, &a, dirs, ndirs, from_segno, err);
    }
    if (rc == 0)
        rc = jobs_run(&p, &js, err);
    pool_close(&p);
    if (rc == 0) {
        jobs_account(r, &js, rp);
        size_t nsegs = 0;
        for (size_t i = 0; i < a.ntls; i++)
            nsegs += a.tls[i].count;
        add_info(rp, "%s: %zu backup%s, %zu WAL segments on %zu timeline%s", r->st->desc, ms.n,
                 ms.n == 1 ? "" : "s", nsegs, a.ntls, a.ntls == 1 ? "" : "s");
        timelines_report(r, &a, rp);
        for (size_t i = 0; i < ms.n; i++)
            if (want[i] && (!o->set || !strcmp(ms.b[i].h.id, o->set)))
                backup_report(r, &a, &ms.b[i], &js, rp);
        report_duplicates(r, &a, rp);
        jobs_cache(r, &js, o);
        char *prefix = uw_sprintf("%s/", bdir);
        cache_carry(r, &js, &l, prefix, o);
        free(prefix);
    }
    for (size_t i = 0; i < ndirs; i++)
        free(dirs[i]);
    free(dirs);
    free(want);
    free(bdir);
    jobs_free(&js);
    uw_archive_free(&a);
    manifests_free(&ms);
    listing_free(&l);
    return rc;
}

/* --------------------------------------------------------------- output -- */

static void print_text(const report *rp, const char *stanza)
{
    printf("stanza: %s\n", stanza);
    for (size_t i = 0; i < rp->ninfo; i++)
        printf("%s\n", rp->info[i]);
    printf("objects: %" PRIu64 " read (%" PRIu64 " bytes), %" PRIu64
           " skipped (unchanged since verified), %" PRIu64 " manifests\n",
           rp->objects_read, rp->bytes_read, rp->objects_skipped, rp->manifests);
    printf("backups: %zu restorable of %zu\n", rp->backups_restorable, rp->backups_total);
    for (size_t i = 0; i < rp->np; i++)
        printf("%s\n", rp->p[i].line);
    printf("%s\n", rp->np ? "verify: FAILED" : "verify: ok");
}

static void print_json(const report *rp, const char *stanza)
{
    bool f = true;
    putchar('{');
    pj_kstr("stanza", stanza, &f);
    pj_kbool("ok", rp->np == 0, &f);
    pj_kint("objects_read", (int64_t)rp->objects_read, &f);
    pj_kint("objects_skipped", (int64_t)rp->objects_skipped, &f);
    pj_kint("bytes_read", (int64_t)rp->bytes_read, &f);
    pj_kint("manifests", (int64_t)rp->manifests, &f);
    pj_kint("backups_total", (int64_t)rp->backups_total, &f);
    pj_kint("backups_restorable", (int64_t)rp->backups_restorable, &f);
    pj_key("backups", &f);
    putchar('[');
    for (size_t i = 0; i < rp->nbs; i++) {
        const backup_status *b = &rp->bs[i];
        bool g = true;
        char lsn[32];
        if (i)
            putchar(',');
        putchar('{');
        pj_kint("repo", rp->bs_repo[i], &g);
        pj_kstr("id", b->id, &g);
        pj_kbool("restorable", b->restorable, &g);
        pj_kbool("files_ok", b->files_ok, &g);
        uw_lsn_format(b->start_lsn, lsn, sizeof lsn);
        pj_kstr("start_lsn", lsn, &g);
        uw_lsn_format(b->stop_lsn, lsn, sizeof lsn);
        pj_kstr("stop_lsn", lsn, &g);
        uw_lsn_format(b->reach.end_lsn, lsn, sizeof lsn);
        pj_kstr("reach_lsn", b->reach.any ? lsn : NULL, &g);
        pj_kint("timeline", b->tli, &g);
        pj_kstr("problem", b->why, &g);
        putchar('}');
    }
    putchar(']');
    pj_key("problems", &f);
    putchar('[');
    for (size_t i = 0; i < rp->np; i++) {
        bool g = true;
        if (i)
            putchar(',');
        putchar('{');
        pj_kstr("kind", rp->p[i].kind, &g);
        pj_kstr("message", rp->p[i].line, &g);
        putchar('}');
    }
    puts("]}");
}

static void report_free(report *rp)
{
    for (size_t i = 0; i < rp->np; i++)
        free(rp->p[i].line);
    free(rp->p);
    for (size_t i = 0; i < rp->ninfo; i++)
        free(rp->info[i]);
    free(rp->info);
    for (size_t i = 0; i < rp->nbs; i++)
        free(rp->bs[i].why);
    free(rp->bs);
    free(rp->bs_repo);
}

/* Keys of verify.state: result, code, end, message (uw_state_outcome), and
 * start, problems, objects_read, objects_skipped, bytes_read, backups_total,
 * backups_restorable (all counts over every repository). */
static void save_state(const uw_config *cfg, const char *stanza, int64_t start, const report *rp,
                       const uw_err *outcome)
{
    uw_err e;
    uw_state *st = uw_state_load(cfg, stanza, "verify", &e);
    if (!st) {
        uw_log(UW_LOG_WARN, "%s (starting verify.state afresh)", e.msg);
        st = uw_state_new();
    }
    uw_state_set_int(st, "start", start);
    uw_state_set_int(st, "problems", (int64_t)rp->np);
    uw_state_set_int(st, "objects_read", (int64_t)rp->objects_read);
    uw_state_set_int(st, "objects_skipped", (int64_t)rp->objects_skipped);
    uw_state_set_int(st, "bytes_read", (int64_t)rp->bytes_read);
    uw_state_set_int(st, "backups_total", (int64_t)rp->backups_total);
    uw_state_set_int(st, "backups_restorable", (int64_t)rp->backups_restorable);
    uw_state_outcome(st, outcome);
    if (uw_state_save(cfg, stanza, "verify", st, &e) < 0)
        uw_log(UW_LOG_WARN, "%s", e.msg);
    uw_state_free(st);
}

int pitr_verify(const uw_config *cfg, uw_err *err)
{
    int64_t start = (int64_t)time(NULL);
    const char *stanza = uw_cfg_str(cfg, UW_OPT_STANZA);
    uw_repo *repos;
    int n;
    if (uw_repos_open(cfg, &repos, &n, err) < 0)
        return -1;
    char *cdir = uw_verify_cache_dir(cfg, stanza);
    uw_verify_cache old = {0};
    verify_opts o = {cfg, uw_cfg_bool(cfg, UW_OPT_FULL), uw_cfg_str(cfg, UW_OPT_SET), &old, NULL};
    /* --full reads everything, so the old cache is only needed with --set
     * (entries of the objects not looked at are kept): not loading it keeps
     * a full run's memory independent of the repository's size. */
    if (!o.full || o.set)
        uw_verify_cache_load(&old, cdir);
    uw_err ce;
    o.fresh = uw_verify_cache_writer(cdir, &ce);
    if (!o.fresh)
        uw_log(UW_LOG_WARN, "%s (the next verify reads everything again)", ce.msg);
    report rp = {0};
    int rc = 0;
    for (int i = 0; i < n; i++) {
        uw_err e;
        uw_err_clear(&e);
        if (verify_repo(&repos[i], &o, &rp, &e) < 0) {
            if (e.code == UW_E_OPTION) {
                *err = e;
                rc = -1;
                break;
            }
            /* One repository failing does not hide the others' state. */
            add_problem(&rp, e.code == UW_E_STANZA ? "stanza" : "unreachable", "%s: %s",
                        repos[i].st->desc, e.msg);
        }
    }
    uw_repos_close(repos, n);
    bool committed = rc == 0;
    if (rc == 0) {
        if (uw_verify_cache_commit(o.fresh, &ce) < 0)
            uw_log(UW_LOG_WARN, "%s (the next verify reads everything again)", ce.msg);
        if (!strcmp(uw_cfg_str(cfg, UW_OPT_OUTPUT), "json"))
            print_json(&rp, stanza);
        else
            print_text(&rp, stanza);
        fflush(stdout);
        if (rp.np)
            rc = uw_fail(err, UW_E_VERIFY, "verify: %zu problem%s in stanza '%s' (listed above)",
                         rp.np, rp.np == 1 ? "" : "s", stanza);
    }
    save_state(cfg, stanza, start, &rp, rc < 0 ? err : NULL);
    report_free(&rp);
    if (!committed)
        uw_verify_cache_abort(o.fresh);
    uw_verify_cache_free(&old);
    free(cdir);
    return rc;
}
