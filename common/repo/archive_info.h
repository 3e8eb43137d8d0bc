/* What the WAL archive holds and how far it reaches.
 *
 * A scan lists <stanza>/archive/ of one or more repositories (ue-wal-fetch
 * takes each file from whichever repository has it, so for recovery the
 * archive is the union) and sorts what it finds: segments per timeline with
 * their gaps, history files, .partial and .backup files, and names stored
 * twice with different content. On top of that:
 *
 *  - timeline histories, read from the archived <TLI>.history files the way
 *    PostgreSQL reads them, and the "latest" timeline as PostgreSQL resolves
 *    recovery_target_timeline = 'latest' (probing TLI+1, TLI+2, ... in the
 *    archive);
 *  - reachability: starting from a backup's start LSN, the segments recovery
 *    asks for along a timeline history, up to the first missing one;
 *  - the end of the WAL inside the last reachable segment and the newest
 *    transaction time in it, decoded from the records themselves.
 *
 * Restore uses this to refuse targets the archive cannot reach; info reports
 * it; retention will use it to know which segments a backup still needs. */
#ifndef UW_ARCHIVE_INFO_H
#define UW_ARCHIVE_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "pg/wal_decode.h"
#include "repo/repo.h"

/* One archived history, .partial or .backup file (a few per archive). */
typedef struct {
    uint32_t tli;
    uint64_t segno;  /* segments; 0 for history files */
    char name[48];   /* WAL file name */
    char sha256[65]; /* of the original content, from the object name */
    char *object;    /* path in the repository */
    uint64_t stored; /* object size */
    uw_repo *repo;   /* repository holding it (borrowed) */
    int rank;        /* scan order of the repository: earlier wins */
} uw_arch_file;

/* One archived segment. An archive holds hundreds of thousands of them, so
 * each is 56 bytes in one sorted array and owns no allocation: its WAL name
 * is rebuilt from (tli, segno) and its object's path from the content id and
 * the suffix (uw_archive_seg_name, uw_archive_seg_object). The scan keeps
 * only names that rebuild exactly: the names ue-wal-push writes. */
typedef struct {
    uint64_t segno;
    uint64_t stored; /* object size */
    uint32_t tli;
    uint16_t rank;      /* scan order of the repository (1-based): earlier wins */
    uint16_t suffix;    /* what follows the content id: uw_archive.suffixes[suffix] */
    uint8_t sha256[32]; /* content id, from the object name */
} uw_arch_seg;

typedef struct {
    uint64_t first, last; /* segment numbers, inclusive */
} uw_seg_range;

/* Segments of one timeline: what reach and gaps are computed from, without
 * the segments themselves (uw_archive_absorb keeps only this). */
typedef struct {
    uint32_t tli;
    uint64_t first, last; /* segment numbers */
    size_t count;
    uint64_t stored;    /* bytes in the repository */
    uw_seg_range *gaps; /* missing ranges between first and last */
    size_t ngaps;
} uw_arch_timeline;

typedef struct {
    uint32_t seg_size;
    uw_arch_seg *segs; /* sorted by (tli, segno), one per name */
    size_t nsegs, segs_cap;
    char **suffixes; /* ".zst", ".zst.enc", "": each distinct one once */
    size_t nsuffixes;
    uw_repo **repos;       /* by rank - 1 */
    uw_arch_file *history; /* sorted by tli */
    size_t nhistory, history_cap;
    uw_arch_file *other; /* .partial and .backup files, by name */
    size_t nother, other_cap;
    char **duplicates; /* names stored with more than one content */
    size_t nduplicates;
    uw_arch_timeline *tls; /* sorted by tli; filled by uw_archive_build */
    size_t ntls;
    int scans; /* repositories scanned so far */
    size_t scans_cap, last_suffix;
} uw_archive;

void uw_archive_init(uw_archive *a, uint32_t seg_size);
/* Add the archive of one repository. A name already found in an earlier scanned
 * repository keeps that repository's object (the order fetch tries them in). */
int uw_archive_scan(uw_archive *a, uw_repo *r, uw_err *err);
/* Sort, de-duplicate and compute timelines and gaps. Call after the scans. */
void uw_archive_build(uw_archive *a);
void uw_archive_free(uw_archive *a);

/* The same one directory at a time, for a caller that must not hold one
 * entry per segment of the whole archive (verify): the archive's directories
 * ("history" and the 16-hex-digit ones, in name order, so in segment order;
 * caller frees each and the array), and one of them added to a (rank as
 * uw_archive_scan gives it: 1 for the first repository scanned). */
int uw_archive_dirs(uw_repo *r, char ***dirs, size_t *n, uw_err *err);
int uw_archive_scan_dir(uw_archive *a, uw_repo *r, int rank, const char *dir, uw_err *err);
/* One object listed in archive directory dir, added as uw_archive_scan_dir
 * adds it (what is no archive object, or misplaced, is left out): for a
 * caller that lists the directory itself. */
