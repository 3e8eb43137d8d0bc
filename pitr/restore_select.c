/* Backup selection: which backup serves the target. Backups are tried newest
 * first, repository by repository; the first repository holding one that
 * qualifies is used. A backup qualifies when it is consistent before the
 * target and lies on the history of the timeline recovery will follow.
 *
 * Pure: the lists come from the caller, the timeline histories through
 * callbacks (restore_check.c reads them from the archive). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "pg/wal.h"
#include "restore.h"

/* As PostgreSQL checks it: the timeline the history gives the backup's start
 * (the newest entry holding it) must be the backup's, and it must not end
 * before the backup is consistent. Returns 0 when it is on it, else 1 with msg
 * saying why. */
static int on_history(const uw_manifest *m, uint32_t tli, const uw_tl_history *h, char *msg,
                      size_t msglen)
{
    for (size_t i = h->n; i-- > 0;) {
        const uw_tl_entry *e = &h->e[i];
        if (!(e->begin <= m->start_lsn && m->start_lsn < e->end))
            continue;
        if (e->tli == m->timeline && m->stop_lsn <= e->end)
            return 0;
        char sw[32];
        uw_lsn_format(e->end, sw, sizeof sw);
        if (e->tli == m->timeline)
            snprintf(msg, msglen,
                     "backup %s is not on the history of timeline %" PRIu32 " (which left "
                     "timeline %" PRIu32 " at %s, before the backup was consistent)",
                     m->id, tli, m->timeline, sw);
        else
            snprintf(msg, msglen,
                     "backup %s (timeline %" PRIu32 ") is not on the history of timeline %" PRIu32,
                     m->id, m->timeline, tli);
        return 1;
    }
    snprintf(msg, msglen,
             "backup %s (timeline %" PRIu32 ") is not on the history of timeline %" PRIu32, m->id,
             m->timeline, tli);
    return 1;
}

/* PostgreSQL refuses "requested timeline is not a child of this server's
 * history" when the backup is not on the history of the timeline recovery
 * follows: such a backup is skipped here instead. */
int restore_timeline_for(const restore_target *t, const uw_manifest *m,
                         const restore_timelines *tls, uint32_t *tli, uw_tl_history *h, char *msg,
                         size_t msglen, uw_err *err)
{
    if (t->tli == 0)
        *tli = tls->latest(tls->arg, m->timeline);
    else if (t->tli == UINT32_MAX)
        *tli = m->timeline;
    else
        *tli = t->tli;
    if (tls->history(tls->arg, *tli, h, err) < 0) {
        if (err->code == UW_E_NOT_FOUND) {
            snprintf(msg, msglen, "timeline %" PRIu32 " has no history file in the archive", *tli);
            return 1;
        }
        return -1;
    }
    int rc = on_history(m, *tli, h, msg, msglen);
    if (rc)
        uw_tl_history_free(h);
    return rc;
}

static restore_point point_of(const uw_manifest *m)
{
    restore_point p;
    snprintf(p.id, sizeof p.id, "%s", m->id);
    p.stop_time = m->stop_time;
    p.stop_lsn = m->stop_lsn;
    return p;
}

static void describe_point(const restore_point *p, const restore_target *t, char *buf, size_t len)
{
    char a[48], b[32];
    uw_iso_time(p->stop_time * INT64_C(1000000), a, sizeof a);
    uw_lsn_format(p->stop_lsn, b, sizeof b);
    if (t->kind == RT_LSN)
        snprintf(buf, len, "LSN %s, %s", b, a);
    else
        snprintf(buf, len, "%s, LSN %s", a, b);
}

static int too_early(const restore_target *t, const restore_point *b, const restore_point *earliest,
                     uw_err *err)
{
    char tdesc[128], cp[128], ep[128];
    restore_target_describe(t, tdesc, sizeof tdesc);
    describe_point(b, t, cp, sizeof cp);
    describe_point(earliest, t, ep, sizeof ep);
    return uw_fail(err, UW_E_RESTORE,
                   "target %s is before the end of backup %s (consistent at %s); the earliest "
                   "restorable point is %s (backup %s)",
                   tdesc, b->id, cp, ep, earliest->id);
}

void restore_pick_init(restore_pick *p, const restore_target *t, const char *set)
{
    memset(p, 0, sizeof *p);
    p->t = t;
    p->set = set;
    p->index = -1;
}

int restore_pick_in(restore_pick *p, const uw_manifest *list, int n, const restore_timelines *tls,
                    uw_err *err)
{
    p->nbackups += n;
    for (int k = n; k-- > 0;) {
        const uw_manifest *m = &list[k];
        if (p->set && strcmp(m->id, p->set) != 0)
            continue;
        restore_point bp = point_of(m);
        if (!p->have_earliest || bp.stop_lsn < p->earliest.stop_lsn) {
            p->earliest = bp;
            p->have_earliest = true;
        }
        if (!restore_before_target(p->t, m)) {
            if (p->set)
                return too_early(p->t, &bp, &bp, err);
            continue;
        }
        char msg[400];
        int rc = restore_timeline_for(p->t, m, tls, &p->tli, &p->hist, msg, sizeof msg, err);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            if (strcmp(p->why, msg) != 0)
                uw_log(UW_LOG_INFO, "skipping backup %s: %s%s", m->id, msg,
                       p->t->tli == 0 ? " (--target-timeline current follows the backup's "
                                        "own timeline)"
                                      : "");
            snprintf(p->why, sizeof p->why, "%s", msg);
            continue;
        }
        p->index = k;
        return 1;
    }
    return 0;
}

bool restore_pick_done(const restore_pick *p)
{
    return p->set && p->have_earliest; /* found it: do not look for the same id elsewhere */
}

int restore_pick_fail(const restore_pick *p, const char *stanza, uw_err *err)
{
    const char *set = p->set;
    if (set && p->why[0])
        return uw_fail(err, UW_E_RESTORE, "backup %s cannot be restored: %s", set, p->why);
    if (set)
        return uw_fail(err, UW_E_RESTORE,
                       "backup '%s' does not exist in any repository of stanza '%s' (or is "
                       "incomplete)",
                       set, stanza);
    if (!p->nbackups)
        return uw_fail(err, UW_E_RESTORE, "stanza '%s' has no complete backup in any repository",
                       stanza);
    if (p->why[0])
        return uw_fail(err, UW_E_RESTORE, "no backup can reach the target: %s", p->why);
    return too_early(p->t, &p->earliest, &p->earliest, err);
}
