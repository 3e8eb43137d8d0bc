/* uw_archive_reach (repo/archive_info.h) skips runs of consecutive segments
 * instead of asking for each one; it must answer exactly as recovery's
 * one-segment-at-a-time walk does, which is written out here as the
 * reference, on random archives (several timelines, gaps, forks, histories
 * in and out of order) and on a long one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/archive_info.h"
#include "unit.h"

static uw_repo dummy_repo; /* unencrypted: have_key is false */

/* The walk as PostgreSQL's XLogFileReadAnyTLI does it, segment by segment. */
static const uw_arch_seg *ref_segment_for(const uw_archive *a, const uw_tl_history *h,
                                          uint64_t segno, uint32_t min_tli, uint32_t *want)
{
    *want = 0;
    for (size_t i = h->n; i-- > 0;) {
        const uw_tl_entry *e = &h->e[i];
        if (e->tli < min_tli)
            break;
        if (e->begin && e->begin / a->seg_size > segno)
            continue;
        if (!*want)
            *want = e->tli;
        const uw_arch_seg *f = uw_archive_segment(a, e->tli, segno);
        if (f)
            return f;
    }
    return NULL;
}

static void ref_reach(const uw_archive *a, const uw_tl_history *h, uint64_t start_lsn,
                      uw_reach *out)
{
    memset(out, 0, sizeof *out);
    uint64_t segno = start_lsn / a->seg_size, max_segno = 0;
    for (size_t i = 0; i < a->nsegs; i++)
        if (a->segs[i].segno > max_segno)
            max_segno = a->segs[i].segno;
    uint32_t cur_tli = 0;
    for (;; segno++) {
        uint32_t want;
        const uw_arch_seg *f =
            segno > max_segno ? NULL : ref_segment_for(a, h, segno, cur_tli, &want);
        if (!f) {
            if (segno > max_segno)
                ref_segment_for(a, h, segno, cur_tli, &want);
            out->missing_tli = want;
            out->missing_segno = segno;
            break;
        }
        cur_tli = f->tli;
        out->any = true;
        out->last_tli = f->tli;
        out->last_segno = segno;
    }
    if (out->any)
        out->end_lsn = (out->last_segno + 1) * a->seg_size;
}

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(uint64_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state % n;
}

static void add_seg(uw_archive *a, uint32_t tli, uint64_t segno)
{
    uint8_t sha[32] = {0};
    CHECK(uw_archive_add_segment(a, &dummy_repo, 1, tli, segno, sha, "", 0) == 0);
}

static bool same(const uw_reach *x, const uw_reach *y)
{
    return x->any == y->any && x->last_tli == y->last_tli && x->last_segno == y->last_segno &&
           x->end_lsn == y->end_lsn && x->missing_tli == y->missing_tli &&
           x->missing_segno == y->missing_segno;
}

/* The archive a as verify keeps it: its segments cut into parts (as the
 * directories of the archive cut them, any run of consecutive entries will
 * do), each absorbed into a summary that keeps no segment. */
static void summarise(const uw_archive *a, uw_archive *sum)
{
    uw_archive_init(sum, a->seg_size);
    for (size_t i = 0; i < a->nsegs;) {
        size_t n = 1 + (size_t)rnd(40);
        uw_archive part;
        uw_archive_init(&part, a->seg_size);
        for (size_t k = 0; k < n && i < a->nsegs; k++, i++) {
            const uw_arch_seg *f = &a->segs[i];
            CHECK(uw_archive_add_segment(&part, &dummy_repo, 1, f->tli, f->segno, f->sha256, "",
                                         f->stored) == 0);
        }
        uw_archive_build(&part);
        uw_archive_absorb(sum, &part);
    }
}

