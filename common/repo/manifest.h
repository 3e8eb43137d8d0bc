/* Backup manifests: everything a restore, a verification or a retention pass
 * needs to know about one base backup, written last so that a backup without a
 * manifest is by definition incomplete.
 *
 * Stored at <stanza>/backup/<id>/manifest as text: a [backup] section of
 * key=value lines, a [files] section of tab-separated entries, and a final
 * checksum=<sha256 of everything before it> line. In an encrypted stanza that
 * text is stored as an encrypted object (io/object.h) bound to "manifest:<id>". Paths are percent-encoded and
 * validated on load (no absolute paths, no "..", no empty components), so a
 * tampered manifest cannot make a restore write outside the data directory.
 *
 * File contents live at <stanza>/backup/<ref>/pg_data/<path><ext>, where <ref>
 * is the backup that stored them: an incremental backup refers to unchanged
 * files of earlier backups in its chain. */
#ifndef UW_MANIFEST_H
#define UW_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "repo/repo.h"

#define UW_BACKUP_ID_MAX 64
/* Most bytes a manifest may have (read from an untrusted repository). */
#define UW_MANIFEST_MAX (512ull << 20)

typedef struct {
    char *path;         /* relative to the data directory: "base/5/1259", "pg_tblspc/16385" */
    char type;          /* 'f' file, 'd' directory, 'l' symlink (tablespaces) */
    uint32_t mode;      /* permission bits */
    uint64_t size;      /* original size (files) */
    int64_t mtime;      /* unix seconds */
    uint8_t sha256[32]; /* original content (files) */
    char ref[UW_BACKUP_ID_MAX]; /* backup holding the content (files) */
    uint64_t stored;            /* stored object size (files) */
    char ext[24];               /* object suffix: "", ".zst", ".zst.enc" (files) */
    char *link;                 /* symlink target (type 'l') */
    /* Block-level incremental: when set, the object holds only the pages that
     * changed, and the rest of the file is the entry for the same path in the
     * manifest of backup `base` (which may itself be a delta). */
    char base[UW_BACKUP_ID_MAX];
} uw_mf_entry;

typedef struct {
    char id[UW_BACKUP_ID_MAX];
    char type[8];                 /* "full" | "incr" */
    char prior[UW_BACKUP_ID_MAX]; /* incr: the backup it was taken against */
    uint64_t start_lsn, stop_lsn;
    uint32_t timeline;
    char start_wal[32], stop_wal[32];
    int64_t start_time, stop_time; /* unix seconds */
    int64_t duration_ms;
    int pg_version;
    uint64_t system_id;
    uint32_t wal_seg_size;
    uint64_t size, stored; /* sums over files stored by THIS backup */
    uint64_t total_size;   /* sum of all file sizes (the restored size) */
    char compress_type[16];
    bool encrypted;
    uw_mf_entry *entries;
    size_t count, cap;
} uw_manifest;

void uw_manifest_init(uw_manifest *m);
void uw_manifest_free(uw_manifest *m);
/* Copies the entry's strings. */
void uw_manifest_add(uw_manifest *m, const uw_mf_entry *e);
/* Sort entries by path (directories before their contents). Needed before find. */
void uw_manifest_sort(uw_manifest *m);
const uw_mf_entry *uw_manifest_find(const uw_manifest *m, const char *path);

char *uw_manifest_render(const uw_manifest *m);
/* Parses and validates; any problem is UW_E_REPO_FORMAT with a one-line cause. */
int uw_manifest_parse(const char *text, uw_manifest *m, uw_err *err);
/* A relative path that stays inside the data directory. */
bool uw_manifest_path_safe(const char *path);

/* Repository helpers. */
char *uw_backup_dir(const uw_repo *r, const char *id);          /* <stanza>/backup/<id> */
char *uw_backup_object(const uw_repo *r, const uw_mf_entry *e); /* content of a file entry */
/* The marker a backup writes before any data: <stanza>/backup/<id>/started
 * ("backup=<id>", "started=<unix time>"; stored as small metadata, encrypted
 * in an encrypted stanza, bound to "started:<id>"). It makes the backup's
 * directory appear in a listing of <stanza>/backup with a delimiter even when
 * the backup is killed before its manifest: an object store lists a prefix
 * only where an object sits at its first level (s3rver does so strictly),
 * and the killed backup's files all sit deeper, under pg_data/. A directory
 * with the marker and no manifest is an interrupted backup, as any other
 * directory without a manifest. */
#define UW_BACKUP_MARKER "started"
int uw_backup_marker_put(uw_repo *r, const char *id, int64_t started, uw_err *err);
/* Remove interrupted backup `id` whole: every object under its directory,
 * its writers' temporaries and unfinished multipart uploads (counted into
 * *swept). The caller holds the backup lock. */
int uw_backup_remove_interrupted(uw_repo *r, const char *id, uw_sweep_stats *swept, uw_err *err);
int uw_manifest_load(uw_repo *r, const char *id, uw_manifest *m, uw_err *err);
int uw_manifest_save(uw_repo *r, const uw_manifest *m, uw_err *err);
/* Complete backups (those with a valid manifest), oldest first by stop time,
 * headers only: `entries` is NULL (`count` is kept); load a backup's files
 * with uw_manifest_load.
 * Directories without a manifest are reported through `incomplete` (may be NULL)
 * as a NULL-terminated list of ids, for cleanup. */
int uw_backups_list(uw_repo *r, uw_manifest **list, int *count, char ***incomplete, uw_err *err);
void uw_backups_free(uw_manifest *list, int count);

#endif
