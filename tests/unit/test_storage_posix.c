/* The posix storage driver through the storage interface. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    if (CHECK_OK(st != NULL, err))
        test_basic(st);
    uw_storage_close(st);
    uw_config_free(cfg);
    test_open_errors();

    rm_rf(root);
    unlink(conf);
    return uw_t_done("test_storage_posix");
}
