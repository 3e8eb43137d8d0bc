/* ue-pitr drill: the runbook's weekly verification drill. Restore a backup
 * (the newest, or --set) into a scratch instance, let it recover to
 * consistency (or --target-time) and promote, check it (tables per schema,
 * the row count of every table, the critical queries of --check-sql, the
 * comparison with production), time every step, and always clean up. The
 * steps and the scratch instance are in scratch.c; this file is the checks
 * and the report. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "drill.h"
#include "pitr.h"
#include "work/state.h"

typedef struct {
    char *db, *schema, *table;
    int64_t rows; /* -1: the count failed */
    int64_t prod; /* -1: not compared */
} drill_table;

typedef struct {
    char *name, *got, *want;
    bool ok;
} drill_result;

typedef struct {
    const uw_config *cfg;
    double tolerance;
    const char *compare; /* conninfo, or NULL */
    drill_checks checks;
    scratch s;
    /* what was found */
    char **dbs;
    size_t ndbs;
    drill_table *tables;
    size_t ntables;
    int64_t rows;
    drill_result *results;
    size_t nresults;
    char **failures; /* one line each */
    size_t nfailures;
    double checks_s, total_s, cleanup_s;
    const char *failed_step; /* the first step that failed */
    /* connections per database, scratch and production */
    PGconn **sconn, **pconn;
} drill;

static double now_s(void)
{
    return uw_now_ms() / 1e3;
}

