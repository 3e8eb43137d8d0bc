/* The repository object format: writer/reader round trips and every way an
 * object can be damaged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <zstd.h>

#include "io/compress.h"
#include "io/crypto.h"
#include "io/object.h"
#include "io/sink.h"
#include "unit.h"

/* A destination that records what reached it and whether it was finished. */
typedef struct {
    uw_buf data;
    int finished, destroyed;
    size_t fail_after; /* > 0: writes past this many bytes fail */
} rec_state;
typedef struct {
    uw_sink base;
    rec_state *st;
} rec_sink;

static int rec_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    (void)err;
    rec_state *st = ((rec_sink *)s)->st;
    if (st->finished)
        return uw_fail(err, UW_E_INTERNAL, "write after finish");
    if (st->fail_after && st->data.len + len > st->fail_after)
        return uw_fail(err, UW_E_FILE, "no space left on the test device");
    uw_buf_append(&st->data, buf, len);
    return 0;
}
static int rec_finish(uw_sink *s, uw_err *err)
{
    (void)err;
    ((rec_sink *)s)->st->finished++;
    return 0;
}
static void rec_destroy(uw_sink *s)
{
    ((rec_sink *)s)->st->destroyed++;
    free(s);
}
static uw_sink *rec_new(rec_state *st)
{
    memset(st, 0, sizeof *st);
    rec_sink *r = uw_calloc(1, sizeof *r);
    r->base = (uw_sink){rec_write, rec_finish, rec_destroy, NULL, false, NULL};
    r->st = st;
    return &r->base;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(next_rand() >> 32);
}
static void fill_text(uint8_t *p, size_t n)
{
    size_t off = 0;
    for (unsigned line = 0; off < n; line++) {
        char l[96];
        int k = snprintf(l, sizeof l, "%08u INSERT INTO t VALUES (%u, 'row %u of the table');\n",
                         line, line * 7, line % 97);
        for (int i = 0; i < k && off < n; i++)
            p[off++] = (uint8_t)l[i];
    }
}

static int feed(uw_sink *s, const uint8_t *in, size_t len, size_t piece, uw_err *err)
{
    int rc = 0;
    if (!piece)
        piece = len ? len : 1;
    for (size_t off = 0; off < len && rc == 0; off += piece)
        rc = uw_sink_write(s, in + off, len - off < piece ? len - off : piece, err);
    if (rc == 0)
        rc = uw_sink_finish(s, err);
    uw_sink_free(s);
    return rc;
}

typedef struct {
    const uw_compressor *comp;
    const uw_key *key;
    uint64_t sysid;
    const uint8_t *expect;
    uw_obj_kind kind;
    int threads; /* compression threads */
} wopts;

/* Write an object; out receives its bytes. Returns rc; st tells whether dest was finished. */
static int write_obj(const wopts *o, const uint8_t *data, size_t len, size_t piece, uw_buf *out,
                     uw_digest *dg, rec_state *st, uw_err *err)
{
    uw_obj_write_opts opts = {o->kind ? o->kind : UW_OBJ_WAL,
                              o->sysid,
                              o->comp,
                              3,
                              o->threads,
                              o->key,
                              o->expect,
                              "unit-object"};
    uw_err_clear(err);
    uw_sink *w = uw_object_writer(&opts, rec_new(st), dg, err);
    if (!w)
        return -1;
    int rc = feed(w, data, len, piece, err);
    *out = st->data;
    st->data = (uw_buf){0};
    return rc;
}

static int read_obj(const uint8_t *obj, size_t len, const uw_key *key, uint64_t sysid,
                    const uint8_t *expect, size_t piece, rec_state *st, uw_digest *dg, uw_err *err)
{
    uw_obj_read_opts opts = {sysid, expect, key, "unit-object", false, "unit-object", 0, false};
    uw_err_clear(err);
    uw_sink *r = uw_object_reader(&opts, rec_new(st), dg);
    int rc = feed(r, obj, len, piece, err);
    CHECKF(st->destroyed == 1, "reader destroyed its destination %d times", st->destroyed);
    return rc;
}

static uw_key key_a, key_b;

static const char *combo(const uw_compressor *c, const uw_key *k)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%s%s", c->name, k ? "+aes" : "");
    return buf;
}

