/* The object decoder (common/io/object.c with compress.c, crypto.c), shared by
 * fuzz_object.c (plain) and fuzz_object_enc.c (AES-256-GCM, a fixed key). */
#ifndef UW_FUZZ_OBJECT_H
#define UW_FUZZ_OBJECT_H

#include "fuzz.h"
#include "io/object.h"

/* The header and trailer end with 8 bytes of the SHA-256 of the bytes before
 * them (header: 44 of 52, trailer: 52 of 60). */
static void reseal(uint8_t *b, size_t len)
{
    uint8_t d[32];
    if (len >= UW_OBJ_HEADER_LEN) {
        uw_sha256(b, 44, d);
        memcpy(b + 44, d, 8);
    }
    if (len >= UW_OBJ_HEADER_LEN + UW_OBJ_TRAILER_LEN) {
        uint8_t *t = b + len - UW_OBJ_TRAILER_LEN;
        uw_sha256(t, 52, d);
        memcpy(t + 52, d, 8);
    }
}

/* The destination refuses more than 1 MiB: without a cap of its own, the
 * decoder expands a 16 KiB zstd stream to 500 MiB before the trailer's size
 * check can fail it (seed bomb-500MiB-of-zeros; issue 10, item 6), and every
 * such input would be a timeout here. The seeds decode to far less. */
#define DEST_MAX (1u << 20)
typedef struct {
    uw_sink base;
    uint64_t n;
} cap_sink;

static int cap_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    (void)buf;
    cap_sink *c = (cap_sink *)s;
    c->n += len;
    if (c->n > DEST_MAX)
        return uw_fail(err, UW_E_CORRUPT, "more than %u bytes", DEST_MAX);
    return 0;
}

static int cap_finish(uw_sink *s, uw_err *err)
{
    (void)s;
    (void)err;
    return 0;
}

static void cap_destroy(uw_sink *s)
{
    free(s);
}

static uw_sink *cap_sink_new(void)
{
    cap_sink *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->base = (uw_sink){cap_write, cap_finish, cap_destroy, NULL, false, NULL};
    return &c->base;
}

/* Feed the object in pieces of varying sizes, as a storage read delivers it,
 * so boundaries fall everywhere (header, chunks, trailer). */
static void decode(const uw_key *key, const uint8_t *b, size_t len, uint8_t step_seed)
{
    static const size_t steps[] = {1, 7, 52, 60, 113, 4096, 65536};
    /* Unbound (so that mutations reach the decoder), capped like any real read. */
    uw_obj_read_opts o = {0, NULL, key, "fuzz", false, NULL, 1u << 20, false};
    uw_sink *r = uw_object_reader(&o, cap_sink_new(), NULL);
    uw_err err;
    int rc = 0;
    size_t i = step_seed % 7;
    for (size_t off = 0; off < len && rc == 0; i++) {
        size_t n = steps[i % 7];
        if (n > len - off)
            n = len - off;
        rc = uw_sink_write(r, b + off, n, &err);
        off += n;
    }
    if (rc == 0)
        rc = uw_sink_finish(r, &err);
    if (rc < 0)
        fuzz_check_err(&err);
    uw_sink_free(r);
}

static void fuzz_object(const uw_key *key, const uint8_t *data, size_t size)
{
    uint8_t step = size ? data[size / 2] : 0;
    decode(key, data, size, step);
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    reseal(copy, size);
    decode(key, copy, size, step);
    free(copy);
}

#endif
