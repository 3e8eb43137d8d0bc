#include "repo/archive_info.h"
#include "core/bytes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "core/codec.h"
#include "core/log.h"
#include "io/object.h"

void uw_seg_name(uint32_t tli, uint64_t segno, uint32_t seg_size, char *buf, size_t len)
{
    uw_wal_name w;
    uw_wal_from_segno(tli, segno, seg_size, &w);
    uw_wal_format(&w, buf, len);
}

void uw_iso_time(int64_t unix_us, char *buf, size_t len)
{
    int64_t sec = unix_us / 1000000, us = unix_us % 1000000;
    if (us < 0) {
        us += 1000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (us)
        snprintf(buf, len, "%s.%06" PRId64 "Z", base, us);
    else
        snprintf(buf, len, "%sZ", base);
}

/* ------------------------------------------------------------------ scan -- */

void uw_archive_init(uw_archive *a, uint32_t seg_size)
{
    memset(a, 0, sizeof *a);
    a->seg_size = seg_size;
}

static void file_free(uw_arch_file *f)
{
    free(f->object);
}

void uw_archive_free(uw_archive *a)
{
    for (size_t i = 0; i < a->nhistory; i++)
        file_free(&a->history[i]);
    for (size_t i = 0; i < a->nother; i++)
        file_free(&a->other[i]);
    free(a->segs);
    free(a->history);
    free(a->other);
    for (size_t i = 0; i < a->nsuffixes; i++)
        free(a->suffixes[i]);
    free(a->suffixes);
    free(a->repos);
    for (size_t i = 0; i < a->nduplicates; i++)
        free(a->duplicates[i]);
    free(a->duplicates);
    for (size_t i = 0; i < a->ntls; i++)
        free(a->tls[i].gaps);
    free(a->tls);
    memset(a, 0, sizeof *a);
}

static void push_file(uw_arch_file **arr, size_t *n, size_t *cap, const uw_arch_file *f)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *arr = uw_realloc(*arr, *cap * sizeof **arr);
    }
    (*arr)[(*n)++] = *f;
}

/* Repositories by rank, so a compact segment can name its own. */
static void set_repo(uw_archive *a, int rank, uw_repo *r)
{
    if ((size_t)rank > a->scans_cap) {
        size_t cap = (size_t)rank + 4;
        a->repos = uw_realloc(a->repos, cap * sizeof *a->repos);
        for (size_t i = a->scans_cap; i < cap; i++)
            a->repos[i] = NULL;
        a->scans_cap = cap;
    }
    a->repos[rank - 1] = r;
}

#define MAX_SUFFIXES 1024

int uw_archive_add_segment(uw_archive *a, uw_repo *r, int rank, uint32_t tli, uint64_t segno,
                           const uint8_t sha256[32], const char *suffix, uint64_t stored)
{
    /* Few distinct suffixes exist (compression and encryption); the last
     * one used is almost always the one. */
    size_t sx = a->nsuffixes;
    if (a->nsuffixes && !strcmp(a->suffixes[a->last_suffix], suffix))
        sx = a->last_suffix;
    for (size_t i = 0; sx == a->nsuffixes && i < a->nsuffixes; i++)
        if (!strcmp(a->suffixes[i], suffix))
            sx = i;
    if (sx == a->nsuffixes) {
        if (a->nsuffixes == MAX_SUFFIXES)
            return -1;
        a->suffixes = uw_realloc(a->suffixes, (a->nsuffixes + 1) * sizeof *a->suffixes);
        a->suffixes[a->nsuffixes++] = uw_strdup(suffix);
    }
    a->last_suffix = sx;
    if (rank < 1 || rank > UINT16_MAX)
        return -1;
    set_repo(a, rank, r);
    if (a->nsegs == a->segs_cap) {
        a->segs_cap = a->segs_cap ? a->segs_cap * 2 : 1024;
        a->segs = uw_realloc(a->segs, a->segs_cap * sizeof *a->segs);
    }
    uw_arch_seg *s = &a->segs[a->nsegs++];
    s->segno = segno;
    s->stored = stored;
    s->tli = tli;
    s->rank = (uint16_t)rank;
    s->suffix = (uint16_t)sx;
    memcpy(s->sha256, sha256, 32);
    return 0;
}

