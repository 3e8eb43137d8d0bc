/* On a posix repository: info's check for missing backup objects
 * (common/repo/backup_check.c): every file entry found through one recursive
 * listing per backup directory, a deleted object counted, a referenced
 * backup's objects looked up in that backup's own listing; and backup pins
 * (common/repo/backup_pin.c), plain and encrypted: round trip, removal, and
 * a tampered pin or one copied to another backup refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo/backup_check.h"
#include "repo/backup_pin.h"
#include "repo/retention.h"
#include "unit.h"

static char root[] = "/tmp/uw-test-bcheck-XXXXXX";

static void touch(const char *rel)
{
    char *p = uw_sprintf("%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(p, 0700);
        *s = '/';
    }
    FILE *f = fopen(p, "w");
    if (f)
        fclose(f);
    free(p);
}

static void add(uw_manifest *m, const char *path, const char *ref)
{
    uw_mf_entry e = {0};
    e.path = (char *)path;
    e.type = 'f';
    snprintf(e.ref, sizeof e.ref, "%s", ref);
    snprintf(e.ext, sizeof e.ext, ".zst");
    uw_manifest_add(m, &e);
}

static char *read_all(const char *rel, size_t *len)
{
    char *p = uw_sprintf("%s/%s", root, rel);
    FILE *f = fopen(p, "rb");
    free(p);
    char *buf = uw_calloc(1, 8192);
    *len = f ? fread(buf, 1, 8191, f) : 0;
    if (f)
        fclose(f);
    return buf;
}

static void write_all(const char *rel, const char *buf, size_t len)
{
    char *p = uw_sprintf("%s/%s", root, rel);
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(buf, 1, len, f);
        fclose(f);
    }
    free(p);
}

static void test_pins(uw_repo *r)
{
    uw_t_section(r->have_key ? "pins, encrypted stanza" : "pins, plain stanza");
    uw_err err;
    uw_err_clear(&err);
    int64_t until = -1;
    CHECK(uw_backup_pin_get(r, "F", &until, &err) == 0 && until == 0);
    CHECKF(uw_backup_pin_set(r, "F", UW_PIN_FOREVER, &err) == 0, "%s", err.msg);
    CHECK(uw_backup_pin_get(r, "F", &until, &err) == 0 && until == UW_PIN_FOREVER);
    CHECK(uw_backup_pin_set(r, "F", 1900000000, &err) == 0);
    CHECK(uw_backup_pin_get(r, "F", &until, &err) == 0 && until == 1900000000);
    /* Copied to another backup: refused (id line, or the encrypted binding). */
    size_t len;
    char *pin = read_all("repo/s/backup/F/keep", &len);
    CHECK(len > 0);
    write_all("repo/s/backup/I/keep", pin, len);
    uw_err_clear(&err);
    CHECKF(uw_backup_pin_get(r, "I", &until, &err) < 0, "a pin copied to I accepted");
    /* One byte changed: refused. */
    pin[len / 2] ^= 1;
    write_all("repo/s/backup/F/keep", pin, len);
    uw_err_clear(&err);
    CHECKF(uw_backup_pin_get(r, "F", &until, &err) < 0, "a tampered pin accepted");
    free(pin);
    CHECK(uw_backup_pin_clear(r, "F", &err) == 0 && uw_backup_pin_clear(r, "I", &err) == 0);
    CHECK(uw_backup_pin_get(r, "F", &until, &err) == 0 && until == 0);
    CHECK(uw_backup_pin_clear(r, "F", &err) == 0);
}

int main(void)
{
    if (!mkdtemp(root))
        return 1;
    char conf[128];
    snprintf(conf, sizeof conf, "%s/ue-wal.conf", root);
    FILE *cf = fopen(conf, "w");
    if (cf)
        fclose(cf);
    char *argv[] = {"x", "--stanza=s", NULL, NULL, NULL};
    argv[2] = uw_sprintf("--repo1-path=%s/repo", root);
    argv[3] = uw_sprintf("--config=%s", conf);
    uw_err err;
    uw_err_clear(&err);
    uw_config *cfg = uw_config_load(4, argv, UW_CMD_PITR, &err);
    CHECKF(cfg != NULL, "%s", err.msg);
    uw_repo r = {0};
    r.stanza = "s";
    r.st = cfg ? uw_storage_open(cfg, 1, &err) : NULL;
    CHECKF(r.st != NULL, "%s", err.msg);
    if (!r.st)
        return uw_t_done("test_backup_check");

    uw_t_section("objects listed once per backup");
    touch("repo/s/backup/F/pg_data/PG_VERSION.zst");
    touch("repo/s/backup/F/pg_data/base/1/112.zst");
    touch("repo/s/backup/F/pg_data/base/1/113.zst");
    touch("repo/s/backup/F/pg_data/global/pg_control.zst");
    touch("repo/s/backup/I/pg_data/base/1/113.zst");
    uw_manifest f, i;
    uw_manifest_init(&f);
    uw_manifest_init(&i);
    add(&f, "PG_VERSION", "F");
    add(&f, "base/1/112", "F");
    add(&f, "base/1/113", "F");
    add(&f, "global/pg_control", "F");
    add(&i, "PG_VERSION", "F");
    add(&i, "base/1/112", "F");
    add(&i, "base/1/113", "I");
    uw_backup_objects *c = uw_backup_objects_new(&r);
    size_t missing = 99;
    char *first = NULL;
    CHECKF(uw_backup_check_files(c, &f, &missing, &first, &err) == 0, "%s", err.msg);
    CHECKF(missing == 0 && !first, "%zu missing, first %s", missing, first ? first : "-");
    free(first);
    CHECK(uw_backup_check_files(c, &i, &missing, &first, &err) == 0 && missing == 0);
    free(first);
    uw_backup_objects_free(c);

    char *p = uw_sprintf("%s/repo/s/backup/F/pg_data/base/1/112.zst", root);
    unlink(p);
    free(p);
    c = uw_backup_objects_new(&r);
    CHECK(uw_backup_check_files(c, &f, &missing, &first, &err) == 0);
    CHECKF(missing == 1 && first && !strcmp(first, "base/1/112"), "%zu missing", missing);
    free(first);
    CHECK(uw_backup_check_files(c, &i, &missing, &first, &err) == 0 && missing == 1);
    free(first);
    uw_backup_objects_free(c);

    uw_manifest_free(&f);
    uw_manifest_free(&i);
    test_pins(&r);
    r.have_key = true;
    r.info.system_id = 42;
    memset(r.key.master, 7, sizeof r.key.master);
    uw_key_expand(&r.key);
    test_pins(&r);
    uw_storage_close(r.st);
    uw_config_free(cfg);
    free(argv[2]);
    free(argv[3]);
    char *cmd = uw_sprintf("rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "unable to remove %s\n", root);
    free(cmd);
    return uw_t_done("test_backup_check");
}