static void fail_line(drill *d, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_line(drill *d, const char *step, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    d->failures = uw_realloc(d->failures, (d->nfailures + 1) * sizeof *d->failures);
    d->failures[d->nfailures++] = uw_strdup(line);
    if (!d->failed_step)
        d->failed_step = step;
    uw_log(UW_LOG_ERROR, "drill %s: %s", step, line);
}

/* --------------------------------------------------------- connecting -- */

static int db_index(drill *d, const char *db)
{
    for (size_t i = 0; i < d->ndbs; i++)
        if (!strcmp(d->dbs[i], db))
            return (int)i;
    return -1;
}

/* Production: the conninfo, with dbname replaced by db (libpq lets a later
 * dbname override the one the conninfo expands to). */
static PGconn *prod_connect(const drill *d, const char *db, uw_err *err)
{
    const char *keys[] = {"dbname", "dbname", "application_name", NULL};
    const char *vals[] = {d->compare, db, "ue-pitr drill", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", c ? PQerrorMessage(c) : "out of memory");
        why[strcspn(why, "\n")] = '\0';
        if (c)
            PQfinish(c);
        uw_fail(err, UW_E_PG,
                "unable to connect to database '%s' of production (--compare-with): %s", db, why);
        return NULL;
    }
    return c;
}

static PGconn *conn_for(drill *d, const char *db, bool prod, uw_err *err)
{
    int i = db_index(d, db);
    PGconn **slot = i >= 0 ? (prod ? &d->pconn[i] : &d->sconn[i]) : NULL;
    if (slot && *slot)
        return *slot;
    PGconn *c = prod ? prod_connect(d, db, err) : scratch_connect(&d->s, db, err);
    if (slot)
        *slot = c;
    return c;
}

static void close_conns(drill *d)
{
    for (size_t i = 0; i < d->ndbs; i++) {
        if (d->sconn && d->sconn[i])
            PQfinish(d->sconn[i]);
        if (d->pconn && d->pconn[i])
            PQfinish(d->pconn[i]);
    }
}

/* One-row query: the first column as text (NULL as "NULL"); NULL with err. */
static char *value_of(PGconn *c, const char *sql, uw_err *err)
{
    PGresult *r = PQexec(c, sql);
    char *v = NULL;
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", PQerrorMessage(c));
        why[strcspn(why, "\n")] = '\0';
        uw_fail(err, UW_E_PG, "%s", why);
    } else if (PQntuples(r) != 1)
        uw_fail(err, UW_E_PG, "returned %d rows, not one", PQntuples(r));
    else
        v = uw_strdup(PQgetisnull(r, 0, 0) ? "NULL" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* ------------------------------------------------------------ the lists -- */

#define DBS_SQL                                                                                    \
    "select datname from pg_database where datallowconn and not datistemplate order by 1"
/* Ordinary tables (partitions included, their parents not: no row counted
 * twice), outside the system schemas. */
#define TABLES_SQL                                                                                 \
    "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "   \
    "where c.relkind = 'r' and n.nspname <> 'information_schema' and n.nspname !~ '^pg_' "         \
    "order by 1, 2"

static void add_name(char ***v, size_t *n, const char *s)
{
    *v = uw_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = uw_strdup(s);
}

static int list_dbs(drill *d, uw_err *err)
{
    PGconn *c = scratch_connect(&d->s, uw_cfg_str(d->cfg, UW_OPT_PG_DATABASE), err);
    if (!c) {
        uw_err_clear(err);
        c = scratch_connect(&d->s, "postgres", err);
    }
    if (!c)
        return -1;
    PGresult *r = PQexec(c, DBS_SQL);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = uw_fail(err, UW_E_PG, "listing the databases: %s", PQerrorMessage(c));
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        add_name(&d->dbs, &d->ndbs, PQgetvalue(r, i, 0));
    PQclear(r);
    PQfinish(c);
    d->sconn = uw_calloc(d->ndbs + 1, sizeof *d->sconn);
    d->pconn = uw_calloc(d->ndbs + 1, sizeof *d->pconn);
    return rc;
}

static char *quote_ident(const char *s)
{
    uw_buf b = {0};
    uw_buf_append(&b, "\"", 1);
    for (; *s; s++)
        uw_buf_append(&b, *s == '"' ? "\"\"" : s, *s == '"' ? 2 : 1);
    uw_buf_append(&b, "\"", 2);
    return (char *)b.data;
}

static int64_t count_rows(PGconn *c, const char *schema, const char *table, uw_err *err)
{
    char *qs = quote_ident(schema), *qt = quote_ident(table);
    char *sql = uw_sprintf("select count(*) from %s.%s", qs, qt);
    char *v = value_of(c, sql, err);
    free(sql);
    free(qs);
    free(qt);
    int64_t n = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    return n;
}

/* Every table of database db: its row count, in the scratch instance. */
static void count_db(drill *d, const char *db)
{
    uw_err err;
    uw_err_clear(&err);
    PGconn *c = conn_for(d, db, false, &err);
    PGresult *r = c ? PQexec(c, TABLES_SQL) : NULL;
    if (!c || PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail_line(d, "checks", "database %s: %s", db, c ? PQerrorMessage(c) : err.msg);
        PQclear(r);
        return;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        d->tables = uw_realloc(d->tables, (d->ntables + 1) * sizeof *d->tables);
        drill_table *t = &d->tables[d->ntables++];
        t->db = uw_strdup(db);
        t->schema = uw_strdup(PQgetvalue(r, i, 0));
        t->table = uw_strdup(PQgetvalue(r, i, 1));
        t->prod = -1;
        uw_err_clear(&err);
        t->rows = count_rows(c, t->schema, t->table, &err);
        if (t->rows < 0)
            fail_line(d, "checks", "table %s.%s.%s cannot be read: %s", db, t->schema, t->table,
                      err.msg);
        else
            d->rows += t->rows;
    }
    PQclear(r);
}

/* ------------------------------------------------- against production -- */

static const drill_table *find_table(const drill *d, const char *db, const char *schema,
                                     const char *table)
{
    for (size_t i = 0; i < d->ntables; i++)
        if (!strcmp(d->tables[i].db, db) && !strcmp(d->tables[i].schema, schema) &&
            !strcmp(d->tables[i].table, table))
            return &d->tables[i];
    return NULL;
}

/* Production's tables of db: those the backup lacks are reported; the row
 * counts of the others are compared within the tolerance. */
static void compare_db(drill *d, const char *db)
{
    uw_err err;
    uw_err_clear(&err);
    PGconn *c = conn_for(d, db, true, &err);
    PGresult *r = c ? PQexec(c, TABLES_SQL) : NULL;
    if (!c || PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail_line(d, "compare", "%s", c ? PQerrorMessage(c) : err.msg);
        PQclear(r);
        return;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *schema = PQgetvalue(r, i, 0), *table = PQgetvalue(r, i, 1);
        drill_table *t = (drill_table *)find_table(d, db, schema, table);
        if (!t) {
            fail_line(d, "compare", "table %s.%s.%s is in production but not in the backup", db,
                      schema, table);
            continue;
        }
        uw_err_clear(&err);
        t->prod = count_rows(c, schema, table, &err);
        if (t->prod < 0)
            fail_line(d, "compare", "table %s.%s.%s in production: %s", db, schema, table, err.msg);
        else if (t->rows >= 0 && !drill_within(t->rows, t->prod, d->tolerance))
            fail_line(d, "compare",
                      "table %s.%s.%s: %" PRId64 " rows restored, %" PRId64
                      " in production: beyond the tolerance of %g %%",
                      db, schema, table, t->rows, t->prod, d->tolerance);
    }
    PQclear(r);
}

/* Tables the backup has and production does not (prod still -1 after
 * compare_db, with no error about them). */
static void compare_missing(drill *d, const char *db, PGconn *c)
{
    for (size_t i = 0; i < d->ntables; i++) {
        drill_table *t = &d->tables[i];
        if (strcmp(t->db, db) || t->prod >= 0 || t->rows < 0)
            continue;
        char *qs = quote_ident(t->schema), *qt = quote_ident(t->table);
        char *sql = uw_sprintf("select to_regclass('%s.%s') is not null", qs, qt);
        PGresult *r = strchr(t->schema, '\'') || strchr(t->table, '\'') ? NULL : PQexec(c, sql);
        bool there = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                     !strcmp(PQgetvalue(r, 0, 0), "t");
        PQclear(r);
        free(sql);
        free(qs);
        free(qt);
        if (!there)
            fail_line(d, "compare", "table %s.%s.%s is in the backup but not in production", db,
                      t->schema, t->table);
    }
}

static void compare_dbs(drill *d)
{
    uw_err err;
    uw_err_clear(&err);
    PGconn *c = prod_connect(d, uw_cfg_str(d->cfg, UW_OPT_PG_DATABASE), &err);
    if (!c) {
        fail_line(d, "compare", "%s", err.msg);
        return;
    }
    PGresult *r = PQexec(c, DBS_SQL);
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        if (db_index(d, PQgetvalue(r, i, 0)) < 0)
            fail_line(d, "compare", "database %s is in production but not in the backup",
                      PQgetvalue(r, i, 0));
    PQclear(r);
    PQfinish(c);
    for (size_t i = 0; i < d->ndbs; i++) {
        compare_db(d, d->dbs[i]);
        if (d->pconn[i])
            compare_missing(d, d->dbs[i], d->pconn[i]);
    }
}

/* --------------------------------------------------- critical queries -- */

static void run_check(drill *d, const drill_check *k)
{
    const char *db = k->database ? k->database : uw_cfg_str(d->cfg, UW_OPT_PG_DATABASE);
    d->results = uw_realloc(d->results, (d->nresults + 1) * sizeof *d->results);
    drill_result *res = &d->results[d->nresults++];
    memset(res, 0, sizeof *res);
    res->name = uw_strdup(k->name);
    uw_err err;
    uw_err_clear(&err);
    if (db_index(d, db) < 0) {
        fail_line(d, "checks",
                  "check '%s': database %s is not in the restored cluster (or does "
                  "not accept connections)",
                  k->name, db);
        return;
    }
    PGconn *c = conn_for(d, db, false, &err);
    res->got = c ? value_of(c, k->sql, &err) : NULL;
    if (!res->got) {
        fail_line(d, "checks", "check '%s' (database %s): %s", k->name, db, err.msg);
        return;
    }
    if (k->production) {
        PGconn *p = d->compare ? conn_for(d, db, true, &err) : NULL;
        res->want = p ? value_of(p, k->sql, &err) : NULL;
        if (!res->want) {
            fail_line(d, "checks", "check '%s' (database %s) in production: %s", k->name, db,
                      d->compare ? err.msg : "'expect: production' needs --compare-with");
            return;
        }
    } else
        res->want = uw_strdup(k->expect);
    res->ok = !strcmp(res->got, res->want);
    if (!res->ok)
        fail_line(d, "checks", "check '%s' (database %s): got '%s', expected '%s'", k->name, db,
                  res->got, res->want);
}

static void run_checks(drill *d)
{
    double t0 = now_s();
    uw_err err;
    uw_err_clear(&err);
    if (list_dbs(d, &err) < 0) {
        fail_line(d, "checks", "%s", err.msg);
        d->checks_s = now_s() - t0;
        return;
    }
    for (size_t i = 0; i < d->ndbs; i++)
        count_db(d, d->dbs[i]);
    for (size_t i = 0; i < d->checks.n; i++)
        run_check(d, &d->checks.v[i]);
    if (d->compare)
        compare_dbs(d);
    d->checks_s = now_s() - t0;
}

/* ------------------------------------------------------------- reports -- */

static size_t schemas_of(const drill *d, size_t upto)
{
    size_t n = 0;
    for (size_t i = 0; i < upto; i++)
        if (i == 0 || strcmp(d->tables[i].db, d->tables[i - 1].db) ||
            strcmp(d->tables[i].schema, d->tables[i - 1].schema))
            n++;
    return n;
}

static void recovery_point(const drill *d, char *buf, size_t len)
{
    const scratch *s = &d->s;
    if (s->xact_time && s->xact_time[0])
        snprintf(buf, len, "%s", s->xact_time);
    else if (s->lsn)
        snprintf(buf, len, "LSN %s", s->lsn);
    else
        snprintf(buf, len, "none");
}

static void text_report(const drill *d, const char *set, const char *type)
{
    const scratch *s = &d->s;
    char rp[128];
    recovery_point(d, rp, sizeof rp);
    printf("drill of backup %s (%s): %s\n", set[0] ? set : "(none)", type,
           d->nfailures ? "FAILED" : "ok");
    printf("  restore   %8.2f s\n", s->restore_s);
    printf("  recovery  %8.2f s  recovery point %s%s%s%s\n", s->recovery_s, rp,
           s->lsn ? ", promoted at LSN " : "", s->lsn ? s->lsn : "", "");
    if (s->stop_line)
        printf("            %s\n", strstr(s->stop_line, "recovery stopping"));
    printf("  checks    %8.2f s  %zu database(s), %zu table(s) in %zu schema(s), %" PRId64
           " rows, %zu critical quer%s%s\n",
           d->checks_s, d->ndbs, d->ntables, schemas_of(d, d->ntables), d->rows, d->nresults,
           d->nresults == 1 ? "y" : "ies", d->compare ? ", compared with production" : "");
    printf("  total     %8.2f s  (the measured RTO of this backup)\n", d->total_s);
    printf("  cleanup   %8.2f s  %s\n", d->cleanup_s,
           d->failed_step && !strcmp(d->failed_step, "cleanup") ? "FAILED"
                                                                : "scratch server stopped, "
                                                                  "directory removed");
    for (size_t i = 0; i < d->ntables; i++) {
        const drill_table *t = &d->tables[i];
        printf("    %s.%s.%s %" PRId64, t->db, t->schema, t->table, t->rows);
        if (t->prod >= 0)
            printf(" (production %" PRId64 ")", t->prod);
        printf("\n");
    }
    for (size_t i = 0; i < d->nresults; i++)
        printf("    check '%s': %s ('%s')\n", d->results[i].name,
               d->results[i].ok ? "ok" : "FAILED", d->results[i].got ? d->results[i].got : "");
    for (size_t i = 0; i < d->nfailures; i++)
        printf("  FAILED: %s\n", d->failures[i]);
    fflush(stdout);
}

/* A JSON string into b (control characters escaped; other bytes as they are). */
static void jstr(uw_buf *b, const char *s)
{
    if (!s) {
        uw_buf_append(b, "null", 4);
        return;
    }
    uw_buf_append(b, "\"", 1);
    for (; *s; s++) {
        char esc[8];
        if (*s == '"' || *s == '\\') {
            esc[0] = '\\', esc[1] = *s;
            uw_buf_append(b, esc, 2);
        } else if ((unsigned char)*s < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)*s);
            uw_buf_append(b, esc, 6);
        } else
            uw_buf_append(b, s, 1);
    }
    uw_buf_append(b, "\"", 1);
}