void uw_archive_seg_name(const uw_archive *a, const uw_arch_seg *s, char *buf, size_t len)
{
    uw_seg_name(s->tli, s->segno, a->seg_size, buf, len);
}

uw_repo *uw_archive_seg_repo(const uw_archive *a, const uw_arch_seg *s)
{
    return a->repos[s->rank - 1];
}

char *uw_archive_seg_dir(const uw_archive *a, const uw_arch_seg *s)
{
    char name[32];
    uw_archive_seg_name(a, s, name, sizeof name);
    return uw_sprintf("%s/archive/%.16s", uw_archive_seg_repo(a, s)->stanza, name);
}

char *uw_archive_seg_object(const uw_archive *a, const uw_arch_seg *s)
{
    char name[32], hex[65];
    uw_archive_seg_name(a, s, name, sizeof name);
    uw_hex(s->sha256, 32, hex);
    return uw_sprintf("%s/archive/%.16s/%s-%s%s", uw_archive_seg_repo(a, s)->stanza, name, name,
                      hex, a->suffixes[s->suffix]);
}

void uw_archive_seg_file(const uw_archive *a, const uw_arch_seg *s, uw_arch_file *out)
{
    memset(out, 0, sizeof *out);
    out->tli = s->tli;
    out->segno = s->segno;
    uw_archive_seg_name(a, s, out->name, sizeof out->name);
    uw_hex(s->sha256, 32, out->sha256);
    out->object = uw_archive_seg_object(a, s);
    out->stored = s->stored;
    out->repo = uw_archive_seg_repo(a, s);
    out->rank = s->rank;
}

typedef struct {
    uw_archive *a;
    uw_repo *r;
    int rank;
    const char *sub; /* "history" or 16 hex digits */
    char **subdirs;  /* top level: collected directory names */
    size_t nsub, capsub;
    size_t mark_segs, mark_hist, mark_other; /* counts before the current listing */
} scan_ctx;

static bool is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

void uw_archive_add_object(uw_archive *a, uw_repo *r, int rank, const char *sub, const char *name,
                           uint64_t size)
{
    /* <walname>-<sha256 hex>[.zst][.enc]; WAL names never contain '-'. */
    const char *dash = strchr(name, '-');
    if (!dash || (size_t)(dash - name) >= sizeof((uw_arch_file *)0)->name ||
        strlen(dash + 1) < 64 || !is_hex64(dash + 1) || (dash[65] && dash[65] != '.'))
        return;
    uw_arch_file f = {0};
    memcpy(f.name, name, (size_t)(dash - name));
    f.name[dash - name] = '\0';
    uw_wal_name w;
    if (uw_wal_parse(f.name, &w, NULL) < 0)
        return;
    bool in_history = strcmp(sub, "history") == 0;
    if (in_history != (w.kind == UW_WAL_HISTORY))
        return;
    if (!in_history && strncmp(f.name, sub, 16) != 0)
        return; /* misplaced: fetch would never look for it here */
    if (w.kind == UW_WAL_SEGMENT) {
        /* Kept only when the name rebuilds from (tli, segno), as the index
         * rebuilds it: the parser takes upper-case hex only, so that is when
         * the segment part is in range for the segment size (beyond it, the
         * name is none PostgreSQL asks for, and would alias another). */
        if (!a->seg_size || (uint64_t)w.seg >= (UINT64_C(1) << 32) / a->seg_size)
            return;
        uint64_t segno = uw_wal_segno(&w, a->seg_size);
        /* uw_unhex takes exactly the 64 digits, not what follows them. */
        char hex[65];
        memcpy(hex, dash + 1, 64);
        hex[64] = '\0';
        uint8_t sha[32];
        uw_unhex(hex, sha, 32);
        if (uw_archive_add_segment(a, r, rank, w.tli, segno, sha, dash + 65, size) < 0)
            uw_log(UW_LOG_WARN, "%s: '%s/archive/%s/%s' left out: too many kinds of object names",
                   r->st->desc, r->stanza, sub, name);
        return;
    }
    memcpy(f.sha256, dash + 1, 64);
    f.sha256[64] = '\0';
    f.tli = w.tli;
    f.stored = size;
    f.repo = r;
    f.rank = rank;
    f.object = uw_sprintf("%s/archive/%s/%s", r->stanza, sub, name);
    if (w.kind == UW_WAL_HISTORY) {
        push_file(&a->history, &a->nhistory, &a->history_cap, &f);
    } else {
        f.segno = uw_wal_segno(&w, a->seg_size);
        push_file(&a->other, &a->nother, &a->other_cap, &f);
    }
}

