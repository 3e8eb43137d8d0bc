#include "work/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

static _Thread_local int worker_id;

int uw_pool_worker_id(void)
{
    return worker_id;
}

typedef struct {
    pthread_mutex_t lock;
    int next_id;
    size_t next, jobs;
    bool failed;
    uw_err first;
    uw_job_fn fn;
    void *ctx;
} pool;

static void *worker(void *arg)
{
    pool *p = arg;
    pthread_mutex_lock(&p->lock);
    worker_id = p->next_id++;
    pthread_mutex_unlock(&p->lock);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (p->failed || p->next >= p->jobs) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        size_t i = p->next++;
        pthread_mutex_unlock(&p->lock);
        uw_err e;
        uw_err_clear(&e);
        if (p->fn(p->ctx, i, &e) < 0) {
            pthread_mutex_lock(&p->lock);
            if (!p->failed) {
                p->failed = true;
                p->first = e;
            }
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
    }
}

int uw_pool_run(int workers, size_t jobs, uw_job_fn fn, void *ctx, uw_err *err)
{
    pool p = {PTHREAD_MUTEX_INITIALIZER, 0, 0, jobs, false, {UW_OK, "", 0}, fn, ctx};
    if (workers < 1)
        workers = 1;
    if ((size_t)workers > jobs)
        workers = jobs ? (int)jobs : 1;
    if (workers == 1) {
        worker(&p);
    } else {
        pthread_t *t = uw_calloc((size_t)workers, sizeof *t);
        int started = 0;
        for (int i = 0; i < workers; i++)
            if (pthread_create(&t[i], NULL, worker, &p) == 0)
                started++;
            else
                break;
        if (!started)
            worker(&p);
        for (int i = 0; i < started; i++)
            pthread_join(t[i], NULL);
        free(t);
    }
    pthread_mutex_destroy(&p.lock);
    if (p.failed) {
        if (err)
            *err = p.first;
        return -1;
    }
    return 0;
}
