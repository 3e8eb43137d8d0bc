#include "work/walpush.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "io/object.h"

int uw_push_open(const char *path, uw_err *err)
{
    /* O_NONBLOCK: a FIFO in the file's place must be refused, not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return uw_fail(err, UW_E_FILE, "unable to open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return uw_fail(err, UW_E_WAL_INVALID, "'%s' is not a regular file: refusing to push it",
                       path);
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

int uw_push_prepare(const uw_config *cfg, const uw_repo *r, uw_push_job *job, bool hash,
                    uw_err *err)
{
    uw_wal_name w;
    if (uw_wal_parse(job->name, &w, err) < 0)
        return -1;
    job->compressor = uw_compressor_by_name(uw_cfg_str(cfg, UW_OPT_COMPRESS_TYPE));
    job->level = (int)uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL);
    if (!job->threads)
        job->threads = 1;
    int fd = uw_push_open(job->path, err);
    if (fd < 0)
        return -1;
    int rc = 0;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        rc = uw_fail(err, UW_E_FILE, "unable to stat '%s': %s", job->path, strerror(errno));
        goto done;
    }
    if (w.kind == UW_WAL_SEGMENT || w.kind == UW_WAL_PARTIAL) {
        const uw_stanza_info *in = &r->info;
        if ((uint64_t)sb.st_size != in->wal_seg_size) {
            rc = uw_fail(err, UW_E_WAL_INVALID, "'%s' is %lld bytes, expected a %u-byte segment",
                         job->path, (long long)sb.st_size, in->wal_seg_size);
            goto done;
        }
        uint8_t hdr[UW_WAL_LONG_HEADER_LEN];
        uw_wal_header h;
        if (pread(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) {
            rc = uw_fail(err, UW_E_FILE, "unable to read '%s'", job->path);
            goto done;
        }
        if (uw_wal_header_parse(hdr, sizeof hdr, &h, err) < 0) {
            rc = uw_wrap(err, "'%s'", job->path);
            goto done;
        }
        if (h.system_id != in->system_id) {
            rc = uw_fail(err, UW_E_WAL_CLUSTER,
                         "'%s' belongs to database system %llu, but stanza '%s' is system %llu: "
                         "is archive_command pointing at the right stanza?",
                         job->name, (unsigned long long)h.system_id, r->stanza,
                         (unsigned long long)in->system_id);
            goto done;
        }
        if (h.seg_size != in->wal_seg_size) {
            rc = uw_fail(err, UW_E_WAL_CLUSTER, "'%s' has segment size %u, stanza '%s' has %u",
                         job->name, h.seg_size, r->stanza, in->wal_seg_size);
            goto done;
        }
        if (h.pageaddr != uw_wal_segno(&w, in->wal_seg_size) * in->wal_seg_size) {
            rc = uw_fail(err, UW_E_WAL_INVALID,
                         "'%s' holds the WAL of another segment (page address %llX): renamed file?",
                         job->name, (unsigned long long)h.pageaddr);
            goto done;
        }
    }
    job->size = (uint64_t)sb.st_size;
    job->st = sb;
    if (!hash)
        goto done;
    uw_digest d;
    rc = uw_fd_digest(fd, job->path, &d, err);
    if (rc == 0) {
        memcpy(job->sha256, d.sha256, 32);
        job->size = d.size;
    }
done:
    close(fd);
    return rc;
}

static int settle_race(uw_repo *r, const char *name, const char *object, const char *sha,
                       uw_err *err);

/* *stored: the bytes the storage sink took, i.e. the object's size once its
 * finish succeeded (every driver's finish makes the object whole or fails). */
static int push_attempt(uw_repo *r, const uw_push_job *job, const char *object, uint64_t *stored,
                        uw_err *err)
{
    int fd = uw_push_open(job->path, err);
    if (fd < 0)
        return -1;
    uw_sink *dest = uw_storage_write(r->st, object, err);
    if (!dest) {
        close(fd);
        return -1;
    }
    *stored = 0;
    dest = uw_count_sink(dest, stored);
    uw_obj_write_opts o = {UW_OBJ_WAL,  r->info.system_id, job->compressor,
                           job->level,  job->threads,      r->have_key ? &r->key : NULL,
                           job->sha256, job->name};
    uw_sink *w = uw_object_writer(&o, dest, NULL, err);
    if (!w) {
        close(fd);
        return -1;
    }
    int rc = uw_sink_from_fd(w, fd, job->path, err);
    close(fd);
    if (rc == 0)
        rc = uw_sink_finish(w, err);
    if (rc < 0 && err->code == UW_E_FILE)
        uw_wrap(err, "'%s'", job->path);
    uw_sink_free(w);
    return rc;
}

int uw_push_one(uw_repo *r, const uw_push_job *job, int *already, uint64_t *stored, uw_err *err)
{
    char sha[65];
    uw_repo_content_id_hex(r, job->sha256, sha);
    char *existing = NULL, existing_sha[65];
    *already = 0;
    int found = uw_repo_wal_find(r, job->name, &existing, existing_sha, err);
    if (found < 0)
        return -1;
    if (found) {
        int rc = 0;
        if (strcmp(existing_sha, sha) == 0)
            *already = 1;
        else
            rc = uw_fail(err, UW_E_ARCHIVE_MISMATCH,
                         "'%s' is already archived in %s with a different checksum (stored %.12s, "
                         "new %.12s): refusing to overwrite; check that no other cluster archives "
                         "to stanza '%s'",
                         job->name, r->st->desc, existing_sha, sha, r->stanza);
        free(existing);
        return rc;
    }
    char *dir = uw_repo_wal_dir(r, job->name);
    char *object = uw_sprintf("%s/%s-%s%s%s", dir, job->name, sha, job->compressor->ext,
                              r->have_key ? ".enc" : "");
    free(dir);
    int rc;
    uint64_t size = 0;
    for (int attempt = 0;; attempt++) {
        rc = push_attempt(r, job, object, &size, err);
        if (rc == 0 || !uw_retry_wait(attempt, err))
            break;
    }
    /* What landed was verified by the driver's finish (posix: written,
     * fsynced and renamed; S3 and Azure: the service's MD5 of the whole
     * object, or a HEAD), and settle_race's listing below must find it under
     * its name: a stat here would only repeat both (one more request per
     * segment on an object store). */
    if (rc == 0 && size < UW_OBJ_HEADER_LEN + UW_OBJ_TRAILER_LEN)
        rc = uw_fail(err, UW_E_INTERNAL, "%s: '%s' was written with only %llu bytes", r->st->desc,
                     object, (unsigned long long)size);
    if (rc == 0 && stored)
        *stored = size;
    /* Object names carry the content's checksum, so a conditional write
     * (If-None-Match: *) cannot tell two contents racing for one segment
     * apart: re-list after the write, and the push that sees another content
     * withdraws its own object and fails (exit 7). The listing also finds the
     * object just written, under its name, or the push fails. */
    if (rc == 0)
        rc = settle_race(r, job->name, object, sha, err);
    free(object);
    return rc;
}

/* Checks, before a fetched segment is delivered, that its first page is the
 * one its name promises (system, segment address, a timeline not after the
 * name's) and that it has the segment size: an object renamed to another
 * segment's name is refused even where no key authenticates the name. */
typedef struct {
    uw_sink base;
    const uw_repo *r;
    uw_wal_name w;
    const char *name;
    uint8_t hdr[UW_WAL_LONG_HEADER_LEN];
    uint64_t seen;
} walcheck_sink;

static int walcheck_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    walcheck_sink *c = (walcheck_sink *)s;
    if (c->seen < sizeof c->hdr) {
        size_t n = sizeof c->hdr - (size_t)c->seen;
        memcpy(c->hdr + c->seen, buf, n < len ? n : len);
    }
    c->seen += len;
    return uw_sink_write(s->next, buf, len, err);
}

