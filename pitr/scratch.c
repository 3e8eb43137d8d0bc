/* The scratch instance of drill and restore-table: a directory of its own,
 * a restore into it that never archives, a private server run as the data
 * directory's owner, and a cleanup that always runs.
 *
 * Never touching production: the server listens on a unix socket in the
 * scratch directory only (listen_addresses = ''), with its own pg_hba.conf
 * (local trust: the directory is the owner's, mode 0700), archive_mode off,
 * and every setting that could name a production path given on its command
 * line (data_directory, hba_file, external_pid_file): command-line settings
 * win over the restored postgresql.conf. Its restore_command reads the
 * repository, which it never writes. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "drill.h"
#include "pg/wal.h"
#include "work/restore_file.h"

/* Seconds without progress (the server log growing) before recovery is
 * taken for hung: recovery of a large backup takes long, but it keeps
 * logging restored segments. */
#define RECOVERY_STALL_S 300

volatile sig_atomic_t scratch_cancel;

static void on_signal(int sig)
{
    (void)sig;
    scratch_cancel = 1;
}

void scratch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    return uw_now_ms() / 1e3;
}

/* ------------------------------------------------------ the directory -- */

/* Running as root: the scratch directory goes to the owner of the base
 * directory, else of pg-path (PostgreSQL refuses to run as root). */
static void give_to_owner(const scratch *s, const char *base)
{
    struct stat st;
    if (geteuid() != 0)
        return;
    if (stat(base, &st) == 0 && st.st_uid != 0) {
        if (chown(s->dir, st.st_uid, st.st_gid) < 0)
            uw_log(UW_LOG_WARN, "unable to give '%s' to uid %u: %s", s->dir, (unsigned)st.st_uid,
                   strerror(errno));
        return;
    }
    const char *pg = uw_cfg_str(s->cfg, UW_OPT_PG_PATH);
    if (pg && stat(pg, &st) == 0 && st.st_uid != 0 && chown(s->dir, st.st_uid, st.st_gid) < 0)
        uw_log(UW_LOG_WARN, "unable to give '%s' to uid %u: %s", s->dir, (unsigned)st.st_uid,
               strerror(errno));
}

static int make_base(const char *base, uw_err *err)
{
    struct stat st;
    if (stat(base, &st) == 0)
        return S_ISDIR(st.st_mode)
                   ? 0
                   : uw_fail(err, UW_E_FILE, "scratch location '%s' is not a directory", base);
    char *parent = uw_strdup(base);
    char *slash = strrchr(parent, '/');
    int rc = 0;
    if (slash && slash != parent) {
        *slash = '\0';
        rc = make_base(parent, err);
    }
    free(parent);
    /* As root, the PostgreSQL user must be able to pass through to its
     * scratch directory (which is 0700 and its own). */
    if (rc == 0 && mkdir(base, geteuid() == 0 ? 0711 : 0700) < 0 && errno != EEXIST)
        rc = uw_fail(err, UW_E_FILE, "unable to create directory '%s': %s", base, strerror(errno));
    return rc;
}

int scratch_create(scratch *s, const uw_config *cfg, const char *what, uw_err *err)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    const char *stanza = uw_cfg_str(cfg, UW_OPT_STANZA);
    char *base = uw_cfg_str(cfg, UW_OPT_SCRATCH)
                     ? restore_absolute(uw_cfg_str(cfg, UW_OPT_SCRATCH))
                     : uw_sprintf("%s/%s", uw_cfg_str(cfg, UW_OPT_SPOOL_PATH), stanza);
    int rc = make_base(base, err);
    if (rc == 0) {
        s->dir = uw_sprintf("%s/%s-%s-%ld", base, stanza, what, (long)getpid());
        if (mkdir(s->dir, 0700) < 0) {
            rc = uw_fail(err, UW_E_FILE, "unable to create scratch directory '%s': %s", s->dir,
                         strerror(errno));
            free(s->dir);
            s->dir = NULL;
        }
    }
    if (rc == 0) {
        give_to_owner(s, base);
        s->pgdata = uw_sprintf("%s/pgdata", s->dir);
        s->log = uw_sprintf("%s/server.log", s->dir);
        uw_log(UW_LOG_INFO, "scratch directory '%s'", s->dir);
    }
    free(base);
    return rc;
}

/* -------------------------------------------------------- the restore -- */

