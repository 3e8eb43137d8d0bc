#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/help.h"
#include "core/log.h"

typedef enum { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_CLI } uw_src;

typedef struct {
    char *value;
    uw_src src;
} uw_slot;

struct uw_config {
    uw_slot *slots; /* one per (option, repo index) */
    char **args;
    int nargs;
    bool help, version;
    char *file;
    char *missing_file; /* the default config file, when it does not exist */
    unsigned command;
};

/* Slot layout: non-repo options take one slot, repo options UW_REPO_MAX. */
static int slot_base(int id)
{
    int n = 0;
    for (int i = 0; i < id; i++)
        n += (uw_options[i].flags & UW_OPTF_REPO) ? UW_REPO_MAX : 1;
    return n;
}

static int slot_count(void)
{
    return slot_base(UW_OPT_ID_COUNT);
}

/* Resolve "repo2-path" to (id, slot). Returns -1 when unknown. */
static int lookup(const char *name, int *slot)
{
    int repo, id = uw_opt_lookup(name, &repo);
    if (id >= 0)
        *slot = slot_base(id) + (repo ? repo - 1 : 0);
    return id;
}

int uw_parse_size(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    int64_t mul = 1;
    if (*end) {
        char unit = (char)tolower((unsigned char)*end++);
        switch (unit) {
        case 'k': mul = 1024; break;
        case 'm': mul = 1024 * 1024; break;
        case 'g': mul = 1024LL * 1024 * 1024; break;
        case 't': mul = 1024LL * 1024 * 1024 * 1024; break;
        case 'b':
            mul = 1;
            end--;
            break;
        default: return -1;
        }
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            return -1;
    }
    if (v > INT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"y", "yes", "true", "on", "1", NULL};
    static const char *const no[] = {"n", "no", "false", "off", "0", NULL};
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, true;
    for (int i = 0; no[i]; i++)
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, true;
    return false;
}

/* "a|b|c" */
static const char *join_values(const char *const *values, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; values[i]; i++) {
        if (i)
            strncat(buf, "|", len - strlen(buf) - 1);
        strncat(buf, values[i], len - strlen(buf) - 1);
    }
    return buf;
}

/* Validate a value against its definition; `where` names the source for the message. */
static int validate(int id, const char *name, const char *v, const char *where, uw_err *err)
{
    const uw_opt_def *d = &uw_options[id];
    /* Secret values are never echoed back, even when wrong. */
    const char *shown = (d->flags & UW_OPTF_SECRET) ? "<hidden>" : v;
    switch (d->type) {
    case UW_OPT_STRING:
        if (!*v)
            return uw_fail(err, UW_E_OPTION, "option '%s' (%s) must not be empty", name, where);
        return 0;
    case UW_OPT_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end)
            return uw_fail(err, UW_E_OPTION, "option '%s' (%s): '%s' is not an integer", name,
                           where, shown);
        if (n < d->min || n > d->max)
            return uw_fail(err, UW_E_OPTION, "option '%s' (%s): %lld is out of range %lld..%lld",
                           name, where, n, (long long)d->min, (long long)d->max);
        return 0;
    }
    case UW_OPT_SIZE: {
        int64_t n;
        if (uw_parse_size(v, &n) < 0 || n < d->min || n > d->max)
            return uw_fail(err, UW_E_OPTION, "option '%s' (%s): '%s' is not a valid size", name,
                           where, shown);
        return 0;
    }
    case UW_OPT_BOOL: {
        bool b;
        if (!parse_bool(v, &b))
            return uw_fail(err, UW_E_OPTION, "option '%s' (%s): '%s' is not y or n", name, where,
                           shown);
        return 0;
    }
    case UW_OPT_ENUM: {
        /* Static in the table, or registered by the layer that owns them. */
        const char *const *values = uw_opt_values((uw_opt_id)id);
        for (int i = 0; values[i]; i++)
            if (strcmp(values[i], v) == 0)
                return 0;
        char list[256];
        return uw_fail(err, UW_E_OPTION, "option '%s' (%s): '%s' is not one of %s", name, where,
                       shown, join_values(values, list, sizeof list));
    }
    }
    return 0;
}

