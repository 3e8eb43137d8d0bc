/* --help, "did you mean", the log line format and log-path files, the
 * progress line, and the root rule for commands that write to a repository. */
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/help.h"
#include "core/log.h"
#include "core/progress.h"
#include "repo/repo.h"
#include "unit.h"

extern char **environ;

static uw_config *load(unsigned command, uw_err *err, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = strdup("ue-wal-test");
    for (; *args && argc < 31; args++)
        argv[argc++] = strdup(*args);
    argv[argc] = NULL;
    uw_err_clear(err);
    uw_config *cfg = uw_config_load(argc, argv, command, err);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return cfg;
}

/* The error message of a load that must fail, or "" (and a failed check). */
static const char *load_error(unsigned command, const char *const *args, uw_err *err)
{
    uw_config *cfg = load(command, err, args);
    if (!CHECK(cfg == NULL)) {
        uw_config_free(cfg);
        return "";
    }
    CHECK_INT(err->code, UW_E_OPTION);
    return err->msg;
}

static void test_nearest(void)
{
    uw_t_section("edit distance and nearest word");
    CHECK_INT((int)uw_edit_distance("", ""), 0);
    CHECK_INT((int)uw_edit_distance("abc", ""), 3);
    CHECK_INT((int)uw_edit_distance("pg-prot", "pg-port"), 2);
    CHECK_INT((int)uw_edit_distance("kitten", "sitting"), 3);
    CHECK_INT((int)uw_edit_distance("restor", "restore"), 1);
    const char *cmds[] = {"stanza-create", "restore", "info"};
    CHECK_STR(uw_help_nearest("restor", cmds, 3), "restore");
    CHECK_STR(uw_help_nearest("stanza-crate", cmds, 3), "stanza-create");
    CHECK_STR(uw_help_nearest("inf", cmds, 3), "info");
    CHECK(uw_help_nearest("backup", cmds, 3) == NULL);
    CHECK(uw_help_nearest("x", cmds, 3) == NULL);

    char near[UW_OPT_NAME_MAX];
    CHECK(uw_help_nearest_option("pg-prot", UW_CMD_PITR, near, sizeof near));
    CHECK_STR(near, "pg-port");
    CHECK(uw_help_nearest_option("repo2-paht", UW_CMD_PUSH, near, sizeof near));
    CHECK_STR(near, "repo2-path");
    CHECK(uw_help_nearest_option("compres-type", UW_CMD_PUSH, near, sizeof near));
    CHECK_STR(near, "compress-type");
    /* Only the command's options: --target-time is ue-pitr's. */
    CHECK(uw_help_nearest_option("target-tim", UW_CMD_PITR, near, sizeof near));
    CHECK_STR(near, "target-time");
    CHECK(!uw_help_nearest_option("target-tim", UW_CMD_PUSH, near, sizeof near));
    CHECK(!uw_help_nearest_option("bogus-option", UW_CMD_PUSH, near, sizeof near));

    uw_t_section("unknown options and -h");
    uw_err err;
    CHECK_STR(load_error(UW_CMD_PITR, (const char *[]){"--pg-prot=5", NULL}, &err),
              "unknown option '--pg-prot' (did you mean '--pg-port'?)");
    CHECK_STR(load_error(UW_CMD_PUSH, (const char *[]){"--bogus-option=1", NULL}, &err),
              "unknown option '--bogus-option'");
    CHECK_STR(load_error(UW_CMD_FETCH, (const char *[]){"--repo3-s3-bukcet", "b", NULL}, &err),
              "unknown option '--repo3-s3-bukcet' (did you mean '--repo3-s3-bucket'?)");
    char tmpl[] = "/tmp/ut-help-XXXXXX";
    int fd = mkstemp(tmpl);
    if (CHECK(fd >= 0)) {
        const char *text = "[global]\nrepo1-path=/x\npg-prot=5\n";
        CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
        char copt[64];
        snprintf(copt, sizeof copt, "--config=%s", tmpl);
        char want[160];
        snprintf(want, sizeof want, "%s:3: unknown option 'pg-prot' (did you mean 'pg-port'?)",
                 tmpl);
        CHECK_STR(load_error(UW_CMD_PUSH, (const char *[]){copt, NULL}, &err), want);
        unlink(tmpl);
    }
    uw_config *cfg = load(UW_CMD_PITR, &err, (const char *[]){"restore", "-h", NULL});
    if (CHECK(cfg != NULL)) {
        CHECK(uw_config_help(cfg));
        CHECK_STR(uw_config_arg(cfg, 0), "restore");
        uw_config_free(cfg);
    }
}

