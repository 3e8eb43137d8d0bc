/* Backup choice (pitr/restore_select.c): newest qualifying backup first, by
 * target and by the history of the timeline recovery follows, across
 * repositories, with --set, and the messages when nothing qualifies. The
 * archive's timelines are a table here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "restore.h"
#include "unit.h"

#define NOON INT64_C(1795608000) /* 2026-11-25 12:00:00 UTC */

/* ------------------------------------------------- a table of timelines -- */

/* Timeline 2 forked from 1 at 0/4000000, timeline 3 from 2 at 0/8000000;
 * timeline 5 has a history file that cannot be read. */
typedef struct {
    uint32_t tli;
    uw_tl_entry e[3];
    size_t n;
} fake_history;

static const fake_history histories[] = {
    {2, {{1, 0, 0x4000000}, {2, 0x4000000, UINT64_MAX}}, 2},
    {3, {{1, 0, 0x4000000}, {2, 0x4000000, 0x8000000}, {3, 0x8000000, UINT64_MAX}}, 3},
};

typedef struct {
    uint32_t newest; /* history files exist up to this timeline */
    int calls;
} fake_archive;

static uint32_t fake_latest(void *arg, uint32_t from)
{
    fake_archive *a = arg;
    uint32_t t = from;
    while (t + 1 <= a->newest)
        t++;
    return t;
}

static int fake_history_of(void *arg, uint32_t tli, uw_tl_history *h, uw_err *err)
{
    fake_archive *a = arg;
    a->calls++;
    h->e = NULL;
    h->n = 0;
    if (tli == 1) {
        h->e = uw_malloc(sizeof *h->e);
        h->e[0] = (uw_tl_entry){1, 0, UINT64_MAX};
        h->n = 1;
        return 0;
    }
    if (tli == 5)
        return uw_fail(err, UW_E_STORAGE, "unable to read 00000005.history: connection reset");
    for (size_t i = 0; i < sizeof histories / sizeof histories[0]; i++)
        if (histories[i].tli == tli && tli <= a->newest) {
            h->n = histories[i].n;
            h->e = uw_malloc(h->n * sizeof *h->e);
            memcpy(h->e, histories[i].e, h->n * sizeof *h->e);
            return 0;
        }
    return uw_fail(err, UW_E_NOT_FOUND, "the history file of timeline %u is not archived",
                   (unsigned)tli);
}

/* ------------------------------------------------------------- backups -- */

static uw_manifest backup(const char *id, uint32_t tli, uint64_t start, uint64_t stop,
                          int64_t stop_time)
{
    uw_manifest m;
    memset(&m, 0, sizeof m);
    snprintf(m.id, sizeof m.id, "%s", id);
    m.timeline = tli;
    m.start_lsn = start;
    m.stop_lsn = stop;
    m.stop_time = stop_time;
    return m;
}

static restore_target target(const char *option, const char *value, const char *tli)
{
    restore_target_input in = {{NULL}, tli, "promote"};
    for (int i = 0; option && i < RESTORE_TARGET_OPTIONS; i++)
        if (!strcmp(restore_target_options[i].option, option))
            in.given[i] = value;
    restore_target t;
    uw_err err;
    uw_err_clear(&err);
    if (!CHECKF(restore_target_parse(&in, &t, &err) == 0, "%s=%s: %s", option, value, err.msg))
        memset(&t, 0, sizeof t);
    return t;
}

/* Pick from one list; returns the picked id ("" when none, "ERROR" on an
 * error, with err filled) and the timeline followed. */
static const char *pick(const restore_target *t, const char *set, const uw_manifest *list, int n,
                        uint32_t newest, uint32_t *tli, uw_err *err)
{
    static char id[UW_BACKUP_ID_MAX];
    fake_archive a = {newest, 0};
    restore_timelines tls = {fake_latest, fake_history_of, &a};
    restore_pick p;
    restore_pick_init(&p, t, set);
    uw_err_clear(err);
    int rc = restore_pick_in(&p, list, n, &tls, err);
    *tli = 0;
    if (rc < 0)
        return "ERROR";
    if (rc == 0) {
        restore_pick_fail(&p, "main", err);
        return "";
    }
    snprintf(id, sizeof id, "%s", list[p.index].id);
    *tli = p.tli;
    /* The history handed over is the timeline's. */
    CHECK(p.hist.n > 0 && p.hist.e[p.hist.n - 1].tli == p.tli);
    uw_tl_history_free(&p.hist);
    return id;
}

