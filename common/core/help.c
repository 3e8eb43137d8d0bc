/* --help and "did you mean" (core/help.h). */
#include "core/help.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The binaries that connect to or read the cluster (pg-path, pg-port...). */
#define PG_COMMANDS (UW_CMD_BACKUP | UW_CMD_PITR)

uw_help_group uw_help_group_of(uw_opt_id id)
{
    const uw_opt_def *d = &uw_options[id];
    if ((d->flags & UW_OPTF_REPO) || id == UW_OPT_REPO || strncmp(d->name, "compress-", 9) == 0 ||
        strncmp(d->name, "cipher-", 7) == 0)
        return UW_HELP_REPO;
    if (strncmp(d->name, "pg-", 3) == 0)
        return UW_HELP_PG;
    if (d->commands == UW_CMD_ALL)
        return UW_HELP_GENERAL;
    return UW_HELP_COMMAND;
}

/* The placeholder of a string option: a few names say it better than the
 * last word of the option's name. */
static const char *string_placeholder(const char *name, char *buf, size_t len)
{
    static const char *const known[][2] = {
        {"config", "FILE"},
        {"stanza", "NAME"},
        {"pgdata", "DIR"},
        {"set", "ID"},
        {"log-path", "DIR"},
        {"pg-path", "DIR"},
        {"tablespace-map", "OID=DIR"},
        {"tablespace-map-all", "DIR"},
        {"target-time", "TIMESTAMP"},
        {"spool-path", "DIR"},
        {"storage-ca-file", "FILE"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i][0], name) == 0)
            return known[i][1];
    const char *last = strrchr(name, '-');
    last = last ? last + 1 : name;
    size_t n = 0;
    for (; last[n] && n + 1 < len; n++)
        buf[n] = (char)toupper((unsigned char)last[n]);
    buf[n] = '\0';
    return buf;
}

const char *uw_help_synopsis(uw_opt_id id, char *buf, size_t len)
{
    const uw_opt_def *d = &uw_options[id];
    char name[UW_OPT_NAME_MAX], word[UW_OPT_NAME_MAX], values[256] = "";
    const char *ph = "";
    switch (d->type) {
    case UW_OPT_STRING: ph = string_placeholder(d->name, word, sizeof word); break;
    case UW_OPT_INT: {
        size_t nl = strlen(d->name);
        ph = nl >= 4 && strcmp(d->name + nl - 4, "port") == 0 ? "PORT" : "N";
        break;
    }
    case UW_OPT_SIZE: ph = "SIZE"; break;
    case UW_OPT_BOOL: ph = "y|n"; break;
    case UW_OPT_ENUM: {
        const char *const *v = uw_opt_values(id);
        for (int i = 0; v[i]; i++) {
            if (i)
                strncat(values, "|", sizeof values - strlen(values) - 1);
            strncat(values, v[i], sizeof values - strlen(values) - 1);
        }
        ph = values;
        break;
    }
    }
    snprintf(buf, len, "--%s=%s", uw_opt_name(id, 0, name, sizeof name), ph);
    return buf;
}

void uw_help_binary_select(unsigned command, bool show[UW_OPT_ID_COUNT])
{
    for (int i = 0; i < UW_OPT_ID_COUNT; i++)
        show[i] = (uw_options[i].commands & command) &&
                  (uw_help_group_of((uw_opt_id)i) != UW_HELP_PG || (command & PG_COMMANDS));
}

static bool listed(const uw_opt_id *list, int id)
{
    for (; list && *list != UW_OPT_ID_COUNT; list++)
        if ((int)*list == id)
            return true;
    return false;
}

void uw_help_sub_select(unsigned command, const uw_opt_id *const *lists, size_t n, size_t which,
                        bool show[UW_OPT_ID_COUNT])
{
    for (int i = 0; i < UW_OPT_ID_COUNT; i++) {
        uw_help_group g = uw_help_group_of((uw_opt_id)i);
        if (!(uw_options[i].commands & command))
            show[i] = false;
        else if (g == UW_HELP_GENERAL || g == UW_HELP_REPO)
            show[i] = true;
        else if (lists[which])
            show[i] = listed(lists[which], i);
        else {
            /* Unclaimed: listed by no other subcommand. */
            show[i] = true;
            for (size_t s = 0; s < n; s++)
                if (s != which && listed(lists[s], i))
                    show[i] = false;
        }
    }
}

