/* ue-pitr metrics' pure part (pitr/metrics_render.c): the exposition text
 * (families grouped under one HELP/TYPE, labels escaped, values exact), the
 * accounting of a repository listing, and backup id times. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "unit.h"

static void test_render(void)
{
    uw_t_section("exposition format");
    uw_prom *p = uw_prom_new();
    const char *a[] = {"stanza", "main", "repo", "1", NULL};
    const char *b[] = {"stanza", "we\"ird\\na\nme", "repo", NULL, NULL};
    const char *t[] = {"stanza", "main", "repo", "1", "type", "full", NULL};
    uw_prom_add(p, "backup_last_success_timestamp", "gauge", "last success", 1764475200, a);
    uw_prom_add(p, "backup_failures_total", "counter", "failures", 3, a);
    uw_prom_add(p, "backup_last_success_timestamp", "gauge", "ignored", 1764475201.5, b);
    uw_prom_add(p, "backup_size_bytes", "gauge", "size", 12345678901234.0, t);
    uw_prom_add(p, "backup_plain", "gauge", "no labels", 0.25, NULL);
    CHECKF(uw_prom_count(p) == 5, "count %d", uw_prom_count(p));
    char *s = uw_prom_render(p);
    const char *want =
        "# HELP backup_last_success_timestamp last success\n"
        "# TYPE backup_last_success_timestamp gauge\n"
        "backup_last_success_timestamp{stanza=\"main\",repo=\"1\"} 1764475200\n"
        "backup_last_success_timestamp{stanza=\"we\\\"ird\\\\na\\nme\"} 1764475201.5\n"
        "# HELP backup_failures_total failures\n"
        "# TYPE backup_failures_total counter\n"
        "backup_failures_total{stanza=\"main\",repo=\"1\"} 3\n"
        "# HELP backup_size_bytes size\n"
        "# TYPE backup_size_bytes gauge\n"
        "backup_size_bytes{stanza=\"main\",repo=\"1\",type=\"full\"} 12345678901234\n"
        "# HELP backup_plain no labels\n"
        "# TYPE backup_plain gauge\n"
        "backup_plain 0.25\n";
    CHECK_STR(s, want);
    free(s);
    uw_prom_free(p);

    p = uw_prom_new();
    s = uw_prom_render(p);
    CHECK_STR(s, "");
    free(s);
    uw_prom_free(p);
}

static void test_ids(void)
{
    uw_t_section("backup id times");
    CHECKF(uw_backup_id_time("20261130-040000F") == 1796011200, "full: %lld",
           (long long)uw_backup_id_time("20261130-040000F"));
    CHECKF(uw_backup_id_time("20261130-040000F_20261130-100000I") == 1796011200 + 6 * 3600,
           "incremental: its own stamp");
    CHECKF(uw_backup_id_time("19700101-000000F") == 0, "epoch");
    CHECKF(uw_backup_id_time("20261130-040000X") == -1, "type letter");
    CHECKF(uw_backup_id_time("20261330-040000F") == -1, "month 13");
    CHECKF(uw_backup_id_time("2026113-040000F") == -1, "short");
    CHECKF(uw_backup_id_time("") == -1, "empty");
}

static void test_usage(void)
{
    uw_t_section("repository listing");
    uw_repo_usage u;
    memset(&u, 0, sizeof u);
    uw_repo_usage_add(&u, "stanza.info", 300);
    uw_repo_usage_add(&u, "backup/20261129-040000F/manifest", 1000);
    uw_repo_usage_add(&u, "backup/20261129-040000F/pg_data/base/1/1259.zst", 5000);
    uw_repo_usage_add(&u, "backup/20261129-040000F_20261130-100000I/manifest", 900);
    uw_repo_usage_add(&u, "backup/20261128-040000F/manifest", 800);
    /* Interrupted: files but no manifest; and something that is no backup. */
    uw_repo_usage_add(&u, "backup/20261130-160000F/pg_data/PG_VERSION.zst", 10);
    uw_repo_usage_add(&u, "backup/junk/manifest", 1);
    uw_repo_usage_add(&u,
                      "archive/0000000100000000/000000010000000000000003-"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.zst",
                      100);
    uw_repo_usage_add(&u,
                      "archive/0000000200000000/000000020000000000000001-"
                      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.zst",
                      100);
    uw_repo_usage_add(&u,
                      "archive/0000000100000000/000000010000000000000004.00000028.backup-"
                      "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.zst",
                      50);
    uw_repo_usage_add(&u, "archive/history/00000002.history-dddd.zst", 40);
    CHECKF(u.bytes == 300 + 1000 + 5000 + 900 + 800 + 10 + 1 + 100 + 100 + 50 + 40, "bytes %llu",
           (unsigned long long)u.bytes);
    CHECKF(u.objects == 11, "objects");
    CHECKF(u.wal_bytes == 290, "wal bytes");
    CHECKF(u.backup_bytes == 1000 + 5000 + 900 + 800 + 10 + 1, "backup bytes");
    CHECKF(u.backups == 3, "complete backups: %d", u.backups);
    CHECK_STR(u.oldest, "20261128-040000F");
    CHECK_STR(u.newest, "20261129-040000F_20261130-100000I");
    CHECKF(u.wal_segments == 2, "segments: %llu", (unsigned long long)u.wal_segments);
    CHECK_STR(u.newest_wal, "000000020000000000000001");
}

int main(void)
{
    test_render();
    test_ids();
    test_usage();
    return uw_t_done("test_metrics");
}
