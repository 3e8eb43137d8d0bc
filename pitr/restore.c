/* restore: bring a base backup back into a data directory and set it up to
 * recover to a target with ue-wal-fetch.
 *
 * Everything that can be checked is checked before the first byte is written:
 * the target options, the backup chain (every manifest the backup refers to),
 * the WAL the target needs (a target the archive cannot reach would only fail
 * after the copy, in the server log), and the state of the data directory and
 * the tablespace locations. Then directories, tablespace links, files (in
 * parallel, each verified against the manifest's SHA-256), and global/pg_control
 * last: a restore interrupted half-way leaves a directory PostgreSQL refuses to
 * start, instead of one that starts on a partial copy. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "repo/archive_info.h"
#include "core/cmd.h"
#include "repo/manifest.h"
#include "pg/pg.h"
#include "pitr.h"
#include "work/pool.h"
#include "repo/repo.h"
#include "work/restore_file.h"

/* How long --start waits for recovery to reach its target. Recovery speed
 * depends on the WAL volume, so this is a bound against a hang, not an
 * estimate. */
#define START_TIMEOUT_S 600
/* How many segments back from the end of the archive to look for the last
 * transaction when checking a target time. */
#define XACT_SCAN_SEGMENTS 64

#define BLOCK_BEGIN "# ue-wal restore begin"
#define BLOCK_END "# ue-wal restore end"

static void fmt_lsn(uint64_t lsn, char *buf, size_t len)
{
    uw_lsn_format(lsn, buf, len);
}

/* ------------------------------------------------------------- targets -- */

typedef enum { T_NONE, T_TIME, T_LSN, T_XID, T_NAME, T_IMMEDIATE } target_kind;

typedef struct {
    target_kind kind;
    const char *option; /* "target-time" ... */
    const char *value;
    int64_t time_us; /* T_TIME */
    uint64_t lsn;    /* T_LSN */
    /* recovery_target_timeline: 0 latest, UINT32_MAX current, else the number */
    uint32_t tli;
    const char *tli_text;
    const char *action;
} target;

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

/* A timestamp with an explicit offset: "YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]]" then
 * "Z", "UTC", "GMT" or "+HH[[:]MM]"/"-HH[[:]MM]" (optionally after a blank).
 * Without an offset PostgreSQL would read the time in the restored server's
 * TimeZone setting, which this tool cannot know when it checks the target
 * against the backups and the archive, so an offset is required. */
static int parse_time(const char *s, int64_t *out)
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
    int off = 0;
    if (!strcmp(p, "Z") || !strcmp(p, "z") || !strcasecmp(p, "UTC") || !strcasecmp(p, "GMT")) {
        off = 0;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (digits(&p, 2, &oh))
            return -1;
        if (*p == ':')
            p++;
        if (*p && digits(&p, 2, &om))
            return -1;
        if (*p || oh > 15 || om > 59)
            return -1;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return *p ? -3 : -2; /* a zone name / no time zone */
    }
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

static int parse_target(const uw_config *cfg, target *t, uw_err *err)
{
    memset(t, 0, sizeof *t);
    static const struct {
        const char *opt;
        target_kind kind;
    } kinds[] = {{"target-time", T_TIME},
                 {"target-lsn", T_LSN},
                 {"target-xid", T_XID},
                 {"target-name", T_NAME},
                 {"target", T_IMMEDIATE}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (!uw_cfg_isset(cfg, kinds[i].opt))
            continue;
        if (t->kind != T_NONE)
            return uw_fail(err, UW_E_OPTION,
                           "options '--%s' and '--%s' are mutually exclusive: give one target",
                           t->option, kinds[i].opt);
        t->kind = kinds[i].kind;
        t->option = kinds[i].opt;
        t->value = uw_cfg_str(cfg, kinds[i].opt);
    }
    switch (t->kind) {
    case T_TIME: {
        int rc = parse_time(t->value, &t->time_us);
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
    case T_LSN:
        if (uw_lsn_parse(t->value, &t->lsn) < 0)
            return uw_fail(err, UW_E_OPTION,
                           "option 'target-lsn': '%s' is not an LSN like '0/16B3D48'", t->value);
        break;
    case T_XID: {
        const char *p = t->value;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p || p == t->value || p - t->value > 20)
            return uw_fail(err, UW_E_OPTION, "option 'target-xid': '%s' is not a transaction id",
                           t->value);
        break;
    }
    case T_NAME:
        /* PostgreSQL's restore point names are shorter than MAXFNAMELEN (64). */
        if (strlen(t->value) >= 64)
            return uw_fail(err, UW_E_OPTION,
                           "option 'target-name': '%.70s...' is longer than 63 bytes", t->value);
        break;
    default: break;
    }
    t->tli_text = uw_cfg_str(cfg, "target-timeline");
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
    t->action = uw_cfg_str(cfg, "target-action");
    if (uw_cfg_isset(cfg, "target-action") && t->kind == T_NONE)
        uw_log(UW_LOG_WARN, "option 'target-action' has no effect without a target: recovery "
                            "runs to the end of the archive and promotes");
    return 0;
}

static void describe_target(const target *t, char *buf, size_t len)
{
    char tmp[64];
    switch (t->kind) {
    case T_NONE: snprintf(buf, len, "the end of the archived WAL"); break;
    case T_TIME:
        uw_iso_time(t->time_us, tmp, sizeof tmp);
        snprintf(buf, len, "time %s", tmp);
        break;
    case T_LSN: snprintf(buf, len, "LSN %s", t->value); break;
    case T_XID: snprintf(buf, len, "transaction %s", t->value); break;
    case T_NAME: snprintf(buf, len, "restore point '%s'", t->value); break;
    case T_IMMEDIATE: snprintf(buf, len, "the end of the backup (immediate)"); break;
    }
}

/* ------------------------------------------------------------ the state -- */

typedef struct {
    const uw_config *cfg;
    target t;
    uw_repo *repos;
    int nrepos;
    bool *usable;  /* stanza loaded and same cluster as the first */
    uw_repo *repo; /* the one the backup comes from */
    uw_manifest m; /* the backup */
    bool have_m;
    uw_manifest *chain; /* the backups it needs (prior, ref, base) */
    size_t nchain;
    uw_archive arch; /* WAL of every usable repository */
    bool have_arch;
    uw_tl_history hist; /* history of the timeline recovery will follow */
    uint32_t rec_tli;   /* that timeline */
    uw_reach reach;
    uw_wal_end wal_end;
    bool have_wal_end;
    char *pgdata; /* absolute */
    bool pgdata_exists;
    uid_t uid;
    gid_t gid;
    char owner[64];
    bool set_owner;
    bool delta;
    /* results */
    size_t files_written, files_skipped, removed;
    uint64_t bytes_written, bytes_skipped, bytes_read;
} restore;

/* ------------------------------------------------------ backup selection -- */

/* Resolve the timeline recovery from backup m follows, and check that the
 * backup lies on its history (PostgreSQL refuses "requested timeline is not a
 * child of this server's history" otherwise). Returns 0 and fills *h, 1 when
 * the backup is not on that history (msg explains), -1 on error. */
static int timeline_for(restore *rs, const uw_manifest *m, uint32_t *tli, uw_tl_history *h,
                        char *msg, size_t msglen, uw_err *err)
{
    const target *t = &rs->t;
    if (t->tli == 0)
        *tli = uw_archive_latest_tli(&rs->arch, m->timeline);
    else if (t->tli == UINT32_MAX)
        *tli = m->timeline;
    else
        *tli = t->tli;
    if (uw_archive_tl_history(&rs->arch, *tli, h, err) < 0) {
        if (err->code == UW_E_NOT_FOUND) {
            snprintf(msg, msglen, "timeline %" PRIu32 " has no history file in the archive", *tli);
            return 1;
        }
        return -1;
    }
    /* As PostgreSQL checks it: the timeline the history gives the backup's
     * start (the newest entry holding it) must be the backup's, and it must
     * not end before the backup is consistent. */
    for (size_t i = h->n; i-- > 0;) {
        const uw_tl_entry *e = &h->e[i];
        if (!(e->begin <= m->start_lsn && m->start_lsn < e->end))
            continue;
        if (e->tli == m->timeline && m->stop_lsn <= e->end)
            return 0;
        char sw[32];
        fmt_lsn(e->end, sw, sizeof sw);
        if (e->tli == m->timeline)
            snprintf(msg, msglen,
                     "backup %s is not on the history of timeline %" PRIu32 " (which left "
                     "timeline %" PRIu32 " at %s, before the backup was consistent)",
                     m->id, *tli, m->timeline, sw);
        else
            snprintf(msg, msglen,
                     "backup %s (timeline %" PRIu32 ") is not on the history of timeline %" PRIu32,
                     m->id, m->timeline, *tli);
        uw_tl_history_free(h);
        return 1;
    }
    snprintf(msg, msglen,
             "backup %s (timeline %" PRIu32 ") is not on the history of timeline %" PRIu32, m->id,
             m->timeline, *tli);
    uw_tl_history_free(h);
    return 1;
}

/* The newest backup that is consistent before the target. Time: stop_time is
 * recorded in whole seconds, so the backup became consistent somewhere in
 * [stop_time, stop_time + 1): a target inside that second might come before
 * it, and a backup only qualifies from the next second on (recovery stopping
 * before consistency is fatal; an older backup just replays more WAL). */