static void set_slot(uw_config *cfg, int slot, const char *v, uw_src src)
{
    free(cfg->slots[slot].value);
    cfg->slots[slot].value = uw_strdup(v);
    cfg->slots[slot].src = src;
}

/* "unknown option '--pg-prot' (did you mean '--pg-port'?)"; `where` is a
 * "file:line: " prefix or "". */
static int unknown_option(unsigned command, const char *name, const char *where, uw_err *err)
{
    const char *dashes = *where ? "" : "--";
    char near[UW_OPT_NAME_MAX];
    if (uw_help_nearest_option(name, command, near, sizeof near))
        return uw_fail(err, UW_E_OPTION, "%sunknown option '%s%s' (did you mean '%s%s'?)", where,
                       dashes, name, dashes, near);
    return uw_fail(err, UW_E_OPTION, "%sunknown option '%s%s'", where, dashes, name);
}

static int parse_cli(uw_config *cfg, int argc, char **argv, uw_err *err)
{
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && strcmp(a, "-h") == 0) {
            cfg->help = true;
            continue;
        }
        if (options_done || a[0] != '-' || a[1] != '-' || a[2] == '\0') {
            if (!options_done && strcmp(a, "--") == 0) {
                options_done = true;
                continue;
            }
            if (!options_done && a[0] == '-' && a[1] != '\0')
                return uw_fail(err, UW_E_OPTION, "unknown option '%s'", a);
            cfg->args = uw_realloc(cfg->args, sizeof(char *) * (size_t)(cfg->nargs + 1));
            cfg->args[cfg->nargs++] = uw_strdup(a);
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cfg->help = true;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            cfg->version = true;
            continue;
        }
        char name[128];
        const char *eq = strchr(a + 2, '=');
        size_t nlen = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (nlen >= sizeof name)
            return uw_fail(err, UW_E_OPTION, "unknown option '%.60s...'", a + 2);
        memcpy(name, a + 2, nlen);
        name[nlen] = '\0';
        bool negated = false;
        int slot, d = lookup(name, &slot);
        if (d < 0 && strncmp(name, "no-", 3) == 0) {
            d = lookup(name + 3, &slot);
            if (d >= 0 && uw_options[d].type == UW_OPT_BOOL && !eq)
                negated = true;
            else
                d = -1;
        }
        if (d < 0)
            return unknown_option(cfg->command, name, "", err);
        const uw_opt_def *def = &uw_options[d];
        if (def->flags & UW_OPTF_SECRET)
            return uw_fail(err, UW_E_OPTION,
                           "option '%s' is not allowed on the command line: put it in the config "
                           "file or the environment",
                           name);
        if (!(def->commands & cfg->command))
            return uw_fail(err, UW_E_OPTION, "option '%s' is not valid for this command", name);
        const char *v;
        if (eq)
            v = eq + 1;
        else if (def->type == UW_OPT_BOOL)
            v = negated ? "n" : "y";
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return uw_fail(err, UW_E_OPTION, "option '%s' requires a value", name);
        if (validate(d, name, v, "command line", err) < 0)
            return -1;
        if (def->flags & UW_OPTF_LIST) {
            /* Repeatable: the values accumulate, one per line. */
            if (strchr(v, '\n'))
                return uw_fail(err, UW_E_OPTION, "option '%s': the value contains a newline", name);
            if (cfg->slots[slot].src == SRC_CLI) {
                char *all = uw_sprintf("%s\n%s", cfg->slots[slot].value, v);
                set_slot(cfg, slot, all, SRC_CLI);
                free(all);
                continue;
            }
        }
        set_slot(cfg, slot, v, SRC_CLI);
    }
    return 0;
}

