/* The recovery configuration: the directories a base backup leaves out,
 * recovery.signal, and the block of postgresql.auto.conf that points
 * restore_command at ue-wal-fetch and sets the target (its text comes from
 * restore_conf.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "restore.h"

/* Directories a base backup leaves empty or out, which PostgreSQL needs. */
static const char *const needed_dirs[] = {
    "pg_wal",
    "pg_wal/archive_status",
    "pg_replslot",
    "pg_stat_tmp",
    "pg_snapshots",
    "pg_notify",
    "pg_serial",
    "pg_subtrans",
    "pg_dynshmem",
    "pg_commit_ts",
    "pg_logical",
    "pg_logical/snapshots",
    "pg_logical/mappings",
    "pg_twophase",
    "pg_tblspc",
    "log",
    NULL,
};

/* Can `uid`/`gid` use a file with these permission bits (ignoring
 * supplementary groups)? For warnings only. */
static bool may_access(const struct stat *st, uid_t uid, gid_t gid, mode_t u, mode_t g, mode_t o)
{
    if (uid == 0)
        return true;
    if (st->st_uid == uid)
        return st->st_mode & u;
    if (st->st_gid == gid)
        return st->st_mode & g;
    return st->st_mode & o;
}

static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    return uw_strdup(buf);
}

/* ue-wal-fetch next to this binary, executable (warned when not by the owner). */
static char *fetch_path(const restore *rs, uw_err *err)
{
    char *dir = exe_dir();
    if (!dir) {
        uw_fail(err, UW_E_RESTORE, "unable to find this program's directory (/proc/self/exe)");
        return NULL;
    }
    char *fetch = uw_sprintf("%s/ue-wal-fetch", dir);
    free(dir);
    struct stat st;
    if (stat(fetch, &st) < 0 || !S_ISREG(st.st_mode) || access(fetch, X_OK) < 0) {
        uw_fail(err, UW_E_RESTORE,
                "'%s' is missing or not executable: restore_command needs it next to ue-pitr",
                fetch);
        free(fetch);
        return NULL;
    }
    if (!may_access(&st, rs->uid, rs->gid, S_IXUSR, S_IXGRP, S_IXOTH))
        uw_log(UW_LOG_WARN, "'%s' is not executable by %s, who will run the server", fetch,
               rs->owner);
    return fetch;
}

/* "--name=value" of every fetch-relevant option this run got from the command
 * line or the environment. */
static void option_args(const uw_config *cfg, uw_buf *cmd)
{
    for (int i = 0; i < uw_option_count; i++) {
        const uw_opt_def *d = &uw_options[i];
        /* Repository options only: those of every command (log level, pg-*,
         * process-max) are not this run's to impose on the server. */
        if (!(d->commands & UW_CMD_FETCH) || d->commands == UW_CMD_ALL ||
            (d->flags & (UW_OPTF_SECRET | UW_OPTF_CLI_ONLY)))
            continue;
        bool per_repo = (d->flags & UW_OPTF_REPO) != 0;
        uw_opt_id id = (uw_opt_id)i;
        for (int r = 1; r <= (per_repo ? UW_REPO_MAX : 1); r++) {
            const char *src = per_repo ? uw_cfg_repo_source(cfg, r, id) : uw_cfg_source(cfg, id);
            if (strcmp(src, "command line") != 0 && strcmp(src, "environment") != 0)
                continue;
            char name[96];
            uw_opt_name(id, r, name, sizeof name);
            const char *value = per_repo ? uw_cfg_repo_str(cfg, r, id) : uw_cfg_str(cfg, id);
            char *a = uw_sprintf("--%s=%s", name, value);
            restore_command_arg(cmd, a);
            free(a);
        }
    }
}

/* restore_command: ue-wal-fetch next to this binary, with the same config file
 * and every fetch-relevant option this run got from the command line or the
 * environment (the server will not have this shell's environment). */