/* The summary answers as the whole index does (timelines, gaps, reach). */
static int same_summary(const uw_archive *a, const uw_archive *sum)
{
    bool ok = sum->nsegs == 0 && sum->ntls == a->ntls;
    for (size_t i = 0; ok && i < a->ntls; i++) {
        const uw_arch_timeline *x = &a->tls[i], *y = &sum->tls[i];
        ok = x->tli == y->tli && x->first == y->first && x->last == y->last &&
             x->count == y->count && x->stored == y->stored && x->ngaps == y->ngaps;
        for (size_t g = 0; ok && g < x->ngaps; g++)
            ok = x->gaps[g].first == y->gaps[g].first && x->gaps[g].last == y->gaps[g].last;
    }
    CHECKF(ok, "the summary's timelines differ from the index's (%zu vs %zu timelines)", sum->ntls,
           a->ntls);
    return ok;
}

static int compare(const uw_archive *a, const uw_tl_history *h, uint64_t start_lsn)
{
    uw_reach fast, ref;
    uw_archive_reach(a, h, start_lsn, &fast);
    ref_reach(a, h, start_lsn, &ref);
    if (same(&fast, &ref))
        return 1;
    CHECKF(
        false,
        "start %llu: reach any=%d last %u/%llu missing %u/%llu, reference any=%d last "
        "%u/%llu missing %u/%llu",
        (unsigned long long)start_lsn, fast.any, fast.last_tli, (unsigned long long)fast.last_segno,
        fast.missing_tli, (unsigned long long)fast.missing_segno, ref.any, ref.last_tli,
        (unsigned long long)ref.last_segno, ref.missing_tli, (unsigned long long)ref.missing_segno);
    return 0;
}

/* The reach from the summary, against the reference walk on the index. */
static int compare_summary(const uw_archive *a, const uw_archive *sum, const uw_tl_history *h,
                           uint64_t start_lsn)
{
    uw_reach fast, ref;
    uw_archive_reach(sum, h, start_lsn, &fast);
    ref_reach(a, h, start_lsn, &ref);
    CHECKF(
        same(&fast, &ref),
        "start %llu: summary reach any=%d last %u/%llu missing %u/%llu, reference any=%d "
        "last %u/%llu missing %u/%llu",
        (unsigned long long)start_lsn, fast.any, fast.last_tli, (unsigned long long)fast.last_segno,
        fast.missing_tli, (unsigned long long)fast.missing_segno, ref.any, ref.last_tli,
        (unsigned long long)ref.last_segno, ref.missing_tli, (unsigned long long)ref.missing_segno);
    return same(&fast, &ref);
}

static void test_random(void)
{
    uw_t_section("reach: same as the segment-by-segment walk, from the index and its summary");
    const uint32_t seg = 1u << 20;
    int agree = 0, total = 0;
    for (int round = 0; round < 300; round++) {
        uw_archive a;
        uw_archive_init(&a, seg);
        uint32_t ntl = 1 + (uint32_t)rnd(4);
        uint64_t span = 20 + rnd(200);
        /* Timeline t begins at switch[t] (segments); t's segments from
         * there on, some missing; now and then older timelines keep going
         * past the switch (a fork that was archived too). */
        uint64_t sw[6] = {0};
        for (uint32_t t = 2; t <= ntl; t++)
            sw[t] = sw[t - 1] + rnd(span / 2 + 1);
        for (uint32_t t = 1; t <= ntl; t++) {
            /* ... and now and then a timeline's segments begin before its
             * switch point (archived from elsewhere). */
            uint64_t from = rnd(4) ? sw[t] : rnd(sw[t] + 1),
                     to = t < ntl && rnd(3) ? sw[t + 1] + rnd(10) : span;
            int gap_every = 2 + (int)rnd(40);
            for (uint64_t s = from; s <= to; s++)
                if (rnd((uint64_t)gap_every))
                    add_seg(&a, t, s);
        }
        uw_archive_build(&a);
        uw_archive sum;
        summarise(&a, &sum);
        same_summary(&a, &sum);
        for (uint32_t t = 1; t <= ntl; t++) {
            uw_tl_history h = {uw_calloc(t, sizeof(uw_tl_entry)), t};
            for (uint32_t i = 0; i < t; i++) {
                /* A switch point inside a segment, as they usually are. */
                uint64_t b = sw[i + 1] * seg + (i ? rnd(seg) : 0);
                h.e[i] = (uw_tl_entry){i + 1, i ? b : 0, UINT64_MAX};
                if (i)
                    h.e[i - 1].end = b;
            }
            /* Sometimes out of order (a hand-edited or odd history file). */
            if (t > 2 && rnd(4) == 0) {
                uw_tl_entry x = h.e[t - 2];
                h.e[t - 2] = h.e[t - 3];
                h.e[t - 3] = x;
            } else if (t > 2 && rnd(3) == 0) {
                /* Or the timelines swapped but not the switch points. */
                uint32_t x = h.e[t - 2].tli;
                h.e[t - 2].tli = h.e[t - 3].tli;
                h.e[t - 3].tli = x;
            }
            for (int k = 0; k < 12; k++) {
                uint64_t start = rnd((span + 5) * seg);
                total += 2;
                agree += compare(&a, &h, start);
                agree += compare_summary(&a, &sum, &h, start);
            }
            total += 2;
            agree += compare(&a, &h, 0);
            agree += compare_summary(&a, &sum, &h, 0);
            free(h.e);
        }
        uw_archive_free(&sum);
        uw_archive_free(&a);
    }
    CHECKF(agree == total, "%d of %d starts agree", agree, total);
}