static int parse_env(uw_config *cfg, uw_err *err)
{
    extern char **environ;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "UE_WAL_", 7) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        /* An empty variable means unset, as for PG* variables. */
        if (!eq || !eq[1])
            continue;
        char name[128];
        size_t nlen = (size_t)(eq - (*e + 7));
        if (nlen == 0 || nlen >= sizeof name)
            continue;
        for (size_t i = 0; i < nlen; i++) {
            char c = (*e)[7 + i];
            name[i] = c == '_' ? '-' : (char)tolower((unsigned char)c);
        }
        name[nlen] = '\0';
        int slot, d = lookup(name, &slot);
        if (d < 0) {
            /* Not fatal: scripts legitimately export helper variables with our prefix. */
            uw_log(UW_LOG_WARN, "environment variable '%.*s' is not a known option, ignored",
                   (int)(eq - *e), *e);
            continue;
        }
        if (cfg->slots[slot].src == SRC_CLI)
            continue;
        const uw_opt_def *def = &uw_options[d];
        if (!(def->commands & cfg->command) && !(def->flags & UW_OPTF_CLI_ONLY))
            continue;
        char where[160];
        snprintf(where, sizeof where, "environment UE_WAL_%.*s", (int)nlen, *e + 7);
        if (validate(d, name, eq + 1, where, err) < 0)
            return -1;
        set_slot(cfg, slot, eq + 1, SRC_ENV);
    }
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* A file holding a secret should be readable by its owner only, or by the
 * group this command runs as (0640 root:postgres is the packaged layout):
 * anyone else who can read it has the passphrase or the keys. */
static void warn_exposed(const char *path, const struct stat *sb, const char *secret)
{
    const char *who = NULL;
    if (sb->st_mode & S_IROTH)
        who = "everyone";
    else if ((sb->st_mode & S_IRGRP) && sb->st_gid != getegid())
        who = "its group";
    if (who)
        uw_log(UW_LOG_WARN,
               "config file '%s' holds a secret (%s) and is readable by %s (mode %04o): "
               "chmod 600 it, or 640 with the group ue-wal runs as",
               path, secret, who, (unsigned)(sb->st_mode & 07777));
}

/* Read the INI file: [global] then [<stanza>] (later sections override earlier
 * ones because the stanza section is applied second). Other stanzas' sections are
 * checked for unknown keys too, so a typo anywhere is caught. */
static int parse_file(uw_config *cfg, const char *path, bool required, uw_err *err)
{
    /* O_NONBLOCK: a FIFO in its place must be refused, not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (!required && errno == ENOENT) {
            cfg->missing_file = uw_strdup(path);
            return 0;
        }
        return uw_fail(err, UW_E_CONFIG, "unable to open config file '%s': %s", path,
                       strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return uw_fail(err, UW_E_CONFIG, "config file '%s' is not a regular file", path);
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return uw_fail(err, UW_E_CONFIG, "unable to open config file '%s': %s", path,
                       strerror(errno));
    }
    cfg->file = uw_strdup(path);
    char secret[64] = ""; /* the first secret option the file sets */
    const char *stanza = NULL;
    char line[4096];
    int lineno = 0;
    /* Two passes: global first, then the stanza's own section. */
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        rewind(f);
        lineno = 0;
        /* "stanza" may itself come from [global]: read it after pass 0. */
        stanza = cfg->slots[slot_base(UW_OPT_STANZA)].value;
        char section[256] = "";
        while (fgets(line, sizeof line, f)) {
            lineno++;
            if (!strchr(line, '\n') && !feof(f)) {
                rc = uw_fail(err, UW_E_CONFIG, "%s:%d: line too long", path, lineno);
                break;
            }
            char *s = trim(line);
            if (!*s || *s == '#' || *s == ';')
                continue;
            if (*s == '[') {
                char *end = strchr(s, ']');
                if (!end || end[1] != '\0' || end == s + 1) {
                    rc = uw_fail(err, UW_E_CONFIG, "%s:%d: malformed section header", path, lineno);
                    break;
                }
                *end = '\0';
                snprintf(section, sizeof section, "%s", s + 1);
                continue;
            }
            char *eq = strchr(s, '=');
            if (!eq) {
                rc = uw_fail(err, UW_E_CONFIG, "%s:%d: expected 'name=value'", path, lineno);
                break;
            }
            *eq = '\0';
            char *name = trim(s), *value = trim(eq + 1);
            if (!section[0]) {
                rc = uw_fail(err, UW_E_CONFIG, "%s:%d: option '%s' outside of a section", path,
                             lineno, name);
                break;
            }
            int slot, d = lookup(name, &slot);
            if (d < 0) {
                char where[600];
                snprintf(where, sizeof where, "%s:%d: ", path, lineno);
                /* The file serves every command: any option is a candidate. */
                rc = unknown_option(UW_CMD_ALL, name, where, err);
                break;
            }
            const uw_opt_def *def = &uw_options[d];
            if (def->flags & UW_OPTF_CLI_ONLY) {
                rc = uw_fail(err, UW_E_OPTION,
                             "%s:%d: option '%s' is only valid on the command line", path, lineno,
                             name);
                break;
            }
            bool global = strcmp(section, "global") == 0;
            if (!global && (def->flags & UW_OPTF_NO_STANZA)) {
                rc = uw_fail(err, UW_E_OPTION, "%s:%d: option '%s' is only valid in [global]", path,
                             lineno, name);
                break;
            }
            char where[600];
            snprintf(where, sizeof where, "%s:%d", path, lineno);
            if (validate(d, name, value, where, err) < 0) {
                rc = -1;
                break;
            }
            bool apply = pass == 0 ? global : (stanza && strcmp(section, stanza) == 0);
            if (apply && cfg->slots[slot].src <= SRC_FILE)
                set_slot(cfg, slot, value, SRC_FILE);
            if ((def->flags & UW_OPTF_SECRET) && *value && !secret[0])
                snprintf(secret, sizeof secret, "%s", name);
        }
    }
    fclose(f);
    if (rc == 0 && secret[0])
        warn_exposed(path, &sb, secret);
    return rc;
}

