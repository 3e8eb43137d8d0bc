/* ue-pitr check: prove the archiving wiring end to end, as a DBA runs it after
 * setup or after any change:
 *
 *  1. the stanza exists in every configured repository and belongs to this
 *     cluster (system identifier, PostgreSQL major version);
 *  2. archive_mode is on (or always) and archive_command calls ue-wal-push
 *     for this stanza with %p (an archive_library, which would take its
 *     place, is reported);
 *  3. a WAL switch is forced (after a WAL record, so there is something to
 *     switch) and the completed segment must appear in EVERY repository
 *     within archive-timeout, each repository polled on its own so that the
 *     one it does not reach is named.
 *
 * The first failure stops the check with one line saying what is wrong and
 * how to fix it: UW_E_PG (10) the server, UW_E_STANZA (6) the stanza,
 * UW_E_CHECK (19) archive_mode / archive_command, UW_E_TIMEOUT (12) the
 * segment did not arrive, UW_E_STORAGE (5) ... a repository failed. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "pg/pg.h"
#include "pitr.h"
#include "repo/repo.h"
#include "work/state.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1. ------------------------------------------------------------ stanza -- */

static int check_stanza(const uw_config *cfg, uw_repo *r, const uw_pg_cluster *c, uw_err *err)
{
    if (uw_repo_load(r, cfg, err) < 0) {
        if (err->code == UW_E_STANZA)
            return uw_fail(err, UW_E_STANZA,
                           "stanza '%s' does not exist in %s: run 'ue-pitr --stanza %s "
                           "stanza-create' (as the user archive_command runs as)",
                           r->stanza, r->st->desc, r->stanza);
        return uw_wrap(err, "%s", r->st->desc);
    }
    if (r->info.system_id != c->system_id)
        return uw_fail(err, UW_E_STANZA,
                       "stanza '%s' in %s belongs to database system %llu, but the server is "
                       "%llu: the configuration points at another cluster's stanza (check "
                       "pg-port/pg-socket-path and the stanza name)",
                       r->stanza, r->st->desc, (unsigned long long)r->info.system_id,
                       (unsigned long long)c->system_id);
    if (r->info.pg_version != c->version_num / 10000)
        return uw_fail(err, UW_E_STANZA,
                       "stanza '%s' in %s is for PostgreSQL %d, but the server runs %d: "
                       "create a new stanza after a major upgrade",
                       r->stanza, r->st->desc, r->info.pg_version, c->version_num / 10000);
    if (r->info.wal_seg_size != c->wal_seg_size)
        return uw_fail(err, UW_E_STANZA,
                       "stanza '%s' in %s has %u-byte WAL segments, the server %u-byte ones",
                       r->stanza, r->st->desc, r->info.wal_seg_size, c->wal_seg_size);
    printf("stanza '%s' in %s: database system %llu, PostgreSQL %d: ok\n", r->stanza, r->st->desc,
           (unsigned long long)c->system_id, r->info.pg_version);
    return 0;
}

/* 2. ---------------------------------------------------------- settings -- */

/* Split a shell command into words (quotes and backslashes as sh reads them;
 * enough to find our program and its options, not a shell). */
static size_t split_words(const char *s, char ***out)
{
    char **w = NULL;
    size_t n = 0;
    while (*s) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        size_t cap = strlen(s) + 1, len = 0;
        char *word = uw_malloc(cap);
        char q = 0;
        for (; *s && (q || !isspace((unsigned char)*s)); s++) {
            if (q && *s == q)
                q = 0;
            else if (!q && (*s == '\'' || *s == '"'))
                q = *s;
            else if (*s == '\\' && q != '\'' && s[1])
                word[len++] = *++s;
            else if (!q && (*s == ';' || *s == '&' || *s == '|'))
                break; /* the end of this command */
            else
                word[len++] = *s;
        }
        word[len] = '\0';
        w = uw_realloc(w, (n + 1) * sizeof *w);
        w[n++] = word;
        if (*s == ';' || *s == '&' || *s == '|') {
            w = uw_realloc(w, (n + 1) * sizeof *w);
            w[n++] = uw_strdup(";");
            s++;
        }
    }
    *out = w;
    return n;
}

/* The stanza ue-wal-push is given in cmd: 1 found (*stanza set, caller
 * frees), 0 ue-wal-push is called without --stanza, -1 no ue-wal-push. Also
 * tells whether %p is passed. */
