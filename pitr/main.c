/* ue-pitr: the operator's tool. Thin dispatch to one function per subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmd.h"
#include "pitr.h"

typedef struct {
    const char *name;
    int (*run)(const uw_config *cfg, uw_err *err);
    const char *help;
} subcommand;

static const subcommand subcommands[] = {
    {"stanza-create", pitr_stanza_create, "create the stanza in every repository"},
    {"restore", pitr_restore, "restore a backup for point-in-time recovery"},
    {"info", pitr_info, "show backups, archived WAL and restorable range"},
    {"check", pitr_check, "prove archiving works end to end (stanza, settings, WAL switch)"},
    {"verify", pitr_verify, "verify the repositories: objects, manifests, WAL continuity"},
    {"expire", pitr_expire, "remove backups and WAL the retention policy no longer keeps"},
    {"backup-keep", pitr_backup_keep, "pin a backup so that expire keeps it (--unset: unpin)"},
    {"metrics", pitr_metrics, "Prometheus metrics of every stanza (or --stanza)"},
    {"drill", pitr_drill, "restore a backup into a scratch instance, check it, time it"},
    {"restore-table", pitr_restore_table,
     "dump tables as they were at a target, via a scratch instance"},
};

int main(int argc, char **argv)
{
    int code;
    uw_config *cfg =
        uw_cmd_start(argc, argv, UW_CMD_PITR, "ue-pitr [options] [--stanza NAME] COMMAND",
                     "Commands:\n"
                     "  stanza-create   record the cluster's identity in the repositories\n"
                     "  restore         restore a backup into --pgdata and set up recovery\n"
                     "                  to at most one of --target-time, --target-lsn,\n"
                     "                  --target-xid, --target-name, --target=immediate\n"
                     "                  (none: to the end of the archive)\n"
                     "  info            backups, archived WAL per timeline and the range\n"
                     "                  the repositories can restore to (--output json);\n"
                     "                  without --stanza one status line per stanza\n"
                     "  check           prove the stanza, archive_mode/archive_command and a\n"
                     "                  forced WAL switch reaching every repository\n"
                     "  verify          read every backup and WAL object, check WAL\n"
                     "                  continuity, say which backups restore (--set,\n"
                     "                  --full, --output json)\n"
                     "  expire          remove what the retention policy no longer keeps\n"
                     "                  (--dry-run: show it and why; --now TIME: as of then)\n"
                     "  backup-keep     --set ID [--until TIME]: expire keeps this backup;\n"
                     "                  --set ID --unset removes the pin\n"
                     "  metrics         Prometheus metrics of every stanza (or --stanza),\n"
                     "                  on stdout or into --textfile DIR/ue_wal.prom\n"
                     "  drill           restore the newest backup (or --set) into a scratch\n"
                     "                  instance, recover, check tables, row counts and\n"
                     "                  --check-sql, compare with --compare-with, time it\n"
                     "                  all and clean up (--report FILE: JSON)\n"
                     "  restore-table   --table SCHEMA.TABLE ... and a target: recover a\n"
                     "                  scratch instance and pg_dump the tables to --out",
                     &code);
    if (!cfg)
        return code;
    uw_err err;
    uw_err_clear(&err);
    const char *cmd = uw_config_arg(cfg, 0);
    const subcommand *sc = NULL;
    for (size_t i = 0; cmd && i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(subcommands[i].name, cmd) == 0)
            sc = &subcommands[i];
    if (!cmd)
        code = uw_cmd_fail(&(uw_err){UW_E_OPTION, "no command given (try --help)", 0});
    else if (!sc) {
        uw_fail(&err, UW_E_OPTION, "unknown command '%s' (try --help)", cmd);
        code = uw_cmd_fail(&err);
    } else if (uw_config_argc(cfg) != 1) {
        uw_fail(&err, UW_E_OPTION, "unexpected argument '%s'", uw_config_arg(cfg, 1));
        code = uw_cmd_fail(&err);
    } else
        code = sc->run(cfg, &err) < 0 ? uw_cmd_fail(&err) : 0;
    uw_config_free(cfg);
    return code;
}
