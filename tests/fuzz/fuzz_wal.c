/* WAL file names (as PostgreSQL passes them, and as listed in a repository),
 * LSNs, and a segment's first page header and records (common/pg/wal.c and
 * the record decoder of common/repo/archive_info.c). The input is a segment's
 * first bytes; its first line, when it is short, is also tried as a name. */
#include "fuzz.h"
#include "pg/wal.h"
#include "repo/archive_info.h"

static void names(const uint8_t *data, size_t size)
{
    size_t n = 0;
    while (n < size && n < 64 && data[n] != '\n')
        n++;
    char *s = fuzz_text(data, n);
    uw_wal_name w;
    uw_err err;
    if (uw_wal_parse(s, &w, &err) == 0) {
        char buf[64];
        uw_wal_format(&w, buf, sizeof buf);
        if (strcmp(buf, s) != 0)
            abort(); /* names are canonical: parse and format agree */
        if (w.kind != UW_WAL_HISTORY) {
            uint64_t segno = uw_wal_segno(&w, 16u << 20);
            uw_wal_name w2;
            uw_wal_from_segno(w.tli, segno, 16u << 20, &w2);
            uw_wal_next(&w, 16u << 20, &w2);
        }
    } else {
        fuzz_check_err(&err);
    }
    uint64_t lsn;
    if (uw_lsn_parse(s, &lsn) == 0) {
        char buf[32];
        uw_lsn_format(lsn, buf, sizeof buf);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    names(data, size);
    uw_wal_header h;
    uw_err err;
    uint32_t seg_size = 16u << 20;
    uint64_t seg_start = 0;
    if (uw_wal_header_parse(data, size, &h, &err) == 0) {
        if (uw_wal_seg_size_valid(h.seg_size))
            seg_size = h.seg_size;
        seg_start = h.pageaddr;
    } else {
        fuzz_check_err(&err);
    }
    /* The decoder reads a copy of exactly `size` bytes, so reading past the
     * end is seen by ASan. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    uw_wal_end end;
    if (uw_wal_decode_segment(copy, size, seg_start, seg_size, &end, &err) < 0) {
        fuzz_check_err(&err);
    } else if (end.have_xact) {
        char when[40]; /* as info shows it */
        uw_iso_time(end.xact_time_us, when, sizeof when);
    }
    free(copy);
    return 0;
}
