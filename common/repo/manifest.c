#include "repo/manifest.h"
#include "io/object.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void uw_manifest_init(uw_manifest *m)
{
    memset(m, 0, sizeof *m);
}

void uw_manifest_free(uw_manifest *m)
{
    for (size_t i = 0; m->entries && i < m->count; i++) {
        free(m->entries[i].path);
        free(m->entries[i].link);
    }
    free(m->entries);
    memset(m, 0, sizeof *m);
}

void uw_manifest_add(uw_manifest *m, const uw_mf_entry *e)
{
    if (m->count == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->entries = uw_realloc(m->entries, m->cap * sizeof *m->entries);
    }
    uw_mf_entry *d = &m->entries[m->count++];
    *d = *e;
    d->path = uw_strdup(e->path);
    d->link = e->link ? uw_strdup(e->link) : NULL;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const uw_mf_entry *)a)->path, ((const uw_mf_entry *)b)->path);
}

void uw_manifest_sort(uw_manifest *m)
{
    if (m->count)
        qsort(m->entries, m->count, sizeof *m->entries, entry_cmp);
}

const uw_mf_entry *uw_manifest_find(const uw_manifest *m, const char *path)
{
    uw_mf_entry key = {0};
    key.path = (char *)path;
    if (!m->count)
        return NULL;
    return bsearch(&key, m->entries, m->count, sizeof *m->entries, entry_cmp);
}

bool uw_manifest_path_safe(const char *path)
{
    if (!path || !*path || path[0] == '/')
        return false;
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!slash)
            break;
        p = slash + 1;
    }
    for (const unsigned char *c = (const unsigned char *)path; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

static void encode(uw_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c <= 0x20 || *c >= 0x7f || *c == '%') {
            char e[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            uw_buf_append(b, e, 3);
        } else {
            uw_buf_append(b, c, 1);
        }
    }
}

/* Decodes in place; fails on malformed escapes and on an encoded NUL. */
static bool decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        int hi = uw_hexval(r[1]), lo = hi < 0 ? -1 : uw_hexval(r[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return false;
        *w++ = (char)(hi << 4 | lo);
        r += 2;
    }
    *w = '\0';
    return true;
}

