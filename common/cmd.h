/* What every binary does around its own work: parse options, answer --help and
 * --version, and turn an error into one log line and its stable exit code. */
#ifndef UW_CMD_H
#define UW_CMD_H

#include "config.h"
#include "error.h"
#include "log.h"

/* Returns the config, or NULL with *exit_code set (0 after --help/--version). */
uw_config *uw_cmd_start(int argc, char **argv, unsigned command, const char *synopsis,
                        const char *description, int *exit_code);
/* Log err as one ERROR line and return its exit code. */
int uw_cmd_fail(const uw_err *err);

#endif
