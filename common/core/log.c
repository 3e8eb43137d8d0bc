#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "ue-wal";
static uw_log_level threshold = UW_LOG_INFO;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const names[] = {"error", "warn", "info", "detail", "debug"};
static int file_fd = -1; /* log-path's file, or -1 */
static uw_log_level file_threshold = UW_LOG_INFO;
static char *status; /* the status line shown below the log, or NULL */

static int level_of(const char *name, uw_log_level *out)
{
    for (int i = 0; name && i < 5; i++)
        if (strcmp(names[i], name) == 0)
            return *out = (uw_log_level)i, 0;
    return -1;
}

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
    level_of(name, &threshold);
}

int uw_log_enabled(uw_log_level level)
{
    return level <= threshold || (file_fd >= 0 && level <= file_threshold);
}

int uw_log_open_file(const char *path, const char *level)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return -1;
    pthread_mutex_lock(&lock);
    if (file_fd >= 0)
        close(file_fd);
    file_fd = fd;
    file_threshold = UW_LOG_INFO;
    level_of(level, &file_threshold);
    pthread_mutex_unlock(&lock);
    return 0;
}

void uw_log_close_file(void)
{
    pthread_mutex_lock(&lock);
    if (file_fd >= 0)
        close(file_fd);
    file_fd = -1;
    pthread_mutex_unlock(&lock);
}

void uw_log_timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03ldZ", day, ts.tv_nsec / 1000000);
}

/* Erase the status line (under lock) before a log line is printed. */
static void status_erase(void)
{
    if (status)
        fputs("\r\033[K", stderr);
}

static void status_draw(void)
{
    if (status) {
        fprintf(stderr, "\r%s\033[K", status);
        fflush(stderr);
    }
}

void uw_log_status(const char *line)
{
    pthread_mutex_lock(&lock);
    status_erase();
    free(status);
    status = line ? strdup(line) : NULL;
    status_draw();
    if (!line)
        fflush(stderr);
    pthread_mutex_unlock(&lock);
}

void uw_log(uw_log_level level, const char *fmt, ...)
{
    if (!uw_log_enabled(level))
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
    /* Inside PostgreSQL (the archive module) lines go to its log instead. */
    if (sink) {
        sink(level, buf);
        return;
    }
    char ts[40];
    uw_log_timestamp(ts, sizeof ts);
    /* The text after the timestamp and pid is what it always was
     * ("<program>: <LEVEL>: message"): scripts grep for it. */
    char line[2200];
    int n = snprintf(line, sizeof line, "%s [%ld] %s: %s: %s\n", ts, (long)getpid(), prog,
                     upper[level], buf);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1, line[n - 1] = '\n';
    pthread_mutex_lock(&lock);
    if (level <= threshold) {
        status_erase();
        fputs(line, stderr);
        status_draw();
    }
    if (file_fd >= 0 && level <= file_threshold) {
        /* One write per line: O_APPEND keeps lines whole between processes. */
        int saved = errno;
        ssize_t w = write(file_fd, line, (size_t)n);
        (void)w;
        errno = saved;
    }
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
