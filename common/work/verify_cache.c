/* The cache of verified objects (see verify_cache.h). */
#include "work/verify_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "io/sink.h"

char *uw_verify_cache_dir(const uw_config *cfg, const char *stanza)
{
    return uw_sprintf("%s/%s/verify", uw_cfg_str(cfg, UW_OPT_SPOOL_PATH), stanza);
}

void uw_verify_cache_add(uw_verify_cache *c, int repo, const char *path, uint64_t size,
                         const char *ident, const char *sha256)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->e = uw_realloc(c->e, c->cap * sizeof *c->e);
    }
    uw_vc_entry *e = &c->e[c->n++];
    e->repo = repo;
    e->size = size;
    snprintf(e->sha256, sizeof e->sha256, "%s", sha256);
    e->ident = uw_strdup(ident);
    e->path = uw_strdup(path);
    c->sorted = false;
}

static int cmp_entry(const void *a, const void *b)
{
    const uw_vc_entry *x = a, *y = b;
    if (x->repo != y->repo)
        return x->repo < y->repo ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* One line: repo, size, sha256, identity, path (tab-separated; the path may
 * not hold a tab or newline, which repository names never do). */
static bool parse_line(uw_verify_cache *c, char *line)
{
    char *f[5];
    for (int i = 0; i < 5; i++) {
        f[i] = line;
        char *tab = i < 4 ? strchr(line, '\t') : NULL;
        if (i < 4 && !tab)
            return false;
        if (tab) {
            *tab = '\0';
            line = tab + 1;
        }
    }
    char *end;
    long repo = strtol(f[0], &end, 10);
    if (*end || repo < 1 || repo > 64)
        return false;
    unsigned long long size = strtoull(f[1], &end, 10);
    if (*end || !*f[1] || strlen(f[2]) != 64 || !*f[4])
        return false;
    uw_verify_cache_add(c, (int)repo, f[4], size, f[3], f[2]);
    return true;
}

void uw_verify_cache_load(uw_verify_cache *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    char *path = uw_sprintf("%s/cache", dir);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno != ENOENT)
            uw_log(UW_LOG_WARN, "unable to read the verify cache '%s': %s (every object is read)",
                   path, strerror(errno));
        free(path);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool bad = false;
    while (!bad && (len = getline(&line, &cap, fp)) >= 0) {
        if (len == 0 || line[len - 1] != '\n') {
            bad = true; /* a truncated last line: not written by us whole */
            break;
        }
        line[len - 1] = '\0';
        bad = !parse_line(c, line);
    }
    free(line);
    fclose(fp);
    if (bad) {
        uw_log(UW_LOG_WARN, "the verify cache '%s' is malformed: ignored (every object is read)",
               path);
        uw_verify_cache_free(c);
        memset(c, 0, sizeof *c);
    }
    free(path);
}

const uw_vc_entry *uw_verify_cache_match(uw_verify_cache *c, int repo, const char *path,
                                         uint64_t size, const char *ident)
{
    if (!ident || !*ident || !c->n)
        return NULL;
    if (!c->sorted) {
        qsort(c->e, c->n, sizeof *c->e, cmp_entry);
        c->sorted = true;
    }
    uw_vc_entry key = {.repo = repo, .path = (char *)path};
    const uw_vc_entry *e = bsearch(&key, c->e, c->n, sizeof *c->e, cmp_entry);
    if (!e || e->size != size || strcmp(e->ident, ident) != 0)
        return NULL;
    return e;
}

struct uw_vc_writer {
    uw_sink *file;
    char buf[64 << 10];
    size_t len;
    bool failed;
    uw_err err;
};

uw_vc_writer *uw_verify_cache_writer(const char *dir, uw_err *err)
{
    if (uw_mkdir_p(dir, 0700, err) < 0)
        return NULL;
    /* An existing directory keeps its mode under mkdir -p: the cache lists
     * object names, which are nobody else's business. */
    if (chmod(dir, 0700) < 0) {
        uw_fail(err, UW_E_FILE, "unable to set the mode of '%s': %s", dir, strerror(errno));
        return NULL;
    }
    char *path = uw_sprintf("%s/cache", dir);
    uw_sink *f = uw_file_sink(path, 0600, UW_FILE_NO_SYNC, err);
    free(path);
    if (!f)
        return NULL;
    uw_vc_writer *w = uw_calloc(1, sizeof *w);
    w->file = f;
    return w;
}

static void writer_flush(uw_vc_writer *w)
{
    if (w->len && !w->failed && uw_sink_write(w->file, w->buf, w->len, &w->err) < 0)
        w->failed = true;
    w->len = 0;
}

void uw_verify_cache_put(uw_vc_writer *w, int repo, const char *path, uint64_t size,
                         const char *ident, const char *sha256)
{
    if (!w || strpbrk(path, "\t\n") || strpbrk(ident, "\t\n"))
        return;
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t room = sizeof w->buf - w->len;
        int n = snprintf(w->buf + w->len, room, "%d\t%llu\t%s\t%s\t%s\n", repo,
                         (unsigned long long)size, sha256, ident, path);
        if (n >= 0 && (size_t)n < room) {
            w->len += (size_t)n;
            return;
        }
        writer_flush(w);
    }
    /* Longer than the buffer: a line of its own. */
    char *line =
        uw_sprintf("%d\t%llu\t%s\t%s\t%s\n", repo, (unsigned long long)size, sha256, ident, path);
    if (!w->failed && uw_sink_write(w->file, line, strlen(line), &w->err) < 0)
        w->failed = true;
    free(line);
}

int uw_verify_cache_commit(uw_vc_writer *w, uw_err *err)
{
    if (!w)
        return 0;
    writer_flush(w);
    int rc = 0;
    if (w->failed) {
        *err = w->err;
        rc = -1;
    } else
        rc = uw_sink_finish(w->file, err);
    uw_sink_free(w->file);
    free(w);
    return rc;
}

void uw_verify_cache_abort(uw_vc_writer *w)
{
    if (!w)
        return;
    uw_sink_free(w->file); /* unfinished: the temporary goes */
    free(w);
}

int uw_verify_cache_save(const uw_verify_cache *c, const char *dir, uw_err *err)
{
    uw_vc_writer *w = uw_verify_cache_writer(dir, err);
    if (!w)
        return -1;
    for (size_t i = 0; i < c->n; i++) {
        const uw_vc_entry *e = &c->e[i];
        uw_verify_cache_put(w, e->repo, e->path, e->size, e->ident, e->sha256);
    }
    return uw_verify_cache_commit(w, err);
}

size_t uw_verify_cache_range(uw_verify_cache *c, int repo, const char *prefix, size_t *first)
{
    *first = 0;
    if (!c->n)
        return 0;
    if (!c->sorted) {
        qsort(c->e, c->n, sizeof *c->e, cmp_entry);
        c->sorted = true;
    }
    /* Lower bound of (repo, prefix), then the run that starts with it. */
    size_t lo = 0, hi = c->n, plen = strlen(prefix);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const uw_vc_entry *e = &c->e[mid];
        if (e->repo < repo || (e->repo == repo && strcmp(e->path, prefix) < 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < c->n && c->e[end].repo == repo && !strncmp(c->e[end].path, prefix, plen))
        end++;
    *first = lo;
    return end - lo;
}

void uw_verify_cache_free(uw_verify_cache *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].ident);
        free(c->e[i].path);
    }
    free(c->e);
    memset(c, 0, sizeof *c);
}
