#include "io/compress.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "core/options.h"

/* ---- none ---- */
typedef struct {
    uw_sink base;
} pass_sink;

static int pass_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    return uw_sink_write(s->next, buf, len, err);
}

static int pass_finish(uw_sink *s, uw_err *err)
{
    return uw_sink_finish(s->next, err);
}
static void pass_destroy(uw_sink *s)
{
    free(s);
}

static uw_sink *none_new(uw_sink *next)
{
    pass_sink *p = uw_calloc(1, sizeof *p);
    p->base = (uw_sink){pass_write, pass_finish, pass_destroy, next, false, NULL};
    return &p->base;
}

static uw_sink *none_compress(int level, int threads, uw_sink *next)
{
    (void)level;
    (void)threads;
    return none_new(next);
}

/* ---- zstd ---- */

/* One single-threaded compression and one decompression context are kept per
 * thread and reused by its next sink: a backup or restore worker goes through
 * thousands of files, and allocating multi-MiB contexts for each one
 * fragmented the heap into several MiB of extra resident memory. */
static pthread_key_t cctx_key, dctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static void cctx_drop(void *c)
{
    ZSTD_freeCCtx(c);
}
static void dctx_drop(void *d)
{
    ZSTD_freeDCtx(d);
}
static void ctx_keys(void)
{
    pthread_key_create(&cctx_key, cctx_drop);
    pthread_key_create(&dctx_key, dctx_drop);
}

static ZSTD_CCtx *cctx_take(void)
{
    pthread_once(&ctx_once, ctx_keys);
    ZSTD_CCtx *c = pthread_getspecific(cctx_key);
    if (c) {
        pthread_setspecific(cctx_key, NULL);
        ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
        return c;
    }
    c = ZSTD_createCCtx();
    if (!c)
        abort();
    return c;
}

static void cctx_give(ZSTD_CCtx *c)
{
    pthread_once(&ctx_once, ctx_keys);
    if (c && !pthread_getspecific(cctx_key) && pthread_setspecific(cctx_key, c) == 0)
        return;
    ZSTD_freeCCtx(c);
}

static ZSTD_DCtx *dctx_take(void)
{
    pthread_once(&ctx_once, ctx_keys);
    ZSTD_DCtx *d = pthread_getspecific(dctx_key);
    if (d) {
        pthread_setspecific(dctx_key, NULL);
        ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
        return d;
    }
    d = ZSTD_createDCtx();
    if (!d)
        abort();
    return d;
}

static void dctx_give(ZSTD_DCtx *d)
{
    pthread_once(&ctx_once, ctx_keys);
    if (d && !pthread_getspecific(dctx_key) && pthread_setspecific(dctx_key, d) == 0)
        return;
    ZSTD_freeDCtx(d);
}
typedef struct {
    uw_sink base;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *out;
    size_t out_size;
    bool frame_done; /* decompression: last frame ended cleanly */
    bool shared;     /* cctx came from (and goes back to) the thread's cache */
    int level, threads;
    bool fed_by_fd; /* compression: the whole input came through zstd_from_fd */
} zstd_sink;

static int zstd_cwrite_mode(zstd_sink *z, const uint8_t *buf, size_t len, ZSTD_EndDirective mode,
                            uw_err *err)
{
    ZSTD_inBuffer in = {buf, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {z->out, z->out_size, 0};
        size_t left = ZSTD_compressStream2(z->cctx, &out, &in, mode);
        if (ZSTD_isError(left))
            return uw_fail(err, UW_E_INTERNAL, "zstd compression failed: %s",
                           ZSTD_getErrorName(left));
        if (out.pos && uw_sink_write(z->base.next, z->out, out.pos, err) < 0)
            return -1;
        if (mode == ZSTD_e_continue ? in.pos == in.size : left == 0)
            return 0;
    }
}

static int zstd_cwrite(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    return zstd_cwrite_mode((zstd_sink *)s, buf, len, ZSTD_e_continue, err);
}

static int zstd_cfinish(uw_sink *s, uw_err *err)
{
    if (!((zstd_sink *)s)->fed_by_fd &&
        zstd_cwrite_mode((zstd_sink *)s, NULL, 0, ZSTD_e_end, err) < 0)
        return -1;
    return uw_sink_finish(s->next, err);
}

