/* Restore targets (pitr/restore_target.c): timestamps with offsets, the
 * --target-* options and their refusals, descriptions, and which backups come
 * before a target. */
#include <stdint.h>
#include <string.h>

#include "restore.h"
#include "unit.h"

/* 2026-11-25 12:00:00 UTC, from `date -u -d '2026-11-25 12:00:00Z' +%s`. */
#define NOON INT64_C(1795608000)
#define US INT64_C(1000000)

static void time_ok(const char *s, int64_t want_us)
{
    int64_t got = 0;
    int rc = restore_parse_time(s, &got);
    if (CHECKF(rc == 0, "'%s' rejected (%d)", s, rc))
        CHECKF(got == want_us, "'%s': %lld, want %lld", s, (long long)got, (long long)want_us);
}

static void time_bad(const char *s, int want_rc)
{
    int64_t got = 0;
    int rc = restore_parse_time(s, &got);
    CHECKF(rc == want_rc, "'%s': rc %d, want %d", s, rc, want_rc);
}

static void test_parse_time(void)
{
    uw_t_section("restore_parse_time accepts");
    time_ok("2026-11-25 12:00:00+00", NOON * US);
    time_ok("2026-11-25T12:00:00Z", NOON * US);
    time_ok("2026-11-25t12:00:00z", NOON * US);
    time_ok("2026-11-25 12:00 UTC", NOON * US);
    time_ok("2026-11-25 12:00:00 gmt", NOON * US);
    time_ok("2026-11-25 12:00:00 +00:00", NOON * US);
    time_ok("2026-11-25 13:30:00+01:30", NOON * US);
    time_ok("2026-11-25 13:30:00+0130", NOON * US);
    time_ok("2026-11-25 07:00:00-05", NOON * US);
    time_ok("2026-11-25 10:30:00-01:30", NOON * US);
    time_ok("2026-11-25 12:00:00.5Z", NOON * US + 500000);
    time_ok("2026-11-25 12:00:00.000001Z", NOON * US + 1);
    /* Digits past microseconds are dropped, not rounded. */
    time_ok("2026-11-25 12:00:00.1234569Z", NOON * US + 123456);
    time_ok("2024-02-29 00:00:00Z", INT64_C(1709164800) * US);
    time_ok("1999-12-31 23:59:59+00", INT64_C(946684799) * US);
    time_ok("2026-11-25 12:00:00+15:59", (NOON - 15 * 3600 - 59 * 60) * US);

    uw_t_section("restore_parse_time needs an offset");
    time_bad("2026-11-25 12:00:00", -2);
    time_bad("2026-11-25 12:00", -2);
    time_bad("2026-11-25 12:00:00   ", -2);
    time_bad("2026-11-25 12:00:00 Europe/Paris", -3);
    time_bad("2026-11-25 12:00:00 CET", -3);
    time_bad("2026-11-25 12:00:00EST5EDT", -3);
    time_bad("2026-11-25 12:00:00Zulu", -3);
    time_bad("2026-11-25 12:00:00 Z ", -3);

    uw_t_section("restore_parse_time rejects");
    const char *bad[] = {
        "",
        "2026-11-25",
        "2026-11-25Z",
        "26-11-25 12:00Z",
        "2026/11/25 12:00Z",
        "2026-11-25_12:00Z",
        "2026-1-25 12:00Z",
        "2026-11-25 1:00Z",
        "2026-11-25 12Z",
        "2026-11-25 12:0Z",
        "2026-11-25 12:00:0Z",
        "2026-11-25 12:00:00.Z",
        "2026-13-01 00:00Z",
        "2026-00-01 00:00Z",
        "2026-11-00 00:00Z",
        "2026-11-32 00:00Z",
        "2026-02-30 00:00Z", /* normalised by timegm: refused */
        "2025-02-29 00:00Z",
        "2026-11-31 00:00Z",
        "2026-11-25 24:00Z",
        "2026-11-25 12:60Z",
        "2026-11-25 12:00:61Z",
        "2026-11-25 12:00:00+16",
        "2026-11-25 12:00:00+01:60",
        "2026-11-25 12:00:00+1",
        "2026-11-25 12:00:00+01:3",
        "2026-11-25 12:00:00+01:30:00",
        "2026-11-25 12:00:00+01x",
        "x2026-11-25 12:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        time_bad(bad[i], -1);
}

/* Parse with one given option set (index into restore_target_options). */
static int parse1(int idx, const char *value, const char *tli, restore_target *t, uw_err *err)
{
    restore_target_input in = {{NULL}, tli, "promote"};
    if (idx >= 0)
        in.given[idx] = value;
    uw_err_clear(err);
    return restore_target_parse(&in, t, err);
}

static int index_of(const char *option)
{
    for (int i = 0; i < RESTORE_TARGET_OPTIONS; i++)
        if (!strcmp(restore_target_options[i].option, option))
            return i;
    return -1;
}

static void target_bad(const char *option, const char *value, const char *tli, const char *msg)
{
    restore_target t;
    uw_err err;
    int rc = parse1(option ? index_of(option) : -1, value, tli, &t, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, msg);
}

static void test_parse_target(void)
{
    restore_target t;
    uw_err err;
    uw_t_section("restore_target_parse: kinds");
    CHECK_OK(parse1(-1, NULL, NULL, &t, &err) == 0, err);
    CHECK_INT(t.kind, RT_NONE);
    CHECK_INT(t.tli, 0);
    CHECK(t.tli_text == NULL);
    CHECK_STR(t.action, "promote");
    CHECK_OK(parse1(index_of("target-time"), "2026-11-25 13:00:00+01", NULL, &t, &err) == 0, err);
    CHECK_INT(t.kind, RT_TIME);
    CHECK_STR(t.option, "target-time");
    CHECK_STR(t.value, "2026-11-25 13:00:00+01");
    CHECK(t.time_us == NOON * US);
    CHECK_OK(parse1(index_of("target-lsn"), "16/B374D848", NULL, &t, &err) == 0, err);
    CHECK_INT(t.kind, RT_LSN);
    CHECK_U64(t.lsn, UINT64_C(0x16B374D848));
    CHECK_OK(parse1(index_of("target-xid"), "12345678901234567890", NULL, &t, &err) == 0, err);
    CHECK_INT(t.kind, RT_XID);
    CHECK_OK(parse1(index_of("target-name"), "before upgrade", NULL, &t, &err) == 0, err);
    CHECK_INT(t.kind, RT_NAME);
    char name63[64];
    memset(name63, 'n', 63);
    name63[63] = '\0';
    CHECK_OK(parse1(index_of("target-name"), name63, NULL, &t, &err) == 0, err);
    CHECK_OK(parse1(index_of("target"), "immediate", NULL, &t, &err) == 0, err);
    CHECK_INT(t.kind, RT_IMMEDIATE);
    CHECK_STR(t.option, "target");

    uw_t_section("restore_target_parse: timelines");
    CHECK_OK(parse1(-1, NULL, "latest", &t, &err) == 0, err);
    CHECK_INT(t.tli, 0);
    CHECK_STR(t.tli_text, "latest");
    CHECK_OK(parse1(-1, NULL, "current", &t, &err) == 0, err);
    CHECK_U64(t.tli, UINT32_MAX);
    CHECK_OK(parse1(-1, NULL, "5", &t, &err) == 0, err);
    CHECK_INT(t.tli, 5);
    CHECK_OK(parse1(-1, NULL, "4294967294", &t, &err) == 0, err);
    CHECK_U64(t.tli, UINT32_MAX - 1);
    /* Leading blanks, as PostgreSQL's own strtoul-based check takes them. */
    CHECK_OK(parse1(-1, NULL, " 5", &t, &err) == 0, err);
    CHECK_INT(t.tli, 5);
    const char *bad_tli[] = {"0", "-1",     "4294967295", "99999999999999999999", "abc", "5x",
                             "",  "Latest", "0x5"};
    for (size_t i = 0; i < sizeof bad_tli / sizeof bad_tli[0]; i++)
        target_bad(NULL, NULL, bad_tli[i], "is not latest, current or a timeline number");

    uw_t_section("restore_target_parse rejects");
    target_bad("target-time", "2026-11-25 12:00:00", NULL, "has no time zone");
    target_bad("target-time", "2026-11-25 12:00:00 Europe/Paris", NULL,
               "time zone names are not supported");
    target_bad("target-time", "yesterday", NULL, "is not a timestamp like");
    target_bad("target-lsn", "16B374D848", NULL, "is not an LSN like");
    target_bad("target-lsn", "", NULL, "is not an LSN like");
    target_bad("target-lsn", "0/G", NULL, "is not an LSN like");
    target_bad("target-xid", "", NULL, "is not a transaction id");
    target_bad("target-xid", "12a", NULL, "is not a transaction id");
    target_bad("target-xid", "-1", NULL, "is not a transaction id");
    target_bad("target-xid", "123456789012345678901", NULL, "is not a transaction id");
    char name64[65];
    memset(name64, 'n', 64);
    name64[64] = '\0';
    target_bad("target-name", name64, NULL, "is longer than 63 bytes");

    uw_t_section("restore_target_parse: one target only");
    restore_target_input in = {{NULL}, NULL, "pause"};
    in.given[index_of("target-lsn")] = "0/1";
    in.given[index_of("target-name")] = "x";
    uw_err_clear(&err);
    CHECK_FAIL_CODE(restore_target_parse(&in, &t, &err) < 0, err, UW_E_OPTION);
    CHECK_STR(err.msg, "options '--target-lsn' and '--target-name' are mutually exclusive: give "
                       "one target");
    in.given[index_of("target")] = "immediate";
    in.given[index_of("target-time")] = "2026-11-25 12:00Z";
    CHECK_FAIL_CODE(restore_target_parse(&in, &t, &err) < 0, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "'--target-time' and '--target-lsn'");
}

static void test_describe(void)
{
    uw_t_section("restore_target_describe");
    restore_target t;
    uw_err err;
    char buf[160];
    parse1(-1, NULL, NULL, &t, &err);
    restore_target_describe(&t, buf, sizeof buf);
    CHECK_STR(buf, "the end of the archived WAL");
    parse1(index_of("target-time"), "2026-11-25 12:00:00.25-01", NULL, &t, &err);
    restore_target_describe(&t, buf, sizeof buf);
    CHECK_STR(buf, "time 2026-11-25T13:00:00.250000Z");
    parse1(index_of("target-lsn"), "0/16B3D48", NULL, &t, &err);
    restore_target_describe(&t, buf, sizeof buf);
    CHECK_STR(buf, "LSN 0/16B3D48");
    parse1(index_of("target-xid"), "742", NULL, &t, &err);
    restore_target_describe(&t, buf, sizeof buf);
    CHECK_STR(buf, "transaction 742");
    parse1(index_of("target-name"), "it's", NULL, &t, &err);
    restore_target_describe(&t, buf, sizeof buf);
    CHECK_STR(buf, "restore point 'it's'");
    parse1(index_of("target"), "immediate", NULL, &t, &err);
    restore_target_describe(&t, buf, sizeof buf);
    CHECK_STR(buf, "the end of the backup (immediate)");
}

static void test_before_target(void)
{
    uw_t_section("restore_before_target");
    restore_target t;
    uw_err err;
    uw_manifest m;
    memset(&m, 0, sizeof m);
    m.stop_time = NOON;
    m.stop_lsn = 0x3000028;
    /* Consistent somewhere in [stop_time, stop_time + 1): only a target from
     * the next whole second on is surely after it. */
    parse1(index_of("target-time"), "2026-11-25 12:00:01Z", NULL, &t, &err);
    CHECK(restore_before_target(&t, &m));
    parse1(index_of("target-time"), "2026-11-25 12:00:00.999999Z", NULL, &t, &err);
    CHECK(!restore_before_target(&t, &m));
    parse1(index_of("target-time"), "2026-11-25 12:00:00Z", NULL, &t, &err);
    CHECK(!restore_before_target(&t, &m));
    parse1(index_of("target-time"), "2026-11-25 11:00:00Z", NULL, &t, &err);
    CHECK(!restore_before_target(&t, &m));
    parse1(index_of("target-lsn"), "0/3000028", NULL, &t, &err);
    CHECK(restore_before_target(&t, &m));
    parse1(index_of("target-lsn"), "0/3000027", NULL, &t, &err);
    CHECK(!restore_before_target(&t, &m));
    parse1(index_of("target-lsn"), "1/0", NULL, &t, &err);
    CHECK(restore_before_target(&t, &m));
    /* xid, name, immediate, none: no position to compare before recovery. */
    parse1(index_of("target-xid"), "1", NULL, &t, &err);
    CHECK(restore_before_target(&t, &m));
    parse1(index_of("target-name"), "x", NULL, &t, &err);
    CHECK(restore_before_target(&t, &m));
    parse1(index_of("target"), "immediate", NULL, &t, &err);
    CHECK(restore_before_target(&t, &m));
    parse1(-1, NULL, NULL, &t, &err);
    CHECK(restore_before_target(&t, &m));
}

int main(void)
{
    test_parse_time();
    test_parse_target();
    test_describe();
    test_before_target();
    return uw_t_done("test_restore_target");
}