static void test_round_trips(void)
{
    uw_t_section("round trips (none/zstd x plain/aes x sizes)");
    const uw_compressor *comps[] = {uw_compressor_by_name("none"), uw_compressor_by_name("zstd")};
    CHECK(comps[0] && comps[1]);
    if (!comps[0] || !comps[1])
        return;
    CHECK_STR(comps[1]->name, "zstd");
    CHECK(uw_compressor_by_id(comps[1]->id) == comps[1]);
    CHECK(uw_compressor_by_name("lz4") == NULL);
    const uw_key *keys[] = {NULL, &key_a};
    const size_t sizes[] = {0, 1, 65535, 65536, 65537, 3 * 65536, (1u << 20) + 7};
    const size_t max = (1u << 20) + 7;
    uint8_t *rnd = malloc(max), *txt = malloc(max);
    fill_random(rnd, max);
    fill_text(txt, max);
    uw_err err;
    for (int ci = 0; ci < 2; ci++)
        for (int ki = 0; ki < 2; ki++)
            for (int di = 0; di < 2; di++)
                for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                    const uint8_t *data = di ? txt : rnd;
                    size_t n = sizes[si];
                    char what[128];
                    snprintf(what, sizeof what, "%s %s %zu", combo(comps[ci], keys[ki]),
                             di ? "text" : "random", n);
                    /* Odd sizes also go through zstd's multi-threaded mode. */
                    wopts o = {comps[ci], keys[ki],   6543210987654321ULL,
                               NULL,      UW_OBJ_WAL, si % 2 ? 3 : 1};
                    uw_buf obj;
                    uw_digest wd;
                    rec_state st;
                    int rc = write_obj(&o, data, n, si % 2 ? 4093 : 0, &obj, &wd, &st, &err);
                    if (!CHECKF(rc == 0, "%s: write: %s", what, err.msg)) {
                        uw_buf_free(&obj);
                        continue;
                    }
                    CHECKF(st.finished == 1 && st.destroyed == 1, "%s: dest %d/%d", what,
                           st.finished, st.destroyed);
                    uint8_t sha[32];
                    uw_sha256(data, n, sha);
                    CHECKF(wd.size == n && memcmp(wd.sha256, sha, 32) == 0, "%s: writer digest",
                           what);
                    /* Framing: skippable frame, "UEW1", compressor and cipher ids. */
                    CHECKF(obj.len >= UW_OBJ_HEADER_LEN + UW_OBJ_TRAILER_LEN &&
                               memcmp(obj.data, "\x5E\x2A\x4D\x18", 4) == 0 &&
                               memcmp(obj.data + 8, "UEW2", 4) == 0 && obj.data[12] == UW_OBJ_WAL &&
                               obj.data[13] == comps[ci]->id &&
                               obj.data[14] == (keys[ki] ? 1 : 0) &&
                               memcmp(obj.data + obj.len - 52, "UEWT", 4) == 0,
                           "%s: framing", what);
                    if (!keys[ki] && ci == 0)
                        CHECKF(obj.len == n + UW_OBJ_HEADER_LEN + UW_OBJ_TRAILER_LEN &&
                                   (n == 0 || memcmp(obj.data + UW_OBJ_HEADER_LEN, data, n) == 0),
                               "%s: plain payload is not the content", what);
                    if (keys[ki] && n >= 32)
                        CHECKF(!memmem(obj.data, obj.len, data, 32), "%s: plaintext visible", what);
                    if (di && ci == 1 && n > 65536)
                        CHECKF(obj.len < n / 4, "%s: text not compressed (%zu)", what, obj.len);
                    /* An unencrypted zstd object is a valid .zst file. */
                    if (!keys[ki] && ci == 1) {
                        uint8_t *plain = malloc(n + 1);
                        size_t r = ZSTD_decompress(plain, n + 1, obj.data, obj.len);
                        CHECKF(!ZSTD_isError(r) && r == n && memcmp(plain, data, n) == 0,
                               "%s: ZSTD_decompress: %s (%zu)", what,
                               ZSTD_isError(r) ? ZSTD_getErrorName(r) : "ok", r);
                        free(plain);
                    }
                    const size_t pieces[] = {0, 1, 7, 4096, 52, 60, 65536 + 16};
                    for (size_t pi = 0; pi < sizeof pieces / sizeof pieces[0]; pi++) {
                        if (pieces[pi] == 1 && n > 3 * 65536)
                            continue; /* byte-wise reading of 1 MiB is done below, once */
                        rec_state rs;
                        uw_digest rd;
                        rc = read_obj(obj.data, obj.len, keys[ki], 6543210987654321ULL, sha,
                                      pieces[pi], &rs, &rd, &err);
                        CHECKF(rc == 0, "%s piece %zu: read: %s", what, pieces[pi], err.msg);
                        CHECKF(rs.data.len == n && (n == 0 || memcmp(rs.data.data, data, n) == 0),
                               "%s piece %zu: content differs (%zu bytes)", what, pieces[pi],
                               rs.data.len);
                        CHECKF(rc != 0 || rs.finished == 1, "%s piece %zu: finished %d", what,
                               pieces[pi], rs.finished);
                        CHECKF(rc != 0 || (rd.size == n && memcmp(rd.sha256, sha, 32) == 0),
                               "%s piece %zu: digest", what, pieces[pi]);
                        uw_buf_free(&rs.data);
                    }
                    uw_buf_free(&obj);
                }

    /* One 1 MiB object fed byte by byte through decryption and zstd. */
    wopts o = {comps[1], &key_a, 0, NULL, UW_OBJ_FILE, 1};
    uw_buf obj;
    uw_digest wd;
    rec_state st;
    CHECK_OK(write_obj(&o, rnd, max, 1, &obj, &wd, &st, &err) == 0, err);
    rec_state rs;
    int rc = read_obj(obj.data, obj.len, &key_a, 0, NULL, 1, &rs, NULL, &err);
    CHECKF(rc == 0 && rs.data.len == max && memcmp(rs.data.data, rnd, max) == 0 && rs.finished == 1,
           "1 MiB byte-wise: %s", err.msg);
    uw_buf_free(&rs.data);
    uw_buf_free(&obj);

    /* Encryption uses a fresh salt per object. */
    wopts oe = {comps[0], &key_a, 0, NULL, UW_OBJ_WAL, 1};
    uw_buf o1, o2;
    CHECK_OK(write_obj(&oe, txt, 1000, 0, &o1, &wd, &st, &err) == 0, err);
    CHECK_OK(write_obj(&oe, txt, 1000, 0, &o2, &wd, &st, &err) == 0, err);
    CHECKF(o1.len == o2.len && memcmp(o1.data + 28, o2.data + 28, 16) != 0 &&
               memcmp(o1.data + UW_OBJ_HEADER_LEN, o2.data + UW_OBJ_HEADER_LEN, 100) != 0,
           "two encryptions of the same content share salt or ciphertext");
    uw_buf_free(&o1);
    uw_buf_free(&o2);
    free(rnd);
    free(txt);
}

typedef struct {
    const uw_compressor *comp;
    const uw_key *key;
    uint8_t *data;
    size_t n;
    uint8_t sha[32];
    uw_buf obj;
} sample;

