/* The posix storage driver through the storage interface. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "storage/storage.h"
#include "unit.h"

extern char **environ;

static void clear_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "UE_WAL_", 7) == 0) {
                size_t n = strcspn(*e, "=");
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

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}
static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char root[64], conf[64];

static uw_config *config_for(const char *repo_path, uw_err *err)
{
    char *argv[5];
    argv[0] = uw_strdup("x");
    argv[1] = uw_strdup("--stanza=s");
    argv[2] = uw_sprintf("--repo1-path=%s", repo_path);
    argv[3] = uw_sprintf("--config=%s", conf);
    argv[4] = NULL;
    uw_err_clear(err);
    uw_config *cfg = uw_config_load(4, argv, UW_CMD_PITR, err);
    for (int i = 0; i < 4; i++)
        free(argv[i]);
    return cfg;
}

typedef struct {
    char names[32][128];
    bool is_dir[32];
    uint64_t size[32];
    int n;
    int stop_after; /* 0: never */
} listing;

static int list_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    listing *l = ctx;
    if (l->n < 32) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
        l->is_dir[l->n] = is_dir;
        l->size[l->n] = size;
    }
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static int find(const listing *l, const char *name)
{
    for (int i = 0; i < l->n && i < 32; i++)
        if (strcmp(l->names[i], name) == 0)
            return i;
    return -1;
}

/* Entries of a real directory (whatever the driver says), as a count and whether
 * any looks like a temporary file. */
static int dir_entries(const char *path, int *temps)
{
    DIR *d = opendir(path);
    int n = 0;
    *temps = 0;
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        n++;
        if (strstr(de->d_name, "uwtmp"))
            (*temps)++;
    }
    closedir(d);
    return n;
}

