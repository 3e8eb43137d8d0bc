/* Restore targets: the --target-* options, checked before anything is read
 * from a repository. Pure: no clock, no I/O. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "pg/wal.h"
#include "restore.h"

const restore_target_option restore_target_options[RESTORE_TARGET_OPTIONS] = {
    {"target-time", UW_OPT_TARGET_TIME, RT_TIME}, {"target-lsn", UW_OPT_TARGET_LSN, RT_LSN},
    {"target-xid", UW_OPT_TARGET_XID, RT_XID},    {"target-name", UW_OPT_TARGET_NAME, RT_NAME},
    {"target", UW_OPT_TARGET, RT_IMMEDIATE},
};

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* "Z", "UTC", "GMT" or "+HH[[:]MM]"/"-HH[[:]MM]" to seconds east of UTC. */
static int parse_offset(const char *p, int *off)
{
    if (!strcmp(p, "Z") || !strcmp(p, "z") || !strcasecmp(p, "UTC") || !strcasecmp(p, "GMT")) {
        *off = 0;
        return 0;
    }
    if (*p != '+' && *p != '-')
        return *p ? -3 : -2; /* a zone name / no time zone */
    int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
    if (digits(&p, 2, &oh))
        return -1;
    if (*p == ':')
        p++;
    if (*p && digits(&p, 2, &om))
        return -1;
    if (*p || oh > 15 || om > 59)
        return -1;
    *off = sign * (oh * 3600 + om * 60);
    return 0;
}

/* A timestamp with an explicit offset: "YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]]" then
 * "Z", "UTC", "GMT" or "+HH[[:]MM]"/"-HH[[:]MM]" (optionally after a blank).
 * Without an offset PostgreSQL would read the time in the restored server's
 * TimeZone setting, which this tool cannot know when it checks the target
 * against the backups and the archive, so an offset is required. */
int restore_parse_time(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h, mi, sec = 0, us = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || (*p != ' ' && *p != 'T' && *p != 't'))
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
        return -1;
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &sec))
            return -1;
        if (*p == '.') {
            p++;
            int n = 0;
            while (*p >= '0' && *p <= '9') {
                if (n < 6)
                    us = us * 10 + (*p - '0');
                n++;
                p++;
            }
            if (!n)
                return -1;
            for (; n < 6; n++)
                us *= 10;
        }
    }
    while (*p == ' ')
        p++;
    int off = 0, rc = parse_offset(p, &off);
    if (rc < 0)
        return rc;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d || tm.tm_mon != mo - 1) /* 2026-02-30 */
        return -1;
    *out = ((int64_t)t - off) * 1000000 + us;
    return 0;
}

/* The value of the one target given, checked for its kind. */
static int check_value(restore_target *t, uw_err *err)
{
    switch (t->kind) {
    case RT_TIME: {
        int rc = restore_parse_time(t->value, &t->time_us);
        if (rc == -2)
            return uw_fail(err, UW_E_OPTION,
                           "option 'target-time': '%s' has no time zone: add an offset such as "
                           "'+00' or 'Z' (PostgreSQL would otherwise read it in the restored "
                           "server's time zone)",
                           t->value);
        if (rc == -3)
            return uw_fail(err, UW_E_OPTION,
                           "option 'target-time': '%s': time zone names are not supported, give "
                           "a numeric offset such as '+01' or '-05:30', or 'Z'",
                           t->value);
        if (rc < 0)
            return uw_fail(err, UW_E_OPTION,
                           "option 'target-time': '%s' is not a timestamp like "
                           "'2026-11-25 12:00:00+00'",
                           t->value);
        break;
    }
    case RT_LSN:
        if (uw_lsn_parse(t->value, &t->lsn) < 0)
            return uw_fail(err, UW_E_OPTION,
                           "option 'target-lsn': '%s' is not an LSN like '0/16B3D48'", t->value);
        break;
    case RT_XID: {
        const char *p = t->value;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p || p == t->value || p - t->value > 20)
            return uw_fail(err, UW_E_OPTION, "option 'target-xid': '%s' is not a transaction id",
                           t->value);
        break;
    }
    case RT_NAME:
        /* PostgreSQL's restore point names are shorter than MAXFNAMELEN (64). */
        if (strlen(t->value) >= 64)
            return uw_fail(err, UW_E_OPTION,
                           "option 'target-name': '%.70s...' is longer than 63 bytes", t->value);
        break;
    default: break;
    }
    return 0;
}

