/* WAL record decoding (see pg/wal_decode.h): moved here from
 * repo/archive_info.c, which keeps what the archive holds and reaches. */
#include "pg/wal_decode.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "pg/wal.h"

/* CRC-32C (Castagnoli), as PostgreSQL computes record checksums. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static void crc_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}
static void crc_init(void)
{
    pthread_once(&crc_once, crc_build);
}

static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

/* PostgreSQL's on-disk WAL layout (access/xlog_internal.h, xlogrecord.h). */
#define XLP_FIRST_IS_CONTRECORD 0x0001
#define XLP_LONG_HEADER 0x0002
#define SHORT_PHD 24
#define LONG_PHD 40
#define REC_HDR 24
#define RM_XLOG_ID 0
#define RM_XACT_ID 1
#define XLOG_SWITCH 0x40
#define XLOG_XACT_OPMASK 0x70
#define XLR_MAX_BLOCK_ID 32
#define XLR_BLOCK_ID_DATA_SHORT 255
#define XLR_BLOCK_ID_DATA_LONG 254
#define XLR_BLOCK_ID_ORIGIN 253
#define XLR_BLOCK_ID_TOPLEVEL_XID 252
#define BKPBLOCK_HAS_IMAGE 0x10
#define BKPBLOCK_SAME_REL 0x20
#define BKPIMAGE_HAS_HOLE 0x01
#define BKPIMAGE_COMPRESSED_ANY (0x04 | 0x08 | 0x10)

typedef struct {
    const uint8_t *buf;
    size_t len;
    uint32_t blcksz;
    uint64_t seg_start;
    uint16_t magic;
} seg_reader;

static bool page_ok(const seg_reader *s, size_t pg, bool want_cont)
{
    if (pg + s->blcksz > s->len)
        return false;
    const uint8_t *p = s->buf + pg;
    if (uw_get16(p) != s->magic || uw_get64(p + 8) != s->seg_start + pg)
        return false;
    return !want_cont || (uw_get16(p + 2) & XLP_FIRST_IS_CONTRECORD);
}

/* Copy n bytes of record data from *pos on, skipping the headers of the
 * continuation pages it crosses. dst may be NULL (skip). */
static bool copy_data(const seg_reader *s, size_t *pos, uint8_t *dst, size_t n)
{
    while (n) {
        if (*pos % s->blcksz == 0) {
            if (!page_ok(s, *pos, true))
                return false;
            *pos += *pos == 0 ? LONG_PHD : SHORT_PHD;
        }
        size_t room = s->blcksz - *pos % s->blcksz, k = room < n ? room : n;
        /* The first page is not checked by page_ok(): a segment shorter
         * than a page ends inside it. */
        if (*pos >= s->len || k > s->len - *pos)
            return false;
        if (dst) {
            memcpy(dst, s->buf + *pos, k);
            dst += k;
        }
        *pos += k;
        n -= k;
    }
    return true;
}

/* Length of the main data of a decoded record (its last bytes), following
 * DecodeXLogRecord(); -1 when the headers do not add up. */
static int64_t main_data_len(const uint8_t *rec, size_t tot)
{
    size_t off = REC_HDR;
    uint64_t datatotal = 0;
    while (off < tot && tot - off > datatotal) {
        uint8_t id = rec[off++];
        if (id == XLR_BLOCK_ID_DATA_SHORT) {
            if (off + 1 > tot)
                return -1;
            return rec[off];
        }
        if (id == XLR_BLOCK_ID_DATA_LONG) {
            if (off + 4 > tot)
                return -1;
            return uw_get32(rec + off);
        }
        if (id == XLR_BLOCK_ID_ORIGIN) {
            off += 2;
            continue;
        }
        if (id == XLR_BLOCK_ID_TOPLEVEL_XID) {
            off += 4;
            continue;
        }
        if (id > XLR_MAX_BLOCK_ID || off + 3 > tot)
            return -1;
        uint8_t flags = rec[off];
        datatotal += uw_get16(rec + off + 1);
        off += 3;
        if (flags & BKPBLOCK_HAS_IMAGE) {
            if (off + 5 > tot)
                return -1;
            datatotal += uw_get16(rec + off);
            uint8_t info = rec[off + 4];
            off += 5;
            if ((info & BKPIMAGE_HAS_HOLE) && (info & BKPIMAGE_COMPRESSED_ANY))
                off += 2;
        }
        if (!(flags & BKPBLOCK_SAME_REL))
            off += 12;
        off += 4;
    }
    return 0;
}

