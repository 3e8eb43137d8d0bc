/* Key derivation, key check and the chunked AES-256-GCM sinks. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/crypto.h"
#include "io/sink.h"
#include "unit.h"

/* A destination that records what reached it and whether it was finished. */
typedef struct {
    uw_buf data;
    int finished, destroyed;
} rec_state;
typedef struct {
    uw_sink base;
    rec_state *st;
} rec_sink;

static int rec_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    (void)err;
    uw_buf_append(&((rec_sink *)s)->st->data, buf, len);
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

static uint64_t rng = 0x243F6A8885A308D3ULL;
static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        p[i] = (uint8_t)(rng >> 24);
    }
}

static const uint8_t AAD[] = "object header stand-in";

/* Feed `in` through a sink in pieces of `piece` bytes (0 = all at once), then
 * finish it unless a write failed. Frees the chain. */
static int pump(uw_sink *s, const uint8_t *in, size_t len, size_t piece, uw_err *err)
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

static int seal(const uint8_t key[32], const uint8_t *aad, size_t aad_len, uint32_t chunk,
                const uint8_t *in, size_t len, size_t piece, uw_buf *out, uw_err *err)
{
    rec_state st;
    uw_sink *s = uw_encrypt_sink(key, aad, aad_len, chunk, rec_new(&st));
    int rc = pump(s, in, len, piece, err);
    *out = st.data;
    if (rc == 0 && st.finished != 1)
        rc = uw_fail(err, UW_E_INTERNAL, "encrypt did not finish its destination");
    return rc;
}

static int open_(const uint8_t key[32], const uint8_t *aad, size_t aad_len, uint32_t chunk,
                 const uint8_t *in, size_t len, size_t piece, rec_state *st, uw_err *err)
{
    uw_sink *s = uw_decrypt_sink(key, aad, aad_len, chunk, rec_new(st));
    uw_err_clear(err);
    int rc = pump(s, in, len, piece, err);
    CHECKF(st->destroyed == 1, "destination destroyed %d times", st->destroyed);
    return rc;
}

static size_t chunks_for(size_t n, uint32_t chunk)
{
    return n == 0 ? 1 : (n + chunk - 1) / chunk;
}

/* A failed open must not have finished its destination, and what reached it
 * must be whole verified chunks of the plaintext. */
static void check_rejected(const rec_state *st, const uint8_t *plain, size_t plain_len,
                           uint32_t chunk, const char *what)
{
    CHECKF(st->finished == 0, "%s: destination finished after a failure", what);
    CHECKF(st->data.len <= plain_len && st->data.len % chunk == 0 &&
               (st->data.len == 0 || memcmp(st->data.data, plain, st->data.len) == 0),
           "%s: %zu unverified bytes released downstream", what, st->data.len);
}

