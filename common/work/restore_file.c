#include "work/restore_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/blockdelta.h"
#include "core/log.h"
#include "io/object.h"

int uw_file_digest(const char *path, uw_digest *d, uw_err *err)
{
    /* O_NOFOLLOW: a symbolic link where a file should be is "something else",
     * never a reason to read what it points to. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)
            return 0;
        return uw_fail(err, UW_E_FILE, "unable to open '%s': %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    int rc = uw_fd_digest(fd, path, d, err);
    close(fd);
    return rc < 0 ? -1 : 1;
}

static int remove_at(int at, const char *name, const char *shown, uw_err *err)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return uw_fail(err, UW_E_FILE, "unable to stat '%s': %s", shown, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(at, name, 0) < 0 && errno != ENOENT)
            return uw_fail(err, UW_E_FILE, "unable to remove '%s': %s", shown, strerror(errno));
        return 0;
    }
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return uw_fail(err, UW_E_FILE, "unable to open directory '%s': %s", shown, strerror(e));
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *sub = uw_sprintf("%s/%s", shown, de->d_name);
        rc = remove_at(dirfd(d), de->d_name, sub, err);
        free(sub);
    }
    closedir(d);
    if (rc == 0 && unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = uw_fail(err, UW_E_FILE, "unable to remove directory '%s': %s", shown, strerror(errno));
    return rc;
}

int uw_remove_tree(const char *path, uw_err *err)
{
    return remove_at(AT_FDCWD, path, path, err);
}

/* Mode, time and owner as recorded, on the path itself (never through a link). */
static int apply_meta(const uw_restore_ctx *ctx, const uw_mf_entry *e, const char *path,
                      uw_err *err)
{
    if (ctx->set_owner && lchown(path, ctx->uid, ctx->gid) < 0)
        return uw_fail(err, UW_E_FILE, "unable to change the owner of '%s': %s", path,
                       strerror(errno));
    /* After chown: chown clears set-id bits, and the mode must be exact
     * (the temporary file was created under the process umask). */
    if (chmod(path, (mode_t)(e->mode & 07777)) < 0)
        return uw_fail(err, UW_E_FILE, "unable to set the mode of '%s': %s", path, strerror(errno));
    struct timespec ts[2] = {{(time_t)e->mtime, 0}, {(time_t)e->mtime, 0}};
    if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return uw_fail(err, UW_E_FILE, "unable to set the modification time of '%s': %s", path,
                       strerror(errno));
    return 0;
}

/* Read one object through the verifying reader into dest (which the reader
 * owns); expect: the SHA-256 its content must have, or NULL. */
static int read_object(const uw_restore_ctx *ctx, const uw_mf_entry *x, const uint8_t *expect,
                       uw_sink *dest, uw_err *err)
{
    uw_repo *r = ctx->repo;
    char *object = uw_backup_object(r, x);
    /* Large files: decompress here, hash and write on a second core. */
    /* The content is at most the file (a delta: its pages, with 8 bytes of
     * framing per page of at least 1 KiB, and the size record). */
    uint64_t max = x->base[0] ? x->size + x->size / 64 + 4096 : x->size;
    uw_obj_read_opts o = {r->info.system_id,
                          expect,
                          r->have_key ? &r->key : NULL,
                          object,
                          x->size >= (32u << 20),
                          x->path,
                          max ? max : 1,
                          false};
    uw_sink *reader = uw_object_reader(&o, dest, NULL);
    int rc = uw_storage_read(r->st, object, reader, err);
    if (rc == 0)
        rc = uw_sink_finish(reader, err);
    uw_sink_free(reader);
    if (rc < 0 && err && err->code == UW_E_NOT_FOUND)
        uw_fail(err, UW_E_CORRUPT, "'%s' is missing from %s (the backup is damaged)", object,
                r->st->desc);
    free(object);
    return rc;
}

#define MAX_DELTA_CHAIN 1000

/* The entries whose objects make up e: e itself, then the same path in each
 * base backup, down to the one stored whole. */
static int delta_chain(const uw_restore_ctx *ctx, const uw_mf_entry *e, const uw_mf_entry ***out,
                       size_t *n, uw_err *err)
{
    const uw_mf_entry **chain = NULL;
    size_t k = 0;
    const uw_mf_entry *cur = e;
    for (;;) {
        chain = uw_realloc(chain, (k + 1) * sizeof *chain);
        chain[k++] = cur;
        if (!cur->base[0])
            break;
        const uw_manifest *bm = NULL;
        for (size_t i = 0; i < ctx->nmanifests && !bm; i++)
            if (!strcmp(ctx->manifests[i]->id, cur->base))
                bm = ctx->manifests[i];
        const uw_mf_entry *b = bm ? uw_manifest_find(bm, e->path) : NULL;
        if (!bm || !b || b->type != 'f' || k >= MAX_DELTA_CHAIN) {
            free(chain);
            return uw_fail(err, UW_E_REPO_FORMAT,
                           "'%s' is stored as changed pages on backup %s, which %s", e->path,
                           cur->base,
                           !bm                    ? "is not part of the chain"
                           : k >= MAX_DELTA_CHAIN ? "loops"
                                                  : "does not have that file");
        }
        cur = b;
    }
    *out = chain;
    *n = k;
    return 0;
}

/* Rebuild a block-delta file into fd: the full copy, then each delta in turn.
 * Every object is verified by the reader (the full copy against its own
 * SHA-256, deltas against their trailers); the caller checks the result. */
static int rebuild(const uw_restore_ctx *ctx, const uw_mf_entry *const *chain, size_t n, int fd,
                   uint64_t *read, uw_err *err)
{
    int rc = 0;
    *read = 0;
    for (size_t i = n; i-- > 0 && rc == 0;) {
        const uw_mf_entry *x = chain[i];
        for (int attempt = 0;; attempt++) {
            uw_sink *dest;
            if (i == n - 1) {
                /* A retry starts the file over; deltas are idempotent. */
                if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
                    rc = uw_fail(err, UW_E_FILE, "unable to truncate: %s", strerror(errno));
                    break;
                }
                dest = uw_fd_sink(fd);
            } else {
                dest = uw_blockdelta_apply_sink(fd);
            }
            rc = read_object(ctx, x, i == n - 1 ? x->sha256 : NULL, dest, err);
            if (rc == 0 || !uw_retry_wait(attempt, err))
                break;
        }
        *read += x->stored;
    }
    return rc;
}

