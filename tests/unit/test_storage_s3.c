/* The S3 driver through the storage interface, against a real S3 server.
 *
 * Needs a server: UW_S3_TEST_CONFIG names an ue-wal config file whose repo1
 * is an s3 repository with repo1-s3-part-size=5MiB (tests/integration/
 * s3_archive.sh runs this against s3rver, and fails if it is missing).
 * Without it the test exits 77, "skipped" (never "passed").
 *
 * Covers: keys with spaces, '=', '+', ',' and UTF-8; empty objects; stat;
 * list of objects and sub-prefixes; listing across continuation tokens (more
 * than 1000 keys); multipart upload of an object of several parts read back
 * intact; a sink freed unfinished leaves nothing visible (multipart abort);
 * missing objects (read: UW_E_NOT_FOUND, stat: 0, remove: no error); a sink
 * error during a read keeps its own code; remove_tree in bulk (DeleteObjects). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "storage/storage.h"
#include "unit.h"

typedef struct {
    char names[64][128];
    bool dirs[64];
    uint64_t sizes[64];
    int n, total;
} listing;

static int list_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    listing *l = ctx;
    if (l->n < 64) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
        l->dirs[l->n] = is_dir;
        l->sizes[l->n] = size;
        l->n++;
    }
    l->total++;
    return 0;
}

static int find(const listing *l, const char *name, bool is_dir)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0 && l->dirs[i] == is_dir)
            return i;
    return -1;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (uint8_t)x;
    }
}

/* A sink that refuses bytes after the first ones. */
static int refuse_write(uw_sink *s, const uint8_t *b, size_t n, uw_err *err)
{
    (void)s;
    (void)b;
    (void)n;
    return uw_fail(err, UW_E_CORRUPT, "refused by the test sink");
}
static int refuse_finish(uw_sink *s, uw_err *err)
{
    (void)s;
    (void)err;
    return 0;
}
static void refuse_destroy(uw_sink *s)
{
    (void)s;
}