static void test_long(void)
{
    uw_t_section("reach: 100,000 segments, 500 starts");
    const uint32_t seg = 1u << 20;
    uw_archive a;
    uw_archive_init(&a, seg);
    for (uint64_t s = 1; s <= 100000; s++)
        if (s != 70001) /* one gap */
            add_seg(&a, 1, s);
    uw_archive_build(&a);
    uw_tl_history h = {uw_calloc(1, sizeof(uw_tl_entry)), 1};
    h.e[0] = (uw_tl_entry){1, 0, UINT64_MAX};
    int ok = 0;
    for (uint64_t b = 0; b < 500; b++) {
        uw_reach r;
        uint64_t start = (2 + b * 199) * (uint64_t)seg + 40;
        uw_archive_reach(&a, &h, start, &r);
        uint64_t want = start / seg <= 70000 ? 70000 : 100000;
        ok += r.any && r.last_tli == 1 && r.last_segno == want && r.end_lsn == (want + 1) * seg &&
              r.missing_tli == 1 && r.missing_segno == want + 1;
    }
    CHECK_INT(ok, 500);
    /* A start past the end, and in the gap itself. */
    uw_reach r;
    uw_archive_reach(&a, &h, 100001ull * seg, &r);
    CHECK(!r.any && r.missing_segno == 100001 && r.missing_tli == 1);
    uw_archive_reach(&a, &h, 70001ull * seg + 8, &r);
    CHECK(!r.any && r.missing_segno == 70001);
    CHECK(compare(&a, &h, 3ull * seg));
    /* Verify's summary of it: one timeline, one gap, no segment kept
     * whatever the archive's length. */
    uw_archive sum;
    summarise(&a, &sum);
    CHECK(same_summary(&a, &sum));
    CHECK(sum.segs == NULL && sum.nsegs == 0 && sum.ntls == 1 && sum.tls[0].ngaps == 1 &&
          sum.tls[0].count == 99999);
    CHECK(compare_summary(&a, &sum, &h, 70001ull * seg + 8));
    CHECK(compare_summary(&a, &sum, &h, 3ull * seg));
    uw_archive_free(&sum);
    free(h.e);
    uw_archive_free(&a);
}

/* The compact index: names and object paths rebuilt exactly, one entry per
 * name with the first repository winning, different contents reported. */
