/* info: what each repository holds and what it can restore: the stanza, the
 * backups with their chains, the archived WAL per timeline with its gaps, and
 * the earliest and latest point a restore from that repository alone reaches.
 * Text for people, --output json (one object) for scripts. A repository that
 * fails is reported as such and the others are still shown; the exit code is
 * then the first failure's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo/archive_info.h"
#include "repo/backup_check.h"
#include "core/cmd.h"
#include "repo/manifest.h"
#include "json.h"
#include "pitr.h"
#include "repo/repo.h"
#include "work/state.h"

/* How far back from the end of the archive to look for the last transaction. */
#define XACT_SCAN_SEGMENTS 16

typedef struct {
    const uw_manifest *b; /* the backup */
    uint32_t tli;         /* the timeline the restore follows */
    bool current;         /* ... only with --target-timeline current */
    uw_reach reach;
    uw_wal_end end;
    bool have_end;
} point;

typedef struct {
    uw_repo *r;
    bool ok;
    uw_err err;
    uw_manifest *backups;
    int nbackups;
    char **incomplete;
    uw_archive arch;
    bool have_arch;
    bool *wal_ok;  /* per backup: start..stop archived */
    char **broken; /* per backup: why its files or chain make it not restorable, or NULL */
    bool have_earliest, have_latest;
    point earliest, latest;
    char latest_err[1024]; /* why the end could not be decoded, if so */
} repo_view;

static const char *lsn_str(uint64_t lsn, char *buf, size_t len)
{
    uw_lsn_format(lsn, buf, len);
    return buf;
}

static const char *time_str(int64_t unix_s, char *buf, size_t len)
{
    uw_iso_time(unix_s * INT64_C(1000000), buf, len);
    return buf;
}

/* Reach of a restore from backup b: along the latest timeline, as restore
 * resolves it by default; along the backup's own timeline when the latest one
 * does not descend from the backup (a restore then needs --target-timeline
 * current) or its history cannot be read. */
static void reach_from(repo_view *v, const uw_manifest *b, point *p, bool decode)
{
    memset(p, 0, sizeof *p);
    p->b = b;
    uw_tl_history h = {0};
    uw_err e;
    p->tli = uw_archive_latest_tli(&v->arch, b->timeline);
    if (uw_archive_tl_history(&v->arch, p->tli, &h, &e) < 0 ||
        uw_tl_of_lsn(&h, b->stop_lsn ? b->stop_lsn - 1 : 0) != b->timeline) {
        uw_tl_history_free(&h);
        p->tli = b->timeline;
        p->current = p->tli != uw_archive_latest_tli(&v->arch, b->timeline);
        if (uw_archive_tl_history(&v->arch, p->tli, &h, &e) < 0) {
            /* Not even the backup's own timeline history: only its segments. */
            h.e = uw_malloc(sizeof *h.e);
            h.e[0] = (uw_tl_entry){b->timeline, 0, UINT64_MAX};
            h.n = 1;
        }
    }
    uw_archive_reach(&v->arch, &h, b->start_lsn, &p->reach);
    if (decode && p->reach.any) {
        uw_err_clear(&e);
        if (uw_archive_wal_end(&v->arch, &h, &p->reach, b->stop_lsn / v->arch.seg_size,
                               XACT_SCAN_SEGMENTS, &p->end, &e) == 0)
            p->have_end = true;
        else
            snprintf(v->latest_err, sizeof v->latest_err, "%s", e.msg);
    }
    uw_tl_history_free(&h);
}

/* Backups whose objects are missing (one listing per backup directory, see
 * repo/backup_check.h) or whose chain is broken are not restorable. The list
 * is oldest first, so a prior is judged before its incrementals. */
