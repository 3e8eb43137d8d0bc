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
static const uw_arch_file *ref_segment_for(const uw_archive *a, const uw_tl_history *h,
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
        const uw_arch_file *f = uw_archive_segment(a, e->tli, segno);
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
        const uw_arch_file *f =
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
    if (a->nsegs == a->segs_cap) {
        a->segs_cap = a->segs_cap ? a->segs_cap * 2 : 256;
        a->segs = uw_realloc(a->segs, a->segs_cap * sizeof *a->segs);
    }
    uw_arch_file *f = &a->segs[a->nsegs++];
    memset(f, 0, sizeof *f);
    f->tli = tli;
    f->segno = segno;
    uw_seg_name(tli, segno, a->seg_size, f->name, sizeof f->name);
    memset(f->sha256, '0', 64);
    f->object = uw_strdup(f->name);
    f->repo = &dummy_repo;
    f->rank = 1;
}

static bool same(const uw_reach *x, const uw_reach *y)
{
    return x->any == y->any && x->last_tli == y->last_tli && x->last_segno == y->last_segno &&
           x->end_lsn == y->end_lsn && x->missing_tli == y->missing_tli &&
           x->missing_segno == y->missing_segno;
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

static void test_random(void)
{
    uw_t_section("reach: same as the segment-by-segment walk");
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
                total++;
                agree += compare(&a, &h, rnd((span + 5) * seg));
            }
            total++;
            agree += compare(&a, &h, 0);
            free(h.e);
        }
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
    free(h.e);
    uw_archive_free(&a);
}

int main(void)
{
    test_random();
    test_long();
    return uw_t_done("test_archive_reach");
}
