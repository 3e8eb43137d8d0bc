/* The pure parts of drill and restore-table (drill.h): the --check-sql file,
 * the tolerance, table names and the pg_database catalog pages. No clock, no
 * I/O. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drill.h"

/* ------------------------------------------------------ the check file -- */

static char *trimmed(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return uw_strndup(s, n);
}

/* "-- key: value" with key one of the directives: the value, else NULL. */
static char *directive(const char *line, size_t n, const char *key)
{
    const char *p = line, *end = line + n;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (end - p < 2 || p[0] != '-' || p[1] != '-')
        return NULL;
    p += 2;
    while (p < end && isspace((unsigned char)*p))
        p++;
    size_t k = strlen(key);
    if ((size_t)(end - p) <= k || strncmp(p, key, k) != 0 || p[k] != ':')
        return NULL;
    p += k + 1;
    return trimmed(p, (size_t)(end - p));
}

static bool is_directive(const char *line, size_t n)
{
    static const char *const keys[] = {"check", "database", "expect"};
    for (size_t i = 0; i < 3; i++) {
        char *v = directive(line, n, keys[i]);
        if (v) {
            free(v);
            return true;
        }
    }
    return false;
}

/* Only comments and white space? */
static bool blank_sql(const char *sql)
{
    for (const char *line = sql; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char *t = trimmed(line, n);
        bool empty = !t[0] || !strncmp(t, "--", 2);
        free(t);
        if (!empty)
            return false;
        line = nl ? nl + 1 : NULL;
    }
    return true;
}

static bool line_blank(const char *line, size_t n)
{
    char *t = trimmed(line, n);
    bool blank = !t[0] || !strncmp(t, "--", 2);
    free(t);
    return blank;
}

/* End the block being read (if any): it needs an expectation and SQL. */
static int close_check(drill_checks *c, uw_buf *sql, const char *file, uw_err *err)
{
    if (!c->n)
        return 0;
    drill_check *k = &c->v[c->n - 1];
    if (k->sql)
        return 0;
    char *text = trimmed(sql->len ? (const char *)sql->data : "", sql->len);
    uw_buf_free(sql);
    if (!k->expect && !k->production) {
        free(text);
        return uw_fail(err, UW_E_OPTION, "%s:%d: check '%s' has no '-- expect:' line", file,
                       k->line, k->name);
    }
    if (blank_sql(text)) {
        free(text);
        return uw_fail(err, UW_E_OPTION, "%s:%d: check '%s' has no query", file, k->line, k->name);
    }
    k->sql = text;
    return 0;
}

/* A directive line: a new block starts unless the current one has no SQL yet. */
static int take_directive(drill_checks *c, uw_buf *sql, const char *line, size_t n, int lineno,
                          const char *file, uw_err *err)
{
    drill_check *k = c->n ? &c->v[c->n - 1] : NULL;
    if (!k || k->sql || (sql->len && !blank_sql((const char *)sql->data))) {
        if (close_check(c, sql, file, err) < 0)
            return -1;
        c->v = uw_realloc(c->v, (c->n + 1) * sizeof *c->v);
        k = &c->v[c->n++];
        memset(k, 0, sizeof *k);
        k->line = lineno;
        uw_buf_free(sql);
    }
    char *v;
    if ((v = directive(line, n, "check"))) {
        free(k->name);
        k->name = v;
    } else if ((v = directive(line, n, "database"))) {
        free(k->database);
        k->database = v;
    } else if ((v = directive(line, n, "expect"))) {
        free(k->expect);
        k->expect = NULL;
        k->production = !strcmp(v, "production");
        if (k->production)
            free(v);
        else
            k->expect = v;
    }
    return 0;
}

int drill_checks_parse(const char *text, const char *file, drill_checks *out, uw_err *err)
{
    memset(out, 0, sizeof *out);
    uw_buf sql = {0};
    int lineno = 0, rc = 0;
    for (const char *line = text; rc == 0 && line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        lineno++;
        if (is_directive(line, n))
            rc = take_directive(out, &sql, line, n, lineno, file, err);
        else if (out->n && !out->v[out->n - 1].sql) {
            uw_buf_append(&sql, line, n);
            uw_buf_append(&sql, "\n", 1);
        } else if (!line_blank(line, n))
            rc = uw_fail(err, UW_E_OPTION,
                         "%s:%d: SQL outside a check (start one with '-- expect:')", file, lineno);
        line = nl ? nl + 1 : NULL;
    }
    if (rc == 0)
        rc = close_check(out, &sql, file, err);
    uw_buf_free(&sql);
    for (size_t i = 0; rc == 0 && i < out->n; i++)
        if (!out->v[i].name)
            out->v[i].name = uw_sprintf("line %d", out->v[i].line);
    if (rc == 0 && !out->n)
        rc = uw_fail(err, UW_E_OPTION, "%s: no check in the file (see '-- expect:')", file);
    if (rc < 0)
        drill_checks_free(out);
    return rc;
}

void drill_checks_free(drill_checks *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].name);
        free(c->v[i].database);
        free(c->v[i].expect);
        free(c->v[i].sql);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------ tolerance -- */

int drill_parse_tolerance(const char *s, double *pct, uw_err *err)
{
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : NAN;
    if (!s || !*s || errno || !end || *end || !(v >= 0 && v <= 100))
        return uw_fail(err, UW_E_OPTION,
                       "option 'tolerance': '%s' is not a percentage from 0 to 100", s ? s : "");
    *pct = v;
    return 0;
}

