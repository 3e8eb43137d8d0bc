/* Progress reporter (core/progress.h). */
#include "core/progress.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"

/* Milliseconds between redraws on a terminal, and between log lines elsewhere. */
#define TTY_EVERY_MS 250.0
#define LOG_EVERY_MS 5000.0

struct uw_progress {
    const char *what;
    uint64_t total_bytes, total_files;
    atomic_uint_least64_t bytes, files;
    bool enabled, tty;
    double t0;
    pthread_mutex_t mu; /* guards `last` and the printing */
    double last;
};

static void eta_text(char *buf, size_t len, double secs)
{
    uint64_t s = (uint64_t)(secs + 0.5);
    if (s >= 3600)
        snprintf(buf, len, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, len, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
}

void uw_progress_format(char *buf, size_t len, const char *what, uint64_t done_bytes,
                        uint64_t total_bytes, uint64_t done_files, uint64_t total_files,
                        double elapsed_s)
{
    char done[32], total[32];
    uw_fmt_size(done_bytes, done, sizeof done);
    uw_fmt_size(total_bytes, total, sizeof total);
    /* Files can grow while they are copied: never above 100%. */
    unsigned pct = total_bytes ? (unsigned)(done_bytes >= total_bytes
                                                ? 100
                                                : (double)done_bytes * 100.0 / (double)total_bytes)
                               : (done_files >= total_files ? 100 : 0);
    int n = snprintf(buf, len, "%s: %s of %s (%u%%), %" PRIu64 " of %" PRIu64 " files", what, done,
                     total, pct, done_files, total_files);
    if (n < 0 || (size_t)n >= len || elapsed_s < 0.5 || done_bytes == 0)
        return;
    double rate = (double)done_bytes / elapsed_s;
    char r[32], eta[32];
    uw_fmt_size((uint64_t)rate, r, sizeof r);
    uint64_t left = total_bytes > done_bytes ? total_bytes - done_bytes : 0;
    eta_text(eta, sizeof eta, (double)left / rate);
    snprintf(buf + n, len - (size_t)n, ", %s/s, ETA %s", r, eta);
}

uw_progress *uw_progress_start(const char *what, uint64_t total_bytes, uint64_t total_files,
                               bool enabled)
{
    uw_progress *p = uw_calloc(1, sizeof *p);
    p->what = what;
    p->total_bytes = total_bytes;
    p->total_files = total_files;
    atomic_init(&p->bytes, 0);
    atomic_init(&p->files, 0);
    p->enabled = enabled;
    p->tty = isatty(2) == 1;
    p->t0 = p->last = uw_now_ms();
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

static void report(uw_progress *p, double now)
{
    char line[256];
    uw_progress_format(line, sizeof line, p->what, atomic_load(&p->bytes), p->total_bytes,
                       atomic_load(&p->files), p->total_files, (now - p->t0) / 1000.0);
    if (p->tty)
        uw_log_status(line);
    else
        uw_log(UW_LOG_DETAIL, "%s", line);
}

void uw_progress_add(uw_progress *p, uint64_t bytes, uint64_t files)
{
    atomic_fetch_add(&p->bytes, bytes);
    atomic_fetch_add(&p->files, files);
    if (!p->enabled || (!p->tty && !uw_log_enabled(UW_LOG_DETAIL)))
        return;
    double now = uw_now_ms();
    /* One thread prints; the others go on with their work. */
    if (pthread_mutex_trylock(&p->mu) != 0)
        return;
    if (now - p->last >= (p->tty ? TTY_EVERY_MS : LOG_EVERY_MS)) {
        p->last = now;
        report(p, now);
    }
    pthread_mutex_unlock(&p->mu);
}

void uw_progress_finish(uw_progress *p)
{
    if (!p)
        return;
    if (p->enabled && p->tty)
        uw_log_status(NULL);
    else if (p->enabled)
        report(p, uw_now_ms()); /* the totals, once, however short the work */
    pthread_mutex_destroy(&p->mu);
    free(p);
}
