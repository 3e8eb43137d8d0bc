/* ue-pitr: the operator's tool. Thin dispatch to one function per subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmd.h"
#include "core/help.h"
#include "pitr.h"

typedef struct {
    const char *name;
    int (*run)(const uw_config *cfg, uw_err *err);
    const char *help;
    /* `ue-pitr NAME --help` shows the general and repository options and
     * these (UW_OPT_ID_COUNT ends the list). NULL (a row that leaves it out):
     * every ue-pitr option that no other row lists. */
    const uw_opt_id *options;
} subcommand;

static const uw_opt_id stanza_create_options[] = {UW_OPT_PG_PATH, UW_OPT_ID_COUNT};
static const uw_opt_id restore_options[] = {
    UW_OPT_PGDATA,        UW_OPT_SET,         UW_OPT_TARGET,         UW_OPT_TARGET_TIME,
    UW_OPT_TARGET_LSN,    UW_OPT_TARGET_XID,  UW_OPT_TARGET_NAME,    UW_OPT_TARGET_TIMELINE,
    UW_OPT_TARGET_ACTION, UW_OPT_DELTA,       UW_OPT_START,          UW_OPT_PORT,
    UW_OPT_PG_USER,       UW_OPT_PG_DATABASE, UW_OPT_TABLESPACE_MAP, UW_OPT_TABLESPACE_MAP_ALL,
    UW_OPT_PROGRESS,      UW_OPT_ID_COUNT};
static const uw_opt_id info_options[] = {UW_OPT_OUTPUT, UW_OPT_ID_COUNT};
static const uw_opt_id check_options[] = {
    UW_OPT_PG_PATH, UW_OPT_PG_HOST,     UW_OPT_PG_PORT,         UW_OPT_PG_SOCKET_PATH,
    UW_OPT_PG_USER, UW_OPT_PG_DATABASE, UW_OPT_ARCHIVE_TIMEOUT, UW_OPT_ID_COUNT};
static const uw_opt_id verify_options[] = {UW_OPT_SET,         UW_OPT_FULL,     UW_OPT_OUTPUT,
                                           UW_OPT_PROCESS_MAX, UW_OPT_PROGRESS, UW_OPT_ID_COUNT};
static const uw_opt_id expire_options[] = {UW_OPT_DRY_RUN,           UW_OPT_NOW,
                                           UW_OPT_RETENTION_FULL,    UW_OPT_RETENTION_INCR,
                                           UW_OPT_RETENTION_DAILY,   UW_OPT_RETENTION_WEEKLY,
                                           UW_OPT_RETENTION_MONTHLY, UW_OPT_RETENTION_YEARLY,
                                           UW_OPT_RETENTION_ARCHIVE, UW_OPT_PROCESS_MAX,
                                           UW_OPT_ID_COUNT};
static const uw_opt_id backup_keep_options[] = {UW_OPT_SET, UW_OPT_UNTIL, UW_OPT_UNSET,
                                                UW_OPT_ID_COUNT};
static const uw_opt_id metrics_options[] = {UW_OPT_TEXTFILE, UW_OPT_PG_PATH, UW_OPT_ID_COUNT};
static const uw_opt_id drill_options[] = {
    UW_OPT_SET,          UW_OPT_TARGET_TIME, UW_OPT_CHECK_SQL, UW_OPT_DRILL_CHECK_SQL,
    UW_OPT_COMPARE_WITH, UW_OPT_TOLERANCE,   UW_OPT_REPORT,    UW_OPT_SCRATCH,
    UW_OPT_PROCESS_MAX,  UW_OPT_PROGRESS,    UW_OPT_ID_COUNT};
static const uw_opt_id restore_table_options[] = {
    UW_OPT_TABLE,       UW_OPT_TARGET_TIME, UW_OPT_TARGET_LSN,  UW_OPT_TARGET_XID,
    UW_OPT_TARGET_NAME, UW_OPT_OUT,         UW_OPT_FORMAT,      UW_OPT_SCRATCH,
    UW_OPT_SET,         UW_OPT_PG_DATABASE, UW_OPT_PROCESS_MAX, UW_OPT_ID_COUNT};

