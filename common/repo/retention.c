/* Retention policy (see retention.h): pure, no clock and no I/O. */
#include "repo/retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "core/error.h"

int uw_period_parse(const char *s, uw_period *out)
{
    if (!s || !*s)
        return -1;
    long n = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9' && n <= 100000)
        n = n * 10 + (*p++ - '0');
    if (p == s || n < 1 || n > 100000 || !p[0] || p[1] || !strchr("dwmy", p[0]))
        return -1;
    out->n = (int)n;
    out->unit = p[0];
    return 0;
}

static int days_in_month(int year, int mon0)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return mon0 == 1 && leap ? 29 : d[mon0];
}

int64_t uw_period_cutoff(int64_t now, uw_period p)
{
    if (p.unit == 'd')
        return now - (int64_t)p.n * 86400;
    if (p.unit == 'w')
        return now - (int64_t)p.n * 7 * 86400;
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    long months = (long)tm.tm_year * 12 + tm.tm_mon - (p.unit == 'y' ? 12L * p.n : p.n);
    tm.tm_year = (int)(months / 12);
    tm.tm_mon = (int)(months % 12);
    int dim = days_in_month(tm.tm_year + 1900, tm.tm_mon);
    if (tm.tm_mday > dim)
        tm.tm_mday = dim;
    return (int64_t)timegm(&tm);
}

