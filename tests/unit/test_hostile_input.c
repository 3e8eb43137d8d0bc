/* Parsers fed the inputs the fuzzers (tests/fuzz) found them failing on: each
 * section is one fixed bug, with its input (the same bytes are in the fuzz
 * corpus). The memory errors among them show under the clang ASan/UBSan build
 * of CI; the results are checked in every build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/wal.h"
#include "repo/archive_info.h"
#include "repo/manifest.h"
#include "storage/http.h"
#include "unit.h"

/* A copy of exactly len bytes, so that a read past the end is seen. */
static uint8_t *exact(const void *data, size_t len)
{
    uint8_t *b = malloc(len);
    memcpy(b, data, len);
    return b;
}

static void test_wal_short_segment(void)
{
    uw_t_section("WAL decoder: segment shorter than a page");
    /* A long page header (PostgreSQL 15 magic, 8 KiB pages) and one byte of
     * a record: the decoder read the record length, and copied the record,
     * past the end of the buffer. */
    uint8_t seg[41] = {0};
    uint64_t start = 0x1000000;
    seg[0] = 0x10, seg[1] = 0xd1; /* magic */
    seg[2] = 0x02;                /* XLP_LONG_HEADER */
    for (int i = 0; i < 8; i++)
        seg[8 + i] = (uint8_t)(start >> (8 * i)); /* xlp_pageaddr */
    seg[38] = 1;                                  /* xlp_xlog_blcksz = 65536 */
    uw_wal_end end;
    uw_err err;
    uint8_t *b = exact(seg, sizeof seg);
    CHECK(uw_wal_decode_segment(b, sizeof seg, start, 16u << 20, &end, &err) == 0);
    CHECK(end.end_lsn == start && !end.have_xact);
    free(b);
    /* A record header claiming more than the buffer holds, inside page 0. */
    uint8_t page[64] = {0};
    memcpy(page, seg, 40);
    page[40] = 200; /* xl_tot_len */
    b = exact(page, sizeof page);
    CHECK(uw_wal_decode_segment(b, sizeof page, start, 16u << 20, &end, &err) == 0);
    CHECK(end.end_lsn == start);
    free(b);
}

static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return crc;
}

static void test_wal_commit_time_overflow(void)
{
    uw_t_section("WAL decoder: commit time out of range");
    /* One valid commit record (CRC and all) whose timestamp is INT64_MAX:
     * adding the PostgreSQL epoch overflowed (UBSan). */
    uint8_t seg[74] = {0};
    uint64_t start = 0x1000000;
    seg[0] = 0x10, seg[1] = 0xd1, seg[2] = 0x02;
    for (int i = 0; i < 8; i++)
        seg[8 + i] = (uint8_t)(start >> (8 * i));
    seg[37] = 0x20; /* 8 KiB pages */
    uint8_t *rec = seg + 40;
    rec[0] = 34;   /* xl_tot_len: 24 + 2 + 8 */
    rec[17] = 1;   /* RM_XACT_ID, info 0: commit */
    rec[24] = 255; /* XLR_BLOCK_ID_DATA_SHORT */
    rec[25] = 8;
    memset(rec + 26, 0xff, 7);
    rec[33] = 0x7f; /* the timestamp: INT64_MAX */
    uint32_t crc = crc32c(0xFFFFFFFFu, rec + 24, 10);
    crc = crc32c(crc, rec, 20) ^ 0xFFFFFFFFu;
    for (int i = 0; i < 4; i++)
        rec[20 + i] = (uint8_t)(crc >> (8 * i));
    uw_wal_end end;
    uw_err err;
    uint8_t *b = exact(seg, sizeof seg);
    CHECK(uw_wal_decode_segment(b, sizeof seg, start, 16u << 20, &end, &err) == 0);
    CHECK(end.end_lsn == start + 40 + 34); /* the record is read */
    CHECK(!end.have_xact);                 /* but its time is none */
    /* the same record with a real time (2026-11-30 12:00:00 UTC) */
    uint64_t ts = (uint64_t)(INT64_C(1764504000000000) - UW_PG_EPOCH_US);
    for (int i = 0; i < 8; i++)
        b[40 + 26 + i] = (uint8_t)(ts >> (8 * i));
    crc = crc32c(0xFFFFFFFFu, b + 40 + 24, 10);
    crc = crc32c(crc, b + 40, 20) ^ 0xFFFFFFFFu;
    for (int i = 0; i < 4; i++)
        b[40 + 20 + i] = (uint8_t)(crc >> (8 * i));
    CHECK(uw_wal_decode_segment(b, sizeof seg, start, 16u << 20, &end, &err) == 0);
    CHECK(end.have_xact && end.xact_time_us == INT64_C(1764504000000000));
    CHECK(end.xact_lsn == start + 40);
    free(b);
}

