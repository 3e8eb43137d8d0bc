/* The embedded default: a directory on a local or network file system. Writes go
 * through uw_file_sink (temp + fsync + rename + fsync dir). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"

typedef struct {
    char *root;
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
    st->impl = p;
    st->desc = uw_sprintf("repo%d (posix:%s)", repo, p->root);
    return 0;
}

/* Errors that mean "the repository is not usable right now" versus local
 * problems are all storage errors here: the caller retries them. */
static int posix_stat(uw_storage *st, const char *path, uint64_t *size, uw_err *err)
{
    char *f = full(st, path);
    struct stat sb;
    int rc = stat(f, &sb);
    if (rc < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            free(f);
            return 0;
        }
        uw_fail(err, UW_E_STORAGE, "unable to stat '%s': %s", f, strerror(e));
        free(f);
        return -1;
    }
    free(f);
    if (size)
        *size = (uint64_t)sb.st_size;
    return 1;
}

static int posix_list(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err)
{
    char *f = full(st, dir);
    DIR *d = opendir(f);
    if (!d) {
        int e = errno;
        if (e == ENOENT) {
            free(f);
            return 0;
        }
        uw_fail(err, UW_E_STORAGE, "unable to list '%s': %s", f, strerror(e));
        free(f);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        /* Our own temporary files are never listed: they are not objects yet. */
        if (strstr(de->d_name, ".uwtmp."))
            continue;
        struct stat sb;
        bool is_dir = false;
        uint64_t size = 0;
        if (fstatat(dirfd(d), de->d_name, &sb, 0) == 0) {
            is_dir = S_ISDIR(sb.st_mode);
            size = (uint64_t)sb.st_size;
        }
        if (cb(ctx, de->d_name, is_dir, size))
            break;
        errno = 0;
    }
    if (errno) {
        rc = uw_fail(err, UW_E_STORAGE, "unable to list '%s': %s", f, strerror(errno));
    }
    closedir(d);
    free(f);
    return rc;
}

static int posix_read(uw_storage *st, const char *path, uw_sink *dest, uw_err *err)
{
    char *f = full(st, path);
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        int rc = e == ENOENT
                     ? uw_fail(err, UW_E_NOT_FOUND, "'%s' does not exist", f)
                     : uw_fail(err, e == EACCES || e == EPERM ? UW_E_STORAGE_DENIED : UW_E_STORAGE,
                               "unable to open '%s': %s", f, strerror(e));
        free(f);
        return rc;
    }
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

static uw_sink *posix_write(uw_storage *st, const char *path, uw_err *err)
{
    char *f = full(st, path);
    char *slash = strrchr(f, '/');
    *slash = '\0';
    if (uw_mkdir_p(f, 0750, err) < 0) {
        err->code = UW_E_STORAGE;
        free(f);
        return NULL;
    }
    *slash = '/';
    uw_sink *s = uw_file_sink(f, 0640, 0, err);
    if (!s && err)
        err->code = UW_E_STORAGE;
    free(f);
    return s;
}

static int posix_remove(uw_storage *st, const char *path, uw_err *err)
{
    char *f = full(st, path);
    int rc = 0;
    if (unlink(f) < 0 && errno != ENOENT) {
        if (errno == EISDIR || errno == EPERM) {
            if (rmdir(f) < 0 && errno != ENOENT)
                rc = uw_fail(err, UW_E_STORAGE, "unable to remove '%s': %s", f, strerror(errno));
        } else {
            rc = uw_fail(err, UW_E_STORAGE, "unable to remove '%s': %s", f, strerror(errno));
        }
    }
    free(f);
    return rc;
}

static void posix_close(uw_storage *st)
{
    posix_impl *p = st->impl;
    if (p)
        free(p->root);
    free(p);
}

static int posix_rename(uw_storage *st, const char *from, const char *to, uw_err *err)
{
    char *f = full(st, from), *t = full(st, to);
    int rc = 0;
    if (rename(f, t) < 0) {
        rc = uw_fail(err, UW_E_STORAGE, "unable to rename '%s' to '%s': %s", f, t, strerror(errno));
    } else {
        *strrchr(t, '/') = '\0';
        if (uw_fsync_dir(t, err) < 0) {
            err->code = UW_E_STORAGE;
            rc = -1;
        }
    }
    free(f);
    free(t);
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
};
