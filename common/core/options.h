/* Options by id.
 *
 * The one table of options is core/options.def, an X-macro list of
 * UW_OPTION(ID, name, ...) entries. It is expanded twice: here into the enum
 * uw_opt_id (UW_OPT_<ID>), and in options.c into uw_options[], indexed by that
 * enum. Code reads options by id (core/config.h: uw_cfg_str(cfg, UW_OPT_PG_PORT),
 * uw_cfg_repo_str(cfg, 2, UW_OPT_REPO_PATH)), so a misspelt option is a compile
 * error, not an abort at run time. Names ("pg-port", "repo2-path") exist only
 * where people see them: the command line, the environment, the file, --help
 * and messages (uw_opt_name).
 *
 * Enum values owned by a higher layer. The values of repoN-type are the
 * storage drivers' types and those of compress-type the compressors' names.
 * Core may not include or call storage/ or io/ (core < io < storage), yet it
 * validates the options when they are read, before any driver is opened. So
 * such an entry has values == NULL in the table, and core keeps a small
 * registry of values per option: the layer that owns them registers each one
 * with uw_opt_register_value() from a constructor function next to its table
 * (storage.c walks its driver table, compress.c its compressor table), which
 * runs before main(). Adding a driver or a compressor therefore touches only
 * its own table: no command, no option code, no init call in each binary.
 * The registered order is the table's order, and it is the order of the
 * "is not one of a|b|c" message and of --help.
 * A constructor runs only if its object file is linked in, and a program
 * takes from a static library only the objects it calls into: CMakeLists.txt
 * names both registration functions to the linker (--undefined), so every
 * program that links the library has the values, even one that never opens a
 * repository. One linked without them stops with a BUG message naming the
 * option (uw_opt_values) instead of refusing every value. */
#ifndef UW_OPTIONS_H
#define UW_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

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

/* UW_OPT_CONFIG, UW_OPT_STANZA, ..., in the table's order; UW_OPT_ID_COUNT last. */
typedef enum {
#define UW_OPTION(id, ...) UW_OPT_##id,
#include "core/options.def"
#undef UW_OPTION
    UW_OPT_ID_COUNT
} uw_opt_id;

typedef struct {
    const char *name; /* without the repoN- prefix for UW_OPTF_REPO options */
    uw_opt_type type;
    const char *def;           /* default as text, NULL = unset */
    int64_t min, max;          /* for INT and SIZE */
    const char *const *values; /* for ENUM: NULL-terminated; NULL: registered (above) */
    unsigned flags;
    unsigned commands;
    const char *help; /* NULL: the allowed values */
} uw_opt_def;

/* Indexed by uw_opt_id. */
extern const uw_opt_def uw_options[];
extern const int uw_option_count; /* == UW_OPT_ID_COUNT */

/* Room for any full option name ("repo4-storage-verify-tls") and its NUL. */
#define UW_OPT_NAME_MAX 64

/* The full name of an option: "pg-port"; for a repository option with repo
 * 1..UW_REPO_MAX "repo2-path", with repo 0 "repoN-path" (repo is ignored for
 * other options). Returns buf. */
const char *uw_opt_name(uw_opt_id id, int repo, char *buf, size_t len);
/* The option a full name means: its id, and in *repo N for "repoN-..." (0 for
 * other options). Returns -1 for a name that is no option ("repo5-path",
 * "path", "repo1-stanza", "bogus"). */
int uw_opt_lookup(const char *name, int *repo);

/* Register one allowed value of an enum option whose table entry has values ==
 * NULL (see above). Called by the owning layer's constructor; the string is
 * kept, not copied (a literal or a static table's entry); a value already
 * there is ignored. Aborts on misuse (another option, or too many values). */
void uw_opt_register_value(uw_opt_id id, const char *value);
/* The allowed values of an enum option, NULL-terminated. Aborts, naming the
 * option, when its values are to be registered and none were. */
const char *const *uw_opt_values(uw_opt_id id);

#endif
