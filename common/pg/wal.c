#include "pg/wal.h"
#include "core/bytes.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool hexn(const char *s, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return false; /* PostgreSQL writes upper case only */
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return true;
}

int uw_wal_parse(const char *name, uw_wal_name *out, uw_err *err)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(name);
    if (n == 16 && strcmp(name + 8, ".history") == 0 && hexn(name, 8, &out->tli) && out->tli) {
        out->kind = UW_WAL_HISTORY;
        return 0;
    }
    if (n >= 24 && hexn(name, 8, &out->tli) && hexn(name + 8, 8, &out->log) &&
        hexn(name + 16, 8, &out->seg) && out->tli) {
        const char *rest = name + 24;
        if (!*rest) {
            out->kind = UW_WAL_SEGMENT;
            return 0;
        }
        if (strcmp(rest, ".partial") == 0) {
            out->kind = UW_WAL_PARTIAL;
            return 0;
        }
        if (n == 40 && rest[0] == '.' && hexn(rest + 1, 8, &out->offset) &&
            strcmp(rest + 9, ".backup") == 0) {
            out->kind = UW_WAL_BACKUP;
            return 0;
        }
    }
    return uw_fail(err, UW_E_WAL_INVALID, "'%.100s' is not a WAL file name", name);
}

void uw_wal_format(const uw_wal_name *w, char *buf, size_t len)
{
    switch (w->kind) {
    case UW_WAL_HISTORY: snprintf(buf, len, "%08" PRIX32 ".history", w->tli); break;
    case UW_WAL_SEGMENT:
        snprintf(buf, len, "%08" PRIX32 "%08" PRIX32 "%08" PRIX32, w->tli, w->log, w->seg);
        break;
    case UW_WAL_PARTIAL:
        snprintf(buf, len, "%08" PRIX32 "%08" PRIX32 "%08" PRIX32 ".partial", w->tli, w->log,
                 w->seg);
        break;
    case UW_WAL_BACKUP:
        snprintf(buf, len, "%08" PRIX32 "%08" PRIX32 "%08" PRIX32 ".%08" PRIX32 ".backup", w->tli,
                 w->log, w->seg, w->offset);
        break;
    }
}

static uint64_t segs_per_log(uint32_t seg_size)
{
    return 0x100000000ULL / seg_size;
}

uint64_t uw_wal_segno(const uw_wal_name *w, uint32_t seg_size)
{
    return (uint64_t)w->log * segs_per_log(seg_size) + w->seg;
}

void uw_wal_from_segno(uint32_t tli, uint64_t segno, uint32_t seg_size, uw_wal_name *out)
{
    memset(out, 0, sizeof *out);
    out->kind = UW_WAL_SEGMENT;
    out->tli = tli;
    out->log = (uint32_t)(segno / segs_per_log(seg_size));
    out->seg = (uint32_t)(segno % segs_per_log(seg_size));
}

void uw_wal_next(const uw_wal_name *w, uint32_t seg_size, uw_wal_name *out)
{
    uw_wal_from_segno(w->tli, uw_wal_segno(w, seg_size) + 1, seg_size, out);
}

void uw_wal_from_lsn(uint32_t tli, uint64_t lsn, uint32_t seg_size, uw_wal_name *out)
{
    uw_wal_from_segno(tli, lsn / seg_size, seg_size, out);
}

/* 1..8 hex digits, as PostgreSQL's pg_lsn input accepts. */
static const char *hex32(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    int n = 0;
    for (; isxdigit((unsigned char)*s); s++, n++) {
        if (n == 8)
            return NULL;
        v = v << 4 |
            (uint32_t)(isdigit((unsigned char)*s) ? *s - '0'
                                                  : (tolower((unsigned char)*s) - 'a' + 10));
    }
    if (!n)
        return NULL;
    *out = v;
    return s;
}

int uw_lsn_parse(const char *s, uint64_t *lsn)
{
    uint32_t hi, lo;
    const char *p = hex32(s, &hi);
    if (!p || *p != '/' || !(p = hex32(p + 1, &lo)) || *p)
        return -1;
    *lsn = (uint64_t)hi << 32 | lo;
    return 0;
}

void uw_lsn_format(uint64_t lsn, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

bool uw_wal_seg_size_valid(uint64_t size)
{
    return size >= (1u << 20) && size <= (1u << 30) && (size & (size - 1)) == 0;
}

/* XLogLongPageHeaderData on little-endian hosts (PostgreSQL writes native
 * order; we support the platforms PostgreSQL's Debian packages target). */
int uw_wal_header_parse(const uint8_t *buf, size_t len, uw_wal_header *out, uw_err *err)
{
    if (len < UW_WAL_LONG_HEADER_LEN)
        return uw_fail(err, UW_E_WAL_INVALID, "file is too short to hold a WAL page header");
    out->magic = uw_get16(buf);
    uint16_t info = uw_get16(buf + 2);
    out->tli = uw_get32(buf + 4);
    out->pageaddr = uw_get64(buf + 8);
    if (!(info & 0x0002)) /* XLP_LONG_HEADER */
        return uw_fail(err, UW_E_WAL_INVALID, "first page lacks a long header");
    out->system_id = uw_get64(buf + 24);
    out->seg_size = uw_get32(buf + 32);
    out->block_size = uw_get32(buf + 36);
    if (!uw_wal_magic_version(out->magic))
        return uw_fail(err, UW_E_WAL_INVALID, "unknown WAL page magic 0x%04X", out->magic);
    return 0;
}

int uw_wal_magic_version(uint16_t magic)
{
    static const struct {
        uint16_t magic;
        int version;
    } map[] = {{0xD101, 11}, {0xD104, 12}, {0xD106, 13}, {0xD10D, 14},
               {0xD110, 15}, {0xD113, 16}, {0xD116, 17}, {0xD118, 18}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].magic == magic)
            return map[i].version;
    return 0;
}
