/* Decoding PostgreSQL's WAL records: enough of the page and record headers
 * (and of commit/abort records) to find where the valid WAL of a segment ends
 * and the newest transaction time in it. Input is untrusted (repository
 * objects): every read is bounded by the buffer, every record's CRC-32C is
 * checked before its contents are believed. */
#ifndef UW_WAL_DECODE_H
#define UW_WAL_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* What the records in the last reachable segment(s) say. */
typedef struct {
    uint64_t end_lsn; /* end of the last valid record */
    bool have_xact;
    int64_t xact_time_us;  /* newest commit/abort time (unix microseconds) */
    uint64_t xact_lsn;     /* where that record starts */
    char xact_segment[48]; /* segment holding it */
} uw_wal_end;

/* Decode one segment's records. Returns 0 and fills out (end_lsn = start of
 * the segment when it holds no complete record), -1 on a malformed segment
 * header. */
int uw_wal_decode_segment(const uint8_t *buf, size_t len, uint64_t seg_start, uint32_t seg_size,
                          uw_wal_end *out, uw_err *err);

/* PostgreSQL timestamps (microseconds since 2000-01-01) to unix microseconds. */
#define UW_PG_EPOCH_US INT64_C(946684800000000)

#endif
