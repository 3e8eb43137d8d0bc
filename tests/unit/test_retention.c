/* The retention policy (common/repo/retention.c).
 *
 * The runbook's schedule is simulated for seven years (2019-2025): a full
 * backup every day at 04:00 UTC and an incremental at 00:00, 06:00, 12:00 and
 * 18:00, each incremental taken against the newest backup (as ue-basebackup
 * does), with the runbook's policy applied after every backup and what it
 * removes dropped. On chosen dates the backups left are compared with the set
 * expected, written out here as explicit dates (computed apart from the
 * policy: the Mondays of the last 90 days, the firsts of the months, ...).
 * Smaller cases cover the count policy, pins, the only-full and dependency
 * rules, backups in progress, WAL and history files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo/retention.h"
#include "unit.h"

#define HOUR 3600
#define DAY 86400

static int64_t at(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm);
}

static void label_of(int64_t t, bool full, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char s[32];
    strftime(s, sizeof s, "%Y%m%d-%H%M%S", &tm);
    snprintf(buf, len, "%.20s%c", s, full ? 'F' : 'I');
}

/* ---------------------------------------------------------- simulation -- */

typedef struct {
    char label[24];
    char prior[24];
    uw_ret_backup b;
} sim_backup;

typedef struct {
    sim_backup *v;
    size_t n, cap;
    int64_t t0;
    uw_ret_options o;
} sim;

/* One WAL segment per hour since the start. */
static uint64_t segno_at(const sim *s, int64_t t)
{
    return (uint64_t)((t - s->t0) / HOUR) + 1;
}

static void sim_take(sim *s, int64_t t, bool full)
{
    if (!full && !s->n)
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = uw_realloc(s->v, s->cap * sizeof *s->v);
    }
    sim_backup *x = &s->v[s->n];
    memset(x, 0, sizeof *x);
    label_of(t, full, x->label, sizeof x->label);
    if (!full)
        snprintf(x->prior, sizeof x->prior, "%s", s->v[s->n - 1].label);
    s->n++;
}

/* Rebuild the policy input (labels move when the array is compacted). */
static uw_ret_backup *sim_input(sim *s)
{
    uw_ret_backup *in = uw_calloc(s->n + 1, sizeof *in);
    for (size_t i = 0; i < s->n; i++) {
        sim_backup *x = &s->v[i];
        int64_t t = at(atoi(x->label) / 10000, atoi(x->label) / 100 % 100, atoi(x->label) % 100,
                       atoi(x->label + 9) / 10000, 0);
        in[i] = (uw_ret_backup){x->label,
                                x->label[15] == 'F',
                                x->prior[0] ? x->prior : NULL,
                                t,
                                t + 600,
                                1,
                                segno_at(s, t),
                                segno_at(s, t),
                                0,
                                false};
    }
    return in;
}

static void sim_expire(sim *s, int64_t now)
{
    uw_ret_backup *in = sim_input(s);
    uw_ret_result r;
    uw_retention_apply(in, s->n, &s->o, now, &r);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (r.rules[i])
            s->v[k++] = s->v[i];
    s->n = k;
    uw_ret_result_free(&r);
    free(in);
}

/* Run the schedule from the start up to and including day (y, mo, d); the
 * policy runs after each backup, 10 minutes after it started. */
static void sim_run_until(sim *s, int64_t *day, int64_t end_day)
{
    static const int hours[] = {0, 4, 6, 12, 18};
    for (; *day <= end_day; *day += DAY)
        for (int h = 0; h < 5; h++) {
            int64_t t = *day + hours[h] * HOUR;
            sim_take(s, t, hours[h] == 4);
            sim_expire(s, t + 600);
        }
}

typedef struct {
    char **v;
    size_t n;
} strset;

static void set_add(strset *s, const char *label)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], label))
            return;
    s->v = uw_realloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = uw_strdup(label);
}