static void appendf(uw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void appendf(uw_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    uw_buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

char *uw_manifest_render(const uw_manifest *m)
{
    uw_buf b = {0};
    char start[32], stop[32];
    uw_lsn_format(m->start_lsn, start, sizeof start);
    uw_lsn_format(m->stop_lsn, stop, sizeof stop);
    appendf(&b, "[backup]\nformat=1\nid=%s\ntype=%s\nprior=%s\n", m->id, m->type, m->prior);
    appendf(&b, "start-lsn=%s\nstop-lsn=%s\ntimeline=%" PRIu32 "\n", start, stop, m->timeline);
    appendf(&b, "start-wal=%s\nstop-wal=%s\n", m->start_wal, m->stop_wal);
    appendf(&b, "start-time=%" PRId64 "\nstop-time=%" PRId64 "\nduration-ms=%" PRId64 "\n",
            m->start_time, m->stop_time, m->duration_ms);
    appendf(&b, "pg-version=%d\nsystem-id=%" PRIu64 "\nwal-segment-size=%" PRIu32 "\n",
            m->pg_version, m->system_id, m->wal_seg_size);
    appendf(&b, "size=%" PRIu64 "\nstored=%" PRIu64 "\ntotal-size=%" PRIu64 "\n", m->size,
            m->stored, m->total_size);
    appendf(&b, "compress-type=%s\nencrypted=%d\n[files]\n", m->compress_type,
            m->encrypted ? 1 : 0);
    for (size_t i = 0; i < m->count; i++) {
        const uw_mf_entry *e = &m->entries[i];
        encode(&b, e->path);
        char sha[65] = "-";
        if (e->type == 'f')
            uw_hex(e->sha256, 32, sha);
        appendf(&b, "\t%c\t%04o\t%" PRIu64 "\t%" PRId64 "\t%s\t%s\t%" PRIu64 "\t%s\t", e->type,
                (unsigned)e->mode, e->size, e->mtime, sha, e->type == 'f' ? e->ref : "-", e->stored,
                e->type == 'f' && e->ext[0] ? e->ext : "-");
        if (e->link)
            encode(&b, e->link);
        else
            uw_buf_append(&b, "-", 1);
        appendf(&b, "\t%s\n", e->type == 'f' && e->base[0] ? e->base : "-");
    }
    uint8_t d[32];
    char hex[65];
    uw_sha256(b.data, b.len, d);
    uw_hex(d, 32, hex);
    appendf(&b, "checksum=%s\n", hex);
    return (char *)b.data;
}

static bool valid_id(const char *s)
{
    if (!*s || strlen(s) >= UW_BACKUP_ID_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_'))
            return false;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-')
        return false;
    *out = strtoull(s, &end, 10);
    return *end == '\0';
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (!*s)
        return false;
    *out = strtoll(s, &end, 10);
    return *end == '\0';
}

static int parse_backup_kv(uw_manifest *m, const char *k, const char *v, uw_err *err)
{
    uint64_t u = 0;
    bool ok = true;
#define STR(field) snprintf(m->field, sizeof m->field, "%s", v)
    if (!strcmp(k, "format"))
        ok = !strcmp(v, "1");
    else if (!strcmp(k, "id"))
        ok = valid_id(v) && (STR(id), true);
    else if (!strcmp(k, "type"))
        ok = (!strcmp(v, "full") || !strcmp(v, "incr")) && (STR(type), true);
    else if (!strcmp(k, "prior"))
        ok = (!*v || valid_id(v)) && (STR(prior), true);
    else if (!strcmp(k, "start-lsn"))
        ok = uw_lsn_parse(v, &m->start_lsn) == 0;
    else if (!strcmp(k, "stop-lsn"))
        ok = uw_lsn_parse(v, &m->stop_lsn) == 0;
    else if (!strcmp(k, "timeline"))
        ok = parse_u64(v, &u) && u > 0 && u <= UINT32_MAX && (m->timeline = (uint32_t)u, true);
    else if (!strcmp(k, "start-wal"))
        STR(start_wal);
    else if (!strcmp(k, "stop-wal"))
        STR(stop_wal);
    else if (!strcmp(k, "start-time"))
        ok = parse_i64(v, &m->start_time);
    else if (!strcmp(k, "stop-time"))
        ok = parse_i64(v, &m->stop_time);
    else if (!strcmp(k, "duration-ms"))
        ok = parse_i64(v, &m->duration_ms);
    else if (!strcmp(k, "pg-version"))
        ok = parse_u64(v, &u) && u <= INT_MAX && (m->pg_version = (int)u, true);
    else if (!strcmp(k, "system-id"))
        ok = parse_u64(v, &m->system_id);
    else if (!strcmp(k, "wal-segment-size"))
        ok = parse_u64(v, &u) && uw_wal_seg_size_valid(u) && (m->wal_seg_size = (uint32_t)u, true);
    else if (!strcmp(k, "size"))
        ok = parse_u64(v, &m->size);
    else if (!strcmp(k, "stored"))
        ok = parse_u64(v, &m->stored);
    else if (!strcmp(k, "total-size"))
        ok = parse_u64(v, &m->total_size);
    else if (!strcmp(k, "compress-type"))
        STR(compress_type);
    else if (!strcmp(k, "encrypted"))
        m->encrypted = !strcmp(v, "1");
#undef STR
    if (!ok)
        return uw_fail(err, UW_E_REPO_FORMAT, "manifest: invalid value for '%s'", k);
    return 0;
}

static int parse_entry(uw_manifest *m, char *line, uw_err *err)
{
    char *f[12];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, "\t", &save); t && n < 12;
         t = strtok_r(NULL, "\t", &save))
        f[n++] = t;
    if (n != 11)
        return uw_fail(err, UW_E_REPO_FORMAT, "manifest: malformed file entry");
    uw_mf_entry e = {0};
    if (!decode(f[0]) || !uw_manifest_path_safe(f[0]))
        return uw_fail(err, UW_E_REPO_FORMAT, "manifest: unsafe path '%.200s'", f[0]);
    e.path = f[0];
    e.type = f[1][0];
    if (f[1][1] || (e.type != 'f' && e.type != 'd' && e.type != 'l'))
        return uw_fail(err, UW_E_REPO_FORMAT, "manifest: bad type for '%.200s'", e.path);
    char *end;
    unsigned long mode = strtoul(f[2], &end, 8);
    if (*end || mode > 07777)
        return uw_fail(err, UW_E_REPO_FORMAT, "manifest: bad mode for '%.200s'", e.path);
    e.mode = (uint32_t)mode;
    if (!parse_u64(f[3], &e.size) || !parse_i64(f[4], &e.mtime) || !parse_u64(f[7], &e.stored))
        return uw_fail(err, UW_E_REPO_FORMAT, "manifest: bad number for '%.200s'", e.path);
    if (e.type == 'f') {
        if (uw_unhex(f[5], e.sha256, 32) < 0 || !valid_id(f[6]))
            return uw_fail(err, UW_E_REPO_FORMAT,
                           "manifest: bad checksum or reference for '%.200s'", e.path);
        snprintf(e.ref, sizeof e.ref, "%s", f[6]);
        const char *ext = strcmp(f[8], "-") ? f[8] : "";
        if (strlen(ext) >= sizeof e.ext || strchr(ext, '/') || strstr(ext, ".."))
            return uw_fail(err, UW_E_REPO_FORMAT, "manifest: bad suffix for '%.200s'", e.path);
        snprintf(e.ext, sizeof e.ext, "%s", ext);
        if (strcmp(f[10], "-") != 0) {
            if (!valid_id(f[10]))
                return uw_fail(err, UW_E_REPO_FORMAT, "manifest: bad base for '%.200s'", e.path);
            snprintf(e.base, sizeof e.base, "%s", f[10]);
        }
    }
    if (e.type == 'l') {
        if (!decode(f[9]) || f[9][0] != '/')
            return uw_fail(err, UW_E_REPO_FORMAT, "manifest: bad link target for '%.200s'", e.path);
        e.link = f[9];
    }
    uw_manifest_add(m, &e);
    return 0;
}

int uw_manifest_parse(const char *text, uw_manifest *m, uw_err *err)
{
    uw_manifest_init(m);
    const char *ck = strstr(text, "\nchecksum=");
    if (!ck)
        return uw_fail(err, UW_E_REPO_FORMAT, "manifest has no checksum (truncated?)");
    ck++;
    uint8_t d[32];
    char hex[65];
    uw_sha256(text, (size_t)(ck - text), d);
    uw_hex(d, 32, hex);
    if (strncmp(ck + 9, hex, 64) != 0)
        return uw_fail(err, UW_E_REPO_FORMAT, "manifest failed its checksum (corrupt)");
    char *copy = uw_malloc((size_t)(ck - text) + 1);
    memcpy(copy, text, (size_t)(ck - text));
    copy[ck - text] = '\0';
    int section = 0, rc = 0;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        if (!strcmp(line, "[backup]")) {
            section = 1;
            continue;
        }
        if (!strcmp(line, "[files]")) {
            section = 2;
            continue;
        }
        if (section == 1) {
            char *eq = strchr(line, '=');
            if (!eq) {
                rc = uw_fail(err, UW_E_REPO_FORMAT, "manifest: malformed line");
                break;
            }
            *eq = '\0';
            rc = parse_backup_kv(m, line, eq + 1, err);
        } else if (section == 2) {
            rc = parse_entry(m, line, err);
        } else {
            rc = uw_fail(err, UW_E_REPO_FORMAT, "manifest: content outside of a section");
        }
    }
    free(copy);
    if (rc == 0 && (!m->id[0] || !m->type[0] || !m->timeline || !m->wal_seg_size))
        rc = uw_fail(err, UW_E_REPO_FORMAT, "manifest lacks id, type, timeline or segment size");
    if (rc == 0 && !strcmp(m->type, "incr") && !m->prior[0])
        rc = uw_fail(err, UW_E_REPO_FORMAT, "incremental manifest lacks its prior backup");
    if (rc < 0) {
        uw_manifest_free(m);
        return -1;
    }
    uw_manifest_sort(m);
    return 0;
}

