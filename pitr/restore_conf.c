/* The text a restore writes for PostgreSQL: shell-quoted restore_command
 * arguments and the recovery block of postgresql.auto.conf. Pure: the caller
 * reads the old file, builds the command and writes the result. */
#include <stdio.h>
#include <string.h>

#include "restore.h"

void restore_shell_quote(uw_buf *b, const char *s)
{
    bool plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr("_/.,:=@+-", *p);
    if (plain) {
        uw_buf_append(b, s, strlen(s));
        return;
    }
    uw_buf_append(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            uw_buf_append(b, "'\\''", 4);
        else
            uw_buf_append(b, p, 1);
    }
    uw_buf_append(b, "'", 1);
}

void restore_command_arg(uw_buf *cmd, const char *arg)
{
    uw_buf q = {0};
    restore_shell_quote(&q, arg);
    if (cmd->len)
        uw_buf_append(cmd, " ", 1);
    for (size_t i = 0; i < q.len; i++) {
        if (q.data[i] == '%')
            uw_buf_append(cmd, "%%", 2);
        else
            uw_buf_append(cmd, &q.data[i], 1);
    }
    uw_buf_free(&q);
}

/* Backslashes are doubled because the configuration parser also reads escapes
 * like \n inside quotes. */
void restore_conf_quote(uw_buf *b, const char *s)
{
    uw_buf_append(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            uw_buf_append(b, "''", 2);
        else if (*p == '\\')
            uw_buf_append(b, "\\\\", 2);
        else
            uw_buf_append(b, p, 1);
    }
    uw_buf_append(b, "'", 1);
}

static void conf_line(uw_buf *b, const char *name, const char *value)
{
    uw_buf_append(b, name, strlen(name));
    uw_buf_append(b, " = ", 3);
    restore_conf_quote(b, value);
    uw_buf_append(b, "\n", 1);
}

/* Everything but an earlier block of ours, each line ending in a newline. */
static void strip_block(const char *old, uw_buf *out)
{
    bool inside = false;
    size_t nb = strlen(RESTORE_BLOCK_BEGIN), ne = strlen(RESTORE_BLOCK_END);
    for (const char *line = old && *old ? old : NULL; line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n >= nb && !strncmp(line, RESTORE_BLOCK_BEGIN, nb))
            inside = true;
        else if (inside && n >= ne && !strncmp(line, RESTORE_BLOCK_END, ne))
            inside = false;
        else if (!inside && (n || nl)) {
            uw_buf_append(out, line, n);
            uw_buf_append(out, "\n", 1);
        }
        line = nl ? nl + 1 : NULL;
    }
}

void restore_conf_render(const char *old, const restore_conf_block *b, uw_buf *out)
{
    const restore_target *t = b->t;
    strip_block(old, out);
    char line[256];
    snprintf(line, sizeof line,
             "%s\n# Written by ue-pitr restore of backup %s at %s; the next restore replaces it.\n",
             RESTORE_BLOCK_BEGIN, b->backup_id, b->written_at);
    uw_buf_append(out, line, strlen(line));
    conf_line(out, "restore_command", b->restore_command);
    /* Every target is written: the ones not used as '' first, so that one left
     * in postgresql.conf by someone else cannot combine with ours into
     * "multiple recovery targets specified", then the one in use last
     * (PostgreSQL applies them in file order, and complains when a second
     * target is assigned while another one is set). */
    static const struct {
        const char *guc;
        restore_target_kind kind;
    } gucs[] = {{"recovery_target", RT_IMMEDIATE},
                {"recovery_target_time", RT_TIME},
                {"recovery_target_lsn", RT_LSN},
                {"recovery_target_xid", RT_XID},
                {"recovery_target_name", RT_NAME}};
    for (size_t i = 0; i < sizeof gucs / sizeof gucs[0]; i++)
        if (gucs[i].kind != t->kind)
            conf_line(out, gucs[i].guc, "");
    for (size_t i = 0; i < sizeof gucs / sizeof gucs[0]; i++)
        if (gucs[i].kind == t->kind)
            conf_line(out, gucs[i].guc, t->value);
    conf_line(out, "recovery_target_inclusive", "on");
    conf_line(out, "recovery_target_timeline", t->tli_text ? t->tli_text : "latest");
    conf_line(out, "recovery_target_action", t->action);
    if (b->archive_off)
        conf_line(out, "archive_mode", "off");
    if (b->port) {
        snprintf(line, sizeof line, "port = %lld\n", b->port);
        uw_buf_append(out, line, strlen(line));
    }
    uw_buf_append(out, RESTORE_BLOCK_END "\n", strlen(RESTORE_BLOCK_END) + 1);
}
