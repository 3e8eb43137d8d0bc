/* WAL file names, LSNs, segment arithmetic and the long page header. */
#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "pg/wal.h"

static void check_parse(const char *name, uw_wal_kind kind, uint32_t tli, uint32_t log,
                        uint32_t seg, uint32_t offset)
{
    uw_wal_name w;
    uw_err err;
    uw_err_clear(&err);
    int rc = uw_wal_parse(name, &w, &err);
    if (!CHECKF(rc == 0, "'%s' rejected: %s", name, err.msg))
        return;
    CHECKF(w.kind == kind, "'%s': kind %d, want %d", name, (int)w.kind, (int)kind);
    CHECK_U64(w.tli, tli);
    if (kind != UW_WAL_HISTORY) {
        CHECK_U64(w.log, log);
        CHECK_U64(w.seg, seg);
    }
    if (kind == UW_WAL_BACKUP)
        CHECK_U64(w.offset, offset);
    /* Round trip: formatting gives back exactly the input. */
    char buf[64];
    uw_wal_format(&w, buf, sizeof buf);
    CHECK_STR(buf, name);
}

static void check_reject(const char *name)
{
    uw_wal_name w;
    uw_err err;
    uw_err_clear(&err);
    int rc = uw_wal_parse(name, &w, &err);
    CHECKF(rc == -1 && err.code == UW_E_WAL_INVALID, "'%s' accepted (rc %d, code %d)", name, rc,
           (int)err.code);
}

