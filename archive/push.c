/* ue-wal-push: PostgreSQL's archive_command. Exit 0 only when every configured
 * repository durably holds the file; any failure exits 1..125 so that the
 * archiver keeps the WAL and retries (above 125 it would treat it as fatal).
 *
 * With archive-async, a call for X also pushes the next .ready files of
 * pg_wal/archive_status in parallel (process-max workers) and leaves a note in
 * the spool for each one durably stored everywhere; the archiver's later calls
 * for those files find the note and return at once. A file without a note is
 * simply pushed again, so a lost note costs time, never WAL. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cmd.h"
#include "work/pool.h"
#include "repo/repo.h"
#include "work/push_set.h"
#include "work/state.h"

/* ---- asynchronous mode ----
 *
 * The archiver's call for X looks for a note saying X is stored everywhere.
 * Without one it makes sure a detached pusher runs (one per spool and stanza,
 * holding <spool>/<stanza>/push/lock) and waits for the pusher's note or
 * error file for X. The pusher pushes every .ready file, oldest first, with
 * process-max workers, topping its queue up from archive_status as it
 * drains, and leaves after a second without work. A note is written only
 * after the file is durably stored in every repository; losing one (crash)
 * only means pushing that file again. */

static char *note_path(const char *dir, const char *name)
{
    return uw_sprintf("%s/%s.ok", dir, name);
}
static char *error_path(const char *dir, const char *name)
{
    return uw_sprintf("%s/%s.error", dir, name);
}

/* What identifies the file a note was written for without reading it. */
static void file_id(const struct stat *sb, char *out, size_t len)
{
    /* ctime too: every write changes it and, unlike mtime, it cannot be set back. */
    snprintf(out, len, "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld", (unsigned long long)sb->st_dev,
             (unsigned long long)sb->st_ino, (long long)sb->st_size, (long long)sb->st_mtim.tv_sec,
             sb->st_mtim.tv_nsec, (long long)sb->st_ctim.tv_sec, sb->st_ctim.tv_nsec);
}

/* A note is honoured only for the very file it was written for (same inode,
 * size, mtime and ctime, which no rewrite keeps), or else if the file still
 * hashes to what was stored. */
static bool note_matches(const char *note, const char *path)
{
    char want[256];
    if (!uw_read_line(note, want, sizeof want) || strlen(want) < 64)
        return false;
    struct stat sb;
    char id[128];
    if (stat(path, &sb) < 0)
        return false;
    file_id(&sb, id, sizeof id);
    if (want[64] == ' ' && strcmp(want + 65, id) == 0)
        return true;
    int fd = uw_push_open(path, NULL);
    if (fd < 0)
        return false;
    uw_digest d;
    bool ok = uw_fd_digest(fd, path, &d, NULL) == 0;
    close(fd);
    char hex[65];
    uw_hex(d.sha256, 32, hex);
    return ok && strncmp(hex, want, 64) == 0;
}

/* Not fsynced: a note or error lost in a crash costs a push, never WAL. */
static void put_file(const char *path, const char *text)
{
    uw_file_put(path, text, UW_FILE_NO_SYNC, NULL);
}

/* The pusher's error for a file: "<code> <message>". */
static bool take_error(const char *path, uw_err *err)
{
    char line[sizeof(((uw_err *)0)->msg) + 32];
    if (access(path, F_OK) != 0)
        return false;
    bool ok = uw_read_line(path, line, sizeof line);
    unlink(path);
    char *end;
    long code = ok ? strtol(line, &end, 10) : 0;
    if (!ok || code <= 0 || *end != ' ') {
        uw_fail(err, UW_E_INTERNAL, "unreadable error file '%s' of the asynchronous pusher", path);
        return true;
    }
    uw_fail(err, (uw_code)code, "%s", end + 1);
    return true;
}

enum { RECENT = 1024, SCAN_MAX = 256 };

typedef struct {
    const uw_config *cfg;
    const char *waldir, *dir;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char **queue;
    size_t qlen, qnext;
    char **inflight;         /* per worker */
    char recent[RECENT][64]; /* pushed by this pusher: the archiver may not have marked them yet */
    size_t nrecent;
    int workers, threads, running;
    bool stop; /* a push failed: start nothing new */
    double idle_since;
    int ready, pushed, failed;
    char last_error[sizeof(((uw_err *)0)->msg)];
} pusher;