static void set_free(strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "YYYYMMDD" dates: their 04:00 full backups. */
static void add_fulls(strset *s, const char *const *dates)
{
    for (; *dates; dates++) {
        char l[24];
        snprintf(l, sizeof l, "%s-040000F", *dates);
        set_add(s, l);
    }
}

/* Every backup of the schedule from..to (inclusive), fulls or incrementals. */
static void add_range(strset *s, int64_t from, int64_t to, bool full)
{
    static const int hours[] = {0, 4, 6, 12, 18};
    for (int64_t d = from - from % DAY; d <= to; d += DAY)
        for (int h = 0; h < 5; h++) {
            int64_t t = d + hours[h] * HOUR;
            if ((hours[h] == 4) != full || t < from || t > to)
                continue;
            char l[24];
            label_of(t, full, l, sizeof l);
            set_add(s, l);
        }
}

static void check_kept(const sim *s, strset *want, const char *when)
{
    char **have = uw_calloc(s->n + 1, sizeof *have);
    for (size_t i = 0; i < s->n; i++)
        have[i] = s->v[i].label;
    qsort(have, s->n, sizeof *have, cmp_str);
    qsort(want->v, want->n, sizeof *want->v, cmp_str);
    CHECKF(s->n == want->n, "%s: %zu backups kept, expected %zu", when, s->n, want->n);
    for (size_t i = 0, j = 0; i < s->n || j < want->n;) {
        int c = i == s->n ? 1 : j == want->n ? -1 : strcmp(have[i], want->v[j]);
        if (c < 0)
            CHECKF(false, "%s: %s kept but not expected", when, have[i++]);
        else if (c > 0)
            CHECKF(false, "%s: %s expected but not kept", when, want->v[j++]);
        else
            i++, j++;
    }
    free(have);
}

static void test_seven_years(void)
{
    uw_t_section("seven years of the runbook's schedule");
    sim s = {0};
    s.t0 = at(2019, 1, 1, 0, 0);
    uw_period_parse("7d", &s.o.incr);
    uw_period_parse("30d", &s.o.daily);
    uw_period_parse("90d", &s.o.weekly);
    uw_period_parse("12m", &s.o.monthly);
    uw_period_parse("7y", &s.o.yearly);
    int64_t day = s.t0;

    /* 2019-02-10, a Sunday, six weeks in: the first backup is the first of
     * its year, month and ISO week (2019-01-01 was a Tuesday). */
    sim_run_until(&s, &day, at(2019, 2, 10, 0, 0));
    strset w = {0};
    add_fulls(&w, (const char *const[]){"20190101", "20190107", "20190114", "20190121", "20190128",
                                        "20190204", "20190201", NULL});
    add_range(&w, at(2019, 1, 12, 0, 0), at(2019, 2, 10, 23, 0), true);
    /* Incrementals of the last 7 days, and those of 02-03 the first of them
     * (02-04 00:00) is built on. */
    add_range(&w, at(2019, 2, 3, 6, 0), at(2019, 2, 10, 23, 0), false);
    check_kept(&s, &w, "2019-02-10");
    set_free(&w);

    sim_run_until(&s, &day, at(2023, 3, 15, 0, 0));
    w = (strset){0};
    add_fulls(&w, (const char *const[]){
                      /* yearly */ "20190101", "20200101", "20210101", "20220101", "20230101",
                      /* monthly: since 2022-03-15 18:10 */
                      "20220401", "20220501", "20220601", "20220701", "20220801", "20220901",
                      "20221001", "20221101", "20221201", "20230201", "20230301",
                      /* weekly: Mondays since 2022-12-15 18:10 */
                      "20221219", "20221226", "20230102", "20230109", "20230116", "20230123",
                      "20230130", "20230206", "20230213", "20230220", "20230227", "20230306",
                      "20230313", NULL});
    add_range(&w, at(2023, 2, 14, 0, 0), at(2023, 3, 15, 23, 0), true);
    add_range(&w, at(2023, 3, 8, 6, 0), at(2023, 3, 15, 23, 0), false);
    check_kept(&s, &w, "2023-03-15");
    set_free(&w);

    sim_run_until(&s, &day, at(2025, 12, 31, 0, 0));
    w = (strset){0};
    add_fulls(&w, (const char *const[]){"20190101", "20200101", "20210101", "20220101", "20230101",
                                        "20240101", "20250101", "20250201", "20250301", "20250401",
                                        "20250501", "20250601", "20250701", "20250801", "20250901",
                                        "20251001", "20251101", "20251201", "20251006", "20251013",
                                        "20251020", "20251027", "20251103", "20251110", "20251117",
                                        "20251124", "20251208", "20251215", "20251222", "20251229",
                                        NULL});
    add_range(&w, at(2025, 12, 2, 0, 0), at(2025, 12, 31, 23, 0), true);
    add_range(&w, at(2025, 12, 24, 6, 0), at(2025, 12, 31, 23, 0), false);
    check_kept(&s, &w, "2025-12-31");
    set_free(&w);

    /* The next morning, the day's full not taken yet: 2019's yearly backup
     * leaves the 7 years. */
    int64_t now = at(2026, 1, 1, 5, 0);
    sim_expire(&s, now);
    bool has2019 = false, has2020 = false;
    for (size_t i = 0; i < s.n; i++) {
        has2019 |= !strcmp(s.v[i].label, "20190101-040000F");
        has2020 |= !strcmp(s.v[i].label, "20200101-040000F");
    }
    CHECKF(!has2019 && has2020, "2019 yearly goes on 2026-01-01 05:00 (cutoff 2019-01-01 05:00)");

    /* WAL: retention-archive=7 keeps the window of the newest 7 fulls, and
     * the start..stop of every other kept backup. */
    s.o.archive_count = 7;
    uw_ret_backup *in = sim_input(&s);
    uw_ret_result r;
    uw_retention_apply(in, s.n, &s.o, now, &r);
    uint64_t w0 = segno_at(&s, at(2025, 12, 25, 4, 0));
    CHECK(uw_ret_wal_needed(&r, 1, w0));
    CHECK(uw_ret_wal_needed(&r, 1, w0 + 5));
    CHECK(!uw_ret_wal_needed(&r, 1, w0 - 1));
    CHECK(uw_ret_wal_needed(&r, 2, w0 + 5)); /* a later timeline from a window backup */
    uint64_t y20 = segno_at(&s, at(2020, 1, 1, 4, 0));
    CHECK(uw_ret_wal_needed(&r, 1, y20));
    CHECK(!uw_ret_wal_needed(&r, 1, y20 + 1));
    CHECK(!uw_ret_wal_needed(&r, 1, y20 - 1));
    CHECK_U64(uw_ret_oldest_needed(&r, 1), y20);
    CHECK(uw_ret_history_needed(&r, 1) && uw_ret_history_needed(&r, 3));
    uw_ret_result_free(&r);
    /* Without retention-archive the window starts at the oldest kept backup. */
    s.o.archive_count = 0;
    uw_retention_apply(in, s.n, &s.o, now, &r);
    CHECK(uw_ret_wal_needed(&r, 1, y20 + 1));
    CHECK(!uw_ret_wal_needed(&r, 1, y20 - 1));
    uw_ret_result_free(&r);
    free(in);
    free(s.v);
}

/* ------------------------------------------------------- small cases -- */

#define B(label, full, prior, t)                                                                   \
    (uw_ret_backup)                                                                                \
    {                                                                                              \
        label, full, prior, t, (t) + 60, 1, (uint64_t)((t) / HOUR), (uint64_t)((t) / HOUR), 0,     \
            false                                                                                  \
    }

static unsigned rules_of(const uw_ret_backup *b, size_t n, const uw_ret_options *o, int64_t now,
                         const char *label)
{
    uw_ret_result r;
    uw_retention_apply(b, n, o, now, &r);
    unsigned x = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(b[i].label, label))
            x = r.rules[i];
    uw_ret_result_free(&r);
    return x;
}