static void make_sample(sample *s, const uw_compressor *c, const uw_key *k, bool text, size_t n,
                        uint64_t sysid)
{
    uw_err err;
    s->comp = c;
    s->key = k;
    s->n = n;
    s->data = malloc(n ? n : 1);
    if (text)
        fill_text(s->data, n);
    else
        fill_random(s->data, n);
    uw_sha256(s->data, n, s->sha);
    wopts o = {c, k, sysid, NULL, UW_OBJ_WAL, 1};
    uw_digest wd;
    rec_state st;
    if (write_obj(&o, s->data, n, 0, &s->obj, &wd, &st, &err) < 0) {
        fprintf(stderr, "cannot write sample: %s\n", err.msg);
        exit(2);
    }
}

static void free_sample(sample *s)
{
    free(s->data);
    uw_buf_free(&s->obj);
}

/* Read a damaged copy; it must fail with one of the codes and never finish dest. */
/* A plain zstd payload may change in ways that do not change the decoded
 * content (e.g. a larger window in the frame header, an extra skippable frame):
 * the trailer's SHA-256 covers the content, not the compressed bytes. Where
 * allow_identical is set such objects may be accepted if, and only if, the
 * exact original content is delivered. */
static bool allow_identical;
static int harmless;

static void expect_reject(const sample *s, const uint8_t *obj, size_t len, const uw_key *key,
                          size_t piece, uw_code c1, uw_code c2, const char *fmt, size_t arg)
{
    char what[160];
    snprintf(what, sizeof what, fmt, arg);
    rec_state rs;
    uw_err err;
    uw_digest rd = {{0}, 12345};
    int rc = read_obj(obj, len, key, 0, NULL, piece, &rs, &rd, &err);
    if (rc == 0 && allow_identical) {
        /* Accepted: only fine if exactly the original content was delivered. */
        CHECKF(rs.finished == 1 && rs.data.len == s->n && memcmp(rs.data.data, s->data, s->n) == 0,
               "%s %s: accepted with different content", combo(s->comp, s->key), what);
        harmless++;
        printf("  note: %s %s: accepted, exact original content delivered\n",
               combo(s->comp, s->key), what);
        uw_buf_free(&rs.data);
        return;
    }
    CHECKF(rc < 0 && (err.code == c1 || err.code == c2),
           "%s %s: rc %d, code %s (%d), want %s/%s: %s", combo(s->comp, s->key), what, rc,
           uw_code_name(err.code), (int)err.code, uw_code_name(c1), uw_code_name(c2), err.msg);
    CHECKF(rs.finished == 0, "%s %s: destination finished despite the error",
           combo(s->comp, s->key), what);
    CHECKF(rd.size == 12345, "%s %s: digest reported despite the error", combo(s->comp, s->key),
           what);
    CHECKF(err.msg[0] != '\0', "%s %s: empty error message", combo(s->comp, s->key), what);
    uw_buf_free(&rs.data);
}

static void fix_header_check(uint8_t *hdr)
{
    uint8_t d[32];
    uw_sha256(hdr, 76, d);
    memcpy(hdr + 76, d, 8);
}

static void section_for(const char *what, int ci, int ki, int text)
{
    char name[128];
    snprintf(name, sizeof name, "%s (%s%s, %s)", what, ci ? "zstd" : "none", ki ? "+aes" : "",
             text ? "text" : "random");
    uw_t_section(name);
}

