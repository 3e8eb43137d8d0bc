/* The data directory and the tablespace locations: checked before anything is
 * written (no running server, empty unless --delta, the owner PostgreSQL will
 * run as), then directories and links created in manifest order, --delta's
 * cleanup of what the backup does not have, and the final sync and directory
 * times. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "restore.h"
#include "work/restore_file.h"

/* ---------------------------------------------------------------- checks -- */

static bool dir_empty(const char *path, bool *exists)
{
    DIR *d = opendir(path);
    *exists = d != NULL;
    if (!d)
        return true;
    struct dirent *de;
    bool empty = true;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            empty = false;
            break;
        }
    closedir(d);
    return empty;
}

/* A postmaster.pid whose first line is a live process. kill(pid, 0) failing
 * with EPERM still means the process exists (it belongs to another user). */
static bool postmaster_running(const char *pgdata, long *pid_out)
{
    char *path = uw_sprintf("%s/postmaster.pid", pgdata);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return false;
    long pid = 0;
    bool running = false;
    if (fscanf(f, "%ld", &pid) == 1 && pid > 0 && pid < INT_MAX && pid != getpid())
        running = kill((pid_t)pid, 0) == 0 || errno == EPERM;
    fclose(f);
    *pid_out = pid;
    return running;
}

char *restore_absolute(const char *p)
{
    char *r = realpath(p, NULL);
    if (r)
        return r;
    if (p[0] == '/')
        r = uw_strdup(p);
    else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return uw_strdup(p);
        r = uw_sprintf("%s/%s", cwd, p);
    }
    size_t n = strlen(r);
    while (n > 1 && r[n - 1] == '/')
        r[--n] = '\0';
    return r;
}

/* The owner PostgreSQL will run as: the directory's, or its parent's when the
 * restore creates it. */
static void find_owner(restore *rs)
{
    struct stat st;
    char *probe = uw_strdup(rs->pgdata);
    while (stat(probe, &st) < 0) {
        char *slash = strrchr(probe, '/');
        if (!slash || slash == probe) {
            strcpy(probe, "/");
            if (stat(probe, &st) < 0)
                memset(&st, 0, sizeof st);
            break;
        }
        *slash = '\0';
    }
    free(probe);
    rs->uid = st.st_uid;
    rs->gid = st.st_gid;
    rs->set_owner = geteuid() == 0 && st.st_uid != 0;
    struct passwd pw, *pwp = NULL;
    char pwbuf[4096];
    if (getpwuid_r(rs->uid, &pw, pwbuf, sizeof pwbuf, &pwp) == 0 && pwp)
        snprintf(rs->owner, sizeof rs->owner, "%s", pw.pw_name);
    else
        snprintf(rs->owner, sizeof rs->owner, "%u", (unsigned)rs->uid);
}

/* Link locations (tablespaces, a pg_wal link): absolute paths outside the
 * data directory (restore_confine.c checked them and applied the map). A
 * location must be empty or new: content the restore did not write may belong
 * to another cluster. */
static int check_tablespaces(const restore *rs, uw_err *err)
{
    struct stat st;
    bool exists;
    for (size_t i = 0; i < rs->m.count; i++) {
        const uw_mf_entry *e = &rs->m.entries[i];
        if (e->type != 'l')
            continue;
        const char *what = strcmp(e->path, "pg_wal") ? "tablespace location" : "WAL location";
        if (stat(e->link, &st) == 0 && !S_ISDIR(st.st_mode))
            return uw_fail(err, UW_E_RESTORE, "%s '%s' (%s) is not a directory", what, e->link,
                           e->path);
        if (!rs->delta && !dir_empty(e->link, &exists))
            return uw_fail(err, UW_E_RESTORE,
                           "%s '%s' (%s) is not empty: empty it, map it elsewhere "
                           "(--tablespace-map) or use --delta",
                           what, e->link, e->path);
        /* --delta may only rewrite a location this data directory already
         * links to: a non-empty one elsewhere may be a live cluster's (the
         * source of the backup, on the same host). */
        if (rs->delta && !dir_empty(e->link, &exists)) {
            char *lp = uw_sprintf("%s/%s", rs->pgdata, e->path), linked[4096];
            ssize_t n = readlink(lp, linked, sizeof linked - 1);
            free(lp);
            if (n >= 0)
                linked[n] = '\0';
            if (n < 0 || strcmp(linked, e->link) != 0)
                return uw_fail(err, UW_E_RESTORE,
                               "%s '%s' (%s) is not empty and this data directory does not link "
                               "to it: it may belong to another cluster; empty it first",
                               what, e->link, e->path);
        }
    }
    return 0;
}

