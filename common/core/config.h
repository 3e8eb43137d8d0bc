/* Options are defined once (options.c): the table drives parsing from the command
 * line, the environment (UE_WAL_<NAME>) and the INI file, validation, precedence
 * and --help. Commands read resolved values by name. */
#ifndef UW_CONFIG_H
#define UW_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

#define UW_REPO_MAX 4

typedef enum { UW_OPT_STRING, UW_OPT_INT, UW_OPT_BOOL, UW_OPT_ENUM, UW_OPT_SIZE } uw_opt_type;

/* Where an option may come from. */
#define UW_OPTF_SECRET 0x01    /* never on the command line, never logged */
#define UW_OPTF_CLI_ONLY 0x02  /* command-line only (e.g. restore targets) */
#define UW_OPTF_REPO 0x04      /* repo-indexed: written repoN-<name> (N = 1..UW_REPO_MAX) */
#define UW_OPTF_NO_STANZA 0x08 /* [global] only */
#define UW_OPTF_LIST 0x10      /* repeatable on the command line: values kept one per line */

/* Commands, as a bitmask, so an option can say where it applies. */
#define UW_CMD_PUSH 0x01
#define UW_CMD_FETCH 0x02
#define UW_CMD_PITR 0x04
#define UW_CMD_BACKUP 0x08
#define UW_CMD_ALL 0xff

typedef struct {
    const char *name; /* without the repoN- prefix for UW_OPTF_REPO options */
    uw_opt_type type;
    const char *def;           /* default as text, NULL = unset */
    int64_t min, max;          /* for INT and SIZE */
    const char *const *values; /* for ENUM: NULL-terminated */
    unsigned flags;
    unsigned commands;
    const char *help;
} uw_opt_def;

extern const uw_opt_def uw_options[];
extern const int uw_option_count;

typedef struct uw_config uw_config;

/* Parse argv (options and positional arguments, in any order; "--" ends options),
 * then the environment and the INI file, and validate everything. On error fills
 * err with one line naming the option. `--help`/`--version` set the flags below
 * instead of failing. */
uw_config *uw_config_load(int argc, char **argv, unsigned command, uw_err *err);
void uw_config_free(uw_config *cfg);

bool uw_config_help(const uw_config *cfg);
bool uw_config_version(const uw_config *cfg);
int uw_config_argc(const uw_config *cfg); /* positional arguments */
const char *uw_config_arg(const uw_config *cfg, int i);

/* Resolved values. `name` is the full option name ("repo1-path"). Unset options
 * return NULL / the default. */
const char *uw_cfg_str(const uw_config *cfg, const char *name);
int64_t uw_cfg_int(const uw_config *cfg, const char *name);
bool uw_cfg_bool(const uw_config *cfg, const char *name);
bool uw_cfg_isset(const uw_config *cfg, const char *name);
/* Where the value came from: "command line", "environment", "config file", "default". */
const char *uw_cfg_source(const uw_config *cfg, const char *name);
/* Path of the config file that was read, or NULL. */
const char *uw_cfg_file(const uw_config *cfg);
/* Options that were given on the command line, re-rendered as "--name=value"
 * (secrets excluded), for building restore_command lines. Caller frees. */
char *uw_cfg_cli_repo_args(const uw_config *cfg);

/* Print --help for a command. */
void uw_config_usage(unsigned command, const char *synopsis, const char *description);

/* Parse a size like "16MiB", "8M", "1048576". Returns 0 or -1. */
int uw_parse_size(const char *s, int64_t *out);

#endif