/* A rendered manifest with one [backup] line replaced, resealed with a valid
 * checksum (as someone with write access to the repository can). */
static char *manifest_with(const char *line)
{
    uw_manifest m;
    uw_manifest_init(&m);
    snprintf(m.id, sizeof m.id, "20261130-120000F");
    snprintf(m.type, sizeof m.type, "full");
    m.timeline = 1;
    m.pg_version = 15;
    m.wal_seg_size = 16u << 20;
    snprintf(m.compress_type, sizeof m.compress_type, "zstd");
    char *text = uw_manifest_render(&m);
    uw_manifest_free(&m);
    char *p = strstr(text, "pg-version=15\n"), *ck = strstr(text, "checksum=");
    char *out = malloc(strlen(text) + strlen(line) + 100);
    size_t n = (size_t)(p - text);
    memcpy(out, text, n);
    n += (size_t)sprintf(out + n, "%s\n", line);
    p += strlen("pg-version=15\n");
    memcpy(out + n, p, (size_t)(ck - p));
    n += (size_t)(ck - p);
    uint8_t d[32];
    char hex[65];
    uw_sha256(out, n, d);
    uw_hex(d, 32, hex);
    sprintf(out + n, "checksum=%s\n", hex);
    free(text);
    return out;
}

static void test_manifest_pg_version(void)
{
    uw_t_section("manifest: pg-version beyond an int");
    /* Accepted and truncated to a negative int, which the manifest's own
     * render then wrote back as a line its parser refuses. */
    uw_manifest m;
    uw_err err;
    char *t = manifest_with("pg-version=5312345678901234567");
    CHECK(uw_manifest_parse(t, &m, &err) < 0 && err.code == UW_E_REPO_FORMAT);
    uw_manifest_free(&m);
    free(t);
    t = manifest_with("pg-version=16");
    CHECK(uw_manifest_parse(t, &m, &err) == 0 && m.pg_version == 16);
    uw_manifest_free(&m);
    free(t);
}

static void test_http_status(void)
{
    uw_t_section("HTTP: status line with a huge status");
    char reason[64];
    /* The digits were accumulated into a long without bound (UBSan: signed
     * overflow). */
    const char *line = "HTTP/1.1 99999999999999999999 Service Unavailable";
    long st = uw_http_status_line(line, strlen(line), reason, sizeof reason);
    CHECKF(st >= 100000, "status %ld", st);
    CHECK(strcmp(reason, "Service Unavailable") == 0);
    line = "HTTP/1.1 503 Slow Down";
    CHECK(uw_http_status_line(line, strlen(line), reason, sizeof reason) == 503);
    CHECK(strcmp(reason, "Slow Down") == 0);
}

static void test_http_retry_after(void)
{
    uw_t_section("HTTP: huge Retry-After");
    /* strtol() saturates at LONG_MAX, then * 1000 overflowed (UBSan). */
    CHECK(uw_http_retry_after_ms("99999999999999999999") == 86400L * 1000);
    CHECK(uw_http_retry_after_ms("3") == 3000);
    CHECK(uw_http_retry_after_ms("Wed, 21 Oct 2026 07:28:00 GMT") == -1);
}

int main(void)
{
    test_wal_short_segment();
    test_wal_commit_time_overflow();
    test_manifest_pg_version();
    test_http_status();
    test_http_retry_after();
    return uw_t_done("test_hostile_input");
}