static void test_damage(void)
{
    const uw_compressor *none = uw_compressor_by_name("none");
    const uw_compressor *zstd = uw_compressor_by_name("zstd");
    const uw_compressor *comps[] = {none, zstd};
    const uw_key *keys[] = {NULL, &key_a};
    for (int ci = 0; ci < 2; ci++)
        for (int ki = 0; ki < 2; ki++)
            for (int text = 0; text < 2; text++) {
                sample s;
                make_sample(&s, comps[ci], keys[ki], text, 3 * 65536 + 5, 0);
                const uw_code bad_payload = keys[ki] ? UW_E_DECRYPT : UW_E_CORRUPT;
                const uw_code trunc_alt = keys[ki] ? UW_E_DECRYPT : UW_E_CORRUPT;
                size_t len = s.obj.len;
                uint8_t *copy = malloc(len + 64);

                section_for("truncated objects", ci, ki, text);
                size_t cuts[] = {0,        1,        8,        12,       51,      52,
                                 53,       60,       111,      112,      len / 2, len - 61,
                                 len - 60, len - 59, len - 52, len - 30, len - 2, len - 1};
                for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
                    for (size_t piece = 0; piece <= 7; piece += 7)
                        expect_reject(&s, s.obj.data, cuts[i], s.key, piece, UW_E_CORRUPT,
                                      trunc_alt, "cut at %zu", cuts[i]);
                for (size_t cut = 0; cut < len; cut += len / 41 + 1)
                    expect_reject(&s, s.obj.data, cut, s.key, 4096, UW_E_CORRUPT, trunc_alt,
                                  "cut at %zu", cut);
                /* The header alone, then the header and trailer without payload. */
                memcpy(copy, s.obj.data, 52);
                memcpy(copy + 52, s.obj.data + len - 60, 60);
                expect_reject(&s, copy, 112, s.key, 0, UW_E_CORRUPT, trunc_alt,
                              "payload removed%.0zu", (size_t)0);
                /* Bytes appended after the trailer. */
                memcpy(copy, s.obj.data, len);
                copy[len] = 0;
                expect_reject(&s, copy, len + 1, s.key, 0, UW_E_CORRUPT, UW_E_CORRUPT,
                              "1 byte appended%.0zu", (size_t)0);
                memcpy(copy + len, s.obj.data + len - 60, 60);
                allow_identical = ci == 1 && !keys[ki];
                expect_reject(&s, copy, len + 60, s.key, 0, UW_E_CORRUPT, trunc_alt,
                              "trailer duplicated%.0zu", (size_t)0);
                allow_identical = false;

                section_for("flipped header bytes", ci, ki, text);
                for (size_t i = 0; i < UW_OBJ_HEADER_LEN; i++) {
                    memcpy(copy, s.obj.data, len);
                    copy[i] ^= 0x01;
                    if (i == 11) /* the format version byte */
                        expect_reject(&s, copy, len, s.key, 0, UW_E_FORMAT_VERSION, UW_E_CORRUPT,
                                      "flip header byte %zu", i);
                    else
                        expect_reject(&s, copy, len, s.key, i % 3 ? 0 : 5, UW_E_CORRUPT,
                                      UW_E_CORRUPT, "flip header byte %zu", i);
                }

                section_for("flipped payload bytes", ci, ki, text);
                allow_identical = ci == 1 && !keys[ki];
                size_t payload = len - UW_OBJ_HEADER_LEN - UW_OBJ_TRAILER_LEN;
                size_t pos[] = {0,
                                1,
                                2,
                                3,
                                4,
                                5,
                                6,
                                7,
                                8,
                                9,
                                10,
                                11,
                                12,
                                13,
                                14,
                                15,
                                payload / 3,
                                payload / 2,
                                payload - 17,
                                payload - 16,
                                payload - 2,
                                payload - 1};
                for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
                    memcpy(copy, s.obj.data, len);
                    copy[UW_OBJ_HEADER_LEN + pos[i]] ^= 0x20;
                    expect_reject(&s, copy, len, s.key, i % 2 ? 4096 : 0, bad_payload, bad_payload,
                                  "flip payload byte %zu", pos[i]);
                }
                for (size_t p = 17; p < payload; p += payload / 29 + 1) {
                    memcpy(copy, s.obj.data, len);
                    copy[UW_OBJ_HEADER_LEN + p] ^= 0xFF;
                    expect_reject(&s, copy, len, s.key, 0, bad_payload, bad_payload,
                                  "flip payload byte %zu", p);
                }

                allow_identical = false;
                section_for("flipped trailer bytes", ci, ki, text);
                for (size_t i = 0; i < UW_OBJ_TRAILER_LEN; i++) {
                    memcpy(copy, s.obj.data, len);
                    copy[len - UW_OBJ_TRAILER_LEN + i] ^= 0x04;
                    expect_reject(&s, copy, len, s.key, i % 2 ? 7 : 0, UW_E_CORRUPT, UW_E_CORRUPT,
                                  "flip trailer byte %zu", i);
                }
                free(copy);
                free_sample(&s);
            }

    uw_t_section("garbage input");
    sample s;
    make_sample(&s, none, NULL, false, 10, 0);
    uint8_t junk[4096];
    fill_random(junk, sizeof junk);
    const size_t junk_sizes[] = {0, 1, 10, 51, 52, 53, 111, 112, 113, 1000, 4096};
    for (size_t i = 0; i < sizeof junk_sizes / sizeof junk_sizes[0]; i++) {
        expect_reject(&s, junk, junk_sizes[i], NULL, 0, UW_E_CORRUPT, UW_E_CORRUPT,
                      "%zu random bytes", junk_sizes[i]);
        expect_reject(&s, junk, junk_sizes[i], &key_a, 3, UW_E_CORRUPT, UW_E_CORRUPT,
                      "%zu random bytes (with key)", junk_sizes[i]);
    }
    /* Zeros, and a zstd skippable frame that is not ours. */
    memset(junk, 0, sizeof junk);
    expect_reject(&s, junk, 500, NULL, 0, UW_E_CORRUPT, UW_E_CORRUPT, "%zu zero bytes",
                  (size_t)500);
    memcpy(junk, "\x5E\x2A\x4D\x18\x2C\x00\x00\x00XXXX", 12);
    expect_reject(&s, junk, 500, NULL, 0, UW_E_CORRUPT, UW_E_CORRUPT, "foreign frame%.0zu",
                  (size_t)0);
    free_sample(&s);
}