int scratch_restore(scratch *s, const restore *hooks, uw_err *err)
{
    restore *rs = &s->rs;
    memset(rs, 0, sizeof *rs);
    rs->cfg = s->cfg;
    rs->into = s->pgdata;
    rs->archive_off = true;
    rs->cancel = &scratch_cancel;
    if (hooks) {
        rs->before_files = hooks->before_files;
        rs->sparse = hooks->sparse;
        rs->hook_arg = hooks->hook_arg;
    }
    s->have_rs = true;
    double t0 = now_s();
    if (restore_prepare(rs, err) < 0)
        return -1;
    /* The scratch instance must open for the checks. */
    rs->t.action = "promote";
    int rc = restore_execute(rs, &s->pg_ctl, err);
    s->restore_s = now_s() - t0;
    if (rc < 0)
        return -1;
    if (!s->pg_ctl)
        return uw_fail(err, UW_E_RESTORE,
                       "no pg_ctl of PostgreSQL %d found (looked in /usr/lib/postgresql/%d/bin, "
                       "/usr/pgsql-%d/bin and pg_config --bindir)",
                       rs->m.pg_version, rs->m.pg_version, rs->m.pg_version);
    if (rs->uid == 0 && geteuid() == 0)
        return uw_fail(err, UW_E_RESTORE,
                       "scratch directory '%s' belongs to root and PostgreSQL refuses to run as "
                       "root: run as the PostgreSQL user or give --scratch a directory it owns",
                       s->dir);
    s->bindir = uw_strdup(s->pg_ctl);
    char *slash = strrchr(s->bindir, '/');
    if (slash)
        *slash = '\0';
    return 0;
}

/* --------------------------------------------------------- the server -- */

static int write_owned(const scratch *s, const char *path, const char *text, uw_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    size_t n = strlen(text);
    int rc = 0;
    if (fd < 0 || write(fd, text, n) != (ssize_t)n)
        rc = uw_fail(err, UW_E_FILE, "unable to write '%s': %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc == 0 ? restore_own(&s->rs, path, err) : rc;
}

/* A port no one listens on at 127.0.0.1 right now. The server takes no TCP
 * port (it only names its socket after it), so a race is harmless. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port ? port : 54329;
}

static void opt(uw_buf *o, const char *fmt, const char *value)
{
    char *kv = uw_sprintf(fmt, value);
    if (o->len)
        uw_buf_append(o, " ", 1);
    uw_buf_append(o, "-c ", 3);
    restore_shell_quote(o, kv); /* pg_ctl hands -o to the postmaster through the shell */
    free(kv);
}

/* The postmaster's settings that keep it private and harmless. */
static char *server_options(const scratch *s)
{
    uw_buf o = {0};
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    opt(&o, "port=%s", port);
    opt(&o, "listen_addresses=%s", "");
    opt(&o, "unix_socket_directories=%s", s->dir);
    opt(&o, "data_directory=%s", s->pgdata);
    char *hba = uw_sprintf("%s/pg_hba.conf", s->dir);
    opt(&o, "hba_file=%s", hba);
    free(hba);
    opt(&o, "external_pid_file=%s", "");
    opt(&o, "archive_mode=%s", "off");
    opt(&o, "archive_command=%s", "");
    opt(&o, "autovacuum=%s", "off");
    opt(&o, "logging_collector=%s", "off");
    opt(&o, "cluster_name=%s", "ue-pitr-scratch");
    uw_buf_append(&o, "", 1);
    return (char *)o.data;
}

