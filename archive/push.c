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
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "pool.h"
#include "repo.h"
#include "walpush.h"

typedef struct {
    uw_repo *repos;
    int n;
} repo_set;

static int open_set(const uw_config *cfg, repo_set *s, uw_err *err)
{
    if (uw_repos_open(cfg, &s->repos, &s->n, err) < 0)
        return -1;
    for (int i = 0; i < s->n; i++)
        if (uw_repo_load(&s->repos[i], cfg, err) < 0)
            return -1;
    for (int i = 1; i < s->n; i++)
        if (s->repos[i].info.system_id != s->repos[0].info.system_id)
            return uw_fail(err, UW_E_STANZA, "stanza '%s' differs between %s and %s",
                           s->repos[0].stanza, s->repos[0].st->desc, s->repos[i].st->desc);
    return 0;
}

static void close_set(repo_set *s)
{
    if (s->repos)
        uw_repos_close(s->repos, s->n);
    s->repos = NULL;
}

/* Push one file to every repository of the set. */
static int push_file(const uw_config *cfg, repo_set *s, const char *path, int threads,
                     uw_err *err, uint8_t sha_out[32])
{
    const char *slash = strrchr(path, '/');
    uw_push_job job = {0};
    job.path = path;
    job.name = slash ? slash + 1 : path;
    job.threads = threads;
    /* One repository that can rename: read, hash and compress in one pass,
     * unless the name is already taken (then compare checksums first). */
    bool one_pass = s->n == 1 && uw_push_single_pass_ok(&s->repos[0]);
    if (one_pass) {
        char *existing = NULL, sha[65];
        int found = uw_repo_wal_find(&s->repos[0], job.name, &existing, sha, err);
        free(existing);
        if (found < 0)
            return -1;
        one_pass = !found;
    }
    if (uw_push_prepare(cfg, &s->repos[0], &job, !one_pass, err) < 0)
        return -1;
    for (int i = 0; i < s->n; i++) {
        double t0 = uw_now_ms();
        int already = 0;
        uint64_t stored = 0;
        if ((one_pass ? uw_push_single_pass(&s->repos[i], &job, &already, &stored, err)
                      : uw_push_one(&s->repos[i], &job, &already, &stored, err)) < 0)
            return -1;
        if (already)
            uw_log(UW_LOG_INFO, "%s already archived in %s with the same checksum", job.name,
                   s->repos[i].st->desc);
        else
            uw_log(UW_LOG_INFO, "pushed %s to %s (%llu -> %llu bytes, %.0f ms)", job.name,
                   s->repos[i].st->desc, (unsigned long long)job.size,
                   (unsigned long long)stored, uw_now_ms() - t0);
    }
    if (sha_out)
        memcpy(sha_out, job.sha256, 32);
    return 0;
}

/* ---- asynchronous mode ---- */

static char *note_path(const char *spool, const char *stanza, const char *name)
{
    return uw_sprintf("%s/%s/push/%s.ok", spool, stanza, name);
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
 * size and modification time, which PostgreSQL never keeps across a rewrite),
 * or else if the file still hashes to what was stored. */
static bool note_matches(const char *note, const char *path)
{
    char want[256] = "";
    FILE *f = fopen(note, "r");
    if (!f)
        return false;
    bool ok = fgets(want, sizeof want, f) != NULL;
    fclose(f);
    if (!ok || strlen(want) < 64)
        return false;
    struct stat sb;
    char id[128];
    if (stat(path, &sb) < 0)
        return false;
    file_id(&sb, id, sizeof id);
    if (want[64] == ' ' && strncmp(want + 65, id, strlen(id)) == 0 && want[65 + strlen(id)] == '\n')
        return true;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    uw_digest d;
    ok = uw_fd_digest(fd, path, &d, NULL) == 0;
    close(fd);
    char hex[65];
    uw_hex(d.sha256, 32, hex);
    return ok && strncmp(hex, want, 64) == 0;
}

typedef struct {
    const uw_config *cfg;
    const char *spool, *stanza;
    char **paths;
    repo_set *sets; /* one per worker: storage handles are not shared between threads */
    uw_err *errs;
    int *ok;
} batch;