/* Three backups on timeline 1, oldest first as uw_backups_list gives them. */
static void test_one_timeline(void)
{
    uw_manifest list[3] = {
        backup("20261125-100000F", 1, 0x1000028, 0x1000138, NOON - 7200),
        backup("20261125-110000F_20261125-110000I", 1, 0x2000028, 0x2000138, NOON - 3600),
        backup("20261125-120000F", 1, 0x3000028, 0x3000138, NOON),
    };
    uw_err err;
    uint32_t tli;
    restore_target t;

    uw_t_section("pick: newest first");
    t = target(NULL, NULL, NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "20261125-120000F");
    CHECK_INT(tli, 1);
    t = target("target", "immediate", NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "20261125-120000F");
    t = target("target-xid", "1234", NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "20261125-120000F");
    t = target("target-name", "x", NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "20261125-120000F");

    uw_t_section("pick: by LSN");
    t = target("target-lsn", "0/3000138", NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "20261125-120000F");
    t = target("target-lsn", "0/3000137", NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "20261125-110000F_20261125-110000I");
    t = target("target-lsn", "0/2000000", NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "20261125-100000F");

    uw_t_section("pick: by time");
    t = target("target-time", "2026-11-25 12:00:01Z", NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "20261125-120000F");
    /* Inside the second the newest became consistent: the one before. */
    t = target("target-time", "2026-11-25 12:00:00.7Z", NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "20261125-110000F_20261125-110000I");
    t = target("target-time", "2026-11-25 11:59:59+00", NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "20261125-110000F_20261125-110000I");
    t = target("target-time", "2026-11-25 10:30:00+01", NULL); /* 09:30 UTC */
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "");
    CHECK_INT(err.code, UW_E_RESTORE);
    CHECK_STR(err.msg, "target time 2026-11-25T09:30:00Z is before the end of backup "
                       "20261125-100000F (consistent at 2026-11-25T10:00:00Z, LSN 0/1000138); "
                       "the earliest restorable point is 2026-11-25T10:00:00Z, LSN 0/1000138 "
                       "(backup 20261125-100000F)");

    uw_t_section("pick: before every backup");
    t = target("target-lsn", "0/1000000", NULL);
    CHECK_STR(pick(&t, NULL, list, 3, 1, &tli, &err), "");
    CHECK_STR(err.msg, "target LSN 0/1000000 is before the end of backup 20261125-100000F "
                       "(consistent at LSN 0/1000138, 2026-11-25T10:00:00Z); the earliest "
                       "restorable point is LSN 0/1000138, 2026-11-25T10:00:00Z (backup "
                       "20261125-100000F)");

    uw_t_section("pick: --set");
    t = target(NULL, NULL, NULL);
    CHECK_STR(pick(&t, "20261125-100000F", list, 3, 1, &tli, &err), "20261125-100000F");
    t = target("target-lsn", "0/2FFFFFF", NULL);
    CHECK_STR(pick(&t, "20261125-110000F_20261125-110000I", list, 3, 1, &tli, &err),
              "20261125-110000F_20261125-110000I");
    /* A --set backup too new for the target is an error at once. */
    CHECK_STR(pick(&t, "20261125-120000F", list, 3, 1, &tli, &err), "ERROR");
    CHECK_INT(err.code, UW_E_RESTORE);
    CHECK_CONTAINS(err.msg, "target LSN 0/2FFFFFF is before the end of backup 20261125-120000F");
    CHECK_STR(pick(&t, "20261125-130000F", list, 3, 1, &tli, &err), "");
    CHECK_STR(err.msg, "backup '20261125-130000F' does not exist in any repository of stanza "
                       "'main' (or is incomplete)");

    uw_t_section("pick: empty");
    CHECK_STR(pick(&t, NULL, list, 0, 1, &tli, &err), "");
    CHECK_STR(err.msg, "stanza 'main' has no complete backup in any repository");
}

/* Backups around a timeline switch: A on timeline 1 before the fork at
 * 0/4000000, B on timeline 1 after it (the old primary went on), S started on
 * timeline 1 before the fork and ended after it, C on timeline 2. */
