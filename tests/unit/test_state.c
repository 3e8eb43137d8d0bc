/* The spool's per-stanza outcome files (common/work/state.c) that metrics
 * reads: round trip, replacement, counters kept across saves, newline
 * injection neutralised, and files that are not ours refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "work/state.h"

static char dir[] = "/tmp/uw-test-state-XXXXXX";

static void test_round_trip(void)
{
    uw_t_section("save, load, replace");
    char *path = uw_sprintf("%s/backup.state", dir);
    uw_err err;
    uw_err_clear(&err);
    uw_state *st = uw_state_load_file(path, &err);
    CHECKF(st && uw_state_key(st, 0, NULL) == NULL, "missing file is an empty state");
    uw_state_set_int(st, "failures_total", 2);
    uw_state_set(st, "label", "%s", "20261130-040000F");
    uw_state_set_int(st, "failures_total", 3);
    uw_err fail = {UW_E_STORAGE, "unable to write 'x'\nresult=ok", 0};
    uw_state_outcome(st, &fail);
    CHECKF(uw_state_save_file(path, st, &err) == 0, "%s", err.msg);
    uw_state_free(st);

    struct stat sb;
    CHECKF(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "mode 0600");
    st = uw_state_load_file(path, &err);
    CHECKF(st != NULL, "%s", err.msg);
    CHECKF(uw_state_get_int(st, "failures_total", -1) == 3, "replaced, not appended");
    CHECK_STR(uw_state_get(st, "label"), "20261130-040000F");
    CHECK_STR(uw_state_get(st, "result"), "fail");
    CHECKF(uw_state_get_int(st, "code", 0) == UW_E_STORAGE, "code kept");
    CHECK_STR(uw_state_get(st, "message"), "unable to write 'x' result=ok");
    CHECKF(uw_state_get_int(st, "label", -7) == -7, "non-integer gives the default");
    CHECKF(uw_state_get(st, "absent") == NULL, "absent key");
    CHECKF(uw_state_get(st, "last_success_end") == NULL, "no success yet");
    uw_state_outcome(st, NULL);
    CHECK_STR(uw_state_get(st, "result"), "ok");
    CHECK_STR(uw_state_get(st, "message"), "");
    int64_t success = uw_state_get_int(st, "last_success_end", -1);
    CHECKF(success > 0 && success == uw_state_get_int(st, "end", -2), "success recorded");
    uw_state_set_int(st, "last_success_end", 1000);
    uw_state_outcome(st, &fail);
    CHECKF(uw_state_get_int(st, "last_success_end", -1) == 1000, "kept through a failure");
    uw_state_free(st);
    free(path);
}

static void test_refused(void)
{
    uw_t_section("foreign files refused");
    uw_err err;
    char *path = uw_sprintf("%s/bad.state", dir);
    FILE *f = fopen(path, "w");
    fputs("result=ok\nnot a key value line\n", f);
    fclose(f);
    uw_err_clear(&err);
    CHECKF(uw_state_load_file(path, &err) == NULL && err.code == UW_E_FILE, "malformed refused");
    CHECKF(strstr(err.msg, "line 2") != NULL, "%s", err.msg);
    unlink(path);
    CHECKF(mkdir(path, 0700) == 0, "mkdir");
    uw_err_clear(&err);
    CHECKF(uw_state_load_file(path, &err) == NULL && err.code == UW_E_FILE, "directory refused");
    rmdir(path);
    free(path);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    test_round_trip();
    test_refused();
    char *cmd = uw_sprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "unable to remove %s\n", dir);
    free(cmd);
    return uw_t_done("test_state");
}
