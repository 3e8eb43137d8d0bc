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

#include "repo/archive_info.h"
#include "core/cmd.h"
#include "repo/manifest.h"
#include "pitr.h"
#include "repo/repo.h"

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
    bool *wal_ok; /* per backup: start..stop archived */
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
    v->wal_ok = uw_calloc((size_t)v->nbackups + 1, sizeof(bool));
    for (int i = 0; i < v->nbackups; i++) {
        point p;
        reach_from(v, &v->backups[i], &p, false);
        v->wal_ok[i] = p.reach.any && p.reach.end_lsn >= v->backups[i].stop_lsn;
        if (v->wal_ok[i] && !v->have_earliest) {
            v->earliest = p;
            v->have_earliest = true;
        }
    }
    for (int i = v->nbackups; i-- > 0;) {
        if (!v->wal_ok[i])
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

/* ------------------------------------------------------------------ text -- */

static void text_view(const repo_view *v)
{
    char a[64], b[64], c[64], d[64];
    printf("%s: %s\n", v->r->st->desc, v->ok ? "ok" : "error");
    if (!v->ok) {
        printf("  error [%d %s]: %s\n", v->err.code, uw_code_name(v->err.code), v->err.msg);
        return;
    }
    const uw_stanza_info *in = &v->r->info;
    uw_fmt_size(in->wal_seg_size, a, sizeof a);
    printf("  cluster: system %" PRIu64 ", PostgreSQL %d, WAL segments of %s, cipher %s\n",
           in->system_id, in->pg_version, a, in->cipher_type);
    printf("  backups: %d\n", v->nbackups);
    for (int i = 0; i < v->nbackups; i++) {
        const uw_manifest *m = &v->backups[i];
        printf("    %s  %s", m->id, m->type);
        if (m->prior[0]) {
            const char *ids[64];
            int n = chain_of(v, m, ids, 64);
            printf("  chain:");
            for (int k = 0; k < n; k++)
                printf("%s%s", k ? " > " : " ", ids[k]);
        }
        printf("\n");
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
    }
    if (v->incomplete && v->incomplete[0]) {
        printf("  incomplete backups (no manifest):");
        for (char **p = v->incomplete; *p; p++)
            printf(" %s", *p);
        printf("\n");
    }
    const uw_archive *ar = &v->arch;
    printf("  archive:%s\n", ar->ntls || ar->nhistory || ar->nother ? "" : " empty");
    for (size_t i = 0; i < ar->ntls; i++) {
        const uw_arch_timeline *t = &ar->tls[i];
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
    if (ar->nhistory) {
        printf("    history files:");
        for (size_t i = 0; i < ar->nhistory; i++)
            printf(" %s", ar->history[i].name);
        printf("\n");
    }
    if (ar->nother) {
        printf("    other files:");
        for (size_t i = 0; i < ar->nother; i++)
            printf(" %s", ar->other[i].name);
        printf("\n");
    }
    if (ar->nduplicates) {
        printf("    INCONSISTENT (stored with different contents):");
        for (size_t i = 0; i < ar->nduplicates; i++)
            printf(" %s", ar->duplicates[i]);
        printf("\n");
    }
    printf("  restorable:");
    if (!v->have_earliest) {
        printf(" nothing (%s)\n",
               v->nbackups ? "no backup has all of its WAL archived" : "no backup");
        return;
    }
    const point *e = &v->earliest, *l = &v->latest;
    printf("\n    earliest: %s, LSN %s (end of backup %s)\n",
           time_str(e->b->stop_time, a, sizeof a), lsn_str(e->b->stop_lsn, b, sizeof b), e->b->id);
    uint64_t end = l->have_end ? l->end.end_lsn : l->reach.end_lsn;
    seg(ar, l->reach.last_tli, l->reach.last_segno, c, sizeof c);
    printf("    latest:   LSN %s on timeline %" PRIu32 " (archived WAL ends in segment %s",
           lsn_str(end, b, sizeof b), l->reach.last_tli, c);
    if (l->reach.missing_tli) {
        seg(ar, l->reach.missing_tli, l->reach.missing_segno, d, sizeof d);
        printf("; next: %s", d);
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

/* ------------------------------------------------------------------ json -- */

/* A JSON string: escapes quotes, backslashes and control characters, and
 * replaces bytes that are not valid UTF-8 (paths need not be) with U+FFFD. */
static void js(const char *s)
{
    putchar('"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            putchar(c);
            p++;
        } else {
            int n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            bool ok = n > 0;
            for (int i = 1; ok && i < n; i++)
                ok = (p[i] & 0xc0) == 0x80;
            if (ok && n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
                ok = false; /* overlong or surrogate */
            if (ok && n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
                ok = false;
            if (ok) {
                fwrite(p, 1, (size_t)n, stdout);
                p += n;
            } else {
                fputs("\\ufffd", stdout);
                p++;
            }
        }
    }
    putchar('"');
}

static void jkey(const char *k, bool *first)
{
    if (!*first)
        putchar(',');
    *first = false;
    js(k);
    putchar(':');
}

static void jstr(const char *k, const char *v, bool *first)
{
    jkey(k, first);
    if (v)
        js(v);
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

static void json_view(const repo_view *v)
{
    char a[64], b[64];
    bool f = true;
    putchar('{');
    jint("repo", v->r->st->repo, &f);
    jstr("storage", v->r->st->desc, &f);
    jstr("status", v->ok ? "ok" : "error", &f);
    if (!v->ok) {
        jkey("error", &f);
        bool g = true;
        putchar('{');
        jint("code", v->err.code, &g);
        jstr("name", uw_code_name(v->err.code), &g);
        jstr("message", v->err.msg, &g);
        fputs("}}", stdout);
        return;
    }
    const uw_stanza_info *in = &v->r->info;
    jkey("cluster", &f);
    {
        bool g = true;
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
    jkey("backups", &f);
    putchar('[');
    for (int i = 0; i < v->nbackups; i++) {
        const uw_manifest *m = &v->backups[i];
        bool g = true;
        printf("%s{", i ? "," : "");
        jstr("id", m->id, &g);
        jstr("type", m->type, &g);
        jstr("prior", m->prior[0] ? m->prior : NULL, &g);
        jkey("chain", &g);
        const char *ids[64];
        int n = chain_of(v, m, ids, 64);
        putchar('[');
        for (int k = 0; k < n; k++) {
            if (k)
                putchar(',');
            js(ids[k]);
        }
        putchar(']');
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
        putchar('}');
    }
    putchar(']');
    jkey("incomplete_backups", &f);
    putchar('[');
    for (char **p = v->incomplete; p && *p; p++) {
        if (p != v->incomplete)
            putchar(',');
        js(*p);
    }
    putchar(']');
    const uw_archive *ar = &v->arch;
    jkey("archive", &f);
    {
        bool g = true;
        putchar('{');
        jkey("timelines", &g);
        putchar('[');
        for (size_t i = 0; i < ar->ntls; i++) {
            const uw_arch_timeline *t = &ar->tls[i];
            bool h = true;
            printf("%s{", i ? "," : "");
            jint("timeline", t->tli, &h);
            seg(ar, t->tli, t->first, a, sizeof a);
            jstr("first", a, &h);
            seg(ar, t->tli, t->last, a, sizeof a);
            jstr("last", a, &h);
            jint("segments", (int64_t)t->count, &h);
            jint("stored", (int64_t)t->stored, &h);
            jkey("gaps", &h);
            putchar('[');
            for (size_t k = 0; k < t->ngaps; k++) {
                bool q = true;
                printf("%s{", k ? "," : "");
                seg(ar, t->tli, t->gaps[k].first, a, sizeof a);
                jstr("first", a, &q);
                seg(ar, t->tli, t->gaps[k].last, a, sizeof a);
                jstr("last", a, &q);
                jint("segments", (int64_t)(t->gaps[k].last - t->gaps[k].first + 1), &q);
                putchar('}');
            }
            fputs("]}", stdout);
        }
        putchar(']');
        jkey("history", &g);
        putchar('[');
        for (size_t i = 0; i < ar->nhistory; i++) {
            if (i)
                putchar(',');
            js(ar->history[i].name);
        }
        putchar(']');
        jkey("other", &g);
        putchar('[');
        for (size_t i = 0; i < ar->nother; i++) {
            if (i)
                putchar(',');
            js(ar->other[i].name);
        }
        putchar(']');
        jkey("inconsistent", &g);
        putchar('[');
        for (size_t i = 0; i < ar->nduplicates; i++) {
            if (i)
                putchar(',');
            js(ar->duplicates[i]);
        }
        fputs("]}", stdout);
    }
    jkey("restorable", &f);
    {
        bool g = true;
        putchar('{');
        jkey("earliest", &g);
        if (v->have_earliest) {
            const point *e = &v->earliest;
            bool h = true;
            putchar('{');
            jstr("backup", e->b->id, &h);
            jstr("time", time_str(e->b->stop_time, a, sizeof a), &h);
            jstr("lsn", lsn_str(e->b->stop_lsn, b, sizeof b), &h);
            jint("timeline", e->b->timeline, &h);
            putchar('}');
        } else {
            fputs("null", stdout);
        }
        jkey("latest", &g);
        if (v->have_latest) {
            const point *l = &v->latest;
            bool h = true;
            putchar('{');
            jstr("backup", l->b->id, &h);
            jstr("target_timeline", l->current ? "current" : "latest", &h);
            jint("timeline", l->reach.last_tli, &h);
            uint64_t end = l->have_end ? l->end.end_lsn : l->reach.end_lsn;
            jstr("lsn", lsn_str(end, a, sizeof a), &h);
            seg(ar, l->reach.last_tli, l->reach.last_segno, a, sizeof a);
            jstr("last_segment", a, &h);
            if (l->reach.missing_tli) {
                seg(ar, l->reach.missing_tli, l->reach.missing_segno, a, sizeof a);
                jstr("next_missing", a, &h);
            } else {
                jstr("next_missing", NULL, &h);
            }
            if (l->have_end && l->end.have_xact) {
                uw_iso_time(l->end.xact_time_us, a, sizeof a);
                jstr("last_transaction_time", a, &h);
            } else {
                jstr("last_transaction_time", NULL, &h);
            }
            putchar('}');
        } else {
            fputs("null", stdout);
        }
        putchar('}');
    }
    putchar('}');
}

int pitr_info(const uw_config *cfg, uw_err *err)
{
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