static int object_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    scan_ctx *c = ctx;
    if (!is_dir)
        uw_archive_add_object(c->a, c->r, c->rank, c->sub, name, size);
    return 0;
}

static bool is_upper_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return s[n] == '\0';
}

static int subdir_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    (void)size;
    scan_ctx *c = ctx;
    /* Object stores have no directories, only prefixes: accept names that look
     * right whatever is_dir says; listing a non-prefix yields nothing. */
    (void)is_dir;
    if (strcmp(name, "history") != 0 && !is_upper_hex(name, 16))
        return 0;
    if (c->nsub == c->capsub) {
        c->capsub = c->capsub ? c->capsub * 2 : 64;
        c->subdirs = uw_realloc(c->subdirs, c->capsub * sizeof(char *));
    }
    c->subdirs[c->nsub++] = uw_strdup(name);
    return 0;
}

static int list_retry(uw_repo *r, const char *dir, uw_list_cb cb, scan_ctx *c,
                      void (*reset)(scan_ctx *), uw_err *err)
{
    int rc;
    for (int attempt = 0;; attempt++) {
        rc = uw_storage_list(r->st, dir, cb, c, err);
        if (rc == 0 || !uw_retry_wait(attempt, err))
            break;
        if (reset)
            reset(c);
    }
    return rc;
}

static void reset_subdirs(scan_ctx *c)
{
    for (size_t i = 0; i < c->nsub; i++)
        free(c->subdirs[i]);
    c->nsub = 0;
}