static void test_checks(void)
{
    const uw_compressor *none = uw_compressor_by_name("none");
    const uw_compressor *zstd = uw_compressor_by_name("zstd");
    uw_err err;
    rec_state rs;
    uw_digest rd;

    uw_t_section("keys");
    sample se;
    make_sample(&se, zstd, &key_a, true, 100000, 0);
    expect_reject(&se, se.obj.data, se.obj.len, &key_b, 0, UW_E_DECRYPT, UW_E_DECRYPT,
                  "wrong key%.0zu", (size_t)0);
    expect_reject(&se, se.obj.data, se.obj.len, &key_b, 1, UW_E_DECRYPT, UW_E_DECRYPT,
                  "wrong key, byte-wise%.0zu", (size_t)0);
    expect_reject(&se, se.obj.data, se.obj.len, NULL, 0, UW_E_CRYPTO, UW_E_CRYPTO, "no key%.0zu",
                  (size_t)0);
    expect_reject(&se, se.obj.data, se.obj.len, NULL, 1, UW_E_CRYPTO, UW_E_CRYPTO,
                  "no key, byte-wise%.0zu", (size_t)0);
    /* An encrypted object that is tiny. */
    sample se0;
    make_sample(&se0, none, &key_a, false, 0, 0);
    CHECK_INT(se0.obj.len, UW_OBJ_HEADER_LEN + UW_GCM_TAG_LEN + UW_OBJ_TRAILER_LEN);
    expect_reject(&se0, se0.obj.data, se0.obj.len, &key_b, 0, UW_E_DECRYPT, UW_E_DECRYPT,
                  "empty content, wrong key%.0zu", (size_t)0);
    CHECK_OK(read_obj(se0.obj.data, se0.obj.len, &key_a, 0, NULL, 0, &rs, &rd, &err) == 0, err);
    CHECK(rs.finished == 1 && rs.data.len == 0 && rd.size == 0);
    uw_buf_free(&rs.data);
    /* Encrypted objects carry the header as AAD: a header fixed up to still
     * pass its own check, e.g. with another kind, is rejected by GCM. */
    uint8_t *copy = malloc(se.obj.len);
    memcpy(copy, se.obj.data, se.obj.len);
    copy[12] = UW_OBJ_FILE;
    fix_header_check(copy);
    expect_reject(&se, copy, se.obj.len, &key_a, 0, UW_E_DECRYPT, UW_E_DECRYPT,
                  "re-signed header, other kind%.0zu", (size_t)0);
    memcpy(copy, se.obj.data, se.obj.len);
    copy[30] ^= 1; /* salt: another object key */
    fix_header_check(copy);
    expect_reject(&se, copy, se.obj.len, &key_a, 0, UW_E_DECRYPT, UW_E_DECRYPT,
                  "re-signed header, other salt%.0zu", (size_t)0);
    memcpy(copy, se.obj.data, se.obj.len);
    copy[24] = 0; /* chunk size 0 */
    copy[25] = 0;
    copy[26] = 0;
    copy[27] = 0;
    fix_header_check(copy);
    expect_reject(&se, copy, se.obj.len, &key_a, 0, UW_E_CORRUPT, UW_E_DECRYPT, "chunk size 0%.0zu",
                  (size_t)0);
    memcpy(copy, se.obj.data, se.obj.len);
    copy[26] = 2; /* chunk size 128 KiB */
    fix_header_check(copy);
    expect_reject(&se, copy, se.obj.len, &key_a, 0, UW_E_DECRYPT, UW_E_CORRUPT,
                  "other chunk size%.0zu", (size_t)0);
    free(copy);

    uw_t_section("format version and unknown ids");
    sample sp;
    make_sample(&sp, zstd, NULL, true, 5000, 77);
    copy = malloc(sp.obj.len);
    memcpy(copy, sp.obj.data, sp.obj.len);
    copy[11] = '3';
    fix_header_check(copy);
    expect_reject(&sp, copy, sp.obj.len, NULL, 0, UW_E_FORMAT_VERSION, UW_E_FORMAT_VERSION,
                  "version 3%.0zu", (size_t)0);
    memcpy(copy, sp.obj.data, sp.obj.len);
    copy[11] = '3'; /* without fixing the check: version or corrupt */
    expect_reject(&sp, copy, sp.obj.len, NULL, 0, UW_E_FORMAT_VERSION, UW_E_CORRUPT,
                  "version 3 (unsigned)%.0zu", (size_t)0);
    /* The previous format (version 1) is refused as a version, never misread. */
    memcpy(copy, sp.obj.data, sp.obj.len);
    copy[11] = '1';
    fix_header_check(copy);
    expect_reject(&sp, copy, sp.obj.len, NULL, 0, UW_E_FORMAT_VERSION, UW_E_FORMAT_VERSION,
                  "version 1%.0zu", (size_t)0);
    memcpy(copy, sp.obj.data, sp.obj.len);
    copy[13] = 0x7F;
    fix_header_check(copy);
    expect_reject(&sp, copy, sp.obj.len, NULL, 0, UW_E_FORMAT_VERSION, UW_E_FORMAT_VERSION,
                  "compressor 0x7F%.0zu", (size_t)0);
    memcpy(copy, sp.obj.data, sp.obj.len);
    copy[14] = 9;
    fix_header_check(copy);
    expect_reject(&sp, copy, sp.obj.len, &key_a, 0, UW_E_FORMAT_VERSION, UW_E_FORMAT_VERSION,
                  "cipher 9%.0zu", (size_t)0);
    /* A zstd object relabelled as uncompressed fails verification. */
    memcpy(copy, sp.obj.data, sp.obj.len);
    copy[13] = none->id;
    fix_header_check(copy);
    expect_reject(&sp, copy, sp.obj.len, NULL, 0, UW_E_CORRUPT, UW_E_CORRUPT,
                  "relabelled compressor%.0zu", (size_t)0);
    free(copy);

    uw_t_section("expected system id and digest");
    CHECK_OK(read_obj(sp.obj.data, sp.obj.len, NULL, 77, sp.sha, 0, &rs, &rd, &err) == 0, err);
    CHECK(rs.finished == 1);
    uw_buf_free(&rs.data);
    CHECK_OK(read_obj(sp.obj.data, sp.obj.len, NULL, 0, NULL, 0, &rs, &rd, &err) == 0, err);
    uw_buf_free(&rs.data);
    CHECK_FAIL_CODE(read_obj(sp.obj.data, sp.obj.len, NULL, 78, NULL, 0, &rs, &rd, &err) < 0, err,
                    UW_E_FOREIGN);
    CHECK_INT(rs.finished, 0);
    CHECK_CONTAINS(err.msg, "77");
    CHECK_CONTAINS(err.msg, "78");
    uw_buf_free(&rs.data);
    CHECK_FAIL_CODE(read_obj(sp.obj.data, sp.obj.len, NULL, 78, NULL, 1, &rs, &rd, &err) < 0, err,
                    UW_E_FOREIGN);
    CHECK_INT(rs.finished, 0);
    uw_buf_free(&rs.data);
    /* System id 0 in a header is not a wildcard: a stanza that expects its
     * own id refuses it, encrypted or not (a relabelled header that passes
     * its own check included). Only a reader that expects no id accepts it. */
    CHECK_FAIL_CODE(read_obj(se0.obj.data, se0.obj.len, &key_a, 78, NULL, 0, &rs, &rd, &err) < 0,
                    err, UW_E_FOREIGN);
    CHECK_INT(rs.finished, 0);
    uw_buf_free(&rs.data);
    copy = malloc(sp.obj.len);
    memcpy(copy, sp.obj.data, sp.obj.len);
    memset(copy + 16, 0, 8);
    fix_header_check(copy);
    CHECK_FAIL_CODE(read_obj(copy, sp.obj.len, NULL, 77, sp.sha, 0, &rs, &rd, &err) < 0, err,
                    UW_E_FOREIGN);
    CHECK_INT(rs.finished, 0);
    CHECK_CONTAINS(err.msg, "belongs to database system 0");
    uw_buf_free(&rs.data);
    CHECK_OK(read_obj(copy, sp.obj.len, NULL, 0, sp.sha, 0, &rs, &rd, &err) == 0, err);
    uw_buf_free(&rs.data);
    free(copy);
    uint8_t other[32];
    memcpy(other, sp.sha, 32);
    other[31] ^= 1;
    CHECK_FAIL_CODE(read_obj(sp.obj.data, sp.obj.len, NULL, 77, other, 0, &rs, &rd, &err) < 0, err,
                    UW_E_CORRUPT);
    CHECK_INT(rs.finished, 0);
    CHECK_CONTAINS(err.msg, "unit-object");
    uw_buf_free(&rs.data);
    CHECK_FAIL_CODE(read_obj(sp.obj.data, sp.obj.len, NULL, 77, other, 13, &rs, &rd, &err) < 0, err,
                    UW_E_CORRUPT);
    CHECK_INT(rs.finished, 0);
    uw_buf_free(&rs.data);

    uw_t_section("writer with expected digest");
    uint8_t data[3000];
    fill_text(data, sizeof data);
    uint8_t sha[32];
    uw_sha256(data, sizeof data, sha);
    const uw_key *ks[] = {NULL, &key_a};
    for (int ki = 0; ki < 2; ki++) {
        wopts o = {zstd, ks[ki], 5, sha, UW_OBJ_FILE, 1};
        uw_buf obj;
        uw_digest wd;
        rec_state st;
        CHECK_OK(write_obj(&o, data, sizeof data, 100, &obj, &wd, &st, &err) == 0, err);
        CHECK_INT(st.finished, 1);
        CHECK(memcmp(wd.sha256, sha, 32) == 0);
        CHECK_OK(read_obj(obj.data, obj.len, ks[ki], 5, sha, 0, &rs, &rd, &err) == 0, err);
        uw_buf_free(&rs.data);
        uw_buf_free(&obj);
        /* The content "changed" since it was hashed: nothing is delivered. */
        data[1234] ^= 1;
        uw_digest untouched = {{0}, 999};
        wd = untouched;
        CHECK_FAIL_CODE(write_obj(&o, data, sizeof data, 100, &obj, &wd, &st, &err) < 0, err,
                        UW_E_FILE);
        CHECK_INT(st.finished, 0);
        CHECK_INT(st.destroyed, 1);
        CHECK_INT(wd.size, 999);
        uw_buf_free(&obj);
        data[1234] ^= 1;
    }

    free_sample(&se);
    free_sample(&se0);
    free_sample(&sp);
}

