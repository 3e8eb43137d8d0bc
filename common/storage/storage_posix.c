/* The embedded default: a directory on a local or network file system.
 *
 * The repository is untrusted input: whoever can write to it must not be able
 * to turn a backup's cleanup or a restore into a write or delete elsewhere on
 * this host. So below the configured root (which may itself be a link: the
 * administrator chose it) nothing is ever resolved by path: every directory is
 * opened with O_DIRECTORY | O_NOFOLLOW relative to its parent's descriptor,
 * files with O_NOFOLLOW, entries are examined with fstatat(AT_SYMLINK_NOFOLLOW)
 * and created and removed with mkdirat/openat/unlinkat/renameat. A link found
 * below the root is an error naming it (UW_E_REPO_FORMAT: the repository holds
 * none, and retrying cannot help), and so is anything but a directory or a
 * regular file (a FIFO would hang a reader forever).
 *
 * Writes go to "<name>.uwtmp.<pid>.<random>.<host>" in the same directory,
 * then fsync + rename + fsync of the directory. The owner's pid and host in
 * the name let uw_storage_sweep() tell a dead writer's temporary from a live
 * one. Every failure to write into the repository (ENOSPC included) is a
 * storage error (UW_E_STORAGE) with the cause in the message. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "storage/storage.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

typedef struct {
    char *root;
    char host[64];
} posix_impl;

static char *full(uw_storage *st, const char *path)
{
    posix_impl *p = st->impl;
    return *path ? uw_sprintf("%s/%s", p->root, path) : uw_strdup(p->root);
}

static int posix_open(uw_storage *st, const uw_config *cfg, int repo, uw_err *err)
{
    char opt[UW_OPT_NAME_MAX];
    uw_opt_name(UW_OPT_REPO_PATH, repo, opt, sizeof opt);
    const char *root = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_PATH);
    if (!root)
        return uw_fail(err, UW_E_OPTION, "option '%s' is required for a posix repository", opt);
    if (root[0] != '/')
        return uw_fail(err, UW_E_OPTION, "option '%s' must be an absolute path", opt);
    posix_impl *p = uw_calloc(1, sizeof *p);
    p->root = uw_strdup(root);
    size_t n = strlen(p->root);
    while (n > 1 && p->root[n - 1] == '/')
        p->root[--n] = '\0';
    uw_storage_temp_host(p->host, sizeof p->host);
    st->impl = p;
    st->desc = uw_sprintf("repo%d (posix:%s)", repo, p->root);
    return 0;
}

static int link_error(uw_err *err, const char *what)
{
    return uw_fail(err, UW_E_REPO_FORMAT,
                   "'%s' is a symbolic link: a repository holds none, refusing to follow it", what);
}

static int not_regular_error(uw_err *err, const char *what, mode_t mode)
{
    return uw_fail(err, UW_E_REPO_FORMAT,
                   "'%s' is not a regular file (%s): refusing to read it as a repository object",
                   what, uw_file_type_name(mode));
}

/* Where a directory was expected: a link is an error, anything else but a
 * directory (ENOTDIR) is "missing" for lookups. Returns -1 (error set) or -2. */
static int not_dir(int dfd, const char *name, const char *what, uw_err *err)
{
    struct stat sb;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
        return link_error(err, what);
    return -2;
}

/* Open the directory holding path's last component (or path itself when
 * whole), component by component without following links. Returns a
 * descriptor, -2 when a directory on the way is missing (and !create), -1 on
 * error. *leaf points into path at the last component (whole: ""). */
