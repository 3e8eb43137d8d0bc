/* What a manifest may make a restore create. The repository is untrusted
 * input: a manifest could ask for a link anywhere (and files written through
 * it) or for set-id bits. A restore creates links only where PostgreSQL has
 * them (pg_tblspc/<oid>, and pg_wal when the backup had it linked), to clean
 * absolute locations, and gives files and directories only the permission
 * bits a data directory holds: 0700/0600, or 0750/0640 with group access.
 * Tablespace locations can be moved with --tablespace-map OID=DIR and
 * --tablespace-map-all DIR (DIR/<oid>), as in pgBackRest (which names the
 * subdirectory after the tablespace when it knows the name; a manifest here
 * records only the OID).
 *
 * Pure: the manifest is rewritten in memory (link targets, modes), nothing
 * is read or written on disk. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "restore.h"

/* How many entries with unusual modes are named before the rest is counted. */
#define MODE_WARNINGS 5

/* An OID as PostgreSQL prints it: decimal, no leading zero, 1..4294967295. */
static bool oid_valid(const char *s, size_t len)
{
    if (len == 0 || len > 10 || s[0] == '0')
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v <= UINT32_MAX;
}

bool restore_link_allowed(const char *path)
{
    if (!strcmp(path, "pg_wal"))
        return true;
    return !strncmp(path, "pg_tblspc/", 10) && oid_valid(path + 10, strlen(path + 10));
}

bool restore_location_valid(const char *dir)
{
    if (!dir || dir[0] != '/' || !dir[1] || strlen(dir) >= RESTORE_LOCATION_MAX)
        return false;
    for (const unsigned char *c = (const unsigned char *)dir; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    /* Every component after the leading '/' is a name: no "", ".", "..". */
    for (const char *p = dir + 1;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

uint32_t restore_mode_mask(char type, uint32_t mode)
{
    return mode & (type == 'f' ? 0640u : 0750u);
}

/* ------------------------------------------------------- tablespace map -- */

void restore_ts_map_free(restore_ts_map *map)
{
    for (size_t i = 0; i < map->n; i++) {
        free(map->maps[i].oid);
        free(map->maps[i].dir);
    }
    free(map->maps);
    free(map->all);
    memset(map, 0, sizeof *map);
}

static int map_one(restore_ts_map *map, const char *spec, size_t len, uw_err *err)
{
    const char *eq = memchr(spec, '=', len);
    char *dir = eq ? uw_sprintf("%.*s", (int)(len - (size_t)(eq - spec) - 1), eq + 1) : NULL;
    if (!eq || !oid_valid(spec, (size_t)(eq - spec)) || !restore_location_valid(dir)) {
        free(dir);
        return uw_fail(err, UW_E_OPTION,
                       "option 'tablespace-map': '%.*s' is not OID=DIR (a tablespace's OID, and "
                       "an absolute directory without '.' or '..' components)",
                       (int)len, spec);
    }
    char *oid = uw_sprintf("%.*s", (int)(eq - spec), spec);
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->maps[i].oid, oid)) {
            uw_fail(err, UW_E_OPTION, "option 'tablespace-map': tablespace %s is mapped twice",
                    oid);
            free(oid);
            free(dir);
            return -1;
        }
    map->maps = uw_realloc(map->maps, (map->n + 1) * sizeof *map->maps);
    map->maps[map->n++] = (restore_ts_mapping){oid, dir, false};
    return 0;
}

int restore_ts_map_parse(const char *list, const char *all, restore_ts_map *map, uw_err *err)
{
    memset(map, 0, sizeof *map);
    for (const char *p = list; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (map_one(map, p, len, err) < 0) {
            restore_ts_map_free(map);
            return -1;
        }
        p = nl ? nl + 1 : p + len;
    }
    if (all && !restore_location_valid(all)) {
        restore_ts_map_free(map);
        return uw_fail(err, UW_E_OPTION,
                       "option 'tablespace-map-all': '%s' is not an absolute directory without "
                       "'.' or '..' components",
                       all);
    }
    map->all = all ? uw_strdup(all) : NULL;
    return 0;
}

/* Where tablespace `oid` goes by the map, or NULL: where the backup says. */
static char *mapped(restore_ts_map *map, const char *oid)
{
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->maps[i].oid, oid)) {
            map->maps[i].used = true;
            return uw_strdup(map->maps[i].dir);
        }
    return map->all ? uw_sprintf("%s/%s", map->all, oid) : NULL;
}

