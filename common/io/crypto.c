#include "io/crypto.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

int uw_random(uint8_t *buf, size_t len, uw_err *err)
{
    if (RAND_bytes(buf, (int)len) != 1)
        return uw_fail(err, UW_E_CRYPTO, "unable to get random bytes from OpenSSL");
    return 0;
}

void uw_kdf_params_new(uw_kdf_params *p)
{
    /* N=2^15, r=8: 32 MiB and tens of milliseconds per process, the cost an
     * attacker pays per guess. */
    p->n = 1u << 15;
    p->r = 8;
    p->p = 1;
    if (RAND_bytes(p->salt, UW_SALT_LEN) != 1)
        abort();
}

int uw_kdf_derive(const char *passphrase, const uw_kdf_params *p, uw_key *key, uw_err *err)
{
    if (!passphrase || !*passphrase)
        return uw_fail(err, UW_E_CRYPTO, "cipher-type is aes-256-gcm but cipher-pass is not set");
    /* Bounded before any multiplication: the values come from the repository. */
    if (p->n < 2 || (p->n & (p->n - 1)) || p->n > (1u << 20) || p->r < 1 || p->r > 64 || p->p < 1 ||
        p->p > UW_KDF_MAX_P || 128 * p->n * p->r > UW_KDF_MAX_MEM)
        return uw_fail(err, UW_E_REPO_FORMAT,
                       "unsupported scrypt parameters in stanza info (n=%llu r=%u p=%u)",
                       (unsigned long long)p->n, p->r, p->p);
    /* OpenSSL's scrypt holds one lane (128 * n * r bytes) at a time. */
    uint64_t maxmem = 128 * p->n * p->r + (1u << 20);
    if (EVP_PBE_scrypt(passphrase, strlen(passphrase), p->salt, UW_SALT_LEN, p->n, p->r, p->p,
                       maxmem, key->master, UW_KEY_LEN) != 1)
        return uw_fail(err, UW_E_CRYPTO, "scrypt key derivation failed");
    uw_key_expand(key);
    return 0;
}

void uw_key_check(const uw_key *key, char out[65])
{
    static const char label[] = "ue-wal key check";
    uint8_t mac[32];
    unsigned int n = sizeof mac;
    HMAC(EVP_sha256(), key->master, UW_KEY_LEN, (const uint8_t *)label, sizeof label - 1, mac, &n);
    uw_hex(mac, 32, out);
}

static void hkdf(const uint8_t *ikm, const uint8_t *salt, size_t salt_len, const char *info,
                 uint8_t out[UW_KEY_LEN])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t len = UW_KEY_LEN;
    if (!ctx || EVP_PKEY_derive_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) <= 0 ||
        EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, (int)salt_len) <= 0 ||
        EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, UW_KEY_LEN) <= 0 ||
        EVP_PKEY_CTX_add1_hkdf_info(ctx, (const uint8_t *)info, (int)strlen(info)) <= 0 ||
        EVP_PKEY_derive(ctx, out, &len) <= 0)
        abort(); /* only fails on OpenSSL misconfiguration */
    EVP_PKEY_CTX_free(ctx);
}

void uw_key_expand(uw_key *key)
{
    static const uint8_t salt[] = "ue-wal sub-keys";
    hkdf(key->master, salt, sizeof salt - 1, "ue-wal metadata mac v2", key->meta);
    hkdf(key->master, salt, sizeof salt - 1, "ue-wal content id v2", key->name);
}

void uw_hmac(const uint8_t key[UW_KEY_LEN], const void *data, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, UW_KEY_LEN, data, len, out, &n);
}

void uw_content_id(const uw_key *key, const uint8_t sha256[32], uint8_t out[32])
{
    if (!key) {
        memmove(out, sha256, 32);
        return;
    }
    uint8_t mac[32];
    uw_hmac(key->name, sha256, 32, mac);
    memcpy(out, mac, 32);
}

void uw_key_wipe(uw_key *key)
{
    OPENSSL_cleanse(key, sizeof *key);
}

void uw_object_key(const uw_key *master, const uint8_t salt[UW_SALT_LEN], uint8_t out[UW_KEY_LEN])
{
    hkdf(master->master, salt, UW_SALT_LEN, "ue-wal object v1", out);
}

/* ---- chunked AES-256-GCM ---- */
typedef struct {
    uw_sink base;
    EVP_CIPHER_CTX *ctx;
    uint8_t key[UW_KEY_LEN];
    uint8_t *aad;
    size_t aad_len;
    uint32_t chunk; /* plaintext bytes per chunk */
    uint8_t *buf;   /* pending input: plaintext (encrypt) or chunk+tag (decrypt) */
    size_t buf_len, buf_cap;
    uint8_t *out;
    uint64_t counter;
    bool decrypt;
} gcm_sink;