static void check_backups(repo_view *v)
{
    v->broken = uw_calloc((size_t)v->nbackups + 1, sizeof *v->broken);
    uw_backup_objects *objs = uw_backup_objects_new(v->r);
    for (int i = 0; i < v->nbackups; i++) {
        const uw_manifest *b = &v->backups[i];
        uw_manifest m;
        uw_manifest_init(&m);
        uw_err e;
        uw_err_clear(&e);
        size_t missing = 0;
        char *first = NULL;
        if (uw_manifest_load(v->r, b->id, &m, &e) < 0 ||
            uw_backup_check_files(objs, &m, &missing, &first, &e) < 0)
            v->broken[i] = uw_sprintf("its files could not be checked: %s", e.msg);
        else if (missing)
            v->broken[i] = uw_sprintf("%zu file%s missing from the repository (%s%s)", missing,
                                      missing == 1 ? "" : "s", first, missing == 1 ? "" : ", ...");
        free(first);
        uw_manifest_free(&m);
        if (v->broken[i] || !b->prior[0])
            continue;
        int p = -1;
        for (int k = 0; k < i && p < 0; k++)
            if (!strcmp(v->backups[k].id, b->prior))
                p = k;
        if (p < 0)
            v->broken[i] = uw_sprintf("broken chain: prior backup %s is missing", b->prior);
        else if (v->broken[p])
            v->broken[i] = uw_sprintf("broken chain: prior backup %s is not restorable", b->prior);
    }
    uw_backup_objects_free(objs);
}

static void load_view(repo_view *v, const uw_config *cfg)
{
    uw_err_clear(&v->err);
    if (uw_repo_load(v->r, cfg, &v->err) < 0)
        return;
    if (uw_backups_list(v->r, &v->backups, &v->nbackups, &v->incomplete, &v->err) < 0)
        return;
    uw_archive_init(&v->arch, v->r->info.wal_seg_size);
    v->have_arch = true;
    if (uw_archive_scan(&v->arch, v->r, &v->err) < 0)
        return;
    uw_archive_build(&v->arch);
    v->ok = true;
    check_backups(v);
    v->wal_ok = uw_calloc((size_t)v->nbackups + 1, sizeof(bool));
    for (int i = 0; i < v->nbackups; i++) {
        point p;
        reach_from(v, &v->backups[i], &p, false);
        v->wal_ok[i] = p.reach.any && p.reach.end_lsn >= v->backups[i].stop_lsn;
        if (v->wal_ok[i] && !v->broken[i] && !v->have_earliest) {
            v->earliest = p;
            v->have_earliest = true;
        }
    }
    for (int i = v->nbackups; i-- > 0;) {
        if (!v->wal_ok[i] || v->broken[i])
            continue;
        reach_from(v, &v->backups[i], &v->latest, true);
        v->have_latest = true;
        break;
    }
}

static void free_view(repo_view *v)
{
    uw_backups_free(v->backups, v->nbackups);
    if (v->incomplete) {
        for (char **p = v->incomplete; *p; p++)
            free(*p);
        free(v->incomplete);
    }
    if (v->have_arch)
        uw_archive_free(&v->arch);
    free(v->wal_ok);
    for (int i = 0; v->broken && i < v->nbackups; i++)
        free(v->broken[i]);
    free(v->broken);
}

/* The ids from the full backup to b, following prior through the listing. */
static int chain_of(const repo_view *v, const uw_manifest *b, const char **ids, int max)
{
    int n = 0;
    const uw_manifest *cur = b;
    while (cur && n < max) {
        ids[n++] = cur->id;
        const uw_manifest *next = NULL;
        for (int i = 0; cur->prior[0] && i < v->nbackups; i++)
            if (!strcmp(v->backups[i].id, cur->prior))
                next = &v->backups[i];
        if (cur->prior[0] && !next && n < max)
            ids[n++] = cur->prior; /* missing from the listing: shown, not followed */
        cur = next;
    }
    /* Oldest first. */
    for (int i = 0; i < n / 2; i++) {
        const char *t = ids[i];
        ids[i] = ids[n - 1 - i];
        ids[n - 1 - i] = t;
    }
    return n;
}

static void seg(const uw_archive *a, uint32_t tli, uint64_t segno, char *buf, size_t len)
{
    uw_seg_name(tli, segno, a->seg_size, buf, len);
}

