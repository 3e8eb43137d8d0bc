/* Progress of a long command (a backup, a restore, a verify): bytes and files
 * done of the total, percent, rate and ETA.
 *
 * On a terminal (stderr is a tty) one status line is redrawn in place at
 * most a few times a second, below the log lines (core/log.h
 * uw_log_status); elsewhere (cron, systemd, a pipe) a DETAIL log line every
 * few seconds. The cadence is wall-clock time: it paces output, nothing
 * waits on it.
 *
 * Threads: uw_progress_add may be called from every worker at once
 * (counters are atomics; one thread prints at a time). start and finish
 * from the command's thread. */
#ifndef UW_PROGRESS_H
#define UW_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct uw_progress uw_progress;

/* `what` names the work in the line ("backup", "restore"; kept, not
 * copied). enabled == false (progress=n) gives a reporter that prints
 * nothing; every call stays valid. */
uw_progress *uw_progress_start(const char *what, uint64_t total_bytes, uint64_t total_files,
                               bool enabled);
void uw_progress_add(uw_progress *p, uint64_t bytes, uint64_t files);
/* Erase the terminal line (elsewhere: log the final line) and free; NULL
 * is fine. Call it on failure too. */
void uw_progress_finish(uw_progress *p);

/* The text of one progress line (pure: what the reporter prints):
 * "restore: 1.2 GiB of 4.0 GiB (30%), 120 of 900 files, 85.3 MiB/s, ETA 0:33".
 * The rate and ETA are left out while elapsed_s is too short to tell. */
void uw_progress_format(char *buf, size_t len, const char *what, uint64_t done_bytes,
                        uint64_t total_bytes, uint64_t done_files, uint64_t total_files,
                        double elapsed_s);

#endif