/* --help text of show[] into a string (static buffer). */
static const char *help_text(const bool *show, const char *title)
{
    static char text[32768];
    FILE *f = fmemopen(text, sizeof text - 1, "w");
    if (!CHECK(f != NULL))
        return "";
    uw_help_print(f, "ue-test", "Test.", title, show);
    fclose(f);
    return text;
}

static void test_help_text(void)
{
    uw_t_section("placeholders and allowed values");
    char b[512];
    CHECK_STR(uw_help_synopsis(UW_OPT_PG_PORT, b, sizeof b), "--pg-port=PORT");
    /* The registered drivers, whatever their order. */
    uw_help_synopsis(UW_OPT_REPO_TYPE, b, sizeof b);
    CHECK(strncmp(b, "--repoN-type=", 13) == 0);
    CHECK_CONTAINS(b, "posix");
    CHECK_CONTAINS(b, "s3");
    CHECK_CONTAINS(b, "azure");
    CHECK_STR(uw_help_synopsis(UW_OPT_COMPRESS_TYPE, b, sizeof b), "--compress-type=zstd|none");
    CHECK_STR(uw_help_synopsis(UW_OPT_DELTA, b, sizeof b), "--delta=y|n");
    CHECK_STR(uw_help_synopsis(UW_OPT_STANZA, b, sizeof b), "--stanza=NAME");
    CHECK_STR(uw_help_synopsis(UW_OPT_PROCESS_MAX, b, sizeof b), "--process-max=N");
    CHECK_STR(uw_help_synopsis(UW_OPT_REPO_S3_PART_SIZE, b, sizeof b), "--repoN-s3-part-size=SIZE");
    CHECK_STR(uw_help_synopsis(UW_OPT_TARGET_TIME, b, sizeof b), "--target-time=TIMESTAMP");

    uw_t_section("groups");
    CHECK_INT(uw_help_group_of(UW_OPT_CONFIG), UW_HELP_GENERAL);
    CHECK_INT(uw_help_group_of(UW_OPT_LOG_PATH), UW_HELP_GENERAL);
    CHECK_INT(uw_help_group_of(UW_OPT_REPO_PATH), UW_HELP_REPO);
    CHECK_INT(uw_help_group_of(UW_OPT_REPO), UW_HELP_REPO);
    CHECK_INT(uw_help_group_of(UW_OPT_CIPHER_PASS), UW_HELP_REPO);
    CHECK_INT(uw_help_group_of(UW_OPT_PG_PORT), UW_HELP_PG);
    CHECK_INT(uw_help_group_of(UW_OPT_TARGET_TIME), UW_HELP_COMMAND);
    CHECK_INT(uw_help_group_of(UW_OPT_ARCHIVE_ASYNC), UW_HELP_COMMAND);

    uw_t_section("per binary");
    bool show[UW_OPT_ID_COUNT];
    uw_help_binary_select(UW_CMD_PUSH, show);
    const char *t = help_text(show, "Archiving options");
    CHECK_CONTAINS(t, "\n  --archive-async=y|n ");
    CHECK_CONTAINS(t, "\nArchiving options:\n");
    CHECK_CONTAINS(t, "\nGeneral options:\n");
    CHECK_CONTAINS(t, "\n  -h, --help ");
    CHECK(strstr(t, "--pg-port") == NULL);     /* push never connects */
    CHECK(strstr(t, "--target-time") == NULL); /* ue-pitr's */
    CHECK(strstr(t, "--pgdata") == NULL);
    /* Sections in order: general, repository, command. */
    const char *g = strstr(t, "General options"), *r = strstr(t, "Repository options"),
               *c = strstr(t, "Archiving options");
    CHECK(g && r && c && g < r && r < c);
    uw_help_binary_select(UW_CMD_BACKUP, show);
    t = help_text(show, NULL);
    CHECK_CONTAINS(t, "\nPostgreSQL options:\n");
    CHECK_CONTAINS(t, "\n  --pg-port=PORT ");
    CHECK_CONTAINS(t, "\n  --type=full|incr ");

    uw_t_section("per subcommand");
    static const uw_opt_id a[] = {UW_OPT_PGDATA, UW_OPT_TARGET_TIME, UW_OPT_PG_USER,
                                  UW_OPT_ID_COUNT};
    static const uw_opt_id b2[] = {UW_OPT_OUTPUT, UW_OPT_ID_COUNT};
    const uw_opt_id *lists[] = {a, b2, NULL};
    uw_help_sub_select(UW_CMD_PITR, lists, 3, 0, show);
    CHECK(show[UW_OPT_PGDATA] && show[UW_OPT_TARGET_TIME] && show[UW_OPT_PG_USER]);
    CHECK(show[UW_OPT_STANZA] && show[UW_OPT_REPO_PATH] && show[UW_OPT_CIPHER_TYPE]);
    CHECK(!show[UW_OPT_OUTPUT] && !show[UW_OPT_PG_PORT] && !show[UW_OPT_DELTA]);
    CHECK(!show[UW_OPT_ARCHIVE_ASYNC]); /* not an ue-pitr option at all */
    uw_help_sub_select(UW_CMD_PITR, lists, 3, 1, show);
    CHECK(show[UW_OPT_OUTPUT] && !show[UW_OPT_PGDATA] && show[UW_OPT_LOG_LEVEL]);
    /* A row without a list: what no other row claims (a new command's new
     * options), never another row's. */
    uw_help_sub_select(UW_CMD_PITR, lists, 3, 2, show);
    CHECK(show[UW_OPT_DELTA] && show[UW_OPT_PG_PORT] && show[UW_OPT_REPO_PATH]);
    CHECK(!show[UW_OPT_PGDATA] && !show[UW_OPT_OUTPUT] && !show[UW_OPT_TARGET_TIME]);
}