static void test_kdf(void)
{
    uw_t_section("uw_kdf_derive");
    uw_err err;
    uw_kdf_params p1, p2;
    uw_kdf_params_new(&p1);
    uw_kdf_params_new(&p2);
    CHECK_U64(p1.n, 1u << 15);
    CHECK_U64(p1.r, 8);
    CHECK_U64(p1.p, 1);
    CHECKF(memcmp(p1.salt, p2.salt, UW_SALT_LEN) != 0, "two new salts are equal");

    uw_key a, b, c, d;
    uw_err_clear(&err);
    CHECK_OK(uw_kdf_derive("correct horse", &p1, &a, &err) == 0, err);
    CHECK_OK(uw_kdf_derive("correct horse", &p1, &b, &err) == 0, err);
    CHECKF(memcmp(a.master, b.master, UW_KEY_LEN) == 0, "same input, different keys");
    CHECK_OK(uw_kdf_derive("correct horse", &p2, &c, &err) == 0, err);
    CHECKF(memcmp(a.master, c.master, UW_KEY_LEN) != 0, "different salt, same key");
    CHECK_OK(uw_kdf_derive("correct horsf", &p1, &d, &err) == 0, err);
    CHECKF(memcmp(a.master, d.master, UW_KEY_LEN) != 0, "different passphrase, same key");

    /* It is plain scrypt(passphrase, salt, N, r, p, 32): repositories written by
     * other builds must keep deriving the same key. */
    uint8_t ref[UW_KEY_LEN];
    const char *pw = "correct horse";
    CHECK(EVP_PBE_scrypt(pw, strlen(pw), p1.salt, UW_SALT_LEN, p1.n, p1.r, p1.p,
                         (uint64_t)256 << 20, ref, sizeof ref) == 1);
    CHECKF(memcmp(ref, a.master, UW_KEY_LEN) == 0, "key differs from scrypt()");
    /* Other parameters are honoured, too. */
    uw_kdf_params q = p1;
    q.n = 1024;
    q.r = 4;
    q.p = 2;
    uw_key e;
    CHECK_OK(uw_kdf_derive(pw, &q, &e, &err) == 0, err);
    CHECK(EVP_PBE_scrypt(pw, strlen(pw), q.salt, UW_SALT_LEN, q.n, q.r, q.p, (uint64_t)64 << 20,
                         ref, sizeof ref) == 1);
    CHECKF(memcmp(ref, e.master, UW_KEY_LEN) == 0, "key differs from scrypt(1024, 4, 2)");
    CHECKF(memcmp(a.master, e.master, UW_KEY_LEN) != 0, "N/r/p ignored");

    uw_t_section("uw_kdf_derive rejects");
    uw_key z;
    uw_err_clear(&err);
    CHECK_FAIL_CODE(uw_kdf_derive("", &p1, &z, &err) < 0, err, UW_E_CRYPTO);
    uw_err_clear(&err);
    CHECK_FAIL_CODE(uw_kdf_derive(NULL, &p1, &z, &err) < 0, err, UW_E_CRYPTO);
    struct {
        uint64_t n;
        uint32_t r, p;
    } absurd[] = {{0, 8, 1},
                  {1, 8, 1},
                  {3, 8, 1},
                  {1000, 8, 1},
                  {1u << 23, 8, 1},
                  {1ULL << 40, 8, 1},
                  {UINT64_MAX, 8, 1},
                  {1024, 0, 1},
                  {1024, 65, 1},
                  {1024, UINT32_MAX, 1},
                  {1024, 8, 0},
                  {1024, 8, 17},
                  {1024, 8, UINT32_MAX},
                  /* Within the old per-field limits but each a huge
                   * allocation or run (issue 10 item 6): refused up front. */
                  {1u << 22, 64, 1},
                  {1u << 22, 8, 1},
                  {1u << 21, 8, 1},
                  {1u << 20, 64, 1},
                  {1u << 15, 8, 16},
                  {1u << 15, 8, 5}};
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        uw_kdf_params bad = p1;
        bad.n = absurd[i].n;
        bad.r = absurd[i].r;
        bad.p = absurd[i].p;
        uw_err_clear(&err);
        int rc = uw_kdf_derive("pw", &bad, &z, &err);
        CHECKF(rc < 0 && err.code == UW_E_REPO_FORMAT, "n=%llu r=%u p=%u: rc %d code %d",
               (unsigned long long)bad.n, bad.r, bad.p, rc, (int)err.code);
    }
    /* The largest accepted cost still works (1 GiB would be slow here: the
     * bound itself, 2^20 * 8, is checked as accepted without running it). */
    {
        uw_kdf_params ok = p1;
        ok.n = 1u << 12;
        ok.r = 8;
        ok.p = 4;
        uw_key k;
        uw_err_clear(&err);
        CHECK_OK(uw_kdf_derive("pw", &ok, &k, &err) == 0, err);
        CHECK(128 * (1ull << 20) * 8 <= UW_KDF_MAX_MEM);
    }

    uw_t_section("sub-keys and content ids");
    {
        uw_key k1, k2;
        uw_err_clear(&err);
        CHECK_OK(uw_kdf_derive("correct horse", &p1, &k1, &err) == 0, err);
        CHECK_OK(uw_kdf_derive("correct horse", &p2, &k2, &err) == 0, err);
        /* Sub-keys differ from the master and from each other, and per stanza. */
        CHECK(memcmp(k1.meta, k1.master, UW_KEY_LEN) != 0);
        CHECK(memcmp(k1.name, k1.master, UW_KEY_LEN) != 0);
        CHECK(memcmp(k1.name, k1.meta, UW_KEY_LEN) != 0);
        CHECK(memcmp(k1.name, k2.name, UW_KEY_LEN) != 0);
        uint8_t sha[32], id1[32], id2[32], plain[32];
        uw_sha256("content", 7, sha);
        uw_content_id(&k1, sha, id1);
        uw_content_id(&k2, sha, id2);
        uw_content_id(NULL, sha, plain);
        CHECK(memcmp(plain, sha, 32) == 0);
        CHECK(memcmp(id1, sha, 32) != 0 && memcmp(id1, id2, 32) != 0);
        /* HMAC-SHA256(name key, sha), as documented. */
        uint8_t mac[32];
        unsigned int ml = 32;
        HMAC(EVP_sha256(), k1.name, UW_KEY_LEN, sha, 32, mac, &ml);
        CHECK(memcmp(mac, id1, 32) == 0);
    }

    uw_t_section("uw_key_check / uw_object_key / uw_random");
    char ca[65], cb[65], cc[65];
    uw_key_check(&a, ca);
    uw_key_check(&b, cb);
    uw_key_check(&c, cc);
    CHECK_INT(strlen(ca), 64);
    CHECK_INT(strspn(ca, "0123456789abcdef"), 64);
    CHECK_STR(ca, cb);
    CHECKF(strcmp(ca, cc) != 0, "same key check for different keys");
    /* HMAC-SHA256(master, "ue-wal key check"), stored in every stanza.info. */
    uint8_t mac[32];
    unsigned int maclen = sizeof mac;
    HMAC(EVP_sha256(), a.master, UW_KEY_LEN, (const uint8_t *)"ue-wal key check", 16, mac, &maclen);
    char machex[65];
    uw_hex(mac, 32, machex);
    CHECK_STR(ca, machex);
    /* The check value is not the key. */
    char keyhex[65];
    uw_hex(a.master, 32, keyhex);
    CHECKF(strcmp(ca, keyhex) != 0, "key check reveals the key");

    uint8_t s1[UW_SALT_LEN] = {1}, s2[UW_SALT_LEN] = {2}, k1[32], k1b[32], k2[32], k3[32];
    uw_object_key(&a, s1, k1);
    uw_object_key(&a, s1, k1b);
    uw_object_key(&a, s2, k2);
    uw_object_key(&c, s1, k3);
    CHECK(memcmp(k1, k1b, 32) == 0);
    CHECK(memcmp(k1, k2, 32) != 0);
    CHECK(memcmp(k1, k3, 32) != 0);
    CHECK(memcmp(k1, a.master, 32) != 0);

    uint8_t r1[32], r2[32];
    CHECK(uw_random(r1, sizeof r1, &err) == 0);
    CHECK(uw_random(r2, sizeof r2, &err) == 0);
    CHECK(memcmp(r1, r2, 32) != 0);

    uw_key_wipe(&a);
    static const uint8_t zero[sizeof(uw_key)];
    CHECK(memcmp(&a, zero, sizeof a) == 0);
}

