/* --start: run the restored server as its owner and wait until recovery has
 * reached its target (promoted, paused or shut down, as --target-action
 * says), then print what it reached. A root process never talks to the
 * server: a child becomes the owner first and reports back through a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "pg/pg.h"
#include "pg/wal.h"
#include "restore.h"

/* How long --start waits for recovery to reach its target. Recovery speed
 * depends on the WAL volume, so this is a bound against a hang, not an
 * estimate. */
#define START_TIMEOUT_S 600

/* ------------------------------------------------------------ pg_ctl -- */

char *restore_find_pg_ctl(int version)
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

char *restore_log_path(const restore *rs)
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
    uw_buf q = {0}, b = {0};
    restore_shell_quote(&q, pgdata);
    restore_shell_quote(&b, bindir);
    char *cmd = uw_sprintf("%s/postgres -D %s -C unix_socket_directories 2>/dev/null",
                           (char *)b.data, (char *)q.data);
    uw_buf_free(&b);
    uw_buf_free(&q);
    free(bindir);
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

/* pg_ctl's -o: the port, and a usable socket directory. NULL when none. */
static char *start_options(const restore *rs, const char *pg_ctl)
{
    bool sock_ok = socket_dirs_ok(pg_ctl, rs->pgdata);
    if (!uw_cfg_isset(rs->cfg, UW_OPT_PORT) && sock_ok)
        return NULL;
    uw_buf o = {0};
    char p[64];
    if (uw_cfg_isset(rs->cfg, UW_OPT_PORT)) {
        snprintf(p, sizeof p, "-p %lld ", (long long)uw_cfg_int(rs->cfg, UW_OPT_PORT));
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
        restore_shell_quote(&o, kv); /* pg_ctl hands -o to the postmaster through the shell */
        free(kv);
        free(dir);
    }
    return (char *)o.data;
}