int restore_check_pgdata(restore *rs, uw_err *err)
{
    const char *opt = rs->into;
    if (!opt)
        return uw_fail(err, UW_E_OPTION,
                       "option 'pgdata' is required: the directory to restore into");
    rs->pgdata = restore_absolute(opt);
    struct stat st;
    if (stat(rs->pgdata, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return uw_fail(err, UW_E_RESTORE, "'%s' exists and is not a directory", rs->pgdata);
        rs->pgdata_exists = true;
    } else if (errno != ENOENT) {
        return uw_fail(err, UW_E_RESTORE, "unable to stat '%s': %s", rs->pgdata, strerror(errno));
    }
    long pid;
    if (rs->pgdata_exists && postmaster_running(rs->pgdata, &pid))
        return uw_fail(err, UW_E_RESTORE,
                       "a PostgreSQL server (pid %ld) is running in '%s': stop it first (or remove "
                       "postmaster.pid if that process is not PostgreSQL)",
                       pid, rs->pgdata);
    bool exists;
    if (!rs->delta && !dir_empty(rs->pgdata, &exists))
        return uw_fail(err, UW_E_RESTORE,
                       "data directory '%s' is not empty: restore into an empty directory, or use "
                       "--delta to update it in place",
                       rs->pgdata);
    find_owner(rs);
    return check_tablespaces(rs, err);
}

/* ----------------------------------------------------------------- writing -- */

int restore_own(const restore *rs, const char *path, uw_err *err)
{
    if (rs->set_owner && lchown(path, rs->uid, rs->gid) < 0)
        return uw_fail(err, UW_E_FILE, "unable to change the owner of '%s': %s", path,
                       strerror(errno));
    return 0;
}

int restore_make_dir(const restore *rs, const char *path, mode_t mode, uw_err *err)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return uw_fail(err, UW_E_FILE, "'%s' exists and is not a directory", path);
    } else {
        char *parent = uw_strdup(path);
        char *slash = strrchr(parent, '/');
        int rc = 0;
        if (slash && slash != parent) {
            *slash = '\0';
            if (lstat(parent, &st) < 0)
                rc = restore_make_dir(rs, parent, 0700, err);
        }
        free(parent);
        if (rc < 0)
            return -1;
        if (mkdir(path, mode) < 0 && errno != EEXIST)
            return uw_fail(err, UW_E_FILE, "unable to create directory '%s': %s", path,
                           strerror(errno));
    }
    if (restore_own(rs, path, err) < 0)
        return -1;
    if (chmod(path, mode) < 0)
        return uw_fail(err, UW_E_FILE, "unable to set the mode of '%s': %s", path, strerror(errno));
    return 0;
}

static char *read_link(const char *path)
{
    char buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return uw_strdup(buf);
}

/* What --delta does with one entry of the data directory (relp, at absp),
 * by what the backup has at that path: recurse, keep or remove. */
static int clean_entry(restore *rs, const char *rel, const char *relp, const char *absp,
                       bool ts_root, uw_err *err);

/* --delta: remove what the backup does not have, so that the result is the
 * backup and nothing else. The walk never follows a link, except the
 * tablespace links the manifest records (their contents are part of the
 * restore) and a pg_wal link (WAL on another disk, initdb --waldir), which is
 * kept: its contents are this cluster's WAL, removed like any other stale
 * file, since segments of a diverged history left there could be replayed.
 * At the top of a tablespace location only the entries the backup has are
 * visited: the location may hold other PostgreSQL versions' directories. */