static bool before_target(const target *t, const uw_manifest *m)
{
    if (t->kind == T_TIME)
        return (m->stop_time + 1) * INT64_C(1000000) <= t->time_us;
    if (t->kind == T_LSN)
        return m->stop_lsn <= t->lsn;
    return true;
}

/* A backup's consistency point, for messages. */
typedef struct {
    char id[UW_BACKUP_ID_MAX];
    int64_t stop_time;
    uint64_t stop_lsn;
} bpoint;

static bpoint point_of(const uw_manifest *m)
{
    bpoint p;
    snprintf(p.id, sizeof p.id, "%s", m->id);
    p.stop_time = m->stop_time;
    p.stop_lsn = m->stop_lsn;
    return p;
}

static void describe_point(const bpoint *p, const target *t, char *buf, size_t len)
{
    char a[48], b[32];
    uw_iso_time(p->stop_time * INT64_C(1000000), a, sizeof a);
    fmt_lsn(p->stop_lsn, b, sizeof b);
    if (t->kind == T_LSN)
        snprintf(buf, len, "LSN %s, %s", b, a);
    else
        snprintf(buf, len, "%s, LSN %s", a, b);
}

static int too_early(const restore *rs, const bpoint *b, const bpoint *earliest, uw_err *err)
{
    char tdesc[128], cp[128], ep[128];
    describe_target(&rs->t, tdesc, sizeof tdesc);
    describe_point(b, &rs->t, cp, sizeof cp);
    describe_point(earliest, &rs->t, ep, sizeof ep);
    return uw_fail(err, UW_E_RESTORE,
                   "target %s is before the end of backup %s (consistent at %s); the earliest "
                   "restorable point is %s (backup %s)",
                   tdesc, b->id, cp, ep, earliest->id);
}

/* Backups are tried newest first, repository by repository; the first
 * repository holding one that qualifies is used. */
static int choose_backup(restore *rs, uw_err *err)
{
    const char *set = uw_cfg_str(rs->cfg, "set");
    char why[512] = "";
    bpoint earliest;
    bool have_earliest = false;
    int nbackups = 0;
    uw_err unlisted; /* a repository's backups could not be listed (corrupt manifest...) */
    uw_err_clear(&unlisted);
    for (int i = 0; i < rs->nrepos && !rs->have_m; i++) {
        if (!rs->usable[i])
            continue;
        uw_repo *r = &rs->repos[i];
        uw_manifest *list;
        int n;
        uw_err e;
        if (uw_backups_list(r, &list, &n, NULL, &e) < 0) {
            uw_log(UW_LOG_WARN, "%s; trying the next repository", e.msg);
            unlisted = unlisted.code ? unlisted : e;
            continue;
        }
        nbackups += n;
        int rc = 0;
        for (int k = n; k-- > 0 && rc == 0;) {
            uw_manifest *m = &list[k];
            if (set && strcmp(m->id, set) != 0)
                continue;
            bpoint bp = point_of(m);
            if (!have_earliest || bp.stop_lsn < earliest.stop_lsn) {
                earliest = bp;
                have_earliest = true;
            }
            if (!before_target(&rs->t, m)) {
                if (set)
                    rc = too_early(rs, &bp, &bp, err);
                continue;
            }
            uint32_t tli;
            uw_tl_history h;
            char msg[400];
            rc = timeline_for(rs, m, &tli, &h, msg, sizeof msg, err);
            if (rc == 1) {
                if (strcmp(why, msg) != 0)
                    uw_log(UW_LOG_INFO, "skipping backup %s: %s%s", m->id, msg,
                           rs->t.tli == 0 ? " (--target-timeline current follows the backup's "
                                            "own timeline)"
                                          : "");
                snprintf(why, sizeof why, "%s", msg);
                rc = 0;
                continue;
            }
            if (rc < 0)
                break;
            /* The list holds headers only: load this backup's files. */
            rc = uw_manifest_load(r, m->id, &rs->m, err);
            if (rc < 0)
                break;
            rs->have_m = true;
            rs->repo = r;
            rs->hist = h;
            rs->rec_tli = tli;
            break;
        }
        uw_backups_free(list, n);
        if (rc < 0)
            return -1;
        if (set && have_earliest)
            break; /* found it: do not look for the same id elsewhere */
    }
    if (rs->have_m)
        return 0;
    if (unlisted.code) {
        *err = unlisted; /* what hid the backups, not "does not exist" */
        return -1;
    }
    const char *stanza = uw_cfg_str(rs->cfg, "stanza");
    if (set && why[0])
        return uw_fail(err, UW_E_RESTORE, "backup %s cannot be restored: %s", set, why);
    if (set)
        return uw_fail(err, UW_E_RESTORE,
                       "backup '%s' does not exist in any repository of stanza '%s' (or is "
                       "incomplete)",
                       set, stanza);
    if (!nbackups)
        return uw_fail(err, UW_E_RESTORE, "stanza '%s' has no complete backup in any repository",
                       stanza);
    if (why[0])
        return uw_fail(err, UW_E_RESTORE, "no backup can reach the target: %s", why);
    return too_early(rs, &earliest, &earliest, err);
}

/* ---------------------------------------------------------- WAL checks -- */

static int check_wal(restore *rs, uw_err *err)
{
    const uw_manifest *m = &rs->m;
    uint32_t seg = rs->arch.seg_size;
    uw_archive_reach(&rs->arch, &rs->hist, m->start_lsn, &rs->reach);
    const uw_reach *rc = &rs->reach;
    char miss[48] = "", stop_seg[48], lsn[32], lsn2[32];
    if (rc->missing_tli)
        uw_seg_name(rc->missing_tli, rc->missing_segno, seg, miss, sizeof miss);
    uw_seg_name(m->timeline, (m->stop_lsn ? m->stop_lsn - 1 : 0) / seg, seg, stop_seg,
                sizeof stop_seg);
    if (!rc->any || rc->end_lsn < m->stop_lsn)
        return uw_fail(err, UW_E_RESTORE,
                       "the WAL that makes backup %s consistent is not archived: segment %s is "
                       "missing (needed: %s to %s)",
                       m->id, miss, m->start_wal[0] ? m->start_wal : "?", stop_seg);
    /* The exact end of the WAL and the last transaction in it. Best effort:
     * if the segment cannot be read now, recovery will say so itself. */
    uw_err e;
    uw_err_clear(&e);
    int n = rs->t.kind == T_TIME ? XACT_SCAN_SEGMENTS : 1;
    /* Only a time or LSN target needs the exact end: decoding costs a whole
     * segment read (and its memory) before the copy can start. */
    bool need_end = rs->t.kind == T_TIME || rs->t.kind == T_LSN;
    if (need_end &&
        uw_archive_wal_end(&rs->arch, &rs->hist, rc, m->stop_lsn / seg, n, &rs->wal_end, &e) == 0)
        rs->have_wal_end = true;
    else if (need_end)
        uw_log(UW_LOG_WARN,
               "could not read the end of the archive (%s): the target is checked "
               "against segment boundaries only",
               e.msg);
    uint64_t end = rs->have_wal_end ? rs->wal_end.end_lsn : rc->end_lsn;
    char last[48];
    uw_seg_name(rc->last_tli, rc->last_segno, seg, last, sizeof last);
    fmt_lsn(end, lsn, sizeof lsn);
    if (rs->t.kind == T_LSN && rs->t.lsn >= end)
        return uw_fail(err, UW_E_RESTORE,
                       "target LSN %s is after the last archived WAL (segment %s, WAL ends at "
                       "%s; %s%s%s): recovery from backup %s cannot reach it",
                       rs->t.value, last, lsn, miss[0] ? "the next segment " : "",
                       miss[0] ? miss : "", miss[0] ? " is not archived" : "", m->id);
    if (rs->t.kind == T_TIME) {
        /* Recovery to a time stops at the first commit or abort record whose
         * timestamp is past the target; without one PostgreSQL 15 ends with
         * "recovery ended before configured recovery target was reached".
         * So the honest limit is the newest transaction time in the reachable
         * WAL, decoded from the records, rather than when the last segment
         * was stored: a segment stored at 12:05 may hold nothing newer than
         * 12:01, and a store time is also not something every repository type
         * reports. */
        if (rs->have_wal_end && rs->wal_end.have_xact &&
            rs->t.time_us >= rs->wal_end.xact_time_us) {
            char tt[48], xt[48];
            uw_iso_time(rs->t.time_us, tt, sizeof tt);
            uw_iso_time(rs->wal_end.xact_time_us, xt, sizeof xt);
            fmt_lsn(rs->wal_end.xact_lsn, lsn2, sizeof lsn2);
            return uw_fail(err, UW_E_RESTORE,
                           "target time %s is after the last archived WAL (last transaction at "
                           "%s, LSN %s in segment %s; archive ends in segment %s): recovery "
                           "would end before reaching it; omit the target to recover to the end "
                           "of the archive, or archive more WAL first",
                           tt, xt, lsn2, rs->wal_end.xact_segment, last);
        }
        if (rs->have_wal_end && !rs->wal_end.have_xact) {
            if ((int64_t)(rc->last_segno - m->stop_lsn / seg) < XACT_SCAN_SEGMENTS) {
                char tt[48];
                uw_iso_time(rs->t.time_us, tt, sizeof tt);
                return uw_fail(err, UW_E_RESTORE,
                               "target time %s is after the last archived WAL: no transaction "
                               "ended after backup %s in the archive (it ends in segment %s)",
                               tt, m->id, last);
            }
            uw_log(UW_LOG_WARN,
                   "no transaction in the last %d archived segments: cannot check "
                   "that the target time is reachable",
                   XACT_SCAN_SEGMENTS);
        }
    }
    return 0;
}