static int open_dirs(uw_storage *st, const char *path, bool whole, bool create, const char **leaf,
                     uw_err *err)
{
    posix_impl *p = st->impl;
    int fd = open(p->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        if (uw_mkdir_p(p->root, 0700, err) < 0) {
            err->code = UW_E_STORAGE;
            return -1;
        }
        fd = open(p->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return -2;
        return uw_fail(err, UW_E_STORAGE, "unable to open '%s': %s", p->root, strerror(errno));
    }
    const char *end = path + strlen(path), *s = path;
    const char *last = whole ? end : strrchr(path, '/');
    if (!last)
        last = path;
    while (s < last) {
        const char *slash = memchr(s, '/', (size_t)(last - s));
        const char *e = slash ? slash : last;
        size_t n = (size_t)(e - s);
        if (n == 0 || (n == 1 && s[0] == '.')) {
            s = e + 1;
            continue;
        }
        char *comp = uw_strndup(s, n);
        char *what = uw_sprintf("%s/%.*s", p->root, (int)(e - path), path);
        int rc = 0;
        if (strcmp(comp, "..") == 0)
            rc = uw_fail(err, UW_E_REPO_FORMAT, "'%s': '..' in a repository path", what);
        for (int attempt = 0; rc == 0; attempt++) {
            int nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (nfd >= 0) {
                close(fd);
                fd = nfd;
                break;
            }
            int e2 = errno;
            if (e2 == ENOENT && create && attempt == 0) {
                if (mkdirat(fd, comp, 0700) < 0 && errno != EEXIST)
                    rc = uw_fail(err, UW_E_STORAGE, "unable to create directory '%s': %s", what,
                                 strerror(errno));
                continue;
            }
            if (e2 == ENOENT)
                rc = -2;
            else if (e2 == ELOOP || e2 == ENOTDIR)
                rc = not_dir(fd, comp, what, err);
            else
                rc = uw_fail(err, UW_E_STORAGE, "unable to open '%s': %s", what, strerror(e2));
        }
        free(comp);
        free(what);
        if (rc < 0) {
            close(fd);
            if (rc == -2 && create)
                return uw_fail(err, UW_E_STORAGE, "unable to create directory under '%s'", p->root);
            return rc;
        }
        s = e + 1;
    }
    *leaf = whole ? end : (last == path && *last != '/' ? path : last + 1);
    return fd;
}

/* Errors that mean "the repository is not usable right now" versus local
 * problems are all storage errors here: the caller retries them. */
static int posix_stat(uw_storage *st, const char *path, uint64_t *size, uw_err *err)
{
    const char *leaf;
    int dfd = open_dirs(st, path, false, false, &leaf, err);
    if (dfd < 0)
        return dfd == -2 ? 0 : -1;
    struct stat sb;
    int rc = 1;
    if (fstatat(dfd, *leaf ? leaf : ".", &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            rc = 0;
        } else {
            char *f = full(st, path);
            rc = uw_fail(err, UW_E_STORAGE, "unable to stat '%s': %s", f, strerror(e));
            free(f);
        }
    } else if (S_ISLNK(sb.st_mode)) {
        char *f = full(st, path);
        rc = link_error(err, f);
        free(f);
    } else if (size) {
        *size = (uint64_t)sb.st_size;
    }
    close(dfd);
    return rc;
}

/* Call cb for every entry of the open directory dfd (consumed). Temporaries
 * are passed only with EACH_TEMPS; links and special files are errors, or
 * with EACH_SKIP_ODD warnings (a sweep goes on with the rest). */
typedef int (*entry_cb)(void *ctx, int dfd, const char *name, const struct stat *sb);
#define EACH_TEMPS 0x1
#define EACH_SKIP_ODD 0x2

static int each_entry(int dfd, const char *what, unsigned flags, const char *prefix, entry_cb cb,
                      void *ctx, uw_err *err)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return uw_fail(err, UW_E_STORAGE, "unable to list '%s': %s", what, strerror(e));
    }
    int rc = 0;
    size_t plen = prefix ? strlen(prefix) : 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        /* Our own temporary files are never listed: they are not objects yet. */
        if (!(flags & EACH_TEMPS) && strstr(de->d_name, ".uwtmp."))
            continue;
        /* Only the names asked for are examined (and checked for links). */
        if (prefix && strncmp(de->d_name, prefix, plen) != 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) { /* removed meanwhile */
                errno = 0;
                continue;
            }
            char *f = uw_sprintf("%s/%s", what, de->d_name);
            rc = uw_fail(err, UW_E_STORAGE, "unable to stat '%s': %s", f, strerror(errno));
            free(f);
            break;
        }
        if (S_ISLNK(sb.st_mode) || !(S_ISDIR(sb.st_mode) || S_ISREG(sb.st_mode))) {
            char *f = uw_sprintf("%s/%s", what, de->d_name);
            uw_err e;
            rc = S_ISLNK(sb.st_mode) ? link_error(&e, f) : not_regular_error(&e, f, sb.st_mode);
            free(f);
            if (flags & EACH_SKIP_ODD) {
                uw_log(UW_LOG_WARN, "%s", e.msg);
                rc = 0;
                errno = 0;
                continue;
            }
            if (err)
                *err = e;
            break;
        }
        rc = cb(ctx, dirfd(d), de->d_name, &sb);
        if (rc != 0)
            break;
        errno = 0;
    }
    if (rc == 0 && errno)
        rc = uw_fail(err, UW_E_STORAGE, "unable to list '%s': %s", what, strerror(errno));
    closedir(d);
    return rc < 0 ? -1 : 0;
}

