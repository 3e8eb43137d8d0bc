/* WAL file names and headers. Names are the contract with PostgreSQL: segments
 * TTTTTTTTLLLLLLLLSSSSSSSS, TTTTTTTT.history, <segment>.partial and
 * <segment>.XXXXXXXX.backup. */
#ifndef UW_WAL_H
#define UW_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum {
    UW_WAL_SEGMENT,
    UW_WAL_PARTIAL,
    UW_WAL_BACKUP,
    UW_WAL_HISTORY,
} uw_wal_kind;

typedef struct {
    uw_wal_kind kind;
    uint32_t tli;
    uint32_t log, seg; /* for segment-based kinds */
    uint32_t offset;   /* .backup: start offset in hex */
} uw_wal_name;

/* Parse a bare file name (no directories). Returns 0 or -1 (UW_E_WAL_INVALID). */
int uw_wal_parse(const char *name, uw_wal_name *out, uw_err *err);
/* Render back; buf holds at least 64 bytes. */
void uw_wal_format(const uw_wal_name *w, char *buf, size_t len);
/* Segment number as PostgreSQL counts it, for a given segment size. */
uint64_t uw_wal_segno(const uw_wal_name *w, uint32_t seg_size);
void uw_wal_from_segno(uint32_t tli, uint64_t segno, uint32_t seg_size, uw_wal_name *out);
/* The next segment (same timeline). */
void uw_wal_next(const uw_wal_name *w, uint32_t seg_size, uw_wal_name *out);
/* Segment containing an LSN. */
void uw_wal_from_lsn(uint32_t tli, uint64_t lsn, uint32_t seg_size, uw_wal_name *out);
/* "16/B374D848" <-> 64-bit LSN. */
int uw_lsn_parse(const char *s, uint64_t *lsn);
void uw_lsn_format(uint64_t lsn, char *buf, size_t len);
/* Valid WAL segment size: a power of two from 1 MiB to 1 GiB. */
bool uw_wal_seg_size_valid(uint64_t size);

/* The first page of a segment: its long header identifies the cluster. */
typedef struct {
    uint16_t magic;
    uint32_t tli;
    uint64_t pageaddr;
    uint64_t system_id;
    uint32_t seg_size;
    uint32_t block_size;
} uw_wal_header;

#define UW_WAL_LONG_HEADER_LEN 40
/* Parse the long page header from the first bytes of a segment. */
int uw_wal_header_parse(const uint8_t *buf, size_t len, uw_wal_header *out, uw_err *err);
/* The PostgreSQL major version that writes this page magic, or 0 if unknown. */
int uw_wal_magic_version(uint16_t magic);

#endif