/* A map entry naming a tablespace the backup does not have is a mistake
 * (a typo would otherwise restore that tablespace at its old location). */
static int unused_map(const uw_manifest *m, const restore_ts_map *map, uw_err *err)
{
    for (size_t i = 0; i < map->n; i++) {
        if (map->maps[i].used)
            continue;
        uw_buf have = {0};
        for (size_t k = 0; k < m->count; k++) {
            const uw_mf_entry *e = &m->entries[k];
            if (e->type != 'l' || strncmp(e->path, "pg_tblspc/", 10) != 0)
                continue;
            if (have.len)
                uw_buf_append(&have, ", ", 2);
            uw_buf_append(&have, e->path + 10, strlen(e->path + 10));
        }
        uw_fail(err, UW_E_RESTORE,
                "option 'tablespace-map': backup %s has no tablespace %s (its tablespaces: %s)",
                m->id, map->maps[i].oid, have.len ? (char *)have.data : "none");
        uw_buf_free(&have);
        return -1;
    }
    return 0;
}

void restore_tablespace_map(const uw_manifest *m, uw_buf *out)
{
    for (size_t i = 0; i < m->count; i++) {
        const uw_mf_entry *e = &m->entries[i];
        if (e->type != 'l' || strncmp(e->path, "pg_tblspc/", 10) != 0)
            continue;
        uw_buf_append(out, e->path + 10, strlen(e->path + 10));
        uw_buf_append(out, " ", 1);
        /* As pg_backup_stop writes it: newlines and backslashes escaped. */
        for (const char *c = e->link; *c; c++) {
            if (*c == '\n' || *c == '\r' || *c == '\\')
                uw_buf_append(out, "\\", 1);
            uw_buf_append(out, c, 1);
        }
        uw_buf_append(out, "\n", 1);
    }
}

/* ------------------------------------------------------------ confining -- */

static int confine_link(uw_manifest *m, uw_mf_entry *e, restore_ts_map *map, uw_err *err)
{
    if (!restore_link_allowed(e->path))
        return uw_fail(err, UW_E_REPO_FORMAT,
                       "manifest of backup %s: link '%s' -> '%s' is refused: a restore creates "
                       "links only for tablespaces (pg_tblspc/<oid>) and pg_wal",
                       m->id, e->path, e->link);
    if (!restore_location_valid(e->link))
        return uw_fail(err, UW_E_REPO_FORMAT,
                       "manifest of backup %s: link '%s' points to '%s', which is not an absolute "
                       "path without '.' or '..' components",
                       m->id, e->path, e->link);
    if (strcmp(e->path, "pg_wal") == 0)
        return 0;
    char *dir = mapped(map, e->path + 10);
    if (dir) {
        uw_log(UW_LOG_INFO, "tablespace %s ('%s'): restoring into '%s'", e->path + 10, e->link,
               dir);
        free(e->link);
        e->link = dir;
    }
    return 0;
}

/* Set-id and sticky bits, and write access for group or others, have no
 * place in a data directory: said, as they suggest a tampered manifest. Read
 * access for others (a 0644 postgresql.conf) is dropped silently. */
static void confine_mode(const uw_manifest *m, uw_mf_entry *e, int *unusual)
{
    uint32_t masked = restore_mode_mask(e->type, e->mode);
    if ((e->mode & 07022) && ++*unusual <= MODE_WARNINGS)
        uw_log(UW_LOG_WARN,
               "manifest of backup %s: '%s' has mode %#" PRIo32 ", restored as %#" PRIo32
               " (a data directory has no set-id, sticky or group/world-writable entries)",
               m->id, e->path, e->mode, masked);
    e->mode = masked;
}

int restore_confine(uw_manifest *m, restore_ts_map *map, uw_err *err)
{
    int unusual = 0;
    for (size_t i = 0; i < m->count; i++) {
        uw_mf_entry *e = &m->entries[i];
        if (e->type == 'l') {
            if (confine_link(m, e, map, err) < 0)
                return -1;
        } else {
            confine_mode(m, e, &unusual);
        }
    }
    if (unusual > MODE_WARNINGS)
        uw_log(UW_LOG_WARN, "manifest of backup %s: %d more entries with such modes", m->id,
               unusual - MODE_WARNINGS);
    return unused_map(m, map, err);
}