static void jf(uw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jf(uw_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    uw_buf_append(b, tmp, strlen(tmp));
}

static void json_body(uw_buf *b, const drill *d, const char *set, const char *type)
{
    const scratch *s = &d->s;
    jf(b, "{\"stanza\":");
    jstr(b, uw_cfg_str(d->cfg, UW_OPT_STANZA));
    jf(b, ",\"result\":\"%s\",\"failed_step\":", d->nfailures ? "fail" : "ok");
    jstr(b, d->failed_step);
    jf(b, ",\"set\":");
    jstr(b, set[0] ? set : NULL);
    jf(b, ",\"type\":");
    jstr(b, type);
    jf(b,
       ",\"restore_seconds\":%.3f,\"recovery_seconds\":%.3f,\"checks_seconds\":%.3f,"
       "\"rto_seconds\":%.3f,\"cleanup_seconds\":%.3f,\"recovery_point\":{\"time\":",
       s->restore_s, s->recovery_s, d->checks_s, d->total_s, d->cleanup_s);
    jstr(b, s->xact_time && s->xact_time[0] ? s->xact_time : NULL);
    jf(b, ",\"lsn\":");
    jstr(b, s->lsn);
    jf(b, ",\"stop\":");
    jstr(b, s->stop_line ? strstr(s->stop_line, "recovery stopping") : NULL);
    jf(b,
       "},\"databases\":%zu,\"schemas\":%zu,\"tables\":%zu,\"rows\":%" PRId64
       ",\"compared\":%s,\"tolerance_pct\":%g,\"table_rows\":[",
       d->ndbs, schemas_of(d, d->ntables), d->ntables, d->rows, d->compare ? "true" : "false",
       d->tolerance);
    for (size_t i = 0; i < d->ntables; i++) {
        const drill_table *t = &d->tables[i];
        jf(b, "%s{\"database\":", i ? "," : "");
        jstr(b, t->db);
        jf(b, ",\"schema\":");
        jstr(b, t->schema);
        jf(b, ",\"table\":");
        jstr(b, t->table);
        jf(b, ",\"rows\":%" PRId64, t->rows);
        if (t->prod >= 0)
            jf(b, ",\"production_rows\":%" PRId64, t->prod);
        jf(b, "}");
    }
    jf(b, "],\"checks\":[");
    for (size_t i = 0; i < d->nresults; i++) {
        jf(b, "%s{\"name\":", i ? "," : "");
        jstr(b, d->results[i].name);
        jf(b, ",\"ok\":%s,\"got\":", d->results[i].ok ? "true" : "false");
        jstr(b, d->results[i].got);
        jf(b, ",\"expected\":");
        jstr(b, d->results[i].want);
        jf(b, "}");
    }
    jf(b, "],\"failures\":[");
    for (size_t i = 0; i < d->nfailures; i++) {
        if (i)
            uw_buf_append(b, ",", 1);
        jstr(b, d->failures[i]);
    }
    jf(b, "]}\n");
}

static int json_report(const drill *d, const char *set, const char *type, const char *path,
                       uw_err *err)
{
    uw_buf b = {0};
    json_body(&b, d, set, type);
    uw_sink *s = uw_file_sink(path, 0644, 0, err);
    int rc = s ? uw_sink_write(s, b.data, b.len, err) : -1;
    if (rc == 0)
        rc = uw_sink_finish(s, err);
    uw_sink_free(s);
    uw_buf_free(&b);
    return rc;
}

/* drill.state for metrics. Keys (besides result, code, start, end, message):
 * rto_seconds, restore_seconds, recovery_seconds, checks_seconds (decimal
 * seconds), recovery_point (the last replayed transaction's time, or "LSN
 * x/y"), recovery_lsn, set (backup id), tables, rows (counted in the scratch
 * instance), failed_step, failures_total (runs that failed, ever). */
static void record_state(const drill *d, const char *set, int64_t start, const uw_err *outcome)
{
    uw_err err;
    uw_err_clear(&err);
    const char *stanza = uw_cfg_str(d->cfg, UW_OPT_STANZA);
    uw_state *st = uw_state_load(d->cfg, stanza, "drill", &err);
    if (!st) {
        uw_log(UW_LOG_WARN, "drill.state: %s (starting it again)", err.msg);
        st = uw_state_new();
    }
    char rp[128];
    recovery_point(d, rp, sizeof rp);
    uw_state_set_int(st, "start", start);
    uw_state_set(st, "rto_seconds", "%.3f", d->total_s);
    uw_state_set(st, "restore_seconds", "%.3f", d->s.restore_s);
    uw_state_set(st, "recovery_seconds", "%.3f", d->s.recovery_s);
    uw_state_set(st, "checks_seconds", "%.3f", d->checks_s);
    uw_state_set(st, "recovery_point", "%s", rp);
    uw_state_set(st, "recovery_lsn", "%s", d->s.lsn ? d->s.lsn : "");
    uw_state_set(st, "set", "%s", set);
    uw_state_set_int(st, "tables", (int64_t)d->ntables);
    uw_state_set_int(st, "rows", d->rows);
    uw_state_set(st, "failed_step", "%s", d->failed_step ? d->failed_step : "");
    if (outcome && outcome->code != UW_OK)
        uw_state_set_int(st, "failures_total", uw_state_get_int(st, "failures_total", 0) + 1);
    uw_state_outcome(st, outcome);
    uw_err_clear(&err);
    if (uw_state_save(d->cfg, stanza, "drill", st, &err) < 0)
        uw_log(UW_LOG_WARN, "%s", err.msg);
    uw_state_free(st);
}

/* ---------------------------------------------------------------- setup -- */

static int read_text(const char *path, char **out, uw_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return uw_fail(err, UW_E_FILE, "unable to open '%s': %s", path, strerror(errno));
    uw_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (1u << 20))
        uw_buf_append(&b, chunk, n);
    bool bad = ferror(f) || b.len >= (1u << 20);
    fclose(f);
    uw_buf_append(&b, "", 1);
    *out = (char *)b.data;
    if (bad) {
        free(*out);
        *out = NULL;
        return uw_fail(err, UW_E_FILE, "unable to read '%s' (or larger than 1 MiB)", path);
    }
    return 0;
}