static void test_count(void)
{
    uw_t_section("retention-full=N");
    int64_t t = at(2026, 1, 10, 4, 0);
    uw_ret_backup b[] = {
        B("F1", true, NULL, t - 3 * DAY),           B("I1", false, "F1", t - 3 * DAY + HOUR),
        B("F2", true, NULL, t - 2 * DAY),           B("I2", false, "F2", t - 2 * DAY + HOUR),
        B("F3", true, NULL, t - 1 * DAY),           B("I3a", false, "F3", t - 1 * DAY + HOUR),
        B("I3b", false, "I3a", t - DAY + 2 * HOUR),
    };
    size_t n = sizeof b / sizeof b[0];
    uw_ret_options o = {0};
    o.full_count = 2;
    CHECK(rules_of(b, n, &o, t, "F1") == 0);
    CHECK(rules_of(b, n, &o, t, "I1") == 0);
    CHECK(rules_of(b, n, &o, t, "F2") == (UW_RET_FULL_COUNT | UW_RET_DEPENDENCY));
    CHECK(rules_of(b, n, &o, t, "I2") == UW_RET_FULL_COUNT);
    CHECK(rules_of(b, n, &o, t, "I3b") == UW_RET_FULL_COUNT);
    /* With retention-incr, incrementals follow it (and keep their chain). */
    uw_period_parse("1d", &o.incr);
    CHECK(rules_of(b, n, &o, t, "I2") == 0);
    CHECK(rules_of(b, n, &o, t, "I3a") == (UW_RET_INCR | UW_RET_DEPENDENCY));
    CHECK(rules_of(b, n, &o, t, "F3") == (UW_RET_FULL_COUNT | UW_RET_DEPENDENCY));
    o.full_count = 1;
    CHECK(rules_of(b, n, &o, t, "F2") == 0);
    /* No rule at all: everything stays. */
    uw_ret_options none = {0};
    CHECK(rules_of(b, n, &none, t, "F1") == (UW_RET_NO_POLICY | UW_RET_DEPENDENCY));
    uw_ret_result r;
    uw_retention_apply(b, n, &none, t, &r);
    CHECK(r.keep_all_wal && uw_ret_wal_needed(&r, 1, 0));
    uw_ret_result_free(&r);
}