static int batch_job(void *ctx, size_t i, uw_err *err)
{
    (void)err;
    batch *b = ctx;
    repo_set *s = &b->sets[uw_pool_worker_id()];
    uw_err *e = &b->errs[i];
    uw_err_clear(e);
    uint8_t sha[32];
    /* One file's failure must not stop the others: errors stay per file. */
    if (!s->repos && open_set(b->cfg, s, e) < 0) {
        close_set(s);
        return 0;
    }
    if (push_file(b->cfg, s, b->paths[i], 1, e, sha) < 0)
        return 0;
    b->ok[i] = 1;
    if (i > 0) {
        const char *name = strrchr(b->paths[i], '/') + 1;
        char *note = note_path(b->spool, b->stanza, name);
        char hex[65], id[128], line[256];
        struct stat sb;
        uw_hex(sha, 32, hex);
        if (stat(b->paths[i], &sb) == 0)
            file_id(&sb, id, sizeof id);
        else
            id[0] = '\0';
        int len = snprintf(line, sizeof line, "%s %s\n", hex, id);
        /* Losing a note in a crash only means pushing that file again. */
        uw_sink *f = uw_file_sink(note, 0600, UW_FILE_NO_SYNC, e);
        if (f && uw_sink_write(f, line, (size_t)len, e) == 0)
            uw_sink_finish(f, e);
        uw_sink_free(f);
        free(note);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The other .ready files after `name`, oldest first, at most `max`; *total
 * gets how many there are in all (the archiver's backlog). */
static int ready_after(const char *waldir, const char *name, int max, char ***out, int *total)
{
    char *status = uw_sprintf("%s/archive_status", waldir);
    DIR *d = opendir(status);
    free(status);
    int n = 0, cap = 0;
    char **list = NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 7 || strcmp(de->d_name + l - 6, ".ready") != 0)
            continue;
        char *base = uw_strndup(de->d_name, l - 6);
        uw_wal_name w;
        if (strcmp(base, name) == 0 || uw_wal_parse(base, &w, NULL) < 0) {
            free(base);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            list = uw_realloc(list, (size_t)cap * sizeof *list);
        }
        list[n++] = base;
    }
    if (d)
        closedir(d);
    if (n)
        qsort(list, (size_t)n, sizeof *list, cmp_str);
    for (int i = max; i < n; i++)
        free(list[i]);
    *out = list;
    *total = n;
    return n < max ? n : max;
}

/* <spool>/<stanza>/push/status, for monitoring: the archiver's backlog when
 * the last batch started, what the batch did, and its error if the requested
 * file failed. Rewritten after every batch (atomically, not fsynced). */
static void write_status(const char *spool, const char *stanza, int ready, int pushed, int failed,
                         const char *error)
{
    char *path = uw_sprintf("%s/%s/push/status", spool, stanza);
    char *text = uw_sprintf("ready=%d\npushed=%d\nfailed=%d\nlast-error=%s\nupdated=%lld\n", ready,
                            pushed, failed, error ? error : "", (long long)time(NULL));
    for (char *p = text; error && *p; p++)
        if (*p == '\r')
            *p = ' ';
    uw_sink *f = uw_file_sink(path, 0640, UW_FILE_NO_SYNC, NULL);
    if (f && uw_sink_write(f, text, strlen(text), NULL) == 0)
        uw_sink_finish(f, NULL);
    uw_sink_free(f);
    free(text);
    free(path);
}

static int push_async(const uw_config *cfg, const char *path, uw_err *err)
{
    const char *spool = uw_cfg_str(cfg, "spool-path");
    const char *stanza = uw_cfg_str(cfg, "stanza");
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char *waldir = slash ? uw_strndup(path, (size_t)(slash - path)) : uw_strdup(".");
    char *dir = uw_sprintf("%s/%s/push", spool, stanza);
    int rc = -1;
    if (uw_mkdir_p(dir, 0700, err) < 0) {
        uw_wrap(err, "option 'spool-path'");
        goto out;
    }
    char *note = note_path(spool, stanza, name);
    if (note_matches(note, path)) {
        unlink(note);
        free(note);
        uw_log(UW_LOG_INFO, "%s was archived asynchronously", name);
        rc = 0;
        goto out;
    }
    unlink(note);
    free(note);
    /* One batch at a time: a second archiver (or a manual run) pushes only its file. */
    char *lock = uw_sprintf("%s/%s/push.lock", spool, stanza);
    int lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lock);
    int workers = (int)uw_cfg_int(cfg, "process-max");
    char **more = NULL;
    int nmore = 0, backlog = -1;
    if (lockfd >= 0 && flock(lockfd, LOCK_EX | LOCK_NB) == 0)
        nmore = ready_after(waldir, name, workers * 4 - 1, &more, &backlog);
    batch b = {cfg, spool, stanza, NULL, NULL, NULL, NULL};
    size_t n = (size_t)nmore + 1;
    b.paths = uw_calloc(n, sizeof *b.paths);
    b.paths[0] = uw_strdup(path);
    for (int i = 0; i < nmore; i++)
        b.paths[i + 1] = uw_sprintf("%s/%s", waldir, more[i]);
    b.sets = uw_calloc((size_t)workers, sizeof *b.sets);
    b.errs = uw_calloc(n, sizeof *b.errs);
    b.ok = uw_calloc(n, sizeof *b.ok);
    uw_pool_run(workers, n, batch_job, &b, err);
    int pushed = 0;
    for (size_t i = 1; i < n; i++) {
        pushed += b.ok[i];
        if (!b.ok[i])
            uw_log(UW_LOG_WARN, "asynchronous push of %s failed (it will be retried): %s",
                   more[i - 1], b.errs[i].msg);
    }
    if (nmore)
        uw_log(UW_LOG_INFO, "pushed %d of %d further ready files ahead of the archiver", pushed,
               nmore);
    if (b.ok[0])
        rc = 0;
    else
        *err = b.errs[0];
    if (backlog >= 0)
        write_status(spool, stanza, backlog + 1, pushed + b.ok[0], (int)n - pushed - b.ok[0],
                     b.ok[0] ? NULL : b.errs[0].msg);
    for (int i = 0; i < workers; i++)
        close_set(&b.sets[i]);
    for (size_t i = 0; i < n; i++)
        free(b.paths[i]);
    for (int i = 0; i < nmore; i++)
        free(more[i]);
    free(more);
    free(b.paths);
    free(b.sets);
    free(b.errs);
    free(b.ok);
    if (lockfd >= 0)
        close(lockfd);
out:
    free(dir);
    free(waldir);
    return rc;
}