static void test_basic(uw_storage *st)
{
    uw_err err;
    uw_err_clear(&err);
    uw_t_section("open");
    CHECK(st->drv == &uw_storage_posix);
    CHECK_INT(st->repo, 1);
    CHECK_CONTAINS(st->desc, "repo1");
    CHECK_CONTAINS(st->desc, root);
    CHECK(uw_storage_posix.features & UW_STORAGE_FEAT_DIRS);

    uw_t_section("put/get/stat");
    const char *msg = "hello, repository\n";
    CHECK_OK(uw_storage_put(st, "s/archive/0000000100000000/obj-1", msg, strlen(msg), &err) == 0,
             err);
    char *fs = uw_sprintf("%s/s/archive/0000000100000000/obj-1", root);
    struct stat sb;
    CHECKF(stat(fs, &sb) == 0 && (size_t)sb.st_size == strlen(msg), "%s not on disk", fs);
    free(fs);
    uw_buf buf = {0};
    CHECK_OK(uw_storage_get(st, "s/archive/0000000100000000/obj-1", &buf, &err) == 0, err);
    CHECK(buf.len == strlen(msg) && memcmp(buf.data, msg, buf.len) == 0);
    uw_buf_free(&buf);
    uint64_t size = 0;
    CHECK_INT(uw_storage_stat(st, "s/archive/0000000100000000/obj-1", &size, &err), 1);
    CHECK_U64(size, strlen(msg));
    CHECK_INT(uw_storage_stat(st, "s/archive/0000000100000000/obj-1", NULL, &err), 1);
    CHECK_INT(uw_storage_stat(st, "s/archive/0000000100000000", &size, &err), 1);
    size = 77;
    CHECK_INT(uw_storage_stat(st, "s/archive/0000000100000000/missing", &size, &err), 0);
    CHECK_INT(uw_storage_stat(st, "nope/nope/nope", &size, &err), 0);
    /* a path through a regular file is "missing", not an error */
    CHECK_INT(uw_storage_stat(st, "s/archive/0000000100000000/obj-1/x", &size, &err), 0);

    /* Empty objects and overwrites. */
    CHECK_OK(uw_storage_put(st, "s/empty", "", 0, &err) == 0, err);
    CHECK_INT(uw_storage_stat(st, "s/empty", &size, &err), 1);
    CHECK_U64(size, 0);
    buf = (uw_buf){0};
    CHECK_OK(uw_storage_get(st, "s/empty", &buf, &err) == 0, err);
    CHECK_INT(buf.len, 0);
    uw_buf_free(&buf);
    CHECK_OK(uw_storage_put(st, "s/over", "first version", 13, &err) == 0, err);
    CHECK_OK(uw_storage_put(st, "s/over", "second", 6, &err) == 0, err);
    CHECK_OK(uw_storage_get(st, "s/over", &buf, &err) == 0, err);
    CHECK(buf.len == 6 && memcmp(buf.data, "second", 6) == 0);
    uw_buf_free(&buf);

    /* A larger object through the streaming sink. */
    size_t big = 3u << 20;
    uint8_t *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    uw_sink *w = uw_storage_write(st, "s/backup/20240101-000000F/base/1/16384", &err);
    if (CHECK_OK(w != NULL, err)) {
        int rc = 0;
        for (size_t off = 0; off < big && rc == 0; off += 100000)
            rc = uw_sink_write(w, data + off, big - off < 100000 ? big - off : 100000, &err);
        CHECK_OK(rc == 0, err);
        CHECK_OK(uw_sink_finish(w, &err) == 0, err);
        uw_sink_free(w);
    }
    buf = (uw_buf){0};
    CHECK_OK(uw_storage_get(st, "s/backup/20240101-000000F/base/1/16384", &buf, &err) == 0, err);
    CHECK(buf.len == big && memcmp(buf.data, data, big) == 0);
    uw_buf_free(&buf);
    free(data);

    uw_t_section("read errors");
    uw_err_clear(&err);
    buf = (uw_buf){0};
    CHECK_FAIL_CODE(uw_storage_get(st, "s/archive/0000000100000000/missing", &buf, &err) < 0, err,
                    UW_E_NOT_FOUND);
    CHECK_CONTAINS(err.msg, "missing");
    CHECK_INT(buf.len, 0);
    uw_err_clear(&err);
    CHECK_FAIL_CODE(uw_storage_get(st, "no/such/dir/file", &buf, &err) < 0, err, UW_E_NOT_FOUND);
    uw_buf_free(&buf);
    /* Reading a directory is an error, but not "not found". */
    uw_err_clear(&err);
    int rc = uw_storage_get(st, "s/archive", &buf, &err);
    CHECKF(rc < 0 && err.code != UW_E_NOT_FOUND && err.code != UW_OK,
           "reading a directory: rc %d code %d", rc, (int)err.code);
    uw_buf_free(&buf);

    uw_t_section("list");
    CHECK_OK(uw_storage_put(st, "s/archive/0000000100000000/obj-2", "22", 2, &err) == 0, err);
    CHECK_OK(uw_storage_put(st, "s/archive/0000000100000000/sub/deeper", "x", 1, &err) == 0, err);
    listing l = {0};
    CHECK_OK(uw_storage_list(st, "s/archive/0000000100000000", list_cb, &l, &err) == 0, err);
    CHECK_INT(l.n, 3);
    int i1 = find(&l, "obj-1"), i2 = find(&l, "obj-2"), is = find(&l, "sub");
    CHECK(i1 >= 0 && i2 >= 0 && is >= 0);
    if (i1 >= 0 && i2 >= 0 && is >= 0) {
        CHECK(!l.is_dir[i1] && !l.is_dir[i2] && l.is_dir[is]);
        CHECK_U64(l.size[i1], strlen(msg));
        CHECK_U64(l.size[i2], 2);
    }
    CHECK_INT(find(&l, "."), -1);
    CHECK_INT(find(&l, ".."), -1);
    /* the callback can stop the listing */
    listing l1 = {0};
    l1.stop_after = 1;
    CHECK_OK(uw_storage_list(st, "s/archive/0000000100000000", list_cb, &l1, &err) == 0, err);
    CHECK_INT(l1.n, 1);
    /* listing the root */
    listing lr = {0};
    CHECK_OK(uw_storage_list(st, "", list_cb, &lr, &err) == 0, err);
    CHECK_INT(lr.n, 1);
    CHECK_INT(find(&lr, "s"), 0);
    /* missing directories are empty */
    listing lm = {0};
    CHECK_OK(uw_storage_list(st, "s/archive/FFFFFFFFFFFFFFFF", list_cb, &lm, &err) == 0, err);
    CHECK_INT(lm.n, 0);
    CHECK_OK(uw_storage_list(st, "nothing/here/at/all", list_cb, &lm, &err) == 0, err);
    CHECK_INT(lm.n, 0);

    uw_t_section("temporary files");
    char *dir = uw_sprintf("%s/s/archive/0000000100000000", root);
    int temps;
    int before = dir_entries(dir, &temps);
    CHECK_INT(temps, 0);
    /* An unfinished write is invisible while open and leaves nothing behind. */
    w = uw_storage_write(st, "s/archive/0000000100000000/obj-3", &err);
    if (CHECK_OK(w != NULL, err)) {
        CHECK_OK(uw_sink_write(w, "partial", 7, &err) == 0, err);
        CHECK_INT(dir_entries(dir, &temps), before + 1); /* the temp file exists... */
        CHECK_INT(temps, 1);
        listing lt = {0};
        CHECK_OK(uw_storage_list(st, "s/archive/0000000100000000", list_cb, &lt, &err) == 0, err);
        CHECK_INT(lt.n, 3); /* ...but is not listed */
        CHECK_INT(find(&lt, "obj-3"), -1);
        CHECK_INT(uw_storage_stat(st, "s/archive/0000000100000000/obj-3", &size, &err), 0);
        uw_sink_free(w); /* no finish */
    }
    CHECK_INT(dir_entries(dir, &temps), before);
    CHECK_INT(temps, 0);
    CHECK_INT(uw_storage_stat(st, "s/archive/0000000100000000/obj-3", &size, &err), 0);
    /* Freed without finish and without a single byte. */
    w = uw_storage_write(st, "s/archive/0000000100000000/obj-4", &err);
    if (CHECK_OK(w != NULL, err))
        uw_sink_free(w);
    CHECK_INT(dir_entries(dir, &temps), before);
    CHECK_INT(temps, 0);
    /* An unfinished overwrite leaves the old content intact. */
    w = uw_storage_write(st, "s/over", &err);
    if (CHECK_OK(w != NULL, err)) {
        CHECK_OK(uw_sink_write(w, "third!!!", 8, &err) == 0, err);
        uw_sink_free(w);
    }
    buf = (uw_buf){0};
    CHECK_OK(uw_storage_get(st, "s/over", &buf, &err) == 0, err);
    CHECK(buf.len == 6 && memcmp(buf.data, "second", 6) == 0);
    uw_buf_free(&buf);
    /* A finished write leaves exactly the object. */
    CHECK_OK(uw_storage_put(st, "s/archive/0000000100000000/obj-5", "5", 1, &err) == 0, err);
    CHECK_INT(dir_entries(dir, &temps), before + 1);
    CHECK_INT(temps, 0);
    /* Stray temp files of a crashed writer are never listed. */
    char *stray = uw_sprintf("%s/obj-6.uwtmp.12345.6789abc", dir);
    int fd = open(stray, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    listing ls = {0};
    CHECK_OK(uw_storage_list(st, "s/archive/0000000100000000", list_cb, &ls, &err) == 0, err);
    CHECK_INT(ls.n, 4); /* obj-1 obj-2 sub obj-5 */
    for (int i = 0; i < ls.n && i < 32; i++)
        CHECKF(!strstr(ls.names[i], "uwtmp"), "temp file '%s' listed", ls.names[i]);
    unlink(stray);
    free(stray);

    uw_t_section("remove");
    CHECK_OK(uw_storage_remove(st, "s/archive/0000000100000000/obj-5", &err) == 0, err);
    CHECK_INT(uw_storage_stat(st, "s/archive/0000000100000000/obj-5", &size, &err), 0);
    uw_err_clear(&err);
    CHECK_OK(uw_storage_get(st, "s/archive/0000000100000000/obj-5", &buf, &err) < 0 &&
                 err.code == UW_E_NOT_FOUND,
             err);
    uw_buf_free(&buf);
    CHECK_OK(uw_storage_remove(st, "s/archive/0000000100000000/obj-5", &err) == 0, err);
    CHECK_OK(uw_storage_remove(st, "never/existed", &err) == 0, err);
    /* an empty directory can be removed */
    CHECK_OK(uw_storage_remove(st, "s/archive/0000000100000000/sub/deeper", &err) == 0, err);
    CHECK_OK(uw_storage_remove(st, "s/archive/0000000100000000/sub", &err) == 0, err);
    CHECK_INT(uw_storage_stat(st, "s/archive/0000000100000000/sub", &size, &err), 0);
    /* a non-empty one cannot */
    uw_err_clear(&err);
    CHECK_FAIL_CODE(uw_storage_remove(st, "s/archive/0000000100000000", &err) < 0, err,
                    UW_E_STORAGE);
    CHECK_INT(uw_storage_stat(st, "s/archive/0000000100000000/obj-1", &size, &err), 1);
    listing lf = {0};
    CHECK_OK(uw_storage_list(st, "s/archive/0000000100000000", list_cb, &lf, &err) == 0, err);
    CHECK_INT(lf.n, 2);
    free(dir);
}


static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Nothing below the root is ever followed: a planted link is an error that
 * names it, for every operation, and what it points to is left alone. */
static void test_links(uw_storage *st)
{
    uw_t_section("links are refused, never followed");
    uw_err err;
    uw_err_clear(&err);
    char *outside = uw_sprintf("%s-outside", root);
    mkdir(outside, 0700);
    char *victim = uw_sprintf("%s/victim", outside);
    put_file(victim, "precious");
    CHECK_OK(uw_storage_put(st, "l/dir/a", "a", 1, &err) == 0, err);
    char *ldir = uw_sprintf("%s/l/dir/sub", root), *lfile = uw_sprintf("%s/l/dir/obj", root);
    CHECK(symlink(outside, ldir) == 0);
    CHECK(symlink(victim, lfile) == 0);
    uint64_t size = 0;
    uw_buf buf = {0};
    listing ls = {0};
    CHECK_FAIL_CODE(uw_storage_stat(st, "l/dir/obj", &size, &err) < 0, err, UW_E_REPO_FORMAT);
    CHECK_CONTAINS(err.msg, lfile);
    CHECK_CONTAINS(err.msg, "symbolic link");
    CHECK_FAIL_CODE(uw_storage_get(st, "l/dir/obj", &buf, &err) < 0, err, UW_E_REPO_FORMAT);
    CHECK_FAIL_CODE(uw_storage_get(st, "l/dir/sub/victim", &buf, &err) < 0, err, UW_E_REPO_FORMAT);
    CHECK_CONTAINS(err.msg, ldir);
    CHECK_INT((int)buf.len, 0);
    uw_buf_free(&buf);
    CHECK_FAIL_CODE(uw_storage_list(st, "l/dir", list_cb, &ls, &err) < 0, err, UW_E_REPO_FORMAT);
    CHECK_FAIL_CODE(uw_storage_list(st, "l/dir/sub", list_cb, &ls, &err) < 0, err,
                    UW_E_REPO_FORMAT);
    /* A write through a linked directory creates nothing outside. */
    CHECK_FAIL_CODE(uw_storage_put(st, "l/dir/sub/new", "x", 1, &err) < 0, err, UW_E_REPO_FORMAT);
    char *planted = uw_sprintf("%s/new", outside);
    CHECK(access(planted, F_OK) != 0);
    /* The tree removal stops at the link, naming it; the target survives. */
    CHECK_FAIL_CODE(uw_storage_remove_tree(st, "l", &err) < 0, err, UW_E_REPO_FORMAT);
    CHECK(strstr(err.msg, ldir) || strstr(err.msg, lfile));
    buf = (uw_buf){0};
    FILE *f = fopen(victim, "r");
    char got[16] = "";
    if (f) {
        if (!fgets(got, sizeof got, f))
            got[0] = '\0';
        fclose(f);
    }
    CHECK_STR(got, "precious");
    /* Removing the link by name removes the link only. */
    CHECK_OK(uw_storage_remove(st, "l/dir/obj", &err) == 0, err);
    CHECK(access(victim, F_OK) == 0);
    unlink(ldir);
    CHECK_OK(uw_storage_remove_tree(st, "l", &err) == 0, err);
    CHECK(access(victim, F_OK) == 0);
    unlink(victim);
    rmdir(outside);
    free(planted);
    free(ldir);
    free(lfile);
    free(victim);
    free(outside);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL: an operation on a FIFO hung\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
}

static void test_fifo(uw_storage *st)
{
    uw_t_section("a FIFO is refused at once");
    uw_err err;
    uw_err_clear(&err);
    CHECK_OK(uw_storage_put(st, "f/x", "x", 1, &err) == 0, err);
    char *fifo = uw_sprintf("%s/f/obj", root);
    CHECK(mkfifo(fifo, 0600) == 0);
    signal(SIGALRM, on_alarm);
    alarm(60); /* the old driver blocked in open() forever */
    uw_buf buf = {0};
    CHECK_FAIL_CODE(uw_storage_get(st, "f/obj", &buf, &err) < 0, err, UW_E_REPO_FORMAT);
    CHECK_CONTAINS(err.msg, "not a regular file");
    CHECK_CONTAINS(err.msg, "FIFO");
    uw_buf_free(&buf);
    listing ls = {0};
    CHECK_FAIL_CODE(uw_storage_list(st, "f", list_cb, &ls, &err) < 0, err, UW_E_REPO_FORMAT);
    alarm(0);
    unlink(fifo);
    free(fifo);
    CHECK_OK(uw_storage_remove_tree(st, "f", &err) == 0, err);
}

/* Interrupted writers' temporaries go with the tree they are in. */
static void test_remove_tree_temps(uw_storage *st)
{
    uw_t_section("remove_tree removes temporaries");
    uw_err err;
    uw_err_clear(&err);
    CHECK_OK(uw_storage_put(st, "b/id/pg_data/base/5/1", "1", 1, &err) == 0, err);
    char *tmp = uw_sprintf("%s/b/id/pg_data/base/5/2.uwtmp.1.2.host", root);
    put_file(tmp, "partial");
    CHECK(access(tmp, F_OK) == 0);
    CHECK_OK(uw_storage_remove_tree(st, "b/id", &err) == 0, err);
    char *dir = uw_sprintf("%s/b/id", root);
    CHECK(access(dir, F_OK) != 0);
    CHECK_OK(uw_storage_remove_tree(st, "b/id", &err) == 0, err); /* missing: fine */
    free(dir);
    free(tmp);
}

static void test_sweep(uw_storage *st)
{
    uw_t_section("sweep of stale temporaries");
    uw_err err;
    uw_err_clear(&err);
    char host[64];
    uw_storage_temp_host(host, sizeof host);
    CHECK(host[0] && !strchr(host, '.'));
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    CHECK_OK(uw_storage_put(st, "w/a/obj", "o", 1, &err) == 0, err);
    char *d = uw_sprintf("%s/w/a", root);
    char *dead_t = uw_sprintf("%s/s1.uwtmp.%d.ab.%s", d, (int)dead, host);
    char *push_t = uw_sprintf("%s/s2.uwtmp.%d.push.%s", d, (int)dead, host);
    char *live_t = uw_sprintf("%s/s3.uwtmp.%d.ab.%s", d, (int)getppid(), host);
    char *own_t = uw_sprintf("%s/s4.uwtmp.%d.ab.%s", d, (int)getpid(), host);
    char *far_t = uw_sprintf("%s/s5.uwtmp.%d.ab.otherhost", d, (int)dead);
    char *old_t = uw_sprintf("%s/s6.uwtmp.%d.ab.otherhost", d, (int)dead);
    char *legacy_t = uw_sprintf("%s/s7.uwtmp.push-%d", d, (int)dead);
    const char *all[] = {dead_t, push_t, live_t, own_t, far_t, old_t, legacy_t};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        put_file(all[i], "0123456789");
    struct timespec old[2] = {{time(NULL) - UW_TEMP_MAX_AGE - 60, 0},
                              {time(NULL) - UW_TEMP_MAX_AGE - 60, 0}};
    CHECK(utimensat(AT_FDCWD, old_t, old, 0) == 0);
    uw_sweep_stats stats = {0};
    CHECK_OK(uw_storage_sweep(st, "w", UW_TEMP_MAX_AGE, &stats, &err) == 0, err);
    CHECK_U64(stats.count, 3); /* the dead owner's two, and the old one */
    CHECK_U64(stats.bytes, 30);
    CHECK(access(dead_t, F_OK) != 0);
    CHECK(access(push_t, F_OK) != 0);
    CHECK(access(old_t, F_OK) != 0);
    CHECK(access(live_t, F_OK) == 0);
    CHECK(access(own_t, F_OK) == 0);
    CHECK(access(far_t, F_OK) == 0);
    CHECK(access(legacy_t, F_OK) == 0);
    uint64_t size;
    CHECK_INT(uw_storage_stat(st, "w/a/obj", &size, &err), 1);
    /* A link in the tree is skipped with a warning, never followed. */
    char *outside = uw_sprintf("%s-sweep-outside", root);
    mkdir(outside, 0700);
    char *bait = uw_sprintf("%s/x.uwtmp.%d.ab.%s", outside, (int)dead, host);
    put_file(bait, "bait");
    char *lnk = uw_sprintf("%s/w/a/link", root);
    CHECK(symlink(outside, lnk) == 0);
    stats = (uw_sweep_stats){0};
    CHECK_OK(uw_storage_sweep(st, "w", UW_TEMP_MAX_AGE, &stats, &err) == 0, err);
    CHECK(access(bait, F_OK) == 0);
    unlink(lnk);
    unlink(bait);
    rmdir(outside);
    CHECK(uw_storage_temp_stale("a.uwtmp.1.2.h", "h", UW_TEMP_MAX_AGE + 1, UW_TEMP_MAX_AGE));
    CHECK(!uw_storage_temp_stale("plain-object", "h", UW_TEMP_MAX_AGE + 1, UW_TEMP_MAX_AGE));
    CHECK_OK(uw_storage_remove_tree(st, "w", &err) == 0, err);
    free(lnk);
    free(bait);
    free(outside);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free((char *)all[i]);
    free(d);
}

/* One new name, two contents: the final rename never replaces, so exactly
 * one racer wins and the other sees UW_E_ARCHIVE_MISMATCH. */
typedef struct {
    uw_storage *st;
    const char *from, *to;
    int rc;
    uw_err err;
    pthread_barrier_t *go;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->go);
    uw_err_clear(&r->err);
    r->rc = uw_storage_rename_noreplace(r->st, r->from, r->to, &r->err);
    return NULL;
}