/* The end of what a restore from point l replays: the end of the WAL as
 * decoded when that worked, else the end of the archived segments. */
static uint64_t end_lsn_of(const point *l)
{
    return l->have_end ? l->end.end_lsn : l->reach.end_lsn;
}

/* A list of names shown in both outputs: plain strings (backup ids, names
 * stored twice) or archived files (history, .partial, .backup). */
typedef struct {
    const char *const *strs;
    const uw_arch_file *files;
    size_t n;
} name_list;

static name_list strs_list(const char *const *strs, size_t n)
{
    return (name_list){strs, NULL, n};
}

/* A NULL-terminated vector, which may itself be NULL. */
static name_list strv_list(char **strv)
{
    size_t n = 0;
    while (strv && strv[n])
        n++;
    return strs_list((const char *const *)strv, n);
}

static name_list files_list(const uw_arch_file *files, size_t n)
{
    return (name_list){NULL, files, n};
}

static const char *name_at(const name_list *l, size_t i)
{
    return l->files ? l->files[i].name : l->strs[i];
}

/* ------------------------------------------------------------------ text -- */

/* "label: a b c" on a line of its own; nothing when the list is empty. */
static void text_names(const char *label, name_list l)
{
    if (!l.n)
        return;
    printf("%s:", label);
    for (size_t i = 0; i < l.n; i++)
        printf(" %s", name_at(&l, i));
    printf("\n");
}

/* The repository's status line, and its error when it failed. */
static bool text_header(const repo_view *v)
{
    printf("%s: %s\n", v->r->st->desc, v->ok ? "ok" : "error");
    if (!v->ok)
        printf("  error [%d %s]: %s\n", v->err.code, uw_code_name(v->err.code), v->err.msg);
    return v->ok;
}

static void text_cluster(const uw_stanza_info *in)
{
    char a[64];
    uw_fmt_size(in->wal_seg_size, a, sizeof a);
    printf("  cluster: system %" PRIu64 ", PostgreSQL %d, WAL segments of %s, cipher %s\n",
           in->system_id, in->pg_version, a, in->cipher_type);
}

/* The first line of a backup: id, type and, for an incremental, its chain. */
static void text_backup_title(const repo_view *v, const uw_manifest *m)
{
    printf("    %s  %s", m->id, m->type);
    if (m->prior[0]) {
        const char *ids[64];
        int n = chain_of(v, m, ids, 64);
        printf("  chain:");
        for (int k = 0; k < n; k++)
            printf("%s%s", k ? " > " : " ", ids[k]);
    }
    printf("\n");
}

static void text_backup(const repo_view *v, int i)
{
    char a[64], b[64], c[64], d[64];
    const uw_manifest *m = &v->backups[i];
    text_backup_title(v, m);
    printf("        time %s .. %s (%.1f s), timeline %" PRIu32 "\n",
           time_str(m->start_time, a, sizeof a), time_str(m->stop_time, b, sizeof b),
           m->duration_ms / 1000.0, m->timeline);
    printf("        lsn  %s .. %s, wal %s .. %s%s\n", lsn_str(m->start_lsn, c, sizeof c),
           lsn_str(m->stop_lsn, d, sizeof d), m->start_wal, m->stop_wal,
           v->wal_ok[i] ? "" : " (NOT all archived: this backup cannot be restored)");
    uw_fmt_size(m->total_size, a, sizeof a);
    uw_fmt_size(m->stored, b, sizeof b);
    uw_fmt_size(m->size, c, sizeof c);
    printf("        size %s, stored %s", a, b);
    if (strcmp(m->type, "full") != 0)
        printf(" (this backup stored %s of changed files)", c);
    printf(", %zu entries%s\n", m->count, m->encrypted ? ", encrypted" : "");
    if (v->broken[i])
        printf("        NOT restorable: %s\n", v->broken[i]);
}

