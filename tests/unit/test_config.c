/* Option parsing: command line, environment, INI file, validation, precedence. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/wait.h>

#include "core/config.h"
#include "io/compress.h"
#include "storage/storage.h"
#include "unit.h"

extern char **environ;

#define MAX_FILES 64
static char *files[MAX_FILES];
static int nfiles;

/* Remove every UE_WAL_* variable so the developer's environment cannot leak in. */
static void clear_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "UE_WAL_", 7) == 0) {
                const char *eq = strchr(*e, '=');
                size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
                if (n >= sizeof name)
                    n = sizeof name - 1;
                memcpy(name, *e, n);
                name[n] = '\0';
                break;
            }
        }
        if (!name[0])
            return;
        unsetenv(name);
    }
}

/* A temporary INI file with the given content; removed at exit. */
static const char *ini(const char *content)
{
    char tmpl[] = "/tmp/ut-config-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        perror("mkstemp");
        exit(2);
    }
    size_t len = strlen(content);
    if (write(fd, content, len) != (ssize_t)len) {
        perror("write");
        exit(2);
    }
    close(fd);
    if (nfiles == MAX_FILES) {
        fprintf(stderr, "too many temp files\n");
        exit(2);
    }
    files[nfiles] = strdup(tmpl);
    return files[nfiles++];
}

static void remove_files(void)
{
    for (int i = 0; i < nfiles; i++) {
        unlink(files[i]);
        free(files[i]);
    }
    nfiles = 0;
}

/* load(command, &err, "arg", ..., NULL): argv[0] is supplied. */
static uw_config *load(unsigned command, uw_err *err, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = strdup("ue-wal-test");
    va_list ap;
    va_start(ap, err);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 63)
        argv[argc++] = strdup(a);
    va_end(ap);
    argv[argc] = NULL;
    uw_err_clear(err);
    uw_config *cfg = uw_config_load(argc, argv, command, err);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return cfg;
}

static char *opt(const char *name, const char *value)
{
    return uw_sprintf("--%s=%s", name, value);
}

static void test_precedence(void)
{
    uw_t_section("precedence CLI > env > stanza > global > default");
    const char *f = ini("# comment\n; another\n\n[global]\ncompress-level = 5\npg-port=2222\n"
                        "log-level=info\n"
                        "[s]\ncompress-level=6\n"
                        "[other]\ncompress-level=9\npg-port=1111\ncompress-type=none\n");
    char *cf = opt("config", f);
    uw_err err;
    uw_config *cfg;

    setenv("UE_WAL_COMPRESS_LEVEL", "7", 1);
    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=s", "--compress-level=8", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 8);
        CHECK_STR(uw_cfg_source(cfg, UW_OPT_COMPRESS_LEVEL), "command line");
        CHECK(uw_cfg_isset(cfg, UW_OPT_COMPRESS_LEVEL));
        CHECK_STR(uw_cfg_file(cfg), f);
    }
    uw_config_free(cfg);

    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 7);
        CHECK_STR(uw_cfg_source(cfg, UW_OPT_COMPRESS_LEVEL), "environment");
    }
    uw_config_free(cfg);
    unsetenv("UE_WAL_COMPRESS_LEVEL");

    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 6);
        CHECK_STR(uw_cfg_source(cfg, UW_OPT_COMPRESS_LEVEL), "config file");
        /* [other] does not apply to stanza s; [global] does. */
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_PG_PORT), 2222);
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_COMPRESS_TYPE), "zstd");
        CHECK_STR(uw_cfg_source(cfg, UW_OPT_COMPRESS_TYPE), "default");
        CHECK(!uw_cfg_isset(cfg, UW_OPT_COMPRESS_TYPE));
    }
    uw_config_free(cfg);

    /* A stanza without its own section gets [global]. */
    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=nosection", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 5);
        CHECK_STR(uw_cfg_source(cfg, UW_OPT_COMPRESS_LEVEL), "config file");
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_STANZA), "nosection");
    }
    uw_config_free(cfg);

    /* The other stanza sees its own section. */
    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=other", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 9);
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_PG_PORT), 1111);
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_COMPRESS_TYPE), "none");
    }
    uw_config_free(cfg);

    /* No stanza: only [global]. */
    cfg = load(UW_CMD_PUSH, &err, cf, NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 5);
        CHECK(uw_cfg_str(cfg, UW_OPT_STANZA) == NULL);
        CHECK_STR(uw_cfg_source(cfg, UW_OPT_STANZA), "unset");
    }
    uw_config_free(cfg);

    /* The environment beats both file sections, the stanza may come from it. */
    setenv("UE_WAL_PG_PORT", "3333", 1);
    setenv("UE_WAL_STANZA", "other", 1);
    cfg = load(UW_CMD_PUSH, &err, cf, NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_STANZA), "other");
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_PG_PORT), 3333);
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 9);
    }
    uw_config_free(cfg);
    /* ...and the command line beats the environment's stanza. */
    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza", "s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_STANZA), "s");
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 6);
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_PG_PORT), 3333);
    }
    uw_config_free(cfg);
    unsetenv("UE_WAL_PG_PORT");
    unsetenv("UE_WAL_STANZA");

    /* Defaults when nothing is configured. */
    const char *empty = ini("");
    char *ce = opt("config", empty);
    cfg = load(UW_CMD_PUSH, &err, ce, NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 3);
        CHECK_STR(uw_cfg_source(cfg, UW_OPT_COMPRESS_LEVEL), "default");
        CHECK(!uw_cfg_isset(cfg, UW_OPT_COMPRESS_LEVEL));
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_PG_PORT), 5432);
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_COMPRESS_TYPE), "zstd");
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_CIPHER_TYPE), "none");
        CHECK_STR(uw_cfg_repo_str(cfg, 1, UW_OPT_REPO_TYPE), "posix");
        CHECK(uw_cfg_repo_str(cfg, 1, UW_OPT_REPO_PATH) == NULL);
        CHECK(uw_cfg_str(cfg, UW_OPT_CIPHER_PASS) == NULL);
        CHECK_INT(uw_config_argc(cfg), 0);
        CHECK(!uw_config_help(cfg));
        CHECK(!uw_config_version(cfg));
    }
    uw_config_free(cfg);

    /* stanza= in [global] (allowed there) selects the stanza section too. */
    const char *gs = ini("[global]\nstanza=s\ncompress-level=5\n[s]\ncompress-level=6\n");
    char *cgs = opt("config", gs);
    cfg = load(UW_CMD_PUSH, &err, cgs, NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_STANZA), "s");
        CHECKF(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL) == 6,
               "stanza=s set in [global] but [s] was not applied: compress-level=%lld (%s)",
               (long long)uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL),
               uw_cfg_source(cfg, UW_OPT_COMPRESS_LEVEL));
    }
    uw_config_free(cfg);
    /* ...which matters: here the stanza's encryption setting would be lost. */
    const char *gc = ini("[global]\nstanza=s\n[s]\ncipher-type=aes-256-gcm\n"
                         "cipher-pass=pw\n");
    char *cgc = opt("config", gc);
    cfg = load(UW_CMD_PUSH, &err, cgc, NULL);
    if (CHECK_OK(cfg != NULL, err))
        CHECKF(strcmp(uw_cfg_str(cfg, UW_OPT_CIPHER_TYPE), "aes-256-gcm") == 0,
               "stanza=s set in [global]: [s] cipher-type=aes-256-gcm ignored, got '%s' (%s)",
               uw_cfg_str(cfg, UW_OPT_CIPHER_TYPE), uw_cfg_source(cfg, UW_OPT_CIPHER_TYPE));
    uw_config_free(cfg);
    free(cgc);
    free(cgs);
    free(cf);
    free(ce);
}