/* A whole file handed over at once (uw_sink_from_fd) is compressed in parallel
 * parts, one zstd frame each: the object must read back to the exact file,
 * whatever the thread count, size or key. */
static void test_parallel_parts(void)
{
    uw_t_section("whole files in parallel parts");
    const uw_compressor *zstd = uw_compressor_by_name("zstd");
    const uw_key *keys[] = {NULL, &key_a};
    const size_t sizes[] = {(4u << 20) - 1, 4u << 20, (5u << 20) + 12345, 9u << 20};
    const int threads[] = {1, 2, 3, 4, 8};
    char path[] = "/tmp/uw-test-object.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    uint8_t *data = malloc(9u << 20);
    /* Half text, half random: parts compress differently. */
    fill_text(data, 5u << 20);
    fill_random(data + (5u << 20), 4u << 20);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        uint8_t sha[32];
        uw_sha256(data, n, sha);
        CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, data, n, 0) == (ssize_t)n);
        for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++)
            for (int ki = 0; ki < 2; ki++) {
                char what[96];
                snprintf(what, sizeof what, "%zu bytes, %d threads%s", n, threads[ti],
                         ki ? ", encrypted" : "");
                uw_obj_write_opts opts = {UW_OBJ_WAL,  42,       zstd, 3,
                                          threads[ti], keys[ki], NULL, "unit-object"};
                rec_state st;
                uw_digest wd = {{0}, 0};
                uw_err err;
                uw_err_clear(&err);
                uw_sink *w = uw_object_writer(&opts, rec_new(&st), &wd, &err);
                CHECK(lseek(fd, 0, SEEK_SET) == 0);
                int rc = w ? uw_sink_from_fd(w, fd, "unit file", &err) : -1;
                if (rc == 0)
                    rc = uw_sink_finish(w, &err);
                uw_sink_free(w);
                uw_buf obj = st.data;
                st.data = (uw_buf){0};
                if (!CHECKF(rc == 0, "%s: write: %s", what, err.msg)) {
                    uw_buf_free(&obj);
                    continue;
                }
                CHECKF(wd.size == n && memcmp(wd.sha256, sha, 32) == 0, "%s: digest", what);
                CHECKF(obj.len < n, "%s: not compressed (%zu)", what, obj.len);
                rec_state rs;
                uw_digest rd;
                rc = read_obj(obj.data, obj.len, keys[ki], 42, sha, 65536 + 7, &rs, &rd, &err);
                CHECKF(rc == 0 && rs.data.len == n && memcmp(rs.data.data, data, n) == 0,
                       "%s: read back: %s", what, rc ? err.msg : "different bytes");
                uw_buf_free(&rs.data);
                uw_buf_free(&obj);
            }
    }
    /* A file that is shorter than its size said (truncated while read). */
    uw_obj_write_opts opts = {UW_OBJ_WAL, 42, zstd, 3, 2, NULL, NULL, NULL};
    rec_state st;
    uw_err err;
    uw_sink *w = uw_object_writer(&opts, rec_new(&st), NULL, &err);
    CHECK(ftruncate(fd, 6u << 20) == 0);
    int rc = w->from_fd(w, fd, 8u << 20, "shrunk file", NULL, &err);
    CHECK_FAIL_CODE(rc < 0, err, UW_E_FILE);
    CHECK_CONTAINS(err.msg, "shrunk file");
    uw_sink_free(w);
    uw_buf_free(&st.data);
    close(fd);
    free(data);
}