static void text_backups(const repo_view *v)
{
    printf("  backups: %d\n", v->nbackups);
    for (int i = 0; i < v->nbackups; i++)
        text_backup(v, i);
    text_names("  incomplete backups (no manifest)", strv_list(v->incomplete));
}

static void text_timeline(const uw_archive *ar, const uw_arch_timeline *t)
{
    char a[64], b[64], c[64];
    seg(ar, t->tli, t->first, a, sizeof a);
    seg(ar, t->tli, t->last, b, sizeof b);
    uw_fmt_size(t->stored, c, sizeof c);
    printf("    timeline %" PRIu32 ": %s .. %s, %zu segments, %s stored%s\n", t->tli, a, b,
           t->count, c, t->ngaps ? "" : ", no gaps");
    for (size_t g = 0; g < t->ngaps; g++) {
        seg(ar, t->tli, t->gaps[g].first, a, sizeof a);
        seg(ar, t->tli, t->gaps[g].last, b, sizeof b);
        printf("      gap: %s .. %s (%" PRIu64 " segments missing)\n", a, b,
               t->gaps[g].last - t->gaps[g].first + 1);
    }
}

static void text_archive(const uw_archive *ar)
{
    printf("  archive:%s\n", ar->ntls || ar->nhistory || ar->nother ? "" : " empty");
    for (size_t i = 0; i < ar->ntls; i++)
        text_timeline(ar, &ar->tls[i]);
    text_names("    history files", files_list(ar->history, ar->nhistory));
    text_names("    other files", files_list(ar->other, ar->nother));
    text_names("    INCONSISTENT (stored with different contents)",
               strs_list((const char *const *)ar->duplicates, ar->nduplicates));
}

static void text_latest(const repo_view *v)
{
    char a[64], b[64], c[64];
    const point *l = &v->latest;
    seg(&v->arch, l->reach.last_tli, l->reach.last_segno, c, sizeof c);
    printf("    latest:   LSN %s on timeline %" PRIu32 " (archived WAL ends in segment %s",
           lsn_str(end_lsn_of(l), b, sizeof b), l->reach.last_tli, c);
    if (l->reach.missing_tli) {
        seg(&v->arch, l->reach.missing_tli, l->reach.missing_segno, c, sizeof c);
        printf("; next: %s", c);
    }
    printf(")");
    if (l->have_end && l->end.have_xact) {
        uw_iso_time(l->end.xact_time_us, a, sizeof a);
        printf(", last transaction at %s", a);
    } else if (!l->have_end) {
        printf(", end not decoded: %s", v->latest_err);
    }
    printf(", from backup %s%s\n", l->b->id, l->current ? " with --target-timeline current" : "");
}

static void text_restorable(const repo_view *v)
{
    char a[64], b[64];
    printf("  restorable:");
    if (!v->have_earliest) {
        bool any_sound = false;
        for (int i = 0; i < v->nbackups; i++)
            any_sound |= !v->broken[i];
        printf(" nothing (%s)\n", !v->nbackups ? "no backup"
                                  : any_sound  ? "no backup has all of its WAL archived"
                                               : "no backup has all of its files");
        return;
    }
    const point *e = &v->earliest;
    printf("\n    earliest: %s, LSN %s (end of backup %s)\n",
           time_str(e->b->stop_time, a, sizeof a), lsn_str(e->b->stop_lsn, b, sizeof b), e->b->id);
    text_latest(v);
}

static void text_view(const repo_view *v)
{
    if (!text_header(v))
        return;
    text_cluster(&v->r->info);
    text_backups(v);
    text_archive(&v->arch);
    text_restorable(v);
}

/* ------------------------------------------------------------------ json -- */


static void jkey(const char *k, bool *first)
{
    if (!*first)
        putchar(',');
    *first = false;
    pj_str(k);
    putchar(':');
}

static void jstr(const char *k, const char *v, bool *first)
{
    jkey(k, first);
    if (v)
        pj_str(v);
    else
        fputs("null", stdout);
}

static void jint(const char *k, int64_t v, bool *first)
{
    jkey(k, first);
    printf("%" PRId64, v);
}

