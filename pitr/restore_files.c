/* The per-file fan-out: every file of the backup through the worker pool
 * (work/restore_file.c restores and verifies one), largest first, then one
 * sync of every file system, then global/pg_control alone and last. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/progress.h"
#include "restore.h"
#include "work/pool.h"
#include "work/restore_file.h"

typedef struct {
    restore *rs;
    uw_restore_ctx ctx; /* repo replaced per worker */
    const uw_mf_entry **jobs;
    size_t njobs;
    uw_repo *worker_repos; /* one storage handle per worker thread */
    pthread_mutex_t mu;    /* guards the counters in rs */
    uw_progress *progress;
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
    if (p->rs->cancel && *p->rs->cancel)
        return uw_fail(err, UW_E_RESTORE, "interrupted by a signal before '%s'", e->path);
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
    uw_progress_add(p->progress, e->size, 1);
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

/* The pool's jobs: every file but global/pg_control (returned apart),
 * largest first, so that one big file does not start last and run alone.
 * tablespace_map is not taken from the repository: restore_recovery.c writes
 * it from the links the restore created. */
static const uw_mf_entry *plan_jobs(const restore *rs, pool_state *p)
{
    const uw_mf_entry *control = NULL;
    p->jobs = uw_calloc(rs->m.count + 1, sizeof *p->jobs);
    p->njobs = 0;
    for (size_t i = 0; i < rs->m.count; i++) {
        const uw_mf_entry *e = &rs->m.entries[i];
        if (e->type != 'f' || !strcmp(e->path, "tablespace_map") ||
            (rs->sparse && rs->sparse(rs, e)))
            continue;
        if (!strcmp(e->path, "global/pg_control"))
            control = e;
        else
            p->jobs[p->njobs++] = e;
    }
    qsort(p->jobs, p->njobs, sizeof *p->jobs, by_size_desc);
    return control;
}

static int run_pool(restore *rs, pool_state *p, uw_err *err)
{
    int workers = (int)uw_cfg_int(rs->cfg, UW_OPT_PROCESS_MAX);
    if (workers < 1)
        workers = 1;
    p->worker_repos = uw_calloc((size_t)workers, sizeof *p->worker_repos);
    int rc = uw_pool_run(workers, p->njobs, restore_job, p, err);
    for (int i = 0; i < workers; i++)
        if (p->worker_repos[i].st)
            uw_repo_release(&p->worker_repos[i]);
    free(p->worker_repos);
    return rc;
}

/* Everything written so far becomes durable at once (one syncfs per file
 * system instead of an fsync per file), before pg_control. Last: without it
 * PostgreSQL does not start, so a restore that failed before this point
 * cannot be started by mistake. */
static int finish_with_control(restore *rs, pool_state *p, const uw_mf_entry *control, uw_err *err)
{
    if (!control)
        return uw_fail(err, UW_E_REPO_FORMAT, "backup %s has no global/pg_control", rs->m.id);
    int rc = restore_sync_all(rs, err);
    uw_restore_result res;
    p->ctx.no_sync = false;
    if (rc == 0)
        rc = uw_restore_file(&p->ctx, control, &res, err);
    if (rc == 0)
        account(rs, &res);
    return rc;
}

/* What rs->sparse selects: a file of the entry's size that holds no data
 * (a hole), with the entry's mode; nothing is read from the repository. */
static int make_sparse(restore *rs, const uw_mf_entry *e, uw_err *err)
{
    char *path = uw_sprintf("%s/%s", rs->pgdata, e->path);
    int fd =
        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, (mode_t)(e->mode & 0640));
    int rc = 0;
    if (fd < 0 || ftruncate(fd, (off_t)e->size) < 0)
        rc = uw_fail(err, UW_E_FILE, "unable to create '%s': %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (rc == 0)
        rc = restore_own(rs, path, err);
    free(path);
    if (rc == 0)
        rs->files_sparse++;
    return rc;
}

static int make_sparse_files(restore *rs, uw_err *err)
{
    for (size_t i = 0; rs->sparse && i < rs->m.count; i++) {
        const uw_mf_entry *e = &rs->m.entries[i];
        if (e->type == 'f' && rs->sparse(rs, e) && make_sparse(rs, e, err) < 0)
            return -1;
    }
    return 0;
}

int restore_files(restore *rs, uw_err *err)
{
    if (rs->before_files && rs->before_files(rs, err) < 0)
        return -1;
    if (make_sparse_files(rs, err) < 0)
        return -1;
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
    const uw_mf_entry *control = plan_jobs(rs, &p);
    uint64_t total = control ? control->size : 0;
    for (size_t i = 0; i < p.njobs; i++)
        total += p.jobs[i]->size;
    p.progress = uw_progress_start("restore", total, p.njobs + (control != NULL),
                                   uw_cfg_bool(rs->cfg, UW_OPT_PROGRESS));
    int rc = run_pool(rs, &p, err);
    if (rc == 0)
        rc = finish_with_control(rs, &p, control, err);
    if (rc == 0)
        uw_progress_add(p.progress, control->size, 1);
    uw_progress_finish(p.progress);
    free(p.jobs);
    free(manifests);
    pthread_mutex_destroy(&p.mu);
    return rc;
}