/* Objects of a failed listing attempt are dropped before retrying. */
static void reset_objects(scan_ctx *c)
{
    uw_archive *a = c->a;
    a->nsegs = c->mark_segs;
    while (a->nhistory > c->mark_hist)
        file_free(&a->history[--a->nhistory]);
    while (a->nother > c->mark_other)
        file_free(&a->other[--a->nother]);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static int seg_cmp(const void *x, const void *y)
{
    const uw_arch_seg *a = x, *b = y;
    if (a->tli != b->tli)
        return a->tli < b->tli ? -1 : 1;
    if (a->segno != b->segno)
        return a->segno < b->segno ? -1 : 1;
    return (int)a->rank - (int)b->rank;
}

int uw_archive_dirs(uw_repo *r, char ***dirs, size_t *n, uw_err *err)
{
    scan_ctx c = {0};
    c.r = r;
    c.sub = "";
    char *top = uw_sprintf("%s/archive", r->stanza);
    int rc = list_retry(r, top, subdir_cb, &c, reset_subdirs, err);
    if (rc == 0 && c.nsub)
        qsort(c.subdirs, c.nsub, sizeof *c.subdirs, cmp_str);
    if (rc < 0) {
        reset_subdirs(&c);
        free(c.subdirs);
        c.subdirs = NULL;
    }
    *dirs = c.subdirs;
    *n = c.nsub;
    free(top);
    return rc;
}

int uw_archive_scan_dir(uw_archive *a, uw_repo *r, int rank, const char *sub, uw_err *err)
{
    scan_ctx c = {0};
    c.a = a;
    c.r = r;
    c.rank = rank;
    if (a->scans < rank)
        a->scans = rank;
    set_repo(a, rank, r);
    char *dir = uw_sprintf("%s/archive/%s", r->stanza, sub);
    c.sub = sub;
    c.mark_segs = a->nsegs;
    c.mark_hist = a->nhistory;
    c.mark_other = a->nother;
    int rc = list_retry(r, dir, object_cb, &c, reset_objects, err);
    /* Each directory's segments sorted as it is listed: with the directories
     * in name order, a repository's segments come out sorted, with no sort
     * of the whole archive (nor its copy of the array) at the end. */
    if (rc == 0 && a->nsegs - c.mark_segs > 1)
        qsort(a->segs + c.mark_segs, a->nsegs - c.mark_segs, sizeof *a->segs, seg_cmp);
    free(dir);
    return rc;
}

int uw_archive_scan(uw_archive *a, uw_repo *r, uw_err *err)
{
    int rank = ++a->scans;
    set_repo(a, rank, r);
    char **subs;
    size_t n;
    int rc = uw_archive_dirs(r, &subs, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = uw_archive_scan_dir(a, r, rank, subs[i], err);
    for (size_t i = 0; i < n; i++)
        free(subs[i]);
    free(subs);
    return rc;
}

static int file_cmp(const void *x, const void *y)
{
    const uw_arch_file *a = x, *b = y;
    if (a->tli != b->tli)
        return a->tli < b->tli ? -1 : 1;
    if (a->segno != b->segno)
        return a->segno < b->segno ? -1 : 1;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    return a->rank - b->rank;
}

static void add_duplicate(uw_archive *a, const char *name)
{
    if (a->nduplicates && strcmp(a->duplicates[a->nduplicates - 1], name) == 0)
        return;
    a->duplicates = uw_realloc(a->duplicates, (a->nduplicates + 1) * sizeof(char *));
    a->duplicates[a->nduplicates++] = uw_strdup(name);
}

/* Keep one object per name: the first repository (in scan order) that holds
 * exactly one. A repository holding two different objects for one name makes
 * fetch fail there (it cannot tell which is right), so that copy does not
 * count; different content in different repositories is reported too. */
static void dedupe(uw_archive *a, uw_arch_file *arr, size_t *n)
{
    if (!*n)
        return;
    qsort(arr, *n, sizeof *arr, file_cmp);
    size_t out = 0;
    for (size_t i = 0; i < *n;) {
        size_t j = i;
        while (j < *n && strcmp(arr[j].name, arr[i].name) == 0)
            j++;
        ssize_t keep = -1;
        bool inconsistent = false;
        for (size_t k = i; k < j;) {
            size_t l = k;
            while (l < j && arr[l].rank == arr[k].rank)
                l++;
            if (l - k > 1)
                inconsistent = true;
            else if (keep < 0)
                keep = (ssize_t)k;
            /* Encrypted stanzas name content by a keyed id, which differs
             * between repositories (each has its own key salt). */
            if (!arr[k].repo->have_key && !arr[i].repo->have_key &&
                strcmp(arr[k].sha256, arr[i].sha256) != 0)
                inconsistent = true;
            k = l;
        }
        if (inconsistent)
            add_duplicate(a, arr[i].name);
        for (size_t k = i; k < j; k++) {
            if ((ssize_t)k == keep)
                arr[out++] = arr[k];
            else
                file_free(&arr[k]);
        }
        i = j;
    }
    *n = out;
}

/* The same for segments, whose name is (tli, segno). The array is sorted
 * already when one repository was scanned (see uw_archive_scan). */
static void dedupe_segs(uw_archive *a)
{
    uw_arch_seg *arr = a->segs;
    size_t n = a->nsegs;
    bool sorted = true;
    for (size_t i = 1; sorted && i < n; i++)
        sorted = seg_cmp(&arr[i - 1], &arr[i]) <= 0;
    if (!sorted)
        qsort(arr, n, sizeof *arr, seg_cmp);
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && arr[j].tli == arr[i].tli && arr[j].segno == arr[i].segno)
            j++;
        if (j == i + 1) { /* the usual case: one object */
            arr[out++] = arr[i++];
            continue;
        }
        ssize_t keep = -1;
        bool inconsistent = false;
        bool key_i = uw_archive_seg_repo(a, &arr[i])->have_key;
        for (size_t k = i; k < j;) {
            size_t l = k;
            while (l < j && arr[l].rank == arr[k].rank)
                l++;
            if (l - k > 1)
                inconsistent = true;
            else if (keep < 0)
                keep = (ssize_t)k;
            if (!uw_archive_seg_repo(a, &arr[k])->have_key && !key_i &&
                memcmp(arr[k].sha256, arr[i].sha256, 32) != 0)
                inconsistent = true;
            k = l;
        }
        if (inconsistent) {
            char name[32];
            uw_archive_seg_name(a, &arr[i], name, sizeof name);
            add_duplicate(a, name);
        }
        if (keep >= 0)
            arr[out++] = arr[keep];
        i = j;
    }
    a->nsegs = out;
}