static void jbool(const char *k, bool v, bool *first)
{
    jkey(k, first);
    fputs(v ? "true" : "false", stdout);
}

/* "k":["a","b"] */
static void jnames(const char *k, name_list l, bool *first)
{
    jkey(k, first);
    putchar('[');
    for (size_t i = 0; i < l.n; i++) {
        if (i)
            putchar(',');
        pj_str(name_at(&l, i));
    }
    putchar(']');
}

static void json_error(const uw_err *e, bool *f)
{
    bool g = true;
    jkey("error", f);
    putchar('{');
    jint("code", e->code, &g);
    jstr("name", uw_code_name(e->code), &g);
    jstr("message", e->msg, &g);
    putchar('}');
}

static void json_cluster(const uw_stanza_info *in, bool *f)
{
    char a[64];
    bool g = true;
    jkey("cluster", f);
    putchar('{');
    /* A string: system identifiers exceed 2^53, which JSON readers using
     * doubles would round. */
    snprintf(a, sizeof a, "%" PRIu64, in->system_id);
    jstr("system_id", a, &g);
    jint("pg_version", in->pg_version, &g);
    jint("wal_segment_size", in->wal_seg_size, &g);
    jstr("cipher", in->cipher_type, &g);
    jstr("created", time_str(in->created, a, sizeof a), &g);
    putchar('}');
}

static void json_backup(const repo_view *v, int i)
{
    char a[64], b[64];
    const uw_manifest *m = &v->backups[i];
    const char *ids[64];
    int n = chain_of(v, m, ids, 64);
    bool g = true;
    putchar('{');
    jstr("id", m->id, &g);
    jstr("type", m->type, &g);
    jstr("prior", m->prior[0] ? m->prior : NULL, &g);
    jnames("chain", strs_list(ids, (size_t)n), &g);
    jint("timeline", m->timeline, &g);
    jstr("start_time", time_str(m->start_time, a, sizeof a), &g);
    jstr("stop_time", time_str(m->stop_time, b, sizeof b), &g);
    jint("duration_ms", m->duration_ms, &g);
    jstr("start_lsn", lsn_str(m->start_lsn, a, sizeof a), &g);
    jstr("stop_lsn", lsn_str(m->stop_lsn, b, sizeof b), &g);
    jstr("start_wal", m->start_wal, &g);
    jstr("stop_wal", m->stop_wal, &g);
    jint("size", (int64_t)m->total_size, &g);
    jint("stored", (int64_t)m->stored, &g);
    jint("backup_size", (int64_t)m->size, &g);
    jint("entries", (int64_t)m->count, &g);
    jint("pg_version", m->pg_version, &g);
    jstr("compress_type", m->compress_type, &g);
    jbool("encrypted", m->encrypted, &g);
    jbool("wal_archived", v->wal_ok[i], &g);
    jbool("restorable", v->wal_ok[i] && !v->broken[i], &g);
    jstr("problem", v->broken[i], &g);
    putchar('}');
}

static void json_backups(const repo_view *v, bool *f)
{
    jkey("backups", f);
    putchar('[');
    for (int i = 0; i < v->nbackups; i++) {
        if (i)
            putchar(',');
        json_backup(v, i);
    }
    putchar(']');
    jnames("incomplete_backups", strv_list(v->incomplete), f);
}

/* {"first":...,"last":...,"segments":n} for segments first..last of tli. */
static void json_seg_range(const uw_archive *ar, uint32_t tli, uint64_t first, uint64_t last,
                           uint64_t count, bool *g)
{
    char a[64];
    seg(ar, tli, first, a, sizeof a);
    jstr("first", a, g);
    seg(ar, tli, last, a, sizeof a);
    jstr("last", a, g);
    jint("segments", (int64_t)count, g);
}

