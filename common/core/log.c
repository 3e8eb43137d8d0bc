#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

static const char *prog = "ue-wal";
static uw_log_level threshold = UW_LOG_INFO;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const names[] = {"error", "warn", "info", "detail", "debug"};
static uw_log_sink sink;

void uw_log_set_sink(uw_log_sink s)
{
    sink = s;
}

void uw_log_init(const char *program)
{
    const char *slash = strrchr(program, '/');
    prog = slash ? slash + 1 : program;
}

void uw_log_set_level(const char *name)
{
    for (int i = 0; name && i < 5; i++)
        if (strcmp(names[i], name) == 0)
            threshold = (uw_log_level)i;
}

int uw_log_enabled(uw_log_level level)
{
    return level <= threshold;
}

void uw_log(uw_log_level level, const char *fmt, ...)
{
    if (level > threshold)
        return;
    static const char *const upper[] = {"ERROR", "WARN", "INFO", "DETAIL", "DEBUG"};
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Keep it on one line whatever the message holds. */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (sink) {
        sink(level, buf);
        return;
    }
    pthread_mutex_lock(&lock);
    fprintf(stderr, "%s: %s: %s\n", prog, upper[level], buf);
    pthread_mutex_unlock(&lock);
}

double uw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void uw_fmt_size(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", n);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
}