/* Segment f onto the timelines: it sorts after every one added before. */
static void tl_add(uw_archive *a, const uw_arch_seg *f)
{
    if (!a->ntls || a->tls[a->ntls - 1].tli != f->tli) {
        a->tls = uw_realloc(a->tls, (a->ntls + 1) * sizeof *a->tls);
        a->tls[a->ntls++] = (uw_arch_timeline){f->tli, f->segno, f->segno, 0, 0, NULL, 0};
    }
    uw_arch_timeline *t = &a->tls[a->ntls - 1];
    if (t->count && f->segno > t->last + 1) {
        t->gaps = uw_realloc(t->gaps, (t->ngaps + 1) * sizeof *t->gaps);
        t->gaps[t->ngaps++] = (uw_seg_range){t->last + 1, f->segno - 1};
    }
    t->last = f->segno;
    t->count++;
    t->stored += f->stored;
}

void uw_archive_build(uw_archive *a)
{
    dedupe_segs(a);
    dedupe(a, a->history, &a->nhistory);
    dedupe(a, a->other, &a->nother);
    for (size_t i = 0; i < a->ntls; i++)
        free(a->tls[i].gaps);
    free(a->tls);
    a->tls = NULL;
    a->ntls = 0;
    for (size_t i = 0; i < a->nsegs; i++)
        tl_add(a, &a->segs[i]);
}

void uw_archive_absorb(uw_archive *sum, uw_archive *part)
{
    for (size_t i = 0; i < part->nsegs; i++)
        tl_add(sum, &part->segs[i]);
    for (size_t i = 0; i < part->nhistory; i++)
        push_file(&sum->history, &sum->nhistory, &sum->history_cap, &part->history[i]);
    part->nhistory = 0;
    for (size_t i = 0; i < part->nother; i++)
        push_file(&sum->other, &sum->nother, &sum->other_cap, &part->other[i]);
    part->nother = 0;
    if (part->nduplicates) {
        sum->duplicates = uw_realloc(sum->duplicates, (sum->nduplicates + part->nduplicates) *
                                                          sizeof *sum->duplicates);
        memcpy(sum->duplicates + sum->nduplicates, part->duplicates,
               part->nduplicates * sizeof *part->duplicates);
        sum->nduplicates += part->nduplicates;
        part->nduplicates = 0;
    }
    uw_archive_free(part);
}