static void json_timeline(const uw_archive *ar, const uw_arch_timeline *t)
{
    bool h = true;
    putchar('{');
    jint("timeline", t->tli, &h);
    json_seg_range(ar, t->tli, t->first, t->last, t->count, &h);
    jint("stored", (int64_t)t->stored, &h);
    jkey("gaps", &h);
    putchar('[');
    for (size_t k = 0; k < t->ngaps; k++) {
        const uw_seg_range *gap = &t->gaps[k];
        bool q = true;
        printf("%s{", k ? "," : "");
        json_seg_range(ar, t->tli, gap->first, gap->last, gap->last - gap->first + 1, &q);
        putchar('}');
    }
    fputs("]}", stdout);
}

static void json_archive(const uw_archive *ar, bool *f)
{
    bool g = true;
    jkey("archive", f);
    putchar('{');
    jkey("timelines", &g);
    putchar('[');
    for (size_t i = 0; i < ar->ntls; i++) {
        if (i)
            putchar(',');
        json_timeline(ar, &ar->tls[i]);
    }
    putchar(']');
    jnames("history", files_list(ar->history, ar->nhistory), &g);
    jnames("other", files_list(ar->other, ar->nother), &g);
    jnames("inconsistent", strs_list((const char *const *)ar->duplicates, ar->nduplicates), &g);
    putchar('}');
}

static void json_earliest(const repo_view *v, bool *g)
{
    char a[64], b[64];
    jkey("earliest", g);
    if (!v->have_earliest) {
        fputs("null", stdout);
        return;
    }
    const point *e = &v->earliest;
    bool h = true;
    putchar('{');
    jstr("backup", e->b->id, &h);
    jstr("time", time_str(e->b->stop_time, a, sizeof a), &h);
    jstr("lsn", lsn_str(e->b->stop_lsn, b, sizeof b), &h);
    jint("timeline", e->b->timeline, &h);
    putchar('}');
}

static void json_latest(const repo_view *v, bool *g)
{
    char a[64];
    jkey("latest", g);
    if (!v->have_latest) {
        fputs("null", stdout);
        return;
    }
    const point *l = &v->latest;
    bool h = true;
    putchar('{');
    jstr("backup", l->b->id, &h);
    jstr("target_timeline", l->current ? "current" : "latest", &h);
    jint("timeline", l->reach.last_tli, &h);
    jstr("lsn", lsn_str(end_lsn_of(l), a, sizeof a), &h);
    seg(&v->arch, l->reach.last_tli, l->reach.last_segno, a, sizeof a);
    jstr("last_segment", a, &h);
    if (l->reach.missing_tli)
        seg(&v->arch, l->reach.missing_tli, l->reach.missing_segno, a, sizeof a);
    jstr("next_missing", l->reach.missing_tli ? a : NULL, &h);
    if (l->have_end && l->end.have_xact)
        uw_iso_time(l->end.xact_time_us, a, sizeof a);
    jstr("last_transaction_time", l->have_end && l->end.have_xact ? a : NULL, &h);
    putchar('}');
}

static void json_restorable(const repo_view *v, bool *f)
{
    bool g = true;
    jkey("restorable", f);
    putchar('{');
    json_earliest(v, &g);
    json_latest(v, &g);
    putchar('}');
}

static void json_view(const repo_view *v)
{
    bool f = true;
    putchar('{');
    jint("repo", v->r->st->repo, &f);
    jstr("storage", v->r->st->desc, &f);
    jstr("status", v->ok ? "ok" : "error", &f);
    if (v->ok) {
        json_cluster(&v->r->info, &f);
        json_backups(v, &f);
        json_archive(&v->arch, &f);
        json_restorable(v, &f);
    } else {
        json_error(&v->err, &f);
    }
    putchar('}');
}

/* ----------------------------------------------------- every stanza -- */

/* "45s", "12m", "3h05m", "2d04h": how long ago, for people. */
static const char *age_str(int64_t secs, char *buf, size_t len)
{
    if (secs < 0)
        secs = 0;
    if (secs < 60)
        snprintf(buf, len, "%llds", (long long)secs);
    else if (secs < 3600)
        snprintf(buf, len, "%lldm", (long long)(secs / 60));
    else if (secs < 86400)
        snprintf(buf, len, "%lldh%02lldm", (long long)(secs / 3600), (long long)(secs % 3600 / 60));
    else
        snprintf(buf, len, "%lldd%02lldh", (long long)(secs / 86400),
                 (long long)(secs % 86400 / 3600));
    return buf;
}

