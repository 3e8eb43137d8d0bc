/* What every binary does around its own work: parse options, answer --help and
 * --version, and turn an error into one log line and its stable exit code. */
#ifndef UW_CMD_H
#define UW_CMD_H

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

/* Returns the config, or NULL with *exit_code set (0 after --help/--version).
 * Opens log-path's file "<stanza>-<program without ue->.log" (but for
 * ue-pitr, which calls uw_cmd_log_open with its subcommand). */
uw_config *uw_cmd_start(int argc, char **argv, unsigned command, const char *synopsis,
                        const char *description, int *exit_code);
/* uw_cmd_start without printing --help: the config comes back with
 * uw_config_help() set, for a binary that prints its own (per subcommand). */
uw_config *uw_cmd_begin(int argc, char **argv, unsigned command, int *exit_code);
/* With log-path set, append log lines to <log-path>/<stanza>-<command>.log
 * too ("all-" without a stanza); warns and goes on when it cannot. */
void uw_cmd_log_open(const uw_config *cfg, const char *command);
/* Log err as one ERROR line and return its exit code. An "option ... is
 * required" error also names the default configuration file when it was
 * missing. */
int uw_cmd_fail(const uw_err *err);

/* Background helpers (the asynchronous pusher, the prefetcher): one per
 * <dir>/lock, detached so that PostgreSQL's wait for the command ends with
 * the caller. Returns UW_DAEMON_CHILD in the detached child (which holds the
 * lock until it exits, and must do its work and leave through main),
 * UW_DAEMON_STARTED in the caller once it is running, UW_DAEMON_RUNNING when
 * another one holds the lock, UW_DAEMON_FAILED when none could start. */
enum { UW_DAEMON_FAILED = -1, UW_DAEMON_RUNNING = 0, UW_DAEMON_STARTED = 1, UW_DAEMON_CHILD = 2 };
int uw_daemon_start(const char *dir);
/* The first line of a small file, without its newline; false if unreadable. */
bool uw_read_line(const char *path, char *buf, size_t len);

#endif
