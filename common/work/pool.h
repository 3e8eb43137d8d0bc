/* Run N independent jobs on a fixed number of worker threads. The same per-file
 * worker runs inline (workers = 1) or in parallel, so parallelism is a
 * scheduling decision. The first failure stops the hand-out of new jobs and is
 * the one reported. */
#ifndef UW_POOL_H
#define UW_POOL_H

#include <stddef.h>

#include "core/error.h"

typedef int (*uw_job_fn)(void *ctx, size_t index, uw_err *err);

int uw_pool_run(int workers, size_t jobs, uw_job_fn fn, void *ctx, uw_err *err);
/* Index (0..workers-1) of the worker running the calling job, for per-worker
 * resources such as storage connections, which are not shared between threads. */
int uw_pool_worker_id(void);

#endif