/* Large objects are verified and delivered by a pipeline stage on a second
 * thread: same bytes, errors of the destination surface, an abandoned read
 * stops the stage cleanly. */
static void test_pipeline(void)
{
    uw_t_section("pipelined reads");
    const uw_compressor *zstd = uw_compressor_by_name("zstd");
    size_t n = (5u << 20) + 333;
    uint8_t *data = malloc(n);
    fill_text(data, n / 2);
    fill_random(data + n / 2, n - n / 2);
    uint8_t sha[32];
    uw_sha256(data, n, sha);
    const uw_key *keys[] = {NULL, &key_a};
    for (int ki = 0; ki < 2; ki++) {
        wopts o = {zstd, keys[ki], 9, NULL, UW_OBJ_FILE, 1};
        uw_buf obj;
        uw_digest wd;
        rec_state st;
        uw_err err;
        CHECK_OK(write_obj(&o, data, n, 0, &obj, &wd, &st, &err) == 0, err);
        const size_t pieces[] = {0, 1000, 65536 + 3};
        for (size_t pi = 0; pi < 3; pi++) {
            uw_obj_read_opts ro = {9, sha, keys[ki], "pipelined", true, NULL, 0, false};
            rec_state rs;
            uw_digest rd = {{0}, 0};
            uw_err_clear(&err);
            uw_sink *r = uw_object_reader(&ro, rec_new(&rs), &rd);
            int rc = feed(r, obj.data, obj.len, pieces[pi], &err);
            CHECKF(rc == 0 && rs.finished == 1 && rs.data.len == n &&
                       memcmp(rs.data.data, data, n) == 0 && rd.size == n,
                   "key %d piece %zu: %s", ki, pieces[pi], rc ? err.msg : "different bytes");
            uw_buf_free(&rs.data);
            /* The destination fails half way: the error comes back, nothing is finished. */
            r = uw_object_reader(&ro, rec_new(&rs), &rd);
            rs.fail_after = n / 2;
            rc = feed(r, obj.data, obj.len, pieces[pi], &err);
            CHECK_FAIL_CODE(rc < 0, err, UW_E_FILE);
            CHECK_CONTAINS(err.msg, "no space left");
            CHECK_INT(rs.finished, 0);
            CHECK_INT(rs.destroyed, 1);
            uw_buf_free(&rs.data);
            /* Abandoned after a third of the object. */
            r = uw_object_reader(&ro, rec_new(&rs), &rd);
            CHECK(uw_sink_write(r, obj.data, obj.len / 3, &err) == 0);
            uw_sink_free(r);
            CHECK_INT(rs.finished, 0);
            CHECK_INT(rs.destroyed, 1);
            uw_buf_free(&rs.data);
        }
        /* Damage in the last part is still caught. */
        obj.data[obj.len - UW_OBJ_TRAILER_LEN - 5] ^= 0x10;
        uw_obj_read_opts ro = {9, sha, keys[ki], "pipelined", true, NULL, 0, false};
        rec_state rs;
        uw_digest rd;
        uw_sink *r = uw_object_reader(&ro, rec_new(&rs), &rd);
        CHECK(feed(r, obj.data, obj.len, 4096, &err) < 0);
        CHECK_INT(rs.finished, 0);
        uw_buf_free(&rs.data);
        uw_buf_free(&obj);
    }
    free(data);
}

/* Read obj with explicit options (bind, limit, content id). */
static int read_with(const uint8_t *obj, size_t len, const uw_obj_read_opts *o, rec_state *st,
                     uw_err *err)
{
    uw_err_clear(err);
    uw_sink *r = uw_object_reader(o, rec_new(st), NULL);
    return feed(r, obj, len, 4096, err);
}

/* Issue 10 items 5, 6 and 10: an object is bound to the name it was stored
 * for, output stops at the declared bound, and an encrypted stanza's content
 * ids are keyed. */
