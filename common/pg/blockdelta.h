/* Block-level incremental content. A delta holds only the 8 KiB pages of a
 * relation file whose page LSN is newer than the reference backup's start LSN
 * (or zero: new, not yet initialised pages), plus the file's new size. Pages
 * with an older LSN cannot have changed in a way WAL replay from this backup's
 * start would not repair, so the reference backup's copy stands in for them.
 *
 * Stream format (little-endian): "UWBD" u32 version(1) u64 0 u32 block-size
 * u32 0, then records of u32 block number, u32 length, length bytes; the last
 * record has block number 0xFFFFFFFF and holds the file's final size (u64). */
#ifndef UW_BLOCKDELTA_H
#define UW_BLOCKDELTA_H

#include <stdbool.h>
#include <stdint.h>

#include "io/sink.h"

#define UW_BLCKSZ 8192

/* Relation data files whose pages carry reliable LSNs: main and init forks.
 * Not _fsm (not WAL-logged page by page) and not _vm (bits are cleared without
 * an LSN change). */
bool uw_blockdelta_eligible(const char *path);

typedef struct {
    uint64_t pages, changed;
} uw_blockdelta_stats;

/* Read fd to EOF, write the delta of pages newer than `since_lsn` to out (not
 * finished), and the SHA-256/size of the whole file to digest. */
int uw_blockdelta_build(int fd, const char *what, uint64_t since_lsn, uw_sink *out,
                        uw_digest *digest, uw_blockdelta_stats *stats, uw_err *err);

/* A sink taking a delta stream that pwrites the pages into fd and sets the
 * file's final size on finish. Owns nothing; next is NULL. */
uw_sink *uw_blockdelta_apply_sink(int fd);

#endif