static bool chain_has(const restore *rs, const char *id)
{
    if (!strcmp(rs->m.id, id))
        return true;
    for (size_t i = 0; i < rs->nchain; i++)
        if (!strcmp(rs->chain[i].id, id))
            return true;
    return false;
}

static void add_id(char ***ids, size_t *n, const char *id)
{
    if (!id[0])
        return;
    for (size_t k = 0; k < *n; k++)
        if (!strcmp((*ids)[k], id))
            return;
    *ids = uw_realloc(*ids, (*n + 1) * sizeof **ids);
    (*ids)[(*n)++] = uw_strdup(id);
}

/* Every backup the restore reads from must be there and belong to the stanza:
 * the prior chain, the backups holding unchanged files (ref), and those that
 * block deltas build on (base), transitively. They stay loaded: the file
 * workers rebuild block deltas from them. */
static int check_chain(restore *rs, uw_err *err)
{
    const uw_manifest *m = &rs->m;
    uint64_t sysid = rs->repo->info.system_id;
    if (m->system_id != sysid)
        return uw_fail(err, UW_E_FOREIGN,
                       "backup %s belongs to database system %" PRIu64
                       ", not to stanza '%s' (%" PRIu64 ")",
                       m->id, m->system_id, rs->repo->stanza, sysid);
    if (m->wal_seg_size != rs->repo->info.wal_seg_size)
        return uw_fail(err, UW_E_REPO_FORMAT, "backup %s has %u-byte WAL segments, the stanza %u",
                       m->id, m->wal_seg_size, rs->repo->info.wal_seg_size);
    int rc = 0;
    for (size_t scanned = 0; rc == 0 && scanned <= rs->nchain; scanned++) {
        /* Collect first: loading grows rs->chain and may move it. */
        const uw_manifest *cur = scanned == 0 ? &rs->m : &rs->chain[scanned - 1];
        char **ids = NULL;
        size_t n = 0;
        add_id(&ids, &n, cur->prior);
        for (size_t i = 0; i < cur->count; i++) {
            const uw_mf_entry *e = &cur->entries[i];
            if (e->type == 'f') {
                add_id(&ids, &n, e->ref);
                add_id(&ids, &n, e->base);
            }
        }
        char from[UW_BACKUP_ID_MAX];
        snprintf(from, sizeof from, "%s", cur->id);
        for (size_t k = 0; k < n; k++) {
            if (rc == 0 && !chain_has(rs, ids[k])) {
                uw_manifest p;
                if (rs->nchain > 10000) {
                    rc = uw_fail(err, UW_E_REPO_FORMAT, "backup %s: the chain is too long", m->id);
                } else if (uw_manifest_load(rs->repo, ids[k], &p, err) < 0) {
                    rc = uw_wrap(err, "backup %s needs backup %s", from, ids[k]);
                    if (err->code == UW_E_NOT_FOUND)
                        err->code = UW_E_RESTORE;
                } else if (p.system_id != sysid || p.pg_version != m->pg_version) {
                    rc = uw_fail(err, UW_E_FOREIGN,
                                 "backup %s needs backup %s, of another cluster or PostgreSQL "
                                 "version",
                                 from, p.id);
                    uw_manifest_free(&p);
                } else {
                    rs->chain = uw_realloc(rs->chain, (rs->nchain + 1) * sizeof *rs->chain);
                    rs->chain[rs->nchain++] = p;
                }
            }
            free(ids[k]);
        }
        free(ids);
    }
    return rc;
}

/* ------------------------------------------------------- data directory -- */

static bool dir_empty(const char *path, bool *exists)
{
    DIR *d = opendir(path);
    *exists = d != NULL;
    if (!d)
        return true;
    struct dirent *de;
    bool empty = true;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            empty = false;
            break;
        }
    closedir(d);
    return empty;
}

/* A postmaster.pid whose first line is a live process. kill(pid, 0) failing
 * with EPERM still means the process exists (it belongs to another user). */
static bool postmaster_running(const char *pgdata, long *pid_out)
{
    char *path = uw_sprintf("%s/postmaster.pid", pgdata);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return false;
    long pid = 0;
    bool running = false;
    if (fscanf(f, "%ld", &pid) == 1 && pid > 0 && pid < INT_MAX && pid != getpid())
        running = kill((pid_t)pid, 0) == 0 || errno == EPERM;
    fclose(f);
    *pid_out = pid;
    return running;
}

static char *absolute(const char *p)
{
    char *r = realpath(p, NULL);
    if (r)
        return r;
    if (p[0] == '/')
        r = uw_strdup(p);
    else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return uw_strdup(p);
        r = uw_sprintf("%s/%s", cwd, p);
    }
    size_t n = strlen(r);
    while (n > 1 && r[n - 1] == '/')
        r[--n] = '\0';
    return r;
}

static int check_pgdata(restore *rs, uw_err *err)
{
    const char *opt = uw_cfg_str(rs->cfg, "pgdata");
    if (!opt)
        return uw_fail(err, UW_E_OPTION,
                       "option 'pgdata' is required: the directory to restore into");
    rs->pgdata = absolute(opt);
    struct stat st;
    if (stat(rs->pgdata, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return uw_fail(err, UW_E_RESTORE, "'%s' exists and is not a directory", rs->pgdata);
        rs->pgdata_exists = true;
    } else if (errno != ENOENT) {
        return uw_fail(err, UW_E_RESTORE, "unable to stat '%s': %s", rs->pgdata, strerror(errno));
    }
    long pid;
    if (rs->pgdata_exists && postmaster_running(rs->pgdata, &pid))
        return uw_fail(err, UW_E_RESTORE,
                       "a PostgreSQL server (pid %ld) is running in '%s': stop it first (or remove "
                       "postmaster.pid if that process is not PostgreSQL)",
                       pid, rs->pgdata);
    bool exists;
    if (!rs->delta && !dir_empty(rs->pgdata, &exists))
        return uw_fail(err, UW_E_RESTORE,
                       "data directory '%s' is not empty: restore into an empty directory, or use "
                       "--delta to update it in place",
                       rs->pgdata);
    /* The owner PostgreSQL will run as: the directory's, or its parent's when
     * the restore creates it. */
    char *probe = uw_strdup(rs->pgdata);
    while (stat(probe, &st) < 0) {
        char *slash = strrchr(probe, '/');
        if (!slash || slash == probe) {
            strcpy(probe, "/");
            if (stat(probe, &st) < 0)
                memset(&st, 0, sizeof st);
            break;
        }
        *slash = '\0';
    }
    free(probe);
    rs->uid = st.st_uid;
    rs->gid = st.st_gid;
    rs->set_owner = geteuid() == 0 && st.st_uid != 0;
    struct passwd pw, *pwp = NULL;
    char pwbuf[4096];
    if (getpwuid_r(rs->uid, &pw, pwbuf, sizeof pwbuf, &pwp) == 0 && pwp)
        snprintf(rs->owner, sizeof rs->owner, "%s", pw.pw_name);
    else
        snprintf(rs->owner, sizeof rs->owner, "%u", (unsigned)rs->uid);
    /* Tablespace locations: absolute paths outside the data directory. */
    for (size_t i = 0; i < rs->m.count; i++) {
        const uw_mf_entry *e = &rs->m.entries[i];
        if (e->type != 'l')
            continue;
        if (stat(e->link, &st) == 0 && !S_ISDIR(st.st_mode))
            return uw_fail(err, UW_E_RESTORE, "tablespace location '%s' (%s) is not a directory",
                           e->link, e->path);
        if (!rs->delta && !dir_empty(e->link, &exists))
            return uw_fail(err, UW_E_RESTORE,
                           "tablespace location '%s' (%s) is not empty: empty it or use --delta",
                           e->link, e->path);
        /* --delta may only rewrite a location this data directory already
         * links to: a non-empty one elsewhere may be a live cluster's (the
         * source of the backup, on the same host). */
        if (rs->delta && !dir_empty(e->link, &exists)) {
            char *lp = uw_sprintf("%s/%s", rs->pgdata, e->path), linked[4096];
            ssize_t n = readlink(lp, linked, sizeof linked - 1);
            free(lp);
            if (n >= 0)
                linked[n] = '\0';
            if (n < 0 || strcmp(linked, e->link) != 0)
                return uw_fail(err, UW_E_RESTORE,
                               "tablespace location '%s' (%s) is not empty and this data directory "
                               "does not link to it: it may belong to another cluster; empty it "
                               "first",
                               e->link, e->path);
        }
    }
    return 0;
}

/* syncfs() the file system of the data directory and of every tablespace. */
static int sync_all(const restore *rs, uw_err *err)
{
    for (size_t i = 0; i <= rs->m.count; i++) {
        const char *dir = i == rs->m.count               ? rs->pgdata
                          : rs->m.entries[i].type == 'l' ? rs->m.entries[i].link
                                                         : NULL;
        if (!dir)
            continue;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || syncfs(fd) < 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return uw_fail(err, UW_E_FILE, "unable to sync the file system of '%s': %s", dir,
                           strerror(e));
        }
        close(fd);
    }
    return 0;
}