static void test_forms(void)
{
    uw_t_section("--name=value, --name value, repo-indexed");
    const char *f = ini("[global]\nrepo3-path=/r3\n[s]\nrepo2-path=/file2\nrepo1-type=posix\n");
    char *cf = opt("config", f);
    uw_err err;
    uw_config *cfg;
    setenv("UE_WAL_REPO4_PATH", "/env4", 1);
    cfg = load(UW_CMD_PITR, &err, cf, "--stanza", "s", "--compress-level", "12", "--repo2-path",
               "/cli2", "--repo1-path=/cli1", "--pg-path", "/pg data", "--delta", "--start",
               "--no-start", "--target-action", "pause", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_STANZA), "s");
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 12);
        CHECK_STR(uw_cfg_repo_str(cfg, 1, UW_OPT_REPO_PATH), "/cli1");
        CHECK_STR(uw_cfg_repo_str(cfg, 2, UW_OPT_REPO_PATH), "/cli2");
        CHECK_STR(uw_cfg_repo_source(cfg, 2, UW_OPT_REPO_PATH), "command line");
        CHECK_STR(uw_cfg_repo_str(cfg, 3, UW_OPT_REPO_PATH), "/r3");
        CHECK_STR(uw_cfg_repo_source(cfg, 3, UW_OPT_REPO_PATH), "config file");
        CHECK_STR(uw_cfg_repo_str(cfg, 4, UW_OPT_REPO_PATH), "/env4");
        CHECK_STR(uw_cfg_repo_source(cfg, 4, UW_OPT_REPO_PATH), "environment");
        CHECK_STR(uw_cfg_repo_str(cfg, 2, UW_OPT_REPO_TYPE), "posix");
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_PG_PATH), "/pg data");
        CHECK(uw_cfg_bool(cfg, UW_OPT_DELTA));
        CHECK(!uw_cfg_bool(cfg, UW_OPT_START));
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_TARGET_ACTION), "pause");
        CHECK_INT(uw_config_argc(cfg), 0);
        char *cli = uw_cfg_cli_repo_args(cfg);
        CHECK_CONTAINS(cli, " --repo1-path=/cli1");
        CHECK_CONTAINS(cli, " --repo2-path=/cli2");
        CHECK_CONTAINS(cli, " --stanza=s");
        CHECK_NOT_CONTAINS(cli, "repo3-path");
        CHECK_NOT_CONTAINS(cli, "repo4-path");
        CHECK_NOT_CONTAINS(cli, "delta");
        free(cli);
    }
    uw_config_free(cfg);
    unsetenv("UE_WAL_REPO4_PATH");

    /* The file's repo2-path applies when the command line does not override it. */
    cfg = load(UW_CMD_PITR, &err, cf, "--stanza=s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_repo_str(cfg, 2, UW_OPT_REPO_PATH), "/file2");
        CHECK(uw_cfg_repo_str(cfg, 1, UW_OPT_REPO_PATH) == NULL);
        CHECK(!uw_cfg_repo_isset(cfg, 4, UW_OPT_REPO_PATH));
    }
    uw_config_free(cfg);

    /* CRLF line endings, blanks around names and values, '=' and '#' in values. */
    const char *crlf = ini("\r\n[global]\r\n  pg-user =  app=user#1  \r\n"
                           "[s]   \r\ncipher-pass=pa=ss # not a comment\r\n");
    char *ccrlf = opt("config", crlf);
    cfg = load(UW_CMD_PITR, &err, ccrlf, "--stanza=s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_PG_USER), "app=user#1");
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_CIPHER_PASS), "pa=ss # not a comment");
    }
    uw_config_free(cfg);
    free(ccrlf);
    /* An empty value on the command line is refused, naming the option. */
    cfg = load(UW_CMD_PITR, &err, cf, "--stanza=", NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "stanza");
    uw_config_free(cfg);

    /* Booleans accept y/n spellings. */
    const char *yes[] = {"y", "yes", "true", "on", "1", "Y", "TRUE"};
    const char *no[] = {"n", "no", "false", "off", "0", "N", "Off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        char *a = opt("delta", yes[i]);
        cfg = load(UW_CMD_PITR, &err, cf, a, NULL);
        CHECKF(cfg && uw_cfg_bool(cfg, UW_OPT_DELTA), "--delta=%s: %s", yes[i], err.msg);
        uw_config_free(cfg);
        free(a);
        a = opt("delta", no[i]);
        cfg = load(UW_CMD_PITR, &err, cf, a, NULL);
        CHECKF(cfg && !uw_cfg_bool(cfg, UW_OPT_DELTA), "--delta=%s: %s", no[i], err.msg);
        uw_config_free(cfg);
        free(a);
    }
    free(cf);
}

static void test_list(void)
{
    uw_t_section("repeatable options (UW_OPTF_LIST)");
    const char *f = ini("[global]\nrepo1-path=/r\n");
    char *cf = opt("config", f);
    uw_err err;
    uw_config *cfg = load(UW_CMD_PITR, &err, cf, "--stanza=s", "--tablespace-map", "1=/a b",
                          "--tablespace-map=22=/c", "--tablespace-map-all", "/x",
                          "--tablespace-map-all=/y", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_TABLESPACE_MAP), "1=/a b\n22=/c");
        CHECK_STR(uw_cfg_source(cfg, UW_OPT_TABLESPACE_MAP), "command line");
        /* Not a list: the last one given wins, as for every other option. */
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_TABLESPACE_MAP_ALL), "/y");
    }
    uw_config_free(cfg);
    cfg = load(UW_CMD_PITR, &err, cf, "--stanza=s", "--tablespace-map=1=/a", NULL);
    if (CHECK_OK(cfg != NULL, err))
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_TABLESPACE_MAP), "1=/a");
    uw_config_free(cfg);
    /* Values are kept one per line: a newline inside one is refused. */
    cfg = load(UW_CMD_PITR, &err, cf, "--stanza=s", "--tablespace-map=1=/a\n2=/b", NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "tablespace-map");
    uw_config_free(cfg);
    free(cf);
}

