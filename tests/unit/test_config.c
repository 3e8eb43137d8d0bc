/* Option parsing: command line, environment, INI file, validation, precedence. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
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
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 8);
        CHECK_STR(uw_cfg_source(cfg, "compress-level"), "command line");
        CHECK(uw_cfg_isset(cfg, "compress-level"));
        CHECK_STR(uw_cfg_file(cfg), f);
    }
    uw_config_free(cfg);

    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 7);
        CHECK_STR(uw_cfg_source(cfg, "compress-level"), "environment");
    }
    uw_config_free(cfg);
    unsetenv("UE_WAL_COMPRESS_LEVEL");

    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 6);
        CHECK_STR(uw_cfg_source(cfg, "compress-level"), "config file");
        /* [other] does not apply to stanza s; [global] does. */
        CHECK_INT(uw_cfg_int(cfg, "pg-port"), 2222);
        CHECK_STR(uw_cfg_str(cfg, "compress-type"), "zstd");
        CHECK_STR(uw_cfg_source(cfg, "compress-type"), "default");
        CHECK(!uw_cfg_isset(cfg, "compress-type"));
    }
    uw_config_free(cfg);

    /* A stanza without its own section gets [global]. */
    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=nosection", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 5);
        CHECK_STR(uw_cfg_source(cfg, "compress-level"), "config file");
        CHECK_STR(uw_cfg_str(cfg, "stanza"), "nosection");
    }
    uw_config_free(cfg);

    /* The other stanza sees its own section. */
    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza=other", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 9);
        CHECK_INT(uw_cfg_int(cfg, "pg-port"), 1111);
        CHECK_STR(uw_cfg_str(cfg, "compress-type"), "none");
    }
    uw_config_free(cfg);

    /* No stanza: only [global]. */
    cfg = load(UW_CMD_PUSH, &err, cf, NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 5);
        CHECK(uw_cfg_str(cfg, "stanza") == NULL);
        CHECK_STR(uw_cfg_source(cfg, "stanza"), "unset");
    }
    uw_config_free(cfg);

    /* The environment beats both file sections, the stanza may come from it. */
    setenv("UE_WAL_PG_PORT", "3333", 1);
    setenv("UE_WAL_STANZA", "other", 1);
    cfg = load(UW_CMD_PUSH, &err, cf, NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, "stanza"), "other");
        CHECK_INT(uw_cfg_int(cfg, "pg-port"), 3333);
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 9);
    }
    uw_config_free(cfg);
    /* ...and the command line beats the environment's stanza. */
    cfg = load(UW_CMD_PUSH, &err, cf, "--stanza", "s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, "stanza"), "s");
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 6);
        CHECK_INT(uw_cfg_int(cfg, "pg-port"), 3333);
    }
    uw_config_free(cfg);
    unsetenv("UE_WAL_PG_PORT");
    unsetenv("UE_WAL_STANZA");

    /* Defaults when nothing is configured. */
    const char *empty = ini("");
    char *ce = opt("config", empty);
    cfg = load(UW_CMD_PUSH, &err, ce, NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 3);
        CHECK_STR(uw_cfg_source(cfg, "compress-level"), "default");
        CHECK(!uw_cfg_isset(cfg, "compress-level"));
        CHECK_INT(uw_cfg_int(cfg, "pg-port"), 5432);
        CHECK_STR(uw_cfg_str(cfg, "compress-type"), "zstd");
        CHECK_STR(uw_cfg_str(cfg, "cipher-type"), "none");
        CHECK_STR(uw_cfg_str(cfg, "repo1-type"), "posix");
        CHECK(uw_cfg_str(cfg, "repo1-path") == NULL);
        CHECK(uw_cfg_str(cfg, "cipher-pass") == NULL);
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
        CHECK_STR(uw_cfg_str(cfg, "stanza"), "s");
        CHECKF(uw_cfg_int(cfg, "compress-level") == 6,
               "stanza=s set in [global] but [s] was not applied: compress-level=%lld (%s)",
               (long long)uw_cfg_int(cfg, "compress-level"), uw_cfg_source(cfg, "compress-level"));
    }
    uw_config_free(cfg);
    /* ...which matters: here the stanza's encryption setting would be lost. */
    const char *gc = ini("[global]\nstanza=s\n[s]\ncipher-type=aes-256-gcm\n"
                         "cipher-pass=pw\n");
    char *cgc = opt("config", gc);
    cfg = load(UW_CMD_PUSH, &err, cgc, NULL);
    if (CHECK_OK(cfg != NULL, err))
        CHECKF(strcmp(uw_cfg_str(cfg, "cipher-type"), "aes-256-gcm") == 0,
               "stanza=s set in [global]: [s] cipher-type=aes-256-gcm ignored, got '%s' (%s)",
               uw_cfg_str(cfg, "cipher-type"), uw_cfg_source(cfg, "cipher-type"));
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
        CHECK_STR(uw_cfg_str(cfg, "stanza"), "s");
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 12);
        CHECK_STR(uw_cfg_str(cfg, "repo1-path"), "/cli1");
        CHECK_STR(uw_cfg_str(cfg, "repo2-path"), "/cli2");
        CHECK_STR(uw_cfg_source(cfg, "repo2-path"), "command line");
        CHECK_STR(uw_cfg_str(cfg, "repo3-path"), "/r3");
        CHECK_STR(uw_cfg_source(cfg, "repo3-path"), "config file");
        CHECK_STR(uw_cfg_str(cfg, "repo4-path"), "/env4");
        CHECK_STR(uw_cfg_source(cfg, "repo4-path"), "environment");
        CHECK_STR(uw_cfg_str(cfg, "repo2-type"), "posix");
        CHECK_STR(uw_cfg_str(cfg, "pg-path"), "/pg data");
        CHECK(uw_cfg_bool(cfg, "delta"));
        CHECK(!uw_cfg_bool(cfg, "start"));
        CHECK_STR(uw_cfg_str(cfg, "target-action"), "pause");
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
        CHECK_STR(uw_cfg_str(cfg, "repo2-path"), "/file2");
        CHECK(uw_cfg_str(cfg, "repo1-path") == NULL);
        CHECK(!uw_cfg_isset(cfg, "repo4-path"));
    }
    uw_config_free(cfg);

    /* CRLF line endings, blanks around names and values, '=' and '#' in values. */
    const char *crlf = ini("\r\n[global]\r\n  pg-user =  app=user#1  \r\n"
                           "[s]   \r\ncipher-pass=pa=ss # not a comment\r\n");
    char *ccrlf = opt("config", crlf);
    cfg = load(UW_CMD_PITR, &err, ccrlf, "--stanza=s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, "pg-user"), "app=user#1");
        CHECK_STR(uw_cfg_str(cfg, "cipher-pass"), "pa=ss # not a comment");
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
        CHECKF(cfg && uw_cfg_bool(cfg, "delta"), "--delta=%s: %s", yes[i], err.msg);
        uw_config_free(cfg);
        free(a);
        a = opt("delta", no[i]);
        cfg = load(UW_CMD_PITR, &err, cf, a, NULL);
        CHECKF(cfg && !uw_cfg_bool(cfg, "delta"), "--delta=%s: %s", no[i], err.msg);
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
        CHECK_STR(uw_cfg_str(cfg, "tablespace-map"), "1=/a b\n22=/c");
        CHECK_STR(uw_cfg_source(cfg, "tablespace-map"), "command line");
        /* Not a list: the last one given wins, as for every other option. */
        CHECK_STR(uw_cfg_str(cfg, "tablespace-map-all"), "/y");
    }
    uw_config_free(cfg);
    cfg = load(UW_CMD_PITR, &err, cf, "--stanza=s", "--tablespace-map=1=/a", NULL);
    if (CHECK_OK(cfg != NULL, err))
        CHECK_STR(uw_cfg_str(cfg, "tablespace-map"), "1=/a");
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
        CHECK_STR(uw_cfg_str(cfg, "stanza"), "s");
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
        CHECK_STR(uw_cfg_str(cfg, "cipher-pass"), "SECRETXYZ");
        CHECK_STR(uw_cfg_source(cfg, "cipher-pass"), "config file");
        char *cli = uw_cfg_cli_repo_args(cfg);
        CHECK_NOT_CONTAINS(cli, "SECRETXYZ");
        CHECK_NOT_CONTAINS(cli, "cipher-pass");
        free(cli);
    }
    uw_config_free(cfg);
    setenv("UE_WAL_CIPHER_PASS", "SECRETENV", 1);
    cfg = load(UW_CMD_PUSH, &err, csf, "--stanza=s", NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_STR(uw_cfg_str(cfg, "cipher-pass"), "SECRETENV");
        CHECK_STR(uw_cfg_source(cfg, "cipher-pass"), "environment");
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
        CHECK_STR(uw_cfg_str(cfg, "compress-type"), "none");
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
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 11);
        CHECK_STR(uw_cfg_file(cfg), f);
    }
    uw_config_free(cfg);
    setenv("UE_WAL_CONFIG", f, 1);
    cfg = load(UW_CMD_PUSH, &err, NULL);
    if (CHECK_OK(cfg != NULL, err)) {
        CHECK_INT(uw_cfg_int(cfg, "compress-level"), 11);
        CHECK_STR(uw_cfg_file(cfg), f);
    }
    uw_config_free(cfg);
    unsetenv("UE_WAL_CONFIG");
    /* The default path may be missing. */
    if (access("/etc/ue-wal/ue-wal.conf", F_OK) != 0) {
        cfg = load(UW_CMD_PUSH, &err, "--stanza=s", NULL);
        if (CHECK_OK(cfg != NULL, err)) {
            CHECK(uw_cfg_file(cfg) == NULL);
            CHECK_INT(uw_cfg_int(cfg, "compress-level"), 3);
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
            CHECK_STR(uw_cfg_str(cfg, "stanza"), good[i]);
        uw_config_free(cfg);
        free(a);
    }
    free(cf);
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
    for (int i = 0; i < uw_option_count; i++) {
        const uw_opt_def *d = &uw_options[i];
        char name[96];
        snprintf(name, sizeof name, "%s%s", d->flags & UW_OPTF_REPO ? "repo3-" : "", d->name);
        if (!strcmp(d->name, "config"))
            continue;
        const char *v = uw_cfg_str(cfg, name);
        CHECKF(d->def ? v && !strcmp(v, d->def) : v == NULL, "%s: default '%s', got '%s'", name,
               d->def ? d->def : "(none)", v ? v : "(null)");
        CHECKF(!uw_cfg_isset(cfg, name), "%s: set without being configured", name);
    }
    uw_config_free(cfg);

    int secrets = 0;
    for (int i = 0; i < uw_option_count; i++) {
        const uw_opt_def *d = &uw_options[i];
        char name[96], env[128];
        snprintf(name, sizeof name, "%s%s", d->flags & UW_OPTF_REPO ? "repo2-" : "", d->name);
        snprintf(env, sizeof env, "UE_WAL_%s", name);
        for (char *p = env; *p; p++)
            *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        if (!strcmp(d->name, "config"))
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
                CHECK_STR(uw_cfg_str(cfg, name), "SECRETXYZ");
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
            for (int k = 0; d->values[k]; k++) {
                a = opt(name, d->values[k]);
                cfg = load(UW_CMD_ALL, &err, cf, a, NULL);
                if (CHECKF(cfg != NULL, "%s: %s", a, err.msg))
                    CHECK_STR(uw_cfg_str(cfg, name), d->values[k]);
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
                    CHECKF(uw_cfg_int(cfg, name) == want, "%s read back as %lld", a,
                           (long long)uw_cfg_int(cfg, name));
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
                CHECK(uw_cfg_bool(cfg, name));
            uw_config_free(cfg);
            free(a);
            break;
        case UW_OPT_STRING:
            bad[0] = "";
            a = opt(name, "some-value");
            cfg = load(UW_CMD_ALL, &err, cf, a, NULL);
            if (CHECKF(cfg != NULL, "%s: %s", a, err.msg)) {
                CHECK_STR(uw_cfg_str(cfg, name), "some-value");
                CHECK_STR(uw_cfg_source(cfg, name), "command line");
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
            if (strcmp(d->name, "stanza") != 0 && bad[k][0]) {
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
    test_parse_size();
    remove_files();
    return uw_t_done("test_config");
}
