/* Streaming filters. Every transformation (hash, compress, encrypt, object
 * framing, storage upload) is a sink that takes bytes and pushes its output to
 * the next sink, so a file goes from source to repository in one pass with
 * bounded memory. A chain is owned by its head: uw_sink_free() frees the whole
 * chain, and freeing a storage sink that was not finished discards the partial
 * object (an interrupted write never becomes visible). */
#ifndef UW_SINK_H
#define UW_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/codec.h" /* uw_hex, uw_unhex, uw_hexval: sink users print digests */
#include "core/error.h"

typedef struct uw_sink uw_sink;
/* Work the thread that hands a whole file to a sink does while the sink's own
 * workers run (e.g. hashing the same file). */
typedef struct {
    int (*run)(void *arg, int fd, uint64_t size, const char *what, uw_err *err);
    void *arg;
} uw_side_work;
struct uw_sink {
    int (*write)(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err);
    int (*finish)(uw_sink *s, uw_err *err); /* flush, then finish next */
    void (*destroy)(uw_sink *s);            /* free this sink only */
    uw_sink *next;
    bool finished;
    /* Optional: consume the whole regular file fd (size bytes, read with
     * pread from offset 0; `what` names it in errors) better than a stream
     * of writes could, e.g. in
     * parallel parts. Runs `side` (if any) in the calling thread meanwhile.
     * Returns 1 when done, 0 when declined (nothing consumed, side not run:
     * the caller streams instead), -1 on error. */
    int (*from_fd)(uw_sink *s, int fd, uint64_t size, const char *what, const uw_side_work *side,
                   uw_err *err);
};

int uw_sink_write(uw_sink *s, const void *buf, size_t len, uw_err *err);
int uw_sink_finish(uw_sink *s, uw_err *err);
void uw_sink_free(uw_sink *s); /* frees the chain from s on */

/* Result of a hash sink, filled when the sink is finished. */
typedef struct {
    uint8_t sha256[32];
    uint64_t size;
} uw_digest;

/* Passes bytes through unchanged (next may be NULL) and records SHA-256 and size. */
uw_sink *uw_hash_sink(uw_sink *next, uw_digest *out);
/* Passes bytes through and adds their count to *count when finished. */
uw_sink *uw_count_sink(uw_sink *next, uint64_t *count);
/* Writes to a file descriptor it does not own; finish does not fsync. */
uw_sink *uw_fd_sink(int fd);
/* Collects everything in memory (for metadata and tests). */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} uw_buf;
void uw_buf_append(uw_buf *b, const void *data, size_t len);
/* Make room for n more bytes at once (avoids doubling past a known size). */
void uw_buf_reserve(uw_buf *b, size_t n);
void uw_buf_free(uw_buf *b);
uw_sink *uw_buf_sink(uw_buf *out);
/* Forwards writes to next but never finishes or frees it: lets a composite sink
 * finish an inner chain and then keep writing to the shared destination. */
uw_sink *uw_tee_sink(uw_sink *next);
/* Atomically creates `path` on finish: writes a temporary file in the same
 * directory, fsyncs it, renames it into place and fsyncs the directory. Destroy
 * without finish removes the temporary file. Flags: UW_FILE_NO_REPLACE fails
 * the finish when `path` already exists; UW_FILE_NO_SYNC keeps the atomic
 * rename but skips the fsyncs, for files whose loss after a crash only costs
 * redoing work (spool notes); UW_FILE_WRITEBACK (with NO_SYNC) starts the
 * kernel's writeback at finish without waiting for it, for files someone else
 * fsyncs later (PostgreSQL durably renames every segment it restores). */
#define UW_FILE_NO_REPLACE 0x1
#define UW_FILE_NO_SYNC 0x2
#define UW_FILE_WRITEBACK 0x4
uw_sink *uw_file_sink(const char *path, int mode, unsigned flags, uw_err *err);
/* A small file (mode 0600) written whole through uw_file_sink with flags. */
int uw_file_put(const char *path, const char *text, unsigned flags, uw_err *err);

/* A pipeline stage: what is written here reaches next from a thread of its
 * own (started when the first 256 KiB have come), so that the writer's work
 * (e.g. decompressing) and next's (hashing and writing a file) run on two
 * cores. At most 1 MiB is in flight. An error of next is reported by a later
 * write or by finish. */
uw_sink *uw_pipe_sink(uw_sink *next);

/* Feed a whole file through a sink (not finishing it). */
int uw_sink_from_fd(uw_sink *s, int fd, const char *what, uw_err *err);
/* pread exactly len bytes at off; a short file is an error naming `what`. */
int uw_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *what, uw_err *err);
/* SHA-256 and size of what remains to be read from fd. */
int uw_fd_digest(int fd, const char *what, uw_digest *d, uw_err *err);

/* One-shot SHA-256. */
void uw_sha256(const void *data, size_t len, uint8_t out[32]);

/* mkdir -p */
int uw_mkdir_p(const char *path, int mode, uw_err *err);
/* fsync a directory. */
int uw_fsync_dir(const char *path, uw_err *err);

#endif