static void test_positional(void)
{
    uw_t_section("positional arguments, --help, --version");
    const char *f = ini("");
    char *cf = opt("config", f);
    uw_err err;
    uw_config *cfg = load(UW_CMD_PUSH, &err, "first", cf, "second", "--stanza=s", "-", "third",
                          "--", "--fourth", "-5", "--stanza=ignored", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_config_argc(cfg), 7);
        CHECK_STR(uw_config_arg(cfg, 0), "first");
        CHECK_STR(uw_config_arg(cfg, 1), "second");
        CHECK_STR(uw_config_arg(cfg, 2), "-");
        CHECK_STR(uw_config_arg(cfg, 3), "third");
        CHECK_STR(uw_config_arg(cfg, 4), "--fourth");
        CHECK_STR(uw_config_arg(cfg, 5), "-5");
        CHECK_STR(uw_config_arg(cfg, 6), "--stanza=ignored");
        CHECK(uw_config_arg(cfg, 7) == NULL);
        CHECK(uw_config_arg(cfg, -1) == NULL);
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_STANZA), "s");
    }
    uw_config_free(cfg);

    cfg = load(UW_CMD_PUSH, &err, "--help", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK(uw_config_help(cfg));
        CHECK(!uw_config_version(cfg));
    }
    uw_config_free(cfg);
    cfg = load(UW_CMD_FETCH, &err, "--version", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK(uw_config_version(cfg));
        CHECK(!uw_config_help(cfg));
    }
    uw_config_free(cfg);
    /* --help works even when the configuration is broken. */
    cfg = load(UW_CMD_PUSH, &err, "--config=/nonexistent/ue-wal-unit/x.conf", "--help", NULL);
    if (CHECK_OK(cfg != NULL, err))
        CHECK(uw_config_help(cfg));
    uw_config_free(cfg);
    free(cf);
}

static void test_cli_errors(void)
{
    uw_t_section("command-line errors");
    const char *f = ini("");
    char *cf = opt("config", f);
    uw_err err;
    uw_config *cfg;

    struct {
        const char *arg, *mention;
    } cases[] = {
        {"--bogus-option=1", "bogus-option"},
        {"--bogus-flag", "bogus-flag"},
        {"-x", "-x"},
        {"--repo5-path=/x", "repo5-path"},
        {"--repo0-path=/x", "repo0-path"},
        {"--repo1-stanza=x", "repo1-stanza"},
        {"--path=/x", "path"}, /* repo option without index */
        {"--compress-type=lz4", "compress-type"},
        {"--log-level=verbose", "log-level"},
        {"--repo1-type=ftp", "repo1-type"},
        {"--compress-level=abc", "compress-level"},
        {"--compress-level=5x", "compress-level"},
        {"--compress-level=", "compress-level"},
        {"--compress-level=1.5", "compress-level"},
        {"--compress-level=0", "compress-level"},
        {"--compress-level=20", "compress-level"},
        {"--compress-level=-1", "compress-level"},
        {"--compress-level=99999999999999999999", "compress-level"},
        {"--pg-port=65536", "pg-port"},
        {"--process-max=0", "process-max"},
        {"--pg-path=", "pg-path"},
        {"--no-pg-path", "no-pg-path"},
        {"--no-delta=y", "no-delta"},
        {"--delta=maybe", "delta"}, /* invalid bool */
        {"--repo=5", "repo"},
        {"--delta", "delta"}, /* restore-only option, not valid for push */
        {"--pgdata=/x", "pgdata"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=s", cases[i].arg, NULL);
        CHECKF(cfg == NULL && err.code == UW_E_OPTION, "'%s': %s (code %d)", cases[i].arg,
               cfg ? "accepted" : err.msg, (int)err.code);
        CHECKF(strstr(err.msg, cases[i].mention) != NULL, "'%s': message '%s' lacks '%s'",
               cases[i].arg, err.msg, cases[i].mention);
        uw_config_free(cfg);
    }
    /* Missing value at the end. */
    cfg = load(UW_CMD_PUSH, &err, cf, "--pg-path", NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "pg-path");
    uw_config_free(cfg);
    /* A valid option for another command is rejected here. */
    cfg = load(UW_CMD_FETCH, &err, cf, "--target=immediate", NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "target");
    uw_config_free(cfg);
    cfg = load(UW_CMD_PITR, &err, cf, "--target=immediate", NULL);
    CHECK_OK(cfg != NULL, err);
    uw_config_free(cfg);

    uw_t_section("secrets");
    const char *secret_args[][2] = {
        {"--cipher-pass=SECRETXYZ", NULL},
        {"--cipher-pass", "SECRETXYZ"},
        {"--repo1-cipher-pass=SECRETXYZ", NULL},
        {"--no-cipher-pass=SECRETXYZ", NULL},
    };
    for (size_t i = 0; i < sizeof secret_args / sizeof secret_args[0]; i++) {
        cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=s", secret_args[i][0], secret_args[i][1], NULL);
        CHECKF(cfg == NULL && err.code == UW_E_OPTION, "'%s' accepted", secret_args[i][0]);
        CHECK_NOT_CONTAINS(err.msg, "SECRETXYZ");
        CHECK_CONTAINS(err.msg, "cipher-pass");
        uw_config_free(cfg);
    }
    /* From the file and the environment it is accepted and never re-rendered. */
    const char *sf = ini("[global]\ncipher-type=aes-256-gcm\n[s]\ncipher-pass = SECRETXYZ \n");
    char *csf = opt("config", sf);
    cfg = load(UW_CMD_PUSH, &err, csf, "--stanza=s", "--repo1-path=/r", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_CIPHER_PASS), "SECRETXYZ");
        CHECK_STR(uw_cfg_source(cfg, UW_OPT_CIPHER_PASS), "config file");
        char *cli = uw_cfg_cli_repo_args(cfg);
        CHECK_NOT_CONTAINS(cli, "SECRETXYZ");
        CHECK_NOT_CONTAINS(cli, "cipher-pass");
        free(cli);
    }
    uw_config_free(cfg);
    setenv("UE_WAL_CIPHER_PASS", "SECRETENV", 1);
    cfg = load(UW_CMD_PUSH, &err, csf, "--stanza=s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_CIPHER_PASS), "SECRETENV");
        CHECK_STR(uw_cfg_source(cfg, UW_OPT_CIPHER_PASS), "environment");
    }
    uw_config_free(cfg);
    /* An unrelated error after the secret was read does not mention it. */
    cfg = load(UW_CMD_PUSH, &err, csf, "--stanza=s", "--compress-level=99", NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_OPTION);
    CHECK_NOT_CONTAINS(err.msg, "SECRETENV");
    CHECK_NOT_CONTAINS(err.msg, "SECRETXYZ");
    uw_config_free(cfg);
    unsetenv("UE_WAL_CIPHER_PASS");
    const char *bad_after = ini("[s]\ncipher-pass=SECRETXYZ\ncompress-level=high\n");
    char *cba = opt("config", bad_after);
    cfg = load(UW_CMD_PUSH, &err, cba, "--stanza=s", NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_OPTION);
    CHECK_NOT_CONTAINS(err.msg, "SECRETXYZ");
    CHECK_CONTAINS(err.msg, "compress-level");
    uw_config_free(cfg);
    const char *empty_secret = ini("[s]\ncipher-pass=\n");
    char *ces = opt("config", empty_secret);
    cfg = load(UW_CMD_PUSH, &err, ces, "--stanza=s", NULL);
    CHECK(cfg == NULL);
    CHECK_CONTAINS(err.msg, "cipher-pass");
    uw_config_free(cfg);
    free(cba);
    free(ces);
    free(csf);
    free(cf);
}

