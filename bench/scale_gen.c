/* bench/scale_gen: a big repository, quickly, through the product's own code
 * (bench/scale.sh, "big repository").
 *
 *   scale-gen --config FILE --stanza NAME [--process-max N] SEGMENTS BACKUPS PGDATA
 *
 * Writes into repo1 of FILE (posix, unencrypted, empty stanza):
 *
 *  - stanza.info (uw_repo_save_info) for a made-up system identifier,
 *    PostgreSQL 15 and 1 MiB WAL segments (initdb --wal-segsize=1: the
 *    smallest real segment, so that 100,000 of them are hashed in minutes);
 *  - SEGMENTS consecutive segments of timeline 1 from 000000010000000000000001
 *    on. Each is a real-looking segment: a long page header, then a short one
 *    on every 8 KiB page (system id, segment size, page addresses: what
 *    ue-wal-fetch checks before delivering), one commit record (CRC-32C,
 *    xl_prev chained to the previous segment's record) whose time is one
 *    minute after the previous segment's, and zeros, as PostgreSQL leaves a
 *    segment it switched away from. Stored by the object writer under the
 *    name ue-wal-push gives it (uw_repo_wal_dir, uw_repo_content_id_hex,
 *    uw_object_writer with the WAL name bound), in process-max threads;
 *  - BACKUPS backups spread evenly over the WAL, one full then seven
 *    incrementals in turn. The files of a small data directory built in
 *    PGDATA (PG_VERSION, pg_control, backup_label, a few 4-page relation
 *    files) go through uw_backup_file, the per-file worker of ue-basebackup,
 *    so an incremental stores the changed relation as a block delta and
 *    references the unchanged files; each manifest is saved by
 *    uw_manifest_save. Every backup's start..stop WAL is archived.
 *
 * Everything is valid: `ue-pitr verify` reads every object and finds no
 * problem, ue-wal-fetch delivers any segment.
 *
 * Durability is not needed for a fixture (a crash means generating it again),
 * so fsync() and fdatasync() below replace libc's for the library code linked
 * into this program: 100,000 objects with two fsyncs each would otherwise
 * take longer than the rest. A sync of the file system follows at the end. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "io/object.h"
#include "pg/wal.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "work/backup_file.h"
#include "work/pool.h"

int fsync(int fd)
{
    (void)fd;
    return 0;
}

int fdatasync(int fd)
{
    (void)fd;
    return 0;
}

#define SEG_SIZE (1u << 20)
#define BLCKSZ 8192u
#define SYSID UINT64_C(7400000000000000042)
#define PG15_MAGIC 0xD110
/* Segment 1 starts at T0 + 60 s; each later one a minute after. */
#define MINUTE 60

static int64_t t0; /* unix seconds */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t crc32c_table[256];

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[i] = c;
    }
}

static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n--)
        crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

/* Where segment segno's commit record starts: right after the long header. */
#define REC_OFF 40u
#define REC_LEN 34u /* header 24 + XLR_BLOCK_ID_DATA_SHORT, length, xact_time */

static int64_t seg_time(uint64_t segno)
{
    return t0 + (int64_t)segno * MINUTE;
}