static int drill_setup(drill *d, const uw_config *cfg, uw_err *err)
{
    memset(d, 0, sizeof *d);
    d->cfg = cfg;
    if (drill_parse_tolerance(uw_cfg_str(cfg, UW_OPT_TOLERANCE), &d->tolerance, err) < 0)
        return -1;
    d->compare = uw_cfg_str(cfg, UW_OPT_COMPARE_WITH);
    if (d->compare && !d->compare[0])
        d->compare = NULL;
    const char *file = uw_cfg_str(cfg, UW_OPT_CHECK_SQL);
    if (!file)
        file = uw_cfg_str(cfg, UW_OPT_DRILL_CHECK_SQL);
    if (file) {
        char *text = NULL;
        int rc = read_text(file, &text, err);
        if (rc == 0)
            rc = drill_checks_parse(text, file, &d->checks, err);
        free(text);
        if (rc < 0)
            return -1;
    }
    for (size_t i = 0; i < d->checks.n; i++)
        if (d->checks.v[i].production && !d->compare)
            return uw_fail(err, UW_E_OPTION,
                           "%s:%d: check '%s' expects production's value: give "
                           "--compare-with",
                           file, d->checks.v[i].line, d->checks.v[i].name);
    /* Before a restore of minutes: a target the drill cannot use. */
    if (uw_cfg_isset(cfg, UW_OPT_TARGET_ACTION) &&
        strcmp(uw_cfg_str(cfg, UW_OPT_TARGET_ACTION), "promote") != 0)
        return uw_fail(err, UW_E_OPTION,
                       "drill: the scratch instance always promotes "
                       "(--target-action promote)");
    return d->compare ? uw_pq_load(err) : 0;
}