static int walcheck_finish(uw_sink *s, uw_err *err)
{
    walcheck_sink *c = (walcheck_sink *)s;
    const uw_stanza_info *in = &c->r->info;
    uw_wal_header h;
    if (c->seen != in->wal_seg_size)
        return uw_fail(err, UW_E_CORRUPT, "'%s' holds %llu bytes, not a %u-byte segment", c->name,
                       (unsigned long long)c->seen, in->wal_seg_size);
    if (uw_wal_header_parse(c->hdr, sizeof c->hdr, &h, err) < 0) {
        err->code = UW_E_CORRUPT;
        return uw_wrap(err, "'%s'", c->name);
    }
    uint64_t addr = uw_wal_segno(&c->w, in->wal_seg_size) * in->wal_seg_size;
    /* The first page of a timeline's first segment is copied from the old
     * timeline, so its page timeline may be lower than the name's. */
    if (h.pageaddr != addr || h.tli > c->w.tli || h.tli == 0 || h.system_id != in->system_id ||
        h.seg_size != in->wal_seg_size)
        return uw_fail(err, UW_E_CORRUPT,
                       "'%s' holds the WAL of another segment (timeline %u, page address %llX, "
                       "system %llu): substituted object?",
                       c->name, h.tli, (unsigned long long)h.pageaddr,
                       (unsigned long long)h.system_id);
    return uw_sink_finish(s->next, err);
}

