#include "storage/storage.h"

#include <inttypes.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

/* The drivers. Their types are the values repoN-type accepts (registered
 * below), in this order: adding a driver here adds it to the option. */
static const uw_storage_driver *const drivers[] = {&uw_storage_posix, &uw_storage_azure,
                                                   &uw_storage_s3};

/* Before main(), so that the options can be validated when they are read
 * (core/options.h explains why core cannot ask us). */
__attribute__((constructor)) void uw_storage_register_types(void)
{
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        uw_opt_register_value(UW_OPT_REPO_TYPE, drivers[i]->type);
}

uw_storage *uw_storage_open(const uw_config *cfg, int repo, uw_err *err)
{
    char opt[UW_OPT_NAME_MAX];
    uw_opt_name(UW_OPT_REPO_TYPE, repo, opt, sizeof opt);
    const char *type = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_TYPE);
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
        if (strcmp(drivers[i]->type, type) != 0)
            continue;
        uw_storage *st = uw_calloc(1, sizeof *st);
        st->drv = drivers[i];
        st->repo = repo;
        if (drivers[i]->open(st, cfg, repo, err) < 0) {
            free(st->desc);
            free(st);
            return NULL;
        }
        return st;
    }
    uw_fail(err, UW_E_OPTION, "option '%s': repository type '%s' is not supported", opt, type);
    return NULL;
}

void uw_storage_close(uw_storage *st)
{
    if (!st)
        return;
    st->drv->close(st);
    free(st->desc);
    free(st);
}

int uw_storage_stat(uw_storage *st, const char *path, uint64_t *size, uw_err *err)
{
    int rc = st->drv->stat(st, path, size, err);
    if (rc < 0)
        uw_wrap(err, "%s", st->desc);
    return rc;
}

static _Thread_local char list_ident[192];
/* A posix entry's identity is formatted only when asked for: most listings
 * (info, expire, fetch) never look at it. */
static _Thread_local struct {
    bool pending;
    int64_t mtime, ctime;
    long mtime_ns, ctime_ns;
    uint64_t ino;
} list_stat;

const char *uw_storage_list_ident(void)
{
    if (list_stat.pending) {
        snprintf(list_ident, sizeof list_ident, "m%lld.%09ld-c%lld.%09ld-i%llu",
                 (long long)list_stat.mtime, list_stat.mtime_ns, (long long)list_stat.ctime,
                 list_stat.ctime_ns, (unsigned long long)list_stat.ino);
        list_stat.pending = false;
    }
    return list_ident;
}

void uw_storage_set_list_ident(const char *ident)
{
    list_stat.pending = false;
    snprintf(list_ident, sizeof list_ident, "%s", ident ? ident : "");
}

void uw_storage_set_list_ident_stat(int64_t mtime, long mtime_ns, int64_t ctime, long ctime_ns,
                                    uint64_t ino)
{
    list_stat.pending = true;
    list_stat.mtime = mtime;
    list_stat.mtime_ns = mtime_ns;
    list_stat.ctime = ctime;
    list_stat.ctime_ns = ctime_ns;
    list_stat.ino = ino;
}

int uw_storage_list(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err)
{
    int rc = st->drv->list(st, dir, cb, ctx, err);
    if (rc < 0 && err && err->code == UW_E_STORAGE)
        uw_wrap(err, "%s", st->desc);
    return rc;
}

int uw_storage_sync(uw_storage *st, const char *dir, uw_err *err)
{
    int rc = st->drv->sync ? st->drv->sync(st, dir, err) : 0;
    if (rc < 0 && err && err->code == UW_E_STORAGE)
        uw_wrap(err, "%s", st->desc);
    return rc;
}

typedef struct {
    const char *prefix;
    size_t plen;
    uw_list_cb cb;
    void *ctx;
} prefix_ctx;

static int prefix_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    prefix_ctx *p = ctx;
    return strncmp(name, p->prefix, p->plen) == 0 ? p->cb(p->ctx, name, is_dir, size) : 0;
}

int uw_storage_list_prefix(uw_storage *st, const char *dir, const char *prefix, uw_list_cb cb,
                           void *ctx, uw_err *err)
{
    int rc;
    if (st->drv->list_prefix) {
        rc = st->drv->list_prefix(st, dir, prefix, cb, ctx, err);
    } else {
        prefix_ctx p = {prefix, strlen(prefix), cb, ctx};
        rc = st->drv->list(st, dir, prefix_cb, &p, err);
    }
    if (rc < 0 && err && err->code == UW_E_STORAGE)
        uw_wrap(err, "%s", st->desc);
    return rc;
}

typedef struct {
    uw_list_cb cb;
    void *ctx;
    const char *rel; /* path of the listed directory relative to the top */
    char **subdirs;
    size_t nsub;
    bool stop;
} walk_ctx;