static int push(const uw_config *cfg, uw_err *err)
{
    if (uw_config_argc(cfg) != 1)
        return uw_fail(err, UW_E_OPTION, "expected exactly one argument: the WAL file path (%%p)");
    const char *path = uw_config_arg(cfg, 0);
    if (uw_cfg_bool(cfg, "archive-async"))
        return push_async(cfg, path, err);
    repo_set s = {0};
    int rc = open_set(cfg, &s, err);
    /* One call at a time from the archiver: compress on every core. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (rc == 0)
        rc = push_file(cfg, &s, path, cpus > 1 ? (int)(cpus < 4 ? cpus : 4) : 1, err, NULL);
    close_set(&s);
    return rc;
}

int main(int argc, char **argv)
{
    int code;
    uw_config *cfg = uw_cmd_start(argc, argv, UW_CMD_PUSH, "ue-wal-push [options] --stanza NAME WALPATH",
                                  "Archive one WAL file (archive_command = 'ue-wal-push --stanza NAME %p').",
                                  &code);
    if (!cfg)
        return code;
    uw_err err;
    uw_err_clear(&err);
    if (push(cfg, &err) == 0)
        code = 0;
    else {
        /* The archiver must never see a code above 125 from us. */
        if (err.code > 125)
            err.code = err.code == UW_E_DECRYPT ? UW_E_CRYPTO : UW_E_INTERNAL;
        code = uw_cmd_fail(&err);
    }
    uw_config_free(cfg);
    return code;
}
