/* One line per action on stderr: "<program>: <LEVEL>: message". PostgreSQL puts
 * archive/restore command stderr in its own log, so lines must stand alone. */
#ifndef UW_LOG_H
#define UW_LOG_H

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

/* Monotonic clock in milliseconds, for durations in messages. */
double uw_now_ms(void);
/* "16.0 MiB", "713 B": sizes for humans. */
void uw_fmt_size(uint64_t n, char *buf, size_t len);

#endif