static int walk_entry_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    walk_ctx *w = ctx;
    char *rel = *w->rel ? uw_sprintf("%s/%s", w->rel, name) : uw_strdup(name);
    if (is_dir) {
        w->subdirs = uw_realloc(w->subdirs, (w->nsub + 1) * sizeof *w->subdirs);
        w->subdirs[w->nsub++] = rel;
        return 0;
    }
    w->stop = w->cb(w->ctx, rel, false, size) != 0;
    free(rel);
    return w->stop;
}

static int walk_dir(uw_storage *st, const char *top, const char *rel, uw_list_cb cb, void *ctx,
                    bool *stop, uw_err *err)
{
    walk_ctx w = {cb, ctx, rel, NULL, 0, false};
    char *dir = *rel ? uw_sprintf("%s/%s", top, rel) : uw_strdup(top);
    int rc = uw_storage_list(st, dir, walk_entry_cb, &w, err);
    *stop = w.stop;
    for (size_t i = 0; i < w.nsub; i++) {
        if (rc == 0 && !*stop)
            rc = walk_dir(st, top, w.subdirs[i], cb, ctx, stop, err);
        free(w.subdirs[i]);
    }
    free(w.subdirs);
    free(dir);
    return rc;
}

int uw_storage_list_tree(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err)
{
    if (st->drv->list_tree) {
        int rc = st->drv->list_tree(st, dir, cb, ctx, err);
        if (rc < 0 && err && err->code == UW_E_STORAGE)
            uw_wrap(err, "%s", st->desc);
        return rc;
    }
    bool stop = false;
    return walk_dir(st, dir, "", cb, ctx, &stop, err);
}

int uw_storage_read(uw_storage *st, const char *path, uw_sink *dest, uw_err *err)
{
    int rc = st->drv->read(st, path, dest, err);
    if (rc < 0 && err && err->code == UW_E_STORAGE)
        uw_wrap(err, "%s", st->desc);
    return rc;
}

uw_sink *uw_storage_write(uw_storage *st, const char *path, uw_err *err)
{
    uw_sink *s = st->drv->write(st, path, err);
    if (!s)
        uw_wrap(err, "%s", st->desc);
    return s;
}

int uw_storage_remove(uw_storage *st, const char *path, uw_err *err)
{
    int rc = st->drv->remove(st, path, err);
    if (rc < 0)
        uw_wrap(err, "%s", st->desc);
    return rc;
}

int uw_storage_get(uw_storage *st, const char *path, uw_buf *out, uw_err *err)
{
    uw_sink *s = uw_buf_sink(out);
    int rc = uw_storage_read(st, path, s, err);
    uw_sink_free(s);
    return rc;
}

/* Stops a read as soon as it passes `max` bytes. */
typedef struct {
    uw_sink base;
    uint64_t max, seen;
} cap_sink;

static int cap_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    cap_sink *c = (cap_sink *)s;
    if (len > c->max - c->seen)
        return uw_fail(err, UW_E_REPO_FORMAT, "larger than the %llu bytes such a file may have",
                       (unsigned long long)c->max);
    c->seen += len;
    return uw_sink_write(s->next, buf, len, err);
}

static int cap_finish(uw_sink *s, uw_err *err)
{
    return uw_sink_finish(s->next, err);
}

static void cap_destroy(uw_sink *s)
{
    free(s);
}

int uw_storage_get_max(uw_storage *st, const char *path, uw_buf *out, uint64_t max, uw_err *err)
{
    cap_sink *c = uw_calloc(1, sizeof *c);
    c->base = (uw_sink){cap_write, cap_finish, cap_destroy, uw_buf_sink(out), false, NULL};
    c->max = max;
    int rc = uw_storage_read(st, path, &c->base, err);
    if (rc < 0 && err && err->code == UW_E_REPO_FORMAT)
        uw_wrap(err, "%s: '%s'", st->desc, path);
    uw_sink_free(&c->base);
    return rc;
}

int uw_storage_put(uw_storage *st, const char *path, const void *data, size_t len, uw_err *err)
{
    uw_sink *s = uw_storage_write(st, path, err);
    if (!s)
        return -1;
    int rc = uw_sink_write(s, data, len, err);
    if (rc == 0)
        rc = uw_sink_finish(s, err);
    if (rc < 0)
        uw_wrap(err, "%s", st->desc);
    uw_sink_free(s);
    return rc;
}

typedef struct {
    char **names;
    bool *dirs;
    int n, cap;
} tree_ctx;

static int tree_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    (void)size;
    tree_ctx *t = ctx;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->names = uw_realloc(t->names, (size_t)t->cap * sizeof *t->names);
        t->dirs = uw_realloc(t->dirs, (size_t)t->cap * sizeof *t->dirs);
    }
    t->names[t->n] = uw_strdup(name);
    t->dirs[t->n++] = is_dir;
    return 0;
}

/* Drivers that can remove a whole tree in bulk (kept out of uw_storage_driver
 * so that the drivers' positional initialisers stay valid). */
static const struct {
    const uw_storage_driver *drv;
    int (*remove_tree)(uw_storage *st, const char *dir, uw_err *err);
} bulk_removers[] = {{&uw_storage_s3, uw_storage_s3_remove_tree},
                     /* posix: sees temporaries, never follows a link */
                     {&uw_storage_posix, uw_storage_posix_remove_tree}};