/* Everything after the command line: the environment, the file, defaults and
 * the checks of the result. Frees cfg on failure. */
static uw_config *load_rest(uw_config *cfg, uw_err *err)
{
    /* The config path itself comes from the command line or UE_WAL_CONFIG. */
    int cslot = slot_base(UW_OPT_CONFIG);
    const char *path = cfg->slots[cslot].value;
    bool required = path != NULL;
    if (!path) {
        path = getenv("UE_WAL_CONFIG");
        required = path != NULL && *path;
        if (!required)
            path = uw_options[UW_OPT_CONFIG].def;
    }
    /* The stanza must be known before the file is read to pick its section. */
    int sslot = slot_base(UW_OPT_STANZA);
    if (!cfg->slots[sslot].value && getenv("UE_WAL_STANZA") && *getenv("UE_WAL_STANZA"))
        set_slot(cfg, sslot, getenv("UE_WAL_STANZA"), SRC_ENV);
    if (parse_env(cfg, err) < 0)
        goto fail;
    if (parse_file(cfg, path, required, err) < 0)
        goto fail;
    /* Defaults last. */
    for (int i = 0; i < UW_OPT_ID_COUNT; i++) {
        int n = (uw_options[i].flags & UW_OPTF_REPO) ? UW_REPO_MAX : 1;
        for (int r = 0; r < n; r++) {
            int slot = slot_base(i) + r;
            if (!cfg->slots[slot].value && uw_options[i].def)
                set_slot(cfg, slot, uw_options[i].def, SRC_DEFAULT);
        }
    }
    const char *stanza = cfg->slots[sslot].value;
    if (stanza) {
        for (const char *p = stanza; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
                uw_fail(err, UW_E_OPTION,
                        "option 'stanza': '%s' may only hold letters, digits, '-', '_' and '.'",
                        stanza);
                goto fail;
            }
        if (stanza[0] == '.') {
            uw_fail(err, UW_E_OPTION, "option 'stanza' must not begin with '.'");
            goto fail;
        }
    }
    uw_log_set_level(uw_cfg_str(cfg, UW_OPT_LOG_LEVEL));
    return cfg;
fail:
    uw_config_free(cfg);
    return NULL;
}