static const subcommand subcommands[] = {
    {"stanza-create", pitr_stanza_create, "create the stanza in every repository",
     stanza_create_options},
    {"restore", pitr_restore, "restore a backup for point-in-time recovery", restore_options},
    {"info", pitr_info,
     "show backups, archived WAL and restorable range (no --stanza: one line per stanza)",
     info_options},
    {"check", pitr_check, "prove archiving works end to end (stanza, settings, WAL switch)",
     check_options},
    {"verify", pitr_verify, "verify the repositories: objects, manifests, WAL continuity",
     verify_options},
    {"expire", pitr_expire, "remove backups and WAL the retention policy no longer keeps",
     expire_options},
    {"backup-keep", pitr_backup_keep, "pin a backup so that expire keeps it (--unset: unpin)",
     backup_keep_options},
    {"metrics", pitr_metrics, "Prometheus metrics of every stanza (or --stanza)", metrics_options},
    {"drill", pitr_drill, "restore a backup into a scratch instance, check it, time it",
     drill_options},
    {"restore-table", pitr_restore_table,
     "dump tables as they were at a target, via a scratch instance", restore_table_options},
};
#define N_SUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static const char *const restore_text =
    "Restore a backup into --pgdata and set up recovery to at most one of\n"
    "--target-time, --target-lsn, --target-xid, --target-name, --target=immediate\n"
    "(none: to the end of the archive).";

static void usage(void)
{
    char commands[4096] = "Commands:\n";
    for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
        size_t len = strlen(commands);
        snprintf(commands + len, sizeof commands - len, "  %-16s %s\n", subcommands[i].name,
                 subcommands[i].help);
    }
    size_t len = strlen(commands);
    snprintf(commands + len, sizeof commands - len,
             "\n'ue-pitr COMMAND --help' lists the options of one command.");
    /* The options every command takes: general and repository ones. */
    bool show[UW_OPT_ID_COUNT];
    for (int i = 0; i < UW_OPT_ID_COUNT; i++) {
        uw_help_group g = uw_help_group_of((uw_opt_id)i);
        show[i] =
            (uw_options[i].commands & UW_CMD_PITR) && (g == UW_HELP_GENERAL || g == UW_HELP_REPO);
    }
    uw_help_print(stdout, "ue-pitr [options] [--stanza NAME] COMMAND", commands, NULL, show);
}

static void sub_usage(size_t which)
{
    const uw_opt_id *lists[N_SUBCOMMANDS];
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        lists[i] = subcommands[i].options;
    bool show[UW_OPT_ID_COUNT];
    uw_help_sub_select(UW_CMD_PITR, lists, N_SUBCOMMANDS, which, show);
    char synopsis[128], title[128], text[1024];
    snprintf(synopsis, sizeof synopsis, "ue-pitr [options] --stanza NAME %s",
             subcommands[which].name);
    snprintf(title, sizeof title, "Options of %s", subcommands[which].name);
    snprintf(text, sizeof text, "%s",
             strcmp(subcommands[which].name, "restore") == 0 ? restore_text
                                                             : subcommands[which].help);
    if (text[0] >= 'a' && text[0] <= 'z' && strcmp(subcommands[which].name, "restore") != 0)
        text[0] = (char)(text[0] - 'a' + 'A');
    uw_help_print(stdout, synopsis, text, title, show);
}

/* "unknown command 'restor' (did you mean 'restore'?)" */
static int unknown_command(const char *cmd, uw_err *err)
{
    const char *names[N_SUBCOMMANDS];
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        names[i] = subcommands[i].name;
    const char *near = uw_help_nearest(cmd, names, N_SUBCOMMANDS);
    if (near)
        return uw_fail(err, UW_E_OPTION, "unknown command '%s' (did you mean '%s'?)", cmd, near);
    return uw_fail(err, UW_E_OPTION, "unknown command '%s' (try --help)", cmd);
}

int main(int argc, char **argv)
{
    int code;
    uw_config *cfg = uw_cmd_begin(argc, argv, UW_CMD_PITR, &code);
    if (!cfg)
        return code;
    uw_err err;
    uw_err_clear(&err);
    const char *cmd = uw_config_arg(cfg, 0);
    const subcommand *sc = NULL;
    for (size_t i = 0; cmd && i < N_SUBCOMMANDS; i++)
        if (strcmp(subcommands[i].name, cmd) == 0)
            sc = &subcommands[i];
    if (uw_config_help(cfg) && (!cmd || sc)) {
        /* ue-pitr --help, ue-pitr --help COMMAND, ue-pitr COMMAND --help */
        if (sc)
            sub_usage((size_t)(sc - subcommands));
        else
            usage();
        code = 0;
    } else if (!cmd)
        code = uw_cmd_fail(&(uw_err){UW_E_OPTION, "no command given (try --help)", 0});
    else if (!sc) {
        unknown_command(cmd, &err);
        code = uw_cmd_fail(&err);
    } else if (uw_config_argc(cfg) != 1) {
        uw_fail(&err, UW_E_OPTION, "unexpected argument '%s'", uw_config_arg(cfg, 1));
        code = uw_cmd_fail(&err);
    } else {
        uw_cmd_log_open(cfg, sc->name);
        code = sc->run(cfg, &err) < 0 ? uw_cmd_fail(&err) : 0;
    }
    uw_config_free(cfg);
    return code;
}