static void test_env_errors(void)
{
    uw_t_section("environment");
    const char *f = ini("");
    char *cf = opt("config", f);
    uw_err err;
    uw_config *cfg;
    setenv("UE_WAL_COMPRESS_TYPE", "lz4", 1);
    cfg = load(UW_CMD_PUSH, &err, cf, NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "compress-type");
    CHECK_CONTAINS(err.msg, "UE_WAL_COMPRESS_TYPE");
    uw_config_free(cfg);
    /* The command line wins, so the bad variable is not even looked at. */
    cfg = load(UW_CMD_PUSH, &err, cf, "--compress-type=none", NULL);
    if (CHECK_OK(cfg != NULL, err))
        CHECK_STR(uw_cfg_str(cfg, UW_OPT_COMPRESS_TYPE), "none");
    uw_config_free(cfg);
    unsetenv("UE_WAL_COMPRESS_TYPE");
    setenv("UE_WAL_PG_PORT", "0", 1);
    cfg = load(UW_CMD_PUSH, &err, cf, NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "pg-port");
    uw_config_free(cfg);
    unsetenv("UE_WAL_PG_PORT");
    /* Unknown UE_WAL_ variables are tolerated (warning only). */
    setenv("UE_WAL_SOME_HELPER", "1", 1);
    cfg = load(UW_CMD_PUSH, &err, cf, NULL);
    CHECK_OK(cfg != NULL, err);
    uw_config_free(cfg);
    unsetenv("UE_WAL_SOME_HELPER");
    setenv("UE_WAL_STANZA", "a/b", 1);
    cfg = load(UW_CMD_PUSH, &err, cf, NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_OPTION);
    CHECK_CONTAINS(err.msg, "stanza");
    uw_config_free(cfg);
    unsetenv("UE_WAL_STANZA");
    free(cf);
}

static void test_file_errors(void)
{
    uw_t_section("config file errors");
    uw_err err;
    uw_config *cfg;
    struct {
        const char *content;
        int line;
        const char *mention;
        uw_code code, alt;
    } cases[] = {
        {"[global]\nlog-level=info\nbogus-key=1\n", 3, "bogus-key", UW_E_OPTION, UW_E_CONFIG},
        /* a typo in another stanza's section is caught too */
        {"[global]\n[other]\n\ncompres-level=3\n", 4, "compres-level", UW_E_OPTION, UW_E_CONFIG},
        {"[s]\ncompress-type=lz4\n", 2, "compress-type", UW_E_OPTION, UW_E_OPTION},
        {"[s]\ncompress-level=abc\n", 2, "compress-level", UW_E_OPTION, UW_E_OPTION},
        {"[s]\ncompress-level=25\n", 2, "compress-level", UW_E_OPTION, UW_E_OPTION},
        {"[global]\npg-port=99999\n", 2, "pg-port", UW_E_OPTION, UW_E_OPTION},
        {"[global]\n\n\n\nrepo9-path=/x\n", 5, "repo9-path", UW_E_OPTION, UW_E_CONFIG},
        {"[global]\njustaword\n", 2, "", UW_E_CONFIG, UW_E_CONFIG},
        {"compress-level=3\n", 1, "compress-level", UW_E_CONFIG, UW_E_CONFIG},
        {"[global\ncompress-level=3\n", 1, "", UW_E_CONFIG, UW_E_CONFIG},
        {"[]\n", 1, "", UW_E_CONFIG, UW_E_CONFIG},
        {"[global]\ndelta=y\n", 2, "delta", UW_E_OPTION, UW_E_CONFIG},    /* CLI only */
        {"[global]\nconfig=/x\n", 2, "config", UW_E_OPTION, UW_E_CONFIG}, /* CLI only */
        {"[s]\nstanza=t\n", 2, "stanza", UW_E_OPTION, UW_E_CONFIG},       /* [global] only */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *f = ini(cases[i].content);
        char *cf = opt("config", f);
        cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=s", NULL);
        CHECKF(cfg == NULL && (err.code == cases[i].code || err.code == cases[i].alt),
               "case %zu: %s (code %d)", i, cfg ? "accepted" : err.msg, (int)err.code);
        char where[300];
        snprintf(where, sizeof where, "%s:%d", f, cases[i].line);
        CHECKF(strstr(err.msg, where) != NULL, "case %zu: '%s' lacks '%s'", i, err.msg, where);
        CHECKF(strstr(err.msg, cases[i].mention) != NULL, "case %zu: '%s' lacks '%s'", i, err.msg,
               cases[i].mention);
        uw_config_free(cfg);
        free(cf);
    }

    uw_t_section("config file location");
    cfg = load(UW_CMD_PUSH, &err, "--config=/nonexistent/ue-wal-unit/x.conf", NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_CONFIG);
    CHECK_CONTAINS(err.msg, "/nonexistent/ue-wal-unit/x.conf");
    uw_config_free(cfg);
    setenv("UE_WAL_CONFIG", "/nonexistent/ue-wal-unit/env.conf", 1);
    cfg = load(UW_CMD_PUSH, &err, NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_CONFIG);
    CHECK_CONTAINS(err.msg, "/nonexistent/ue-wal-unit/env.conf");
    uw_config_free(cfg);
    /* --config beats UE_WAL_CONFIG */
    const char *f = ini("[global]\ncompress-level=11\n");
    char *cf = opt("config", f);
    cfg = load(UW_CMD_PUSH, &err, cf, NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 11);
        CHECK_STR(uw_cfg_file(cfg), f);
    }
    uw_config_free(cfg);
    setenv("UE_WAL_CONFIG", f, 1);
    cfg = load(UW_CMD_PUSH, &err, NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 11);
        CHECK_STR(uw_cfg_file(cfg), f);
    }
    uw_config_free(cfg);
    unsetenv("UE_WAL_CONFIG");
    /* The default path may be missing. */
    if (access("/etc/ue-wal/ue-wal.conf", F_OK) != 0) {
        cfg = load(UW_CMD_PUSH, &err, "--stanza=s", NULL);
        if (CHECK_OK(cfg != NULL, err)) {
            CHECK(uw_cfg_file(cfg) == NULL);
            CHECK_INT(uw_cfg_int(cfg, UW_OPT_COMPRESS_LEVEL), 3);
        }
        uw_config_free(cfg);
    } else {
        printf("  (skipped: /etc/ue-wal/ue-wal.conf exists on this host)\n");
    }
    free(cf);
}