uw_config *uw_config_load(int argc, char **argv, unsigned command, uw_err *err)
{
    uw_config *cfg = uw_calloc(1, sizeof *cfg);
    cfg->command = command;
    cfg->slots = uw_calloc((size_t)slot_count(), sizeof(uw_slot));
    if (parse_cli(cfg, argc, argv, err) < 0) {
        uw_config_free(cfg);
        return NULL;
    }
    if (cfg->help || cfg->version)
        return cfg;
    return load_rest(cfg, err);
}

uw_config *uw_config_for_stanza(const uw_config *cfg, const char *stanza, uw_err *err)
{
    uw_config *c = uw_calloc(1, sizeof *c);
    c->command = cfg->command;
    int n = slot_count();
    c->slots = uw_calloc((size_t)n, sizeof(uw_slot));
    /* The command line again, as given; then everything else is read anew. */
    for (int i = 0; i < n; i++)
        if (cfg->slots[i].value && cfg->slots[i].src == SRC_CLI)
            set_slot(c, i, cfg->slots[i].value, SRC_CLI);
    for (int i = 0; i < cfg->nargs; i++) {
        c->args = uw_realloc(c->args, sizeof(char *) * (size_t)(c->nargs + 1));
        c->args[c->nargs++] = uw_strdup(cfg->args[i]);
    }
    set_slot(c, slot_base(UW_OPT_STANZA), stanza, SRC_CLI);
    return load_rest(c, err);
}

int uw_config_stanzas(const uw_config *cfg, char ***names, int *count, uw_err *err)
{
    *names = NULL;
    *count = 0;
    if (!cfg->file)
        return 0;
    FILE *f = fopen(cfg->file, "re");
    if (!f)
        return uw_fail(err, UW_E_CONFIG, "unable to open config file '%s': %s", cfg->file,
                       strerror(errno));
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *s = trim(line), *end = strchr(s, ']');
        if (*s != '[' || !end || end == s + 1)
            continue;
        *end = '\0';
        s++;
        bool seen = strcmp(s, "global") == 0;
        for (int i = 0; i < *count && !seen; i++)
            seen = strcmp((*names)[i], s) == 0;
        if (seen)
            continue;
        *names = uw_realloc(*names, sizeof(char *) * (size_t)(*count + 1));
        (*names)[(*count)++] = uw_strdup(s);
    }
    fclose(f);
    return 0;
}

void uw_config_free(uw_config *cfg)
{
    if (!cfg)
        return;
    int n = slot_count();
    for (int i = 0; i < n; i++) {
        if (cfg->slots[i].value && (i >= 0)) {
            /* Wipe secrets before freeing. */
            volatile char *p = cfg->slots[i].value;
            while (*p)
                *p++ = 0;
        }
        free(cfg->slots[i].value);
    }
    free(cfg->slots);
    for (int i = 0; i < cfg->nargs; i++)
        free(cfg->args[i]);
    free(cfg->args);
    free(cfg->file);
    free(cfg->missing_file);
    free(cfg);
}

bool uw_config_help(const uw_config *cfg)
{
    return cfg->help;
}
bool uw_config_version(const uw_config *cfg)
{
    return cfg->version;
}
int uw_config_argc(const uw_config *cfg)
{
    return cfg->nargs;
}
const char *uw_config_arg(const uw_config *cfg, int i)
{
    return i >= 0 && i < cfg->nargs ? cfg->args[i] : NULL;
}

/* A bug in our own code, not user input: stop at once, naming it. */
static void misuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ue-wal: BUG: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static const uw_slot *get(const uw_config *cfg, uw_opt_id id, int repo)
{
    if ((unsigned)id >= UW_OPT_ID_COUNT)
        misuse("option id %d out of range", (int)id);
    const uw_opt_def *d = &uw_options[id];
    if (!(d->flags & UW_OPTF_REPO)) {
        if (repo)
            misuse("option '%s' is not per repository (asked for repository %d)", d->name, repo);
        return &cfg->slots[slot_base(id)];
    }
    if (!repo)
        misuse("option 'repoN-%s' is per repository: read it with uw_cfg_repo_*", d->name);
    if (repo < 1 || repo > UW_REPO_MAX)
        misuse("option 'repoN-%s': repository %d out of range", d->name, repo);
    return &cfg->slots[slot_base(id) + repo - 1];
}