static bool matches(const char *text, const char *pattern)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE) != 0)
        return false;
    bool ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void read_file(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

static void test_log(void)
{
    uw_t_section("log lines and log-path files");
    char dir[] = "/tmp/ut-log-XXXXXX";
    if (!CHECK(mkdtemp(dir) != NULL))
        return;
    char err_path[128], file_path[128];
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    snprintf(file_path, sizeof file_path, "%s/s-restore.log", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    uw_log_init("/usr/bin/ue-pitr");
    uw_log_set_level("info");
    CHECK_INT(uw_log_open_file(file_path, "detail"), 0);
    uw_log(UW_LOG_INFO, "restored %d files", 7);
    uw_log(UW_LOG_DETAIL, "a detail line");
    uw_log(UW_LOG_DEBUG, "a debug line");
    uw_log_close_file();
    uw_log(UW_LOG_WARN, "after close");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    char text[4096];
    read_file(err_path, text, sizeof text);
    const char *prefix = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z \\[";
    char pat[256];
    snprintf(pat, sizeof pat, "%s%ld\\] ue-pitr: INFO: restored 7 files$", prefix, (long)getpid());
    CHECKF(matches(text, pat), "stderr: %s", text);
    CHECK(strstr(text, "a detail line") == NULL); /* below log-level */
    CHECK_CONTAINS(text, "ue-pitr: WARN: after close\n");

    read_file(file_path, text, sizeof text);
    CHECKF(matches(text, pat), "log file: %s", text);
    CHECK_CONTAINS(text, "ue-pitr: DETAIL: a detail line\n"); /* log-level-file=detail */
    CHECK(strstr(text, "a debug line") == NULL);
    CHECK(strstr(text, "after close") == NULL);
    struct stat sb;
    CHECK(stat(file_path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    /* Appended, never truncated. */
    CHECK_INT(uw_log_open_file(file_path, "info"), 0);
    uw_log_set_level("error"); /* stderr quiet; the file still gets info */
    uw_log(UW_LOG_INFO, "second run");
    uw_log_close_file();
    uw_log_set_level("info");
    read_file(file_path, text, sizeof text);
    CHECK_CONTAINS(text, "restored 7 files");
    CHECK_CONTAINS(text, "ue-pitr: INFO: second run\n");
    CHECK(uw_log_open_file("/nonexistent-dir/x.log", "info") < 0);

    char ts[40];
    uw_log_timestamp(ts, sizeof ts);
    CHECK(matches(ts, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"));
    unlink(err_path);
    unlink(file_path);
    rmdir(dir);
}

static void test_progress(void)
{
    uw_t_section("progress line");
    char b[256];
    uw_progress_format(b, sizeof b, "restore", 0, 4ULL << 30, 0, 900, 0.0);
    CHECK_STR(b, "restore: 0 B of 4.0 GiB (0%), 0 of 900 files");
    uw_progress_format(b, sizeof b, "restore", 1ULL << 30, 4ULL << 30, 120, 900, 10.0);
    CHECK_STR(b, "restore: 1.0 GiB of 4.0 GiB (25%), 120 of 900 files, 102.4 MiB/s, ETA 0:30");
    uw_progress_format(b, sizeof b, "backup", 5ULL << 30, 4ULL << 30, 900, 900, 4000.0);
    CHECK_STR(b, "backup: 5.0 GiB of 4.0 GiB (100%), 900 of 900 files, 1.3 MiB/s, ETA 0:00");
    uw_progress_format(b, sizeof b, "backup", 1ULL << 20, 10001ULL << 20, 1, 9, 1.0);
    CHECK_STR(b, "backup: 1.0 MiB of 9.8 GiB (0%), 1 of 9 files, 1.0 MiB/s, ETA 2:46:40");
    uw_progress_format(b, sizeof b, "backup", 0, 0, 0, 0, 1.0);
    CHECK_STR(b, "backup: 0 B of 0 B (100%), 0 of 0 files");

    /* Disabled or not: counts from threads add up, and nothing breaks. */
    uw_progress *p = uw_progress_start("x", 100, 10, false);
    for (int i = 0; i < 10; i++)
        uw_progress_add(p, 10, 1);
    uw_progress_finish(p);
    uw_progress_finish(NULL);
    CHECK(true);
}

static char empty_conf[64]; /* "--config=<an empty file>" */

static void test_root_rule(void)
{
    uw_t_section("root and the repository owner");
    if (geteuid() != 0) {
        uw_err err;
        uw_config *cfg = load(UW_CMD_PUSH, &err,
                              (const char *[]){"--config=/nonexistent-ut", "--stanza=s", NULL});
        CHECK(cfg == NULL); /* an explicit config file must exist */
        printf("(not root: the refusal itself is not exercised here)\n");
        return;
    }
    char dir[] = "/tmp/ut-owner-XXXXXX";
    if (!CHECK(mkdtemp(dir) != NULL))
        return;
    char mine[160], theirs[160], none[160];
    snprintf(mine, sizeof mine, "%s/root", dir);
    snprintf(theirs, sizeof theirs, "%s/nobody", dir);
    snprintf(none, sizeof none, "%s/missing", dir);
    CHECK(mkdir(mine, 0700) == 0 && mkdir(theirs, 0700) == 0);
    CHECK(chown(theirs, 65534, 65534) == 0);
    unsetenv("UE_WAL_CONFIG");
    char p1[200], p2[200];
    uw_err err;

    snprintf(p1, sizeof p1, "--repo1-path=%s", mine);
    uw_config *cfg = load(UW_CMD_PUSH, &err, (const char *[]){empty_conf, "--stanza=s", p1, NULL});
    if (CHECK(cfg != NULL)) {
        CHECK_INT(uw_repo_check_writer(cfg, &err), 0);
        uw_config_free(cfg);
    }
    snprintf(p2, sizeof p2, "--repo2-path=%s", theirs);
    cfg = load(UW_CMD_PUSH, &err, (const char *[]){empty_conf, "--stanza=s", p1, p2, NULL});
    if (CHECK(cfg != NULL)) {
        CHECK_INT(uw_repo_check_writer(cfg, &err), -1);
        CHECK_INT(err.code, UW_E_OPTION);
        CHECK_CONTAINS(err.msg, "refusing to run as root: repository repo2 '");
        CHECK_CONTAINS(err.msg, "' belongs to '");
        CHECK_CONTAINS(err.msg, "run as that user (sudo -u ");
        CHECK(strchr(err.msg, '\n') == NULL);
        uw_config_free(cfg);
    }
    /* --repo=1 writes to repo1 only. */
    cfg = load(UW_CMD_PUSH, &err,
               (const char *[]){empty_conf, "--stanza=s", p1, p2, "--repo=1", NULL});
    if (CHECK(cfg != NULL)) {
        CHECK_INT(uw_repo_check_writer(cfg, &err), 0);
        uw_config_free(cfg);
    }
    snprintf(p1, sizeof p1, "--repo1-path=%s", none);
    cfg = load(UW_CMD_PUSH, &err, (const char *[]){empty_conf, "--stanza=s", p1, NULL});
    if (CHECK(cfg != NULL)) {
        CHECK_INT(uw_repo_check_writer(cfg, &err), -1);
        CHECK_CONTAINS(err.msg, "does not exist");
        uw_config_free(cfg);
    }
    /* An object store has no owner here. */
    cfg = load(
        UW_CMD_PUSH, &err,
        (const char *[]){empty_conf, "--stanza=s", "--repo1-type=s3", "--repo1-s3-bucket=b", NULL});
    if (CHECK(cfg != NULL)) {
        CHECK_INT(uw_repo_check_writer(cfg, &err), 0);
        uw_config_free(cfg);
    }
    rmdir(mine);
    rmdir(theirs);
    rmdir(dir);
}

static void test_missing_default_file(void)
{
    uw_t_section("a missing default config file is remembered");
    uw_err err;
    unsetenv("UE_WAL_CONFIG");
    uw_config *cfg = load(UW_CMD_PUSH, &err, (const char *[]){"--stanza=s", NULL});
    if (CHECKF(cfg != NULL, "%s", err.msg)) {
        struct stat sb;
        if (stat("/etc/ue-wal/ue-wal.conf", &sb) != 0)
            CHECK_STR(uw_cfg_missing_file(cfg), "/etc/ue-wal/ue-wal.conf");
        uw_config_free(cfg);
    }
    cfg = load(UW_CMD_PUSH, &err, (const char *[]){empty_conf, "--stanza=s", NULL});
    if (CHECK(cfg != NULL)) {
        CHECK(uw_cfg_missing_file(cfg) == NULL);
        uw_config_free(cfg);
    }
}

int main(void)
{
    for (char **e = environ; *e;)
        if (strncmp(*e, "UE_WAL_", 7) == 0) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(strchr(*e, '=') - *e), *e);
            unsetenv(name);
        } else
            e++;
    test_nearest();
    test_help_text();
    test_log();
    test_progress();
    char tmpl[] = "/tmp/ut-help-conf-XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    snprintf(empty_conf, sizeof empty_conf, "--config=%s", tmpl);
    test_root_rule();
    test_missing_default_file();
    unlink(tmpl);
    return uw_t_done("test_help");
}