static int own(const restore *rs, const char *path, uw_err *err)
{
    if (rs->set_owner && lchown(path, rs->uid, rs->gid) < 0)
        return uw_fail(err, UW_E_FILE, "unable to change the owner of '%s': %s", path,
                       strerror(errno));
    return 0;
}

/* mkdir (and parents) owned by the cluster owner, with an exact mode. */
static int make_dir(const restore *rs, const char *path, mode_t mode, uw_err *err)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return uw_fail(err, UW_E_FILE, "'%s' exists and is not a directory", path);
    } else {
        char *parent = uw_strdup(path);
        char *slash = strrchr(parent, '/');
        int rc = 0;
        if (slash && slash != parent) {
            *slash = '\0';
            if (lstat(parent, &st) < 0)
                rc = make_dir(rs, parent, 0700, err);
        }
        free(parent);
        if (rc < 0)
            return -1;
        if (mkdir(path, mode) < 0 && errno != EEXIST)
            return uw_fail(err, UW_E_FILE, "unable to create directory '%s': %s", path,
                           strerror(errno));
    }
    if (own(rs, path, err) < 0)
        return -1;
    if (chmod(path, mode) < 0)
        return uw_fail(err, UW_E_FILE, "unable to set the mode of '%s': %s", path, strerror(errno));
    return 0;
}

static char *read_link(const char *path)
{
    char buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return uw_strdup(buf);
}

/* --delta: remove what the backup does not have, so that the result is the
 * backup and nothing else. The walk never follows a link, except the
 * tablespace links the manifest records (their contents are part of the
 * restore) and a pg_wal link (WAL on another disk, initdb --waldir), which is
 * kept: its contents are this cluster's WAL, removed like any other stale
 * file, since segments of a diverged history left there could be replayed.
 * At the top of a tablespace location only the entries the backup has are
 * visited: the location may hold other PostgreSQL versions' directories. */
static int clean_dir(restore *rs, const char *rel, const char *abs, bool ts_root, uw_err *err)
{
    DIR *d = opendir(abs);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return uw_fail(err, UW_E_FILE, "unable to open directory '%s': %s", abs, strerror(errno));
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        names = uw_realloc(names, (n + 1) * sizeof *names);
        names[n++] = uw_strdup(de->d_name);
    }
    closedir(d);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *relp = rel[0] ? uw_sprintf("%s/%s", rel, names[i]) : uw_strdup(names[i]);
        char *absp = uw_sprintf("%s/%s", abs, names[i]);
        const uw_mf_entry *me = uw_manifest_find(&rs->m, relp);
        struct stat st;
        bool remove = false;
        if (rc < 0 || lstat(absp, &st) < 0) {
            /* vanished, or an earlier error */
        } else if (!me) {
            remove = !ts_root;
        } else if (me->type == 'd') {
            bool wal_link = !rel[0] && !strcmp(relp, "pg_wal") && S_ISLNK(st.st_mode);
            struct stat tst;
            if (S_ISDIR(st.st_mode) || (wal_link && stat(absp, &tst) == 0 && S_ISDIR(tst.st_mode)))
                rc = clean_dir(rs, relp, absp, false, err);
            else
                remove = true;
        } else if (me->type == 'f') {
            remove = !S_ISREG(st.st_mode);
        } else if (me->type == 'l') {
            char *cur = S_ISLNK(st.st_mode) ? read_link(absp) : NULL;
            if (cur && !strcmp(cur, me->link))
                rc = clean_dir(rs, relp, me->link, true, err);
            else
                remove = true;
            free(cur);
        }
        if (remove && rc == 0) {
            uw_log(UW_LOG_DETAIL, "delta: removing '%s'", absp);
            rc = uw_remove_tree(absp, err);
            rs->removed++;
        }
        free(relp);
        free(absp);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Directories and tablespace links, in manifest order (parents first). */