static void walcheck_destroy(uw_sink *s)
{
    free(s);
}

int uw_fetch_one(uw_repo *r, const char *name, const char *dest, unsigned file_flags,
                 uw_digest *digest, uw_err *err)
{
    uw_wal_name w;
    if (uw_wal_parse(name, &w, err) < 0)
        return -1;
    bool segment = w.kind == UW_WAL_SEGMENT || w.kind == UW_WAL_PARTIAL;
    char *object = NULL, sha_hex[65];
    int found = uw_repo_wal_find(r, name, &object, sha_hex, err);
    if (found < 0) {
        /* The listing met a link or a non-regular file (a planted entry): the
         * archive cannot be read, which recovery must not take for its end. */
        if (err->code == UW_E_REPO_FORMAT)
            err->code = UW_E_UNREADABLE;
        return -1;
    }
    if (!found)
        return uw_fail(err, UW_E_NOT_FOUND, "'%s' is not in %s", name, r->st->desc);
    uint8_t sha[32];
    uw_unhex(sha_hex, sha, 32);
    int rc;
    for (int attempt = 0;; attempt++) {
        uw_sink *file = uw_file_sink(dest, 0600, file_flags, err);
        if (!file) {
            rc = -1;
            break;
        }
        if (segment) {
            walcheck_sink *c = uw_calloc(1, sizeof *c);
            c->base =
                (uw_sink){walcheck_write, walcheck_finish, walcheck_destroy, file, false, NULL};
            c->r = r;
            c->w = w;
            c->name = name;
            file = &c->base;
        }
        /* Every archived file fits in a segment (history and backup files are
         * small): nothing decompresses beyond that. */
        uw_obj_read_opts o = {
            r->info.system_id,    sha, r->have_key ? &r->key : NULL, object, false, name,
            r->info.wal_seg_size, true};
        uw_digest d;
        uw_sink *reader = uw_object_reader(&o, file, &d);
        rc = uw_storage_read(r->st, object, reader, err);
        if (rc == 0)
            rc = uw_sink_finish(reader, err);
        uw_sink_free(reader);
        if (rc == 0 && digest)
            *digest = d;
        /* A vanished object is a miss, and a retry cannot help other errors. */
        if (rc == 0 || !uw_retry_wait(attempt, err))
            break;
    }
    if (rc < 0)
        rc = uw_repo_wal_read_failed(r, name, object, err);
    free(object);
    return rc;
}

/* Two pushes of different content may both have found the name free. After
 * its rename, a push that sees another object for the name withdraws its own
 * and fails with UW_E_ARCHIVE_MISMATCH: the later rename always sees the
 * earlier object, so at most one of them succeeds (both may fail, and the
 * archiver retries). */