static bool pusher_knows(const pusher *p, const char *name)
{
    for (size_t i = 0; i < p->qlen; i++)
        if (strcmp(p->queue[i], name) == 0)
            return true;
    for (int i = 0; i < p->workers; i++)
        if (p->inflight[i] && strcmp(p->inflight[i], name) == 0)
            return true;
    size_t n = p->nrecent < RECENT ? p->nrecent : RECENT;
    for (size_t i = 0; i < n; i++)
        if (strcmp(p->recent[i], name) == 0)
            return true;
    return false;
}

/* Timeline history files first (PostgreSQL archives them first too), then by name. */
static int cmp_ready(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    bool hx = strstr(x, ".history") != NULL, hy = strstr(y, ".history") != NULL;
    if (hx != hy)
        return hx ? -1 : 1;
    return strcmp(x, y);
}

/* Refill the (drained) queue with .ready files that have no note and are not
 * being or recently pushed. Called with the lock held. */
static void pusher_scan(pusher *p)
{
    for (size_t i = 0; i < p->qlen; i++)
        free(p->queue[i]);
    p->qlen = p->qnext = 0;
    char *status = uw_sprintf("%s/archive_status", p->waldir);
    DIR *d = opendir(status);
    free(status);
    size_t cap = 0;
    int ready = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        uw_wal_name w;
        if (l < 7 || l > 63 || strcmp(de->d_name + l - 6, ".ready") != 0)
            continue;
        char name[64];
        memcpy(name, de->d_name, l - 6);
        name[l - 6] = '\0';
        if (uw_wal_parse(name, &w, NULL) < 0)
            continue;
        ready++;
        if (pusher_knows(p, name))
            continue;
        char *note = note_path(p->dir, name);
        bool noted = access(note, F_OK) == 0;
        free(note);
        if (noted)
            continue;
        if (p->qlen == cap) {
            cap = cap ? cap * 2 : 64;
            p->queue = uw_realloc(p->queue, cap * sizeof *p->queue);
        }
        p->queue[p->qlen++] = uw_strdup(name);
    }
    if (d)
        closedir(d);
    if (p->qlen)
        qsort(p->queue, p->qlen, sizeof *p->queue, cmp_ready);
    for (size_t i = SCAN_MAX; i < p->qlen; i++)
        free(p->queue[i]);
    if (p->qlen > SCAN_MAX)
        p->qlen = SCAN_MAX;
    p->ready = ready;
}

/* <spool>/<stanza>/push/status, for monitoring: the archiver's backlog
 * (.ready files) at the last look, what this pusher did, and its last error.
 * Rewritten atomically, not fsynced. */
static void write_status(const pusher *p)
{
    char *path = uw_sprintf("%s/status", p->dir);
    char *text = uw_sprintf("ready=%d\npushed=%d\nfailed=%d\nlast-error=%s\nupdated=%lld\n",
                            p->ready, p->pushed, p->failed, p->last_error, (long long)time(NULL));
    put_file(path, text);
    free(text);
    free(path);
}

typedef struct {
    pusher *p;
    int id;
} pusher_arg;