static void drill_free(drill *d)
{
    close_conns(d);
    free(d->sconn);
    free(d->pconn);
    for (size_t i = 0; i < d->ndbs; i++)
        free(d->dbs[i]);
    free(d->dbs);
    for (size_t i = 0; i < d->ntables; i++) {
        free(d->tables[i].db);
        free(d->tables[i].schema);
        free(d->tables[i].table);
    }
    free(d->tables);
    for (size_t i = 0; i < d->nresults; i++) {
        free(d->results[i].name);
        free(d->results[i].got);
        free(d->results[i].want);
    }
    free(d->results);
    for (size_t i = 0; i < d->nfailures; i++)
        free(d->failures[i]);
    free(d->failures);
    drill_checks_free(&d->checks);
}

/* ------------------------------------------------------------- the drill -- */

/* restore, recovery, checks: each step runs only when the previous ones
 * passed; the cleanup always runs. */
static void drill_steps(drill *d, char *set, size_t setlen, char *type, size_t typelen)
{
    uw_err err;
    uw_err_clear(&err);
    if (scratch_create(&d->s, d->cfg, "drill", &err) < 0) {
        fail_line(d, "setup", "%s", err.msg);
        return;
    }
    int rc = scratch_restore(&d->s, NULL, &err);
    if (d->s.rs.have_m) {
        snprintf(set, setlen, "%s", d->s.rs.m.id);
        snprintf(type, typelen, "%s", d->s.rs.m.type);
    }
    if (rc < 0) {
        fail_line(d, "restore", "%s", err.msg);
        return;
    }
    if (scratch_recover(&d->s, &err) < 0) {
        fail_line(d, "recovery", "%s", err.msg);
        return;
    }
    if (scratch_cancel)
        fail_line(d, "checks", "interrupted by a signal");
    else
        run_checks(d);
}

