#include "work/backup_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/blockdelta.h"
#include "io/object.h"

/* Store fd's content under the object path of e; `since` > 0 stores a block delta. */
static int store(const uw_backup_ctx *ctx, int fd, const char *src, uw_mf_entry *e, uint64_t since,
                 uw_backup_result *res, uw_err *err)
{
    uw_repo *r = ctx->repo;
    snprintf(e->ref, sizeof e->ref, "%s", ctx->backup_id);
    snprintf(e->ext, sizeof e->ext, "%s%s", ctx->compressor->ext, r->have_key ? ".enc" : "");
    char *object = uw_backup_object(r, e);
    int rc = -1;
    for (int attempt = 0;; attempt++) {
        if (attempt && lseek(fd, 0, SEEK_SET) < 0) {
            rc = uw_fail(err, UW_E_FILE, "unable to rewind '%s': %s", src, strerror(errno));
            break;
        }
        uw_sink *dest = uw_storage_write(r->st, object, err);
        if (!dest)
            goto retry;
        uint64_t stored = 0;
        dest = uw_count_sink(dest, &stored);
        uw_obj_write_opts o = {UW_OBJ_FILE,
                               r->info.system_id,
                               ctx->compressor,
                               ctx->level,
                               1,
                               r->have_key ? &r->key : NULL,
                               NULL,
                               e->path};
        uw_digest content, file;
        uw_sink *w = uw_object_writer(&o, dest, &content, err);
        if (!w)
            goto retry;
        if (since) {
            uw_blockdelta_stats st;
            rc = uw_blockdelta_build(fd, src, since, w, &file, &st, err);
            res->pages = st.pages;
            res->changed_pages = st.changed;
        } else {
            rc = uw_sink_from_fd(w, fd, src, err);
        }
        if (rc == 0)
            rc = uw_sink_finish(w, err);
        uw_sink_free(w);
        if (rc == 0) {
            /* The entry's checksum is always the whole file's: --delta restores
             * and later incrementals compare against it. */
            const uw_digest *d = since ? &file : &content;
            memcpy(e->sha256, d->sha256, 32);
            e->size = d->size;
            e->stored = stored;
            if (since)
                snprintf(e->base, sizeof e->base, "%s", ctx->prior->id);
            else
                e->base[0] = '\0';
            res->delta = since != 0;
            break;
        }
    retry:
        rc = -1;
        if (!uw_retry_wait(attempt, err))
            break;
    }
    free(object);
    return rc;
}

int uw_backup_file(const uw_backup_ctx *ctx, const char *src, uw_mf_entry *e, uw_backup_result *res,
                   uw_err *err)
{
    memset(res, 0, sizeof *res);
    int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            res->vanished = true;
            return 0;
        }
        return uw_fail(err, UW_E_FILE, "unable to open '%s': %s", src, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0) {
        e->size = (uint64_t)sb.st_size;
        e->mtime = (int64_t)sb.st_mtime;
        e->mode = sb.st_mode & 07777;
    }
    const uw_mf_entry *pe = ctx->prior ? uw_manifest_find(ctx->prior, e->path) : NULL;
    if (pe && pe->type != 'f')
        pe = NULL;
    int rc;
    if (pe && pe->size == e->size && pe->mtime == e->mtime) {
        /* Same size and time: confirm with the checksum before trusting it. */
        uw_digest d;
        if ((rc = uw_fd_digest(fd, src, &d, err)) < 0)
            goto done;
        if (d.size == pe->size && memcmp(d.sha256, pe->sha256, 32) == 0) {
            snprintf(e->ref, sizeof e->ref, "%s", pe->ref);
            snprintf(e->ext, sizeof e->ext, "%s", pe->ext);
            snprintf(e->base, sizeof e->base, "%s", pe->base);
            memcpy(e->sha256, pe->sha256, 32);
            e->stored = pe->stored;
            res->referenced = true;
            goto done;
        }
        if (lseek(fd, 0, SEEK_SET) < 0) {
            rc = uw_fail(err, UW_E_FILE, "unable to rewind '%s': %s", src, strerror(errno));
            goto done;
        }
    }
    uint64_t since = pe && uw_blockdelta_eligible(e->path) ? ctx->prior->start_lsn : 0;
    rc = store(ctx, fd, src, e, since, res, err);
done:
    close(fd);
    return rc;
}