static void *pusher_worker(void *arg)
{
    pusher_arg *a = arg;
    pusher *p = a->p;
    uw_push_set set = {0};
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->stop)
            break;
        if (p->qnext == p->qlen) {
            pusher_scan(p);
            if (p->qlen)
                write_status(p);
        }
        if (p->qnext == p->qlen) {
            if (p->running == 0 && uw_now_ms() - p->idle_since > 1000)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p->cond, &p->lock, &ts);
            continue;
        }
        char *name = p->queue[p->qnext];
        p->queue[p->qnext++] = NULL;
        p->inflight[a->id] = name;
        p->running++;
        pthread_mutex_unlock(&p->lock);

        uw_err e;
        uw_err_clear(&e);
        uw_push_job job;
        char *path = uw_sprintf("%s/%s", p->waldir, name);
        int rc = set.repos ? 0 : uw_push_set_open(p->cfg, &set, false, &e);
        if (rc < 0)
            uw_push_set_close(&set);
        else
            rc = uw_push_file(p->cfg, &set, path, p->threads, &job, &e);
        char *text;
        if (rc == 0) {
            char hex[65], id[128];
            uw_hex(job.sha256, 32, hex);
            file_id(&job.st, id, sizeof id);
            text = uw_sprintf("%s %s\n", hex, id);
            char *note = note_path(p->dir, name);
            put_file(note, text);
            free(note);
        } else {
            uw_log(UW_LOG_WARN, "asynchronous push of %s failed (it will be retried): %s", name,
                   e.msg);
            text = uw_sprintf("%d %s\n", (int)e.code, e.msg);
            for (char *c = text; *c; c++)
                if (*c == '\r' || (*c == '\n' && c[1]))
                    *c = ' ';
            char *ep = error_path(p->dir, name);
            put_file(ep, text);
            free(ep);
        }
        free(text);
        free(path);

        pthread_mutex_lock(&p->lock);
        p->inflight[a->id] = NULL;
        snprintf(p->recent[p->nrecent++ % RECENT], 64, "%s", name);
        free(name);
        p->running--;
        if (rc == 0) {
            p->pushed++;
        } else {
            p->failed++;
            snprintf(p->last_error, sizeof p->last_error, "%s", e.msg);
            /* Storage failures are rarely for one file: stop, and let the
             * archiver's retries start a fresh pusher. */
            p->stop = true;
        }
        p->idle_since = uw_now_ms();
        pthread_cond_broadcast(&p->cond);
    }
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    uw_push_set_close(&set);
    return NULL;
}

/* Notes for files the archiver has marked .done will never be asked for. */
static void drop_stale_notes(const char *dir, const char *waldir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 4 || l > 63 || strcmp(de->d_name + l - 3, ".ok") != 0)
            continue;
        char *done = uw_sprintf("%s/archive_status/%.*s.done", waldir, (int)(l - 3), de->d_name);
        if (access(done, F_OK) == 0) {
            char *note = uw_sprintf("%s/%s", dir, de->d_name);
            unlink(note);
            free(note);
        }
        free(done);
    }
    if (d)
        closedir(d);
}

/* Temporaries of killed pushes lie beside the segments being pushed: sweep
 * that directory (cheap; ue-basebackup sweeps the whole stanza). */
static void sweep_temporaries(const uw_config *cfg, const char *first)
{
    /* Opened without loading stanza.info: no key derivation for a sweep. */
    uw_repo *repos = NULL;
    int n = 0;
    uw_err e;
    uw_err_clear(&e);
    if (uw_repos_open(cfg, &repos, &n, &e) < 0)
        return;
    for (int i = 0; i < n; i++) {
        char *dir = uw_repo_wal_dir(&repos[i], first);
        uw_storage_sweep_log(repos[i].st, dir, "asynchronous pusher start");
        free(dir);
    }
    uw_repos_close(repos, n);
}

/* The detached pusher. `first` is the file its caller waits for: pushed
 * first even if it has no .ready status (a manual call). */