int uw_storage_remove_many(uw_storage *st, const char *const *paths, size_t n, uw_err *err)
{
    if (st->drv == &uw_storage_s3) {
        int r = n ? uw_storage_s3_remove_many(st, paths, n, err) : 0;
        if (r < 0)
            uw_wrap(err, "%s", st->desc);
        return r;
    }
    for (size_t i = 0; i < n; i++)
        if (uw_storage_remove(st, paths[i], err) < 0)
            return -1;
    return 0;
}

size_t uw_storage_remove_batch(const uw_storage *st)
{
    return st->drv == &uw_storage_s3 ? 1000 : 64;
}

int uw_storage_remove_tree(uw_storage *st, const char *dir, uw_err *err)
{
    for (size_t i = 0; i < sizeof bulk_removers / sizeof bulk_removers[0]; i++) {
        if (bulk_removers[i].drv != st->drv)
            continue;
        int r = bulk_removers[i].remove_tree(st, dir, err);
        if (r < 0)
            uw_wrap(err, "%s", st->desc);
        return r;
    }
    tree_ctx t = {0};
    int rc = uw_storage_list(st, dir, tree_cb, &t, err);
    for (int i = 0; i < t.n; i++) {
        char *p = uw_sprintf("%s/%s", dir, t.names[i]);
        if (rc == 0)
            rc = t.dirs[i] ? uw_storage_remove_tree(st, p, err) : uw_storage_remove(st, p, err);
        free(p);
        free(t.names[i]);
    }
    free(t.names);
    free(t.dirs);
    if (rc == 0 && (st->drv->features & UW_STORAGE_FEAT_DIRS))
        rc = uw_storage_remove(st, dir, err);
    return rc;
}

int uw_storage_sweep(uw_storage *st, const char *dir, int64_t max_age, uw_sweep_stats *stats,
                     uw_err *err)
{
    if (!st->drv->sweep)
        return 0;
    int rc = st->drv->sweep(st, dir, max_age, stats, err);
    if (rc < 0)
        uw_wrap(err, "%s", st->desc);
    return rc;
}

void uw_storage_sweep_log(uw_storage *st, const char *dir, const char *why)
{
    uw_sweep_stats s = {0};
    uw_err e;
    uw_err_clear(&e);
    if (uw_storage_sweep(st, dir, UW_TEMP_MAX_AGE, &s, &e) < 0)
        uw_log(UW_LOG_WARN, "sweeping temporaries (%s): %s; the next sweep retries", why, e.msg);
    if (s.count)
        uw_log(UW_LOG_INFO, "swept %" PRIu64 " stale temporar%s (%" PRIu64 " bytes) from %s (%s)",
               s.count, s.count == 1 ? "y" : "ies", s.bytes, st->desc, why);
    if (s.uploads)
        uw_log(UW_LOG_INFO,
               "swept %" PRIu64 " unfinished multipart upload%s (initiated more than %d hours "
               "ago) from %s (%s)",
               s.uploads, s.uploads == 1 ? "" : "s", (int)(UW_TEMP_MAX_AGE / 3600), st->desc, why);
}

void uw_storage_temp_host(char *out, size_t len)
{
    char h[256] = "";
    if (gethostname(h, sizeof h - 1) < 0 || !h[0])
        snprintf(h, sizeof h, "localhost");
    size_t n = 0;
    /* Dots separate the name's fields: keep the first label only. */
    for (const char *c = h; *c && *c != '.' && n + 1 < len; c++)
        out[n++] = (*c == '/' ? '_' : *c);
    out[n] = '\0';
}

bool uw_storage_temp_stale(const char *name, const char *host, int64_t age, int64_t max_age)
{
    const char *t = NULL;
    for (const char *s = strstr(name, ".uwtmp."); s; s = strstr(s + 1, ".uwtmp."))
        t = s + 7;
    if (!t)
        return false;
    if (age > max_age)
        return true;
    /* "<pid>.<word>.<host>": a dead owner on this host is stale at once. */
    char *end;
    long pid = strtol(t, &end, 10);
    if (end == t || *end != '.' || pid <= 0)
        return false;
    const char *word_end = strchr(end + 1, '.');
    if (!word_end || strcmp(word_end + 1, host) != 0)
        return false;
    return (pid_t)pid != getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

const char *uw_file_type_name(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "regular file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symbolic link";
    case S_IFIFO: return "FIFO";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "character device";
    case S_IFBLK: return "block device";
    default: return "unknown file type";
    }
}

int uw_storage_rename_noreplace(uw_storage *st, const char *from, const char *to, uw_err *err)
{
    int rc = st->drv == &uw_storage_posix ? uw_storage_posix_rename_noreplace(st, from, to, err)
                                          : st->drv->rename(st, from, to, err);
    if (rc < 0)
        uw_wrap(err, "%s", st->desc);
    return rc;
}
