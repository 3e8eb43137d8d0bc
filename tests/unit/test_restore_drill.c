/* The pure parts of ue-pitr drill and restore-table (pitr/drill_plan.c): the
 * --check-sql file, the tolerance, table names for pg_dump, and the
 * pg_database heap pages restore-table reads a database's oid from. */
#include <stdlib.h>
#include <string.h>

#include "drill.h"
#include "unit.h"

static void test_checks(void)
{
    uw_t_section("drill_checks_parse: blocks");
    drill_checks c;
    uw_err err;
    uw_err_clear(&err);
    const char *text = "-- critical queries of the app\n"
                       "\n"
                       "-- check: open claims\n"
                       "-- database: app\n"
                       "-- expect: 42\n"
                       "select count(*)\n"
                       "  from claims; -- trailing comment\n"
                       "\n"
                       "-- expect: production\n"
                       "select max(id) from users;\n"
                       "-- check: spaces kept\n"
                       "--   expect:   a b  \n"
                       "select 'a b'";
    CHECK_OK(drill_checks_parse(text, "f.sql", &c, &err) == 0, err);
    CHECK_INT((int)c.n, 3);
    if (c.n == 3) {
        CHECK_STR(c.v[0].name, "open claims");
        CHECK_STR(c.v[0].database, "app");
        CHECK_STR(c.v[0].expect, "42");
        CHECK(!c.v[0].production);
        CHECK_STR(c.v[0].sql, "select count(*)\n  from claims; -- trailing comment");
        CHECK_INT(c.v[0].line, 3);
        CHECK_STR(c.v[1].name, "line 9");
        CHECK(c.v[1].database == NULL);
        CHECK(c.v[1].production && c.v[1].expect == NULL);
        CHECK_STR(c.v[1].sql, "select max(id) from users;");
        CHECK_STR(c.v[2].expect, "a b");
        CHECK_STR(c.v[2].sql, "select 'a b'");
    }
    drill_checks_free(&c);

    uw_t_section("drill_checks_parse: refusals");
    CHECK_FAIL_CODE(drill_checks_parse("-- check: x\nselect 1;\n", "f.sql", &c, &err) < 0, err,
                    UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "f.sql:1: check 'x' has no '-- expect:' line");
    CHECK_FAIL_CODE(drill_checks_parse("-- expect: 1\n-- just a comment\n\n", "f.sql", &c, &err) <
                        0,
                    err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "has no query");
    CHECK_FAIL_CODE(drill_checks_parse("select 1;\n-- expect: 1\nselect 1;", "f.sql", &c, &err) < 0,
                    err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "f.sql:1: SQL outside a check");
    CHECK_FAIL_CODE(drill_checks_parse("-- nothing\n", "f.sql", &c, &err) < 0, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "no check");
}

static void test_tolerance(void)
{
    uw_t_section("tolerance");
    double pct = -1;
    uw_err err;
    CHECK_OK(drill_parse_tolerance("5", &pct, &err) == 0, err);
    CHECK(pct == 5);
    CHECK_OK(drill_parse_tolerance("0.5", &pct, &err) == 0, err);
    CHECK(pct == 0.5);
    CHECK_FAIL_CODE(drill_parse_tolerance("101", &pct, &err) < 0, err, UW_E_OPTION);
    CHECK_FAIL_CODE(drill_parse_tolerance("-1", &pct, &err) < 0, err, UW_E_OPTION);
    CHECK_FAIL_CODE(drill_parse_tolerance("5%", &pct, &err) < 0, err, UW_E_OPTION);
    CHECK_FAIL_CODE(drill_parse_tolerance("", &pct, &err) < 0, err, UW_E_OPTION);
    CHECK(drill_within(100, 100, 0));
    CHECK(!drill_within(101, 100, 0));
    CHECK(drill_within(105, 100, 5)); /* 5 of 105 */
    CHECK(drill_within(95, 100, 5));  /* 5 of 100 */
    CHECK(!drill_within(94, 100, 5)); /* 6 of 100 */
    CHECK(!drill_within(0, 1, 50));   /* emptied */
    CHECK(!drill_within(1, 0, 50));   /* filled */
    CHECK(drill_within(0, 0, 0));
    CHECK(drill_within(3000, 2000, 50)); /* 1000 of 3000 */
    CHECK(!drill_within(3000, 2000, 5));
}

static void table(const char *in, const char *schema, const char *tab, const char *pattern)
{
    char *s = NULL, *t = NULL;
    uw_err err;
    uw_err_clear(&err);
    CHECK_OK(drill_table_parse(in, &s, &t, &err) == 0, err);
    if (s && t) {
        CHECK_STR(s, schema);
        CHECK_STR(t, tab);
        char *p = drill_table_pattern(s, t);
        CHECK_STR(p, pattern);
        free(p);
    }
    free(s);
    free(t);
}