static void pusher_run(const uw_config *cfg, const char *waldir, const char *dir, const char *first)
{
    pusher p;
    memset(&p, 0, sizeof p);
    p.cfg = cfg;
    p.waldir = waldir;
    p.dir = dir;
    p.workers = (int)uw_cfg_int(cfg, UW_OPT_PROCESS_MAX);
    /* Every worker may compress on all the cores, not its share of them: a
     * worker spends part of each segment writing and fsyncing, and the cores
     * it leaves then are taken by the others' parts instead of idling. */
    p.threads = uw_push_threads(1);
    p.inflight = uw_calloc((size_t)p.workers, sizeof *p.inflight);
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.cond, NULL);
    sweep_temporaries(cfg, first);
    pusher_scan(&p);
    /* The caller's file leads the queue. */
    size_t at = p.qlen;
    for (size_t i = 0; i < p.qlen; i++)
        if (strcmp(p.queue[i], first) == 0)
            at = i;
    if (at == p.qlen) {
        p.queue = uw_realloc(p.queue, (p.qlen + 1) * sizeof *p.queue);
        p.queue[p.qlen++] = uw_strdup(first);
    }
    char *lead = p.queue[at];
    memmove(p.queue + 1, p.queue, at * sizeof *p.queue);
    p.queue[0] = lead;
    int queued = (int)p.qlen;
    p.idle_since = uw_now_ms();
    double t0 = uw_now_ms();
    pthread_t *t = uw_calloc((size_t)p.workers, sizeof *t);
    pusher_arg *args = uw_calloc((size_t)p.workers, sizeof *args);
    int started = 0;
    for (int i = 0; i < p.workers; i++) {
        args[i] = (pusher_arg){&p, i};
        if (pthread_create(&t[i], NULL, pusher_worker, &args[i]) == 0)
            started++;
    }
    if (!started)
        pusher_worker(&args[0]);
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    pusher_scan(&p);
    write_status(&p);
    drop_stale_notes(dir, waldir);
    uw_log(UW_LOG_INFO,
           "asynchronous pusher: pushed %d of %d ready files ahead of the archiver in %.1f s "
           "(%d queued at start, %d failed)",
           p.pushed, p.pushed + p.failed, (uw_now_ms() - t0) / 1000, queued, p.failed);
    for (size_t i = 0; i < p.qlen; i++)
        free(p.queue[i]);
    free(p.queue);
    free(p.inflight);
    free(t);
    free(args);
    pthread_cond_destroy(&p.cond);
    pthread_mutex_destroy(&p.lock);
}

/* Returns 1 in the detached pusher (the caller exits), 0 when the file is
 * archived, -1 on failure. */
static int push_async(const uw_config *cfg, const char *path, uw_err *err)
{
    const char *spool = uw_cfg_str(cfg, UW_OPT_SPOOL_PATH);
    const char *stanza = uw_cfg_str(cfg, UW_OPT_STANZA);
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char *waldir = slash ? uw_strndup(path, (size_t)(slash - path)) : uw_strdup(".");
    char *dir = uw_sprintf("%s/%s/push", spool, stanza);
    char *note = note_path(dir, name), *errfile = error_path(dir, name);
    int rc = -1, ino = -1;
    if (uw_mkdir_p(dir, 0700, err) < 0) {
        uw_wrap(err, "option 'spool-path'");
        goto out;
    }
    if (note_matches(note, path)) {
        rc = 0;
        goto done;
    }
    /* Whatever a pusher said about this file before this call is stale. */
    unlink(note);
    unlink(errfile);
    ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ino >= 0)
        inotify_add_watch(ino, dir, IN_MOVED_TO); /* notes and errors arrive by rename */
    double deadline = uw_now_ms() + 1000.0 * (double)uw_cfg_int(cfg, UW_OPT_ARCHIVE_TIMEOUT);
    int spawned = 0;
    for (;;) {
        if (note_matches(note, path)) {
            rc = 0;
            break;
        }
        if (take_error(errfile, err))
            break;
        /* Three pushers ended without a word about this file: push it here. */
        int st = spawned < 3 ? uw_daemon_start(dir) : UW_DAEMON_FAILED;
        if (st == UW_DAEMON_CHILD) {
            close(ino);
            pusher_run(cfg, waldir, dir, name);
            rc = 1;
            goto out;
        }
        if (st == UW_DAEMON_FAILED) {
            uw_push_set s = {0};
            uw_push_job job;
            rc = uw_push_set_open(cfg, &s, false, err);
            if (rc == 0)
                rc = uw_push_file(cfg, &s, path, uw_push_threads(1), &job, err);
            uw_push_set_close(&s);
            goto out;
        }
        spawned += st == UW_DAEMON_STARTED;
        if (uw_now_ms() > deadline) {
            rc = uw_fail(err, UW_E_TIMEOUT,
                         "%s: not archived after %lld s (archive-timeout); the asynchronous "
                         "pusher is still busy (backlog in %s/status)",
                         name, (long long)uw_cfg_int(cfg, UW_OPT_ARCHIVE_TIMEOUT), dir);
            goto out;
        }
        /* A note or error appearing wakes us; the poll timeout notices a pusher that died. */
        struct pollfd pfd = {ino, POLLIN, 0};
        if (ino < 0 || poll(&pfd, 1, 100) > 0) {
            char buf[4096];
            while (ino >= 0 && read(ino, buf, sizeof buf) > 0)
                ;
        }
        if (ino < 0)
            poll(NULL, 0, 10);
    }
