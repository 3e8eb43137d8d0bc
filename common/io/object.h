/* The repository object format, shared by WAL, backup files and metadata.
 *
 *   header  : zstd skippable frame (magic 0x184D2A5E) holding "UEW2" (the
 *             format version is the fourth byte), kind, compressor id, cipher
 *             id, system identifier, cipher chunk size, salt, the SHA-256 of
 *             the name the object is stored for (WAL file name, backup file
 *             path, "manifest:<id>"), and the first 8 bytes of the SHA-256 of
 *             the header itself. Encrypted, the header is the GCM chunks'
 *             associated data, so the name binding is authenticated: an object
 *             renamed to another name in the repository is refused.
 *   payload : the compressed stream, sealed in AES-256-GCM chunks if encrypted
 *   trailer : zstd skippable frame holding "UEWT", the original size and the
 *             SHA-256 of the original content, and its own 8-byte check
 *
 * An unencrypted zstd object is therefore a valid .zst file (`zstd -d` skips our
 * frames), while every byte delivered is still verified against our checksums. The trailer is
 * written last, so the digest comes from the same single pass that stored the
 * bytes, which matters for files that change while a backup copies them. */
#ifndef UW_OBJECT_H
#define UW_OBJECT_H

#include <stdbool.h>
#include <stdint.h>

#include "io/compress.h"
#include "io/crypto.h"
#include "io/sink.h"

#define UW_OBJ_HEADER_LEN 84
#define UW_OBJ_FORMAT_VERSION '2'
#define UW_OBJ_TRAILER_LEN 60

typedef enum { UW_OBJ_WAL = 1, UW_OBJ_FILE = 2, UW_OBJ_META = 3 } uw_obj_kind;

typedef struct {
    uw_obj_kind kind;
    uint64_t system_id; /* 0 when not tied to a cluster */
    const uw_compressor *compressor;
    int level;
    int threads;       /* compression threads (0/1: the caller's thread only) */
    const uw_key *key; /* NULL: not encrypted */
    /* When set, the object is discarded instead of stored if the content's
     * digest turns out different (the source changed since it was hashed). */
    const uint8_t *expect_sha256;
    const char *name; /* bound into the header (NULL: "") */
} uw_obj_write_opts;

/* Returns a sink taking the original content; it writes the framed object into
 * `dest` and finishes it. `digest` (may be NULL) receives the original's size and
 * SHA-256 when the sink is finished. The returned chain owns dest. */
uw_sink *uw_object_writer(const uw_obj_write_opts *opts, uw_sink *dest, uw_digest *digest,
                          uw_err *err);

typedef struct {
    uint64_t expect_system_id;    /* 0: do not check */
    const uint8_t *expect_sha256; /* NULL: only the trailer's digest is checked */
    const uw_key *key;            /* needed when the object is encrypted */
    const char *name;             /* for messages */
    bool pipeline;                /* verify and deliver on a second thread (large objects) */
    const char *bind;             /* the name the header must be bound to (NULL: not checked) */
    /* Most bytes the content may have (0: no limit): decompression stops with
     * UW_E_CORRUPT as soon as it would produce more (decompression bombs). */
    uint64_t max_size;
    /* expect_sha256 is a content id from an object name (uw_content_id with
     * `key`), not the plain SHA-256. */
    bool expect_is_id;
} uw_obj_read_opts;

/* Returns a sink taking the raw object bytes; it writes the verified original
 * content into `dest` and finishes it only after every check passed (header
 * check, GCM tags, decompression, trailer, size and SHA-256). The chain owns
 * dest. Errors carry UW_E_CORRUPT, UW_E_DECRYPT, UW_E_FOREIGN or
 * UW_E_FORMAT_VERSION. `digest` (may be NULL) receives the verified digest. */
uw_sink *uw_object_reader(const uw_obj_read_opts *opts, uw_sink *dest, uw_digest *digest);

#endif