static void test_only_full_and_dependency(void)
{
    uw_t_section("only full, dependency, in progress");
    int64_t t = at(2026, 6, 1, 12, 0);
    uw_ret_options o = {0};
    uw_period_parse("30d", &o.daily);
    uw_period_parse("7d", &o.incr);
    uw_ret_backup one[] = {B("OLD", true, NULL, t - 400 * DAY)};
    CHECK(rules_of(one, 1, &o, t, "OLD") == UW_RET_ONLY_FULL);
    uw_ret_backup two[] = {B("A", true, NULL, t - 400 * DAY), B("B", true, NULL, t - 300 * DAY)};
    CHECK(rules_of(two, 2, &o, t, "A") == 0);
    CHECK(rules_of(two, 2, &o, t, "B") == UW_RET_ONLY_FULL);
    /* A kept incremental keeps its chain down to a full far outside 30d. */
    uw_ret_backup ch[] = {B("F", true, NULL, t - 60 * DAY), B("I1", false, "F", t - 59 * DAY),
                          B("I2", false, "I1", t - 2 * DAY), B("G", true, NULL, t - DAY)};
    CHECK(rules_of(ch, 4, &o, t, "I1") == UW_RET_DEPENDENCY);
    CHECK(rules_of(ch, 4, &o, t, "F") == UW_RET_DEPENDENCY);
    CHECK(rules_of(ch, 4, &o, t, "G") == UW_RET_DAILY);
    /* A backup in progress stays, and so does what it is built on. */
    uw_ret_backup ip[] = {B("F", true, NULL, t - 60 * DAY), B("G", true, NULL, t - DAY),
                          B("P", false, "F", 0)};
    ip[2].in_progress = true;
    CHECK(rules_of(ip, 3, &o, t, "P") == UW_RET_IN_PROGRESS);
    CHECK(rules_of(ip, 3, &o, t, "F") == UW_RET_DEPENDENCY);
}

static void test_pins(void)
{
    uw_t_section("pinned backups");
    int64_t t = at(2026, 6, 1, 12, 0);
    uw_ret_options o = {0};
    o.full_count = 1;
    uw_ret_backup b[] = {B("F1", true, NULL, t - 90 * DAY), B("I1", false, "F1", t - 89 * DAY),
                         B("F2", true, NULL, t - 60 * DAY), B("F3", true, NULL, t - DAY)};
    b[0].pinned_until = UW_PIN_FOREVER;
    b[2].pinned_until = t - 1; /* ended a second ago */
    CHECK(rules_of(b, 4, &o, t, "F1") == UW_RET_PINNED);
    CHECK(rules_of(b, 4, &o, t, "I1") == 0);
    CHECK(rules_of(b, 4, &o, t, "F2") == 0);
    b[2].pinned_until = t + 1;
    CHECK(rules_of(b, 4, &o, t, "F2") == UW_RET_PINNED);
    /* A pinned incremental keeps its chain. */
    b[0].pinned_until = 0;
    b[1].pinned_until = UW_PIN_FOREVER;
    CHECK(rules_of(b, 4, &o, t, "F1") == UW_RET_DEPENDENCY);
    char buf[256];
    CHECK_STR(uw_ret_rules_str(UW_RET_PINNED | UW_RET_DAILY, buf, sizeof buf),
              "retention-daily, pinned");
}