static void test_stanza_names(void)
{
    uw_t_section("stanza names");
    const char *f = ini("");
    char *cf = opt("config", f);
    uw_err err;
    const char *bad[] = {"a/b", "/abs", "../up",  "..",         ".",         ".hidden",
                         "a b", "a\\b", "sp ace", "semi;colon", "new\nline", "x/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *a = opt("stanza", bad[i]);
        uw_config *cfg = load(UW_CMD_PUSH, &err, cf, a, NULL);
        CHECKF(cfg == NULL && err.code == UW_E_OPTION, "stanza '%s' accepted", bad[i]);
        CHECK_CONTAINS(err.msg, "stanza");
        uw_config_free(cfg);
        free(a);
    }
    const char *good[] = {"main", "pg-15_main", "db.example.com", "A1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *a = opt("stanza", good[i]);
        uw_config *cfg = load(UW_CMD_PUSH, &err, cf, a, NULL);
        CHECKF(cfg != NULL, "stanza '%s' rejected: %s", good[i], err.msg);
        if (cfg)
            CHECK_STR(uw_cfg_str(cfg, UW_OPT_STANZA), good[i]);
        uw_config_free(cfg);
        free(a);
    }
    free(cf);
}

/* Option id of repository repo, or the option itself when it is not per repository. */
static bool is_repo(uw_opt_id id)
{
    return (uw_options[id].flags & UW_OPTF_REPO) != 0;
}
static const char *str_of(const uw_config *cfg, uw_opt_id id, int repo)
{
    return is_repo(id) ? uw_cfg_repo_str(cfg, repo, id) : uw_cfg_str(cfg, id);
}
static int64_t int_of(const uw_config *cfg, uw_opt_id id, int repo)
{
    return is_repo(id) ? uw_cfg_repo_int(cfg, repo, id) : uw_cfg_int(cfg, id);
}
static bool bool_of(const uw_config *cfg, uw_opt_id id, int repo)
{
    return is_repo(id) ? uw_cfg_repo_bool(cfg, repo, id) : uw_cfg_bool(cfg, id);
}
static bool isset_of(const uw_config *cfg, uw_opt_id id, int repo)
{
    return is_repo(id) ? uw_cfg_repo_isset(cfg, repo, id) : uw_cfg_isset(cfg, id);
}
static const char *source_of(const uw_config *cfg, uw_opt_id id, int repo)
{
    return is_repo(id) ? uw_cfg_repo_source(cfg, repo, id) : uw_cfg_source(cfg, id);
}