static void make_segment(uint8_t *seg, uint64_t segno)
{
    memset(seg, 0, SEG_SIZE);
    uint64_t start = segno * SEG_SIZE;
    for (uint32_t off = 0; off < SEG_SIZE; off += BLCKSZ) {
        uint8_t *p = seg + off;
        put16(p, PG15_MAGIC);
        put16(p + 2, off == 0 ? 0x0002 : 0); /* XLP_LONG_HEADER on the first page */
        put32(p + 4, 1);                     /* timeline */
        put64(p + 8, start + off);           /* xlp_pageaddr */
        if (off == 0) {
            put64(p + 24, SYSID);
            put32(p + 32, SEG_SIZE);
            put32(p + 36, BLCKSZ);
        }
    }
    uint8_t *rec = seg + REC_OFF;
    put32(rec, REC_LEN);                                        /* xl_tot_len */
    put32(rec + 4, (uint32_t)(1000 + segno));                   /* xl_xid */
    put64(rec + 8, segno > 1 ? start - SEG_SIZE + REC_OFF : 0); /* xl_prev */
    rec[16] = 0;                                                /* XLOG_XACT_COMMIT */
    rec[17] = 1;                                                /* RM_XACT_ID */
    rec[24] = 255;                                              /* XLR_BLOCK_ID_DATA_SHORT */
    rec[25] = 8;
    int64_t pg_us = (seg_time(segno) - 946684800) * INT64_C(1000000);
    put64(rec + 26, (uint64_t)pg_us);
    uint32_t crc = crc32c(0xFFFFFFFFu, rec + 24, REC_LEN - 24);
    crc = crc32c(crc, rec, 20) ^ 0xFFFFFFFFu;
    put32(rec + 20, crc);
}

typedef struct {
    const uw_config *cfg;
    uw_repo *main;
    uw_repo *workers;
    const uw_compressor *comp;
    int level;
    uint8_t **bufs; /* one segment buffer per worker */
    atomic_ullong stored;
} seg_ctx;

static int seg_job(void *ctx, size_t i, uw_err *err)
{
    seg_ctx *c = ctx;
    int w = uw_pool_worker_id();
    uw_repo *r = &c->workers[w];
    if (!r->st && uw_repo_clone(c->cfg, c->main, r, err) < 0)
        return -1;
    if (!c->bufs[w])
        c->bufs[w] = uw_malloc(SEG_SIZE);
    uint8_t *seg = c->bufs[w];
    uint64_t segno = (uint64_t)i + 1;
    make_segment(seg, segno);
    char name[64];
    uw_wal_name wn;
    uw_wal_from_segno(1, segno, SEG_SIZE, &wn);
    uw_wal_format(&wn, name, sizeof name);
    uint8_t sha[32];
    uw_sha256(seg, SEG_SIZE, sha);
    char id[65];
    uw_repo_content_id_hex(r, sha, id);
    char *dir = uw_repo_wal_dir(r, name);
    char *object = uw_sprintf("%s/%s-%s%s", dir, name, id, c->comp->ext);
    free(dir);
    uint64_t stored = 0;
    int rc = -1;
    uw_sink *dest = uw_storage_write(r->st, object, err);
    if (dest) {
        dest = uw_count_sink(dest, &stored);
        uw_obj_write_opts o = {UW_OBJ_WAL, SYSID, c->comp, c->level, 1, NULL, sha, name};
        uw_sink *wr = uw_object_writer(&o, dest, NULL, err);
        if (wr) {
            rc = uw_sink_write(wr, seg, SEG_SIZE, err);
            if (rc == 0)
                rc = uw_sink_finish(wr, err);
            uw_sink_free(wr);
        }
    }
    free(object);
    atomic_fetch_add(&c->stored, stored);
    return rc;
}

/* ------------------------------------------------------------- backups -- */

static int write_file(const char *path, const void *data, size_t len, int64_t mtime, uw_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return uw_fail(err, UW_E_FILE, "unable to create '%s': %s", path, strerror(errno));
    ssize_t n = write(fd, data, len);
    close(fd);
    if (n != (ssize_t)len)
        return uw_fail(err, UW_E_FILE, "unable to write '%s'", path);
    struct timeval tv[2] = {{(time_t)mtime, 0}, {(time_t)mtime, 0}};
    utimes(path, tv);
    return 0;
}

#define RELS 4
#define REL_PAGES 4

/* A heap page with its LSN (pd_lsn: xlogid, xrecoff) and some tuples' worth
 * of varying bytes. */