/* pg_ctl start -W: returns once the postmaster is launched. */
static int run_pg_ctl(const restore *rs, const char *pg_ctl, const char *log, const char *opts,
                      uw_err *err)
{
    pid_t child = fork();
    if (child < 0)
        return uw_fail(err, UW_E_RESTORE, "unable to fork: %s", strerror(errno));
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
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return uw_fail(err, UW_E_RESTORE, "'%s start' failed (exit status %d)", pg_ctl,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

/* ------------------------------------------------------------ waiting -- */

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

/* One wait for the target: what the postmaster and the server said so far. */
typedef struct {
    const restore *rs;
    const char *log;
    long log_start; /* only what this start adds to the log counts */
    const char *action;
    double t0;
    PGconn *conn;
    pm_info pm;
    bool have_pm, done;
    char *lsn, *xts; /* reached LSN, last replayed transaction time */
} waiter;

static double elapsed(const waiter *w)
{
    return (uw_now_ms() / 1e3) - w->t0;
}

/* Has the postmaster ended? Without the pid file (not written yet, or already
 * removed: a shutdown at an early target can be quicker than one poll), the
 * log says whether it has. */
static bool server_gone(const waiter *w)
{
    char *ended = NULL;
    if (!w->have_pm && !(ended = log_grep(w->log, w->log_start, "database system is shut down")) &&
        !(ended = log_grep(w->log, w->log_start, "FATAL:")))
        ended = log_grep(w->log, w->log_start, "PANIC:");
    bool gone =
        w->have_pm ? (kill((pid_t)w->pm.pid, 0) < 0 && errno == ESRCH) : ended || elapsed(w) > 60;
    free(ended);
    return gone;
}

/* The server stopped: at the target when the action is shutdown, else failed. */
static int server_ended(waiter *w, uw_err *err)
{
    int rc = 0;
    char *fatal = log_grep(w->log, w->log_start, "FATAL:");
    if (!fatal)
        fatal = log_grep(w->log, w->log_start, "PANIC:");
    char *stopped = log_grep(w->log, w->log_start, "shutdown at recovery target");
    if (!strcmp(w->action, "shutdown") && stopped)
        w->done = true;
    else
        rc =
            uw_fail(err, UW_E_RESTORE, "the restored server stopped during recovery: %s (see '%s')",
                    fatal ? fatal : "no FATAL message", w->log);
    free(fatal);
    free(stopped);
    return rc;
}

static void connect_server(waiter *w)
{
    const pm_info *pm = &w->pm;
    char port[16];
    snprintf(port, sizeof port, "%d", pm->port);
    const char *host = pm->sockdir[0]             ? pm->sockdir
                       : !strcmp(pm->listen, "*") ? "localhost"
                                                  : pm->listen;
    const char *keys[8], *vals[8];
    int n = 0;
    keys[n] = "host", vals[n++] = host;
    keys[n] = "port", vals[n++] = port;
    keys[n] = "dbname", vals[n++] = uw_cfg_str(w->rs->cfg, UW_OPT_PG_DATABASE);
    if (uw_cfg_str(w->rs->cfg, UW_OPT_PG_USER))
        keys[n] = "user", vals[n++] = uw_cfg_str(w->rs->cfg, UW_OPT_PG_USER);
    keys[n] = "connect_timeout", vals[n++] = "5";
    keys[n] = "application_name", vals[n++] = "ue-pitr restore";
    keys[n] = NULL, vals[n] = NULL;
    w->conn = uw_pq_load(NULL) == 0 ? PQconnectdbParams(keys, vals, 0) : NULL;
    if (w->conn && PQstatus(w->conn) != CONNECTION_OK) {
        PQfinish(w->conn);
        w->conn = NULL;
    }
}

/* Ask the server whether recovery reached the target (promoted, or paused). */
static int poll_server(waiter *w, uw_err *err)
{
    int rc = 0;
    char *rec = one_value(w->conn, "select pg_is_in_recovery()");
    if (!rec) {
        PQfinish(w->conn);
        w->conn = NULL;
    } else if (!strcmp(w->action, "promote") && !strcmp(rec, "f")) {
        w->done = true;
        w->lsn = one_value(w->conn, "select pg_current_wal_lsn()");
    } else if (!strcmp(w->action, "pause") && !strcmp(rec, "t")) {
        char *ps = one_value(w->conn, "select pg_get_wal_replay_pause_state()");
        if (ps && !strcmp(ps, "paused")) {
            w->done = true;
            w->lsn = one_value(w->conn, "select pg_last_wal_replay_lsn()");
        }
        free(ps);
    } else if (!strcmp(w->action, "pause") && !strcmp(rec, "f")) {
        rc = uw_fail(err, UW_E_RESTORE,
                     "the restored server was promoted instead of "
                     "pausing at the target");
    }
    free(rec);
    if (w->done)
        w->xts = one_value(w->conn, "select pg_last_xact_replay_timestamp()");
    return rc;
}

static int wait_for_target(waiter *w, uw_err *err)
{
    int rc = 0;
    /* shutdown: nothing to ask, only the exit to wait for. */
    bool ask = strcmp(w->action, "shutdown") != 0;
    while (!w->done && rc == 0) {
        if (elapsed(w) > START_TIMEOUT_S)
            return uw_fail(err, UW_E_TIMEOUT,
                           "recovery did not reach its target within %d s (see '%s')",
                           START_TIMEOUT_S, w->log);
        /* Re-read until connected: the socket line appears after the port. */
        pm_info now;
        if (!w->conn && read_pid_file(w->rs->pgdata, &now)) {
            w->pm = now;
            w->have_pm = true;
        }
        if (server_gone(w))
            return server_ended(w, err);
        if (w->have_pm && !w->conn && ask && (w->pm.sockdir[0] || w->pm.listen[0]))
            connect_server(w);
        if (w->conn && ask)
            rc = poll_server(w, err);
        if (!w->done && rc == 0)
            sleep_ms(200);
    }
    return rc;
}

/* Without a target PostgreSQL ends recovery at the first segment
 * restore_command does not deliver, whatever the reason (exit codes below 126
 * all look like "not archived"): a repository outage would promote on a
 * partial history. The archive's end is known; say so if it was not reached. */
static int check_promoted_end(const waiter *w, uw_err *err)
{
    const restore *rs = w->rs;
    uint64_t promoted = 0, seg = rs->arch.seg_size;
    if (rs->t.kind == RT_NONE && !strcmp(w->action, "promote") && w->lsn &&
        uw_lsn_parse(w->lsn, &promoted) == 0 && seg && rs->reach.end_lsn >= seg &&
        promoted <= rs->reach.end_lsn - seg) {
        char want[32], *why = log_grep(w->log, w->log_start, "ue-wal-fetch: ERROR");
        uw_lsn_format(rs->reach.end_lsn, want, sizeof want);
        int rc =
            uw_fail(err, UW_E_RESTORE,
                    "recovery ended at %s, before the end of the archive (segment ending "
                    "at %s), and the server was promoted: WAL could not be fetched%s%s",
                    w->lsn, want, why ? ": " : "", why ? strstr(why, "ue-wal-fetch: ERROR") : "");
        free(why);
        return rc;
    }
    return 0;
}

static void print_reached(const waiter *w)
{
    const char *action = w->action;
    char *stop = log_grep(w->log, w->log_start, "recovery stopping");
    char *last = log_grep(w->log, w->log_start, "last completed transaction was at log time");
    printf("recovery reached its target after %.1f s (%s):\n", elapsed(w),
           !strcmp(action, "promote") ? "promoted"
           : !strcmp(action, "pause") ? "paused, resume with select pg_wal_replay_resume()"
                                      : "shut down");
    if (stop)
        printf("  %s\n", strstr(stop, "recovery stopping"));
    if (last && !stop)
        printf("  %s\n", strstr(last, "last completed"));
    if (w->lsn)
        printf("  %s LSN: %s\n", !strcmp(action, "promote") ? "current" : "last replayed", w->lsn);
    if (w->xts)
        printf("  last replayed transaction: %s\n", w->xts[0] ? w->xts : "none");
    if (w->have_pm && strcmp(action, "shutdown") != 0)
        printf("  server: pid %ld, port %d, socket directory %s\n", w->pm.pid, w->pm.port,
               w->pm.sockdir[0] ? w->pm.sockdir : "(none)");
    fflush(stdout);
    free(stop);
    free(last);
}

/* Runs in a child that already is the cluster owner: start the server, wait
 * until recovery reached its target, print what it reached. */
static int start_and_wait(const restore *rs, const char *pg_ctl, uw_err *err)
{
    const restore_target *t = &rs->t;
    char *log = restore_log_path(rs);
    char *opts = start_options(rs, pg_ctl);
    struct stat lst;
    waiter w = {0};
    w.rs = rs;
    w.log = log;
    w.log_start = stat(log, &lst) == 0 ? (long)lst.st_size : 0; /* pg_ctl -l appends */
    int rc = run_pg_ctl(rs, pg_ctl, log, opts, err);
    free(opts);
    if (rc < 0) {
        free(log);
        return -1;
    }
    w.t0 = (uw_now_ms() / 1e3);
    w.action = t->kind == RT_NONE ? "promote" : t->action;
    uw_log(UW_LOG_INFO, "started the server (log: %s); waiting for recovery to reach %s%s%s", log,
           t->kind == RT_NONE ? "the end of the archive" : "its target",
           t->kind == RT_NONE ? "" : ", then ", t->kind == RT_NONE ? "" : w.action);
    rc = wait_for_target(&w, err);
    if (w.conn)
        PQfinish(w.conn);
    if (rc == 0)
        rc = check_promoted_end(&w, err);
    if (rc == 0)
        print_reached(&w);
    free(w.lsn);
    free(w.xts);
    free(log);
    return rc;
}

/* ----------------------------------------------------- as the owner -- */

/* In the child: become the owner, enter the data directory, start and wait. */
static int child_start(const restore *rs, const char *pg_ctl, uw_err *e)
{
    if (geteuid() == 0) {
        if (initgroups(rs->owner, rs->gid) < 0 && setgroups(0, NULL) < 0)
            return uw_fail(e, UW_E_RESTORE, "unable to drop supplementary groups: %s",
                           strerror(errno));
        if (setgid(rs->gid) < 0 || setuid(rs->uid) < 0)
            return uw_fail(e, UW_E_RESTORE, "unable to become %s: %s", rs->owner, strerror(errno));
    }
    if (chdir(rs->pgdata) < 0)
        return uw_fail(e, UW_E_RESTORE, "unable to enter '%s': %s", rs->pgdata, strerror(errno));
    return start_and_wait(rs, pg_ctl, e);
}

/* Become the owner in a child (a root process never talks to the restored
 * server: peer authentication would refuse it anyway), and report back the
 * error, if any, through a pipe. */
int restore_start_server(const restore *rs, const char *pg_ctl, uw_err *err)
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
        int rc = child_start(rs, pg_ctl, &e);
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
