/* The configuration file (INI, common/core/config.c), read through the real
 * loader: the input is the content of the file given with --config (a memfd,
 * so nothing touches the disk), for stanza "main". */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "fuzz.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("fuzz-config", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        /* UE_WAL_* variables of the environment would mix in: none. */
        unsetenv("UE_WAL_CONFIG");
        unsetenv("UE_WAL_STANZA");
        uw_log_init("fuzz_config");
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char *argv[] = {"fuzz", "--config", path, "--stanza", "main", "archive-get", NULL};
    uw_err err;
    uw_config *cfg = uw_config_load(6, argv, UW_CMD_FETCH, &err);
    if (cfg) {
        uw_cfg_repo_str(cfg, 1, UW_OPT_REPO_PATH);
        uw_cfg_int(cfg, UW_OPT_ARCHIVE_GET_QUEUE_MAX);
        uw_cfg_bool(cfg, UW_OPT_ARCHIVE_ASYNC);
        free(uw_cfg_cli_repo_args(cfg));
        uw_config_free(cfg);
    } else {
        fuzz_check_err(&err);
    }
    uw_log_set_level("error"); /* a fuzzed log-level=debug would flood the output */
    return 0;
}
