#include "compress.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* ---- none ---- */
typedef struct {
    uw_sink base;
} pass_sink;

static int pass_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    return uw_sink_write(s->next, buf, len, err);
}

static int pass_finish(uw_sink *s, uw_err *err) { return uw_sink_finish(s->next, err); }
static void pass_destroy(uw_sink *s) { free(s); }

static uw_sink *none_new(uw_sink *next)
{
    pass_sink *p = uw_calloc(1, sizeof *p);
    p->base = (uw_sink){pass_write, pass_finish, pass_destroy, next, false};
    return &p->base;
}

static uw_sink *none_compress(int level, int threads, uw_sink *next)
{
    (void)level;
    (void)threads;
    return none_new(next);
}

/* ---- zstd ---- */
typedef struct {
    uw_sink base;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *out;
    size_t out_size;
    bool frame_done; /* decompression: last frame ended cleanly */
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
    if (zstd_cwrite_mode((zstd_sink *)s, NULL, 0, ZSTD_e_end, err) < 0)
        return -1;
    return uw_sink_finish(s->next, err);
}

static void zstd_destroy(uw_sink *s)
{
    zstd_sink *z = (zstd_sink *)s;
    ZSTD_freeCCtx(z->cctx);
    ZSTD_freeDCtx(z->dctx);
    free(z->out);
    free(z);
}

static uw_sink *zstd_compress(int level, int threads, uw_sink *next)
{
    zstd_sink *z = uw_calloc(1, sizeof *z);
    z->base = (uw_sink){zstd_cwrite, zstd_cfinish, zstd_destroy, next, false};
    z->cctx = ZSTD_createCCtx();
    if (!z->cctx)
        abort();
    ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
    /* The checksum would duplicate our SHA-256 of the original content. */
    ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 0);
    /* 1 MiB jobs: measured on real WAL, the same ratio as one thread (zstd
     * overlaps each job with the previous one's window) and the least memory
     * (peak RSS 19 MiB against 32 MiB with 4 MiB jobs). An error just means
     * libzstd was built without threads. */
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
    z->base = (uw_sink){zstd_dwrite, zstd_dfinish, zstd_destroy, next, false};
    z->dctx = ZSTD_createDCtx();
    if (!z->dctx)
        abort();
    z->out_size = ZSTD_DStreamOutSize();
    z->out = uw_malloc(z->out_size);
    return &z->base;
}

static const uw_compressor compressors[] = {
    {"none", 0, "", none_compress, none_new},
    {"zstd", 1, ".zst", zstd_compress, zstd_decompress},
};

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