static void test_timelines(void)
{
    uw_manifest list[4] = {
        backup("A", 1, 0x2000028, 0x2000138, NOON - 4000),
        backup("S", 1, 0x3F00028, 0x4100000, NOON - 3000),
        backup("B", 1, 0x5000028, 0x5000138, NOON - 2000),
        backup("C", 2, 0x6000028, 0x6000138, NOON - 1000),
    };
    uw_err err;
    uint32_t tli;
    restore_target t;

    uw_t_section("pick: latest timeline");
    t = target(NULL, NULL, NULL);
    CHECK_STR(pick(&t, NULL, list, 4, 2, &tli, &err), "C");
    CHECK_INT(tli, 2);
    /* Before C: B is not on timeline 2's history, S left timeline 1 before
     * it was consistent, A is. */
    t = target("target-lsn", "0/5800000", NULL);
    CHECK_STR(pick(&t, NULL, list, 4, 2, &tli, &err), "A");
    CHECK_INT(tli, 2);
    /* Timeline 3 exists: latest follows it from every backup. */
    t = target(NULL, NULL, NULL);
    CHECK_STR(pick(&t, NULL, list, 4, 3, &tli, &err), "C");
    CHECK_INT(tli, 3);

    uw_t_section("pick: current and numbered timelines");
    t = target("target-lsn", "0/5800000", "current");
    CHECK_STR(pick(&t, NULL, list, 4, 2, &tli, &err), "B");
    CHECK_INT(tli, 1);
    t = target("target-lsn", "0/5800000", "1");
    CHECK_STR(pick(&t, NULL, list, 4, 2, &tli, &err), "B");
    CHECK_INT(tli, 1);
    t = target(NULL, NULL, "1");
    CHECK_STR(pick(&t, NULL, list, 4, 2, &tli, &err), "B");
    t = target(NULL, NULL, "2");
    CHECK_STR(pick(&t, NULL, list, 4, 2, &tli, &err), "C");
    CHECK_INT(tli, 2);
    t = target(NULL, NULL, "current");
    CHECK_STR(pick(&t, NULL, list, 4, 2, &tli, &err), "C");

    uw_t_section("pick: why a backup is not on the history");
    t = target(NULL, NULL, "2");
    CHECK_STR(pick(&t, "B", list, 4, 2, &tli, &err), "");
    CHECK_STR(err.msg, "backup B cannot be restored: backup B (timeline 1) is not on the "
                       "history of timeline 2");
    CHECK_STR(pick(&t, "S", list, 4, 2, &tli, &err), "");
    CHECK_STR(err.msg, "backup S cannot be restored: backup S is not on the history of timeline "
                       "2 (which left timeline 1 at 0/4000000, before the backup was "
                       "consistent)");
    /* Not on the history: timeline 1 backup on a timeline 2 history whose
     * first entry does not hold its start. */
    t = target(NULL, NULL, "1");
    CHECK_STR(pick(&t, "C", list, 4, 2, &tli, &err), "");
    CHECK_STR(err.msg, "backup C cannot be restored: backup C (timeline 2) is not on the "
                       "history of timeline 1");

    uw_t_section("pick: timeline without a history file");
    t = target(NULL, NULL, "4");
    CHECK_STR(pick(&t, NULL, list, 4, 3, &tli, &err), "");
    CHECK_STR(err.msg,
              "no backup can reach the target: timeline 4 has no history file in the archive");
    CHECK_STR(pick(&t, "A", list, 4, 3, &tli, &err), "");
    CHECK_STR(err.msg,
              "backup A cannot be restored: timeline 4 has no history file in the archive");

    uw_t_section("pick: history that cannot be read");
    t = target(NULL, NULL, "5");
    CHECK_STR(pick(&t, NULL, list, 4, 3, &tli, &err), "ERROR");
    CHECK_INT(err.code, UW_E_STORAGE);
    CHECK_CONTAINS(err.msg, "connection reset");
}

/* Two repositories: the first one holding a qualifying backup wins; --set
 * stops at the first one that has the id. */
static void test_repositories(void)
{
    uw_manifest r1[2] = {
        backup("20261125-090000F", 1, 0x800028, 0x800138, NOON - 10800),
        backup("20261125-120000F", 1, 0x3000028, 0x3000138, NOON),
    };
    uw_manifest r2[2] = {
        backup("20261125-080000F", 1, 0x400028, 0x400138, NOON - 14400),
        backup("20261125-120000F", 1, 0x3000028, 0x3000138, NOON),
    };
    fake_archive a = {1, 0};
    restore_timelines tls = {fake_latest, fake_history_of, &a};
    restore_pick p;
    uw_err err;
    restore_target t;

    uw_t_section("pick: across repositories");
    t = target("target-lsn", "0/600000", NULL);
    restore_pick_init(&p, &t, NULL);
    CHECK_INT(restore_pick_in(&p, r1, 2, &tls, &err), 0);
    CHECK(!restore_pick_done(&p));
    CHECK_INT(restore_pick_in(&p, r2, 2, &tls, &err), 1);
    CHECK_STR(r2[p.index].id, "20261125-080000F");
    CHECK_INT(p.nbackups, 4);
    uw_tl_history_free(&p.hist);

    t = target("target-lsn", "0/100000", NULL);
    restore_pick_init(&p, &t, NULL);
    CHECK_INT(restore_pick_in(&p, r1, 2, &tls, &err), 0);
    CHECK_INT(restore_pick_in(&p, r2, 2, &tls, &err), 0);
    restore_pick_fail(&p, "main", &err);
    /* The earliest point over both repositories. */
    CHECK_CONTAINS(err.msg, "the earliest restorable point is LSN 0/400138");
    CHECK_CONTAINS(err.msg, "(backup 20261125-080000F)");

    uw_t_section("pick: --set in the first repository having it");
    t = target("target-lsn", "0/2000000", NULL);
    restore_pick_init(&p, &t, "20261125-090000F");
    CHECK_INT(restore_pick_in(&p, r2, 2, &tls, &err), 0);
    CHECK(!restore_pick_done(&p));
    CHECK_INT(restore_pick_in(&p, r1, 2, &tls, &err), 1);
    CHECK_STR(r1[p.index].id, "20261125-090000F");
    uw_tl_history_free(&p.hist);
    /* Found but not usable: the search stops there. */
    t = target(NULL, NULL, "7");
    restore_pick_init(&p, &t, "20261125-090000F");
    CHECK_INT(restore_pick_in(&p, r1, 2, &tls, &err), 0);
    CHECK(restore_pick_done(&p));
}

int main(void)
{
    test_one_timeline();
    test_timelines();
    test_repositories();
    return uw_t_done("test_restore_select");
}