/* Every option in the table, whatever options exist when this runs. */
static void test_table(void)
{
    uw_t_section("every option in the table");
    const char *f = ini("");
    char *cf = opt("config", f);
    uw_err err;
    uw_config *cfg;
    /* Defaults are what the table says. */
    cfg = load(UW_CMD_ALL, &err, cf, NULL);
    if (!CHECK_OK(cfg != NULL, err)) {
        free(cf);
        return;
    }
    for (uw_opt_id i = 0; i < UW_OPT_ID_COUNT; i++) {
        const uw_opt_def *d = &uw_options[i];
        char name[UW_OPT_NAME_MAX];
        uw_opt_name(i, 3, name, sizeof name);
        if (i == UW_OPT_CONFIG)
            continue;
        const char *v = str_of(cfg, i, 3);
        CHECKF(d->def ? v && !strcmp(v, d->def) : v == NULL, "%s: default '%s', got '%s'", name,
               d->def ? d->def : "(none)", v ? v : "(null)");
        CHECKF(!isset_of(cfg, i, 3), "%s: set without being configured", name);
    }
    uw_config_free(cfg);

    int secrets = 0;
    for (uw_opt_id i = 0; i < UW_OPT_ID_COUNT; i++) {
        const uw_opt_def *d = &uw_options[i];
        char name[UW_OPT_NAME_MAX], env[128];
        uw_opt_name(i, 2, name, sizeof name);
        snprintf(env, sizeof env, "UE_WAL_%s", name);
        for (char *p = env; *p; p++)
            *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        if (i == UW_OPT_CONFIG)
            continue;
        char *a;
        if (d->flags & UW_OPTF_SECRET) {
            secrets++;
            a = opt(name, "SECRETXYZ");
            cfg = load(UW_CMD_ALL, &err, cf, a, NULL);
            CHECKF(cfg == NULL && err.code == UW_E_OPTION, "secret %s accepted on the command line",
                   name);
            CHECK_NOT_CONTAINS(err.msg, "SECRETXYZ");
            CHECK_CONTAINS(err.msg, name);
            uw_config_free(cfg);
            free(a);
            setenv(env, "SECRETXYZ", 1);
            cfg = load(UW_CMD_ALL, &err, cf, NULL);
            if (CHECKF(cfg != NULL, "secret %s from %s: %s", name, env, err.msg)) {
                CHECK_STR(str_of(cfg, i, 2), "SECRETXYZ");
                char *cli = uw_cfg_cli_repo_args(cfg);
                CHECK_NOT_CONTAINS(cli, "SECRETXYZ");
                free(cli);
            }
            uw_config_free(cfg);
            unsetenv(env);
            continue;
        }
        const char *bad[4] = {NULL, NULL, NULL, NULL};
        char lo[32], hi[32];
        switch (d->type) {
        case UW_OPT_ENUM:
            bad[0] = "not-a-value";
            bad[1] = "";
            for (const char *const *v = uw_opt_values(i); *v; v++) {
                a = opt(name, *v);
                cfg = load(UW_CMD_ALL, &err, cf, a, NULL);
                if (CHECKF(cfg != NULL, "%s: %s", a, err.msg))
                    CHECK_STR(str_of(cfg, i, 2), *v);
                uw_config_free(cfg);
                free(a);
            }
            break;
        case UW_OPT_INT:
        case UW_OPT_SIZE:
            snprintf(lo, sizeof lo, "%lld", (long long)d->min - 1);
            snprintf(hi, sizeof hi, "%lld", (long long)d->max + 1);
            bad[0] = "abc";
            bad[1] = "";
            bad[2] = d->min > 0 || d->type == UW_OPT_INT ? lo : "abc";
            bad[3] = hi;
            for (int k = 0; k < 2; k++) {
                long long want = k ? d->max : d->min;
                snprintf(lo, sizeof lo, "%lld", want);
                a = opt(name, lo);
                cfg = load(UW_CMD_ALL, &err, cf, a, NULL);
                if (CHECKF(cfg != NULL, "%s: %s", a, err.msg))
                    CHECKF(int_of(cfg, i, 2) == want, "%s read back as %lld", a,
                           (long long)int_of(cfg, i, 2));
                uw_config_free(cfg);
                free(a);
            }
            snprintf(lo, sizeof lo, "%lld", (long long)d->min - 1);
            break;
        case UW_OPT_BOOL:
            bad[0] = "maybe";
            bad[1] = "";
            a = uw_sprintf("--%s", name);
            cfg = load(UW_CMD_ALL, &err, cf, a, NULL);
            if (CHECKF(cfg != NULL, "%s: %s", a, err.msg))
                CHECK(bool_of(cfg, i, 2));
            uw_config_free(cfg);
            free(a);
            break;
        case UW_OPT_STRING:
            bad[0] = "";
            a = opt(name, "some-value");
            cfg = load(UW_CMD_ALL, &err, cf, a, NULL);
            if (CHECKF(cfg != NULL, "%s: %s", a, err.msg)) {
                CHECK_STR(str_of(cfg, i, 2), "some-value");
                CHECK_STR(source_of(cfg, i, 2), "command line");
            }
            uw_config_free(cfg);
            free(a);
            break;
        }
        for (int k = 0; k < 4; k++) {
            if (!bad[k])
                continue;
            a = opt(name, bad[k]);
            cfg = load(UW_CMD_ALL, &err, cf, a, NULL);
            CHECKF(cfg == NULL && err.code == UW_E_OPTION, "'%s' accepted", a);
            CHECKF(strstr(err.msg, name) != NULL, "'%s': message '%s' does not name it", a,
                   err.msg);
            uw_config_free(cfg);
            free(a);
            /* The same bad value from the environment is refused too; an empty
             * variable counts as unset, like PostgreSQL's PG* variables. */
            if (i != UW_OPT_STANZA && bad[k][0]) {
                setenv(env, bad[k], 1);
                cfg = load(UW_CMD_ALL, &err, cf, NULL);
                CHECKF(cfg == NULL && err.code == UW_E_OPTION, "%s='%s' accepted", env, bad[k]);
                CHECKF(strstr(err.msg, name) != NULL, "%s: message '%s' does not name it", env,
                       err.msg);
                uw_config_free(cfg);
                unsetenv(env);
            }
        }
    }
    CHECKF(secrets >= 1, "no secret options in the table");
    free(cf);
}

/* The ids as written in the source, from the same table, to check the naming rule. */
static const struct {
    uw_opt_id id;
    const char *ident, *name;
} idents[] = {
#define UW_OPTION(id, name, ...) {UW_OPT_##id, #id, name},
#include "core/options.def"
#undef UW_OPTION
};

static void test_ids(void)
{
    uw_t_section("option ids and names");
    CHECK_INT(UW_OPT_ID_COUNT, uw_option_count);
    CHECK_INT(sizeof idents / sizeof idents[0], UW_OPT_ID_COUNT);
    for (size_t k = 0; k < sizeof idents / sizeof idents[0]; k++) {
        uw_opt_id id = idents[k].id;
        bool repo = is_repo(id);
        CHECK_INT(id, k); /* uw_options[] is indexed by id, in the table's order */
        CHECK_STR(uw_options[id].name, idents[k].name);
        /* UW_OPT_<NAME> with '-' as '_', REPO_ in front of a repository option:
         * the rule that maps a name to its id (the lead's conversion relies on it). */
        char want[UW_OPT_NAME_MAX + 8];
        snprintf(want, sizeof want, "%s%s", repo ? "REPO_" : "", idents[k].name);
        for (char *p = want; *p; p++)
            *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        CHECKF(!strcmp(idents[k].ident, want), "UW_OPT_%s should be UW_OPT_%s", idents[k].ident,
               want);
        /* Every id round-trips through its full name, for each repository. */
        for (int r = repo ? 1 : 0; r <= (repo ? UW_REPO_MAX : 0); r++) {
            char name[UW_OPT_NAME_MAX];
            uw_opt_name(id, r, name, sizeof name);
            int back_repo = -1;
            CHECKF(uw_opt_lookup(name, &back_repo) == (int)id && back_repo == r,
                   "'%s' looked up as %d (repo %d), want %d (repo %d)", name,
                   uw_opt_lookup(name, &back_repo), back_repo, (int)id, r);
        }
        char name[UW_OPT_NAME_MAX], want_name[UW_OPT_NAME_MAX];
        snprintf(want_name, sizeof want_name, "%s%s", repo ? "repoN-" : "", idents[k].name);
        CHECK_STR(uw_opt_name(id, 0, name, sizeof name), want_name);
        if (repo) {
            snprintf(want_name, sizeof want_name, "repo4-%s", idents[k].name);
            CHECK_STR(uw_opt_name(id, 4, name, sizeof name), want_name);
        } else {
            CHECK_STR(uw_opt_name(id, 3, name, sizeof name), idents[k].name);
        }
    }
    char name[UW_OPT_NAME_MAX];
    CHECK_STR(uw_opt_name(UW_OPT_PG_PORT, 0, name, sizeof name), "pg-port");
    CHECK_STR(uw_opt_name(UW_OPT_REPO_PATH, 2, name, sizeof name), "repo2-path");
    CHECK_STR(uw_opt_name(UW_OPT_REPO_TYPE, 1, name, sizeof name), "repo1-type");
    CHECK_STR(uw_opt_name(UW_OPT_TYPE, 1, name, sizeof name), "type");
    CHECK_STR(uw_opt_name(UW_OPT_REPO, 0, name, sizeof name), "repo");
    int r = -1;
    CHECK_INT(uw_opt_lookup("type", &r), UW_OPT_TYPE);
    CHECK_INT(r, 0);
    CHECK_INT(uw_opt_lookup("repo3-type", &r), UW_OPT_REPO_TYPE);
    CHECK_INT(r, 3);
    CHECK_INT(uw_opt_lookup("repo", &r), UW_OPT_REPO);
    CHECK_INT(r, 0);

    uw_t_section("unknown option names");
    const char *unknown[] = {
        "bogus",        "",           "repo5-path",    "repo0-path",  "repo9-type", "repo10-path",
        "repoN-path",   "repo-path",  "repo1-",        "repo1",       "path",       "storage-port",
        "repo1-stanza", "repo1-repo", "repo1-pg-port", "pg_port",     "PG-PORT",    "pg-port ",
        "--pg-port",    "no-delta",   "repo1-path-x",  "x-repo1-path"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        r = -7;
        int id = uw_opt_lookup(unknown[i], &r);
        CHECKF(id == -1, "'%s' looked up as option %d", unknown[i], id);
        CHECKF(r == -7, "'%s': repo written on failure", unknown[i]);
    }
}

