#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uw_config *uw_cmd_start(int argc, char **argv, unsigned command, const char *synopsis,
                        const char *description, int *exit_code)
{
    uw_log_init(argv[0]);
    /* Repository files must never be readable by others, whatever umask the
     * caller (cron, PostgreSQL) runs with. */
    umask(027);
    srandom((unsigned)(time(NULL) ^ (getpid() << 16)));
    uw_err err;
    uw_err_clear(&err);
    uw_config *cfg = uw_config_load(argc, argv, command, &err);
    if (!cfg) {
        *exit_code = uw_cmd_fail(&err);
        return NULL;
    }
    if (uw_config_help(cfg)) {
        uw_config_usage(command, synopsis, description);
        uw_config_free(cfg);
        *exit_code = 0;
        return NULL;
    }
    if (uw_config_version(cfg)) {
        printf("ue-wal %s\n", UW_VERSION);
        uw_config_free(cfg);
        *exit_code = 0;
        return NULL;
    }
    return cfg;
}

int uw_cmd_fail(const uw_err *err)
{
    uw_log(UW_LOG_ERROR, "[%d %s] %s", err->code, uw_code_name(err->code), err->msg);
    return err->code ? (int)err->code : UW_E_INTERNAL;
}