static void test_binding_and_limits(void)
{
    uw_t_section("name binding, size limits, content ids");
    const uw_compressor *zstd = uw_compressor_by_name("zstd");
    size_t n = 300000;
    uint8_t *data = malloc(n);
    fill_text(data, n);
    uint8_t sha[32];
    uw_sha256(data, n, sha);
    const uw_key *keys[] = {NULL, &key_a};
    for (int ki = 0; ki < 2; ki++) {
        uw_obj_write_opts wo = {UW_OBJ_WAL, 5,        zstd, 3,
                                1,          keys[ki], NULL, "000000010000000000000007"};
        rec_state st, rs;
        uw_err err;
        uw_err_clear(&err);
        uw_sink *w = uw_object_writer(&wo, rec_new(&st), NULL, &err);
        CHECK_OK(w && feed(w, data, n, 0, &err) == 0, err);
        uw_buf obj = st.data;
        uw_obj_read_opts ro = {5, sha,  keys[ki], "obj", false, "000000010000000000000007",
                               n, false};
        CHECK_OK(read_with(obj.data, obj.len, &ro, &rs, &err) == 0 && rs.finished == 1, err);
        uw_buf_free(&rs.data);
        /* Read for another name (the object was renamed): refused, nothing finished. */
        ro.bind = "000000010000000000000008";
        CHECK_FAIL_CODE(read_with(obj.data, obj.len, &ro, &rs, &err) < 0, err, UW_E_CORRUPT);
        CHECK_CONTAINS(err.msg, "another name");
        CHECK_INT(rs.finished, 0);
        uw_buf_free(&rs.data);
        /* The header rewritten to the other name (check fixed): plain objects
         * can be re-labelled by whoever writes the repository, encrypted ones
         * fail authentication. */
        uint8_t *copy = malloc(obj.len);
        memcpy(copy, obj.data, obj.len);
        char *label = uw_sprintf("ue-wal object name\n%s", ro.bind);
        uw_sha256(label, strlen(label), copy + 44);
        free(label);
        fix_header_check(copy);
        int rc = read_with(copy, obj.len, &ro, &rs, &err);
        if (keys[ki])
            CHECK_FAIL_CODE(rc < 0, err, UW_E_DECRYPT);
        else
            CHECK_OK(rc == 0, err);
        uw_buf_free(&rs.data);
        free(copy);
        /* A limit below the content: fails at the first byte beyond it. */
        ro.bind = "000000010000000000000007";
        ro.max_size = 100000;
        CHECK_FAIL_CODE(read_with(obj.data, obj.len, &ro, &rs, &err) < 0, err, UW_E_CORRUPT);
        CHECK_CONTAINS(err.msg, "expands beyond");
        CHECKF(rs.data.len <= 100000, "%zu bytes passed a 100000-byte limit", rs.data.len);
        CHECK_INT(rs.finished, 0);
        uw_buf_free(&rs.data);
        ro.max_size = n; /* exactly the size is fine */
        CHECK_OK(read_with(obj.data, obj.len, &ro, &rs, &err) == 0, err);
        uw_buf_free(&rs.data);
        /* Content ids: keyed in an encrypted stanza, the plain SHA-256 otherwise. */
        uint8_t id[32];
        uw_content_id(keys[ki], sha, id);
        CHECK((memcmp(id, sha, 32) == 0) == (keys[ki] == NULL));
        ro.expect_sha256 = id;
        ro.expect_is_id = true;
        CHECK_OK(read_with(obj.data, obj.len, &ro, &rs, &err) == 0, err);
        uw_buf_free(&rs.data);
        if (keys[ki]) {
            ro.expect_sha256 = sha; /* the plain hash is not the name of encrypted content */
            CHECK_FAIL_CODE(read_with(obj.data, obj.len, &ro, &rs, &err) < 0, err, UW_E_CORRUPT);
            uw_buf_free(&rs.data);
            uint8_t other[32];
            uw_content_id(&key_b, sha, other);
            CHECK(memcmp(other, id, 32) != 0);
        }
        uw_buf_free(&obj);
    }
    /* A decompression bomb: 64 MiB of zeros compress to a few KiB; a reader
     * limited to 1 MiB stops after at most one decompressed block beyond it. */
    size_t big = 64u << 20;
    uint8_t *zeros = calloc(1, 1u << 20);
    uw_obj_write_opts wo = {UW_OBJ_WAL, 5, zstd, 19, 1, NULL, NULL, "bomb"};
    rec_state st, rs;
    uw_err err;
    uw_err_clear(&err);
    uw_sink *w = uw_object_writer(&wo, rec_new(&st), NULL, &err);
    int rc = 0;
    for (size_t off = 0; off < big && rc == 0; off += 1u << 20)
        rc = uw_sink_write(w, zeros, 1u << 20, &err);
    CHECK_OK(rc == 0 && uw_sink_finish(w, &err) == 0, err);
    uw_sink_free(w);
    CHECKF(st.data.len < 64 * 1024, "bomb is %zu bytes", st.data.len);
    uw_obj_read_opts ro = {0, NULL, NULL, "bomb", false, "bomb", 1u << 20, false};
    CHECK_FAIL_CODE(read_with(st.data.data, st.data.len, &ro, &rs, &err) < 0, err, UW_E_CORRUPT);
    CHECKF(rs.data.len <= (1u << 20), "%zu bytes delivered", rs.data.len);
    uw_buf_free(&rs.data);
    uw_buf_free(&st.data);
    free(zeros);
    free(data);
}

int main(void)
{
    clock_t t0 = clock();
    uw_kdf_params p;
    uw_kdf_params_new(&p);
    uw_err err;
    if (uw_kdf_derive("object test passphrase", &p, &key_a, &err) < 0 ||
        uw_kdf_derive("another passphrase", &p, &key_b, &err) < 0) {
        fprintf(stderr, "kdf: %s\n", err.msg);
        return 2;
    }
    test_round_trips();
    test_damage();
    test_checks();
    test_parallel_parts();
    test_pipeline();
    test_binding_and_limits();
    uw_t_section_end();
    printf("(%d damaged plain zstd objects decoded to the exact original content)\n", harmless);
    printf("(%.2f s cpu)\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
    return uw_t_done("test_object");
}