static int restore_delta(const uw_restore_ctx *ctx, const uw_mf_entry *e, const char *path,
                         uint64_t *read, uw_err *err)
{
    const uw_mf_entry **chain = NULL;
    size_t n = 0;
    if (delta_chain(ctx, e, &chain, &n, err) < 0)
        return -1;
    char *tmp = NULL;
    int fd;
    if (path) {
        tmp = uw_sprintf("%s.uwtmp.%d.%lx", path, (int)getpid(), (unsigned long)random());
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    } else {
        fd = memfd_create("ue-wal-verify", MFD_CLOEXEC);
    }
    if (fd < 0) {
        int rc = uw_fail(err, UW_E_FILE, "unable to create '%s': %s", tmp ? tmp : "memfd",
                         strerror(errno));
        free(tmp);
        free(chain);
        return rc;
    }
    int rc = rebuild(ctx, chain, n, fd, read, err);
    free(chain);
    uw_digest d;
    if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
        rc = uw_fail(err, UW_E_FILE, "unable to rewind: %s", strerror(errno));
    if (rc == 0) {
        uw_sink *h = uw_hash_sink(NULL, &d);
        rc = uw_sink_from_fd(h, fd, tmp ? tmp : "memfd", err);
        if (rc == 0)
            rc = uw_sink_finish(h, err);
        uw_sink_free(h);
    }
    /* Only the size can be compared. The entry's SHA-256 is of the file as
     * the backup read it, and the pages a delta leaves out (page LSN older
     * than the base backup's start) may still differ from the base's copy in
     * ways that are not WAL-logged, such as hint bits; replay from the
     * backup's start makes them consistent. Each part was verified against
     * its own checksum by the reader. */
    if (rc == 0 && d.size != e->size)
        rc = uw_fail(err, UW_E_CORRUPT,
                     "rebuilt from %zu stored parts, it has %" PRIu64 " bytes instead of %" PRIu64,
                     n, d.size, e->size);
    if (rc == 0 && memcmp(d.sha256, e->sha256, 32) != 0)
        uw_log(UW_LOG_DEBUG,
               "'%s': rebuilt content differs from the file the backup read "
               "(pages not WAL-logged, e.g. hint bits)",
               e->path);
    if (rc == 0 && tmp && !ctx->no_sync && fsync(fd) < 0)
        rc = uw_fail(err, UW_E_FILE, "unable to fsync '%s': %s", tmp, strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = uw_fail(err, UW_E_FILE, "unable to close '%s': %s", tmp ? tmp : "memfd",
                     strerror(errno));
    if (rc == 0 && tmp && rename(tmp, path) < 0)
        rc = uw_fail(err, UW_E_FILE, "unable to rename '%s' to '%s': %s", tmp, path,
                     strerror(errno));
    if (rc < 0 && tmp)
        unlink(tmp);
    if (rc == 0 && tmp && !ctx->no_sync) {
        char *dir = uw_strdup(path);
        *strrchr(dir, '/') = '\0';
        rc = uw_fsync_dir(dir, err);
        free(dir);
    }
    free(tmp);
    return rc;
}

/* SHA-256 of no bytes at all (FIPS 180-4's test value, e3b0c442...b855). */
static const uint8_t EMPTY_SHA256[32] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

int uw_restore_file(const uw_restore_ctx *ctx, const uw_mf_entry *e, uw_restore_result *res,
                    uw_err *err)
{
    memset(res, 0, sizeof *res);
    res->bytes = e->size;
    if (e->type != 'f')
        return uw_fail(err, UW_E_INTERNAL, "'%s' is not a file entry", e->path);
    char *path = ctx->root ? uw_sprintf("%s/%s", ctx->root, e->path) : NULL;
    int rc = 0;
    if (path && ctx->delta) {
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (S_ISREG(st.st_mode) && (uint64_t)st.st_size == e->size) {
                uw_digest d;
                rc = uw_file_digest(path, &d, err);
                if (rc == 1 && d.size == e->size && memcmp(d.sha256, e->sha256, 32) == 0) {
                    res->skipped = true;
                    rc = apply_meta(ctx, e, path, err);
                    free(path);
                    return rc;
                }
                if (rc < 0) {
                    free(path);
                    return -1;
                }
                rc = 0;
            } else if (S_ISDIR(st.st_mode)) {
                /* rename() cannot replace a directory. */
                if (uw_remove_tree(path, err) < 0) {
                    free(path);
                    return -1;
                }
            }
            /* Anything else (a link, a different file) is replaced by the rename. */
        }
    }
    if (e->base[0]) {
        rc = restore_delta(ctx, e, path, &res->read, err);
    } else if (path && e->size == 0 && memcmp(e->sha256, EMPTY_SHA256, 32) == 0) {
        /* An empty file: the manifest (verified when loaded) says everything
         * about its content, and there is no byte to fetch or to check. A
         * data directory holds hundreds (pg_xact, relation forks...): a GET
         * each was a third of a restore's requests. The object is still read
         * by verify (no path), which checks that the backup is whole. */
        uw_sink *dest =
            uw_file_sink(path, 0600, ctx->no_sync ? UW_FILE_NO_SYNC | UW_FILE_WRITEBACK : 0, err);
        rc = dest ? uw_sink_finish(dest, err) : -1;
        uw_sink_free(dest);
    } else {
        for (int attempt = 0;; attempt++) {
            uw_digest d;
            /* Not fsynced one by one (one syncfs at the end), but written back
             * as we go so that the syncfs has little left to wait for. */
            unsigned flags = ctx->no_sync ? UW_FILE_NO_SYNC | UW_FILE_WRITEBACK : 0;
            uw_sink *dest = path ? uw_file_sink(path, 0600, flags, err) : uw_hash_sink(NULL, &d);
            /* Freeing an unfinished file sink removes its temporary file. */
            rc = dest ? read_object(ctx, e, e->sha256, dest, err) : -1;
            if (rc == 0 || !dest || !uw_retry_wait(attempt, err))
                break;
        }
        if (rc == 0)
            res->read = e->stored;
    }
    if (rc == 0 && path)
        rc = apply_meta(ctx, e, path, err);
    if (rc < 0)
        uw_wrap(err, "restoring '%s'", e->path);
    free(path);
    return rc;
}
