/* ue-wal-fetch: PostgreSQL's restore_command. Exit 0 delivered; 1 not archived
 * in any repository; 2..125 could not look (configuration, storage down after
 * retries): PostgreSQL retries or ends recovery; above 125 the file exists but
 * cannot be delivered intact, and PostgreSQL aborts recovery rather than
 * promoting on a partial history.
 *
 * With archive-get-queue-max > 0, the first call starts a detached prefetcher
 * that keeps the next segments (up to that many bytes) fetched, verified and
 * decompressed in a spool directory beside pg_wal, topping the queue up as
 * recovery advances; a later call whose segment is there only renames it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cmd.h"
#include "repo/repo.h"
#include "work/walpush.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Which failure wins when repositories disagree: an intact-delivery failure
 * anywhere outranks "could not look", which outranks "not there". */
static int rank(uw_code c)
{
    if (c > 125)
        return 3;
    if (c == UW_E_NOT_FOUND)
        return 1;
    return 2;
}

/* Fetch from the first repository that has the file intact. */
static int fetch_repos(uw_repo *repos, int n, const uw_config *cfg, const char *name,
                       const char *dest, unsigned flags, bool quiet, uw_digest *digest, uw_err *err)
{
    uw_err worst;
    uw_err_clear(&worst);
    for (int i = 0; i < n; i++) {
        uw_err e;
        uw_err_clear(&e);
        double t0 = uw_now_ms();
        uw_digest d = {0};
        if ((repos[i].have_info || uw_repo_load(&repos[i], cfg, &e) == 0) &&
            uw_fetch_one(&repos[i], name, dest, flags, &d, &e) == 0) {
            uw_log(quiet ? UW_LOG_DETAIL : UW_LOG_INFO, "fetched %s from %s (%llu bytes, %.0f ms)",
                   name, repos[i].st->desc, (unsigned long long)d.size, uw_now_ms() - t0);
            if (digest)
                *digest = d;
            return 0;
        }
        if (e.code != UW_E_NOT_FOUND && i + 1 < n)
            uw_log(UW_LOG_WARN, "%s; trying the next repository", e.msg);
        if (worst.code == UW_OK || rank(e.code) > rank(worst.code))
            worst = e;
    }
    *err = worst;
    if (worst.code == UW_E_NOT_FOUND)
        uw_fail(err, UW_E_NOT_FOUND, "%s is not in the archive", name);
    return -1;
}

/* ---- prefetch ---- */

/* Spooled segments are not fsynced (PostgreSQL fsyncs what it keeps), so after
 * an OS crash one could exist under its name with lost contents. The spool is
 * therefore trusted only within the boot that wrote it (<spool>/boot holds
 * the kernel's boot id), or when its files were fsynced ("durable", where
 * the boot id is unknown). */
static bool current_boot(char *out, size_t len)
{
    return uw_read_line("/proc/sys/kernel/random/boot_id", out, len) && strlen(out) >= 32;
}

static bool spool_trusted(const char *spool)
{
    char *path = uw_sprintf("%s/boot", spool), mark[128], now[128];
    bool ok = uw_read_line(path, mark, sizeof mark);
    free(path);
    return ok && (strcmp(mark, "durable") == 0 ||
                  (current_boot(now, sizeof now) && strcmp(now, mark) == 0));
}

/* The spool feeds pg_wal, so only a directory of our own that nobody else can
 * write into is used: owned by the user running us, mode 0700, not a link. */