const uw_arch_seg *uw_archive_segment(const uw_archive *a, uint32_t tli, uint64_t segno)
{
    size_t lo = 0, hi = a->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uw_arch_seg *f = &a->segs[mid];
        if (f->tli == tli && f->segno == segno)
            return f;
        if (f->tli < tli || (f->tli == tli && f->segno < segno))
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const uw_arch_file *uw_archive_history_file(const uw_archive *a, uint32_t tli)
{
    for (size_t i = 0; i < a->nhistory; i++)
        if (a->history[i].tli == tli)
            return &a->history[i];
    return NULL;
}

/* ------------------------------------------------------------- timelines -- */

static int read_object(const uw_arch_file *f, uw_buf *out, uw_err *err)
{
    uint8_t sha[32];
    uw_unhex(f->sha256, sha, 32);
    uw_repo *r = f->repo;
    int rc;
    for (int attempt = 0;; attempt++) {
        out->len = 0;
        uw_obj_read_opts o = {
            r->info.system_id,    sha, r->have_key ? &r->key : NULL, f->object, false, f->name,
            r->info.wal_seg_size, true};
        uw_sink *reader = uw_object_reader(&o, uw_buf_sink(out), NULL);
        rc = uw_storage_read(r->st, f->object, reader, err);
        if (rc == 0)
            rc = uw_sink_finish(reader, err);
        uw_sink_free(reader);
        if (rc == 0 || !uw_retry_wait(attempt, err))
            break;
    }
    if (rc < 0)
        uw_wrap(err, "reading %s", f->name);
    return rc;
}

void uw_tl_history_free(uw_tl_history *h)
{
    free(h->e);
    h->e = NULL;
    h->n = 0;
}

/* Same format and checks as PostgreSQL's readTimeLineHistory(): lines of
 * "<parent tli> <switch point> <reason>", ascending, comments with '#'. */
int uw_tl_history_parse(char *text, uint32_t tli, const char *name, uw_tl_history *h, uw_err *err)
{
    h->e = NULL;
    h->n = 0;
    uint64_t prev_end = 0;
    uint32_t prev_tli = 0;
    int rc = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        unsigned int ptli, hi, lo;
        if (sscanf(line, "%u\t%X/%X", &ptli, &hi, &lo) != 3 &&
            sscanf(line, "%u %X/%X", &ptli, &hi, &lo) != 3) {
            rc = uw_fail(err, UW_E_CORRUPT, "%s: malformed line '%.80s'", name, line);
            break;
        }
        uint64_t sw = (uint64_t)hi << 32 | lo;
        /* Only the timeline ids must ascend. Switch points need not: a
         * cluster recovered along timeline 2 that stopped before 2 began
         * writes "1 <later point>" then "2 <earlier point>" into the history
         * of its new timeline, and PostgreSQL accepts that. */
        if (ptli <= prev_tli || ptli >= tli) {
            rc = uw_fail(err, UW_E_CORRUPT, "%s: timeline ids out of order", name);
            break;
        }
        h->e = uw_realloc(h->e, (h->n + 1) * sizeof *h->e);
        h->e[h->n++] = (uw_tl_entry){ptli, prev_end, sw};
        prev_end = sw;
        prev_tli = ptli;
    }
    if (rc < 0) {
        uw_tl_history_free(h);
        return -1;
    }
    h->e = uw_realloc(h->e, (h->n + 1) * sizeof *h->e);
    h->e[h->n++] = (uw_tl_entry){tli, prev_end, UINT64_MAX};
    return 0;
}

int uw_archive_tl_history(const uw_archive *a, uint32_t tli, uw_tl_history *h, uw_err *err)
{
    h->e = NULL;
    h->n = 0;
    if (tli == 1) {
        h->e = uw_malloc(sizeof *h->e);
        h->e[0] = (uw_tl_entry){1, 0, UINT64_MAX};
        h->n = 1;
        return 0;
    }
    const uw_arch_file *f = uw_archive_history_file(a, tli);
    if (!f)
        return uw_fail(err, UW_E_NOT_FOUND,
                       "the history file of timeline %" PRIu32 " (%08" PRIX32
                       ".history) is not archived",
                       tli, tli);
    uw_buf b = {0};
    if (read_object(f, &b, err) < 0) {
        uw_buf_free(&b);
        return -1;
    }
    char *text = b.len ? (char *)b.data : "";
    int rc = uw_tl_history_parse(text, tli, f->name, h, err);
    uw_buf_free(&b);
    return rc;
}

