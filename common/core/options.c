/* The table of options, expanded from core/options.def, and the names and
 * allowed values of each (core/options.h). */
#include "core/options.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s3_uri_styles[] = {"host", "path", NULL};
static const char *const azure_uri_styles[] = {"host", "path", NULL};
static const char *const cipher_types[] = {"none", "aes-256-gcm", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "detail", "debug", NULL};
static const char *const outputs[] = {"text", "json", NULL};
static const char *const backup_types[] = {"full", "incr", NULL};
static const char *const target_actions[] = {"promote", "pause", "shutdown", NULL};
static const char *const targets[] = {"immediate", NULL};
/* ue-pitr restore --archive-mode, restore-table --format (issue 12) */
static const char *const archive_modes[] = {"off", "preserve", NULL};
static const char *const dump_formats[] = {"plain", "custom", NULL};

#define ANY UW_CMD_ALL
#define REPO_CMDS (UW_CMD_PUSH | UW_CMD_FETCH | UW_CMD_PITR | UW_CMD_BACKUP)

/* Designated indexes keep uw_options[UW_OPT_X] the entry of X whatever the order. */
const uw_opt_def uw_options[] = {
#define UW_OPTION(id, name, type, def, min, max, values, flags, commands, help)                    \
    [UW_OPT_##id] = {name, type, def, min, max, values, flags, commands, help},
#include "core/options.def"
#undef UW_OPTION
};

const int uw_option_count = UW_OPT_ID_COUNT;

const char *uw_opt_name(uw_opt_id id, int repo, char *buf, size_t len)
{
    if ((uw_options[id].flags & UW_OPTF_REPO) && repo == 0)
        snprintf(buf, len, "repoN-%s", uw_options[id].name);
    else if (uw_options[id].flags & UW_OPTF_REPO)
        snprintf(buf, len, "repo%d-%s", repo, uw_options[id].name);
    else
        snprintf(buf, len, "%s", uw_options[id].name);
    return buf;
}

int uw_opt_lookup(const char *name, int *repo)
{
    int r = 0;
    const char *base = name;
    if (strncmp(name, "repo", 4) == 0 && isdigit((unsigned char)name[4]) && name[5] == '-') {
        r = name[4] - '0';
        base = name + 6;
        if (r < 1 || r > UW_REPO_MAX)
            return -1;
    }
    for (int i = 0; i < UW_OPT_ID_COUNT; i++) {
        bool is_repo = (uw_options[i].flags & UW_OPTF_REPO) != 0;
        if (is_repo != (r > 0) || strcmp(uw_options[i].name, base) != 0)
            continue;
        *repo = r;
        return i;
    }
    return -1;
}

/* Values registered by higher layers, per option (only the few entries with
 * values == NULL use theirs). Filled by constructors before main(), read-only
 * after: no lock. */
#define VALUES_MAX 16
static const char *registered[UW_OPT_ID_COUNT][VALUES_MAX + 1];

static void bug(const char *what, uw_opt_id id)
{
    char name[UW_OPT_NAME_MAX];
    fprintf(stderr, "ue-wal: BUG: option '%s': %s\n", uw_opt_name(id, 0, name, sizeof name), what);
    abort();
}

void uw_opt_register_value(uw_opt_id id, const char *value)
{
    if (uw_options[id].type != UW_OPT_ENUM || uw_options[id].values)
        bug("values can only be registered for an enum without a list", id);
    int n = 0;
    for (; registered[id][n]; n++)
        if (strcmp(registered[id][n], value) == 0)
            return;
    if (n == VALUES_MAX)
        bug("too many values registered", id);
    registered[id][n] = value;
}

const char *const *uw_opt_values(uw_opt_id id)
{
    if (uw_options[id].values)
        return uw_options[id].values;
    if (!registered[id][0])
        bug("no values registered (is the layer that owns them linked in?)", id);
    return registered[id];
}