static int64_t to_int(uw_opt_id id, const char *v)
{
    int64_t n = 0;
    if (!v)
        return 0;
    if (uw_options[id].type == UW_OPT_SIZE) {
        uw_parse_size(v, &n);
        return n;
    }
    return strtoll(v, NULL, 10);
}

static bool to_bool(const char *v)
{
    bool b = false;
    return v && parse_bool(v, &b) && b;
}

static bool is_set(const uw_slot *s)
{
    return s->value && s->src != SRC_DEFAULT;
}

static const char *source(const uw_slot *s)
{
    static const char *const names[] = {"default", "config file", "environment", "command line"};
    return s->value ? names[s->src] : "unset";
}

unsigned uw_config_command(const uw_config *cfg)
{
    return cfg->command;
}

const char *uw_cfg_str(const uw_config *cfg, uw_opt_id id)
{
    return get(cfg, id, 0)->value;
}

int64_t uw_cfg_int(const uw_config *cfg, uw_opt_id id)
{
    return to_int(id, get(cfg, id, 0)->value);
}

bool uw_cfg_bool(const uw_config *cfg, uw_opt_id id)
{
    return to_bool(get(cfg, id, 0)->value);
}

bool uw_cfg_isset(const uw_config *cfg, uw_opt_id id)
{
    return is_set(get(cfg, id, 0));
}

const char *uw_cfg_source(const uw_config *cfg, uw_opt_id id)
{
    return source(get(cfg, id, 0));
}

const char *uw_cfg_repo_str(const uw_config *cfg, int repo, uw_opt_id id)
{
    return get(cfg, id, repo)->value;
}

int64_t uw_cfg_repo_int(const uw_config *cfg, int repo, uw_opt_id id)
{
    return to_int(id, get(cfg, id, repo)->value);
}

bool uw_cfg_repo_bool(const uw_config *cfg, int repo, uw_opt_id id)
{
    return to_bool(get(cfg, id, repo)->value);
}

bool uw_cfg_repo_isset(const uw_config *cfg, int repo, uw_opt_id id)
{
    return is_set(get(cfg, id, repo));
}

const char *uw_cfg_repo_source(const uw_config *cfg, int repo, uw_opt_id id)
{
    return source(get(cfg, id, repo));
}

const char *uw_cfg_file(const uw_config *cfg)
{
    return cfg->file;
}

const char *uw_cfg_missing_file(const uw_config *cfg)
{
    return cfg->missing_file;
}

char *uw_cfg_cli_repo_args(const uw_config *cfg)
{
    size_t cap = 256, len = 0;
    char *out = uw_calloc(1, cap);
    for (int i = 0; i < UW_OPT_ID_COUNT; i++) {
        const uw_opt_def *d = &uw_options[i];
        if (d->flags & (UW_OPTF_SECRET | UW_OPTF_CLI_ONLY))
            continue;
        if (!(d->commands & UW_CMD_FETCH) && i != UW_OPT_STANZA)
            continue;
        int n = (d->flags & UW_OPTF_REPO) ? UW_REPO_MAX : 1;
        for (int r = 0; r < n; r++) {
            const uw_slot *s = &cfg->slots[slot_base(i) + r];
            if (!s->value || s->src != SRC_CLI)
                continue;
            char name[UW_OPT_NAME_MAX];
            char *arg = uw_sprintf(" --%s=%s", uw_opt_name((uw_opt_id)i, r + 1, name, sizeof name),
                                   s->value);
            size_t al = strlen(arg);
            while (len + al + 1 > cap)
                out = uw_realloc(out, cap *= 2);
            memcpy(out + len, arg, al + 1);
            len += al;
            free(arg);
        }
    }
    return out;
}

void uw_config_usage(unsigned command, const char *synopsis, const char *description)
{
    bool show[UW_OPT_ID_COUNT];
    uw_help_binary_select(command, show);
    uw_help_print(stdout, synopsis, description, NULL, show);
}