typedef struct {
    uw_list_cb cb;
    void *ctx;
} list_ctx;

static int list_entry(void *ctx, int dfd, const char *name, const struct stat *sb)
{
    (void)dfd;
    list_ctx *l = ctx;
    uw_storage_set_list_ident_stat((int64_t)sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec,
                                   (int64_t)sb->st_ctim.tv_sec, sb->st_ctim.tv_nsec,
                                   (uint64_t)sb->st_ino);
    return l->cb(l->ctx, name, S_ISDIR(sb->st_mode), (uint64_t)sb->st_size) ? 1 : 0;
}

static int posix_list_prefix(uw_storage *st, const char *dir, const char *prefix, uw_list_cb cb,
                             void *ctx, uw_err *err)
{
    const char *leaf;
    int dfd = open_dirs(st, dir, true, false, &leaf, err);
    if (dfd < 0)
        return dfd == -2 ? 0 : -1;
    char *f = full(st, dir);
    list_ctx l = {cb, ctx};
    int rc = each_entry(dfd, f, 0, prefix, list_entry, &l, err);
    free(f);
    return rc;
}

static int posix_list(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err)
{
    return posix_list_prefix(st, dir, NULL, cb, ctx, err);
}

/* Open a repository file for reading: never through a link, never a FIFO or
 * device (O_NONBLOCK: opening a FIFO must not wait for a writer). Returns the
 * descriptor, -2 when missing, -1 on error. */