static int spool_check(const char *spool, uw_err *err)
{
    struct stat sb;
    if (lstat(spool, &sb) < 0)
        return uw_fail(err, UW_E_FILE, "unable to stat spool directory '%s': %s", spool,
                       strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return uw_fail(err, UW_E_FILE, "spool '%s' is not a directory (a symbolic link?)", spool);
    if (sb.st_uid != geteuid())
        return uw_fail(
            err, UW_E_FILE,
            "spool directory '%s' is owned by uid %u, not by uid %u running ue-wal-fetch", spool,
            (unsigned)sb.st_uid, (unsigned)geteuid());
    if ((sb.st_mode & 07777) != 0700)
        return uw_fail(err, UW_E_FILE, "spool directory '%s' has mode %04o, not 0700", spool,
                       (unsigned)(sb.st_mode & 07777));
    return 0;
}

/* The SHA-256 the prefetcher verified a spooled segment against (the
 * archive's) sits beside it in <name>.sha256, written before the segment
 * takes its name. */
static char *sidecar(const char *spool, const char *name)
{
    return uw_sprintf("%s/%s.sha256", spool, name);
}

/* Take a spooled segment for delivery: first out of the prefetcher's reach (a
 * private name), so that what is hashed is what is delivered. */
static char *spool_claim(const char *spool, const char *name)
{
    char *seg = uw_sprintf("%s/%s", spool, name);
    char *mine = uw_sprintf("%s/%s.uwtmp.take-%d", spool, name, (int)getpid());
    bool ok = rename(seg, mine) == 0;
    free(seg);
    if (!ok) {
        free(mine);
        return NULL;
    }
    return mine;
}

/* Bytes of name the prefetcher has staged so far ("<name>.uwtmp.prefetch-<worker>",
 * or its file sink's temporary below that name), -1 when it is not fetching it. */
static long long spool_staging(const char *spool, const char *name)
{
    char *stem = uw_sprintf("%s.uwtmp.prefetch-", name);
    size_t sl = strlen(stem);
    long long size = -1;
    DIR *d = opendir(spool);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        struct stat sb;
        if (strncmp(de->d_name, stem, sl) == 0 && fstatat(dirfd(d), de->d_name, &sb, 0) == 0)
            size = (size < 0 ? 0 : size) + (long long)sb.st_size;
    }
    if (d)
        closedir(d);
    free(stem);
    return size;
}

/* The segment the prefetcher is fetching right now: wait for it to be spooled
 * and claim it, rather than download it a second time beside it (twice the
 * requests, bytes and decompression for the same segment). Gives up (NULL:
 * the caller fetches it itself) when the prefetcher stops fetching it without
 * spooling it, or its staged bytes stop growing for 5 s (a stalled or killed
 * prefetcher): a wait is never longer than the prefetcher's own progress. */
static char *spool_wait(const char *spool, const char *name)
{
    long long seen = -2;
    double moved = uw_now_ms();
    for (;;) {
        char *mine = spool_claim(spool, name);
        if (mine)
            return mine;
        long long staged = spool_staging(spool, name);
        if (staged < 0)
            return spool_claim(spool, name); /* spooled since the first look, or not at all */
        if (staged != seen) {
            seen = staged;
            moved = uw_now_ms();
        } else if (uw_now_ms() - moved > 5000) {
            return NULL;
        }
        sleep_ms(5);
    }
}

/* Deliver a claimed segment to dest if its content still has the checksum it
 * was verified with; otherwise discard it (the caller fetches from the
 * repository). */
static int spool_deliver(const char *spool, const char *name, char *mine, const char *dest)
{
    char *side = sidecar(spool, name), hex[80];
    uint8_t want[32];
    uw_digest d;
    uw_err e;
    uw_err_clear(&e);
    bool known = uw_read_line(side, hex, sizeof hex) && uw_unhex(hex, want, 32) == 0;
    int fd = known ? open(mine, O_RDONLY | O_CLOEXEC) : -1;
    bool good = fd >= 0 && uw_fd_digest(fd, mine, &d, &e) == 0 && memcmp(d.sha256, want, 32) == 0;
    if (fd >= 0)
        close(fd);
    int rc = good && rename(mine, dest) == 0 ? 0 : -1;
    if (!good)
        uw_log(UW_LOG_WARN, "spooled %s %s: discarded, fetching it from the repository", name,
               !known   ? "has no checksum"
               : e.code ? e.msg
                        : "does not match the checksum it was verified with");
    if (rc < 0)
        unlink(mine);
    unlink(side);
    free(side);
    return rc;
}