/* A whole file on several threads: the file is cut into 2 MiB parts, each
 * compressed as a zstd frame of its own (a zstd stream may hold several
 * frames) by whichever worker is free, reading it in place with pread. Parts
 * go downstream in order as soon as all earlier ones have; a worker never runs
 * more than `threads` parts ahead of the oldest unwritten one, so memory stays
 * at (threads + 1) part buffers whatever the file size. Against zstd's own
 * multi-threading this needs no input copies and no job overlap: on real WAL
 * a 16 MiB segment compresses in about 2/3 of the time, at the same ratio
 * (2 MiB is zstd's level-3 window: little is lost at part boundaries). */
enum { PART_SIZE = 2 << 20, PART_READ = 256 << 10, WORKERS_MAX = 8 };

typedef struct {
    zstd_sink *z;
    int fd;
    const char *what;
    uint64_t size, nparts;
    int window; /* part buffers (slots) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t next_take, next_flush;
    bool flushing, failed;
    uw_buf *bufs; /* slot = part % window */
    bool *done;
    uw_err err;
} parts_job;

static void parts_fail(parts_job *j, const uw_err *e)
{
    pthread_mutex_lock(&j->mu);
    if (!j->failed) {
        j->failed = true;
        j->err = *e;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static int part_compress(parts_job *j, ZSTD_CCtx *c, uint8_t *in, uint64_t part, uw_buf *out,
                         uw_err *err)
{
    uint64_t off = part * PART_SIZE;
    uint64_t len = j->size - off < PART_SIZE ? j->size - off : PART_SIZE;
    ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
    ZSTD_CCtx_setPledgedSrcSize(c, len);
    out->len = 0;
    uw_buf_reserve(out, ZSTD_compressBound((size_t)len));
    for (uint64_t done = 0;;) {
        size_t n = len - done < PART_READ ? (size_t)(len - done) : PART_READ;
        if (n && uw_pread_all(j->fd, in, n, off + done, j->what, err) < 0)
            return -1;
        done += n;
        ZSTD_EndDirective mode = done == len ? ZSTD_e_end : ZSTD_e_continue;
        ZSTD_inBuffer ib = {in, n, 0};
        for (;;) {
            ZSTD_outBuffer o = {out->data + out->len, out->cap - out->len, 0};
            size_t left = ZSTD_compressStream2(c, &o, &ib, mode);
            if (ZSTD_isError(left))
                return uw_fail(err, UW_E_INTERNAL, "zstd compression failed: %s",
                               ZSTD_getErrorName(left));
            out->len += o.pos;
            if (mode == ZSTD_e_continue ? ib.pos == ib.size : left == 0)
                break;
        }
        if (mode == ZSTD_e_end)
            return 0;
    }
}

/* Write every finished part that is next in order; one flusher at a time. */
static void parts_flush(parts_job *j)
{
    if (j->flushing)
        return;
    j->flushing = true;
    while (!j->failed && j->next_flush < j->nparts &&
           j->done[j->next_flush % (uint64_t)j->window]) {
        uw_buf *b = &j->bufs[j->next_flush % (uint64_t)j->window];
        pthread_mutex_unlock(&j->mu);
        uw_err e;
        uw_err_clear(&e);
        int rc = uw_sink_write(j->z->base.next, b->data, b->len, &e);
        pthread_mutex_lock(&j->mu);
        if (rc < 0 && !j->failed) {
            j->failed = true;
            j->err = e;
        }
        j->done[j->next_flush % (uint64_t)j->window] = false;
        j->next_flush++;
        pthread_cond_broadcast(&j->cv);
    }
    j->flushing = false;
}

/* The part workers' contexts outlive their threads: a process that pushes
 * segment after segment (the archive module, a backup) finds them warm (their
 * tables allocated) instead of building one per worker per file. At most
 * WORKERS_MAX are kept. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static ZSTD_CCtx *pool[WORKERS_MAX];
static int pool_n;

static ZSTD_CCtx *pool_take(void)
{
    pthread_mutex_lock(&pool_mu);
    ZSTD_CCtx *c = pool_n ? pool[--pool_n] : NULL;
    pthread_mutex_unlock(&pool_mu);
    if (c) {
        ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
        return c;
    }
    c = ZSTD_createCCtx();
    if (!c)
        abort();
    return c;
}

static void pool_give(ZSTD_CCtx *c)
{
    pthread_mutex_lock(&pool_mu);
    if (pool_n < WORKERS_MAX) {
        pool[pool_n++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
    ZSTD_freeCCtx(c);
}

void uw_compress_release_cache(void)
{
    pthread_mutex_lock(&pool_mu);
    while (pool_n)
        ZSTD_freeCCtx(pool[--pool_n]);
    pthread_mutex_unlock(&pool_mu);
    pthread_once(&ctx_once, ctx_keys);
    ZSTD_CCtx *c = pthread_getspecific(cctx_key);
    ZSTD_DCtx *d = pthread_getspecific(dctx_key);
    pthread_setspecific(cctx_key, NULL);
    pthread_setspecific(dctx_key, NULL);
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
}

/* At most one part worker per core compresses at a time in the process,
 * whatever the number of files in flight: the asynchronous pusher's workers
 * each ask for every core, so that one worker's file takes the cores while
 * another writes and fsyncs its own, and none idles; but no more contexts
 * exist (and no more memory is used) than cores. A worker holds its slot for
 * its whole file: it never waits on another file while holding it. */
static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cv = PTHREAD_COND_INITIALIZER;
static int slots_free = -1; /* -1: not yet sized */

static void slot_take(void)
{
    pthread_mutex_lock(&slot_mu);
    if (slots_free < 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        slots_free = cpus < 1 ? 1 : cpus > WORKERS_MAX ? WORKERS_MAX : (int)cpus;
    }
    while (slots_free == 0)
        pthread_cond_wait(&slot_cv, &slot_mu);
    slots_free--;
    pthread_mutex_unlock(&slot_mu);
}

static void slot_give(void)
{
    pthread_mutex_lock(&slot_mu);
    slots_free++;
    pthread_cond_signal(&slot_cv);
    pthread_mutex_unlock(&slot_mu);
}

static void *parts_worker(void *arg)
{
    parts_job *j = arg;
    slot_take();
    ZSTD_CCtx *c = pool_take();
    uint8_t *in = uw_malloc(PART_READ);
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, j->z->level);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (!j->failed && j->next_take < j->nparts &&
               j->next_take >= j->next_flush + (uint64_t)j->window)
            pthread_cond_wait(&j->cv, &j->mu);
        if (j->failed || j->next_take >= j->nparts)
            break;
        uint64_t part = j->next_take++;
        uw_buf *out = &j->bufs[part % (uint64_t)j->window];
        pthread_mutex_unlock(&j->mu);
        uw_err e;
        uw_err_clear(&e);
        int rc = part_compress(j, c, in, part, out, &e);
        if (rc < 0)
            parts_fail(j, &e);
        pthread_mutex_lock(&j->mu);
        if (rc == 0) {
            j->done[part % (uint64_t)j->window] = true;
            parts_flush(j);
        }
    }
    pthread_mutex_unlock(&j->mu);
    pool_give(c);
    slot_give();
    free(in);
    return NULL;
}