static int push_stanza(const char *cmd, char **stanza, bool *has_p)
{
    char **w;
    size_t n = split_words(cmd, &w);
    int found = -1;
    *stanza = NULL;
    *has_p = false;
    for (size_t i = 0; i < n; i++) {
        const char *base = strrchr(w[i], '/');
        base = base ? base + 1 : w[i];
        if (found < 0 && strcmp(base, "ue-wal-push") == 0) {
            found = 0;
            for (size_t k = i + 1; k < n && strcmp(w[k], ";") != 0; k++) {
                if (!strcmp(w[k], "--stanza") && k + 1 < n) {
                    free(*stanza);
                    *stanza = uw_strdup(w[++k]);
                    found = 1;
                } else if (!strncmp(w[k], "--stanza=", 9)) {
                    free(*stanza);
                    *stanza = uw_strdup(w[k] + 9);
                    found = 1;
                } else if (strstr(w[k], "%p"))
                    *has_p = true;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(w[i]);
    free(w);
    return found;
}

static int check_settings(PGconn *conn, const char *stanza, uw_err *err)
{
    PGresult *res = uw_pg_query(conn,
                                "SELECT current_setting('archive_mode'), "
                                "current_setting('archive_command'), "
                                "coalesce(current_setting('archive_library', true), ''), "
                                "pg_is_in_recovery()",
                                err);
    if (!res)
        return -1;
    char *mode = uw_strdup(PQgetvalue(res, 0, 0));
    char *cmd = uw_strdup(PQgetvalue(res, 0, 1));
    char *lib = uw_strdup(PQgetvalue(res, 0, 2));
    bool standby = PQgetvalue(res, 0, 3)[0] == 't';
    PQclear(res);
    int rc = 0;
    char *got = NULL;
    bool has_p = false;
    int found = 0;
    if (standby)
        rc = uw_fail(err, UW_E_CHECK,
                     "the server is a standby (in recovery): run check against the primary");
    else if (strcmp(mode, "on") != 0 && strcmp(mode, "always") != 0)
        rc = uw_fail(err, UW_E_CHECK,
                     "archive_mode is '%s': set archive_mode = on in postgresql.conf and restart "
                     "PostgreSQL",
                     mode);
    else if (!strcmp(lib, "ue_wal_archive"))
        /* An archive module of ours would take the stanza from its own
         * settings, which this command cannot read: reported, not judged. */
        printf("archive_mode = %s, archive_library = ue_wal_archive (its stanza setting is not "
               "checked here)\n",
               mode);
    else if (lib[0])
        /* PostgreSQL 15 uses the library instead of the command. */
        rc = uw_fail(err, UW_E_CHECK,
                     "archive_library is '%s' (it replaces archive_command): set "
                     "archive_library = '' and archive_command = 'ue-wal-push --stanza %s %%p'",
                     lib, stanza);
    else if (!cmd[0])
        rc = uw_fail(err, UW_E_CHECK,
                     "archive_command is empty: set archive_command = 'ue-wal-push --stanza %s "
                     "%%p' in postgresql.conf and reload",
                     stanza);
    else if ((found = push_stanza(cmd, &got, &has_p)) < 0)
        rc = uw_fail(err, UW_E_CHECK,
                     "archive_command '%.200s' does not call ue-wal-push: set archive_command = "
                     "'ue-wal-push --stanza %s %%p'",
                     cmd, stanza);
    else if (found == 0)
        rc = uw_fail(err, UW_E_CHECK,
                     "archive_command '%.200s' gives ue-wal-push no --stanza: add --stanza %s", cmd,
                     stanza);
    else if (strcmp(got, stanza) != 0)
        rc = uw_fail(err, UW_E_CHECK,
                     "archive_command pushes to stanza '%s', not '%s': set archive_command = "
                     "'ue-wal-push --stanza %s %%p' (or check the other stanza)",
                     got, stanza, stanza);
    else if (!has_p)
        rc = uw_fail(err, UW_E_CHECK,
                     "archive_command '%.200s' does not pass the WAL file (%%p) to ue-wal-push",
                     cmd);
    else
        printf("archive_mode = %s, archive_command calls ue-wal-push for stanza '%s': ok\n", mode,
               stanza);
    free(got);
    free(mode);
    free(cmd);
    free(lib);
    return rc;
}

/* 3. -------------------------------------------------------- WAL switch -- */

/* Force a segment switch and return the name of the segment it completed.
 * A logical message first: on an idle server the current segment may hold
 * nothing since the last switch, and pg_switch_wal() would then switch
 * nothing and no new segment would ever be archived. */
static int switch_wal(PGconn *conn, char seg[64], uw_err *err)
{
    PGresult *res =
        uw_pg_query(conn, "SELECT pg_logical_emit_message(false, 'ue-wal-check', '')", err);
    if (!res)
        return uw_wrap(err, "writing a WAL record before the switch");
    PQclear(res);
    res = uw_pg_query(conn, "SELECT pg_walfile_name(pg_switch_wal())", err);
    if (!res)
        return uw_wrap(err, "forcing a WAL switch (pg_switch_wal needs superuser or a grant)");
    snprintf(seg, 64, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* Why the segment is not there yet, from PostgreSQL's side. */
static void archiver_hint(PGconn *conn, char *buf, size_t len)
{
    uw_err e;
    PGresult *res = uw_pg_query(conn,
                                "SELECT failed_count, coalesce(last_failed_wal, ''), "
                                "coalesce(last_archived_wal, '') FROM pg_stat_archiver",
                                &e);
    buf[0] = '\0';
    if (!res)
        return;
    if (atoll(PQgetvalue(res, 0, 0)) > 0 && PQgetvalue(res, 0, 1)[0])
        snprintf(buf, len,
                 "; pg_stat_archiver: %s failures, last failed '%s' (see the PostgreSQL log for "
                 "ue-wal-push's message)",
                 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    else
        snprintf(buf, len, "; pg_stat_archiver: last archived '%s'", PQgetvalue(res, 0, 2));
    PQclear(res);
}

static int wait_archived(PGconn *conn, uw_repo *repos, int n, const char *seg, int timeout,
                         uw_err *err)
{
    double t0 = now_s(), deadline = t0 + timeout;
    double *arrived = uw_calloc((size_t)n, sizeof *arrived);
    int missing = n, rc = 0;
    useconds_t pause = 50000;
    uw_err last = {UW_OK, "", 0};
    while (missing > 0) {
        for (int i = 0; i < n; i++) {
            if (arrived[i] > 0)
                continue;
            char *obj = NULL, sha[65];
            uw_err e;
            int f = uw_repo_wal_find(&repos[i], seg, &obj, sha, &e);
            free(obj);
            if (f == 1) {
                arrived[i] = now_s() - t0;
                missing--;
            } else if (f < 0)
                last = e; /* keep polling: a transient failure may pass */
        }
        if (!missing)
            break;
        if (now_s() >= deadline) {
            char hint[512];
            archiver_hint(conn, hint, sizeof hint);
            for (int i = 0; i < n; i++)
                if (arrived[i] <= 0) {
                    rc = uw_fail(err, UW_E_TIMEOUT,
                                 "WAL segment %s did not reach %s within archive-timeout (%d s)"
                                 "%s%s%s",
                                 seg, repos[i].st->desc, timeout, last.msg[0] ? ": " : "", last.msg,
                                 hint);
                    break;
                }
            break;
        }
        usleep(pause);
        if (pause < 500000)
            pause *= 2;
    }
    for (int i = 0; rc == 0 && i < n; i++)
        printf("WAL segment %s reached %s after %.1f s\n", seg, repos[i].st->desc, arrived[i]);
    free(arrived);
    return rc;
}

/* ------------------------------------------------------------- command -- */

static int run_check(const uw_config *cfg, const char *stanza, char seg[64], double *secs,
                     uw_err *err)
{
    PGconn *conn = uw_pg_connect(cfg, err);
    if (!conn)
        return -1;
    uw_pg_cluster c;
    int rc = uw_pg_cluster_info(conn, &c, err);
    uw_repo *repos = NULL;
    int n = 0;
    if (rc == 0)
        rc = uw_repos_open(cfg, &repos, &n, err);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = check_stanza(cfg, &repos[i], &c, err);
    if (rc == 0)
        rc = check_settings(conn, stanza, err);
    double t0 = now_s();
    if (rc == 0)
        rc = switch_wal(conn, seg, err);
    if (rc == 0)
        rc = wait_archived(conn, repos, n, seg, (int)uw_cfg_int(cfg, UW_OPT_ARCHIVE_TIMEOUT), err);
    *secs = now_s() - t0;
    if (repos)
        uw_repos_close(repos, n);
    PQfinish(conn);
    return rc;
}

int pitr_check(const uw_config *cfg, uw_err *err)
{
    const char *stanza = uw_cfg_str(cfg, UW_OPT_STANZA);
    if (!stanza)
        return uw_fail(err, UW_E_OPTION, "option 'stanza' is required");
    int64_t start = (int64_t)time(NULL);
    char seg[64] = "";
    double secs = 0;
    int rc = run_check(cfg, stanza, seg, &secs, err);
    if (rc == 0)
        printf("check: ok\n");
    fflush(stdout);
    /* Keys of check.state: result, code, end, message (uw_state_outcome),
     * start, wal (the segment switched to, when it got that far) and
     * archive_seconds (from the switch until it was in every repository). */
    uw_err e;
    uw_state *st = uw_state_load(cfg, stanza, "check", &e);
    if (!st) {
        uw_log(UW_LOG_WARN, "%s (starting check.state afresh)", e.msg);
        st = uw_state_new();
    }
    uw_state_set_int(st, "start", start);
    uw_state_set(st, "wal", "%s", seg);
    uw_state_set(st, "archive_seconds", "%.3f", rc == 0 ? secs : 0.0);
    uw_state_outcome(st, rc < 0 ? err : NULL);
    if (uw_state_save(cfg, stanza, "check", st, &e) < 0)
        uw_log(UW_LOG_WARN, "%s", e.msg);
    uw_state_free(st);
    return rc;
}
