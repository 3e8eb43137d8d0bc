#include "pg/blockdelta.h"
#include "core/bytes.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool uw_blockdelta_eligible(const char *path)
{
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    if (!(strncmp(path, "base/", 5) == 0 || strncmp(path, "global/", 7) == 0 ||
          strncmp(path, "pg_tblspc/", 10) == 0))
        return false;
    const char *p = name;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '\0')
        return true;
    /* Not _vm: PostgreSQL clears visibility-map bits without advancing the
     * page's LSN, so an old copy of a VM page could claim changed pages are
     * all-visible (index-only scans would then return dead rows). */
    if (strcmp(p, "_init") == 0)
        return true;
    if (*p == '.') {
        p++;
        if (!*p)
            return false;
        while (isdigit((unsigned char)*p))
            p++;
        return *p == '\0';
    }
    return false;
}

int uw_blockdelta_build(int fd, const char *what, uint64_t since_lsn, uw_sink *out,
                        uw_digest *digest, uw_blockdelta_stats *stats, uw_err *err)
{
    enum { BATCH = 128 };
    uint8_t *buf = uw_malloc((size_t)BATCH * UW_BLCKSZ);
    uw_sink *hash = uw_hash_sink(NULL, digest);
    uint8_t hdr[24] = {'U', 'W', 'B', 'D'};
    uw_put32(hdr + 4, 1);
    uw_put32(hdr + 16, UW_BLCKSZ);
    /* The size is only known at EOF and a stream cannot be rewound, so the
     * header's size stays 0 and the final size travels in a last record with
     * block number 0xFFFFFFFF. */
    int rc = uw_sink_write(out, hdr, sizeof hdr, err);
    uint64_t blk = 0, total = 0;
    memset(stats, 0, sizeof *stats);
    while (rc == 0) {
        size_t have = 0;
        for (;;) {
            ssize_t n = read(fd, buf + have, (size_t)BATCH * UW_BLCKSZ - have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = uw_fail(err, UW_E_FILE, "unable to read '%s': %s", what, strerror(errno));
                break;
            }
            if (n == 0)
                break;
            have += (size_t)n;
            if (have == (size_t)BATCH * UW_BLCKSZ)
                break;
        }
        if (rc < 0 || have == 0)
            break;
        if (uw_sink_write(hash, buf, have, err) < 0) {
            rc = -1;
            break;
        }
        total += have;
        for (size_t off = 0; off < have && rc == 0; off += UW_BLCKSZ, blk++) {
            size_t len = have - off < UW_BLCKSZ ? have - off : UW_BLCKSZ;
            const uint8_t *page = buf + off;
            uint64_t lsn = (uint64_t)uw_get32(page) << 32 | uw_get32(page + 4);
            stats->pages++;
            /* A partial trailing page (file being extended) is always sent. */
            if (len == UW_BLCKSZ && lsn != 0 && lsn < since_lsn)
                continue;
            stats->changed++;
            uint8_t rec[8];
            uw_put32(rec, (uint32_t)blk);
            uw_put32(rec + 4, (uint32_t)len);
            if (uw_sink_write(out, rec, 8, err) < 0 || uw_sink_write(out, page, len, err) < 0)
                rc = -1;
        }
        if (have < (size_t)BATCH * UW_BLCKSZ)
            break;
    }
    if (rc == 0) {
        uint8_t rec[16];
        uw_put32(rec, 0xFFFFFFFFu);
        uw_put32(rec + 4, 8);
        uw_put64(rec + 8, total);
        rc = uw_sink_write(out, rec, sizeof rec, err);
    }
    if (rc == 0)
        rc = uw_sink_finish(hash, err);
    uw_sink_free(hash);
    free(buf);
    return rc;
}

typedef struct {
    uw_sink base;
    int fd;
    uint8_t hdr[24];
    size_t hdr_len;
    uint8_t rec[8];
    size_t rec_len;
    uint32_t blk, len;
    size_t got;
    uint8_t page[UW_BLCKSZ];
    bool have_size;
    uint64_t size;
} apply_sink;

static int apply_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    apply_sink *a = (apply_sink *)s;
    while (len) {
        if (a->hdr_len < sizeof a->hdr) {
            size_t n = sizeof a->hdr - a->hdr_len;
            n = n < len ? n : len;
            memcpy(a->hdr + a->hdr_len, buf, n);
            a->hdr_len += n, buf += n, len -= n;
            if (a->hdr_len == sizeof a->hdr &&
                (memcmp(a->hdr, "UWBD", 4) || uw_get32(a->hdr + 4) != 1 ||
                 uw_get32(a->hdr + 16) != UW_BLCKSZ))
                return uw_fail(err, UW_E_CORRUPT, "block delta has an unknown format");
            continue;
        }
        if (a->rec_len < 8) {
            size_t n = 8 - a->rec_len;
            n = n < len ? n : len;
            memcpy(a->rec + a->rec_len, buf, n);
            a->rec_len += n, buf += n, len -= n;
            if (a->rec_len == 8) {
                a->blk = uw_get32(a->rec);
                a->len = uw_get32(a->rec + 4);
                a->got = 0;
                if (a->have_size || a->len > UW_BLCKSZ || (a->blk == 0xFFFFFFFFu && a->len != 8))
                    return uw_fail(err, UW_E_CORRUPT, "block delta is malformed");
            }
            continue;
        }
        size_t n = a->len - a->got;
        n = n < len ? n : len;
        memcpy(a->page + a->got, buf, n);
        a->got += n, buf += n, len -= n;
        if (a->got < a->len)
            continue;
        if (a->blk == 0xFFFFFFFFu) {
            a->size = uw_get64(a->page);
            a->have_size = true;
        } else if (pwrite(a->fd, a->page, a->len, (off_t)a->blk * UW_BLCKSZ) != (ssize_t)a->len) {
            return uw_fail(err, UW_E_FILE, "unable to write a block: %s", strerror(errno));
        }
        a->rec_len = 0;
    }
    return 0;
}

static int apply_finish(uw_sink *s, uw_err *err)
{
    apply_sink *a = (apply_sink *)s;
    if (!a->have_size || a->rec_len != 0)
        return uw_fail(err, UW_E_CORRUPT, "block delta is truncated");
    if (ftruncate(a->fd, (off_t)a->size) < 0)
        return uw_fail(err, UW_E_FILE, "unable to set the file size: %s", strerror(errno));
    return 0;
}

static void apply_destroy(uw_sink *s)
{
    free(s);
}

uw_sink *uw_blockdelta_apply_sink(int fd)
{
    apply_sink *a = uw_calloc(1, sizeof *a);
    a->base = (uw_sink){apply_write, apply_finish, apply_destroy, NULL, false, NULL};
    a->fd = fd;
    return &a->base;
}