void uw_archive_add_object(uw_archive *a, uw_repo *r, int rank, const char *dir, const char *name,
                           uint64_t size);
/* Move a built archive part (one directory of the archive) into sum: its
 * segments are added to sum's timelines and gaps only (sum->segs stays
 * empty: reach, gaps and counts still work, uw_archive_segment finds
 * nothing), its history and other files and duplicates are moved. Parts
 * come in directory name order, so each one's segments follow sum's on
 * their timeline. part is freed. */
void uw_archive_absorb(uw_archive *sum, uw_archive *part);

const uw_arch_seg *uw_archive_segment(const uw_archive *a, uint32_t tli, uint64_t segno);
/* Add a segment (tests, and the scan); suffix is what follows the content id
 * in the object name ("" or ".zst..."). Returns -1 when the archive holds too
 * many distinct suffixes (a hostile repository: the object is left out). */
int uw_archive_add_segment(uw_archive *a, uw_repo *r, int rank, uint32_t tli, uint64_t segno,
                           const uint8_t sha256[32], const char *suffix, uint64_t stored);
/* A segment's WAL file name (buf: 25 bytes or more), repository, and object
 * path relative to the repository root (caller frees). */
void uw_archive_seg_name(const uw_archive *a, const uw_arch_seg *s, char *buf, size_t len);
uw_repo *uw_archive_seg_repo(const uw_archive *a, const uw_arch_seg *s);
char *uw_archive_seg_object(const uw_archive *a, const uw_arch_seg *s);
/* The archive directory holding segment s, relative to the repository root
 * ("<stanza>/archive/<first 16 of its name>"; caller frees). */
char *uw_archive_seg_dir(const uw_archive *a, const uw_arch_seg *s);
/* Everything about segment s as a uw_arch_file; free out->object. */
void uw_archive_seg_file(const uw_archive *a, const uw_arch_seg *s, uw_arch_file *out);
const uw_arch_file *uw_archive_history_file(const uw_archive *a, uint32_t tli);

/* A timeline history as PostgreSQL sees it: the ancestors, oldest first, each
 * valid for LSNs [begin, end); the last entry is the timeline itself, open
 * ended (end = UINT64_MAX). */
typedef struct {
    uint32_t tli;
    uint64_t begin, end;
} uw_tl_entry;

typedef struct {
    uw_tl_entry *e;
    size_t n;
} uw_tl_history;

/* Read the history of timeline tli from its archived history file (timeline 1
 * has none). A missing history file for tli > 1 is UW_E_NOT_FOUND. */
int uw_archive_tl_history(const uw_archive *a, uint32_t tli, uw_tl_history *h, uw_err *err);
void uw_tl_history_free(uw_tl_history *h);
/* Parse the text of timeline tli's history file (`name` for messages); text
 * is modified. Malformed content is UW_E_CORRUPT. */
int uw_tl_history_parse(char *text, uint32_t tli, const char *name, uw_tl_history *h, uw_err *err);
/* recovery_target_timeline = 'latest': PostgreSQL probes for the history
 * files of from+1, from+2, ... and takes the last one found. */
uint32_t uw_archive_latest_tli(const uw_archive *a, uint32_t from);
/* The timeline of `lsn` in history h (the newest entry holding it, as
 * PostgreSQL decides), or 0 when lsn is not on it. */
uint32_t uw_tl_of_lsn(const uw_tl_history *h, uint64_t lsn);

/* How far recovery from start_lsn gets along history h with what is archived,
 * asking for segments the way PostgreSQL does (newest timeline of the history
 * first, falling back to older ones, never going back below the timeline of
 * the file read before). */
typedef struct {
    bool any;          /* the start segment itself is archived */
    uint32_t last_tli; /* last segment recovery can read */
    uint64_t last_segno;
    uint64_t end_lsn;     /* end of that segment */
    uint32_t missing_tli; /* the first segment it would ask for and not find */
    uint64_t missing_segno;
} uw_reach;

void uw_archive_reach(const uw_archive *a, const uw_tl_history *h, uint64_t start_lsn,
                      uw_reach *out);

/* Decode the segment where `reach` ends, and earlier ones (on the history h,
 * not before segment min_segno) until a transaction record is found.
 * max_segments bounds how many segments are read. */
int uw_archive_wal_end(const uw_archive *a, const uw_tl_history *h, const uw_reach *reach,
                       uint64_t min_segno, int max_segments, uw_wal_end *out, uw_err *err);

/* Segment name helper: buf holds at least 32 bytes. */
void uw_seg_name(uint32_t tli, uint64_t segno, uint32_t seg_size, char *buf, size_t len);

/* "2026-11-25T12:00:00Z" (microseconds shown when not zero); buf >= 40. */
void uw_iso_time(int64_t unix_us, char *buf, size_t len);

#endif