static void test_rename_noreplace(uw_config *cfg, uw_storage *st)
{
    uw_t_section("rename never replaces");
    uw_err err;
    uw_err_clear(&err);
    CHECK_OK(uw_storage_put(st, "r/a", "content a", 9, &err) == 0, err);
    CHECK_OK(uw_storage_put(st, "r/b", "content b", 9, &err) == 0, err);
    CHECK_FAIL_CODE(uw_storage_rename_noreplace(st, "r/a", "r/b", &err) < 0, err,
                    UW_E_ARCHIVE_MISMATCH);
    uw_buf buf = {0};
    CHECK_OK(uw_storage_get(st, "r/b", &buf, &err) == 0, err);
    CHECK(buf.len == 9 && memcmp(buf.data, "content b", 9) == 0);
    uw_buf_free(&buf);
    uint64_t size;
    CHECK_INT(uw_storage_stat(st, "r/a", &size, &err), 1);
    CHECK_OK(uw_storage_rename_noreplace(st, "r/a", "r/new/c", &err) == 0, err);
    CHECK_INT(uw_storage_stat(st, "r/a", &size, &err), 0);
    CHECK_INT(uw_storage_stat(st, "r/new/c", &size, &err), 1);

    uw_t_section("racing renames: exactly one wins");
    uw_storage *st2 = uw_storage_open(cfg, 1, &err);
    if (!CHECK_OK(st2 != NULL, err))
        return;
    int one_winner = 0, rounds = 200;
    for (int i = 0; i < rounds; i++) {
        char to[64];
        snprintf(to, sizeof to, "r/race/seg-%d", i);
        CHECK_OK(uw_storage_put(st, "r/x1", "one", 3, &err) == 0, err);
        CHECK_OK(uw_storage_put(st2, "r/x2", "two", 3, &err) == 0, err);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        racer a = {st, "r/x1", to, 0, {0}, &go}, b = {st2, "r/x2", to, 0, {0}, &go};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, race, &a);
        pthread_create(&tb, NULL, race, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        pthread_barrier_destroy(&go);
        bool ok = (a.rc == 0) != (b.rc == 0);
        racer *loser = a.rc == 0 ? &b : &a;
        ok = ok && loser->err.code == UW_E_ARCHIVE_MISMATCH;
        uw_buf got = {0};
        ok = ok && uw_storage_get(st, to, &got, &err) == 0 && got.len == 3 &&
             memcmp(got.data, a.rc == 0 ? "one" : "two", 3) == 0;
        uw_buf_free(&got);
        one_winner += ok;
        uw_storage_remove(st, "r/x1", &err);
        uw_storage_remove(st, "r/x2", &err);
    }
    CHECK_INT(one_winner, rounds);
    uw_storage_close(st2);
    CHECK_OK(uw_storage_remove_tree(st, "r", &err) == 0, err);
}

