/* Options are defined once (core/options.def): the table drives parsing from
 * the command line, the environment (UE_WAL_<NAME>) and the INI file,
 * validation, precedence and --help. Commands read resolved values by id
 * (core/options.h): uw_cfg_int(cfg, UW_OPT_PG_PORT), and for a repository
 * option uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_PATH). */
#ifndef UW_CONFIG_H
#define UW_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/options.h"

typedef struct uw_config uw_config;

/* Parse argv (options and positional arguments, in any order; "--" ends options),
 * then the environment and the INI file, and validate everything. On error fills
 * err with one line naming the option. `--help`/`--version` set the flags below
 * instead of failing. */
uw_config *uw_config_load(int argc, char **argv, unsigned command, uw_err *err);
void uw_config_free(uw_config *cfg);
/* The command (UW_CMD_*) the configuration was loaded for. */
unsigned uw_config_command(const uw_config *cfg);
/* The same command line as cfg's with --stanza=stanza, the environment and
 * the file read again: the configuration of one stanza of the file, for the
 * commands that go over every stanza (ue-pitr info and metrics without
 * --stanza). */
uw_config *uw_config_for_stanza(const uw_config *cfg, const char *stanza, uw_err *err);
/* The stanzas of the config file that was read: its sections other than
 * [global], in the file's order (none without a file). Caller frees each name
 * and the array. */
int uw_config_stanzas(const uw_config *cfg, char ***names, int *count, uw_err *err);

bool uw_config_help(const uw_config *cfg);
bool uw_config_version(const uw_config *cfg);
int uw_config_argc(const uw_config *cfg); /* positional arguments */
const char *uw_config_arg(const uw_config *cfg, int i);

/* Resolved values of an option that is not per repository. Unset options
 * return NULL / 0 / false; a default is a value, but not "set". Asking for a
 * repository option here is a bug (abort): use the uw_cfg_repo_ variants. */
const char *uw_cfg_str(const uw_config *cfg, uw_opt_id id);
int64_t uw_cfg_int(const uw_config *cfg, uw_opt_id id); /* INT, and SIZE in bytes */
bool uw_cfg_bool(const uw_config *cfg, uw_opt_id id);
bool uw_cfg_isset(const uw_config *cfg, uw_opt_id id); /* given, not defaulted */
/* Where the value came from: "command line", "environment", "config file",
 * "default", or "unset". */
const char *uw_cfg_source(const uw_config *cfg, uw_opt_id id);

/* The same for a repository option (UW_OPTF_REPO) of repository `repo`
 * (1..UW_REPO_MAX): uw_cfg_repo_str(cfg, 2, UW_OPT_REPO_PATH) is repo2-path.
 * Messages name it with uw_opt_name(id, repo, ...). */
const char *uw_cfg_repo_str(const uw_config *cfg, int repo, uw_opt_id id);
int64_t uw_cfg_repo_int(const uw_config *cfg, int repo, uw_opt_id id);
bool uw_cfg_repo_bool(const uw_config *cfg, int repo, uw_opt_id id);
bool uw_cfg_repo_isset(const uw_config *cfg, int repo, uw_opt_id id);
const char *uw_cfg_repo_source(const uw_config *cfg, int repo, uw_opt_id id);

/* Path of the config file that was read, or NULL. */
const char *uw_cfg_file(const uw_config *cfg);
/* The default config file (neither --config nor UE_WAL_CONFIG given) when it
 * did not exist, else NULL: errors that follow from it name it. */
const char *uw_cfg_missing_file(const uw_config *cfg);
/* Options that were given on the command line, re-rendered as "--name=value"
 * (secrets excluded), for building restore_command lines. Caller frees. */
char *uw_cfg_cli_repo_args(const uw_config *cfg);

/* Print --help for a command. */
void uw_config_usage(unsigned command, const char *synopsis, const char *description);

/* Parse a size like "16MiB", "8M", "1048576". Returns 0 or -1. */
int uw_parse_size(const char *s, int64_t *out);

#endif