/* Bucket keys of a start time: UTC day, ISO week (its Monday), month, year. */
static int64_t day_key(int64_t t)
{
    return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

static int64_t week_key(int64_t t)
{
    int64_t d = day_key(t);
    int64_t wd = ((d + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; Monday = 0 */
    return d - wd;
}

static int64_t month_key(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    return (int64_t)tm.tm_year * 12 + tm.tm_mon;
}

static int64_t year_key(int64_t t)
{
    return month_key(t) / 12;
}

/* Index of each backup's prior (-1: none, or not in the list). The prior
 * usually comes just before in a time-ordered list: search backwards from it. */
static ssize_t *prior_index(const uw_ret_backup *b, size_t n)
{
    ssize_t *p = uw_calloc(n + 1, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = -1;
        for (size_t k = 0; b[i].prior && k < n && p[i] < 0; k++) {
            size_t j = (i + n - 1 - k) % n;
            if (j != i && !strcmp(b[j].label, b[i].prior))
                p[i] = (ssize_t)j;
        }
    }
    return p;
}

/* The full backup at the root of b[i]'s chain, or -1 (broken chain). */
static ssize_t root_of(const uw_ret_backup *b, const ssize_t *prior, size_t n, size_t i)
{
    ssize_t cur = (ssize_t)i;
    for (size_t steps = 0; cur >= 0 && !b[cur].full && steps <= n; steps++)
        cur = prior[cur];
    return cur >= 0 && b[cur].full ? cur : -1;
}

static bool complete_full(const uw_ret_backup *x)
{
    return x->full && !x->in_progress;
}

/* Order of full backups by start time, ties by label. */
static bool before(const uw_ret_backup *a, const uw_ret_backup *b)
{
    if (a->start_time != b->start_time)
        return a->start_time < b->start_time;
    return strcmp(a->label, b->label) < 0;
}

/* Indices of the complete full backups, oldest first. Insertion sort: the
 * callers' lists come sorted by time already, which makes it linear. */
static size_t *fulls_sorted(const uw_ret_backup *b, size_t n, size_t *nf)
{
    size_t *idx = uw_calloc(n + 1, sizeof *idx);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!complete_full(&b[i]))
            continue;
        size_t j = k++;
        while (j > 0 && before(&b[i], &b[idx[j - 1]])) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    *nf = k;
    return idx;
}

/* GFS: the first full backup of each bucket, when it started within the period. */
static void gfs_rule(const uw_ret_backup *b, const size_t *fulls, size_t nf, uw_period p,
                     int64_t (*key)(int64_t), unsigned bit, int64_t now, unsigned *rules)
{
    if (!p.n)
        return;
    int64_t cutoff = uw_period_cutoff(now, p);
    for (size_t k = 0; k < nf; k++) {
        const uw_ret_backup *x = &b[fulls[k]];
        bool first = k == 0 || key(b[fulls[k - 1]].start_time) != key(x->start_time);
        if (first && x->start_time >= cutoff)
            rules[fulls[k]] |= bit;
    }
}

static void count_rule(const uw_ret_backup *b, const ssize_t *prior, size_t n, const size_t *fulls,
                       size_t nf, const uw_ret_options *o, unsigned *rules)
{
    if (!o->full_count)
        return;
    for (size_t k = nf > (size_t)o->full_count ? nf - (size_t)o->full_count : 0; k < nf; k++)
        rules[fulls[k]] |= UW_RET_FULL_COUNT;
    if (o->incr.n)
        return;
    for (size_t i = 0; i < n; i++) {
        ssize_t r = b[i].full ? -1 : root_of(b, prior, n, i);
        if (r >= 0 && (rules[r] & UW_RET_FULL_COUNT))
            rules[i] |= UW_RET_FULL_COUNT;
    }
}

static void add_range(uw_ret_range **v, size_t *n, uint32_t tli, uint64_t first, uint64_t last)
{
    *v = uw_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = (uw_ret_range){tli, first, last};
}

/* Consistency ranges, the point-in-time window and the history files. */
static void wal_plan(const uw_ret_backup *b, size_t n, const uw_ret_options *o, const size_t *fulls,
                     size_t nf, uw_ret_result *out)
{
    int64_t window_start = INT64_MIN;
    bool any = false, policy = false;
    for (size_t i = 0; i < n; i++) {
        any |= out->rules[i] && !b[i].in_progress;
        policy |= out->rules[i] && !(out->rules[i] & UW_RET_NO_POLICY);
    }
    if (!any || !policy) {
        out->keep_all_wal = true;
        return;
    }
    if (o->archive_count) {
        int seen = 0;
        for (size_t k = nf; k-- > 0 && seen < o->archive_count;)
            if (out->rules[fulls[k]]) {
                window_start = b[fulls[k]].start_time;
                seen++;
            }
    }
    for (size_t i = 0; i < n; i++) {
        const uw_ret_backup *x = &b[i];
        if (!out->rules[i] || x->in_progress)
            continue;
        add_range(&out->consistency, &out->nconsistency, x->timeline, x->start_segno,
                  x->stop_segno);
        if (x->start_time >= window_start)
            add_range(&out->window, &out->nwindow, x->timeline, x->start_segno, UINT64_MAX);
        if (!out->have_history_min || x->timeline < out->history_min)
            out->history_min = x->timeline;
        out->have_history_min = true;
    }
}

bool uw_ret_options_any(const uw_ret_options *o)
{
    return o->full_count || o->incr.n || o->daily.n || o->weekly.n || o->monthly.n || o->yearly.n;
}

void uw_retention_apply(const uw_ret_backup *b, size_t n, const uw_ret_options *o, int64_t now,
                        uw_ret_result *out)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    out->rules = uw_calloc(n + 1, sizeof *out->rules);
    unsigned *rules = out->rules;
    size_t nf;
    size_t *fulls = fulls_sorted(b, n, &nf);
    bool policy = uw_ret_options_any(o);
    for (size_t i = 0; i < n; i++) {
        if (b[i].in_progress)
            rules[i] |= UW_RET_IN_PROGRESS;
        if (b[i].pinned_until && b[i].pinned_until > now)
            rules[i] |= UW_RET_PINNED;
        if (!policy)
            rules[i] |= UW_RET_NO_POLICY;
        if (o->incr.n && !b[i].full && !b[i].in_progress &&
            b[i].start_time >= uw_period_cutoff(now, o->incr))
            rules[i] |= UW_RET_INCR;
    }
    ssize_t *prior = prior_index(b, n);
    count_rule(b, prior, n, fulls, nf, o, rules);
    gfs_rule(b, fulls, nf, o->daily, day_key, UW_RET_DAILY, now, rules);
    gfs_rule(b, fulls, nf, o->weekly, week_key, UW_RET_WEEKLY, now, rules);
    gfs_rule(b, fulls, nf, o->monthly, month_key, UW_RET_MONTHLY, now, rules);
    gfs_rule(b, fulls, nf, o->yearly, year_key, UW_RET_YEARLY, now, rules);
    bool full_kept = false;
    for (size_t k = 0; k < nf; k++)
        full_kept |= rules[fulls[k]] != 0;
    if (!full_kept && nf)
        rules[fulls[nf - 1]] |= UW_RET_ONLY_FULL;
    /* Dependencies: follow each kept backup's chain down to its full,
     * stopping where an earlier walk already went. */
    for (size_t i = 0; i < n; i++) {
        if (!rules[i] || (rules[i] & ~UW_RET_DEPENDENCY) == 0)
            continue;
        ssize_t cur = prior[i];
        for (size_t steps = 0; cur >= 0 && steps <= n; steps++) {
            if (rules[cur] & UW_RET_DEPENDENCY)
                break;
            rules[cur] |= UW_RET_DEPENDENCY;
            cur = b[cur].full ? -1 : prior[cur];
        }
    }
    free(prior);
    wal_plan(b, n, o, fulls, nf, out);
    free(fulls);
}

void uw_ret_result_free(uw_ret_result *r)
{
    free(r->rules);
    free(r->consistency);
    free(r->window);
    memset(r, 0, sizeof *r);
}

bool uw_ret_wal_needed(const uw_ret_result *r, uint32_t tli, uint64_t segno)
{
    if (r->keep_all_wal)
        return true;
    for (size_t i = 0; i < r->nconsistency; i++) {
        const uw_ret_range *c = &r->consistency[i];
        if (c->tli == tli && segno >= c->first && segno <= c->last)
            return true;
    }
    for (size_t i = 0; i < r->nwindow; i++)
        if (r->window[i].tli <= tli && segno >= r->window[i].first)
            return true;
    return false;
}

uint64_t uw_ret_oldest_needed(const uw_ret_result *r, uint32_t tli)
{
    if (r->keep_all_wal)
        return 0;
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < r->nconsistency; i++)
        if (r->consistency[i].tli == tli && r->consistency[i].first < min)
            min = r->consistency[i].first;
    for (size_t i = 0; i < r->nwindow; i++)
        if (r->window[i].tli <= tli && r->window[i].first < min)
            min = r->window[i].first;
    return min;
}

