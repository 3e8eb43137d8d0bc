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

typedef struct {
    uint8_t master[UW_KEY_LEN];
} uw_key;

/* Fresh parameters for a new stanza. */
void uw_kdf_params_new(uw_kdf_params *p);
int uw_kdf_derive(const char *passphrase, const uw_kdf_params *p, uw_key *key, uw_err *err);
/* A value stored in the stanza info that tells a wrong passphrase from a
 * tampered object: HMAC(master, "ue-wal key check"), hex. */
void uw_key_check(const uw_key *key, char out[65]);
void uw_key_wipe(uw_key *key);

int uw_random(uint8_t *buf, size_t len, uw_err *err);

/* Per-object key. */
void uw_object_key(const uw_key *master, const uint8_t salt[UW_SALT_LEN], uint8_t out[UW_KEY_LEN]);

/* Sinks: `aad` (the object header) is copied. */
uw_sink *uw_encrypt_sink(const uint8_t key[UW_KEY_LEN], const uint8_t *aad, size_t aad_len,
                         uint32_t chunk, uw_sink *next);
uw_sink *uw_decrypt_sink(const uint8_t key[UW_KEY_LEN], const uint8_t *aad, size_t aad_len,
                         uint32_t chunk, uw_sink *next);

#endif