int main(void)
{
    const char *conf = getenv("UW_S3_TEST_CONFIG");
    if (!conf || !*conf) {
        printf("test_storage_s3: skipped (set UW_S3_TEST_CONFIG; tests/integration/s3_archive.sh "
               "runs it against s3rver)\n");
        return 77; /* "skipped": SKIP_RETURN_CODE in tests/CMakeLists.txt */
    }
    uw_log_init("test_storage_s3");
    char *argv[] = {"test_storage_s3", "--config", (char *)conf, NULL};
    uw_err err;
    uw_err_clear(&err);
    uw_config *cfg = uw_config_load(3, argv, UW_CMD_PUSH, &err);
    if (!CHECK_OK(cfg != NULL, err))
        return uw_t_done("test_storage_s3");
    uw_storage *st = uw_storage_open(cfg, 1, &err);
    if (!CHECK_OK(st != NULL, err))
        return uw_t_done("test_storage_s3");
    CHECK_STR(st->drv->type, "s3");
    char base[64];
    snprintf(base, sizeof base, "unit-%d", (int)getpid());
    char path[512];

    uw_t_section("small objects, odd keys, empty objects, stat");
    /* (no '&': s3rver 5 escapes it twice in listings, "&amp;amp;") */
    const char *odd = "a b=c+d,e\xC3\xA9~.x()";
    snprintf(path, sizeof path, "%s/dir/%s", base, odd);
    CHECK_OK(uw_storage_put(st, path, "hello", 5, &err) == 0, err);
    uint64_t size = 0;
    CHECK_INT(uw_storage_stat(st, path, &size, &err), 1);
    CHECK_U64(size, 5);
    uw_buf b = {0};
    CHECK_OK(uw_storage_get(st, path, &b, &err) == 0, err);
    CHECK(b.len == 5 && memcmp(b.data, "hello", 5) == 0);
    uw_buf_free(&b);
    snprintf(path, sizeof path, "%s/dir/empty", base);
    CHECK_OK(uw_storage_put(st, path, "", 0, &err) == 0, err);
    size = 99;
    CHECK_INT(uw_storage_stat(st, path, &size, &err), 1);
    CHECK_U64(size, 0);
    b = (uw_buf){0};
    CHECK_OK(uw_storage_get(st, path, &b, &err) == 0, err);
    CHECK_INT(b.len, 0);
    uw_buf_free(&b);
    snprintf(path, sizeof path, "%s/dir/sub/x", base);
    CHECK_OK(uw_storage_put(st, path, "x", 1, &err) == 0, err);

    uw_t_section("list: objects and sub-prefixes");
    listing l = {0};
    snprintf(path, sizeof path, "%s/dir", base);
    CHECK_OK(uw_storage_list(st, path, list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, 3);
    int i = find(&l, odd, false);
    CHECK(i >= 0 && l.sizes[i] == 5);
    CHECK(find(&l, "empty", false) >= 0);
    CHECK(find(&l, "sub", true) >= 0);
    /* trailing slash and missing prefixes */
    l = (listing){0};
    snprintf(path, sizeof path, "%s/dir/", base);
    CHECK_OK(uw_storage_list(st, path, list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, 3);
    l = (listing){0};
    snprintf(path, sizeof path, "%s/nothing/here", base);
    CHECK_OK(uw_storage_list(st, path, list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, 0);
    l = (listing){0};
    CHECK_OK(uw_storage_list(st, base, list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, 1);
    CHECK(find(&l, "dir", true) >= 0);

    uw_t_section("list_prefix: the names under dir that begin with the prefix");
    /* The prefix goes to the server (s3_list_prefix): the answer must be the
     * filtered listing's, names relative to dir and nothing nested. */
    l = (listing){0};
    snprintf(path, sizeof path, "%s/dir", base);
    CHECK_OK(uw_storage_list_prefix(st, path, "em", list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, 1);
    i = find(&l, "empty", false);
    CHECK(i >= 0 && l.sizes[i] == 0);
    l = (listing){0};
    CHECK_OK(uw_storage_list_prefix(st, path, "s", list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, 1);
    CHECK(find(&l, "sub", true) >= 0);
    l = (listing){0};
    CHECK_OK(uw_storage_list_prefix(st, path, "sub/", list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, 0);
    l = (listing){0};
    CHECK_OK(uw_storage_list_prefix(st, path, "zz", list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, 0);
    l = (listing){0};
    CHECK_OK(uw_storage_list_prefix(st, path, "", list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, 3);

    uw_t_section("missing objects");
    snprintf(path, sizeof path, "%s/missing", base);
    CHECK_INT(uw_storage_stat(st, path, &size, &err), 0);
    b = (uw_buf){0};
    CHECK_FAIL_CODE(uw_storage_get(st, path, &b, &err) < 0, err, UW_E_NOT_FOUND);
    uw_buf_free(&b);
    uw_err_clear(&err);
    CHECK_OK(uw_storage_remove(st, path, &err) == 0, err);

    uw_t_section("multipart upload, abort of an unfinished one");
    size_t big = (12u << 20) + 12345;
    uint8_t *data = malloc(big);
    fill(data, big, 7);
    snprintf(path, sizeof path, "%s/big", base);
    uw_sink *w = uw_storage_write(st, path, &err);
    if (CHECK_OK(w != NULL, err)) {
        int rc = 0;
        for (size_t off = 0; rc == 0 && off < big; off += 100003)
            rc = uw_sink_write(w, data + off, big - off < 100003 ? big - off : 100003, &err);
        CHECK_OK(rc == 0, err);
        CHECK_INT(uw_storage_stat(st, path, &size, &err), 0); /* not visible before finish */
        CHECK_OK(uw_sink_finish(w, &err) == 0, err);
        uw_sink_free(w);
    }
    CHECK_INT(uw_storage_stat(st, path, &size, &err), 1);
    CHECK_U64(size, big);
    b = (uw_buf){0};
    CHECK_OK(uw_storage_get(st, path, &b, &err) == 0, err);
    CHECK(b.len == big && memcmp(b.data, data, big) == 0);
    uw_buf_free(&b);
    /* exactly one part's worth: still a single PUT */
    snprintf(path, sizeof path, "%s/five", base);
    CHECK_OK(uw_storage_put(st, path, data, 5u << 20, &err) == 0, err);
    CHECK_INT(uw_storage_stat(st, path, &size, &err), 1);
    CHECK_U64(size, 5u << 20);
    /* freed unfinished after two parts went up: nothing appears */
    snprintf(path, sizeof path, "%s/aborted", base);
    w = uw_storage_write(st, path, &err);
    if (CHECK_OK(w != NULL, err)) {
        CHECK_OK(uw_sink_write(w, data, 11u << 20, &err) == 0, err);
        uw_sink_free(w);
    }
    CHECK_INT(uw_storage_stat(st, path, &size, &err), 0);
    /* a destination sink's error keeps its code */
    snprintf(path, sizeof path, "%s/big", base);
    uw_sink refuse = {refuse_write, refuse_finish, refuse_destroy, NULL, false, NULL};
    CHECK_FAIL_CODE(uw_storage_read(st, path, &refuse, &err) < 0, err, UW_E_CORRUPT);
    free(data);

    uw_t_section("listing across continuation tokens, bulk remove_tree");
    int nmany = 1003;
    int put_failed = 0;
    for (int k = 0; k < nmany; k++) {
        snprintf(path, sizeof path, "%s/many/obj-%04d", base, k);
        if (uw_storage_put(st, path, path, strlen(path), &err) < 0 && put_failed++ == 0)
            CHECK_OK(false, err);
    }
    CHECK_INT(put_failed, 0);
    l = (listing){0};
    snprintf(path, sizeof path, "%s/many", base);
    CHECK_OK(uw_storage_list(st, path, list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, nmany);
    CHECK_OK(uw_storage_remove_tree(st, base, &err) == 0, err);
    l = (listing){0};
    CHECK_OK(uw_storage_list(st, base, list_cb, &l, &err) == 0, err);
    CHECK_INT(l.total, 0);
    snprintf(path, sizeof path, "%s/dir/%s", base, odd);
    CHECK_INT(uw_storage_stat(st, path, &size, &err), 0);
    /* removing a missing tree is not an error */
    CHECK_OK(uw_storage_remove_tree(st, base, &err) == 0, err);

    uw_storage_close(st);
    uw_config_free(cfg);
    return uw_t_done("test_storage_s3");
}
