/* What a manifest may make a restore create (pitr/restore_confine.c): links
 * only at pg_tblspc/<oid> and pg_wal, to clean absolute locations; modes
 * masked to a data directory's; --tablespace-map and --tablespace-map-all. */
#include <string.h>

#include "restore.h"
#include "unit.h"

static void test_predicates(void)
{
    uw_t_section("restore_link_allowed");
    CHECK(restore_link_allowed("pg_tblspc/16385"));
    CHECK(restore_link_allowed("pg_tblspc/1"));
    CHECK(restore_link_allowed("pg_tblspc/4294967295"));
    CHECK(restore_link_allowed("pg_wal"));
    const char *no[] = {"pg_tblspc",
                        "pg_tblspc/",
                        "pg_tblspc/0",
                        "pg_tblspc/016385",
                        "pg_tblspc/4294967296",
                        "pg_tblspc/12345678901",
                        "pg_tblspc/16385/",
                        "pg_tblspc/16385/PG_15",
                        "pg_tblspc/x",
                        "pg_tblspc/-1",
                        "pg_tblspc/+1",
                        "base/evil",
                        "base",
                        "global/pg_control",
                        "pg_wal/archive_status",
                        "pg_xlog",
                        "pg_wal2",
                        "postgresql.conf",
                        "log",
                        "a/pg_tblspc/1",
                        ""};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECKF(!restore_link_allowed(no[i]), "'%s' allowed", no[i]);

    uw_t_section("restore_location_valid");
    CHECK(restore_location_valid("/srv/ts1"));
    CHECK(restore_location_valid("/a"));
    CHECK(restore_location_valid("/var/lib/postgresql/ts with space/..x/.y"));
    char long_ok[RESTORE_LOCATION_MAX], long_bad[RESTORE_LOCATION_MAX + 1];
    memset(long_ok, 'a', sizeof long_ok - 1);
    long_ok[0] = '/';
    long_ok[sizeof long_ok - 1] = '\0';
    memset(long_bad, 'a', sizeof long_bad - 1);
    long_bad[0] = '/';
    long_bad[sizeof long_bad - 1] = '\0';
    CHECK(restore_location_valid(long_ok));
    CHECK(!restore_location_valid(long_bad));
    const char *bad[] = {NULL,     "",          "/",         "//",        "relative/ts", "ts",
                         "./ts",   "/srv/",     "/srv//ts",  "/srv/./ts", "/srv/../etc", "/srv/..",
                         "/srv/.", "/srv/ts\n", "/srv/t\ts", "/srv/\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(!restore_location_valid(bad[i]), "'%s' valid", bad[i] ? bad[i] : "(null)");

    uw_t_section("restore_mode_mask");
    CHECK_INT(restore_mode_mask('f', 0600), 0600);
    CHECK_INT(restore_mode_mask('f', 0640), 0640);
    CHECK_INT(restore_mode_mask('f', 0644), 0640);
    CHECK_INT(restore_mode_mask('f', 04755), 0640);
    CHECK_INT(restore_mode_mask('f', 06777), 0640);
    CHECK_INT(restore_mode_mask('f', 0400), 0400);
    CHECK_INT(restore_mode_mask('d', 0700), 0700);
    CHECK_INT(restore_mode_mask('d', 0750), 0750);
    CHECK_INT(restore_mode_mask('d', 0755), 0750);
    CHECK_INT(restore_mode_mask('d', 01777), 0750);
    CHECK_INT(restore_mode_mask('d', 02770), 0750);
    CHECK_INT(restore_mode_mask('d', 07777), 0750);
}

static void map_bad(const char *list, const char *all, const char *msg)
{
    restore_ts_map map;
    uw_err err;
    uw_err_clear(&err);
    CHECK_FAIL_CODE(restore_ts_map_parse(list, all, &map, &err) < 0, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, msg);
}

static void test_map_parse(void)
{
    restore_ts_map map;
    uw_err err;
    uw_t_section("restore_ts_map_parse");
    CHECK_OK(restore_ts_map_parse(NULL, NULL, &map, &err) == 0, err);
    CHECK_INT(map.n, 0);
    CHECK(map.all == NULL);
    restore_ts_map_free(&map);
    CHECK_OK(restore_ts_map_parse("16385=/srv/ts a\n16386=/srv/b=c", "/srv/all", &map, &err) == 0,
             err);
    if (CHECKF(map.n == 2, "%zu mappings", map.n)) {
        CHECK_STR(map.maps[0].oid, "16385");
        CHECK_STR(map.maps[0].dir, "/srv/ts a");
        CHECK_STR(map.maps[1].oid, "16386");
        CHECK_STR(map.maps[1].dir, "/srv/b=c");
    }
    CHECK_STR(map.all, "/srv/all");
    restore_ts_map_free(&map);

    uw_t_section("restore_ts_map_parse rejects");
    map_bad("16385", NULL, "'16385' is not OID=DIR");
    map_bad("16385=", NULL, "is not OID=DIR");
    map_bad("=/srv/ts", NULL, "is not OID=DIR");
    map_bad("ts1=/srv/ts", NULL, "'ts1=/srv/ts' is not OID=DIR");
    map_bad("0=/srv/ts", NULL, "is not OID=DIR");
    map_bad("4294967296=/srv/ts", NULL, "is not OID=DIR");
    map_bad("16385=srv/ts", NULL, "is not OID=DIR");
    map_bad("16385=/srv/../etc", NULL, "is not OID=DIR");
    map_bad("16385=/", NULL, "is not OID=DIR");
    map_bad("16385=/a\n\n16386=/b", NULL, "'' is not OID=DIR");
    map_bad("16385=/a\n16385=/b", NULL, "tablespace 16385 is mapped twice");
    map_bad(NULL, "relative", "option 'tablespace-map-all': 'relative' is not an absolute");
    map_bad("16385=/a", "/srv/x/..", "option 'tablespace-map-all'");
}

/* A manifest with two tablespaces, pg_wal linked, and the given extra entry. */
static void manifest(uw_manifest *m, const uw_mf_entry *extra)
{
    uw_manifest_init(m);
    snprintf(m->id, sizeof m->id, "20261125-120000F");
    uw_mf_entry e[] = {
        {.path = "PG_VERSION", .type = 'f', .mode = 0600},
        {.path = "base", .type = 'd', .mode = 0700},
        {.path = "postgresql.conf", .type = 'f', .mode = 0644},
        {.path = "pg_tblspc", .type = 'd', .mode = 0750},
        {.path = "pg_tblspc/16385", .type = 'l', .mode = 0777, .link = "/srv/ts1"},
        {.path = "pg_tblspc/16386", .type = 'l', .mode = 0777, .link = "/srv/ts2"},
        {.path = "pg_wal", .type = 'l', .mode = 0777, .link = "/srv/wal"},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)
        uw_manifest_add(m, &e[i]);
    if (extra)
        uw_manifest_add(m, extra);
    uw_manifest_sort(m);
}

static const char *link_of(const uw_manifest *m, const char *path)
{
    const uw_mf_entry *e = uw_manifest_find(m, path);
    return e && e->link ? e->link : "(none)";
}

static uint32_t mode_of(const uw_manifest *m, const char *path)
{
    const uw_mf_entry *e = uw_manifest_find(m, path);
    return e ? e->mode : 07777;
}

/* Confine with a map given as option values. */
static int confine(uw_manifest *m, const char *list, const char *all, uw_err *err)
{
    restore_ts_map map;
    uw_err_clear(err);
    if (restore_ts_map_parse(list, all, &map, err) < 0)
        return -2;
    int rc = restore_confine(m, &map, err);
    restore_ts_map_free(&map);
    return rc;
}

static void test_confine(void)
{
    uw_manifest m;
    uw_err err;

    uw_t_section("restore_confine: a backup as PostgreSQL has it");
    manifest(&m, NULL);
    CHECK_OK(confine(&m, NULL, NULL, &err) == 0, err);
    CHECK_STR(link_of(&m, "pg_tblspc/16385"), "/srv/ts1");
    CHECK_STR(link_of(&m, "pg_tblspc/16386"), "/srv/ts2");
    CHECK_STR(link_of(&m, "pg_wal"), "/srv/wal");
    CHECK_INT(mode_of(&m, "PG_VERSION"), 0600);
    CHECK_INT(mode_of(&m, "postgresql.conf"), 0640);
    CHECK_INT(mode_of(&m, "base"), 0700);
    CHECK_INT(mode_of(&m, "pg_tblspc"), 0750);
    uw_manifest_free(&m);

    uw_t_section("restore_confine: tablespace map");
    manifest(&m, NULL);
    CHECK_OK(confine(&m, "16386=/new/two", NULL, &err) == 0, err);
    CHECK_STR(link_of(&m, "pg_tblspc/16385"), "/srv/ts1");
    CHECK_STR(link_of(&m, "pg_tblspc/16386"), "/new/two");
    CHECK_STR(link_of(&m, "pg_wal"), "/srv/wal"); /* not a tablespace */
    uw_manifest_free(&m);
    manifest(&m, NULL);
    CHECK_OK(confine(&m, NULL, "/all", &err) == 0, err);
    CHECK_STR(link_of(&m, "pg_tblspc/16385"), "/all/16385");
    CHECK_STR(link_of(&m, "pg_tblspc/16386"), "/all/16386");
    CHECK_STR(link_of(&m, "pg_wal"), "/srv/wal");
    uw_manifest_free(&m);
    /* One by OID, the rest by --tablespace-map-all. */
    manifest(&m, NULL);
    CHECK_OK(confine(&m, "16385=/one", "/all", &err) == 0, err);
    CHECK_STR(link_of(&m, "pg_tblspc/16385"), "/one");
    CHECK_STR(link_of(&m, "pg_tblspc/16386"), "/all/16386");
    uw_manifest_free(&m);

    uw_t_section("restore_confine: a map for a tablespace not in the backup");
    manifest(&m, NULL);
    CHECK_FAIL_CODE(confine(&m, "16385=/one\n99999=/x", NULL, &err) == -1, err, UW_E_RESTORE);
    CHECK_STR(err.msg, "option 'tablespace-map': backup 20261125-120000F has no tablespace 99999 "
                       "(its tablespaces: 16385, 16386)");
    uw_manifest_free(&m);

    uw_t_section("restore_confine: hostile links");
    struct {
        uw_mf_entry e;
        const char *msg;
    } hostile[] = {
        {{.path = "base/evil", .type = 'l', .link = "/etc"},
         "manifest of backup 20261125-120000F: link 'base/evil' -> '/etc' is refused: a restore "
         "creates links only for tablespaces (pg_tblspc/<oid>) and pg_wal"},
        {{.path = "global", .type = 'l', .link = "/root/.ssh"}, "link 'global' -> '/root/.ssh'"},
        {{.path = "pg_tblspc/16387/PG_15_202209061", .type = 'l', .link = "/tmp/x"},
         "link 'pg_tblspc/16387/PG_15_202209061' -> '/tmp/x' is refused"},
        {{.path = "postgresql.auto.conf", .type = 'l', .link = "/etc/passwd"},
         "link 'postgresql.auto.conf' -> '/etc/passwd' is refused"},
        {{.path = "pg_tblspc/16387", .type = 'l', .link = "/srv/../etc"},
         "manifest of backup 20261125-120000F: link 'pg_tblspc/16387' points to '/srv/../etc', "
         "which is not an absolute path without '.' or '..' components"},
        {{.path = "pg_tblspc/16387", .type = 'l', .link = "/"}, "points to '/'"},
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        manifest(&m, &hostile[i].e);
        CHECK_FAIL_CODE(confine(&m, NULL, NULL, &err) == -1, err, UW_E_REPO_FORMAT);
        CHECK_CONTAINS(err.msg, hostile[i].msg);
        uw_manifest_free(&m);
    }
    /* The map does not make a hostile link acceptable. */
    uw_mf_entry evil = {.path = "pg_tblspc/16387", .type = 'l', .link = "/srv/./x"};
    manifest(&m, &evil);
    CHECK_FAIL_CODE(confine(&m, "16387=/ok", NULL, &err) == -1, err, UW_E_REPO_FORMAT);
    uw_manifest_free(&m);

    uw_t_section("restore_confine: modes");
    uw_mf_entry suid = {.path = "base/1/evil", .type = 'f', .mode = 04755};
    manifest(&m, &suid);
    CHECK_OK(confine(&m, NULL, NULL, &err) == 0, err);
    CHECK_INT(mode_of(&m, "base/1/evil"), 0640);
    uw_manifest_free(&m);
    uw_mf_entry sticky = {.path = "base/1", .type = 'd', .mode = 03777};
    manifest(&m, &sticky);
    CHECK_OK(confine(&m, NULL, NULL, &err) == 0, err);
    CHECK_INT(mode_of(&m, "base/1"), 0750);
    uw_manifest_free(&m);
}

static void test_tablespace_map(void)
{
    uw_t_section("restore_tablespace_map");
    uw_manifest m;
    uw_err err;
    manifest(&m, NULL);
    CHECK_OK(confine(&m, "16386=/new/t\\wo", NULL, &err) == 0, err);
    uw_buf out = {0};
    restore_tablespace_map(&m, &out);
    /* pg_wal is not a tablespace; a backslash is escaped as PostgreSQL does. */
    CHECK_STR((const char *)out.data, "16385 /srv/ts1\n16386 /new/t\\\\wo\n");
    uw_buf_free(&out);
    uw_manifest_free(&m);
    uw_manifest_init(&m);
    restore_tablespace_map(&m, &out);
    CHECK_INT(out.len, 0);
    uw_manifest_free(&m);
}

int main(void)
{
    test_predicates();
    test_map_parse();
    test_confine();
    test_tablespace_map();
    return uw_t_done("test_restore_confine");
}