char *uw_backup_dir(const uw_repo *r, const char *id)
{
    return uw_sprintf("%s/backup/%s", r->stanza, id);
}

int uw_backup_marker_put(uw_repo *r, const char *id, int64_t started, uw_err *err)
{
    char *path = uw_sprintf("%s/backup/%s/" UW_BACKUP_MARKER, r->stanza, id);
    char *bind = uw_sprintf(UW_BACKUP_MARKER ":%s", id);
    char *text = uw_sprintf("backup=%s\nstarted=%lld\n", id, (long long)started);
    int rc = uw_repo_meta_put(r, path, bind, text, err);
    free(text);
    free(bind);
    free(path);
    return rc;
}

int uw_backup_remove_interrupted(uw_repo *r, const char *id, uw_sweep_stats *swept, uw_err *err)
{
    char *dir = uw_backup_dir(r, id);
    int rc = uw_storage_remove_tree(r->st, dir, err);
    /* Its writers are dead (no manifest, and the caller holds the backup
     * lock): whatever they left unfinished under it goes whatever its age. */
    if (rc == 0)
        rc = uw_storage_sweep(r->st, dir, 0, swept, err);
    free(dir);
    return rc;
}

char *uw_backup_object(const uw_repo *r, const uw_mf_entry *e)
{
    return uw_sprintf("%s/backup/%s/pg_data/%s%s", r->stanza, e->ref, e->path, e->ext);
}

/* The name a manifest object is bound to: another backup's manifest cannot
 * stand in for this one. */
static char *manifest_bind(const char *id)
{
    return uw_sprintf("manifest:%s", id);
}

/* Read the manifest's text: plain (checksummed) in a plain stanza; in an
 * encrypted one an encrypted, authenticated object, so that it reveals no path,
 * size or content hash and cannot be edited without the passphrase. */
