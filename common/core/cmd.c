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

uw_config *uw_cmd_start(int argc, char **argv, unsigned command, const char *synopsis,
                        const char *description, int *exit_code)
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