uint32_t uw_archive_latest_tli(const uw_archive *a, uint32_t from)
{
    uint32_t t = from;
    while (uw_archive_history_file(a, t + 1))
        t++;
    return t;
}

uint32_t uw_tl_of_lsn(const uw_tl_history *h, uint64_t lsn)
{
    /* Newest first, like PostgreSQL's tliOfPointInHistory() over its
     * newest-first list: ranges can overlap (see the history parser). */
    for (size_t i = h->n; i-- > 0;)
        if (h->e[i].begin <= lsn && lsn < h->e[i].end)
            return h->e[i].tli;
    return 0;
}

/* Whether timeline tli has segment segno archived, from the timelines and
 * their gaps alone (not the segments: uw_archive_absorb keeps none), and the
 * last segment of the run of consecutive archived ones holding it. */
static bool tl_has(const uw_archive *a, uint32_t tli, uint64_t segno, uint64_t *run_last)
{
    size_t lo = 0, hi = a->ntls;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->tls[mid].tli < tli)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == a->ntls || a->tls[lo].tli != tli)
        return false;
    const uw_arch_timeline *t = &a->tls[lo];
    if (!t->count || segno < t->first || segno > t->last)
        return false;
    /* The first gap that ends at or after segno. */
    lo = 0;
    hi = t->ngaps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->gaps[mid].last < segno)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->ngaps && t->gaps[lo].first <= segno)
        return false;
    *run_last = lo < t->ngaps ? t->gaps[lo].first - 1 : t->last;
    return true;
}

/* The timeline recovery reads a segment from, as PostgreSQL's
 * XLogFileReadAnyTLI picks it: the timelines of the history newest first,
 * skipping those that begin after the segment and never going below the
 * timeline of the file read before (min_tli; pages of an older timeline
 * after a newer one are rejected as out of sequence); the first one archived
 * wins (*tli, and *run_last as tl_has gives it). Returns false when none is,
 * with *want set to the timeline it would have asked for first. */
static bool segment_for(const uw_archive *a, const uw_tl_history *h, uint64_t segno,
                        uint32_t min_tli, uint32_t *want, uint32_t *tli, uint64_t *run_last)
{
    *want = 0;
    for (size_t i = h->n; i-- > 0;) {
        const uw_tl_entry *e = &h->e[i];
        if (e->tli < min_tli)
            break;
        if (e->begin && e->begin / a->seg_size > segno)
            continue;
        if (!*want)
            *want = e->tli;
        if (tl_has(a, e->tli, segno, run_last)) {
            *tli = e->tli;
            return true;
        }
    }
    return false;
}

/* After segment_for found segno on timeline tli with min_tli, the last
 * segment number up to which it keeps answering with tli (and the next
 * segment of the run, which ends at run_last), without asking: when the first
 * entry it tries is tli and no newer entry of the history (which would be
 * tried first, or which, older than tli, would stop the search) becomes
 * eligible before. Else segno: the caller asks again. Walking a long archive
 * one segment at a time cost each backup of `info` and `verify` a lookup per
 * archived segment after its start (quadratic in a repository of many
 * backups). */