static void test_gcm(void)
{
    uw_t_section("GCM round trip, chunk 16");
    uint8_t key[32], key2[32];
    fill_random(key, 32);
    fill_random(key2, 32);
    uw_err err;
    uw_err_clear(&err);
    const uint32_t chunk = 16;
    const size_t sizes[] = {0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 100};
    const size_t pieces[] = {0, 1, 5, 16, 17, 1000};
    uint8_t plain[128];
    fill_random(plain, sizeof plain);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        uw_buf ct = {0};
        CHECK_OK(seal(key, AAD, sizeof AAD, chunk, plain, n, 0, &ct, &err) == 0, err);
        size_t want = n + UW_GCM_TAG_LEN * chunks_for(n, chunk);
        CHECKF(ct.len == want, "size %zu: ciphertext %zu bytes, want %zu", n, ct.len, want);
        /* The writer's piece size does not change the output. */
        for (size_t pi = 1; pi < sizeof pieces / sizeof pieces[0]; pi++) {
            uw_buf ct2 = {0};
            CHECK_OK(seal(key, AAD, sizeof AAD, chunk, plain, n, pieces[pi], &ct2, &err) == 0, err);
            CHECKF(ct2.len == ct.len && memcmp(ct2.data, ct.data, ct.len) == 0,
                   "size %zu piece %zu: different ciphertext", n, pieces[pi]);
            uw_buf_free(&ct2);
        }
        if (n >= 4)
            CHECKF(memmem(ct.data, ct.len, plain, 4) == NULL, "size %zu: plaintext visible", n);
        for (size_t pi = 0; pi < sizeof pieces / sizeof pieces[0]; pi++) {
            rec_state st;
            int rc = open_(key, AAD, sizeof AAD, chunk, ct.data, ct.len, pieces[pi], &st, &err);
            CHECKF(rc == 0, "size %zu piece %zu: %s", n, pieces[pi], err.msg);
            CHECKF(st.data.len == n && (n == 0 || memcmp(st.data.data, plain, n) == 0),
                   "size %zu piece %zu: wrong plaintext (%zu bytes)", n, pieces[pi], st.data.len);
            CHECK_INT(st.finished, 1);
            uw_buf_free(&st.data);
        }

        /* Wrong key, wrong header, wrong chunk size. */
        rec_state st;
        CHECK_FAIL_CODE(open_(key2, AAD, sizeof AAD, chunk, ct.data, ct.len, 0, &st, &err) < 0, err,
                        UW_E_DECRYPT);
        check_rejected(&st, plain, n, chunk, "wrong key");
        uw_buf_free(&st.data);
        uint8_t aad2[sizeof AAD];
        memcpy(aad2, AAD, sizeof AAD);
        aad2[3] ^= 1;
        CHECK_FAIL_CODE(open_(key, aad2, sizeof aad2, chunk, ct.data, ct.len, 0, &st, &err) < 0,
                        err, UW_E_DECRYPT);
        check_rejected(&st, plain, n, chunk, "wrong aad");
        uw_buf_free(&st.data);
        int rc = open_(key, AAD, sizeof AAD, 32, ct.data, ct.len, 0, &st, &err);
        if (n > 16) /* with one chunk both sizes agree on the layout */
            CHECKF(rc < 0 && (err.code == UW_E_DECRYPT || err.code == UW_E_CORRUPT),
                   "size %zu: chunk 32 accepted data sealed with chunk 16", n);
        uw_buf_free(&st.data);

        /* Every single-bit flip is caught. */
        for (size_t i = 0; i < ct.len; i++) {
            for (int bit = 0; bit < 8; bit += 7) {
                ct.data[i] ^= (uint8_t)(1u << bit);
                rc = open_(key, AAD, sizeof AAD, chunk, ct.data, ct.len, 0, &st, &err);
                ct.data[i] ^= (uint8_t)(1u << bit);
                CHECKF(rc < 0 && err.code == UW_E_DECRYPT,
                       "size %zu: flip at %zu bit %d: rc %d code %d", n, i, bit, rc, (int)err.code);
                check_rejected(&st, plain, n, chunk, "flip");
                uw_buf_free(&st.data);
            }
        }
        /* Every truncation is caught. */
        for (size_t cut = 0; cut < ct.len; cut++) {
            rc = open_(key, AAD, sizeof AAD, chunk, ct.data, cut, 0, &st, &err);
            CHECKF(rc < 0 && (err.code == UW_E_DECRYPT || err.code == UW_E_CORRUPT),
                   "size %zu: truncated to %zu accepted (code %d)", n, cut, (int)err.code);
            if (cut < UW_GCM_TAG_LEN)
                CHECK_INT(err.code, UW_E_CORRUPT);
            check_rejected(&st, plain, n, chunk, "truncation");
            uw_buf_free(&st.data);
        }
        /* Appended bytes are caught. */
        uw_buf longer = {0};
        uw_buf_append(&longer, ct.data, ct.len);
        uw_buf_append(&longer, ct.data + ct.len - 16, 16);
        rc = open_(key, AAD, sizeof AAD, chunk, longer.data, longer.len, 0, &st, &err);
        CHECKF(rc < 0 && (err.code == UW_E_DECRYPT || err.code == UW_E_CORRUPT),
               "size %zu: 16 appended bytes accepted", n);
        check_rejected(&st, plain, n, chunk, "appended");
        uw_buf_free(&st.data);
        uw_buf_free(&longer);
        uw_buf_free(&ct);
    }

    uw_t_section("GCM chunk reordering and dropping");
    const size_t unit = chunk + UW_GCM_TAG_LEN;
    for (size_t n = 33; n <= 64; n += 15) { /* 33: 2 full + 1 byte; 48: 3 full; 63 */
        uw_buf ct = {0};
        CHECK_OK(seal(key, AAD, sizeof AAD, chunk, plain, n, 0, &ct, &err) == 0, err);
        /* swap chunk 0 and chunk 1 */
        uint8_t tmp[32];
        memcpy(tmp, ct.data, unit);
        memcpy(ct.data, ct.data + unit, unit);
        memcpy(ct.data + unit, tmp, unit);
        rec_state st;
        CHECK_FAIL_CODE(open_(key, AAD, sizeof AAD, chunk, ct.data, ct.len, 0, &st, &err) < 0, err,
                        UW_E_DECRYPT);
        check_rejected(&st, plain, n, chunk, "swap");
        uw_buf_free(&st.data);
        memcpy(tmp, ct.data, unit); /* swap back */
        memcpy(ct.data, ct.data + unit, unit);
        memcpy(ct.data + unit, tmp, unit);
        int rc = open_(key, AAD, sizeof AAD, chunk, ct.data, ct.len, 0, &st, &err);
        CHECKF(rc == 0, "swapped back: %s", err.msg);
        uw_buf_free(&st.data);
        /* drop the final chunk: what remains ends on a non-final chunk */
        size_t nchunks = chunks_for(n, chunk);
        size_t final_len = ct.len - (nchunks - 1) * unit;
        rc = open_(key, AAD, sizeof AAD, chunk, ct.data, ct.len - final_len, 0, &st, &err);
        CHECKF(rc < 0 && (err.code == UW_E_DECRYPT || err.code == UW_E_CORRUPT),
               "n=%zu: final chunk dropped, accepted", n);
        check_rejected(&st, plain, n, chunk, "drop final");
        uw_buf_free(&st.data);
        /* drop a middle chunk */
        uw_buf cut = {0};
        uw_buf_append(&cut, ct.data, unit);
        uw_buf_append(&cut, ct.data + 2 * unit, ct.len - 2 * unit);
        rc = open_(key, AAD, sizeof AAD, chunk, cut.data, cut.len, 0, &st, &err);
        CHECKF(rc < 0 && err.code == UW_E_DECRYPT, "n=%zu: middle chunk dropped, accepted", n);
        check_rejected(&st, plain, n, chunk, "drop middle");
        uw_buf_free(&st.data);
        uw_buf_free(&cut);
        /* duplicate chunk 0 in place of chunk 1 */
        memcpy(ct.data + unit, ct.data, unit);
        rc = open_(key, AAD, sizeof AAD, chunk, ct.data, ct.len, 0, &st, &err);
        CHECKF(rc < 0 && err.code == UW_E_DECRYPT, "n=%zu: replayed chunk accepted", n);
        uw_buf_free(&st.data);
        uw_buf_free(&ct);
    }

    uw_t_section("GCM default chunk size");
    size_t big = 3 * UW_CHUNK_DEFAULT + 123;
    uint8_t *data = malloc(big);
    fill_random(data, big);
    uw_buf ct = {0};
    CHECK_OK(seal(key, AAD, sizeof AAD, UW_CHUNK_DEFAULT, data, big, 4093, &ct, &err) == 0, err);
    CHECK_INT(ct.len, big + 4 * UW_GCM_TAG_LEN);
    const size_t pieces2[] = {0, 1, 4096, 65536 + 16, 100000};
    for (size_t pi = 0; pi < sizeof pieces2 / sizeof pieces2[0]; pi++) {
        rec_state st;
        int rc =
            open_(key, AAD, sizeof AAD, UW_CHUNK_DEFAULT, ct.data, ct.len, pieces2[pi], &st, &err);
        CHECKF(rc == 0 && st.data.len == big && memcmp(st.data.data, data, big) == 0 &&
                   st.finished == 1,
               "piece %zu: %s", pieces2[pi], err.msg);
        uw_buf_free(&st.data);
    }
    /* Tampering with the last chunk: the first three chunks may have been
     * released (each verified), but the destination is never finished. */
    ct.data[ct.len - 1] ^= 0x80;
    rec_state st;
    CHECK_FAIL_CODE(open_(key, AAD, sizeof AAD, UW_CHUNK_DEFAULT, ct.data, ct.len, 0, &st, &err) <
                        0,
                    err, UW_E_DECRYPT);
    check_rejected(&st, data, big, UW_CHUNK_DEFAULT, "tampered last chunk");
    uw_buf_free(&st.data);
    uw_buf_free(&ct);
    free(data);
}

int main(void)
{
    test_kdf();
    test_gcm();
    return uw_t_done("test_crypto");
}