int uw_wal_decode_segment(const uint8_t *buf, size_t len, uint64_t seg_start, uint32_t seg_size,
                          uw_wal_end *out, uw_err *err)
{
    crc_init();
    memset(out, 0, sizeof *out);
    out->end_lsn = seg_start;
    if (len < LONG_PHD || !(uw_get16(buf + 2) & XLP_LONG_HEADER) || uw_get64(buf + 8) != seg_start)
        return uw_fail(err, UW_E_CORRUPT, "segment at %" PRIX64 " has no valid first page header",
                       seg_start);
    seg_reader s = {buf, len < seg_size ? len : seg_size, uw_get32(buf + 36), seg_start,
                    uw_get16(buf)};
    if (s.blcksz < 1024 || s.blcksz > 65536 || (s.blcksz & (s.blcksz - 1)) || seg_size % s.blcksz)
        return uw_fail(err, UW_E_CORRUPT, "segment at %" PRIX64 " has an invalid block size",
                       seg_start);
    size_t pos = LONG_PHD;
    if (uw_get16(buf + 2) & XLP_FIRST_IS_CONTRECORD) {
        /* The tail of a record that began in the previous segment. */
        if (!copy_data(&s, &pos, NULL, uw_get32(buf + 16)))
            return 0;
    }
    uint8_t *rec = NULL;
    size_t rec_cap = 0;
    uint64_t prev_lsn = 0;
    for (;;) {
        pos = (pos + 7) & ~(size_t)7;
        if (pos >= s.len || s.len - pos < 4) /* xl_tot_len must be there */
            break;
        if (pos % s.blcksz == 0) {
            /* A record starting on a new page: the page must be ours and
             * must not claim to continue something. */
            if (!page_ok(&s, pos, false) || (uw_get16(buf + pos + 2) & XLP_FIRST_IS_CONTRECORD))
                break;
            pos += SHORT_PHD;
        }
        uint64_t lsn = seg_start + pos;
        uint32_t tot = uw_get32(buf + pos); /* xl_tot_len is never split across pages */
        if (tot < REC_HDR || tot > s.len)
            break;
        if (tot > rec_cap) {
            rec_cap = tot;
            rec = uw_realloc(rec, rec_cap);
        }
        size_t p2 = pos;
        if (!copy_data(&s, &p2, rec, tot))
            break; /* continues in the next segment (or the rest is not WAL) */
        if (prev_lsn && uw_get64(rec + 8) != prev_lsn)
            break;
        uint32_t crc = crc32c(0xFFFFFFFFu, rec + REC_HDR, tot - REC_HDR);
        crc = crc32c(crc, rec, 20) ^ 0xFFFFFFFFu;
        if (crc != uw_get32(rec + 20))
            break;
        out->end_lsn = seg_start + p2;
        uint8_t info = rec[16], rmid = rec[17];
        if (rmid == RM_XACT_ID) {
            uint8_t op = info & XLOG_XACT_OPMASK;
            /* commit, abort, commit prepared, abort prepared: the records
             * recovery_target_time is compared with. Their main data starts
             * with the transaction's timestamp. */
            if (op == 0x00 || op == 0x20 || op == 0x30 || op == 0x40) {
                int64_t ml = main_data_len(rec, tot);
                if (ml >= 8 && (uint64_t)ml <= tot - REC_HDR) {
                    int64_t ts = (int64_t)uw_get64(rec + tot - (size_t)ml), unix_us;
                    /* A time no clock gives (beyond year 292000) is no time. */
                    if (!__builtin_add_overflow(ts, UW_PG_EPOCH_US, &unix_us)) {
                        out->have_xact = true;
                        out->xact_time_us = unix_us;
                        out->xact_lsn = lsn;
                    }
                }
            }
        }
        if (rmid == RM_XLOG_ID && (info & 0xF0) == XLOG_SWITCH)
            break; /* the rest of the segment is padding */
        prev_lsn = lsn;
        pos = p2;
    }
    free(rec);
    return 0;
}