static uint64_t same_answer_until(const uw_archive *a, const uw_tl_history *h, uint64_t segno,
                                  uint32_t min_tli, uint32_t tli, uint64_t run_last)
{
    size_t k = h->n;
    for (size_t i = h->n; i-- > 0;) {
        const uw_tl_entry *e = &h->e[i];
        if (e->tli < min_tli)
            break;
        if (e->begin && e->begin / a->seg_size > segno)
            continue;
        k = i;
        break;
    }
    if (k == h->n || h->e[k].tli != tli)
        return segno;
    uint64_t until = run_last;
    for (size_t i = k + 1; i < h->n; i++) {
        const uw_tl_entry *e = &h->e[i];
        if (e->tli < tli)
            return segno;
        /* Ineligible at segno, so begin / seg_size > segno >= 0. */
        uint64_t b = e->begin / a->seg_size;
        if (b - 1 < until)
            until = b - 1;
    }
    return until;
}

void uw_archive_reach(const uw_archive *a, const uw_tl_history *h, uint64_t start_lsn,
                      uw_reach *out)
{
    memset(out, 0, sizeof *out);
    uint64_t segno = start_lsn / a->seg_size;
    /* Nothing beyond the newest archived segment can be found. */
    uint64_t max_segno = 0;
    for (size_t i = 0; i < a->ntls; i++)
        if (a->tls[i].last > max_segno)
            max_segno = a->tls[i].last;
    uint32_t cur_tli = 0;
    for (;; segno++) {
        uint32_t want, tli = 0;
        uint64_t run_last = 0;
        bool found =
            segno <= max_segno && segment_for(a, h, segno, cur_tli, &want, &tli, &run_last);
        if (!found) {
            if (segno > max_segno)
                segment_for(a, h, segno, cur_tli, &want, &tli, &run_last);
            out->missing_tli = want;
            out->missing_segno = segno;
            break;
        }
        uint32_t min_tli = cur_tli;
        cur_tli = tli;
        out->any = true;
        out->last_tli = tli;
        /* Skip to the end of what would be found one by one. */
        segno = same_answer_until(a, h, segno, min_tli, tli, run_last);
        out->last_segno = segno;
    }
    if (out->any)
        out->end_lsn = (out->last_segno + 1) * a->seg_size;
}

int uw_archive_wal_end(const uw_archive *a, const uw_tl_history *h, const uw_reach *reach,
                       uint64_t min_segno, int max_segments, uw_wal_end *out, uw_err *err)
{
    memset(out, 0, sizeof *out);
    if (!reach->any)
        return 0;
    out->end_lsn = reach->end_lsn;
    uint64_t segno = reach->last_segno;
    bool first = true;
    for (int n = 0; n < max_segments && segno >= min_segno; n++, segno--) {
        uint32_t want, tli = reach->last_tli;
        uint64_t run_last;
        const uw_arch_seg *s = n == 0 || segment_for(a, h, segno, 0, &want, &tli, &run_last)
                                   ? uw_archive_segment(a, tli, segno)
                                   : NULL;
        if (!s)
            break;
        uw_arch_file file;
        uw_archive_seg_file(a, s, &file);
        const uw_arch_file *f = &file;
        uw_buf b = {0};
        /* Exactly one segment: growing by doubling would take twice that. */
        uw_buf_reserve(&b, a->seg_size);
        int rc = read_object(f, &b, err);
        uw_wal_end seg;
        if (rc == 0 &&
            uw_wal_decode_segment(b.data, b.len, segno * a->seg_size, a->seg_size, &seg, err) < 0)
            rc = uw_wrap(err, "%s", f->name);
        uw_buf_free(&b);
        if (rc < 0) {
            file_free(&file);
            return -1;
        }
        if (first) {
            /* The last reachable segment decides where the WAL ends. */
            out->end_lsn = seg.end_lsn;
            first = false;
        }
        if (seg.have_xact) {
            out->have_xact = true;
            out->xact_time_us = seg.xact_time_us;
            out->xact_lsn = seg.xact_lsn;
            uw_archive_seg_name(a, s, out->xact_segment, sizeof out->xact_segment);
            file_free(&file);
            break;
        }
        file_free(&file);
        if (segno == 0)
            break;
    }
    return 0;
}