typedef struct {
    const uw_config *cfg;
    char *spool;                 /* our own directory, through its descriptor (/proc/self/fd/N) */
    const char *path;            /* the spool's path, where a new recovery may have made another */
    struct stat dir_id, lock_id; /* identity of the spool and its lock when we started */
    uint32_t seg_size;
    int window;          /* segments kept ahead */
    unsigned file_flags; /* of the spooled segments */
    pthread_mutex_t lock;
    uw_wal_name last;  /* last segment recovery asked for, as the main loop saw it */
    uw_wal_name floor; /* workers' fresher view of it */
    char **inflight;   /* per worker: name being fetched, or NULL */
    int workers;
    bool stop;
    /* Segments found missing, retried after a pause: the archive may not have them yet. */
    char missing[64][64];
    double missing_at[64];
} prefetch;

static bool spool_has(const prefetch *p, const char *name)
{
    char *path = uw_sprintf("%s/%s", p->spool, name);
    bool ok = access(path, F_OK) == 0;
    free(path);
    return ok;
}

static bool recently_missing(prefetch *p, const char *name)
{
    for (int i = 0; i < 64; i++)
        if (strcmp(p->missing[i], name) == 0 && uw_now_ms() - p->missing_at[i] < 1000)
            return true;
    return false;
}

static void mark_missing(prefetch *p, const char *name)
{
    int slot = 0;
    for (int i = 0; i < 64; i++)
        if (p->missing_at[i] < p->missing_at[slot])
            slot = i;
    snprintf(p->missing[slot], sizeof p->missing[slot], "%s", name);
    p->missing_at[slot] = uw_now_ms();
}

/* Pick the nearest segment of the window that is neither spooled nor being fetched. */
static bool read_last(const char *spool, uw_wal_name *w);

static bool next_job(prefetch *p, char *name, size_t len)
{
    /* The latest request, not the main loop's view of it (up to 20 ms old):
     * a segment just delivered must not look missing and be fetched again. */
    uw_wal_name now;
    if (read_last(p->spool, &now) && now.tli == p->last.tli &&
        uw_wal_segno(&now, p->seg_size) > uw_wal_segno(&p->last, p->seg_size))
        p->floor = now;
    else
        p->floor = p->last;
    for (int k = 1; k <= p->window; k++) {
        uw_wal_name w;
        uw_wal_from_segno(p->floor.tli, uw_wal_segno(&p->floor, p->seg_size) + (uint64_t)k,
                          p->seg_size, &w);
        uw_wal_format(&w, name, len);
        bool busy = false;
        for (int i = 0; i < p->workers; i++)
            if (p->inflight[i] && strcmp(p->inflight[i], name) == 0)
                busy = true;
        /* Nothing past a segment the archive does not have yet: recovery
         * stops there until it comes, and the archive fills in order. At the
         * archive's end (a standby following it) this makes one listing per
         * second, not one per segment of the window. */
        if (recently_missing(p, name))
            return false;
        if (!busy && !spool_has(p, name))
            return true;
    }
    return false;
}

typedef struct {
    prefetch *p;
    int id;
} worker_arg;

static void *prefetch_worker(void *arg)
{
    worker_arg *wa = arg;
    prefetch *p = wa->p;
    uw_repo *repos = NULL;
    int n = 0;
    uw_err err;
    if (uw_repos_open(p->cfg, &repos, &n, &err) < 0) {
        uw_log(UW_LOG_WARN, "prefetch: %s", err.msg);
        return NULL;
    }
    for (;;) {
        char name[64];
        pthread_mutex_lock(&p->lock);
        bool stop = p->stop, have = !stop && next_job(p, name, sizeof name);
        if (have)
            p->inflight[wa->id] = name;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        if (!have) {
            sleep_ms(20);
            continue;
        }
        /* Fetched under a temporary name, its checksum put beside it, then
         * renamed: a segment under its own name always has its checksum. */
        char *stage = uw_sprintf("%s/%s.uwtmp.prefetch-%d", p->spool, name, wa->id);
        char *dest = uw_sprintf("%s/%s", p->spool, name), *side = sidecar(p->spool, name);
        uw_digest d;
        uw_err_clear(&err);
        int rc = fetch_repos(repos, n, p->cfg, name, stage, p->file_flags, true, &d, &err);
        if (rc == 0) {
            char hex[65], *text;
            uw_hex(d.sha256, 32, hex);
            text = uw_sprintf("%s\n", hex);
            if (uw_file_put(side, text, UW_FILE_NO_SYNC, &err) < 0 || rename(stage, dest) < 0) {
                if (!err.code)
                    uw_fail(&err, UW_E_FILE, "unable to rename '%s': %s", stage, strerror(errno));
                unlink(stage);
                unlink(side);
                rc = -1;
            }
            free(text);
        }
        free(stage);
        free(dest);
        free(side);
        pthread_mutex_lock(&p->lock);
        p->inflight[wa->id] = NULL;
        if (rc < 0)
            mark_missing(p, name);
        pthread_mutex_unlock(&p->lock);
        if (rc < 0 && err.code != UW_E_NOT_FOUND)
            uw_log(UW_LOG_WARN, "prefetch of %s failed (recovery will fetch it itself): %s", name,
                   err.msg);
    }
    uw_repos_close(repos, n);
    return NULL;
}

