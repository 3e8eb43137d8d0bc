/* ue-pitr metrics, the pure part (see metrics.h). */
#include <ctype.h>
#include <math.h> /* isnan, isinf: macros, no libm */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "io/sink.h"
#include "metrics.h"

typedef struct {
    int family;   /* index into families */
    char *labels; /* rendered: {a="b",c="d"} or "" */
    double value;
} sample;

typedef struct {
    const char *name, *type, *help; /* literals of the caller */
} family;

struct uw_prom {
    family *families;
    int nfamilies;
    sample *samples;
    int nsamples;
};

uw_prom *uw_prom_new(void)
{
    return uw_calloc(1, sizeof(uw_prom));
}

void uw_prom_free(uw_prom *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nsamples; i++)
        free(p->samples[i].labels);
    free(p->samples);
    free(p->families);
    free(p);
}

int uw_prom_count(const uw_prom *p)
{
    return p->nsamples;
}

static void append(uw_buf *b, const char *s)
{
    uw_buf_append(b, s, strlen(s));
}

/* A label value: backslash, double quote and newline escaped. */
static void append_label_value(uw_buf *b, const char *v)
{
    for (const char *c = v; *c; c++) {
        if (*c == '\\')
            append(b, "\\\\");
        else if (*c == '"')
            append(b, "\\\"");
        else if (*c == '\n')
            append(b, "\\n");
        else
            uw_buf_append(b, c, 1);
    }
}

static char *render_labels(const char *const *labels)
{
    uw_buf b = {0};
    int n = 0;
    for (int i = 0; labels && labels[i]; i += 2) {
        if (!labels[i + 1])
            continue;
        append(&b, n++ ? "," : "{");
        append(&b, labels[i]);
        append(&b, "=\"");
        append_label_value(&b, labels[i + 1]);
        append(&b, "\"");
    }
    if (n)
        append(&b, "}");
    uw_buf_append(&b, "", 1);
    return (char *)b.data;
}

void uw_prom_add(uw_prom *p, const char *name, const char *type, const char *help, double value,
                 const char *const *labels)
{
    int f = 0;
    while (f < p->nfamilies && strcmp(p->families[f].name, name) != 0)
        f++;
    if (f == p->nfamilies) {
        p->families = uw_realloc(p->families, sizeof(family) * (size_t)(p->nfamilies + 1));
        p->families[p->nfamilies++] = (family){name, type, help};
    }
    p->samples = uw_realloc(p->samples, sizeof(sample) * (size_t)(p->nsamples + 1));
    p->samples[p->nsamples++] = (sample){f, render_labels(labels), value};
}

/* Integers (timestamps, byte counts) exactly; other values with enough
 * digits to tell them apart. */
static void append_value(uw_buf *b, double v)
{
    char s[64];
    if (isnan(v))
        snprintf(s, sizeof s, "NaN");
    else if (isinf(v))
        snprintf(s, sizeof s, "%s", v > 0 ? "+Inf" : "-Inf");
    else if ((v < 0 ? -v : v) < 9007199254740992.0 && v == (double)(int64_t)v)
        snprintf(s, sizeof s, "%.0f", v);
    else
        snprintf(s, sizeof s, "%.15g", v);
    append(b, s);
}

char *uw_prom_render(const uw_prom *p)
{
    uw_buf b = {0};
    for (int f = 0; f < p->nfamilies; f++) {
        const family *fa = &p->families[f];
        append(&b, "# HELP ");
        append(&b, fa->name);
        append(&b, " ");
        /* HELP text escapes backslash and newline only. */
        for (const char *c = fa->help; *c; c++)
            append(&b, *c == '\\' ? "\\\\" : *c == '\n' ? "\\n" : (char[]){*c, 0});
        append(&b, "\n# TYPE ");
        append(&b, fa->name);
        append(&b, " ");
        append(&b, fa->type);
        append(&b, "\n");
        for (int i = 0; i < p->nsamples; i++) {
            if (p->samples[i].family != f)
                continue;
            append(&b, fa->name);
            append(&b, p->samples[i].labels);
            append(&b, " ");
            append_value(&b, p->samples[i].value);
            append(&b, "\n");
        }
    }
    uw_buf_append(&b, "", 1);
    return (char *)b.data;
}

int64_t uw_backup_id_time(const char *id)
{
    /* The stamp is the last 16 characters: YYYYMMDD-HHMMSS and F or I. */
    size_t n = strlen(id);
    if (n < 16)
        return -1;
    const char *s = id + n - 16;
    for (int i = 0; i < 15; i++)
        if (i == 8 ? s[i] != '-' : !isdigit((unsigned char)s[i]))
            return -1;
    if (s[15] != 'F' && s[15] != 'I')
        return -1;
    struct tm tm = {0};
    int v[6];
    if (sscanf(s, "%4d%2d%2d-%2d%2d%2d", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
        return -1;
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return -1;
    return (int64_t)timegm(&tm);
}

static bool is_hex_upper(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* "backup/<id>/manifest": a complete backup. */
static void account_backup(uw_repo_usage *u, const char *rest)
{
    const char *slash = strchr(rest, '/');
    if (!slash || strcmp(slash + 1, "manifest") != 0)
        return;
    char id[64];
    size_t n = (size_t)(slash - rest);
    if (n == 0 || n >= sizeof id)
        return;
    memcpy(id, rest, n);
    id[n] = '\0';
    int64_t t = uw_backup_id_time(id);
    if (t < 0)
        return;
    u->backups++;
    if (!u->oldest[0] || t < uw_backup_id_time(u->oldest))
        snprintf(u->oldest, sizeof u->oldest, "%s", id);
    if (!u->newest[0] || t >= uw_backup_id_time(u->newest))
        snprintf(u->newest, sizeof u->newest, "%s", id);
}

/* "archive/<16 hex>/<24 hex>-<content id>...": one segment. */
static void account_wal(uw_repo_usage *u, const char *rest)
{
    const char *slash = strchr(rest, '/');
    if (!slash || slash - rest != 16 || !is_hex_upper(rest, 16))
        return;
    const char *name = slash + 1;
    if (strlen(name) < 25 || !is_hex_upper(name, 24) || name[24] != '-' ||
        strncmp(name, rest, 16) != 0)
        return;
    u->wal_segments++;
    if (strncmp(name, u->newest_wal, 24) > 0 || !u->newest_wal[0])
        snprintf(u->newest_wal, sizeof u->newest_wal, "%.24s", name);
}

void uw_repo_usage_add(uw_repo_usage *u, const char *path, uint64_t size)
{
    u->bytes += size;
    u->objects++;
    if (strncmp(path, "backup/", 7) == 0) {
        u->backup_bytes += size;
        account_backup(u, path + 7);
    } else if (strncmp(path, "archive/", 8) == 0) {
        u->wal_bytes += size;
        account_wal(u, path + 8);
    }
}
