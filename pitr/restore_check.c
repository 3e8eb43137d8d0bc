/* The checks against the repositories before anything is written: the backup
 * that serves the target (restore_select.c decides, this file lists and loads),
 * the WAL recovery from it needs, and every backup it reads files from. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "pg/wal.h"
#include "restore.h"

/* ------------------------------------------------------ backup selection -- */

static uint32_t arch_latest(void *arg, uint32_t from)
{
    return uw_archive_latest_tli(arg, from);
}

static int arch_history(void *arg, uint32_t tli, uw_tl_history *h, uw_err *err)
{
    return uw_archive_tl_history(arg, tli, h, err);
}

int restore_choose_backup(restore *rs, uw_err *err)
{
    restore_pick p;
    restore_pick_init(&p, &rs->t, uw_cfg_str(rs->cfg, UW_OPT_SET));
    restore_timelines tls = {arch_latest, arch_history, &rs->arch};
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
        int rc = restore_pick_in(&p, list, n, &tls, err);
        if (rc == 1) {
            /* The list holds headers only: load this backup's files. */
            rc = uw_manifest_load(r, list[p.index].id, &rs->m, err);
            if (rc < 0) {
                uw_tl_history_free(&p.hist);
            } else {
                rs->have_m = true;
                rs->repo = r;
                rs->hist = p.hist;
                rs->rec_tli = p.tli;
            }
        }
        uw_backups_free(list, n);
        if (rc < 0)
            return -1;
        if (restore_pick_done(&p))
            break;
    }
    if (rs->have_m)
        return 0;
    if (unlisted.code) {
        *err = unlisted; /* what hid the backups, not "does not exist" */
        return -1;
    }
    return restore_pick_fail(&p, uw_cfg_str(rs->cfg, UW_OPT_STANZA), err);
}

/* ---------------------------------------------------------- WAL checks -- */

/* A time target must come before the newest transaction recovery can replay. */
static int check_time_reach(const restore *rs, const char *last, uw_err *err)
{
    const uw_manifest *m = &rs->m;
    uint32_t seg = rs->arch.seg_size;
    /* Recovery to a time stops at the first commit or abort record whose
     * timestamp is past the target; without one PostgreSQL 15 ends with
     * "recovery ended before configured recovery target was reached".
     * So the honest limit is the newest transaction time in the reachable
     * WAL, decoded from the records, rather than when the last segment
     * was stored: a segment stored at 12:05 may hold nothing newer than
     * 12:01, and a store time is also not something every repository type
     * reports. */
    if (rs->have_wal_end && rs->wal_end.have_xact && rs->t.time_us >= rs->wal_end.xact_time_us) {
        char tt[48], xt[48], lsn2[32];
        uw_iso_time(rs->t.time_us, tt, sizeof tt);
        uw_iso_time(rs->wal_end.xact_time_us, xt, sizeof xt);
        uw_lsn_format(rs->wal_end.xact_lsn, lsn2, sizeof lsn2);
        return uw_fail(err, UW_E_RESTORE,
                       "target time %s is after the last archived WAL (last transaction at "
                       "%s, LSN %s in segment %s; archive ends in segment %s): recovery "
                       "would end before reaching it; omit the target to recover to the end "
                       "of the archive, or archive more WAL first",
                       tt, xt, lsn2, rs->wal_end.xact_segment, last);
    }
    if (rs->have_wal_end && !rs->wal_end.have_xact) {
        if ((int64_t)(rs->reach.last_segno - m->stop_lsn / seg) < RESTORE_XACT_SCAN_SEGMENTS) {
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
               RESTORE_XACT_SCAN_SEGMENTS);
    }
    return 0;
}

int restore_check_wal(restore *rs, uw_err *err)
{
    const uw_manifest *m = &rs->m;
    uint32_t seg = rs->arch.seg_size;
    uw_archive_reach(&rs->arch, &rs->hist, m->start_lsn, &rs->reach);
    const uw_reach *rc = &rs->reach;
    char miss[48] = "", stop_seg[48], lsn[32];
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
    int n = rs->t.kind == RT_TIME ? RESTORE_XACT_SCAN_SEGMENTS : 1;
    /* Only a time or LSN target needs the exact end: decoding costs a whole
     * segment read (and its memory) before the copy can start. */
    bool need_end = rs->t.kind == RT_TIME || rs->t.kind == RT_LSN;
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
    uw_lsn_format(end, lsn, sizeof lsn);
    if (rs->t.kind == RT_LSN && rs->t.lsn >= end)
        return uw_fail(err, UW_E_RESTORE,
                       "target LSN %s is after the last archived WAL (segment %s, WAL ends at "
                       "%s; %s%s%s): recovery from backup %s cannot reach it",
                       rs->t.value, last, lsn, miss[0] ? "the next segment " : "",
                       miss[0] ? miss : "", miss[0] ? " is not archived" : "", m->id);
    if (rs->t.kind == RT_TIME)
        return check_time_reach(rs, last, err);
    return 0;
}

/* ------------------------------------------------------------ the chain -- */

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

/* Load backup `id`, which backup `from` needs, into the chain. */
static int load_needed(restore *rs, const char *from, const char *id, uw_err *err)
{
    const uw_manifest *m = &rs->m;
    uint64_t sysid = rs->repo->info.system_id;
    uw_manifest p;
    if (rs->nchain > 10000)
        return uw_fail(err, UW_E_REPO_FORMAT, "backup %s: the chain is too long", m->id);
    if (uw_manifest_load(rs->repo, id, &p, err) < 0) {
        uw_wrap(err, "backup %s needs backup %s", from, id);
        if (err->code == UW_E_NOT_FOUND)
            err->code = UW_E_RESTORE;
        return -1;
    }
    if (p.system_id != sysid || p.pg_version != m->pg_version) {
        uw_fail(err, UW_E_FOREIGN,
                "backup %s needs backup %s, of another cluster or PostgreSQL "
                "version",
                from, p.id);
        uw_manifest_free(&p);
        return -1;
    }
    rs->chain = uw_realloc(rs->chain, (rs->nchain + 1) * sizeof *rs->chain);
    rs->chain[rs->nchain++] = p;
    return 0;
}

/* The prior chain, the backups holding unchanged files (ref), and those that
 * block deltas build on (base), transitively. They stay loaded: the file
 * workers rebuild block deltas from them. */
int restore_check_chain(restore *rs, uw_err *err)
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
            if (rc == 0 && !chain_has(rs, ids[k]))
                rc = load_needed(rs, from, ids[k], err);
            free(ids[k]);
        }
        free(ids);
    }
    return rc;
}