static int make_tree(restore *rs, uw_err *err)
{
    if (make_dir(rs, rs->pgdata, 0700, err) < 0)
        return -1;
    for (size_t i = 0; i < rs->m.count; i++) {
        const uw_mf_entry *e = &rs->m.entries[i];
        char *path = uw_sprintf("%s/%s", rs->pgdata, e->path);
        int rc = 0;
        if (e->type == 'd') {
            rc = make_dir(rs, path, (mode_t)(e->mode & 07777), err);
        } else if (e->type == 'l') {
            struct stat st;
            if (stat(e->link, &st) < 0)
                rc = make_dir(rs, e->link, 0700, err);
            else
                rc = own(rs, e->link, err);
            char *cur = read_link(path);
            if (rc == 0 && !(cur && !strcmp(cur, e->link))) {
                if (lstat(path, &st) == 0)
                    rc = uw_remove_tree(path, err);
                if (rc == 0 && symlink(e->link, path) < 0)
                    rc = uw_fail(err, UW_E_FILE, "unable to create link '%s' -> '%s': %s", path,
                                 e->link, strerror(errno));
            }
            free(cur);
            if (rc == 0)
                rc = own(rs, path, err);
        }
        free(path);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- files -- */

typedef struct {
    restore *rs;
    uw_restore_ctx ctx; /* repo replaced per worker */
    const uw_mf_entry **jobs;
    uw_repo *worker_repos; /* one storage handle per worker thread */
    pthread_mutex_t mu;    /* guards the counters in rs */
} pool_state;

static void account(restore *rs, const uw_restore_result *res)
{
    if (res->skipped) {
        rs->files_skipped++;
        rs->bytes_skipped += res->bytes;
    } else {
        rs->files_written++;
        rs->bytes_written += res->bytes;
        rs->bytes_read += res->read;
    }
}

static int restore_job(void *arg, size_t i, uw_err *err)
{
    pool_state *p = arg;
    const uw_mf_entry *e = p->jobs[i];
    /* Storage handles (connections) are never shared between threads. */
    uw_repo *mine = &p->worker_repos[uw_pool_worker_id()];
    if (!mine->st && uw_repo_clone(p->rs->cfg, p->rs->repo, mine, err) < 0)
        return -1;
    uw_restore_ctx ctx = p->ctx;
    ctx.repo = mine;
    uw_restore_result res;
    if (uw_restore_file(&ctx, e, &res, err) < 0)
        return -1;
    pthread_mutex_lock(&p->mu);
    account(p->rs, &res);
    pthread_mutex_unlock(&p->mu);
    uw_log(UW_LOG_DEBUG, "%s '%s' (%" PRIu64 " bytes)", res.skipped ? "kept" : "restored", e->path,
           res.bytes);
    return 0;
}

static int by_size_desc(const void *a, const void *b)
{
    const uw_mf_entry *x = *(const uw_mf_entry *const *)a, *y = *(const uw_mf_entry *const *)b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return strcmp(x->path, y->path);
}

static int restore_files(restore *rs, uw_err *err)
{
    pool_state p;
    memset(&p, 0, sizeof p);
    p.rs = rs;
    const uw_manifest **manifests = uw_calloc(rs->nchain + 1, sizeof *manifests);
    manifests[0] = &rs->m;
    for (size_t i = 0; i < rs->nchain; i++)
        manifests[i + 1] = &rs->chain[i];
    p.ctx = (uw_restore_ctx){rs->repo,      manifests, rs->nchain + 1, rs->pgdata, rs->delta,
                             rs->set_owner, rs->uid,   rs->gid,        true};
    pthread_mutex_init(&p.mu, NULL);
    p.jobs = uw_calloc(rs->m.count + 1, sizeof *p.jobs);
    size_t njobs = 0;
    const uw_mf_entry *control = NULL;
    for (size_t i = 0; i < rs->m.count; i++) {
        const uw_mf_entry *e = &rs->m.entries[i];
        if (e->type != 'f')
            continue;
        if (!strcmp(e->path, "global/pg_control"))
            control = e;
        else
            p.jobs[njobs++] = e;
    }
    /* Largest first, so that one big file does not start last and run alone. */
    qsort(p.jobs, njobs, sizeof *p.jobs, by_size_desc);
    int workers = (int)uw_cfg_int(rs->cfg, "process-max");
    if (workers < 1)
        workers = 1;
    p.worker_repos = uw_calloc((size_t)workers, sizeof *p.worker_repos);
    int rc = uw_pool_run(workers, njobs, restore_job, &p, err);
    for (int i = 0; i < workers; i++)
        if (p.worker_repos[i].st)
            uw_repo_release(&p.worker_repos[i]);
    free(p.worker_repos);
    if (rc == 0 && !control) {
        rc = uw_fail(err, UW_E_REPO_FORMAT, "backup %s has no global/pg_control", rs->m.id);
    } else if (rc == 0) {
        /* Everything written so far becomes durable at once (one syncfs per
         * file system instead of an fsync per file), before pg_control. */
        rc = sync_all(rs, err);
        /* Last: without it PostgreSQL does not start, so a restore that
         * failed before this point cannot be started by mistake. */
        uw_restore_result res;
        p.ctx.no_sync = false;
        if (rc == 0)
            rc = uw_restore_file(&p.ctx, control, &res, err);
        if (rc == 0)
            account(rs, &res);
    }
    free(p.jobs);
    free(manifests);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

/* Directory times last: creating files in them changed their mtime. */
static void dir_times(const restore *rs)
{
    for (size_t i = 0; i < rs->m.count; i++) {
        const uw_mf_entry *e = &rs->m.entries[i];
        if (e->type != 'd')
            continue;
        char *path = uw_sprintf("%s/%s", rs->pgdata, e->path);
        struct timespec ts[2] = {{(time_t)e->mtime, 0}, {(time_t)e->mtime, 0}};
        utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
        free(path);
    }
}

/* ------------------------------------------------------ recovery config -- */

/* Directories a base backup leaves empty or out, which PostgreSQL needs. */
static const char *const needed_dirs[] = {
    "pg_wal",
    "pg_wal/archive_status",
    "pg_replslot",
    "pg_stat_tmp",
    "pg_snapshots",
    "pg_notify",
    "pg_serial",
    "pg_subtrans",
    "pg_dynshmem",
    "pg_commit_ts",
    "pg_logical",
    "pg_logical/snapshots",
    "pg_logical/mappings",
    "pg_twophase",
    "pg_tblspc",
    "log",
    NULL,
};

/* Quote one argument for /bin/sh (restore_command runs through the shell). */
static void shell_quote(uw_buf *b, const char *s)
{
    bool plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr("_/.,:=@+-", *p);
    if (plain) {
        uw_buf_append(b, s, strlen(s));
        return;
    }
    uw_buf_append(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            uw_buf_append(b, "'\\''", 4);
        else
            uw_buf_append(b, p, 1);
    }
    uw_buf_append(b, "'", 1);
}

/* One fixed argument of restore_command: shell-quoted, and with '%' doubled
 * because PostgreSQL replaces %f, %p, %r and %% before the shell sees it. */
static void command_arg(uw_buf *cmd, const char *arg)
{
    uw_buf q = {0};
    shell_quote(&q, arg);
    if (cmd->len)
        uw_buf_append(cmd, " ", 1);
    for (size_t i = 0; i < q.len; i++) {
        if (q.data[i] == '%')
            uw_buf_append(cmd, "%%", 2);
        else
            uw_buf_append(cmd, &q.data[i], 1);
    }
    uw_buf_free(&q);
}

/* A postgresql.conf string literal: quotes doubled, and backslashes doubled
 * because the configuration parser also reads escapes like \n inside quotes. */
static void conf_quote(uw_buf *b, const char *s)
{
    uw_buf_append(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            uw_buf_append(b, "''", 2);
        else if (*p == '\\')
            uw_buf_append(b, "\\\\", 2);
        else
            uw_buf_append(b, p, 1);
    }
    uw_buf_append(b, "'", 1);
}

static void conf_line(uw_buf *b, const char *name, const char *value)
{
    uw_buf_append(b, name, strlen(name));
    uw_buf_append(b, " = ", 3);
    conf_quote(b, value);
    uw_buf_append(b, "\n", 1);
}

/* Can `uid`/`gid` use a file with these permission bits (ignoring
 * supplementary groups)? For warnings only. */
static bool may_access(const struct stat *st, uid_t uid, gid_t gid, mode_t u, mode_t g, mode_t o)
{
    if (uid == 0)
        return true;
    if (st->st_uid == uid)
        return st->st_mode & u;
    if (st->st_gid == gid)
        return st->st_mode & g;
    return st->st_mode & o;
}

static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    return uw_strdup(buf);
}

/* restore_command: ue-wal-fetch next to this binary, with the same config file
 * and every fetch-relevant option this run got from the command line or the
 * environment (the server will not have this shell's environment). */
static int restore_command(const restore *rs, char **out, uw_err *err)
{
    const uw_config *cfg = rs->cfg;
    char *dir = exe_dir();
    if (!dir)
        return uw_fail(err, UW_E_RESTORE,
                       "unable to find this program's directory (/proc/self/exe)");
    char *fetch = uw_sprintf("%s/ue-wal-fetch", dir);
    free(dir);
    struct stat st;
    if (stat(fetch, &st) < 0 || !S_ISREG(st.st_mode) || access(fetch, X_OK) < 0) {
        int rc = uw_fail(
            err, UW_E_RESTORE,
            "'%s' is missing or not executable: restore_command needs it next to ue-pitr", fetch);
        free(fetch);
        return rc;
    }
    if (!may_access(&st, rs->uid, rs->gid, S_IXUSR, S_IXGRP, S_IXOTH))
        uw_log(UW_LOG_WARN, "'%s' is not executable by %s, who will run the server", fetch,
               rs->owner);
    uw_buf cmd = {0};
    command_arg(&cmd, fetch);
    free(fetch);
    const char *file = uw_cfg_file(cfg);
    if (file) {
        char *abs = absolute(file);
        char *a = uw_sprintf("--config=%s", abs);
        command_arg(&cmd, a);
        free(a);
        if (stat(abs, &st) == 0 && !may_access(&st, rs->uid, rs->gid, S_IRUSR, S_IRGRP, S_IROTH))
            uw_log(UW_LOG_WARN,
                   "config file '%s' is not readable by %s, who will run "
                   "restore_command",
                   abs, rs->owner);
        free(abs);
    }
    char *a = uw_sprintf("--stanza=%s", rs->repo->stanza);
    command_arg(&cmd, a);
    free(a);
    if (uw_cfg_isset(cfg, "repo")) {
        a = uw_sprintf("--repo=%s", uw_cfg_str(cfg, "repo"));
        command_arg(&cmd, a);
        free(a);
    }
    for (int i = 0; i < uw_option_count; i++) {
        const uw_opt_def *d = &uw_options[i];
        /* Repository options only: those of every command (log level, pg-*,
         * process-max) are not this run's to impose on the server. */
        if (!(d->commands & UW_CMD_FETCH) || d->commands == UW_CMD_ALL ||
            (d->flags & (UW_OPTF_SECRET | UW_OPTF_CLI_ONLY)))
            continue;
        int n = (d->flags & UW_OPTF_REPO) ? UW_REPO_MAX : 1;
        for (int r = 1; r <= n; r++) {
            char name[96];
            if (d->flags & UW_OPTF_REPO)
                snprintf(name, sizeof name, "repo%d-%s", r, d->name);
            else
                snprintf(name, sizeof name, "%s", d->name);
            const char *src = uw_cfg_source(cfg, name);
            if (strcmp(src, "command line") != 0 && strcmp(src, "environment") != 0)
                continue;
            a = uw_sprintf("--%s=%s", name, uw_cfg_str(cfg, name));
            command_arg(&cmd, a);
            free(a);
        }
    }
    uw_buf_append(&cmd, " %f %p", 6);
    for (int i = 0; i < rs->nrepos; i++)
        if (rs->usable[i] && rs->repos[i].have_key &&
            strcmp(uw_cfg_source(cfg, "cipher-pass"), "config file") != 0) {
            uw_log(UW_LOG_WARN, "cipher-pass does not come from a config file: the server's "
                                "restore_command will need UE_WAL_CIPHER_PASS in its environment");
            break;
        }
    *out = (char *)cmd.data;
    return 0;
}

static int write_file(const restore *rs, const char *rel, const void *data, size_t len, uw_err *err)
{
    char *path = uw_sprintf("%s/%s", rs->pgdata, rel);
    uw_sink *s = uw_file_sink(path, 0600, 0, err);
    int rc = s ? 0 : -1;
    if (rc == 0)
        rc = uw_sink_write(s, data, len, err);
    if (rc == 0)
        rc = uw_sink_finish(s, err);
    uw_sink_free(s);
    if (rc == 0)
        rc = own(rs, path, err);
    free(path);
    return rc;
}

static int write_recovery(restore *rs, uw_err *err)
{
    const target *t = &rs->t;
    for (int i = 0; needed_dirs[i]; i++) {
        char *path = uw_sprintf("%s/%s", rs->pgdata, needed_dirs[i]);
        struct stat st;
        int rc = lstat(path, &st) == 0 ? 0 : make_dir(rs, path, 0700, err);
        free(path);
        if (rc < 0)
            return -1;
    }
    static const char *const stale[] = {"postmaster.pid", "postmaster.opts", "standby.signal",
                                        NULL};
    for (int i = 0; stale[i]; i++) {
        char *path = uw_sprintf("%s/%s", rs->pgdata, stale[i]);
        if (unlink(path) < 0 && errno != ENOENT) {
            int rc = uw_fail(err, UW_E_FILE, "unable to remove '%s': %s", path, strerror(errno));
            free(path);
            return rc;
        }
        free(path);
    }
    if (write_file(rs, "recovery.signal", "", 0, err) < 0)
        return -1;

    /* postgresql.auto.conf as restored, without an earlier block of ours. */
    char *conf = uw_sprintf("%s/postgresql.auto.conf", rs->pgdata);
    uw_buf old = {0}, out = {0};
    int fd = open(conf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        uw_sink *s = uw_buf_sink(&old);
        int rc = uw_sink_from_fd(s, fd, conf, err);
        uw_sink_free(s);
        close(fd);
        if (rc < 0) {
            free(conf);
            uw_buf_free(&old);
            return -1;
        }
    }
    free(conf);
    bool inside = false;
    for (char *line = old.len ? (char *)old.data : NULL; line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n >= strlen(BLOCK_BEGIN) && !strncmp(line, BLOCK_BEGIN, strlen(BLOCK_BEGIN)))
            inside = true;
        else if (inside && n >= strlen(BLOCK_END) && !strncmp(line, BLOCK_END, strlen(BLOCK_END)))
            inside = false;
        else if (!inside && (n || nl)) {
            uw_buf_append(&out, line, n);
            uw_buf_append(&out, "\n", 1);
        }
        line = nl ? nl + 1 : NULL;
    }
    uw_buf_free(&old);

    char *cmd = NULL;
    if (restore_command(rs, &cmd, err) < 0) {
        uw_buf_free(&out);
        return -1;
    }
    char when[48], line[256];
    uw_iso_time((int64_t)time(NULL) * 1000000, when, sizeof when);
    snprintf(line, sizeof line,
             "%s\n# Written by ue-pitr restore of backup %s at %s; the next restore replaces it.\n",
             BLOCK_BEGIN, rs->m.id, when);
    uw_buf_append(&out, line, strlen(line));
    conf_line(&out, "restore_command", cmd);
    free(cmd);
    /* Every target is written: the ones not used as '' first, so that one left
     * in postgresql.conf by someone else cannot combine with ours into
     * "multiple recovery targets specified", then the one in use last
     * (PostgreSQL applies them in file order, and complains when a second
     * target is assigned while another one is set). */
    static const struct {
        const char *guc;
        target_kind kind;
    } gucs[] = {{"recovery_target", T_IMMEDIATE},
                {"recovery_target_time", T_TIME},
                {"recovery_target_lsn", T_LSN},
                {"recovery_target_xid", T_XID},
                {"recovery_target_name", T_NAME}};
    for (size_t i = 0; i < sizeof gucs / sizeof gucs[0]; i++)
        if (gucs[i].kind != t->kind)
            conf_line(&out, gucs[i].guc, "");
    for (size_t i = 0; i < sizeof gucs / sizeof gucs[0]; i++)
        if (gucs[i].kind == t->kind)
            conf_line(&out, gucs[i].guc, t->value);
    conf_line(&out, "recovery_target_inclusive", "on");
    conf_line(&out, "recovery_target_timeline", t->tli_text ? t->tli_text : "latest");
    conf_line(&out, "recovery_target_action", t->action);
    if (uw_cfg_isset(rs->cfg, "port")) {
        snprintf(line, sizeof line, "port = %lld\n", (long long)uw_cfg_int(rs->cfg, "port"));
        uw_buf_append(&out, line, strlen(line));
    }
    uw_buf_append(&out, BLOCK_END "\n", strlen(BLOCK_END) + 1);
    int rc = write_file(rs, "postgresql.auto.conf", out.data, out.len, err);
    uw_buf_free(&out);
    return rc;
}

/* ------------------------------------------------------------- start -- */

/* pg_ctl of the backup's major version. */
static char *find_pg_ctl(int version)
{
    char *c = uw_sprintf("/usr/lib/postgresql/%d/bin/pg_ctl", version);
    if (access(c, X_OK) == 0)
        return c;
    free(c);
    c = uw_sprintf("/usr/pgsql-%d/bin/pg_ctl", version);
    if (access(c, X_OK) == 0)
        return c;
    free(c);
    FILE *p = popen("pg_config --version --bindir 2>/dev/null", "r");
    if (!p)
        return NULL;
    char ver[256] = "", bindir[PATH_MAX] = "";
    if (!fgets(ver, sizeof ver, p) || !fgets(bindir, sizeof bindir, p))
        ver[0] = '\0';
    pclose(p);
    bindir[strcspn(bindir, "\n")] = '\0';
    int major = 0;
    if (sscanf(ver, "PostgreSQL %d", &major) == 1 && major == version && bindir[0]) {
        c = uw_sprintf("%s/pg_ctl", bindir);
        if (access(c, X_OK) == 0)
            return c;
        free(c);
    }
    return NULL;
}

static char *log_path(const restore *rs)
{
    return uw_sprintf("%s/log/ue-wal-restore.log", rs->pgdata);
}

/* Run as the owner: are the configured unix_socket_directories usable? The
 * restored configuration comes from another host or another cluster's
 * layout, and a directory the server cannot create its socket in stops it at
 * startup. `postgres -C` prints the effective value without starting. */
static bool socket_dirs_ok(const char *pg_ctl, const char *pgdata)
{
    char *bindir = uw_strdup(pg_ctl);
    char *slash = strrchr(bindir, '/');
    if (slash)
        *slash = '\0';
    char *pgdata_q, *cmd;
    {
        uw_buf q = {0};
        shell_quote(&q, pgdata);
        pgdata_q = (char *)q.data;
        uw_buf b = {0};
        shell_quote(&b, bindir);
        cmd = uw_sprintf("%s/postgres -D %s -C unix_socket_directories 2>/dev/null", (char *)b.data,
                         pgdata_q);
        uw_buf_free(&b);
    }
    free(bindir);
    free(pgdata_q);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p)
        return false;
    char line[4096] = "";
    bool got = fgets(line, sizeof line, p) != NULL;
    bool ok = pclose(p) == 0 && got;
    line[strcspn(line, "\n")] = '\0';
    for (char *save = NULL, *d = strtok_r(line, ",", &save); ok && d;
         d = strtok_r(NULL, ",", &save)) {
        while (*d == ' ')
            d++;
        size_t n = strlen(d);
        while (n && d[n - 1] == ' ')
            d[--n] = '\0';
        if (n >= 2 && d[0] == '"' && d[n - 1] == '"') {
            d[n - 1] = '\0';
            d++;
        }
        if (*d && *d != '@' && access(d, W_OK | X_OK) < 0)
            ok = false;
    }
    return ok;
}