static void print_option(FILE *out, uw_opt_id id)
{
    const uw_opt_def *d = &uw_options[id];
    char syn[320];
    uw_help_synopsis(id, syn, sizeof syn);
    /* An enum without a help line: its values are in the synopsis already. */
    char words[UW_OPT_NAME_MAX];
    const char *help = d->help;
    if (!help) {
        snprintf(words, sizeof words, "%s", d->name);
        for (char *p = words; *p; p++)
            if (*p == '-')
                *p = ' ';
        help = words;
    }
    if (strlen(syn) <= 30)
        fprintf(out, "  %-30s %s", syn, help);
    else
        fprintf(out, "  %s\n  %-30s %s", syn, "", help);
    if (d->def)
        fprintf(out, " [default: %s]", d->def);
    fputc('\n', out);
}

void uw_help_print(FILE *out, const char *synopsis, const char *description, const char *own_title,
                   const bool show[UW_OPT_ID_COUNT])
{
    fprintf(out, "Usage: %s\n\n%s\n", synopsis, description);
    const char *titles[] = {"General options", "Repository options (repoN-: repository N, 1..4)",
                            "PostgreSQL options", own_title ? own_title : "Command options"};
    for (int g = UW_HELP_GENERAL; g <= UW_HELP_COMMAND; g++) {
        bool any = false;
        for (int i = 0; i < UW_OPT_ID_COUNT; i++) {
            if (!show[i] || uw_help_group_of((uw_opt_id)i) != (uw_help_group)g)
                continue;
            if (!any)
                fprintf(out, "\n%s:\n", titles[g]);
            any = true;
            print_option(out, (uw_opt_id)i);
        }
        if (g == UW_HELP_GENERAL) {
            if (!any)
                fprintf(out, "\n%s:\n", titles[g]);
            fprintf(out, "  %-30s %s\n  %-30s %s\n", "-h, --help", "show this help", "--version",
                    "show the version");
        }
    }
    fprintf(out, "\nEvery option but those marked otherwise can also be set as UE_WAL_<NAME> in "
                 "the environment\n(UE_WAL_PG_PORT=5433) or as name=value in the configuration "
                 "file.\n");
}

size_t uw_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = calloc(lb + 1, sizeof *row);
    if (!row)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

static size_t near_enough(const char *word)
{
    size_t limit = strlen(word) / 3;
    return limit > 3 ? 3 : limit < 1 ? 1 : limit;
}

const char *uw_help_nearest(const char *word, const char *const *words, size_t n)
{
    const char *best = NULL;
    size_t best_d = near_enough(word) + 1;
    for (size_t i = 0; i < n; i++) {
        size_t d = uw_edit_distance(word, words[i]);
        if (d < best_d)
            best = words[i], best_d = d;
    }
    return best;
}

bool uw_help_nearest_option(const char *name, unsigned command, char *buf, size_t len)
{
    /* A repository option keeps the number it was written with. */
    int repo = 0;
    if (strncmp(name, "repo", 4) == 0 && name[4] >= '1' && name[4] <= '0' + UW_REPO_MAX &&
        name[5] == '-')
        repo = name[4] - '0';
    char names[UW_OPT_ID_COUNT][UW_OPT_NAME_MAX];
    const char *words[UW_OPT_ID_COUNT];
    size_t n = 0;
    for (int i = 0; i < UW_OPT_ID_COUNT; i++) {
        if (!(uw_options[i].commands & command))
            continue;
        int r = (uw_options[i].flags & UW_OPTF_REPO) ? (repo ? repo : 1) : 0;
        words[n] = uw_opt_name((uw_opt_id)i, r, names[n], sizeof names[n]);
        n++;
    }
    const char *best = uw_help_nearest(name, words, n);
    if (best)
        snprintf(buf, len, "%s", best);
    return best != NULL;
}