bool uw_ret_history_needed(const uw_ret_result *r, uint32_t tli)
{
    return r->keep_all_wal || (r->have_history_min && r->history_min <= tli);
}

static const struct {
    unsigned bit;
    const char *name;
} rule_names[] = {
    {UW_RET_FULL_COUNT, "retention-full"},
    {UW_RET_INCR, "retention-incr"},
    {UW_RET_DAILY, "retention-daily"},
    {UW_RET_WEEKLY, "retention-weekly"},
    {UW_RET_MONTHLY, "retention-monthly"},
    {UW_RET_YEARLY, "retention-yearly"},
    {UW_RET_PINNED, "pinned"},
    {UW_RET_DEPENDENCY, "needed by a kept incremental"},
    {UW_RET_ONLY_FULL, "only full backup"},
    {UW_RET_IN_PROGRESS, "in progress"},
    {UW_RET_NO_POLICY, "no retention set"},
};

const char *uw_ret_rules_str(unsigned rules, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof rule_names / sizeof rule_names[0]; i++)
        if ((rules & rule_names[i].bit) && used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
                                     rule_names[i].name);
    return buf;
}

static void period_str(uw_period p, char *buf, size_t len)
{
    snprintf(buf, len, "%d%c", p.n, p.unit);
}

const char *uw_ret_removal_str(const uw_ret_backup *b, const uw_ret_options *o, char *buf,
                               size_t len)
{
    char p[32];
    size_t used = 0;
    buf[0] = '\0';
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (used < len)                                                                            \
            used += (size_t)snprintf(buf + used, len - used, __VA_ARGS__);                         \
    } while (0)
    if (!b->full) {
        if (o->incr.n) {
            period_str(o->incr, p, sizeof p);
            ADD("older than retention-incr=%s", p);
        } else if (o->full_count) {
            ADD("its full backup is not among the newest %d (retention-full)", o->full_count);
        } else {
            ADD("no rule keeps incremental backups");
        }
    } else {
        if (o->full_count)
            ADD("not among the newest %d full backups (retention-full)", o->full_count);
        const struct {
            uw_period per;
            const char *name, *bucket;
        } g[] = {{o->daily, "daily", "day"},
                 {o->weekly, "weekly", "ISO week"},
                 {o->monthly, "monthly", "month"},
                 {o->yearly, "yearly", "year"}};
        for (size_t i = 0; i < 4; i++) {
            if (!g[i].per.n)
                continue;
            period_str(g[i].per, p, sizeof p);
            ADD("%snot the first full of a %s within retention-%s=%s", used ? "; " : "",
                g[i].bucket, g[i].name, p);
        }
        if (!used)
            ADD("no rule keeps full backups");
    }
    if (b->pinned_until)
        ADD("; pin ended");
#undef ADD
    return buf;
}