/* Run f(cfg) in a child; true when it stopped on abort() (a BUG in the caller). */
static bool aborts(void (*f)(const uw_config *), const uw_config *cfg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        f(cfg);
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return false;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}
static void repo_option_without_repo(const uw_config *cfg)
{
    (void)uw_cfg_str(cfg, UW_OPT_REPO_PATH);
}
static void repo_out_of_range(const uw_config *cfg)
{
    (void)uw_cfg_repo_str(cfg, UW_REPO_MAX + 1, UW_OPT_REPO_PATH);
}
static void repo_zero(const uw_config *cfg)
{
    (void)uw_cfg_repo_int(cfg, 0, UW_OPT_REPO_STORAGE_PORT);
}
static void global_option_with_repo(const uw_config *cfg)
{
    (void)uw_cfg_repo_int(cfg, 1, UW_OPT_PG_PORT);
}
static void id_out_of_range(const uw_config *cfg)
{
    (void)uw_cfg_int(cfg, UW_OPT_ID_COUNT);
}

static void test_repo_accessor(void)
{
    uw_t_section("per-repository accessor, repo 1..4");
    /* Each repository from another source, so that the slots cannot mix. */
    const char *f = ini("[global]\nrepo3-path=/file3\nrepo3-storage-port=3003\n"
                        "repo3-storage-verify-tls=n\n[s]\nrepo4-path=/file4\n");
    char *cf = opt("config", f);
    setenv("UE_WAL_REPO2_PATH", "/env2", 1);
    setenv("UE_WAL_REPO2_STORAGE_PORT", "2002", 1);
    uw_err err;
    uw_config *cfg =
        load(UW_CMD_FETCH, &err, cf, "--stanza=s", "--repo1-path=/cli1",
             "--repo1-storage-port=1001", "--repo4-type=s3", "--repo4-s3-part-size=6MiB", NULL);
    unsetenv("UE_WAL_REPO2_PATH");
    unsetenv("UE_WAL_REPO2_STORAGE_PORT");
    if (!CHECK_OK(cfg != NULL, err)) {
        free(cf);
        return;
    }
    const char *paths[] = {"/cli1", "/env2", "/file3", "/file4"};
    const char *sources[] = {"command line", "environment", "config file", "config file"};
    const int64_t ports[] = {1001, 2002, 3003, 0};
    for (int r = 1; r <= UW_REPO_MAX; r++) {
        CHECK_STR(uw_cfg_repo_str(cfg, r, UW_OPT_REPO_PATH), paths[r - 1]);
        CHECK_STR(uw_cfg_repo_source(cfg, r, UW_OPT_REPO_PATH), sources[r - 1]);
        CHECK(uw_cfg_repo_isset(cfg, r, UW_OPT_REPO_PATH));
        CHECK_INT(uw_cfg_repo_int(cfg, r, UW_OPT_REPO_STORAGE_PORT), ports[r - 1]);
        CHECK(uw_cfg_repo_isset(cfg, r, UW_OPT_REPO_STORAGE_PORT) == (ports[r - 1] != 0));
        CHECK(uw_cfg_repo_bool(cfg, r, UW_OPT_REPO_STORAGE_VERIFY_TLS) == (r != 3));
        CHECK_STR(uw_cfg_repo_str(cfg, r, UW_OPT_REPO_TYPE), r == 4 ? "s3" : "posix");
        CHECK_STR(uw_cfg_repo_source(cfg, r, UW_OPT_REPO_TYPE),
                  r == 4 ? "command line" : "default");
        CHECK_INT(uw_cfg_repo_int(cfg, r, UW_OPT_REPO_S3_PART_SIZE),
                  r == 4 ? 6LL << 20 : 16LL << 20);
        CHECK(uw_cfg_repo_str(cfg, r, UW_OPT_REPO_S3_BUCKET) == NULL);
        CHECK_STR(uw_cfg_repo_source(cfg, r, UW_OPT_REPO_S3_BUCKET), "unset");
    }

    uw_t_section("misuse of the accessors is a bug (abort)");
    CHECK(aborts(repo_option_without_repo, cfg));
    CHECK(aborts(repo_out_of_range, cfg));
    CHECK(aborts(repo_zero, cfg));
    CHECK(aborts(global_option_with_repo, cfg));
    CHECK(aborts(id_out_of_range, cfg));
    uw_config_free(cfg);
    free(cf);
}

/* The whole message for one bad value on the command line. */
static void check_enum_message(const char *arg, const char *want)
{
    uw_err err;
    uw_config *cfg = load(UW_CMD_PUSH, &err, "--config=/nonexistent/ue-wal-unit/x.conf", arg, NULL);
    CHECK_FAIL_CODE(cfg == NULL, err, UW_E_OPTION);
    CHECK_STR(err.msg, want);
    uw_config_free(cfg);
}

