/* The text a restore writes for PostgreSQL (pitr/restore_conf.c): shell
 * quoting of restore_command arguments (with PostgreSQL's % escapes),
 * postgresql.conf string literals, and the recovery block of
 * postgresql.auto.conf replacing an earlier one. */
#include <string.h>

#include "restore.h"
#include "unit.h"

static void shell(const char *in, const char *want)
{
    uw_buf b = {0};
    restore_shell_quote(&b, in);
    CHECK_STR(b.len ? (const char *)b.data : "", want);
    uw_buf_free(&b);
}

static void conf(const char *in, const char *want)
{
    uw_buf b = {0};
    restore_conf_quote(&b, in);
    CHECK_STR((const char *)b.data, want);
    uw_buf_free(&b);
}

static void test_quoting(void)
{
    uw_t_section("restore_shell_quote");
    shell("/usr/lib/ue-wal/bin/ue-wal-fetch", "/usr/lib/ue-wal/bin/ue-wal-fetch");
    shell("--repo1-path=/var/lib/ue-wal,x:y@z+1", "--repo1-path=/var/lib/ue-wal,x:y@z+1");
    shell("", "''");
    shell("a b", "'a b'");
    shell("it's", "'it'\\''s'");
    shell("''", "''\\'''\\'''");
    shell("$HOME", "'$HOME'");
    shell("`id`", "'`id`'");
    shell("a;rm -rf /", "'a;rm -rf /'");
    shell("x\ny", "'x\ny'");
    shell("back\\slash", "'back\\slash'");
    shell("--stanza=main*", "'--stanza=main*'");
    shell("%f", "'%f'");

    uw_t_section("restore_command_arg");
    uw_buf cmd = {0};
    restore_command_arg(&cmd, "/opt/ue wal/ue-wal-fetch");
    restore_command_arg(&cmd, "--config=/etc/ue-wal/ue-wal.conf");
    restore_command_arg(&cmd, "--repo1-path=/backups/50%");
    restore_command_arg(&cmd, "--stanza=%p's");
    restore_command_arg(&cmd, "--repo1-s3-endpoint=%%");
    CHECK_STR((const char *)cmd.data, "'/opt/ue wal/ue-wal-fetch' --config=/etc/ue-wal/ue-wal.conf "
                                      "'--repo1-path=/backups/50%%' '--stanza=%%p'\\''s' "
                                      "'--repo1-s3-endpoint=%%%%'");
    uw_buf_free(&cmd);

    uw_t_section("restore_conf_quote");
    conf("", "''");
    conf("plain", "'plain'");
    conf("it's", "'it''s'");
    conf("'", "''''");
    conf("C:\\path\\n", "'C:\\\\path\\\\n'");
    conf("a\\'b", "'a\\\\''b'");
    conf("/x/ue-wal-fetch '--stanza=a b' %f %p", "'/x/ue-wal-fetch ''--stanza=a b'' %f %p'");
}

static restore_target name_target(const char *name, const char *tli, const char *action)
{
    restore_target_input in = {{NULL}, tli, action};
    for (int i = 0; i < RESTORE_TARGET_OPTIONS; i++)
        if (!strcmp(restore_target_options[i].option, "target-name"))
            in.given[i] = name;
    restore_target t;
    uw_err err;
    uw_err_clear(&err);
    CHECK_OK(restore_target_parse(&in, &t, &err) == 0, err);
    return t;
}

static char *render(const char *old, const restore_target *t, long long port)
{
    restore_conf_block b = {"20261125-120000F",
                            "2026-11-25T12:30:00Z",
                            "/x/ue-wal-fetch --stanza=main %f %p",
                            t,
                            port,
                            false};
    uw_buf out = {0};
    restore_conf_render(old, &b, &out);
    return (char *)out.data;
}

#define BLOCK_HEAD                                                                                 \
    "# ue-wal restore begin\n"                                                                     \
    "# Written by ue-pitr restore of backup 20261125-120000F at 2026-11-25T12:30:00Z; the next "   \
    "restore replaces it.\n"                                                                       \
    "restore_command = '/x/ue-wal-fetch --stanza=main %f %p'\n"