/* Where to put the socket when the configured directory is not usable: the
 * data directory's parent when the owner may write there, else /tmp
 * (sun_path holds 107 bytes). */
static char *socket_dir(const restore *rs)
{
    char *parent = uw_strdup(rs->pgdata);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    if (strlen(parent) < 80 && access(parent, W_OK | X_OK) == 0)
        return parent;
    free(parent);
    return uw_strdup("/tmp");
}

/* The last line of the server log matching `what`, for messages. Lines that
 * clients cause while the server is not yet open (our own polling) are not
 * what stopped recovery, and are skipped. */
static char *log_grep(const char *log, long from, const char *what)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return NULL;
    if (from > 0 && fseek(f, from, SEEK_SET) < 0) {
        fclose(f);
        return NULL;
    }
    char line[2048], *found = NULL;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, what) || strstr(line, "the database system is starting up") ||
            strstr(line, "not yet accepting connections") ||
            strstr(line, "the database system is shutting down") ||
            strstr(line, "canceling authentication due to timeout") ||
            strstr(line, "terminating connection due to"))
            continue;
        line[strcspn(line, "\n")] = '\0';
        free(found);
        found = uw_strdup(line);
    }
    fclose(f);
    return found;
}

typedef struct {
    long pid;
    int port;
    char sockdir[PATH_MAX];
    char listen[PATH_MAX];
} pm_info;