int pitr_drill(const uw_config *cfg, uw_err *err)
{
    drill d;
    int64_t start = (int64_t)time(NULL);
    if (drill_setup(&d, cfg, err) < 0) {
        drill_free(&d);
        return -1;
    }
    scratch_signals();
    double t0 = now_s();
    char set[UW_BACKUP_ID_MAX] = "", type[16] = "";
    drill_steps(&d, set, sizeof set, type, sizeof type);
    close_conns(&d);
    /* Closed: drill_free must not close them again. */
    if (d.sconn)
        memset(d.sconn, 0, (d.ndbs + 1) * sizeof *d.sconn);
    if (d.pconn)
        memset(d.pconn, 0, (d.ndbs + 1) * sizeof *d.pconn);
    /* The RTO: from the start of the restore to a checked, open database. */
    d.total_s = now_s() - t0;
    double c0 = now_s();
    uw_err cerr;
    uw_err_clear(&cerr);
    if (scratch_cleanup(&d.s, &cerr) < 0)
        fail_line(&d, "cleanup", "%s", cerr.msg);
    d.cleanup_s = now_s() - c0;
    if (!d.nfailures && scratch_cancel)
        fail_line(&d, "drill", "interrupted by a signal");
    text_report(&d, set, type[0] ? type : "?");
    const char *report = uw_cfg_str(cfg, UW_OPT_REPORT);
    uw_err rerr;
    uw_err_clear(&rerr);
    if (report && json_report(&d, set, type[0] ? type : "?", report, &rerr) < 0)
        fail_line(&d, "report", "%s", rerr.msg);
    int rc = 0;
    if (d.nfailures)
        rc = uw_fail(err, UW_E_DRILL, "drill failed at step %s: %s%s", d.failed_step, d.failures[0],
                     d.nfailures > 1 ? " (and more, see the report)" : "");
    record_state(&d, set, start, rc < 0 ? err : NULL);
    scratch_free(&d.s);
    drill_free(&d);
    return rc;
}