static bool read_last(const char *spool, uw_wal_name *w)
{
    char *path = uw_sprintf("%s/last", spool), buf[64];
    bool ok = uw_read_line(path, buf, sizeof buf);
    free(path);
    return ok && uw_wal_parse(buf, w, NULL) == 0 && w->kind == UW_WAL_SEGMENT;
}

/* Drop what recovery no longer needs: segments at or before the last request,
 * beyond the window, or on another timeline. */
static void spool_clean(prefetch *p, bool all)
{
    DIR *d = opendir(p->spool);
    struct dirent *de;
    uint64_t last = uw_wal_segno(&p->last, p->seg_size);
    while (d && (de = readdir(d))) {
        uw_wal_name w;
        bool drop = false;
        char seg[32] = "";
        /* A segment's checksum goes with the segment. */
        if (strlen(de->d_name) == 24 + 7 && strcmp(de->d_name + 24, ".sha256") == 0)
            snprintf(seg, sizeof seg, "%.24s", de->d_name);
        else
            snprintf(seg, sizeof seg, "%.31s", de->d_name);
        if (uw_wal_parse(seg, &w, NULL) == 0 && w.kind == UW_WAL_SEGMENT) {
            uint64_t s = uw_wal_segno(&w, p->seg_size);
            /* Not the requested segment itself: its caller may be renaming it now. */
            drop = all || w.tli != p->last.tli || s < last || s > last + (uint64_t)p->window;
        } else if (strstr(de->d_name, ".uwtmp.")) {
            drop = all;
        }
        if (drop) {
            char *path = uw_sprintf("%s/%s", p->spool, de->d_name);
            unlink(path);
            free(path);
        }
    }
    if (d)
        closedir(d);
}

/* Whether the spool we started in is still the one at its path: a restore
 * rerun (--delta clears pg_wal) or an operator may remove it, and a new
 * recovery then makes another there, with a prefetcher of its own. */
static bool spool_same(const prefetch *p)
{
    struct stat d, l;
    char *lock = uw_sprintf("%s/lock", p->path);
    bool same = stat(p->path, &d) == 0 && stat(lock, &l) == 0 && d.st_dev == p->dir_id.st_dev &&
                d.st_ino == p->dir_id.st_ino && l.st_dev == p->lock_id.st_dev &&
                l.st_ino == p->lock_id.st_ino;
    free(lock);
    return same;
}

