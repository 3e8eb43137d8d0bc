/* One line per action on stderr:
 *   "2026-11-30T19:40:46.123Z [4711] <program>: <LEVEL>: message"
 * (UTC, ISO 8601 with milliseconds, then the process id). PostgreSQL puts
 * archive/restore command stderr in its own log, so lines must stand alone
 * and stay short. With log-path a copy of each line, at log-level-file,
 * goes to a per-command file too (uw_log_open_file).
 *
 * Threads: uw_log and uw_log_status may be called from any thread; the lines
 * never interleave. */
#ifndef UW_LOG_H
#define UW_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { UW_LOG_ERROR, UW_LOG_WARN, UW_LOG_INFO, UW_LOG_DETAIL, UW_LOG_DEBUG } uw_log_level;

void uw_log_init(const char *program);
void uw_log_set_level(const char *name);
int uw_log_enabled(uw_log_level level);
void uw_log(uw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send every line that passes the threshold to `sink` (the message alone,
 * already on one line) instead of stderr; NULL restores stderr. For a host
 * process with a log of its own (the archive module hands lines to
 * PostgreSQL's). The sink is called from whichever thread logs. */
typedef void (*uw_log_sink)(uw_log_level level, const char *msg);
void uw_log_set_sink(uw_log_sink sink);

/* Also append every line at `level` (a log-level name) or more severe to
 * `path`, created 0600. Returns 0, or -1 with errno (stderr logging goes on).
 * Replaces a file opened before. */
int uw_log_open_file(const char *path, const char *level);
/* Close the file of uw_log_open_file (nothing when none is open). */
void uw_log_close_file(void);

/* A status line on stderr, redrawn in place ("\r...", erased to the end of
 * the line) and kept below the log lines printed meanwhile: for progress on
 * a terminal. NULL erases it. Goes to stderr only, never to the file. */
void uw_log_status(const char *line);

/* "2026-11-30T19:40:46.123Z": now, UTC, ISO 8601 with milliseconds. */
void uw_log_timestamp(char *buf, size_t len);

/* Monotonic clock in milliseconds, for durations in messages. */
double uw_now_ms(void);
/* "16.0 MiB", "713 B": sizes for humans. */
void uw_fmt_size(uint64_t n, char *buf, size_t len);

#endif