/* One stanza in a line: the first failure of its repositories (or of its
 * configuration), its newest backup and its newest archived WAL: the file's
 * name from the archive, its age from when ue-wal-push last stored WAL
 * (push.state in the spool), else from the last transaction in it. */
typedef struct {
    const char *stanza;
    uw_err err; /* code UW_OK: every repository answered */
    const uw_manifest *backup;
    char backup_id[UW_BACKUP_ID_MAX];
    int64_t backup_stop;
    char wal[48];
    int64_t wal_time; /* -1: unknown */
    const char *wal_source;
} stanza_line;

static void line_repo(stanza_line *l, repo_view *v)
{
    if (!v->ok) {
        if (l->err.code == UW_OK)
            l->err = v->err;
        return;
    }
    for (int i = 0; i < v->nbackups; i++)
        if (!l->backup_id[0] || v->backups[i].stop_time > l->backup_stop) {
            snprintf(l->backup_id, sizeof l->backup_id, "%s", v->backups[i].id);
            l->backup_stop = v->backups[i].stop_time;
        }
    if (v->arch.nsegs) {
        char name[32];
        uw_archive_seg_name(&v->arch, &v->arch.segs[v->arch.nsegs - 1], name, sizeof name);
        if (strcmp(name, l->wal) > 0)
            snprintf(l->wal, sizeof l->wal, "%s", name);
    }
    if (l->wal_time < 0 && v->have_latest && v->latest.have_end && v->latest.end.have_xact) {
        l->wal_time = v->latest.end.xact_time_us / 1000000;
        l->wal_source = "last transaction";
    }
}

static void line_load(stanza_line *l, const uw_config *cfg)
{
    uw_err e;
    uw_err_clear(&e);
    uw_state *push = uw_state_load(cfg, l->stanza, "push", &e);
    int64_t t = push ? uw_state_get_int(push, "last_success_end", -1) : -1;
    uw_state_free(push);
    uw_repo *repos;
    int n;
    if (uw_repos_open(cfg, &repos, &n, &l->err) < 0)
        return;
    for (int i = 0; i < n; i++) {
        repo_view v;
        memset(&v, 0, sizeof v);
        v.r = &repos[i];
        load_view(&v, cfg);
        line_repo(l, &v);
        free_view(&v);
    }
    uw_repos_close(repos, n);
    if (t > 0) {
        l->wal_time = t;
        l->wal_source = "archived";
    }
}

static void line_text(const stanza_line *l, int64_t now)
{
    char a[32];
    printf("%s: ", l->stanza);
    if (l->err.code != UW_OK)
        printf("error %d (%s): %s", l->err.code, uw_code_name(l->err.code), l->err.msg);
    else
        printf("ok");
    if (l->backup_id[0])
        printf(", last backup %s ended %s ago", l->backup_id,
               age_str(now - l->backup_stop, a, sizeof a));
    else if (l->err.code == UW_OK)
        printf(", no backup");
    if (l->wal[0] && l->wal_time >= 0)
        printf(", newest WAL %s (%s %s ago)", l->wal, l->wal_source,
               age_str(now - l->wal_time, a, sizeof a));
    else if (l->wal[0])
        printf(", newest WAL %s", l->wal);
    else if (l->err.code == UW_OK)
        printf(", no WAL archived");
    printf("\n");
}