/* The detached prefetcher: runs while recovery keeps asking, then cleans up. */
static void prefetch_run(const uw_config *cfg, const char *spool, uint32_t seg_size)
{
    prefetch p = {0};
    p.cfg = cfg;
    p.path = spool;
    p.seg_size = seg_size;
    /* Everything is done through a descriptor of our own directory, so that
     * once it is replaced nothing of ours lands in (or is cleaned out of) the
     * new one. */
    int dfd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *lock = uw_sprintf("%s/lock", spool);
    bool ok = dfd >= 0 && fstat(dfd, &p.dir_id) == 0 && stat(lock, &p.lock_id) == 0;
    free(lock);
    if (!ok) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    p.spool = uw_sprintf("/proc/self/fd/%d", dfd);
    if (access(p.spool, F_OK) < 0) { /* no /proc: the path, checked as we go */
        free(p.spool);
        p.spool = uw_strdup(spool);
    }
    int64_t queue = uw_cfg_int(cfg, UW_OPT_ARCHIVE_GET_QUEUE_MAX);
    p.window = (int)(queue / seg_size);
    if (p.window < 1)
        p.window = 1;
    if (p.window > 1024)
        p.window = 1024;
    p.workers = (int)uw_cfg_int(cfg, UW_OPT_PROCESS_MAX);
    p.inflight = uw_calloc((size_t)p.workers, sizeof *p.inflight);
    pthread_mutex_init(&p.lock, NULL);
    bool replaced = false;
    if (!read_last(p.spool, &p.last))
        goto done;
    char boot[128];
    bool known = current_boot(boot, sizeof boot);
    if (!spool_trusted(spool))
        spool_clean(&p, true);
    p.file_flags = known ? UW_FILE_NO_SYNC | UW_FILE_WRITEBACK : 0;
    char *mark = uw_sprintf("%s/boot", p.spool),
         *text = uw_sprintf("%s\n", known ? boot : "durable");
    int marked = uw_file_put(mark, text, 0, NULL);
    free(mark);
    free(text);
    if (marked < 0)
        goto done;
    pthread_t *t = uw_calloc((size_t)p.workers, sizeof *t);
    worker_arg *args = uw_calloc((size_t)p.workers, sizeof *args);
    int started = 0;
    for (int i = 0; i < p.workers; i++) {
        args[i] = (worker_arg){&p, i};
        if (pthread_create(&t[i], NULL, prefetch_worker, &args[i]) == 0)
            started++;
    }
    /* Stay while recovery keeps asking; 30 s of silence means it ended. A
     * spool removed or replaced means it ended too: leave at once. */
    double active = uw_now_ms();
    while (uw_now_ms() - active < 30000) {
        sleep_ms(20);
        if (!spool_same(&p)) {
            replaced = true;
            break;
        }
        uw_wal_name w;
        if (read_last(p.spool, &w)) {
            pthread_mutex_lock(&p.lock);
            if (memcmp(&w, &p.last, sizeof w) != 0) {
                p.last = w;
                active = uw_now_ms();
            }
            spool_clean(&p, false);
            pthread_mutex_unlock(&p.lock);
        }
    }
    pthread_mutex_lock(&p.lock);
    p.stop = true;
    pthread_mutex_unlock(&p.lock);
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
    free(args);
done:
    if (replaced)
        uw_log(UW_LOG_DETAIL, "prefetch: spool '%s' was removed or replaced: leaving", spool);
    spool_clean(&p, true);
    char *last = uw_sprintf("%s/last", p.spool);
    unlink(last);
    free(last);
    pthread_mutex_destroy(&p.lock);
    free(p.inflight);
    free(p.spool);
    close(dfd);
}

/* The prefetcher learns the segment size from the stanza; it opens its own
 * repositories, as it runs in a forked child and must share no connection. */
static void prefetch_child(const uw_config *cfg, const char *spool)
{
    uw_repo *repos;
    int n;
    uw_err e;
    uint32_t seg_size = 0;
    if (uw_repos_open(cfg, &repos, &n, &e) == 0) {
        for (int i = 0; i < n && !seg_size; i++)
            if (uw_repo_load(&repos[i], cfg, &e) == 0)
                seg_size = repos[i].info.wal_seg_size;
        uw_repos_close(repos, n);
    }
    if (seg_size)
        prefetch_run(cfg, spool, seg_size);
}