static int zstd_from_fd(uw_sink *s, int fd, uint64_t size, const char *what,
                        const uw_side_work *side, uw_err *err)
{
    zstd_sink *z = (zstd_sink *)s;
    int n = z->threads < WORKERS_MAX ? z->threads : WORKERS_MAX;
    if (n < 2 || size < 2 * (uint64_t)PART_SIZE)
        return 0; /* one part or one thread: plain streaming does as well */
    parts_job j;
    memset(&j, 0, sizeof j);
    j.z = z;
    j.fd = fd;
    j.what = what;
    j.size = size;
    j.nparts = (size + PART_SIZE - 1) / PART_SIZE;
    j.window = n + 1;
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.cv, NULL);
    j.bufs = uw_calloc((size_t)j.window, sizeof *j.bufs);
    j.done = uw_calloc((size_t)j.window, sizeof *j.done);
    pthread_t t[WORKERS_MAX];
    int started = 0;
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[started], NULL, parts_worker, &j) == 0)
            started++;
    int rc = side ? side->run(side->arg, fd, size, what, err) : 0;
    if (rc < 0) {
        uw_err stop = *err;
        parts_fail(&j, &stop);
    }
    if (!started)
        parts_worker(&j);
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    if (rc == 0 && j.failed) {
        *err = j.err;
        rc = -1;
    }
    if (rc == 0 && j.next_flush != j.nparts)
        rc = uw_fail(err, UW_E_INTERNAL, "parallel compression stopped after %llu of %llu parts",
                     (unsigned long long)j.next_flush, (unsigned long long)j.nparts);
    for (int i = 0; i < j.window; i++)
        uw_buf_free(&j.bufs[i]);
    free(j.bufs);
    free(j.done);
    pthread_cond_destroy(&j.cv);
    pthread_mutex_destroy(&j.mu);
    z->fed_by_fd = true;
    return rc < 0 ? -1 : 1;
}