static int clean_dir(restore *rs, const char *rel, const char *abs, bool ts_root, uw_err *err)
{
    DIR *d = opendir(abs);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return uw_fail(err, UW_E_FILE, "unable to open directory '%s': %s", abs, strerror(errno));
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        names = uw_realloc(names, (n + 1) * sizeof *names);
        names[n++] = uw_strdup(de->d_name);
    }
    closedir(d);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *relp = rel[0] ? uw_sprintf("%s/%s", rel, names[i]) : uw_strdup(names[i]);
        char *absp = uw_sprintf("%s/%s", abs, names[i]);
        if (rc == 0)
            rc = clean_entry(rs, rel, relp, absp, ts_root, err);
        free(relp);
        free(absp);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int clean_entry(restore *rs, const char *rel, const char *relp, const char *absp,
                       bool ts_root, uw_err *err)
{
    const uw_mf_entry *me = uw_manifest_find(&rs->m, relp);
    struct stat st;
    bool remove = false;
    int rc = 0;
    if (lstat(absp, &st) < 0) {
        /* vanished */
    } else if (!me) {
        remove = !ts_root;
    } else if (me->type == 'd') {
        bool wal_link = !rel[0] && !strcmp(relp, "pg_wal") && S_ISLNK(st.st_mode);
        struct stat tst;
        if (S_ISDIR(st.st_mode) || (wal_link && stat(absp, &tst) == 0 && S_ISDIR(tst.st_mode)))
            rc = clean_dir(rs, relp, absp, false, err);
        else
            remove = true;
    } else if (me->type == 'f') {
        remove = !S_ISREG(st.st_mode);
    } else if (me->type == 'l') {
        char *cur = S_ISLNK(st.st_mode) ? read_link(absp) : NULL;
        if (cur && !strcmp(cur, me->link))
            rc = clean_dir(rs, relp, me->link, true, err);
        else
            remove = true;
        free(cur);
    }
    if (remove && rc == 0) {
        uw_log(UW_LOG_DETAIL, "delta: removing '%s'", absp);
        rc = uw_remove_tree(absp, err);
        rs->removed++;
    }
    return rc;
}

int restore_clean(restore *rs, uw_err *err)
{
    int rc = 0;
    char *control = uw_sprintf("%s/global/pg_control", rs->pgdata);
    if (unlink(control) < 0 && errno != ENOENT)
        rc = uw_fail(err, UW_E_FILE, "unable to remove '%s': %s", control, strerror(errno));
    free(control);
    if (rc == 0)
        rc = clean_dir(rs, "", rs->pgdata, false, err);
    return rc;
}

/* A tablespace link at `path` to e->link, the location created if needed. */
static int make_link(restore *rs, const uw_mf_entry *e, const char *path, uw_err *err)
{
    struct stat st;
    int rc;
    if (stat(e->link, &st) < 0)
        rc = restore_make_dir(rs, e->link, 0700, err);
    else
        rc = restore_own(rs, e->link, err);
    char *cur = read_link(path);
    if (rc == 0 && !(cur && !strcmp(cur, e->link))) {
        if (lstat(path, &st) == 0)
            rc = uw_remove_tree(path, err);
        if (rc == 0 && symlink(e->link, path) < 0)
            rc = uw_fail(err, UW_E_FILE, "unable to create link '%s' -> '%s': %s", path, e->link,
                         strerror(errno));
    }
    free(cur);
    if (rc == 0)
        rc = restore_own(rs, path, err);
    return rc;
}

int restore_make_tree(restore *rs, uw_err *err)
{
    if (restore_make_dir(rs, rs->pgdata, 0700, err) < 0)
        return -1;
    for (size_t i = 0; i < rs->m.count; i++) {
        const uw_mf_entry *e = &rs->m.entries[i];
        char *path = uw_sprintf("%s/%s", rs->pgdata, e->path);
        int rc = 0;
        if (e->type == 'd')
            rc = restore_make_dir(rs, path, (mode_t)(e->mode & 07777), err);
        else if (e->type == 'l')
            rc = make_link(rs, e, path, err);
        free(path);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int restore_sync_all(const restore *rs, uw_err *err)
{
    for (size_t i = 0; i <= rs->m.count; i++) {
        const char *dir = i == rs->m.count               ? rs->pgdata
                          : rs->m.entries[i].type == 'l' ? rs->m.entries[i].link
                                                         : NULL;
        if (!dir)
            continue;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || syncfs(fd) < 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return uw_fail(err, UW_E_FILE, "unable to sync the file system of '%s': %s", dir,
                           strerror(e));
        }
        close(fd);
    }
    return 0;
}

void restore_dir_times(const restore *rs)
{
    for (size_t i = 0; i < rs->m.count; i++) {
        const uw_mf_entry *e = &rs->m.entries[i];
        if (e->type != 'd')
            continue;
        char *path = uw_sprintf("%s/%s", rs->pgdata, e->path);
        struct timespec ts[2] = {{(time_t)e->mtime, 0}, {(time_t)e->mtime, 0}};
        utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
        free(path);
    }
}