static void test_render(void)
{
    uw_t_section("restore_conf_render: a target");
    restore_target t = name_target("it's \\done", "current", "pause");
    char *s = render(NULL, &t, 0);
    CHECK_STR(s, BLOCK_HEAD "recovery_target = ''\n"
                            "recovery_target_time = ''\n"
                            "recovery_target_lsn = ''\n"
                            "recovery_target_xid = ''\n"
                            "recovery_target_name = 'it''s \\\\done'\n"
                            "recovery_target_inclusive = 'on'\n"
                            "recovery_target_timeline = 'current'\n"
                            "recovery_target_action = 'pause'\n"
                            "# ue-wal restore end\n");
    free(s);

    uw_t_section("restore_conf_render: no target, a port");
    restore_target_input in = {{NULL}, NULL, "promote"};
    uw_err err;
    CHECK_OK(restore_target_parse(&in, &t, &err) == 0, err);
    s = render("", &t, 5433);
    CHECK_STR(s, BLOCK_HEAD "recovery_target = ''\n"
                            "recovery_target_time = ''\n"
                            "recovery_target_lsn = ''\n"
                            "recovery_target_xid = ''\n"
                            "recovery_target_name = ''\n"
                            "recovery_target_inclusive = 'on'\n"
                            "recovery_target_timeline = 'latest'\n"
                            "recovery_target_action = 'promote'\n"
                            "port = 5433\n"
                            "# ue-wal restore end\n");
    free(s);

    uw_t_section("restore_conf_render: --archive-mode=off");
    restore_conf_block off = {"20261125-120000F",
                              "2026-11-25T12:30:00Z",
                              "/x/ue-wal-fetch --stanza=main %f %p",
                              &t,
                              0,
                              true};
    uw_buf ob = {0};
    /* After postgresql.conf's archive_mode = on: auto.conf is read last. */
    restore_conf_render("archive_mode = 'on'\n", &off, &ob);
    s = (char *)ob.data;
    CHECK_CONTAINS(s, "recovery_target_action = 'promote'\narchive_mode = 'off'\n"
                      "# ue-wal restore end\n");
    /* preserve: nothing about archive_mode in our block. */
    char *kept_mode = render("archive_mode = 'on'\n", &t, 0);
    CHECK_STR(strstr(kept_mode, "archive_mode"), strstr(kept_mode, "archive_mode = 'on'\n"));
    CHECK_NOT_CONTAINS(kept_mode, "archive_mode = 'off'");
    free(kept_mode);
    free(s);

    uw_t_section("restore_conf_render: replaces an earlier block");
    t = name_target("n", NULL, "promote");
    const char *old = "# Do not edit this file manually!\n"
                      "work_mem = '64MB'\n"
                      "\n"
                      "# ue-wal restore begin\n"
                      "restore_command = 'old'\n"
                      "recovery_target_name = 'old'\n"
                      "# ue-wal restore end\n"
                      "shared_buffers = '1GB'\n"
                      "# ue-wal restore begin (again)\n"
                      "port = 1\n"
                      "# ue-wal restore end, old\n"
                      "max_connections = '50'"; /* no final newline */
    s = render(old, &t, 0);
    const char *kept = "# Do not edit this file manually!\n"
                       "work_mem = '64MB'\n"
                       "\n"
                       "shared_buffers = '1GB'\n"
                       "max_connections = '50'\n" BLOCK_HEAD;
    CHECKF(!strncmp(s, kept, strlen(kept)), "got:\n%s", s);
    CHECK_NOT_CONTAINS(s, "'old'");
    CHECK_NOT_CONTAINS(s, "port = 1\n");
    CHECK_CONTAINS(s, "recovery_target_name = 'n'\n");
    /* Rendering its own output again gives the same text: one block only. */
    char *again = render(s, &t, 0);
    CHECK_STR(again, s);
    free(again);
    free(s);

    uw_t_section("restore_conf_render: unterminated block");
    /* A begin line without its end: the rest was ours, and is dropped. */
    s = render("a = '1'\n# ue-wal restore begin\nb = '2'\n", &t, 0);
    CHECKF(!strncmp(s, "a = '1'\n" BLOCK_HEAD, strlen("a = '1'\n" BLOCK_HEAD)), "got:\n%s", s);
    CHECK_NOT_CONTAINS(s, "b = '2'");
    free(s);
    /* An end line outside a block is someone else's text: kept. */
    s = render("# ue-wal restore end\n", &t, 0);
    const char *both = "# ue-wal restore end\n# ue-wal restore begin\n";
    CHECKF(!strncmp(s, both, strlen(both)), "got:\n%s", s);
    free(s);
}

int main(void)
{
    test_quoting();
    test_render();
    return uw_t_done("test_restore_conf");
}