static int manifest_get(uw_repo *r, const char *id, const char *path, uw_buf *b, uw_err *err)
{
    char *bind = manifest_bind(id);
    int rc = uw_repo_meta_get(r, path, bind, UW_MANIFEST_MAX, b, err);
    free(bind);
    return rc;
}

int uw_manifest_load(uw_repo *r, const char *id, uw_manifest *m, uw_err *err)
{
    if (!valid_id(id))
        return uw_fail(err, UW_E_OPTION, "'%.100s' is not a backup id", id);
    char *path = uw_sprintf("%s/backup/%s/manifest", r->stanza, id);
    uw_buf b = {0};
    int rc;
    for (int attempt = 0;; attempt++) {
        b.len = 0;
        rc = manifest_get(r, id, path, &b, err);
        if (rc == 0 || !uw_retry_wait(attempt, err))
            break;
    }
    if (rc == 0 && memchr(b.data, '\0', b.len))
        rc = uw_fail(err, UW_E_REPO_FORMAT, "%s/%s is not a text manifest", r->st->desc, path);
    else if (rc == 0 && (rc = uw_manifest_parse(b.len ? (char *)b.data : "", m, err)) < 0)
        uw_wrap(err, "%s/%s", r->st->desc, path);
    if (rc == 0 && strcmp(m->id, id) != 0) {
        uw_manifest_free(m);
        rc =
            uw_fail(err, UW_E_REPO_FORMAT, "%s/%s describes backup '%s'", r->st->desc, path, m->id);
    }
    if (rc < 0 && err->code == UW_E_NOT_FOUND)
        uw_fail(err, UW_E_NOT_FOUND, "backup '%s' does not exist in %s (or is incomplete)", id,
                r->st->desc);
    uw_buf_free(&b);
    free(path);
    return rc;
}

int uw_manifest_save(uw_repo *r, const uw_manifest *m, uw_err *err)
{
    char *text = uw_manifest_render(m);
    char *path = uw_sprintf("%s/backup/%s/manifest", r->stanza, m->id);
    char *bind = manifest_bind(m->id);
    int rc = uw_repo_meta_put(r, path, bind, text, err);
    free(bind);
    free(path);
    free(text);
    return rc;
}

typedef struct {
    char **ids;
    int n, cap;
} id_list;

static int list_cb(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    (void)size;
    id_list *l = ctx;
    if (!is_dir || !valid_id(name))
        return 0;
    if (l->n + 1 >= l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ids = uw_realloc(l->ids, (size_t)l->cap * sizeof(char *));
    }
    l->ids[l->n++] = uw_strdup(name);
    return 0;
}

static int by_stop(const void *a, const void *b)
{
    const uw_manifest *x = a, *y = b;
    if (x->stop_lsn != y->stop_lsn)
        return x->stop_lsn < y->stop_lsn ? -1 : 1;
    return strcmp(x->id, y->id);
}

int uw_backups_list(uw_repo *r, uw_manifest **list, int *count, char ***incomplete, uw_err *err)
{
    char *dir = uw_sprintf("%s/backup", r->stanza);
    id_list l = {0};
    int rc = uw_storage_list(r->st, dir, list_cb, &l, err);
    free(dir);
    uw_manifest *out = uw_calloc((size_t)l.n + 1, sizeof *out);
    int n = 0, ni = 0;
    char **inc = uw_calloc((size_t)l.n + 1, sizeof(char *));
    for (int i = 0; rc == 0 && i < l.n; i++) {
        uw_err e;
        if (uw_manifest_load(r, l.ids[i], &out[n], &e) == 0) {
            /* Headers only (count stays): a repository holds many backups of
             * many files, and callers load the one manifest they use. */
            uw_manifest *m = &out[n++];
            for (size_t k = 0; k < m->count; k++) {
                free(m->entries[k].path);
                free(m->entries[k].link);
            }
            free(m->entries);
            m->entries = NULL;
            m->cap = 0;
        } else if (e.code == UW_E_NOT_FOUND) {
            inc[ni++] = uw_strdup(l.ids[i]);
        } else {
            *err = e;
            rc = -1;
        }
    }
    for (int i = 0; i < l.n; i++)
        free(l.ids[i]);
    free(l.ids);
    if (rc < 0) {
        uw_backups_free(out, n);
        for (int i = 0; i < ni; i++)
            free(inc[i]);
        free(inc);
        return -1;
    }
    qsort(out, (size_t)n, sizeof *out, by_stop);
    *list = out;
    *count = n;
    if (incomplete)
        *incomplete = inc;
    else {
        for (int i = 0; i < ni; i++)
            free(inc[i]);
        free(inc);
    }
    return 0;
}

void uw_backups_free(uw_manifest *list, int count)
{
    for (int i = 0; i < count; i++)
        uw_manifest_free(&list[i]);
    free(list);
}
