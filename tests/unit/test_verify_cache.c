/* The verify cache (common/work/verify_cache.c): round trip with mode
 * 0700/0600, a match needs the same repository, path, size and a non-empty
 * identical change identity, and a malformed or truncated cache is ignored
 * (everything read again), never trusted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "work/verify_cache.h"

static char dir[] = "/tmp/uw-test-vcache-XXXXXX";
static const char *sha = "aa00000000000000000000000000000000000000000000000000000000000000";

static void test_round_trip(void)
{
    uw_t_section("save, load, match");
    char *vdir = uw_sprintf("%s/main/verify", dir);
    uw_verify_cache c;
    uw_verify_cache_load(&c, vdir);
    CHECKF(c.n == 0, "missing cache is empty");
    uw_verify_cache_add(&c, 1, "main/archive/0000000100000000/x-1.zst", 100, "m1-c1-i7", sha);
    uw_verify_cache_add(&c, 2, "main/backup/B/pg_data/base/1/1.zst", 5, "\"etag\" Mon", sha);
    uw_verify_cache_add(&c, 1, "main/nope", 5, "", sha);
    uw_err err;
    CHECKF(uw_verify_cache_save(&c, vdir, &err) == 0, "%s", err.msg);
    uw_verify_cache_free(&c);
    struct stat sb;
    CHECKF(stat(vdir, &sb) == 0 && (sb.st_mode & 0777) == 0700, "directory 0700");
    char *file = uw_sprintf("%s/cache", vdir);
    CHECKF(stat(file, &sb) == 0 && (sb.st_mode & 0777) == 0600, "file 0600");

    uw_verify_cache_load(&c, vdir);
    CHECKF(c.n == 3, "3 entries loaded, got %zu", c.n);
    const uw_vc_entry *e =
        uw_verify_cache_match(&c, 1, "main/archive/0000000100000000/x-1.zst", 100, "m1-c1-i7");
    CHECKF(e && !strcmp(e->sha256, sha), "unchanged object matches");
    CHECKF(!uw_verify_cache_match(&c, 1, "main/archive/0000000100000000/x-1.zst", 101, "m1-c1-i7"),
           "another size does not match");
    CHECKF(!uw_verify_cache_match(&c, 1, "main/archive/0000000100000000/x-1.zst", 100, "m2-c1-i7"),
           "another identity does not match");
    CHECKF(!uw_verify_cache_match(&c, 2, "main/archive/0000000100000000/x-1.zst", 100, "m1-c1-i7"),
           "another repository does not match");
    CHECKF(uw_verify_cache_match(&c, 2, "main/backup/B/pg_data/base/1/1.zst", 5, "\"etag\" Mon"),
           "identity with quotes and spaces");
    CHECKF(!uw_verify_cache_match(&c, 1, "main/nope", 5, ""), "no identity: never skipped");
    uw_verify_cache_free(&c);

    uw_t_section("malformed caches are ignored");
    FILE *f = fopen(file, "a");
    fputs("1\t100\tnot-a-sha\tm\tpath\n", f);
    fclose(f);
    uw_verify_cache_load(&c, vdir);
    CHECKF(c.n == 0, "a bad line empties the cache, got %zu", c.n);
    uw_verify_cache_free(&c);
    f = fopen(file, "w");
    fprintf(f, "1\t100\t%s\tm\tpath", sha); /* no newline: truncated */
    fclose(f);
    uw_verify_cache_load(&c, vdir);
    CHECKF(c.n == 0, "a truncated last line empties the cache, got %zu", c.n);
    uw_verify_cache_free(&c);
    free(file);
    free(vdir);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    test_round_trip();
    char *cmd = uw_sprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "unable to remove %s\n", dir);
    free(cmd);
    return uw_t_done("test_verify_cache");
}