done:
    if (rc == 0) {
        unlink(note);
        uw_log(UW_LOG_INFO, "%s was archived asynchronously", name);
    }
out:
    if (ino >= 0)
        close(ino);
    free(note);
    free(errfile);
    free(dir);
    free(waldir);
    return rc;
}

/* Returns 1 in a detached pusher (which must just exit), else 0 or -1. */
static int push(const uw_config *cfg, uw_err *err)
{
    if (uw_config_argc(cfg) != 1)
        return uw_fail(err, UW_E_OPTION, "expected exactly one argument: the WAL file path (%%p)");
    const char *path = uw_config_arg(cfg, 0);
    if (uw_repo_check_writer(cfg, err) < 0)
        return -1;
    if (uw_cfg_bool(cfg, UW_OPT_ARCHIVE_ASYNC))
        return push_async(cfg, path, err);
    uw_push_set s = {0};
    uw_push_job job;
    int rc = uw_push_set_open(cfg, &s, false, err);
    /* One call at a time from the archiver: compress on every core. */
    if (rc == 0)
        rc = uw_push_file(cfg, &s, path, uw_push_threads(1), &job, err);
    uw_push_set_close(&s);
    return rc;
}

/* <spool-path>/<stanza>/state/push.state for `ue-pitr metrics`: when WAL last
 * reached every repository (the achieved RPO is the time since), in keys
 * result=ok, last_archived_wal (the file), end and last_success_end (Unix
 * time). Written on success only, by the call the archiver waits for (one at
 * a time), so it stays one small rename per segment: not fsynced, and a
 * failure to write it costs a debug line, never the push (failures are in
 * pg_stat_archiver and the asynchronous status). */
static void record_archived(const uw_config *cfg, const char *path)
{
    const char *stanza = uw_cfg_str(cfg, UW_OPT_STANZA);
    /* Never as root (a manual call): root-owned directories or files in the
     * spool would lock out the archiver's own calls later. */
    if (!stanza || !uw_cfg_str(cfg, UW_OPT_SPOOL_PATH) || geteuid() == 0)
        return;
    const char *slash = strrchr(path, '/');
    long long now = (long long)time(NULL);
    char *dir = uw_state_dir(cfg, stanza);
    char *file = uw_sprintf("%s/push.state", dir);
    char *name = uw_strdup(slash ? slash + 1 : path);
    for (char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = '?'; /* one line per key, whatever the argument held */
    char *text = uw_sprintf("result=ok\nlast_archived_wal=%s\nend=%lld\nlast_success_end=%lld\n",
                            name, now, now);
    free(name);
    uw_err e;
    uw_err_clear(&e);
    if (uw_mkdir_p(dir, 0700, &e) < 0 || uw_file_put(file, text, UW_FILE_NO_SYNC, &e) < 0)
        uw_log(UW_LOG_DEBUG, "not recorded for metrics: %s", e.msg);
    free(text);
    free(file);
    free(dir);
}

int main(int argc, char **argv)
{
    int code;
    uw_config *cfg = uw_cmd_start(
        argc, argv, UW_CMD_PUSH, "ue-wal-push [options] --stanza NAME WALPATH",
        "Archive one WAL file (archive_command = 'ue-wal-push --stanza NAME %p').", &code);
    if (!cfg)
        return code;
    uw_err err;
    uw_err_clear(&err);
    int rc = push(cfg, &err);
    if (rc == 0)
        record_archived(cfg, uw_config_arg(cfg, 0));
    if (rc >= 0)
        code = 0; /* archived, or the detached pusher ending (its status goes nowhere) */
    else {
        /* The archiver must never see a code above 125 from us. */
        if (err.code > 125)
            err.code = err.code == UW_E_DECRYPT ? UW_E_CRYPTO : UW_E_INTERNAL;
        code = uw_cmd_fail(&err);
    }
    uw_config_free(cfg);
    return code;
}