int restore_target_parse(const restore_target_input *in, restore_target *t, uw_err *err)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < RESTORE_TARGET_OPTIONS; i++) {
        if (!in->given[i])
            continue;
        if (t->kind != RT_NONE)
            return uw_fail(err, UW_E_OPTION,
                           "options '--%s' and '--%s' are mutually exclusive: give one target",
                           t->option, restore_target_options[i].option);
        t->kind = restore_target_options[i].kind;
        t->option = restore_target_options[i].option;
        t->value = in->given[i];
    }
    if (check_value(t, err) < 0)
        return -1;
    t->tli_text = in->timeline;
    if (!t->tli_text || !strcmp(t->tli_text, "latest")) {
        t->tli = 0;
    } else if (!strcmp(t->tli_text, "current")) {
        t->tli = UINT32_MAX;
    } else {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(t->tli_text, &end, 10);
        if (errno || *end || end == t->tli_text || v < 1 || v >= UINT32_MAX)
            return uw_fail(err, UW_E_OPTION,
                           "option 'target-timeline': '%s' is not latest, current or a timeline "
                           "number",
                           t->tli_text);
        t->tli = (uint32_t)v;
    }
    t->action = in->action;
    return 0;
}

int restore_target_from_config(const uw_config *cfg, restore_target *t, uw_err *err)
{
    restore_target_input in = {{NULL}, NULL, NULL};
    for (size_t i = 0; i < RESTORE_TARGET_OPTIONS; i++)
        if (uw_cfg_isset(cfg, restore_target_options[i].id))
            in.given[i] = uw_cfg_str(cfg, restore_target_options[i].id);
    in.timeline = uw_cfg_str(cfg, UW_OPT_TARGET_TIMELINE);
    in.action = uw_cfg_str(cfg, UW_OPT_TARGET_ACTION);
    if (restore_target_parse(&in, t, err) < 0)
        return -1;
    if (uw_cfg_isset(cfg, UW_OPT_TARGET_ACTION) && t->kind == RT_NONE)
        uw_log(UW_LOG_WARN, "option 'target-action' has no effect without a target: recovery "
                            "runs to the end of the archive and promotes");
    return 0;
}

void restore_target_describe(const restore_target *t, char *buf, size_t len)
{
    char tmp[64];
    switch (t->kind) {
    case RT_NONE: snprintf(buf, len, "the end of the archived WAL"); break;
    case RT_TIME:
        uw_iso_time(t->time_us, tmp, sizeof tmp);
        snprintf(buf, len, "time %s", tmp);
        break;
    case RT_LSN: snprintf(buf, len, "LSN %s", t->value); break;
    case RT_XID: snprintf(buf, len, "transaction %s", t->value); break;
    case RT_NAME: snprintf(buf, len, "restore point '%s'", t->value); break;
    case RT_IMMEDIATE: snprintf(buf, len, "the end of the backup (immediate)"); break;
    }
}

/* Time: stop_time is recorded in whole seconds, so the backup became
 * consistent somewhere in [stop_time, stop_time + 1): a target inside that
 * second might come before it, and a backup only qualifies from the next
 * second on (recovery stopping before consistency is fatal; an older backup
 * just replays more WAL). */
bool restore_before_target(const restore_target *t, const uw_manifest *m)
{
    if (t->kind == RT_TIME)
        return (m->stop_time + 1) * INT64_C(1000000) <= t->time_us;
    if (t->kind == RT_LSN)
        return m->stop_lsn <= t->lsn;
    return true;
}
