#include "core/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The default config file that did not exist (uw_cfg_missing_file), kept
 * for uw_cmd_fail, which has no config to ask. */
static char missing_config[512];

/* The command name in log-path's file names: the program's without "ue-". */
static const char *program_command(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');
    const char *base = slash ? slash + 1 : argv0;
    return strncmp(base, "ue-", 3) == 0 ? base + 3 : base;
}

uw_config *uw_cmd_begin(int argc, char **argv, unsigned command, int *exit_code)
{
    uw_log_init(argv[0]);
    /* What the tools create (repository files, spool, state, temporaries) is
     * for the running user only, whatever umask the caller (cron, PostgreSQL,
     * a shell with umask 000) runs with: 0600 files, 0700 directories. A
     * restored data directory gets its modes explicitly (chmod), group
     * access included when the backup had it. */
    umask(077);
    srandom((unsigned)(time(NULL) ^ (getpid() << 16)));
    uw_err err;
    uw_err_clear(&err);
    uw_config *cfg = uw_config_load(argc, argv, command, &err);
    if (!cfg) {
        *exit_code = uw_cmd_fail(&err);
        return NULL;
    }
    if (uw_config_version(cfg) && !uw_config_help(cfg)) {
        printf("ue-wal %s\n", UW_VERSION);
        uw_config_free(cfg);
        *exit_code = 0;
        return NULL;
    }
    const char *missing = uw_cfg_missing_file(cfg);
    snprintf(missing_config, sizeof missing_config, "%s", missing ? missing : "");
    /* ue-pitr opens its file once it knows the subcommand. */
    if (!uw_config_help(cfg) && command != UW_CMD_PITR)
        uw_cmd_log_open(cfg, program_command(argv[0]));
    return cfg;
}

uw_config *uw_cmd_start(int argc, char **argv, unsigned command, const char *synopsis,
                        const char *description, int *exit_code)
{
    uw_config *cfg = uw_cmd_begin(argc, argv, command, exit_code);
    if (cfg && uw_config_help(cfg)) {
        uw_config_usage(command, synopsis, description);
        uw_config_free(cfg);
        *exit_code = 0;
        return NULL;
    }
    return cfg;
}

void uw_cmd_log_open(const uw_config *cfg, const char *command)
{
    const char *dir = uw_cfg_str(cfg, UW_OPT_LOG_PATH);
    if (!dir)
        return;
    const char *stanza = uw_cfg_str(cfg, UW_OPT_STANZA);
    char *path = uw_sprintf("%s/%s-%s.log", dir, stanza ? stanza : "all", command);
    /* A log file that cannot be opened must not stop archiving: stderr still
     * has every line. */
    if (uw_log_open_file(path, uw_cfg_str(cfg, UW_OPT_LOG_LEVEL_FILE)) < 0)
        uw_log(UW_LOG_WARN, "unable to open log file '%s': %s", path, strerror(errno));
    free(path);
}

int uw_cmd_fail(const uw_err *err)
{
    /* An option that is required but unset, when the default configuration
     * file does not exist: that file is the likely cause, so name it. */
    if (err->code == UW_E_OPTION && missing_config[0] && strstr(err->msg, "is required"))
        uw_log(UW_LOG_ERROR, "[%d %s] %s: the configuration file %s does not exist", err->code,
               uw_code_name(err->code), err->msg, missing_config);
    else
        uw_log(UW_LOG_ERROR, "[%d %s] %s", err->code, uw_code_name(err->code), err->msg);
    return err->code ? (int)err->code : UW_E_INTERNAL;
}

int uw_daemon_start(const char *dir)
{
    char *path = uw_sprintf("%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0)
        return UW_DAEMON_FAILED;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? UW_DAEMON_RUNNING : UW_DAEMON_FAILED;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        if (fork() != 0)
            _exit(0);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            close(null);
        }
        return UW_DAEMON_CHILD; /* keeps fd, and with it the lock */
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
    close(fd);
    return pid > 0 ? UW_DAEMON_STARTED : UW_DAEMON_FAILED;
}

bool uw_read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\n")] = '\0';
    return ok;
}
