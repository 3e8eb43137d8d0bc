/* Backup pins: see backup_pin.h. */
#include "repo/backup_pin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/object.h"
#include "repo/manifest.h"
#include "repo/retention.h"

#define PIN_MAX 4096

static char *pin_path(const uw_repo *r, const char *id)
{
    return uw_sprintf("%s/backup/%s/keep", r->stanza, id);
}

static char *render(const char *id, int64_t until)
{
    char u[32];
    if (until == UW_PIN_FOREVER)
        snprintf(u, sizeof u, "forever");
    else
        snprintf(u, sizeof u, "%" PRId64, until);
    char *body = uw_sprintf("id=%s\nuntil=%s\n", id, u);
    uint8_t d[32];
    uw_sha256(body, strlen(body), d);
    char hex[65];
    uw_hex(d, 32, hex);
    char *text = uw_sprintf("%schecksum=%s\n", body, hex);
    free(body);
    return text;
}

/* Checks the checksum and the id; fills *until. */
static int parse(const char *text, size_t len, const char *id, const char *what, int64_t *until,
                 uw_err *err)
{
    const char *ck = NULL;
    for (const char *p = text; p < text + len; p = strchr(p, '\n') + 1) {
        if (!strchr(p, '\n'))
            break;
        if (!strncmp(p, "checksum=", 9))
            ck = p;
    }
    if (!ck || strlen(ck) != 9 + 64 + 1 || ck[9 + 64] != '\n')
        return uw_fail(err, UW_E_REPO_FORMAT, "%s has no valid checksum line", what);
    uint8_t d[32];
    uw_sha256(text, (size_t)(ck - text), d);
    char hex[65];
    uw_hex(d, 32, hex);
    if (strncmp(ck + 9, hex, 64) != 0)
        return uw_fail(err, UW_E_CORRUPT, "%s: checksum mismatch", what);
    char *want = uw_sprintf("id=%s\nuntil=", id);
    bool ok = !strncmp(text, want, strlen(want));
    const char *u = text + strlen(want);
    free(want);
    if (!ok)
        return uw_fail(err, UW_E_REPO_FORMAT, "%s does not belong to backup %s", what, id);
    if (!strncmp(u, "forever\n", 8)) {
        *until = UW_PIN_FOREVER;
        return 0;
    }
    char *end;
    long long v = strtoll(u, &end, 10);
    if (end == u || *end != '\n' || v <= 0)
        return uw_fail(err, UW_E_REPO_FORMAT, "%s: malformed until line", what);
    *until = v;
    return 0;
}

int uw_backup_pin_get(uw_repo *r, const char *id, int64_t *until, uw_err *err)
{
    *until = 0;
    char *path = pin_path(r, id);
    char *bind = uw_sprintf("keep:%s", id);
    uw_buf b = {0};
    int rc = uw_repo_meta_get(r, path, bind, PIN_MAX, &b, err);
    if (rc < 0 && err->code == UW_E_NOT_FOUND) {
        uw_err_clear(err);
        rc = 0;
    } else if (rc == 0) {
        uw_buf_append(&b, "", 1);
        char *what = uw_sprintf("%s/%s", r->st->desc, path);
        rc = parse((const char *)b.data, b.len - 1, id, what, until, err);
        free(what);
    }
    uw_buf_free(&b);
    free(bind);
    free(path);
    return rc;
}

int uw_backup_pin_set(uw_repo *r, const char *id, int64_t until, uw_err *err)
{
    char *text = render(id, until);
    char *path = pin_path(r, id);
    char *bind = uw_sprintf("keep:%s", id);
    int rc = uw_repo_meta_put(r, path, bind, text, err);
    free(bind);
    free(path);
    free(text);
    return rc;
}

int uw_backup_pin_clear(uw_repo *r, const char *id, uw_err *err)
{
    char *path = pin_path(r, id);
    int rc = uw_storage_remove(r->st, path, err);
    free(path);
    return rc;
}