static bool read_pid_file(const char *pgdata, pm_info *pm)
{
    char *path = uw_sprintf("%s/postmaster.pid", pgdata);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return false;
    char line[PATH_MAX];
    int n = 0;
    memset(pm, 0, sizeof *pm);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        n++;
        if (n == 1)
            pm->pid = atol(line);
        else if (n == 4)
            pm->port = atoi(line);
        else if (n == 5)
            snprintf(pm->sockdir, sizeof pm->sockdir, "%s", line);
        else if (n == 6)
            snprintf(pm->listen, sizeof pm->listen, "%s", line);
    }
    fclose(f);
    /* The port line is written once the postmaster has set up its sockets. */
    return n >= 6 && pm->pid > 0 && pm->port > 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *one_value(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    char *v = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = uw_strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* Runs in a child that already is the cluster owner: start the server, wait
 * until recovery reached its target, print what it reached. */
static int start_and_wait(const restore *rs, const char *pg_ctl, uw_err *err)
{
    const target *t = &rs->t;
    char *log = log_path(rs);
    char *opts = NULL;
    bool sock_ok = socket_dirs_ok(pg_ctl, rs->pgdata);
    if (uw_cfg_isset(rs->cfg, "port") || !sock_ok) {
        uw_buf o = {0};
        char p[64];
        if (uw_cfg_isset(rs->cfg, "port")) {
            snprintf(p, sizeof p, "-p %lld ", (long long)uw_cfg_int(rs->cfg, "port"));
            uw_buf_append(&o, p, strlen(p));
        }
        if (!sock_ok) {
            char *dir = socket_dir(rs);
            char *kv = uw_sprintf("unix_socket_directories=%s", dir);
            uw_log(UW_LOG_INFO,
                   "the configured unix_socket_directories are not writable by %s: "
                   "using %s",
                   rs->owner, dir);
            uw_buf_append(&o, "-c ", 3);
            shell_quote(&o, kv); /* pg_ctl hands -o to the postmaster through the shell */
            free(kv);
            free(dir);
        }
        opts = (char *)o.data;
    }
    /* Only what this start adds to the log counts (pg_ctl -l appends). */
    struct stat lst;
    long log_start = stat(log, &lst) == 0 ? (long)lst.st_size : 0;
    pid_t child = fork();
    if (child < 0) {
        free(log);
        free(opts);
        return uw_fail(err, UW_E_RESTORE, "unable to fork: %s", strerror(errno));
    }
    if (child == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        if (opts)
            execl(pg_ctl, pg_ctl, "-D", rs->pgdata, "-l", log, "-W", "-o", opts, "start",
                  (char *)NULL);
        else
            execl(pg_ctl, pg_ctl, "-D", rs->pgdata, "-l", log, "-W", "start", (char *)NULL);
        fprintf(stderr, "ue-pitr: unable to run '%s': %s\n", pg_ctl, strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    free(opts);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(log);
        return uw_fail(err, UW_E_RESTORE, "'%s start' failed (exit status %d)", pg_ctl,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    double t0 = (uw_now_ms() / 1e3);
    const char *action = t->kind == T_NONE ? "promote" : t->action;
    uw_log(UW_LOG_INFO, "started the server (log: %s); waiting for recovery to reach %s%s%s", log,
           t->kind == T_NONE ? "the end of the archive" : "its target",
           t->kind == T_NONE ? "" : ", then ", t->kind == T_NONE ? "" : action);
    PGconn *conn = NULL;
    pm_info pm = {0};
    bool have_pm = false, done = false;
    char *lsn = NULL, *xts = NULL;
    int rc = 0;
    while (!done) {
        if ((uw_now_ms() / 1e3) - t0 > START_TIMEOUT_S) {
            rc = uw_fail(err, UW_E_TIMEOUT,
                         "recovery did not reach its target within %d s (see '%s')",
                         START_TIMEOUT_S, log);
            break;
        }
        /* Re-read until connected: the socket line appears after the port. */
        pm_info now;
        if (!conn && read_pid_file(rs->pgdata, &now)) {
            pm = now;
            have_pm = true;
        }
        /* Without the pid file (not written yet, or already removed: a
         * shutdown at an early target can be quicker than one poll), the
         * log says whether the postmaster has ended. */
        char *ended = NULL;
        if (!have_pm && !(ended = log_grep(log, log_start, "database system is shut down")) &&
            !(ended = log_grep(log, log_start, "FATAL:")))
            ended = log_grep(log, log_start, "PANIC:");
        bool gone = have_pm ? (kill((pid_t)pm.pid, 0) < 0 && errno == ESRCH)
                            : ended || (uw_now_ms() / 1e3) - t0 > 60;
        free(ended);
        if (gone) {
            char *fatal = log_grep(log, log_start, "FATAL:");
            if (!fatal)
                fatal = log_grep(log, log_start, "PANIC:");
            char *stopped = log_grep(log, log_start, "shutdown at recovery target");
            if (!strcmp(action, "shutdown") && stopped)
                done = true;
            else
                rc = uw_fail(err, UW_E_RESTORE,
                             "the restored server stopped during recovery: %s (see '%s')",
                             fatal ? fatal : "no FATAL message", log);
            free(fatal);
            free(stopped);
            break;
        }
        /* shutdown: nothing to ask, only the exit to wait for. */
        if (have_pm && !conn && strcmp(action, "shutdown") != 0 &&
            (pm.sockdir[0] || pm.listen[0])) {
            char port[16];
            snprintf(port, sizeof port, "%d", pm.port);
            const char *host = pm.sockdir[0]             ? pm.sockdir
                               : !strcmp(pm.listen, "*") ? "localhost"
                                                         : pm.listen;
            const char *keys[8], *vals[8];
            int n = 0;
            keys[n] = "host", vals[n++] = host;
            keys[n] = "port", vals[n++] = port;
            keys[n] = "dbname", vals[n++] = uw_cfg_str(rs->cfg, "pg-database");
            if (uw_cfg_str(rs->cfg, "pg-user"))
                keys[n] = "user", vals[n++] = uw_cfg_str(rs->cfg, "pg-user");
            keys[n] = "connect_timeout", vals[n++] = "5";
            keys[n] = "application_name", vals[n++] = "ue-pitr restore";
            keys[n] = NULL, vals[n] = NULL;
            conn = uw_pq_load(NULL) == 0 ? PQconnectdbParams(keys, vals, 0) : NULL;
            if (conn && PQstatus(conn) != CONNECTION_OK) {
                PQfinish(conn);
                conn = NULL;
            }
        }
        if (conn && strcmp(action, "shutdown") != 0) {
            char *rec = one_value(conn, "select pg_is_in_recovery()");
            if (!rec) {
                PQfinish(conn);
                conn = NULL;
            } else if (!strcmp(action, "promote") && !strcmp(rec, "f")) {
                done = true;
                lsn = one_value(conn, "select pg_current_wal_lsn()");
            } else if (!strcmp(action, "pause") && !strcmp(rec, "t")) {
                char *ps = one_value(conn, "select pg_get_wal_replay_pause_state()");
                if (ps && !strcmp(ps, "paused")) {
                    done = true;
                    lsn = one_value(conn, "select pg_last_wal_replay_lsn()");
                }
                free(ps);
            } else if (!strcmp(action, "pause") && !strcmp(rec, "f")) {
                rc = uw_fail(err, UW_E_RESTORE,
                             "the restored server was promoted instead of "
                             "pausing at the target");
                free(rec);
                break;
            }
            free(rec);
            if (done)
                xts = one_value(conn, "select pg_last_xact_replay_timestamp()");
        }
        if (!done)
            sleep_ms(200);
    }
    if (conn)
        PQfinish(conn);
    /* Without a target PostgreSQL ends recovery at the first segment
     * restore_command does not deliver, whatever the reason (exit codes below
     * 126 all look like "not archived"): a repository outage would promote on
     * a partial history. The archive's end is known; say so if it was not
     * reached. */
    uint64_t promoted = 0, seg = rs->arch.seg_size;
    if (rc == 0 && t->kind == T_NONE && !strcmp(action, "promote") && lsn &&
        uw_lsn_parse(lsn, &promoted) == 0 && seg && rs->reach.end_lsn >= seg &&
        promoted <= rs->reach.end_lsn - seg) {
        char want[32], *why = log_grep(log, log_start, "ue-wal-fetch: ERROR");
        uw_lsn_format(rs->reach.end_lsn, want, sizeof want);
        rc = uw_fail(err, UW_E_RESTORE,
                     "recovery ended at %s, before the end of the archive (segment ending at %s), "
                     "and the server was promoted: WAL could not be fetched%s%s",
                     lsn, want, why ? ": " : "", why ? strstr(why, "ue-wal-fetch: ERROR") : "");
        free(why);
    }
    if (rc == 0) {
        char *stop = log_grep(log, log_start, "recovery stopping");
        char *last = log_grep(log, log_start, "last completed transaction was at log time");
        printf("recovery reached its target after %.1f s (%s):\n", (uw_now_ms() / 1e3) - t0,
               !strcmp(action, "promote") ? "promoted"
               : !strcmp(action, "pause") ? "paused, resume with select pg_wal_replay_resume()"
                                          : "shut down");
        if (stop)
            printf("  %s\n", strstr(stop, "recovery stopping"));
        if (last && !stop)
            printf("  %s\n", strstr(last, "last completed"));
        if (lsn)
            printf("  %s LSN: %s\n", !strcmp(action, "promote") ? "current" : "last replayed", lsn);
        if (xts)
            printf("  last replayed transaction: %s\n", xts[0] ? xts : "none");
        if (have_pm && strcmp(action, "shutdown") != 0)
            printf("  server: pid %ld, port %d, socket directory %s\n", pm.pid, pm.port,
                   pm.sockdir[0] ? pm.sockdir : "(none)");
        fflush(stdout);
        free(stop);
        free(last);
    }
    free(lsn);
    free(xts);
    free(log);
    return rc;
}

/* Become the owner in a child (a root process never talks to the restored
 * server: peer authentication would refuse it anyway), and report back the
 * error, if any, through a pipe. */
static int start_server(const restore *rs, const char *pg_ctl, uw_err *err)
{
    if (rs->uid == 0 && geteuid() == 0)
        return uw_fail(err, UW_E_RESTORE,
                       "'%s' is owned by root and PostgreSQL refuses to run as root: chown it to "
                       "the PostgreSQL user and start it yourself",
                       rs->pgdata);
    int fds[2];
    /* Close-on-exec: the server started below must not hold the write end,
     * or this process would wait for it to exit. */
    if (pipe2(fds, O_CLOEXEC) < 0)
        return uw_fail(err, UW_E_RESTORE, "unable to create a pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return uw_fail(err, UW_E_RESTORE, "unable to fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        uw_err e;
        uw_err_clear(&e);
        int rc = 0;
        if (geteuid() == 0) {
            if (initgroups(rs->owner, rs->gid) < 0 && setgroups(0, NULL) < 0)
                rc = uw_fail(&e, UW_E_RESTORE, "unable to drop supplementary groups: %s",
                             strerror(errno));
            else if (setgid(rs->gid) < 0 || setuid(rs->uid) < 0)
                rc = uw_fail(&e, UW_E_RESTORE, "unable to become %s: %s", rs->owner,
                             strerror(errno));
        }
        if (rc == 0 && chdir(rs->pgdata) < 0)
            rc = uw_fail(&e, UW_E_RESTORE, "unable to enter '%s': %s", rs->pgdata, strerror(errno));
        if (rc == 0)
            rc = start_and_wait(rs, pg_ctl, &e);
        if (rc < 0 && write(fds[1], &e, sizeof e) != (ssize_t)sizeof e)
            _exit(UW_E_INTERNAL);
        fflush(stdout);
        _exit(rc < 0 ? 1 : 0);
    }
    close(fds[1]);
    uw_err e;
    ssize_t n, got = 0;
    while ((n = read(fds[0], (char *)&e + got, sizeof e - (size_t)got)) > 0 ||
           (n < 0 && errno == EINTR))
        if (n > 0)
            got += n;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got == (ssize_t)sizeof e) {
        *err = e;
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return uw_fail(err, UW_E_INTERNAL, "the process starting the server failed");
    return 0;
}

/* ----------------------------------------------------------- the command -- */

static void restore_free(restore *rs)
{
    if (rs->have_m)
        uw_manifest_free(&rs->m);
    for (size_t i = 0; i < rs->nchain; i++)
        uw_manifest_free(&rs->chain[i]);
    free(rs->chain);
    if (rs->have_arch)
        uw_archive_free(&rs->arch);
    uw_tl_history_free(&rs->hist);
    if (rs->repos)
        uw_repos_close(rs->repos, rs->nrepos);
    free(rs->usable);
    free(rs->pgdata);
}

static int load_repos(restore *rs, uw_err *err)
{
    if (uw_repos_open(rs->cfg, &rs->repos, &rs->nrepos, err) < 0)
        return -1;
    rs->usable = uw_calloc((size_t)rs->nrepos, sizeof(bool));
    uw_err first;
    uw_err_clear(&first);
    const uw_repo *ref = NULL;
    for (int i = 0; i < rs->nrepos; i++) {
        uw_repo *r = &rs->repos[i];
        uw_err e;
        uw_err_clear(&e);
        if (uw_repo_load(r, rs->cfg, &e) < 0) {
            if (first.code == UW_OK)
                first = e;
            uw_log(UW_LOG_WARN, "%s", e.msg);
            continue;
        }
        if (ref && r->info.system_id != ref->info.system_id) {
            uw_log(UW_LOG_WARN,
                   "stanza '%s' in %s belongs to database system %" PRIu64 " but in %s to %" PRIu64
                   ": ignoring %s",
                   r->stanza, r->st->desc, r->info.system_id, ref->st->desc, ref->info.system_id,
                   r->st->desc);
            continue;
        }
        if (!ref)
            ref = r;
        rs->usable[i] = true;
    }
    if (!ref) {
        *err = first;
        return -1;
    }
    uw_archive_init(&rs->arch, ref->info.wal_seg_size);
    rs->have_arch = true;
    for (int i = 0; i < rs->nrepos; i++) {
        if (!rs->usable[i])
            continue;
        uw_err e;
        if (uw_archive_scan(&rs->arch, &rs->repos[i], &e) < 0)
            uw_log(UW_LOG_WARN, "%s: the archive of this repository is not considered", e.msg);
    }
    uw_archive_build(&rs->arch);
    return 0;
}

int pitr_restore(const uw_config *cfg, uw_err *err)
{
    restore rs;
    memset(&rs, 0, sizeof rs);
    rs.cfg = cfg;
    rs.delta = uw_cfg_bool(cfg, "delta");
    if (parse_target(cfg, &rs.t, err) < 0)
        return -1;
    if (!uw_cfg_str(cfg, "pgdata"))
        return uw_fail(err, UW_E_OPTION,
                       "option 'pgdata' is required: the directory to restore into");
    double t0 = (uw_now_ms() / 1e3);
    int rc = load_repos(&rs, err);
    if (rc == 0)
        rc = choose_backup(&rs, err);
    if (rc == 0)
        rc = check_wal(&rs, err);
    if (rc == 0)
        rc = check_chain(&rs, err);
    if (rc == 0)
        rc = check_pgdata(&rs, err);
    char *pg_ctl = NULL;
    if (rc == 0) {
        pg_ctl = find_pg_ctl(rs.m.pg_version);
        if (!pg_ctl && uw_cfg_bool(cfg, "start"))
            rc = uw_fail(err, UW_E_RESTORE,
                         "--start: no pg_ctl of PostgreSQL %d found (looked in "
                         "/usr/lib/postgresql/%d/bin, /usr/pgsql-%d/bin and pg_config --bindir)",
                         rs.m.pg_version, rs.m.pg_version, rs.m.pg_version);
    }
    if (rc < 0)
        goto done;

    char tdesc[160], sz[32], lsn[32];
    describe_target(&rs.t, tdesc, sizeof tdesc);
    uw_fmt_size(rs.m.total_size, sz, sizeof sz);
    uw_log(UW_LOG_INFO, "restoring backup %s (%s, %s, from %s) into '%s' for recovery to %s%s",
           rs.m.id, rs.m.type, sz, rs.repo->st->desc, rs.pgdata, tdesc, rs.delta ? " (delta)" : "");

    /* From here on the data directory changes. */
    if (rs.delta && rs.pgdata_exists) {
        char *control = uw_sprintf("%s/global/pg_control", rs.pgdata);
        if (unlink(control) < 0 && errno != ENOENT)
            rc = uw_fail(err, UW_E_FILE, "unable to remove '%s': %s", control, strerror(errno));
        free(control);
        if (rc == 0)
            rc = clean_dir(&rs, "", rs.pgdata, false, err);
    }
    if (rc == 0)
        rc = make_tree(&rs, err);
    if (rc == 0)
        rc = restore_files(&rs, err);
    if (rc == 0) {
        dir_times(&rs);
        rc = write_recovery(&rs, err);
    }
    if (rc < 0) {
        uw_log(UW_LOG_WARN,
               "the restore into '%s' is incomplete (it cannot be started: "
               "global/pg_control is %s); run it again with --delta to finish it",
               rs.pgdata, "missing or from before the failure");
        goto done;
    }
    double secs = (uw_now_ms() / 1e3) - t0;
    char wsz[32], ssz[32], rsz[32];
    uw_fmt_size(rs.bytes_written, wsz, sizeof wsz);
    uw_fmt_size(rs.bytes_skipped, ssz, sizeof ssz);
    uw_fmt_size(rs.bytes_read, rsz, sizeof rsz);
    printf("restored backup %s (%s, consistent at ", rs.m.id, rs.m.type);
    fmt_lsn(rs.m.stop_lsn, lsn, sizeof lsn);
    char when[48];
    uw_iso_time(rs.m.stop_time * INT64_C(1000000), when, sizeof when);
    printf("%s, LSN %s) from %s into %s\n", when, lsn, rs.repo->st->desc, rs.pgdata);
    printf("  %zu files, %s written (%s read from the repository) in %.1f s with %lld "
           "worker(s)\n",
           rs.files_written + rs.files_skipped, wsz, rsz, secs,
           (long long)uw_cfg_int(cfg, "process-max"));
    if (rs.delta)
        printf("  delta: %zu files (%" PRIu64 " bytes) rewritten, %zu files (%" PRIu64
               " bytes, %s) unchanged, %zu stale entries removed\n",
               rs.files_written, rs.bytes_written, rs.files_skipped, rs.bytes_skipped, ssz,
               rs.removed);
    {
        char end[32], seg[48];
        uint64_t e = rs.have_wal_end ? rs.wal_end.end_lsn : rs.reach.end_lsn;
        fmt_lsn(e, end, sizeof end);
        uw_seg_name(rs.reach.last_tli, rs.reach.last_segno, rs.arch.seg_size, seg, sizeof seg);
        printf("  recovery to %s on timeline %s (%" PRIu32 "), then %s; the archive reaches %s "
               "(segment %s)",
               tdesc, rs.t.tli_text ? rs.t.tli_text : "latest", rs.rec_tli,
               rs.t.kind == T_NONE ? "promote" : rs.t.action, end, seg);
        if (rs.have_wal_end && rs.wal_end.have_xact) {
            char xt[48];
            uw_iso_time(rs.wal_end.xact_time_us, xt, sizeof xt);
            printf(", last transaction at %s", xt);
        }
        printf("\n");
    }
    {
        char *log = log_path(&rs);
        const char *ctl = pg_ctl ? pg_ctl : "pg_ctl";
        printf("start the server with:\n  ");
        if (geteuid() == 0 && rs.uid != 0)
            printf("runuser -u %s -- ", rs.owner);
        printf("%s -D %s -l %s start\n", ctl, rs.pgdata, log);
        free(log);
        if (geteuid() == 0 && rs.uid == 0)
            uw_log(UW_LOG_WARN,
                   "'%s' belongs to root, and PostgreSQL refuses to run as root: "
                   "chown -R it (and the tablespace locations) to the server's user "
                   "before starting it",
                   rs.pgdata);
    }
    fflush(stdout);
    if (uw_cfg_bool(cfg, "start"))
        rc = start_server(&rs, pg_ctl, err);
    else if (uw_cfg_isset(cfg, "port"))
        printf("(it will listen on port %lld: written to postgresql.auto.conf)\n",
               (long long)uw_cfg_int(cfg, "port"));
done:
    free(pg_ctl);
    restore_free(&rs);
    return rc;
}