static int fetch(const uw_config *cfg, bool *detached, uw_err *err)
{
    if (uw_config_argc(cfg) != 2)
        return uw_fail(err, UW_E_OPTION,
                       "expected two arguments: the WAL file name (%%f) and "
                       "the destination path (%%p)");
    const char *name = uw_config_arg(cfg, 0), *dest = uw_config_arg(cfg, 1);
    uw_wal_name w;
    if (uw_wal_parse(name, &w, err) < 0) {
        err->code = UW_E_OPTION;
        return -1;
    }
    bool prefetching =
        uw_cfg_int(cfg, UW_OPT_ARCHIVE_GET_QUEUE_MAX) > 0 && w.kind == UW_WAL_SEGMENT;
    char *spool = NULL;
    if (prefetching) {
        if (uw_cfg_isset(cfg, UW_OPT_SPOOL_PATH))
            spool = uw_sprintf("%s/%s/fetch", uw_cfg_str(cfg, UW_OPT_SPOOL_PATH),
                               uw_cfg_str(cfg, UW_OPT_STANZA));
        else {
            /* Beside pg_wal, so that delivering a spooled segment is a rename. */
            const char *slash = strrchr(dest, '/');
            spool = slash ? uw_sprintf("%.*s/ue-wal-prefetch", (int)(slash - dest), dest)
                          : uw_strdup("ue-wal-prefetch");
        }
        if (uw_mkdir_p(spool, 0700, err) < 0 || spool_check(spool, err) < 0) {
            free(spool);
            spool = NULL;
            prefetching = false;
            uw_log(UW_LOG_WARN, "prefetch disabled: %s", err->msg);
        }
    }
    int rc = -1;
    if (prefetching) {
        /* Take the spooled segment before announcing the request, so that the
         * prefetcher's cleanup never races us, and announce it before checking
         * it, so that the prefetcher moves on meanwhile instead of fetching
         * again what looks missing. */
        char *mine = spool_trusted(spool) ? spool_claim(spool, name) : NULL;
        char *last = uw_sprintf("%s/last", spool), *text = uw_sprintf("%s\n", name);
        uw_file_put(last, text, UW_FILE_NO_SYNC, NULL);
        free(last);
        free(text);
        if (mine && spool_deliver(spool, name, mine, dest) == 0) {
            uw_log(UW_LOG_INFO, "delivered %s from the prefetch queue", name);
            rc = 0;
        }
        free(mine);
        /* Start the prefetcher (unless one runs) before fetching this segment
         * ourselves, so that it works on the next ones meanwhile. */
        if (uw_daemon_start(spool) == UW_DAEMON_CHILD) {
            *detached = true;
            prefetch_child(cfg, spool);
            free(spool);
            return 0;
        }
        mine = rc == 0 || !spool_trusted(spool) ? NULL : spool_wait(spool, name);
        if (mine && spool_deliver(spool, name, mine, dest) == 0) {
            uw_log(UW_LOG_INFO, "delivered %s from the prefetch queue (fetched meanwhile)", name);
            rc = 0;
        }
        free(mine);
    }
    free(spool);
    if (rc == 0)
        return 0;
    uw_repo *repos;
    int n;
    if (uw_repos_open(cfg, &repos, &n, err) < 0)
        return -1;
    /* Not fsynced: PostgreSQL fsyncs every segment it keeps (durable_rename). */
    rc = fetch_repos(repos, n, cfg, name, dest, UW_FILE_NO_SYNC | UW_FILE_WRITEBACK, false, NULL,
                     err);
    uw_repos_close(repos, n);
    return rc;
}

int main(int argc, char **argv)
{
    int code;
    uw_config *cfg = uw_cmd_start(argc, argv, UW_CMD_FETCH,
                                  "ue-wal-fetch [options] --stanza NAME WALNAME DESTPATH",
                                  "Restore one WAL file (restore_command = 'ue-wal-fetch --stanza "
                                  "NAME %f %p').",
                                  &code);
    if (!cfg)
        return code;
    uw_err err;
    uw_err_clear(&err);
    bool detached = false;
    int rc = fetch(cfg, &detached, &err);
    if (detached)
        code = 0; /* the prefetcher's status goes nowhere */
    else if (rc == 0)
        code = 0;
    else if (err.code == UW_E_NOT_FOUND) {
        /* Routine at the end of every recovery: not an error. */
        uw_log(UW_LOG_INFO, "%s", err.msg);
        code = UW_E_NOT_FOUND;
    } else
        code = uw_cmd_fail(&err);
    uw_config_free(cfg);
    return code;
}
