/* Authenticated encryption of repository objects.
 *
 * The passphrase is stretched once per process with scrypt (parameters and salt
 * live in the stanza info, so they can be raised later without breaking old
 * repositories) into a master key. Each object gets a random salt; its AES-256
 * key is HKDF(master, salt). The payload is cut into chunks, each sealed with
 * AES-256-GCM under a counter nonce, with the object header and a "final chunk"
 * flag as additional data: reordering, truncation and header tampering are all
 * detected, and nothing is released downstream before its tag is checked. */
#ifndef UW_CRYPTO_H
#define UW_CRYPTO_H

#include <stdint.h>

#include "io/sink.h"

#define UW_KEY_LEN 32
#define UW_SALT_LEN 16
#define UW_GCM_TAG_LEN 16
#define UW_CHUNK_DEFAULT (64 * 1024)

typedef struct {
    uint64_t n;
    uint32_t r, p;
    uint8_t salt[UW_SALT_LEN];
} uw_kdf_params;

/* One scrypt run per process gives `master`; the sub-keys are HKDF-derived
 * from it at the same time, so that nothing else ever needs the KDF again. */
typedef struct {
    uint8_t master[UW_KEY_LEN];
    uint8_t meta[UW_KEY_LEN]; /* HMAC of the stanza info */
    uint8_t name[UW_KEY_LEN]; /* keyed content ids in object names */
} uw_key;

/* Upper bounds of the scrypt parameters a stanza info may ask for: the
 * parameters come from the (untrusted) repository, and scrypt needs
 * 128 * n * r bytes per lane. 2^20 * 8 (1 GiB) is far above the default
 * (32 MiB) and what a tool run beside PostgreSQL may allocate. */
#define UW_KDF_MAX_MEM (1024ull << 20)
#define UW_KDF_MAX_P 4

/* Fresh parameters for a new stanza. */
void uw_kdf_params_new(uw_kdf_params *p);
int uw_kdf_derive(const char *passphrase, const uw_kdf_params *p, uw_key *key, uw_err *err);
/* A value stored in the stanza info that tells a wrong passphrase from a
 * tampered object: HMAC(master, "ue-wal key check"), hex. */
void uw_key_check(const uw_key *key, char out[65]);
void uw_key_wipe(uw_key *key);

int uw_random(uint8_t *buf, size_t len, uw_err *err);

/* Fills the sub-keys of a key whose master is set (uw_kdf_derive does it). */
void uw_key_expand(uw_key *key);
/* HMAC-SHA256 with one of the sub-keys. */
void uw_hmac(const uint8_t key[UW_KEY_LEN], const void *data, size_t len, uint8_t out[32]);
/* The id of a content in an object name: its SHA-256 in a plain stanza; in an
 * encrypted one HMAC(name key, SHA-256), so that names do not let anyone
 * confirm a guess of a file's content. key NULL: plain. */
void uw_content_id(const uw_key *key, const uint8_t sha256[32], uint8_t out[32]);

/* Per-object key. */
void uw_object_key(const uw_key *master, const uint8_t salt[UW_SALT_LEN], uint8_t out[UW_KEY_LEN]);

/* Sinks: `aad` (the object header) is copied. */
uw_sink *uw_encrypt_sink(const uint8_t key[UW_KEY_LEN], const uint8_t *aad, size_t aad_len,
                         uint32_t chunk, uw_sink *next);
uw_sink *uw_decrypt_sink(const uint8_t key[UW_KEY_LEN], const uint8_t *aad, size_t aad_len,
                         uint32_t chunk, uw_sink *next);

#endif