static void test_wal_timelines(void)
{
    uw_t_section("WAL and history per timeline");
    int64_t t = at(2026, 6, 1, 12, 0);
    uw_ret_options o = {0};
    o.full_count = 2;
    uw_ret_backup b[] = {B("F1", true, NULL, t - 3 * DAY), B("F2", true, NULL, t - 2 * DAY),
                         B("F3", true, NULL, t - DAY)};
    b[0].start_segno = 10, b[0].stop_segno = 11;
    b[1].start_segno = 20, b[1].stop_segno = 21, b[1].timeline = 2;
    b[2].start_segno = 30, b[2].stop_segno = 30, b[2].timeline = 3;
    uw_ret_result r;
    uw_retention_apply(b, 3, &o, t, &r);
    CHECK(r.rules[0] == 0);
    CHECK(!uw_ret_wal_needed(&r, 1, 10));
    CHECK(!uw_ret_wal_needed(&r, 1, 25)); /* timeline 1 is older than every window backup */
    CHECK(!uw_ret_wal_needed(&r, 2, 19));
    CHECK(uw_ret_wal_needed(&r, 2, 20) && uw_ret_wal_needed(&r, 2, 500));
    CHECK(uw_ret_wal_needed(&r, 3, 20));
    CHECK_U64(uw_ret_oldest_needed(&r, 2), 20);
    CHECK_U64(uw_ret_oldest_needed(&r, 1), UINT64_MAX);
    CHECK(!uw_ret_history_needed(&r, 1));
    CHECK(uw_ret_history_needed(&r, 2) && uw_ret_history_needed(&r, 3));
    uw_ret_result_free(&r);
    /* retention-archive=1: only F3's window; F2 keeps its start..stop. */
    o.archive_count = 1;
    uw_retention_apply(b, 3, &o, t, &r);
    CHECK(uw_ret_wal_needed(&r, 2, 21) && !uw_ret_wal_needed(&r, 2, 22));
    CHECK(uw_ret_wal_needed(&r, 3, 31));
    uw_ret_result_free(&r);
    /* Nothing kept to anchor the WAL (only backups in progress): none goes. */
    uw_ret_backup p[] = {B("P", true, NULL, 0)};
    p[0].in_progress = true;
    uw_retention_apply(p, 1, &o, t, &r);
    CHECK(r.keep_all_wal && uw_ret_wal_needed(&r, 1, 0));
    uw_ret_result_free(&r);
}

static void test_periods(void)
{
    uw_t_section("periods");
    uw_period p;
    CHECK(uw_period_parse("12m", &p) == 0 && p.n == 12 && p.unit == 'm');
    CHECK(uw_period_parse("7", &p) < 0);
    CHECK(uw_period_parse("d", &p) < 0);
    CHECK(uw_period_parse("0d", &p) < 0);
    CHECK(uw_period_parse("3x", &p) < 0);
    CHECK(uw_period_parse("3dd", &p) < 0);
    CHECK(uw_period_parse("99999999999d", &p) < 0);
    uw_period_parse("1m", &p);
    CHECK_INT(uw_period_cutoff(at(2024, 3, 31, 5, 0), p), at(2024, 2, 29, 5, 0));
    uw_period_parse("12m", &p);
    CHECK_INT(uw_period_cutoff(at(2024, 3, 31, 5, 0), p), at(2023, 3, 31, 5, 0));
    uw_period_parse("1y", &p);
    CHECK_INT(uw_period_cutoff(at(2024, 2, 29, 0, 0), p), at(2023, 2, 28, 0, 0));
    uw_period_parse("2w", &p);
    CHECK_INT(uw_period_cutoff(at(2024, 1, 15, 0, 0), p), at(2024, 1, 1, 0, 0));
    uw_period_parse("13m", &p);
    CHECK_INT(uw_period_cutoff(at(2024, 1, 15, 0, 0), p), at(2022, 12, 15, 0, 0));
}

int main(void)
{
    test_periods();
    test_count();
    test_only_full_and_dependency();
    test_pins();
    test_wal_timelines();
    test_seven_years();
    return uw_t_done("test_retention");
}