static void test_compact(void)
{
    uw_t_section("compact index: names, objects, duplicates");
    const uint32_t seg = 1u << 20; /* 4096 segments per log id */
    uw_repo r1 = {0}, r2 = {0};
    r1.stanza = "main";
    r2.stanza = "main";
    uw_archive a;
    uw_archive_init(&a, seg);
    uint8_t s1[32], s2[32];
    memset(s1, 0xab, sizeof s1);
    memset(s2, 0x01, sizeof s2);
    CHECK(sizeof(uw_arch_seg) <= 56);
    /* Repository 2 scanned second but added first: the order must not matter. */
    CHECK(uw_archive_add_segment(&a, &r2, 2, 1, 4097, s1, ".zst", 10) == 0);
    CHECK(uw_archive_add_segment(&a, &r1, 1, 1, 4097, s1, ".zst.enc", 20) == 0);
    CHECK(uw_archive_add_segment(&a, &r1, 1, 1, 4096, s1, "", 30) == 0);
    /* Two contents for one name in repository 1: that copy does not count. */
    CHECK(uw_archive_add_segment(&a, &r1, 1, 2, 5, s1, ".zst", 1) == 0);
    CHECK(uw_archive_add_segment(&a, &r1, 1, 2, 5, s2, ".zst", 1) == 0);
    CHECK(uw_archive_add_segment(&a, &r2, 2, 2, 5, s1, ".zst", 7) == 0);
    uw_archive_build(&a);
    CHECK_INT((int)a.nsegs, 3);
    CHECK_INT((int)a.ntls, 2);
    const uw_arch_seg *f = uw_archive_segment(&a, 1, 4097);
    CHECK(f && f->stored == 20 && uw_archive_seg_repo(&a, f) == &r1);
    char name[32];
    uw_archive_seg_name(&a, f, name, sizeof name);
    CHECK_STR(name, "000000010000000100000001");
    char *obj = uw_archive_seg_object(&a, f);
    CHECK_STR(obj, "main/archive/0000000100000001/000000010000000100000001-"
                   "abababababababababababababababababababababababababababababababab.zst.enc");
    free(obj);
    char *dir = uw_archive_seg_dir(&a, f);
    CHECK_STR(dir, "main/archive/0000000100000001");
    free(dir);
    f = uw_archive_segment(&a, 1, 4096);
    obj = f ? uw_archive_seg_object(&a, f) : NULL;
    CHECK(obj && !strcmp(obj, "main/archive/0000000100000001/000000010000000100000000-"
                              "abababababababababababababababababababababababababababababababab"));
    free(obj);
    /* Timeline 2's segment 5 comes from repository 2, and is reported. */
    f = uw_archive_segment(&a, 2, 5);
    CHECK(f && uw_archive_seg_repo(&a, f) == &r2 && f->stored == 7);
    CHECK_INT((int)a.nduplicates, 1);
    CHECK(a.nduplicates == 1 && !strcmp(a.duplicates[0], "000000020000000000000005"));
    uw_arch_file file;
    uw_archive_seg_file(&a, f, &file);
    CHECK_STR(file.name, "000000020000000000000005");
    CHECK_STR(file.sha256, "abababababababababababababababababababababababababababababababab");
    CHECK(file.repo == &r2 && file.rank == 2 && file.segno == 5 && file.tli == 2);
    free(file.object);
    CHECK(a.tls[0].stored == 50 && a.tls[0].count == 2);
    /* Absorbed into a summary: the duplicate is reported from there. */
    uw_archive sum;
    uw_archive_init(&sum, seg);
    uw_archive_absorb(&sum, &a);
    CHECK(sum.nsegs == 0 && sum.ntls == 2 && sum.tls[0].count == 2 && sum.tls[1].count == 1);
    CHECK(sum.nduplicates == 1 && !strcmp(sum.duplicates[0], "000000020000000000000005"));
    CHECK(a.nduplicates == 0 && a.segs == NULL);
    uw_archive_free(&sum);
}

int main(void)
{
    test_compact();
    test_random();
    test_long();
    return uw_t_done("test_archive_reach");
}