static int seal_or_open(gcm_sink *g, const uint8_t *in, size_t len, bool final, uw_err *err)
{
    uint8_t nonce[12] = {0};
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(g->counter >> (56 - 8 * i));
    uint8_t flag = final ? 1 : 0;
    int outl = 0, tmp = 0;
    EVP_CIPHER_CTX *c = g->ctx;
    size_t body = g->decrypt ? len - UW_GCM_TAG_LEN : len;
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, g->decrypt ? 0 : 1) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, g->key, nonce, -1) != 1 ||
        EVP_CipherUpdate(c, NULL, &tmp, g->aad, (int)g->aad_len) != 1 ||
        EVP_CipherUpdate(c, NULL, &tmp, &flag, 1) != 1)
        return uw_fail(err, UW_E_INTERNAL, "AES-256-GCM initialisation failed");
    if (body && EVP_CipherUpdate(c, g->out, &outl, in, (int)body) != 1)
        return uw_fail(err, UW_E_INTERNAL, "AES-256-GCM failed");
    if (g->decrypt) {
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, UW_GCM_TAG_LEN, (void *)(in + body)) !=
                1 ||
            EVP_CipherFinal_ex(c, g->out + outl, &tmp) != 1)
            return uw_fail(err, UW_E_DECRYPT,
                           "authentication failed: wrong cipher passphrase or tampered object");
        outl += tmp;
        g->counter++;
        return uw_sink_write(g->base.next, g->out, (size_t)outl, err);
    }
    if (EVP_CipherFinal_ex(c, g->out + outl, &tmp) != 1)
        return uw_fail(err, UW_E_INTERNAL, "AES-256-GCM failed");
    outl += tmp;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, UW_GCM_TAG_LEN, g->out + outl) != 1)
        return uw_fail(err, UW_E_INTERNAL, "AES-256-GCM tag failed");
    g->counter++;
    return uw_sink_write(g->base.next, g->out, (size_t)outl + UW_GCM_TAG_LEN, err);
}

/* A chunk is only known to be non-final once a byte beyond it arrives, so a
 * full chunk is held until then; finish seals the remainder (possibly empty)
 * as the final one. */
static int gcm_write(uw_sink *s, const uint8_t *data, size_t len, uw_err *err)
{
    gcm_sink *g = (gcm_sink *)s;
    size_t unit = g->chunk + (g->decrypt ? UW_GCM_TAG_LEN : 0);
    while (len) {
        if (g->buf_len == unit) {
            if (seal_or_open(g, g->buf, unit, false, err) < 0)
                return -1;
            g->buf_len = 0;
        }
        size_t n = unit - g->buf_len;
        if (n > len)
            n = len;
        memcpy(g->buf + g->buf_len, data, n);
        g->buf_len += n;
        data += n;
        len -= n;
    }
    return 0;
}

static int gcm_finish(uw_sink *s, uw_err *err)
{
    gcm_sink *g = (gcm_sink *)s;
    if (g->decrypt && g->buf_len < UW_GCM_TAG_LEN)
        return uw_fail(err, UW_E_CORRUPT, "encrypted object is truncated");
    if (seal_or_open(g, g->buf, g->buf_len, true, err) < 0)
        return -1;
    g->buf_len = 0;
    return uw_sink_finish(s->next, err);
}

static void gcm_destroy(uw_sink *s)
{
    gcm_sink *g = (gcm_sink *)s;
    EVP_CIPHER_CTX_free(g->ctx);
    OPENSSL_cleanse(g->key, sizeof g->key);
    free(g->aad);
    free(g->buf);
    free(g->out);
    free(g);
}

static uw_sink *gcm_new(const uint8_t key[UW_KEY_LEN], const uint8_t *aad, size_t aad_len,
                        uint32_t chunk, bool decrypt, uw_sink *next)
{
    gcm_sink *g = uw_calloc(1, sizeof *g);
    g->base = (uw_sink){gcm_write, gcm_finish, gcm_destroy, next, false, NULL};
    g->ctx = EVP_CIPHER_CTX_new();
    if (!g->ctx)
        abort();
    memcpy(g->key, key, UW_KEY_LEN);
    g->aad = uw_malloc(aad_len);
    memcpy(g->aad, aad, aad_len);
    g->aad_len = aad_len;
    g->chunk = chunk;
    g->decrypt = decrypt;
    g->buf_cap = (size_t)chunk + UW_GCM_TAG_LEN;
    g->buf = uw_malloc(g->buf_cap);
    g->out = uw_malloc(g->buf_cap + 32);
    return &g->base;
}

uw_sink *uw_encrypt_sink(const uint8_t key[UW_KEY_LEN], const uint8_t *aad, size_t aad_len,
                         uint32_t chunk, uw_sink *next)
{
    return gcm_new(key, aad, aad_len, chunk, false, next);
}

uw_sink *uw_decrypt_sink(const uint8_t key[UW_KEY_LEN], const uint8_t *aad, size_t aad_len,
                         uint32_t chunk, uw_sink *next)
{
    return gcm_new(key, aad, aad_len, chunk, true, next);
}