static int restore_command(const restore *rs, char **out, uw_err *err)
{
    const uw_config *cfg = rs->cfg;
    char *fetch = fetch_path(rs, err);
    if (!fetch)
        return -1;
    uw_buf cmd = {0};
    restore_command_arg(&cmd, fetch);
    free(fetch);
    const char *file = uw_cfg_file(cfg);
    struct stat st;
    if (file) {
        char *abs = restore_absolute(file);
        char *a = uw_sprintf("--config=%s", abs);
        restore_command_arg(&cmd, a);
        free(a);
        if (stat(abs, &st) == 0 && !may_access(&st, rs->uid, rs->gid, S_IRUSR, S_IRGRP, S_IROTH))
            uw_log(UW_LOG_WARN,
                   "config file '%s' is not readable by %s, who will run "
                   "restore_command",
                   abs, rs->owner);
        free(abs);
    }
    char *a = uw_sprintf("--stanza=%s", rs->repo->stanza);
    restore_command_arg(&cmd, a);
    free(a);
    if (uw_cfg_isset(cfg, UW_OPT_REPO)) {
        a = uw_sprintf("--repo=%s", uw_cfg_str(cfg, UW_OPT_REPO));
        restore_command_arg(&cmd, a);
        free(a);
    }
    option_args(cfg, &cmd);
    uw_buf_append(&cmd, " %f %p", 6);
    for (int i = 0; i < rs->nrepos; i++)
        if (rs->usable[i] && rs->repos[i].have_key &&
            strcmp(uw_cfg_source(cfg, UW_OPT_CIPHER_PASS), "config file") != 0) {
            uw_log(UW_LOG_WARN, "cipher-pass does not come from a config file: the server's "
                                "restore_command will need UE_WAL_CIPHER_PASS in its environment");
            break;
        }
    *out = (char *)cmd.data;
    return 0;
}

static int write_file(const restore *rs, const char *rel, const void *data, size_t len, uw_err *err)
{
    char *path = uw_sprintf("%s/%s", rs->pgdata, rel);
    uw_sink *s = uw_file_sink(path, 0600, 0, err);
    int rc = s ? 0 : -1;
    if (rc == 0)
        rc = uw_sink_write(s, data, len, err);
    if (rc == 0)
        rc = uw_sink_finish(s, err);
    uw_sink_free(s);
    if (rc == 0)
        rc = restore_own(rs, path, err);
    free(path);
    return rc;
}

/* PostgreSQL recreates the tablespace links from tablespace_map when it starts
 * from a backup: the file says where the restore put them (mapped, and
 * confined to what restore_confine.c accepts), never what the repository's
 * copy says. Written when the backup has the file or a tablespace. */
static int write_tablespace_map(const restore *rs, uw_err *err)
{
    uw_buf map = {0};
    restore_tablespace_map(&rs->m, &map);
    int rc = 0;
    if (map.len || uw_manifest_find(&rs->m, "tablespace_map"))
        rc = write_file(rs, "tablespace_map", map.len ? map.data : (const uint8_t *)"", map.len,
                        err);
    uw_buf_free(&map);
    return rc;
}

/* The directories PostgreSQL needs, without the files a copied data directory
 * must not start with; then tablespace_map and recovery.signal. */
static int prepare_dirs(restore *rs, uw_err *err)
{
    for (int i = 0; needed_dirs[i]; i++) {
        char *path = uw_sprintf("%s/%s", rs->pgdata, needed_dirs[i]);
        struct stat st;
        int rc = lstat(path, &st) == 0 ? 0 : restore_make_dir(rs, path, 0700, err);
        free(path);
        if (rc < 0)
            return -1;
    }
    static const char *const stale[] = {"postmaster.pid", "postmaster.opts", "standby.signal",
                                        NULL};
    for (int i = 0; stale[i]; i++) {
        char *path = uw_sprintf("%s/%s", rs->pgdata, stale[i]);
        if (unlink(path) < 0 && errno != ENOENT) {
            int rc = uw_fail(err, UW_E_FILE, "unable to remove '%s': %s", path, strerror(errno));
            free(path);
            return rc;
        }
        free(path);
    }
    if (write_tablespace_map(rs, err) < 0)
        return -1;
    return write_file(rs, "recovery.signal", "", 0, err);
}

/* postgresql.auto.conf as restored (empty when there is none). */
static int read_auto_conf(const restore *rs, uw_buf *old, uw_err *err)
{
    char *conf = uw_sprintf("%s/postgresql.auto.conf", rs->pgdata);
    int rc = 0;
    int fd = open(conf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        uw_sink *s = uw_buf_sink(old);
        rc = uw_sink_from_fd(s, fd, conf, err);
        uw_sink_free(s);
        close(fd);
    }
    free(conf);
    return rc;
}

int restore_write_recovery(restore *rs, uw_err *err)
{
    if (prepare_dirs(rs, err) < 0)
        return -1;
    uw_buf old = {0}, out = {0};
    if (read_auto_conf(rs, &old, err) < 0) {
        uw_buf_free(&old);
        return -1;
    }
    char *cmd = NULL;
    if (restore_command(rs, &cmd, err) < 0) {
        uw_buf_free(&old);
        return -1;
    }
    char when[48];
    uw_iso_time((int64_t)time(NULL) * 1000000, when, sizeof when);
    restore_conf_block b = {rs->m.id, when, cmd, &rs->t, rs->port, rs->archive_off};
    restore_conf_render(old.len ? (const char *)old.data : NULL, &b, &out);
    uw_buf_free(&old);
    free(cmd);
    int rc = write_file(rs, "postgresql.auto.conf", out.data, out.len, err);
    uw_buf_free(&out);
    return rc;
}