static void rel_page(uint8_t *p, uint64_t lsn, uint64_t salt)
{
    memset(p, 0, BLCKSZ);
    put32(p, (uint32_t)(lsn >> 32));
    put32(p + 4, (uint32_t)lsn);
    put16(p + 12, 24 + 4 * 8);   /* pd_lower */
    put16(p + 14, BLCKSZ - 512); /* pd_upper */
    put16(p + 16, BLCKSZ);       /* pd_special */
    put16(p + 18, 0x2004);       /* page size | layout version 4 */
    for (uint32_t k = BLCKSZ - 512; k < BLCKSZ; k += 8)
        put64(p + k, salt * 0x9E3779B97F4A7C15ull + k);
}

static int write_rel(const char *pgdata, int rel, uint64_t lsn, int changed_page, uint64_t salt,
                     int64_t mtime, uint8_t *pages, uw_err *err)
{
    char *path = uw_sprintf("%s/base/1/%d", pgdata, 16384 + rel);
    /* Keep the other pages as they are: only changed_page gets the new LSN
     * (-1: every page, the first time). */
    if (changed_page >= 0) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, pages, REL_PAGES * BLCKSZ) != (ssize_t)(REL_PAGES * BLCKSZ)) {
            if (fd >= 0)
                close(fd);
            int rc = uw_fail(err, UW_E_FILE, "unable to read '%s'", path);
            free(path);
            return rc;
        }
        close(fd);
        rel_page(pages + (size_t)changed_page * BLCKSZ, lsn, salt);
    } else {
        for (int pg = 0; pg < REL_PAGES; pg++)
            rel_page(pages + (size_t)pg * BLCKSZ, lsn, salt + (uint64_t)pg);
    }
    int rc = write_file(path, pages, REL_PAGES * BLCKSZ, mtime, err);
    free(path);
    return rc;
}

static void add_dir(uw_manifest *m, const char *path, int64_t mtime)
{
    uw_mf_entry e = {0};
    e.path = (char *)path;
    e.type = 'd';
    e.mode = 0700;
    e.mtime = mtime;
    uw_manifest_add(m, &e);
}

static void stamp(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y%m%d-%H%M%S", &tm);
}