static void test_registered_values(void)
{
    uw_t_section("repoN-type: the storage drivers' types");
    /* Today's messages, word for word. */
    check_enum_message("--repo1-type=ftp",
                       "option 'repo1-type' (command line): 'ftp' is not one of posix|azure|s3");
    check_enum_message("--repo3-type=POSIX",
                       "option 'repo3-type' (command line): 'POSIX' is not one of posix|azure|s3");
    const char *const *types = uw_opt_values(UW_OPT_REPO_TYPE);
    int n = 0;
    for (; types[n]; n++) {
        /* Each listed type opens its driver: s3 and azure stop at their own
         * required options, never at "type ... is not supported". */
        char *a = opt("repo1-type", types[n]);
        uw_err err;
        uw_config *cfg = load(UW_CMD_PUSH, &err, a, "--repo1-path=/tmp", NULL);
        if (CHECKF(cfg != NULL, "%s: %s", a, err.msg)) {
            uw_err_clear(&err);
            uw_storage *st = uw_storage_open(cfg, 1, &err);
            CHECKF(st || !strstr(err.msg, "not supported"), "%s: %s", a, err.msg);
            if (st)
                CHECK_STR(st->drv->type, types[n]);
            uw_storage_close(st);
        }
        uw_config_free(cfg);
        free(a);
    }
    CHECK_INT(n, 3);

    uw_t_section("compress-type: the compressors' names");
    check_enum_message("--compress-type=lz4",
                       "option 'compress-type' (command line): 'lz4' is not one of zstd|none");
    const char *const *names = uw_opt_values(UW_OPT_COMPRESS_TYPE);
    for (n = 0; names[n]; n++) {
        const uw_compressor *c = uw_compressor_by_name(names[n]);
        if (CHECKF(c != NULL, "compress-type value '%s' has no compressor", names[n]))
            CHECK_STR(c->name, names[n]);
    }
    CHECK_INT(n, 2);
    /* Registering is idempotent and keeps the order. */
    uw_opt_register_value(UW_OPT_COMPRESS_TYPE, "zstd");
    CHECK(uw_opt_values(UW_OPT_COMPRESS_TYPE)[2] == NULL);
    CHECK_STR(uw_opt_values(UW_OPT_COMPRESS_TYPE)[0], "zstd");
    /* Static lists stay where the table has them. */
    CHECK_STR(uw_opt_values(UW_OPT_LOG_LEVEL)[0], "error");
    check_enum_message(
        "--log-level=verbose",
        "option 'log-level' (command line): 'verbose' is not one of error|warn|info|detail|debug");

    uw_t_section("--help lists registered values");
    char tmpl[] = "/tmp/ut-config-help-XXXXXX";
    int fd = mkstemp(tmpl);
    if (!CHECK(fd >= 0))
        return;
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    uw_config_usage(UW_CMD_PUSH, "ue-wal-push [options] %p", "Push.");
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    char help[16384];
    ssize_t len = pread(fd, help, sizeof help - 1, 0);
    close(fd);
    unlink(tmpl);
    help[len > 0 ? len : 0] = '\0';
    CHECK_CONTAINS(help, "\n  --compress-type=zstd|none      compress type [default: zstd]\n");
    CHECK_CONTAINS(help, "\n  --repoN-type=posix|azure|s3    repository type [default: posix]\n");
    CHECK_CONTAINS(help, "\n  --log-level=error|warn|info|detail|debug\n"
                         "                                 log level [default: info]\n");
    CHECK_CONTAINS(help, "\n  --cipher-type=none|aes-256-gcm cipher type [default: none]\n");
}

static void check_size(const char *s, int64_t want)
{
    int64_t v = -7;
    int rc = uw_parse_size(s, &v);
    CHECKF(rc == 0 && v == want, "uw_parse_size('%s') = %d, %lld; want %lld", s, rc, (long long)v,
           (long long)want);
}

static void test_parse_size(void)
{
    uw_t_section("uw_parse_size");
    check_size("16MiB", 16LL << 20);
    check_size("8M", 8LL << 20);
    check_size("8m", 8LL << 20);
    check_size("8MB", 8LL << 20);
    check_size("1048576", 1048576);
    check_size("0", 0);
    check_size("1k", 1024);
    check_size("1K", 1024);
    check_size("1KiB", 1024);
    check_size("2G", 2LL << 30);
    check_size("3GiB", 3LL << 30);
    check_size("1T", 1LL << 40);
    check_size("512B", 512);
    check_size("512b", 512);
    const char *bad[] = {"x",
                         "-1",
                         "",
                         "k",
                         "1x",
                         "1.5M",
                         "1MiBx",
                         "1M B",
                         "1 M",
                         "1KK",
                         "-1k",
                         "9223372036854775807k",
                         "99999999999999999999",
                         "1iB",
                         "1Mi B"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 12345;
        int rc = uw_parse_size(bad[i], &v);
        CHECKF(rc == -1, "uw_parse_size('%s') accepted: %lld", bad[i], (long long)v);
        CHECKF(v == 12345, "uw_parse_size('%s') wrote the output on failure", bad[i]);
    }
}


/* Load f (which holds a secret) with stderr captured; returns what was logged. */
static char *load_logged(const char *f, mode_t mode)
{
    chmod(f, mode);
    char out[] = "/tmp/ut-config-log-XXXXXX";
    int lfd = mkstemp(out);
    fflush(stderr);
    int saved = dup(2);
    dup2(lfd, 2);
    char *cf = opt("config", f);
    uw_err err;
    uw_config *cfg = load(UW_CMD_FETCH, &err, cf, "--stanza=s", NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CHECK_OK(cfg != NULL, err);
    uw_config_free(cfg);
    free(cf);
    char buf[2048] = "";
    ssize_t n = pread(lfd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(lfd);
    unlink(out);
    return strdup(buf);
}

static void test_secret_file_mode(void)
{
    uw_t_section("a config file holding a secret, readable by others: a warning names it");
    const char *f = ini("[global]\nrepo1-path=/r\ncipher-type=aes-256-gcm\ncipher-pass=xyzzy\n");
    char *log = load_logged(f, 0644);
    CHECK_CONTAINS(log, "holds a secret (cipher-pass) and is readable by everyone (mode 0644)");
    CHECK(strstr(log, "xyzzy") == NULL);
    free(log);
    /* group-readable: fine for the group this runs as (0640 root:postgres) */
    log = load_logged(f, 0640);
    CHECK_STR(log, "");
    free(log);
    log = load_logged(f, 0600);
    CHECK_STR(log, "");
    free(log);
    /* no secret in it: no warning whatever the mode */
    const char *g = ini("[global]\nrepo1-path=/r\n");
    log = load_logged(g, 0644);
    CHECK_STR(log, "");
    free(log);
}

int main(void)
{
    clear_env();
    test_precedence();
    test_forms();
    test_list();
    test_positional();
    test_cli_errors();
    test_env_errors();
    test_file_errors();
    test_stanza_names();
    test_table();
    test_ids();
    test_repo_accessor();
    test_registered_values();
    test_parse_size();
    test_secret_file_mode();
    remove_files();
    return uw_t_done("test_config");
}