static int open_file(uw_storage *st, const char *path, uw_err *err)
{
    const char *leaf;
    int dfd = open_dirs(st, path, false, false, &leaf, err);
    if (dfd < 0)
        return dfd;
    int fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    int e = errno;
    close(dfd);
    char *f = full(st, path);
    int rc = fd;
    struct stat sb;
    if (fd < 0) {
        if (e == ENOENT || e == ENOTDIR)
            rc = -2;
        else if (e == ELOOP)
            rc = link_error(err, f);
        else /* a permission error is not transient: not retried */
            rc = uw_fail(err, e == EACCES || e == EPERM ? UW_E_STORAGE_DENIED : UW_E_STORAGE,
                         "unable to open '%s': %s", f, strerror(e));
    } else if (fstat(fd, &sb) < 0) {
        rc = uw_fail(err, UW_E_STORAGE, "unable to stat '%s': %s", f, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        rc = not_regular_error(err, f, sb.st_mode);
    } else {
        /* Regular files ignore O_NONBLOCK; cleared so nothing downstream sees EAGAIN. */
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    }
    if (rc < 0 && fd >= 0)
        close(fd);
    free(f);
    return rc;
}

static int posix_read(uw_storage *st, const char *path, uw_sink *dest, uw_err *err)
{
    int fd = open_file(st, path, err);
    if (fd < 0) {
        if (fd == -2) {
            char *f = full(st, path);
            uw_fail(err, UW_E_NOT_FOUND, "'%s' does not exist", f);
            free(f);
        }
        return -1;
    }
    char *f = full(st, path);
    uw_err local;
    uw_err_clear(&local);
    int rc = uw_sink_from_fd(dest, fd, f, &local);
    if (rc < 0) {
        /* A read failure is the storage's; a sink failure keeps its own code. */
        if (local.code == UW_E_FILE && strstr(local.msg, f))
            local.code = UW_E_STORAGE;
        if (err)
            *err = local;
    }
    close(fd);
    free(f);
    return rc;
}

/* ---- atomic write: a temporary in the object's directory, renamed on finish ---- */
typedef struct {
    uw_sink base;
    int dfd, fd;
    char *leaf, *tmp, *what; /* what: the object's full path, for messages */
    bool done;
    bool no_sync; /* the handle's defer_sync: uw_storage_sync makes it durable */
} posix_sink;

static int psink_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    posix_sink *w = (posix_sink *)s;
    while (len) {
        ssize_t n = write(w->fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return uw_fail(err, UW_E_STORAGE, "unable to write '%s': %s", w->what, strerror(errno));
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int psink_finish(uw_sink *s, uw_err *err)
{
    posix_sink *w = (posix_sink *)s;
    if (!w->no_sync && fsync(w->fd) < 0)
        return uw_fail(err, UW_E_STORAGE, "unable to fsync '%s': %s", w->what, strerror(errno));
    int rc = close(w->fd);
    w->fd = -1;
    if (rc < 0)
        return uw_fail(err, UW_E_STORAGE, "unable to close '%s': %s", w->what, strerror(errno));
    if (renameat(w->dfd, w->tmp, w->dfd, w->leaf) < 0)
        return uw_fail(err, UW_E_STORAGE, "unable to rename into '%s': %s", w->what,
                       strerror(errno));
    w->done = true;
    if (!w->no_sync && fsync(w->dfd) < 0 && errno != EINVAL)
        return uw_fail(err, UW_E_STORAGE, "unable to fsync the directory of '%s': %s", w->what,
                       strerror(errno));
    return 0;
}

static void psink_destroy(uw_sink *s)
{
    posix_sink *w = (posix_sink *)s;
    if (w->fd >= 0)
        close(w->fd);
    if (!w->done)
        unlinkat(w->dfd, w->tmp, 0); /* an interrupted write never leaves a partial file */
    close(w->dfd);
    free(w->leaf);
    free(w->tmp);
    free(w->what);
    free(w);
}

static uw_sink *posix_write(uw_storage *st, const char *path, uw_err *err)
{
    posix_impl *p = st->impl;
    const char *leaf;
    int dfd = open_dirs(st, path, false, true, &leaf, err);
    if (dfd < 0)
        return NULL;
    char *what = full(st, path);
    if (!*leaf) {
        uw_fail(err, UW_E_STORAGE, "unable to write '%s': not a file name", what);
        free(what);
        close(dfd);
        return NULL;
    }
    char *tmp =
        uw_sprintf("%s.uwtmp.%d.%lx.%s", leaf, (int)getpid(), (unsigned long)random(), p->host);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        uw_fail(err, UW_E_STORAGE, "unable to create a temporary for '%s': %s", what,
                strerror(errno));
        free(what);
        free(tmp);
        close(dfd);
        return NULL;
    }
    posix_sink *w = uw_calloc(1, sizeof *w);
    w->base = (uw_sink){psink_write, psink_finish, psink_destroy, NULL, false, NULL};
    w->dfd = dfd;
    w->fd = fd;
    w->leaf = uw_strdup(leaf);
    w->tmp = tmp;
    w->what = what;
    w->no_sync = st->defer_sync;
    return &w->base;
}

/* One syncfs of the file system holding dir: every object written with
 * defer_sync (data, inodes, renames) becomes durable at once, instead of two
 * fsyncs per object (each a journal commit: ~2.6 ms here, which made a
 * backup of 20,000 small files spend most of its time waiting for them). */
static int posix_sync(uw_storage *st, const char *dir, uw_err *err)
{
    const char *leaf;
    int dfd = open_dirs(st, dir, true, false, &leaf, err);
    if (dfd < 0)
        return dfd == -2 ? 0 : -1;
    int rc = 0;
    if (syncfs(dfd) < 0) {
        char *f = full(st, dir);
        rc = uw_fail(err, UW_E_STORAGE, "unable to sync the file system of '%s': %s", f,
                     strerror(errno));
        free(f);
    }
    close(dfd);
    return rc;
}

static int posix_remove(uw_storage *st, const char *path, uw_err *err)
{
    const char *leaf;
    int dfd = open_dirs(st, path, false, false, &leaf, err);
    if (dfd < 0)
        return dfd == -2 ? 0 : -1;
    int rc = 0;
    /* unlinkat never follows: a link itself would go, not what it points to. */
    if (*leaf && unlinkat(dfd, leaf, 0) < 0 && errno != ENOENT) {
        if (errno == EISDIR || errno == EPERM) {
            if (unlinkat(dfd, leaf, AT_REMOVEDIR) < 0 && errno != ENOENT) {
                char *f = full(st, path);
                rc = uw_fail(err, UW_E_STORAGE, "unable to remove '%s': %s", f, strerror(errno));
                free(f);
            }
        } else {
            char *f = full(st, path);
            rc = uw_fail(err, UW_E_STORAGE, "unable to remove '%s': %s", f, strerror(errno));
            free(f);
        }
    }
    close(dfd);
    return rc;
}

static void posix_close(uw_storage *st)
{
    posix_impl *p = st->impl;
    if (p)
        free(p->root);
    free(p);
}

/* renameat2(RENAME_NOREPLACE), or link()+unlink() where the kernel or file
 * system lacks it: either way an existing `to` is never replaced. */
static int rename_noreplace(int fdir, const char *from, int tdir, const char *to)
{
#ifdef SYS_renameat2
    if (syscall(SYS_renameat2, fdir, from, tdir, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return -1;
#endif
    if (linkat(fdir, from, tdir, to, 0) < 0)
        return -1;
    (void)unlinkat(fdir, from, 0);
    return 0;
}

static int do_rename(uw_storage *st, const char *from, const char *to, bool noreplace, uw_err *err)
{
    const char *fl, *tl;
    int fdir = open_dirs(st, from, false, false, &fl, err);
    if (fdir < 0) {
        if (fdir == -2) {
            char *f = full(st, from);
            uw_fail(err, UW_E_STORAGE, "unable to rename '%s': No such file or directory", f);
            free(f);
        }
        return -1;
    }
    int tdir = open_dirs(st, to, false, true, &tl, err);
    if (tdir < 0) {
        close(fdir);
        return -1;
    }
    char *f = full(st, from), *t = full(st, to);
    int rc = noreplace ? rename_noreplace(fdir, fl, tdir, tl) : renameat(fdir, fl, tdir, tl);
    if (rc < 0)
        rc = uw_fail(err, errno == EEXIST ? UW_E_ARCHIVE_MISMATCH : UW_E_STORAGE,
                     "unable to rename '%s' to '%s': %s", f, t, strerror(errno));
    else if (fsync(tdir) < 0 && errno != EINVAL)
        rc = uw_fail(err, UW_E_STORAGE, "unable to fsync the directory of '%s': %s", t,
                     strerror(errno));
    free(f);
    free(t);
    close(fdir);
    close(tdir);
    return rc;
}

static int posix_rename(uw_storage *st, const char *from, const char *to, uw_err *err)
{
    return do_rename(st, from, to, false, err);
}

int uw_storage_posix_rename_noreplace(uw_storage *st, const char *from, const char *to, uw_err *err)
{
    return do_rename(st, from, to, true, err);
}

/* ---- removal of a whole tree, temporaries included ---- */
typedef struct {
    char **names;
    bool *dirs;
    int n, cap;
} names;

static int collect(void *ctx, int dfd, const char *name, const struct stat *sb)
{
    (void)dfd;
    names *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->names = uw_realloc(l->names, (size_t)l->cap * sizeof *l->names);
        l->dirs = uw_realloc(l->dirs, (size_t)l->cap * sizeof *l->dirs);
    }
    l->names[l->n] = uw_strdup(name);
    l->dirs[l->n++] = S_ISDIR(sb->st_mode);
    return 0;
}

static void names_free(names *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->dirs);
}

/* Empty the directory dfd (consumed), `what` naming it. A link anywhere below
 * stops the removal with an error naming it: the link is left in place (and
 * so is everything it points to). */
static int empty_dir(int dfd, const char *what, uw_err *err)
{
    int dup_fd = dup(dfd);
    if (dup_fd < 0) {
        close(dfd);
        return uw_fail(err, UW_E_STORAGE, "unable to list '%s': %s", what, strerror(errno));
    }
    names l = {0};
    int rc = each_entry(dup_fd, what, EACH_TEMPS, NULL, collect, &l, err);
    for (int i = 0; rc == 0 && i < l.n; i++) {
        char *f = uw_sprintf("%s/%s", what, l.names[i]);
        if (l.dirs[i]) {
            int sub = openat(dfd, l.names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                rc =
                    errno == ELOOP || errno == ENOTDIR
                        ? (not_dir(dfd, l.names[i], f, err) == -1
                               ? -1
                               : uw_fail(err, UW_E_STORAGE, "'%s' changed while it was removed", f))
                        : uw_fail(err, UW_E_STORAGE, "unable to open '%s': %s", f, strerror(errno));
            else
                rc = empty_dir(sub, f, err);
            if (rc == 0 && unlinkat(dfd, l.names[i], AT_REMOVEDIR) < 0 && errno != ENOENT)
                rc = uw_fail(err, UW_E_STORAGE, "unable to remove '%s': %s", f, strerror(errno));
        } else if (unlinkat(dfd, l.names[i], 0) < 0 && errno != ENOENT) {
            rc = uw_fail(err, UW_E_STORAGE, "unable to remove '%s': %s", f, strerror(errno));
        }
        free(f);
    }
    names_free(&l);
    close(dfd);
    return rc;
}

int uw_storage_posix_remove_tree(uw_storage *st, const char *dir, uw_err *err)
{
    const char *leaf;
    int pfd = open_dirs(st, dir, false, false, &leaf, err);
    if (pfd < 0)
        return pfd == -2 ? 0 : -1;
    char *f = full(st, dir);
    int rc = 0;
    if (!*leaf) {
        rc = uw_fail(err, UW_E_STORAGE, "refusing to remove the repository root '%s'", f);
    } else {
        int dfd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) {
            int e = errno;
            if (e == ENOENT)
                rc = 0;
            else if (e == ELOOP || e == ENOTDIR)
                rc = not_dir(pfd, leaf, f, err) == -1 ? -1 : posix_remove(st, dir, err);
            else
                rc = uw_fail(err, UW_E_STORAGE, "unable to open '%s': %s", f, strerror(e));
        } else if ((rc = empty_dir(dfd, f, err)) == 0 && unlinkat(pfd, leaf, AT_REMOVEDIR) < 0 &&
                   errno != ENOENT) {
            rc = uw_fail(err, UW_E_STORAGE, "unable to remove '%s': %s", f, strerror(errno));
        }
    }
    free(f);
    close(pfd);
    return rc;
}

/* ---- sweep of temporaries left by dead writers ---- */
typedef struct {
    const char *host, *what; /* what: the directory being swept, for messages */
    int64_t max_age;
    time_t now;
    uw_sweep_stats *stats;
    uw_err *err;
} sweep_ctx;

static int sweep_dir(sweep_ctx *c, int dfd, const char *what);

static int sweep_entry(void *ctx, int dfd, const char *name, const struct stat *sb)
{
    sweep_ctx *c = ctx;
    if (S_ISDIR(sb->st_mode)) {
        int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            return 0; /* vanished or replaced meanwhile: next sweep */
        char *f = uw_sprintf("%s/%s", c->what, name);
        const char *saved = c->what;
        c->what = f;
        int rc = sweep_dir(c, sub, f);
        c->what = saved;
        free(f);
        return rc;
    }
    if (!strstr(name, ".uwtmp."))
        return 0;
    if (!uw_storage_temp_stale(name, c->host, (int64_t)(c->now - sb->st_mtime), c->max_age))
        return 0;
    if (unlinkat(dfd, name, 0) == 0) {
        c->stats->count++;
        c->stats->bytes += (uint64_t)sb->st_size;
    }
    return 0;
}

static int sweep_dir(sweep_ctx *c, int dfd, const char *what)
{
    return each_entry(dfd, what, EACH_TEMPS | EACH_SKIP_ODD, NULL, sweep_entry, c, c->err);
}

int uw_storage_posix_sweep(uw_storage *st, const char *dir, int64_t max_age, uw_sweep_stats *stats,
                           uw_err *err)
{
    posix_impl *p = st->impl;
    const char *leaf;
    int dfd = open_dirs(st, dir, true, false, &leaf, err);
    if (dfd < 0)
        return dfd == -2 ? 0 : -1;
    char *f = full(st, dir);
    sweep_ctx c = {p->host, f, max_age, time(NULL), stats, err};
    int rc = sweep_dir(&c, dfd, f);
    free(f);
    return rc;
}

const uw_storage_driver uw_storage_posix = {
    .type = "posix",
    .features = UW_STORAGE_FEAT_DIRS | UW_STORAGE_FEAT_FSYNC,
    .open = posix_open,
    .stat = posix_stat,
    .list = posix_list,
    .read = posix_read,
    .write = posix_write,
    .remove = posix_remove,
    .close = posix_close,
    .rename = posix_rename,
    .sweep = uw_storage_posix_sweep,
    .list_prefix = posix_list_prefix,
    .sync = posix_sync,
};