static void test_tables(void)
{
    uw_t_section("table names");
    table("public.claims", "public", "claims", "\"public\".\"claims\"");
    table("App.Claims", "App", "Claims", "\"App\".\"Claims\"");
    table("\"my.schema\".\"t\"\"q\"", "my.schema", "t\"q", "\"my.schema\".\"t\"\"q\"");
    table("s.\"a*b\"", "s", "a*b", "\"s\".\"a*b\"");
    static const char *const bad[] = {"claims", "a.b.c", ".t",     "s.",
                                      "\"s.t",  "s.\"t", "s.\"\"", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *s, *t;
        uw_err err;
        CHECK_FAIL_CODE(drill_table_parse(bad[i], &s, &t, &err) < 0, err, UW_E_OPTION);
    }
}

/* A heap page holding tuples (oid, datname) as PostgreSQL lays them out. */
static void put_tuple(uint8_t *page, uint16_t *upper, int item, uint32_t oid, const char *name)
{
    uint16_t hoff = 24, len = (uint16_t)(hoff + 4 + 64 + 20);
    *upper = (uint16_t)(*upper - len);
    uint8_t *t = page + *upper;
    memset(t, 0, len);
    t[22] = (uint8_t)hoff;
    memcpy(t + hoff, &oid, 4);
    strncpy((char *)t + hoff + 4, name, 63);
    uint32_t id = (uint32_t)*upper | 1u << 15 | (uint32_t)len << 17;
    memcpy(page + 24 + 4 * item, &id, 4);
    uint16_t lower = (uint16_t)(24 + 4 * (item + 1));
    memcpy(page + 12, &lower, 2);
    memcpy(page + 14, upper, 2);
}

static void test_pg_database(void)
{
    uw_t_section("pg_database pages");
    uint8_t *pages = calloc(3, 8192);
    uint16_t upper = 8192;
    put_tuple(pages, &upper, 0, 1, "template1");
    put_tuple(pages, &upper, 1, 4, "template0");
    put_tuple(pages, &upper, 2, 5, "postgres");
    put_tuple(pages, &upper, 3, 16384, "app");
    /* page 2 left zeroed (a new page); page 3: a later version of "app" */
    upper = 8192;
    put_tuple(pages + 2 * 8192, &upper, 0, 16390, "app");
    uint32_t oids[4];
    CHECK_INT(drill_pg_database_oids(pages, 3 * 8192, "postgres", oids, 4), 1);
    CHECK_INT((int)oids[0], 5);
    CHECK_INT(drill_pg_database_oids(pages, 3 * 8192, "app", oids, 4), 2);
    CHECK_INT((int)oids[0], 16384);
    CHECK_INT((int)oids[1], 16390);
    CHECK_INT(drill_pg_database_oids(pages, 3 * 8192, "nosuch", oids, 4), 0);
    CHECK_INT(drill_pg_database_oids(pages, 3 * 8192, "app", oids, 1), 1);
    /* A damaged item pointer (past the page) is skipped, not followed. */
    uint32_t bad = 8000u | 1u << 15 | 400u << 17;
    memcpy(pages + 24, &bad, 4);
    CHECK_INT(drill_pg_database_oids(pages, 3 * 8192, "template1", oids, 4), 0);
    CHECK_INT(drill_pg_database_oids(pages, 100, "postgres", oids, 4), 0);
    free(pages);

    uw_t_section("drill_relation_db");
    uint32_t db = 0;
    CHECK(drill_relation_db("base/16384/1259", &db) && db == 16384);
    CHECK(drill_relation_db("base/5/16400.1", &db) && db == 5);
    CHECK(drill_relation_db("base/5/16400_fsm", &db) && db == 5);
    CHECK(drill_relation_db("pg_tblspc/16500/PG_15_202209061/16384/16501", &db) && db == 16384);
    CHECK(!drill_relation_db("base/5/PG_VERSION", &db));
    CHECK(!drill_relation_db("base/5/pg_filenode.map", &db));
    CHECK(!drill_relation_db("global/1262", &db));
    CHECK(!drill_relation_db("base/x/1259", &db));
    CHECK(!drill_relation_db("base/5", &db));
    CHECK(!drill_relation_db("base/99999999999/1", &db));
}

int main(void)
{
    test_checks();
    test_tolerance();
    test_tables();
    test_pg_database();
    return uw_t_done("test_restore_drill");
}