static void test_open_errors(void)
{
    uw_t_section("open errors");
    uw_err err;
    uw_config *cfg = config_for("relative/path", &err);
    if (CHECK_OK(cfg != NULL, err)) {
        uw_err_clear(&err);
        uw_storage *st = uw_storage_open(cfg, 1, &err);
        CHECK_FAIL_CODE(st == NULL, err, UW_E_OPTION);
        CHECK_CONTAINS(err.msg, "repo1-path");
        uw_storage_close(st);
        /* repo2 is not configured at all */
        uw_err_clear(&err);
        st = uw_storage_open(cfg, 2, &err);
        CHECK_FAIL_CODE(st == NULL, err, UW_E_OPTION);
        CHECK_CONTAINS(err.msg, "repo2-path");
        uw_storage_close(st);
    }
    uw_config_free(cfg);
    /* Trailing slashes are dropped from the root. */
    char *slashy = uw_sprintf("%s///", root);
    cfg = config_for(slashy, &err);
    if (CHECK_OK(cfg != NULL, err)) {
        uw_storage *st = uw_storage_open(cfg, 1, &err);
        if (CHECK_OK(st != NULL, err)) {
            CHECKF(!strstr(st->desc, "//"), "desc '%s'", st->desc);
            CHECK_OK(uw_storage_put(st, "t/x", "1", 1, &err) == 0, err);
            char *p = uw_sprintf("%s/t/x", root);
            CHECK(access(p, F_OK) == 0);
            free(p);
        }
        uw_storage_close(st);
    }
    uw_config_free(cfg);
    free(slashy);
}

int main(void)
{
    clear_env();
    snprintf(root, sizeof root, "/tmp/ut-storage-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(conf, sizeof conf, "/tmp/ut-storage-conf-XXXXXX");
    int fd = mkstemp(conf);
    if (fd < 0) {
        perror("mkstemp");
        return 2;
    }
    close(fd);

    uw_err err;
    uw_config *cfg = config_for(root, &err);
    if (!cfg) {
        fprintf(stderr, "config: %s\n", err.msg);
        return 2;
    }
    uw_storage *st = uw_storage_open(cfg, 1, &err);
    if (CHECK_OK(st != NULL, err)) {
        test_basic(st);
        test_links(st);
        test_fifo(st);
        test_remove_tree_temps(st);
        test_sweep(st);
        test_rename_noreplace(cfg, st);
    }
    uw_storage_close(st);
    uw_config_free(cfg);
    test_open_errors();

    rm_rf(root);
    unlink(conf);
    return uw_t_done("test_storage_posix");
}