/* Run pg_ctl ARGS as the data directory's owner; its exit status. */
static int run_as_owner(const scratch *s, const char *const *args, uw_err *err)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return uw_fail(err, UW_E_RESTORE, "unable to fork: %s", strerror(errno));
    if (pid == 0) {
        const restore *rs = &s->rs;
        if (geteuid() == 0 && ((initgroups(rs->owner, rs->gid) < 0 && setgroups(0, NULL) < 0) ||
                               setgid(rs->gid) < 0 || setuid(rs->uid) < 0)) {
            fprintf(stderr, "ue-pitr: unable to become %s: %s\n", rs->owner, strerror(errno));
            _exit(127);
        }
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        if (chdir(s->dir) < 0)
            _exit(127);
        execv(args[0], (char *const *)args);
        fprintf(stderr, "ue-pitr: unable to run '%s': %s\n", args[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return uw_fail(err, UW_E_RESTORE, "waitpid: %s", strerror(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The last line of the server log holding `what`. */
static char *log_line(const scratch *s, const char *what)
{
    FILE *f = fopen(s->log, "r");
    if (!f)
        return NULL;
    char line[2048], *found = NULL;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, what) || strstr(line, "the database system is starting up") ||
            strstr(line, "not yet accepting connections") || strstr(line, "does not exist"))
            continue;
        line[strcspn(line, "\n")] = '\0';
        free(found);
        found = uw_strdup(line);
    }
    fclose(f);
    return found;
}

static long pid_file(const scratch *s)
{
    char *path = uw_sprintf("%s/postmaster.pid", s->pgdata);
    FILE *f = fopen(path, "r");
    free(path);
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

static bool alive(long pid)
{
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static int start_server(scratch *s, uw_err *err)
{
    const restore *rs = &s->rs;
    char *hba = uw_sprintf("%s/pg_hba.conf", s->dir);
    int rc = write_owned(s, hba,
                         "# ue-pitr scratch instance: its socket directory is private\n"
                         "local all all trust\n",
                         err);
    free(hba);
    /* A data directory without postgresql.conf (Debian keeps it in /etc). */
    char *conf = uw_sprintf("%s/postgresql.conf", s->pgdata);
    struct stat st;
    if (rc == 0 && stat(conf, &st) < 0)
        rc = write_owned(s, conf, "# written by ue-pitr for a scratch instance\n", err);
    free(conf);
    if (rc < 0)
        return -1;
    s->port = free_port();
    char *opts = server_options(s);
    const char *args[] = {s->pg_ctl, "-D", s->pgdata, "-l",    s->log,
                          "-W",      "-o", opts,      "start", NULL};
    int status = run_as_owner(s, args, err);
    free(opts);
    if (status < 0)
        return -1;
    if (status != 0)
        return uw_fail(err, UW_E_RESTORE, "'%s start' as %s failed (exit status %d)", s->pg_ctl,
                       rs->owner, status);
    s->started = true;
    return 0;
}

/* Connect as the first role that exists: pg-user, the owner, postgres. */
static PGconn *connect_db(scratch *s, const char *db, char *why, size_t whylen)
{
    const char *users[3] = {uw_cfg_str(s->cfg, UW_OPT_PG_USER), s->rs.owner, "postgres"};
    if (s->user[0]) {
        users[0] = s->user;
        users[1] = users[2] = NULL;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    for (int i = 0; i < 3; i++) {
        if (!users[i])
            continue;
        const char *keys[] = {
            "host", "port", "dbname", "user", "connect_timeout", "application_name", NULL};
        const char *vals[] = {s->dir, port, db, users[i], "10", "ue-pitr scratch", NULL};
        PGconn *c = PQconnectdbParams(keys, vals, 0);
        if (c && PQstatus(c) == CONNECTION_OK) {
            snprintf(s->user, sizeof s->user, "%s", users[i]);
            return c;
        }
        snprintf(why, whylen, "%s", c ? PQerrorMessage(c) : "out of memory");
        why[strcspn(why, "\n")] = '\0';
        if (c)
            PQfinish(c);
    }
    return NULL;
}

PGconn *scratch_connect(scratch *s, const char *db, uw_err *err)
{
    char why[512] = "";
    if (uw_pq_load(err) < 0)
        return NULL;
    PGconn *c = connect_db(s, db, why, sizeof why);
    if (!c)
        uw_fail(err, UW_E_PG, "unable to connect to database '%s' of the scratch instance: %s", db,
                why);
    return c;
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

/* Promoted? Any database that lets us in will do to ask. */
static bool promoted(scratch *s)
{
    const char *dbs[] = {uw_cfg_str(s->cfg, UW_OPT_PG_DATABASE), "postgres", "template1"};
    char why[512];
    for (size_t i = 0; i < 3; i++) {
        PGconn *c = connect_db(s, dbs[i], why, sizeof why);
        if (!c)
            continue;
        char *rec = one_value(c, "select pg_is_in_recovery()");
        bool done = rec && !strcmp(rec, "f");
        if (done) {
            s->lsn = one_value(c, "select pg_current_wal_lsn()");
            s->xact_time = one_value(c, "select pg_last_xact_replay_timestamp()");
        }
        free(rec);
        PQfinish(c);
        return done;
    }
    return false;
}

static int server_died(const scratch *s, uw_err *err)
{
    char *why = log_line(s, "PANIC:");
    if (!why)
        why = log_line(s, "FATAL:");
    int rc = uw_fail(err, UW_E_RESTORE, "the scratch server stopped during recovery: %s",
                     why ? why : "no FATAL or PANIC line in its log");
    free(why);
    return rc;
}

static off_t log_size(const scratch *s)
{
    struct stat st;
    return stat(s->log, &st) == 0 ? st.st_size : 0;
}

/* Without a target PostgreSQL ends recovery at the first segment it cannot
 * fetch, whatever the reason: promoting before the end of the archive means
 * WAL could not be read (a damaged segment), which the drill must report. */
static int check_end(const scratch *s, uw_err *err)
{
    const restore *rs = &s->rs;
    uint64_t at = 0, seg = rs->arch.seg_size;
    if (rs->t.kind != RT_NONE || !s->lsn || uw_lsn_parse(s->lsn, &at) < 0 || !seg ||
        rs->reach.end_lsn < seg || at > rs->reach.end_lsn - seg)
        return 0;
    char want[32];
    uw_lsn_format(rs->reach.end_lsn, want, sizeof want);
    char *why = log_line(s, "ue-wal-fetch: ERROR");
    int rc = uw_fail(err, UW_E_RESTORE,
                     "recovery ended at %s, before the end of the archive (%s): WAL could not be "
                     "fetched%s%s",
                     s->lsn, want, why ? ": " : "", why ? strstr(why, "ue-wal-fetch: ERROR") : "");
    free(why);
    return rc;
}

int scratch_recover(scratch *s, uw_err *err)
{
    double t0 = now_s();
    if (uw_pq_load(err) < 0 || start_server(s, err) < 0)
        return -1;
    uw_log(UW_LOG_INFO, "scratch server started (socket in '%s', port %d); waiting for recovery",
           s->dir, s->port);
    double progress = now_s();
    off_t seen = -1;
    int rc = 0;
    while (rc == 0) {
        if (scratch_cancel) {
            rc = uw_fail(err, UW_E_RESTORE, "interrupted by a signal during recovery");
            break;
        }
        long pid = pid_file(s);
        if (pid > 0)
            s->pid = pid;
        if (s->pid > 0 && !alive(s->pid)) {
            rc = server_died(s, err);
            break;
        }
        if (promoted(s))
            break;
        off_t sz = log_size(s);
        if (sz != seen) {
            seen = sz;
            progress = now_s();
        }
        if (now_s() - progress > RECOVERY_STALL_S)
            rc = uw_fail(err, UW_E_TIMEOUT,
                         "recovery made no progress for %d s (see the log of the scratch server)",
                         RECOVERY_STALL_S);
        else
            sleep_ms(200);
    }
    s->recovery_s = now_s() - t0;
    if (rc == 0)
        rc = check_end(s, err);
    if (rc == 0)
        s->stop_line = log_line(s, "recovery stopping");
    if (rc < 0) {
        /* The log goes with the scratch directory: keep its last lines. */
        char *last = log_line(s, "LOG:");
        if (last)
            uw_log(UW_LOG_WARN, "scratch server log: %s", last);
        free(last);
    }
    return rc;
}

/* ----------------------------------------------------------- cleanup -- */

static int stop_server(scratch *s, uw_err *err)
{
    long pid = pid_file(s);
    if (pid > 0)
        s->pid = pid;
    if (!alive(s->pid))
        return 0;
    const char *args[] = {s->pg_ctl, "-D", s->pgdata, "-m",   "immediate",
                          "-w",      "-t", "30",      "stop", NULL};
    uw_err e;
    uw_err_clear(&e);
    double t0 = now_s();
    if (s->pg_ctl && run_as_owner(s, args, &e) != 0)
        uw_log(UW_LOG_WARN, "pg_ctl stop of the scratch server failed: killing pid %ld", s->pid);
    uw_log(UW_LOG_DETAIL, "pg_ctl stop -m immediate: %.2f s", now_s() - t0);
    for (int i = 0; i < 100 && alive(s->pid); i++) {
        if (i == 0 || i == 50)
            kill((pid_t)s->pid, SIGKILL);
        sleep_ms(100);
    }
    if (alive(s->pid))
        return uw_fail(err, UW_E_RESTORE, "the scratch server (pid %ld) does not stop", s->pid);
    return 0;
}

int scratch_cleanup(scratch *s, uw_err *err)
{
    int rc = 0;
    if (s->pgdata)
        rc = stop_server(s, err);
    double t0 = now_s();
    if (rc == 0 && s->dir) {
        rc = uw_remove_tree(s->dir, err);
        uw_log(UW_LOG_DETAIL, "removing the scratch directory: %.2f s", now_s() - t0);
        if (rc == 0)
            uw_log(UW_LOG_INFO, "removed scratch directory '%s'", s->dir);
    }
    if (rc == 0) {
        free(s->dir);
        s->dir = NULL;
    }
    return rc;
}

void scratch_free(scratch *s)
{
    free(s->dir);
    if (s->have_rs)
        restore_free(&s->rs);
    s->have_rs = false;
    free(s->pgdata);
    free(s->log);
    free(s->pg_ctl);
    free(s->bindir);
    free(s->lsn);
    free(s->xact_time);
    free(s->stop_line);
    memset(s, 0, sizeof *s);
}