bool drill_within(int64_t got, int64_t want, double pct)
{
    int64_t diff = got > want ? got - want : want - got;
    int64_t base = got > want ? got : want;
    return (double)diff <= (double)base * pct / 100.0;
}

/* ---------------------------------------------------------- table names -- */

/* One part of a name at *p: quoted or up to the next '.'. */
static char *name_part(const char **p, bool *ok)
{
    const char *s = *p;
    uw_buf b = {0};
    if (*s == '"') {
        s++;
        for (;;) {
            if (!*s) {
                *ok = false;
                break;
            }
            if (*s == '"' && s[1] == '"') {
                uw_buf_append(&b, "\"", 1);
                s += 2;
            } else if (*s == '"') {
                s++;
                break;
            } else
                uw_buf_append(&b, s++, 1);
        }
    } else {
        while (*s && *s != '.' && *s != '"')
            uw_buf_append(&b, s++, 1);
    }
    *p = s;
    if (!b.len)
        *ok = false;
    char *r = uw_strndup(b.len ? (const char *)b.data : "", b.len);
    uw_buf_free(&b);
    return r;
}

int drill_table_parse(const char *s, char **schema, char **table, uw_err *err)
{
    const char *p = s;
    bool ok = true;
    *schema = name_part(&p, &ok);
    if (ok && *p == '.') {
        p++;
        *table = name_part(&p, &ok);
    } else {
        *table = NULL;
        ok = false;
    }
    if (!ok || *p) {
        free(*schema);
        free(*table);
        *schema = *table = NULL;
        return uw_fail(err, UW_E_OPTION,
                       "option 'table': '%s' is not SCHEMA.TABLE (quote a part that holds a dot "
                       "with double quotes)",
                       s);
    }
    return 0;
}

static void quoted(uw_buf *b, const char *s)
{
    uw_buf_append(b, "\"", 1);
    for (; *s; s++)
        uw_buf_append(b, *s == '"' ? "\"\"" : s, *s == '"' ? 2 : 1);
    uw_buf_append(b, "\"", 1);
}

char *drill_table_pattern(const char *schema, const char *table)
{
    uw_buf b = {0};
    quoted(&b, schema);
    uw_buf_append(&b, ".", 1);
    quoted(&b, table);
    uw_buf_append(&b, "", 1);
    return (char *)b.data;
}

/* ------------------------------------------------------ pg_database -- */

#define PAGE 8192
#define PAGE_HEADER 24
#define TUPLE_HOFF 22  /* offsetof(HeapTupleHeaderData, t_hoff) */
#define NAMEDATALEN 64 /* datname */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* The tuples of one page: (oid, datname) is the start of every pg_database
 * row (oid is its first column, datname the second, char-aligned). */
static int page_oids(const uint8_t *pg, const char *name, uint32_t *oids, int n, int max)
{
    uint16_t lower = le16(pg + 12), upper = le16(pg + 14);
    if (lower < PAGE_HEADER || lower > upper || upper > PAGE)
        return n;
    for (size_t off = PAGE_HEADER; off + 4 <= lower && n < max; off += 4) {
        uint32_t id = le32(pg + off);
        uint32_t lp_off = id & 0x7fff, lp_flags = (id >> 15) & 3, lp_len = id >> 17;
        if (lp_flags != 1 /* LP_NORMAL */ || lp_off < upper || lp_off + lp_len > PAGE ||
            lp_len < TUPLE_HOFF + 1)
            continue;
        const uint8_t *tup = pg + lp_off;
        uint8_t hoff = tup[TUPLE_HOFF];
        if (hoff < TUPLE_HOFF + 1 || (size_t)hoff + 4 + NAMEDATALEN > lp_len)
            continue;
        const char *dn = (const char *)tup + hoff + 4;
        if (memchr(dn, '\0', NAMEDATALEN) && !strcmp(dn, name))
            oids[n++] = le32(tup + hoff);
    }
    return n;
}

int drill_pg_database_oids(const uint8_t *data, size_t len, const char *name, uint32_t *oids,
                           int max)
{
    int n = 0;
    for (size_t p = 0; p + PAGE <= len && n < max; p += PAGE)
        n = page_oids(data + p, name, oids, n, max);
    return n;
}

static bool digits(const char *s, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* An oid component at p ending in '/': its value. */
static bool oid_component(const char *p, uint32_t *oid, const char **rest)
{
    const char *slash = strchr(p, '/');
    if (!slash || !digits(p, (size_t)(slash - p)) || slash - p > 10)
        return false;
    unsigned long long v = strtoull(p, NULL, 10);
    if (v > UINT32_MAX)
        return false;
    *oid = (uint32_t)v;
    *rest = slash + 1;
    return true;
}

bool drill_relation_db(const char *path, uint32_t *db)
{
    const char *rest = NULL;
    uint32_t ts;
    if (!strncmp(path, "base/", 5)) {
        if (!oid_component(path + 5, db, &rest))
            return false;
    } else if (!strncmp(path, "pg_tblspc/", 10)) {
        const char *ver;
        if (!oid_component(path + 10, &ts, &ver))
            return false;
        const char *slash = strchr(ver, '/');
        if (!slash || !oid_component(slash + 1, db, &rest))
            return false;
    } else
        return false;
    /* A relation file: <relfilenode>[_fsm|_vm|_init][.<segment>] */
    return isdigit((unsigned char)rest[0]) && !strchr(rest, '/');
}