static void test_parse(void)
{
    uw_t_section("uw_wal_parse accepts");
    check_parse("000000010000000000000001", UW_WAL_SEGMENT, 1, 0, 1, 0);
    check_parse("0000000A00000016000000B3", UW_WAL_SEGMENT, 10, 0x16, 0xB3, 0);
    check_parse("FFFFFFFFFFFFFFFFFFFFFFFF", UW_WAL_SEGMENT, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0);
    check_parse("000000020000000300000004.partial", UW_WAL_PARTIAL, 2, 3, 4, 0);
    check_parse("000000010000000000000002.00000028.backup", UW_WAL_BACKUP, 1, 0, 2, 0x28);
    check_parse("0000000300000001000000FE.00A1B2C3.backup", UW_WAL_BACKUP, 3, 1, 0xFE, 0xA1B2C3);
    check_parse("00000002.history", UW_WAL_HISTORY, 2, 0, 0, 0);
    check_parse("0000ABCD.history", UW_WAL_HISTORY, 0xABCD, 0, 0, 0);

    uw_t_section("uw_wal_parse rejects");
    const char *bad[] = {
        "",
        "0",
        "00000001000000000000000a",         /* lower-case hex */
        "00000001000000000000000a.partial", /* lower-case hex */
        "0000000a.history",
        "000000010000000000000002.0000002a.backup",
        "00000001000000000000001",   /* 23 characters */
        "0000000100000000000000011", /* 25 characters */
        "000000010000000000000001.",
        "000000000000000000000001", /* timeline 0 */
        "00000000.history",
        "000000000000000000000001.partial",
        "000000000000000000000002.00000028.backup",
        "0000001.history",
        "000000001.history",
        "00000001.History",
        "00000001.historyx",
        "garbage",
        "G00000010000000000000001",
        "0000000100000000000000G1",
        " 00000001000000000000001",
        "000000010000000000000001 ",
        "000000010000000000000001.partia",
        "000000010000000000000001.partial.partial",
        "000000010000000000000001.PARTIAL",
        "000000010000000000000002.00000028",
        "000000010000000000000002.0000028.backup",
        "000000010000000000000002.000000028.backup",
        "000000010000000000000002.00000028.backupx",
        "000000010000000000000002.00000028.Backup",
        "000000010000000000000002.00000028_backup",
        "/000000010000000000000001",
        "../000000010000000000000001",
        "x/000000010000000000000001",
        "000000010000000000000001/",
        "000000010000000000000001/x",
        "000000010000000000000001/../../etc/passwd",
        "00000001/history",
        "000000010000000000000001\n",
        "0x0000010000000000000001",
        "-00000010000000000000001",
        "+00000010000000000000001",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_reject(bad[i]);
    /* The message names the file (truncated) and err may be NULL. */
    uw_wal_name w;
    uw_err err;
    uw_err_clear(&err);
    uw_wal_parse("not-a-wal", &w, &err);
    CHECK_CONTAINS(err.msg, "not-a-wal");
    CHECK_INT(uw_wal_parse("not-a-wal", &w, NULL), -1);
}

static void check_next(const char *from, uint32_t seg_size, const char *want)
{
    uw_wal_name w, n;
    char buf[64];
    if (!CHECKF(uw_wal_parse(from, &w, NULL) == 0, "'%s'", from))
        return;
    uw_wal_next(&w, seg_size, &n);
    uw_wal_format(&n, buf, sizeof buf);
    CHECKF(strcmp(buf, want) == 0, "next(%s, %u) = %s, want %s", from, seg_size, buf, want);
    CHECK_INT(n.kind, UW_WAL_SEGMENT);
    /* segno arithmetic is consistent with next */
    CHECK_U64(uw_wal_segno(&n, seg_size), uw_wal_segno(&w, seg_size) + 1);
}

static void test_next(void)
{
    const uint32_t MiB = 1u << 20;
    uw_t_section("uw_wal_next 16 MiB");
    check_next("000000010000000000000001", 16 * MiB, "000000010000000000000002");
    check_next("0000000100000000000000FE", 16 * MiB, "0000000100000000000000FF");
    check_next("0000000100000000000000FF", 16 * MiB, "000000010000000100000000");
    check_next("00000005000000AB000000FF", 16 * MiB, "00000005000000AC00000000");
    check_next("000000010000000000000009", 16 * MiB, "00000001000000000000000A");

    uw_t_section("uw_wal_next 64 MiB");
    check_next("00000001000000000000003E", 64 * MiB, "00000001000000000000003F");
    check_next("00000001000000000000003F", 64 * MiB, "000000010000000100000000");

    uw_t_section("uw_wal_next 1 GiB");
    check_next("000000010000000000000000", 1024 * MiB, "000000010000000000000001");
    check_next("000000010000000000000002", 1024 * MiB, "000000010000000000000003");
    check_next("000000010000000000000003", 1024 * MiB, "000000010000000100000000");
    check_next("000000020000000700000003", 1024 * MiB, "000000020000000800000000");

    uw_t_section("uw_wal_next 1 MiB");
    check_next("000000010000000000000FFF", 1 * MiB, "000000010000000100000000");

    uw_t_section("uw_wal_segno / from_segno");
    uw_wal_name w;
    uw_wal_from_segno(3, 0x100, 16 * MiB, &w);
    char buf[64];
    uw_wal_format(&w, buf, sizeof buf);
    CHECK_STR(buf, "000000030000000100000000");
    uw_wal_from_segno(3, 0x1FF, 16 * MiB, &w);
    uw_wal_format(&w, buf, sizeof buf);
    CHECK_STR(buf, "0000000300000001000000FF");
    uw_wal_from_segno(3, 9, 1024 * MiB, &w);
    uw_wal_format(&w, buf, sizeof buf);
    CHECK_STR(buf, "000000030000000200000001");
    uw_wal_parse("0000000100000016000000B3", &w, NULL);
    CHECK_U64(uw_wal_segno(&w, 16 * MiB), 0x16B3);
}

static void check_from_lsn(uint64_t lsn, uint32_t seg_size, const char *want)
{
    uw_wal_name w;
    char buf[64];
    uw_wal_from_lsn(1, lsn, seg_size, &w);
    uw_wal_format(&w, buf, sizeof buf);
    CHECKF(strcmp(buf, want) == 0, "from_lsn(%llx, %u) = %s, want %s", (unsigned long long)lsn,
           seg_size, buf, want);
}

static void test_lsn(void)
{
    const uint32_t MiB = 1u << 20;
    uw_t_section("uw_wal_from_lsn");
    /* pg_walfile_name('16/B374D848') on a 16 MiB cluster */
    check_from_lsn(0x16B374D848ULL, 16 * MiB, "0000000100000016000000B3");
    check_from_lsn(0, 16 * MiB, "000000010000000000000000");
    check_from_lsn(0xFFFFFFULL, 16 * MiB, "000000010000000000000000");
    check_from_lsn(0x1000000ULL, 16 * MiB, "000000010000000000000001");
    check_from_lsn(0xFFFFFFFFULL, 16 * MiB, "0000000100000000000000FF");
    check_from_lsn(0x100000000ULL, 16 * MiB, "000000010000000100000000");
    check_from_lsn(0x16B374D848ULL, 1024 * MiB, "000000010000001600000002");
    check_from_lsn(0x16B374D848ULL, 64 * MiB, "00000001000000160000002C");

    uw_t_section("uw_lsn_parse / uw_lsn_format");
    uint64_t lsn = 0;
    CHECK_INT(uw_lsn_parse("16/B374D848", &lsn), 0);
    CHECK_U64(lsn, 0x16B374D848ULL);
    CHECK_INT(uw_lsn_parse("0/0", &lsn), 0);
    CHECK_U64(lsn, 0);
    CHECK_INT(uw_lsn_parse("FFFFFFFF/FFFFFFFF", &lsn), 0);
    CHECK_U64(lsn, UINT64_MAX);
    CHECK_INT(uw_lsn_parse("abc/def", &lsn), 0); /* PostgreSQL accepts lower case here */
    CHECK_U64(lsn, 0xABC00000DEFULL);
    const char *bad[] = {"16",   "x/1",  "1/",    "100000000/0", "0/100000000", "",
                         "/1",   "1//2", "1/2/3", "1/2x",        " 1/2",        "1/ 2",
                         "-1/2", "1/-2", "1:2",   "1/2 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lsn = 0x1234;
        CHECKF(uw_lsn_parse(bad[i], &lsn) == -1, "'%s' accepted as %llx", bad[i],
               (unsigned long long)lsn);
        CHECKF(lsn == 0x1234, "'%s' modified the output on failure", bad[i]);
    }
    char buf[32];
    uw_lsn_format(0x16B374D848ULL, buf, sizeof buf);
    CHECK_STR(buf, "16/B374D848");
    uw_lsn_format(0, buf, sizeof buf);
    CHECK_STR(buf, "0/0");
    uw_lsn_format(UINT64_MAX, buf, sizeof buf);
    CHECK_STR(buf, "FFFFFFFF/FFFFFFFF");
    uw_lsn_format(0x100000001ULL, buf, sizeof buf);
    CHECK_STR(buf, "1/1");
    /* round trip on a spread of values */
    uint64_t v = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 200; i++) {
        v ^= v << 13;
        v ^= v >> 7;
        v ^= v << 17;
        uint64_t back = 0;
        uw_lsn_format(v, buf, sizeof buf);
        if (!CHECKF(uw_lsn_parse(buf, &back) == 0 && back == v, "round trip of %s", buf))
            break;
    }

    uw_t_section("uw_wal_seg_size_valid");
    for (int shift = 20; shift <= 30; shift++)
        CHECKF(uw_wal_seg_size_valid(1ULL << shift), "2^%d rejected", shift);
    const uint64_t invalid[] = {0,
                                1,
                                1u << 19,
                                (1u << 20) - 1,
                                (1u << 20) + 1,
                                3u << 20,
                                (16u << 20) + 4096,
                                1ULL << 31,
                                1ULL << 32,
                                1ULL << 40,
                                UINT64_MAX,
                                (1ULL << 30) + (1ULL << 29)};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        CHECKF(!uw_wal_seg_size_valid(invalid[i]), "%llu accepted", (unsigned long long)invalid[i]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* XLogLongPageHeaderData: xlp_magic u16, xlp_info u16, xlp_tli u32, xlp_pageaddr u64,
 * xlp_rem_len u32, (pad 4), xlp_sysid u64, xlp_seg_size u32, xlp_xlog_blcksz u32. */
static void make_header(uint8_t *h, uint16_t magic, uint16_t info)
{
    memset(h, 0, 8192);
    put16(h, magic);
    put16(h + 2, info);
    put32(h + 4, 3);
    put64(h + 8, 0x16B3000000ULL);
    put32(h + 16, 0);
    put64(h + 24, 7234567890123456789ULL);
    put32(h + 32, 16u << 20);
    put32(h + 36, 8192);
}

static void test_header(void)
{
    uw_t_section("uw_wal_header_parse");
    static uint8_t h[8192];
    uw_wal_header hdr;
    uw_err err;
    uw_err_clear(&err);
    make_header(h, 0xD110, 0x0002);
    CHECK_OK(uw_wal_header_parse(h, sizeof h, &hdr, &err) == 0, err);
    CHECK_U64(hdr.magic, 0xD110);
    CHECK_U64(hdr.tli, 3);
    CHECK_U64(hdr.pageaddr, 0x16B3000000ULL);
    CHECK_U64(hdr.system_id, 7234567890123456789ULL);
    CHECK_U64(hdr.seg_size, 16u << 20);
    CHECK_U64(hdr.block_size, 8192);
    CHECK_INT(uw_wal_magic_version(hdr.magic), 15);

    /* Exactly the long header is enough; other info bits do not matter. */
    make_header(h, 0xD110, 0x0002 | 0x0001 | 0x0004);
    CHECK_OK(uw_wal_header_parse(h, UW_WAL_LONG_HEADER_LEN, &hdr, &err) == 0, err);
    CHECK_U64(hdr.system_id, 7234567890123456789ULL);

    /* Every supported magic parses. */
    const struct {
        uint16_t magic;
        int version;
    } magics[] = {{0xD101, 11}, {0xD104, 12}, {0xD106, 13}, {0xD10D, 14},
                  {0xD110, 15}, {0xD113, 16}, {0xD116, 17}};
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++) {
        CHECK_INT(uw_wal_magic_version(magics[i].magic), magics[i].version);
        make_header(h, magics[i].magic, 0x0002);
        uw_err_clear(&err);
        CHECK_OK(uw_wal_header_parse(h, sizeof h, &hdr, &err) == 0, err);
    }

    uw_t_section("uw_wal_header_parse rejects");
    make_header(h, 0xD110, 0x0002);
    for (size_t len = 0; len < UW_WAL_LONG_HEADER_LEN; len += (len < 8 ? 1 : 7)) {
        uw_err_clear(&err);
        CHECK_FAIL_CODE(uw_wal_header_parse(h, len, &hdr, &err) < 0, err, UW_E_WAL_INVALID);
    }
    uw_err_clear(&err);
    CHECK_FAIL_CODE(uw_wal_header_parse(h, UW_WAL_LONG_HEADER_LEN - 1, &hdr, &err) < 0, err,
                    UW_E_WAL_INVALID);
    make_header(h, 0xD110, 0x0000);
    uw_err_clear(&err);
    CHECK_FAIL_CODE(uw_wal_header_parse(h, sizeof h, &hdr, &err) < 0, err, UW_E_WAL_INVALID);
    make_header(h, 0xD110, 0x0001 | 0x0004); /* first-is-contrecord, is-partial, no long */
    uw_err_clear(&err);
    CHECK_FAIL_CODE(uw_wal_header_parse(h, sizeof h, &hdr, &err) < 0, err, UW_E_WAL_INVALID);
    const uint16_t unknown[] = {0x0000, 0xFFFF, 0xD0FF, 0xD111, 0x10D1, 0xD100};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        make_header(h, unknown[i], 0x0002);
        uw_err_clear(&err);
        CHECK_FAIL_CODE(uw_wal_header_parse(h, sizeof h, &hdr, &err) < 0, err, UW_E_WAL_INVALID);
        CHECK_INT(uw_wal_magic_version(unknown[i]), 0);
    }
    /* Big-endian byte order of a valid magic is not accepted. */
    make_header(h, 0x10D1, 0x0200);
    uw_err_clear(&err);
    CHECK_FAIL_CODE(uw_wal_header_parse(h, sizeof h, &hdr, &err) < 0, err, UW_E_WAL_INVALID);
    /* Zero-filled page (a pre-allocated but never written segment). */
    memset(h, 0, sizeof h);
    uw_err_clear(&err);
    CHECK_FAIL_CODE(uw_wal_header_parse(h, sizeof h, &hdr, &err) < 0, err, UW_E_WAL_INVALID);
}

int main(void)
{
    test_parse();
    test_next();
    test_lsn();
    test_header();
    return uw_t_done("test_wal");
}