static int one_backup(uw_repo *r, const uw_compressor *comp, int level, const char *pgdata, int b,
                      uint64_t segno, uw_manifest *prior, uw_manifest *m, uw_err *err)
{
    bool full = !prior;
    uint64_t start_lsn = segno * SEG_SIZE + REC_OFF;
    uint64_t stop_lsn = (segno + 1) * SEG_SIZE + REC_OFF + REC_LEN;
    int64_t start_time = seg_time(segno), stop_time = seg_time(segno + 1);
    uw_manifest_init(m);
    char st[32];
    stamp(start_time, st, sizeof st);
    if (full)
        snprintf(m->id, sizeof m->id, "%sF", st);
    else
        snprintf(m->id, sizeof m->id, "%.16s_%sI", prior->id, st);
    snprintf(m->type, sizeof m->type, "%s", full ? "full" : "incr");
    if (!full)
        snprintf(m->prior, sizeof m->prior, "%s", prior->id);
    snprintf(m->compress_type, sizeof m->compress_type, "%s", comp->name);
    m->encrypted = false;
    m->pg_version = 15;
    m->system_id = SYSID;
    m->wal_seg_size = SEG_SIZE;
    m->timeline = 1;
    m->start_lsn = start_lsn;
    m->stop_lsn = stop_lsn;
    m->start_time = start_time;
    m->stop_time = stop_time;
    m->duration_ms = (stop_time - start_time) * 1000;
    uw_wal_name w;
    uw_wal_from_lsn(1, start_lsn, SEG_SIZE, &w);
    uw_wal_format(&w, m->start_wal, sizeof m->start_wal);
    uw_wal_from_lsn(1, stop_lsn - 1, SEG_SIZE, &w);
    uw_wal_format(&w, m->stop_wal, sizeof m->stop_wal);

    /* The data directory as of this backup: a full rewrites every relation,
     * an incremental one page of one relation (a block delta). */
    uint8_t *pages = uw_malloc(REL_PAGES * BLCKSZ);
    int rc = 0;
    for (int rel = 0; rel < RELS && rc == 0; rel++)
        if (full || rel == b % RELS)
            rc = write_rel(pgdata, rel, start_lsn, full ? -1 : b % REL_PAGES,
                           (uint64_t)b * 131 + (uint64_t)rel, start_time, pages, err);
    free(pages);
    char *label = uw_sprintf("START WAL LOCATION: %X/%X (file %s)\nCHECKPOINT LOCATION: %X/%X\n"
                             "BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: %s\n"
                             "LABEL: ue-wal %s\nSTART TIMELINE: 1\n",
                             (unsigned)(start_lsn >> 32), (unsigned)start_lsn, m->start_wal,
                             (unsigned)(start_lsn >> 32), (unsigned)start_lsn, st, m->id);
    char *lp = uw_sprintf("%s/backup_label", pgdata);
    if (rc == 0)
        rc = write_file(lp, label, strlen(label), stop_time, err);
    free(lp);
    free(label);
    if (rc < 0)
        return -1;

    add_dir(m, "base", start_time);
    add_dir(m, "base/1", start_time);
    add_dir(m, "global", start_time);
    static const char *fixed[] = {"PG_VERSION", "global/pg_control", "backup_label"};
    uw_backup_ctx ctx = {r, m->id, comp, level, prior};
    for (int k = 0; k < 3 + RELS && rc == 0; k++) {
        char rel[32];
        if (k >= 3)
            snprintf(rel, sizeof rel, "base/1/%d", 16384 + k - 3);
        const char *path = k < 3 ? fixed[k] : rel;
        char *src = uw_sprintf("%s/%s", pgdata, path);
        uw_mf_entry e = {0};
        e.path = (char *)path;
        e.type = 'f';
        uw_backup_result res;
        rc = uw_backup_file(&ctx, src, &e, &res, err);
        free(src);
        if (rc < 0)
            break;
        m->total_size += e.size;
        if (!res.referenced) {
            m->size += e.size;
            m->stored += e.stored;
        }
        uw_manifest_add(m, &e);
    }
    if (rc == 0) {
        uw_manifest_sort(m);
        rc = uw_manifest_save(r, m, err);
    }
    return rc;
}

static int make_pgdata(const char *pgdata, uw_err *err)
{
    char *d[] = {uw_sprintf("%s/base", pgdata), uw_sprintf("%s/base/1", pgdata),
                 uw_sprintf("%s/global", pgdata)};
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        if (rc == 0 && mkdir(d[i], 0700) < 0 && errno != EEXIST)
            rc = uw_fail(err, UW_E_FILE, "unable to create '%s': %s", d[i], strerror(errno));
        free(d[i]);
    }
    if (rc < 0)
        return -1;
    char *p = uw_sprintf("%s/PG_VERSION", pgdata);
    rc = write_file(p, "15\n", 3, t0, err);
    free(p);
    uint8_t ctl[BLCKSZ] = {0};
    put64(ctl, SYSID);
    put32(ctl + 8, 1300); /* pg_control_version */
    p = uw_sprintf("%s/global/pg_control", pgdata);
    if (rc == 0)
        rc = write_file(p, ctl, sizeof ctl, t0, err);
    free(p);
    return rc;
}