static void line_json(const stanza_line *l, int64_t now, bool *f)
{
    char a[64];
    bool g = true;
    if (!*f)
        putchar(',');
    *f = false;
    putchar('{');
    jstr("stanza", l->stanza, &g);
    jstr("status", l->err.code == UW_OK ? "ok" : "error", &g);
    if (l->err.code != UW_OK)
        json_error(&l->err, &g);
    jkey("last_backup", &g);
    if (l->backup_id[0]) {
        bool h = true;
        putchar('{');
        jstr("id", l->backup_id, &h);
        jstr("stop_time", time_str(l->backup_stop, a, sizeof a), &h);
        jint("age_seconds", now - l->backup_stop, &h);
        putchar('}');
    } else
        fputs("null", stdout);
    jkey("newest_wal", &g);
    if (l->wal[0]) {
        bool h = true;
        putchar('{');
        jstr("name", l->wal, &h);
        jstr("time", l->wal_time >= 0 ? time_str(l->wal_time, a, sizeof a) : NULL, &h);
        jstr("time_source", l->wal_time >= 0 ? l->wal_source : NULL, &h);
        jkey("age_seconds", &h);
        if (l->wal_time >= 0)
            printf("%lld", (long long)(now - l->wal_time));
        else
            fputs("null", stdout);
        putchar('}');
    } else
        fputs("null", stdout);
    putchar('}');
}

/* info without --stanza: every stanza of the config file, one line each;
 * the exit code is the first failing stanza's. */
static int info_all(const uw_config *cfg, uw_err *err)
{
    char **names;
    int n;
    if (uw_config_stanzas(cfg, &names, &n, err) < 0)
        return -1;
    if (n == 0)
        return uw_fail(err, UW_E_OPTION,
                       "no --stanza given and no stanza section in the config file%s%s%s",
                       uw_cfg_file(cfg) ? " '" : "", uw_cfg_file(cfg) ? uw_cfg_file(cfg) : "",
                       uw_cfg_file(cfg) ? "'" : " (none was read)");
    bool json = !strcmp(uw_cfg_str(cfg, UW_OPT_OUTPUT), "json");
    int64_t now = (int64_t)time(NULL);
    bool first = true;
    int rc = 0;
    if (json)
        fputs("{\"stanzas\":[", stdout);
    for (int i = 0; i < n; i++) {
        stanza_line l;
        memset(&l, 0, sizeof l);
        l.stanza = names[i];
        l.wal_time = -1;
        uw_config *sc = uw_config_for_stanza(cfg, names[i], &l.err);
        if (sc)
            line_load(&l, sc);
        uw_config_free(sc);
        if (json)
            line_json(&l, now, &first);
        else
            line_text(&l, now);
        if (l.err.code != UW_OK && rc == 0) {
            *err = l.err;
            rc = -1;
        }
        free(names[i]);
    }
    if (json)
        fputs("]}\n", stdout);
    fflush(stdout);
    free(names);
    return rc;
}

int pitr_info(const uw_config *cfg, uw_err *err)
{
    if (!uw_cfg_str(cfg, UW_OPT_STANZA))
        return info_all(cfg, err);
    uw_repo *repos;
    int n;
    if (uw_repos_open(cfg, &repos, &n, err) < 0)
        return -1;
    repo_view *views = uw_calloc((size_t)n, sizeof *views);
    for (int i = 0; i < n; i++) {
        views[i].r = &repos[i];
        load_view(&views[i], cfg);
    }
    bool json = !strcmp(uw_cfg_str(cfg, UW_OPT_OUTPUT), "json");
    const char *stanza = uw_cfg_str(cfg, UW_OPT_STANZA);
    if (json) {
        bool f = true;
        putchar('{');
        jstr("stanza", stanza, &f);
        jkey("repos", &f);
        putchar('[');
        for (int i = 0; i < n; i++) {
            if (i)
                putchar(',');
            json_view(&views[i]);
        }
        fputs("]}\n", stdout);
    } else {
        printf("stanza: %s\n", stanza);
        for (int i = 0; i < n; i++)
            text_view(&views[i]);
    }
    fflush(stdout);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (!views[i].ok && rc == 0) {
            *err = views[i].err;
            rc = -1;
        }
        free_view(&views[i]);
    }
    free(views);
    uw_repos_close(repos, n);
    return rc;
}