static void zstd_destroy(uw_sink *s)
{
    zstd_sink *z = (zstd_sink *)s;
    /* Only a context created and freed in the same thread may be cached
     * there; a multi-threaded one keeps its own worker pool: freed. */
    if (z->shared)
        cctx_give(z->cctx);
    else
        ZSTD_freeCCtx(z->cctx);
    if (z->dctx)
        dctx_give(z->dctx);
    free(z->out);
    free(z);
}

static uw_sink *zstd_compress(int level, int threads, uw_sink *next)
{
    zstd_sink *z = uw_calloc(1, sizeof *z);
    z->base = (uw_sink){zstd_cwrite, zstd_cfinish, zstd_destroy, next, false, zstd_from_fd};
    z->level = level;
    z->threads = threads;
    z->shared = threads <= 1;
    z->cctx = z->shared ? cctx_take() : ZSTD_createCCtx();
    if (!z->cctx)
        abort();
    ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
    /* The checksum would duplicate our SHA-256 of the original content. */
    ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 0);
    /* zstd's own threads, for input that cannot take zstd_from_fd (a stream,
     * or a file too small for parts): 1 MiB jobs keep its buffers smallest.
     * An error just means libzstd was built without threads. */
    if (threads > 1 && !ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, threads)))
        ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, 1 << 20);
    z->out_size = ZSTD_CStreamOutSize();
    z->out = uw_malloc(z->out_size);
    return &z->base;
}

static int zstd_dwrite(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    zstd_sink *z = (zstd_sink *)s;
    ZSTD_inBuffer in = {buf, len, 0};
    while (in.pos < in.size) {
        ZSTD_outBuffer out = {z->out, z->out_size, 0};
        size_t r = ZSTD_decompressStream(z->dctx, &out, &in);
        if (ZSTD_isError(r))
            return uw_fail(err, UW_E_CORRUPT, "zstd data is corrupt: %s", ZSTD_getErrorName(r));
        z->frame_done = r == 0;
        if (out.pos && uw_sink_write(s->next, z->out, out.pos, err) < 0)
            return -1;
    }
    /* Drain output buffered inside zstd when the input ran out. */
    for (;;) {
        ZSTD_outBuffer out = {z->out, z->out_size, 0};
        ZSTD_inBuffer none = {NULL, 0, 0};
        size_t r = ZSTD_decompressStream(z->dctx, &out, &none);
        if (ZSTD_isError(r))
            return uw_fail(err, UW_E_CORRUPT, "zstd data is corrupt: %s", ZSTD_getErrorName(r));
        if (r == 0)
            z->frame_done = true;
        if (!out.pos)
            break;
        if (uw_sink_write(s->next, z->out, out.pos, err) < 0)
            return -1;
    }
    return 0;
}

static int zstd_dfinish(uw_sink *s, uw_err *err)
{
    if (!((zstd_sink *)s)->frame_done)
        return uw_fail(err, UW_E_CORRUPT, "zstd data is truncated");
    return uw_sink_finish(s->next, err);
}

static uw_sink *zstd_decompress(uw_sink *next)
{
    zstd_sink *z = uw_calloc(1, sizeof *z);
    z->base = (uw_sink){zstd_dwrite, zstd_dfinish, zstd_destroy, next, false, NULL};
    z->dctx = dctx_take();
    z->out_size = ZSTD_DStreamOutSize();
    z->out = uw_malloc(z->out_size);
    return &z->base;
}

/* The compressors. Their names are the values compress-type accepts
 * (registered below), in this order (the first is the one --help and
 * messages list first): adding one here adds it to the option. */
static const uw_compressor compressors[] = {
    {"zstd", 1, ".zst", zstd_compress, zstd_decompress},
    {"none", 0, "", none_compress, none_new},
};

/* Before main(), so that the options can be validated when they are read
 * (core/options.h explains why core cannot ask us). */
__attribute__((constructor)) void uw_compress_register_names(void)
{
    for (size_t i = 0; i < sizeof compressors / sizeof compressors[0]; i++)
        uw_opt_register_value(UW_OPT_COMPRESS_TYPE, compressors[i].name);
}

const uw_compressor *uw_compressor_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof compressors / sizeof compressors[0]; i++)
        if (strcmp(compressors[i].name, name) == 0)
            return &compressors[i];
    return NULL;
}

const uw_compressor *uw_compressor_by_id(uint8_t id)
{
    for (size_t i = 0; i < sizeof compressors / sizeof compressors[0]; i++)
        if (compressors[i].id == id)
            return &compressors[i];
    return NULL;
}