int main(int argc, char **argv)
{
    uw_err err;
    uw_err_clear(&err);
    uw_config *cfg = uw_config_load(argc, argv, UW_CMD_PITR, &err);
    if (!cfg || uw_config_argc(cfg) != 3) {
        fprintf(stderr,
                "usage: scale-gen --config FILE --stanza NAME [--process-max N] SEGMENTS "
                "BACKUPS PGDATA%s%s\n",
                cfg ? "" : ": ", cfg ? "" : err.msg);
        return 2;
    }
    uint64_t nseg = strtoull(uw_config_arg(cfg, 0), NULL, 10);
    int nback = atoi(uw_config_arg(cfg, 1));
    const char *pgdata = uw_config_arg(cfg, 2);
    if (nseg < 4 || nback < 1 || (uint64_t)nback * 2 + 2 > nseg) {
        fprintf(stderr, "scale-gen: need SEGMENTS >= 4 and BACKUPS <= (SEGMENTS - 2) / 2\n");
        return 2;
    }
    crc32c_init();
    /* The newest segment a minute ago. */
    t0 = (int64_t)time(NULL) - (int64_t)(nseg + 1) * MINUTE;
    uw_repo *repos;
    int n;
    if (uw_repos_open(cfg, &repos, &n, &err) < 0)
        goto fail;
    uw_repo *r = &repos[0];
    uw_stanza_info info = {0};
    info.system_id = SYSID;
    info.pg_version = 15;
    info.wal_seg_size = SEG_SIZE;
    info.created = t0;
    snprintf(info.cipher_type, sizeof info.cipher_type, "none");
    if (strcmp(uw_cfg_str(cfg, UW_OPT_CIPHER_TYPE), "none") != 0) {
        uw_fail(&err, UW_E_OPTION, "scale-gen writes unencrypted stanzas only");
        goto fail;
    }
    if (uw_repo_save_info(r, &info, NULL, &err) < 0 || uw_repo_load(r, cfg, &err) < 0)
        goto fail;
    const uw_compressor *comp = uw_compressor_by_name(uw_cfg_str(cfg, UW_OPT_COMPRESS_TYPE));
    int level = (int)uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL);
    int workers = (int)uw_cfg_int(cfg, UW_OPT_PROCESS_MAX);

    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    seg_ctx sc = {cfg,  r,     uw_calloc((size_t)workers, sizeof(uw_repo)),
                  comp, level, uw_calloc((size_t)workers, sizeof(uint8_t *)),
                  0};
    int rc = uw_pool_run(workers, nseg, seg_job, &sc, &err);
    for (int i = 0; i < workers; i++) {
        if (sc.workers[i].st)
            uw_repo_release(&sc.workers[i]);
        free(sc.bufs[i]);
    }
    free(sc.workers);
    free(sc.bufs);
    if (rc < 0)
        goto fail;
    clock_gettime(CLOCK_MONOTONIC, &z);
    fprintf(stderr, "scale-gen: %" PRIu64 " segments, %llu bytes stored, %.1f s\n", nseg,
            (unsigned long long)atomic_load(&sc.stored),
            (double)(z.tv_sec - a.tv_sec) + (z.tv_nsec - a.tv_nsec) / 1e9);

    /* Backups every `step` segments, the first at segment 2, the last with
     * its stop segment archived. */
    if (make_pgdata(pgdata, &err) < 0)
        goto fail;
    uint64_t step = (nseg - 2) / (uint64_t)nback;
    uw_manifest prev;
    bool have_prev = false;
    for (int b = 0; b < nback; b++) {
        uw_manifest m;
        bool full = b % 8 == 0;
        rc = one_backup(r, comp, level, pgdata, b, 2 + (uint64_t)b * step,
                        full || !have_prev ? NULL : &prev, &m, &err);
        if (have_prev)
            uw_manifest_free(&prev);
        prev = m;
        have_prev = true;
        if (rc < 0)
            break;
    }
    if (have_prev)
        uw_manifest_free(&prev);
    if (rc < 0)
        goto fail;
    clock_gettime(CLOCK_MONOTONIC, &a);
    fprintf(stderr, "scale-gen: %d backups, %.1f s\n", nback,
            (double)(a.tv_sec - z.tv_sec) + (a.tv_nsec - z.tv_nsec) / 1e9);
    uw_repos_close(repos, n);
    uw_config_free(cfg);
    sync();
    return 0;
fail:
    fprintf(stderr, "scale-gen: %s\n", err.msg);
    return 1;
}