static int settle_race(uw_repo *r, const char *name, const char *object, const char *sha,
                       uw_err *err)
{
    char *found = NULL, found_sha[65];
    uw_err e;
    uw_err_clear(&e);
    int n = uw_repo_wal_find(r, name, &found, found_sha, &e);
    free(found);
    if (n == 1 && strcmp(found_sha, sha) == 0)
        return 0;
    if (n < 0 && e.code != UW_E_CORRUPT) {
        *err = e; /* unknown: fail, the retry finds our object alone or not */
        return -1;
    }
    if (n == 0)
        return uw_fail(err, UW_E_STORAGE, "%s: '%s' is missing after it was written", r->st->desc,
                       object);
    uw_storage_remove(r->st, object, NULL);
    return uw_fail(err, UW_E_ARCHIVE_MISMATCH,
                   "'%s' was archived in %s with a different checksum by a concurrent push: "
                   "refusing to keep a second content; check that no other cluster archives to "
                   "stanza '%s'",
                   name, r->st->desc, r->stanza);
}

bool uw_push_single_pass_ok(const uw_repo *r)
{
    return r->st->drv->rename != NULL;
}

int uw_push_single_pass(uw_repo *r, uw_push_job *job, int *already, uint64_t *stored, uw_err *err)
{
    *already = 0;
    char *dir = uw_repo_wal_dir(r, job->name);
    /* ".uwtmp." keeps it out of every listing until it has its real name;
     * pid and host let a sweep tell a killed push's leftover (storage.h). */
    char host[64];
    uw_storage_temp_host(host, sizeof host);
    char *tmp = uw_sprintf("%s/%s.uwtmp.%d.push.%s", dir, job->name, (int)getpid(), host);
    int rc = -1;
    for (int attempt = 0;; attempt++) {
        int fd = uw_push_open(job->path, err);
        if (fd < 0)
            break;
        if (fstat(fd, &job->st) < 0) {
            rc = uw_fail(err, UW_E_FILE, "unable to stat '%s': %s", job->path, strerror(errno));
            close(fd);
            break;
        }
        uw_sink *dest = uw_storage_write(r->st, tmp, err);
        uw_sink *w = NULL;
        uw_digest d;
        if (dest) {
            uw_obj_write_opts o = {UW_OBJ_WAL, r->info.system_id, job->compressor,
                                   job->level, job->threads,      r->have_key ? &r->key : NULL,
                                   NULL,       job->name};
            w = uw_object_writer(&o, dest, &d, err);
        }
        rc = w ? uw_sink_from_fd(w, fd, job->path, err) : -1;
        close(fd);
        if (rc == 0)
            rc = uw_sink_finish(w, err);
        uw_sink_free(w);
        if (rc == 0) {
            memcpy(job->sha256, d.sha256, 32);
            job->size = d.size;
            break;
        }
        if (!uw_retry_wait(attempt, err))
            break;
    }
    if (rc == 0) {
        char sha[65], *existing = NULL, existing_sha[65];
        uw_repo_content_id_hex(r, job->sha256, sha);
        /* Checked again now that the checksum is known: the name must still be free. */
        int found = uw_repo_wal_find(r, job->name, &existing, existing_sha, err);
        if (found < 0) {
            rc = -1;
        } else if (found && strcmp(existing_sha, sha) == 0) {
            *already = 1;
        } else if (found) {
            rc = uw_fail(err, UW_E_ARCHIVE_MISMATCH,
                         "'%s' is already archived in %s with a different checksum (stored "
                         "%.12s, new %.12s): refusing to overwrite",
                         job->name, r->st->desc, existing_sha, sha);
        } else {
            char *object = uw_sprintf("%s/%s-%s%s%s", dir, job->name, sha, job->compressor->ext,
                                      r->have_key ? ".enc" : "");
            rc = uw_storage_rename_noreplace(r->st, tmp, object, err);
            if (rc < 0 && err->code == UW_E_ARCHIVE_MISMATCH) {
                /* The very name, so the same checksum: a racing identical push won. */
                rc = 0;
                *already = 1;
            } else if (rc == 0) {
                rc = settle_race(r, job->name, object, sha, err);
            }
            if (rc == 0 && !*already && stored && uw_storage_stat(r->st, object, stored, err) < 0)
                rc = -1;
            free(object);
        }
        free(existing);
        if (rc < 0 || *already)
            uw_storage_remove(r->st, tmp, NULL);
    }
    free(tmp);
    free(dir);
    return rc;
}
