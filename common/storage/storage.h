/* One storage interface, many drivers. Commands and workers never look at the
 * repository type: they call through this table. Paths are relative to the
 * repository root and use '/'. */
#ifndef UW_STORAGE_H
#define UW_STORAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "io/sink.h"

/* Feature bits a driver declares. */
#define UW_STORAGE_FEAT_DIRS 0x01 /* real directories (posix); object stores have prefixes */
#define UW_STORAGE_FEAT_FSYNC 0x02

typedef struct uw_storage uw_storage;
typedef struct uw_sweep_stats uw_sweep_stats; /* below, with uw_storage_sweep */

/* Called once per entry directly under the listed directory. Return non-zero to stop. */
typedef int (*uw_list_cb)(void *ctx, const char *name, bool is_dir, uint64_t size);

/* While a list callback runs, the change identity of its entry as the listing
 * gives it (posix: modification and change times and inode; S3: ETag and
 * LastModified; Azure: Etag and Last-Modified), "" when the driver has none.
 * It changes whenever the object is rewritten, even in place under the same
 * name and size, so a caller can tell an object it already read from one to
 * read again (ue-pitr verify's cache) without widening every callback.
 * Thread-local: valid only inside the callback. */
const char *uw_storage_list_ident(void);
/* For drivers: set the identity of the entry about to be delivered. */
void uw_storage_set_list_ident(const char *ident);
/* The same from a file's times and inode (posix), formatted only if asked:
 * "m<mtime>.<ns>-c<ctime>.<ns>-i<inode>". */
void uw_storage_set_list_ident_stat(int64_t mtime, long mtime_ns, int64_t ctime, long ctime_ns,
                                    uint64_t ino);

typedef struct {
    const char *type; /* repoN-type value */
    unsigned features;
    int (*open)(uw_storage *st, const uw_config *cfg, int repo, uw_err *err);
    /* 1 exists (size filled), 0 missing, -1 error */
    int (*stat)(uw_storage *st, const char *path, uint64_t *size, uw_err *err);
    /* Entries directly under dir; a missing dir is an empty list. */
    int (*list)(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err);
    /* Stream the object into dest without finishing it. Missing: UW_E_NOT_FOUND. */
    int (*read)(uw_storage *st, const char *path, uw_sink *dest, uw_err *err);
    /* A sink that makes path appear atomically when finished, never partially. */
    uw_sink *(*write)(uw_storage *st, const char *path, uw_err *err);
    /* Missing is not an error. */
    int (*remove)(uw_storage *st, const char *path, uw_err *err);
    void (*close)(uw_storage *st);
    /* Optional (NULL: not supported): atomically and durably rename an object.
     * Lets a writer choose the final name after the content (and its
     * checksum) went through in one pass. */
    int (*rename)(uw_storage *st, const char *from, const char *to, uw_err *err);
    /* Optional (NULL: uw_storage_list_tree walks with list): every object
     * under dir at any depth, in pages of a flat listing instead of one
     * request per directory; cb gets the path relative to dir and is never
     * called for directories. */
    int (*list_tree)(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err);
    /* Optional (NULL: nothing to sweep): remove what killed writers left
     * under dir that is no object (uw_storage_sweep). */
    int (*sweep)(uw_storage *st, const char *dir, int64_t max_age, uw_sweep_stats *stats,
                 uw_err *err);
    /* Optional (NULL: list, filtered): the entries of dir whose names begin
     * with prefix, without examining the others (posix: no stat of every
     * file of a WAL directory holding thousands to find one). */
    int (*list_prefix)(uw_storage *st, const char *dir, const char *prefix, uw_list_cb cb,
                       void *ctx, uw_err *err);
    /* Optional (NULL: nothing to do, e.g. an object store): make every write
     * finished so far under dir durable (posix: syncfs). */
    int (*sync)(uw_storage *st, const char *dir, uw_err *err);
} uw_storage_driver;

struct uw_storage {
    const uw_storage_driver *drv;
    int repo;   /* 1-based repository index */
    char *desc; /* for messages: "repo1 (posix:/var/lib/ue-wal)" */
    void *impl;
    /* Set by a caller that writes many objects and makes them durable at
     * once with uw_storage_sync before anything refers to them (a backup's
     * files, before its manifest): posix writes then skip their fsyncs of
     * the file and of its directory. Still atomic (temporary + rename). */
    bool defer_sync;
};

/* Registers the drivers' types as the values of repoN-type. A constructor:
 * runs before main(); CMakeLists.txt makes every program keep it. */
void uw_storage_register_types(void);

/* Open repository N as configured (repoN-type, ...). */
uw_storage *uw_storage_open(const uw_config *cfg, int repo, uw_err *err);
void uw_storage_close(uw_storage *st);

/* Convenience wrappers that add the repository to error messages. */
int uw_storage_stat(uw_storage *st, const char *path, uint64_t *size, uw_err *err);
int uw_storage_list(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err);
/* Make the writes of a handle with defer_sync durable (see uw_storage). */
int uw_storage_sync(uw_storage *st, const char *dir, uw_err *err);
/* uw_storage_list of the entries whose names begin with prefix only. */
int uw_storage_list_prefix(uw_storage *st, const char *dir, const char *prefix, uw_list_cb cb,
                           void *ctx, uw_err *err);
/* Every object under dir, recursively (the driver's list_tree, or a walk
 * with list): cb gets the path relative to dir ("a/b/c"), with
 * uw_storage_list_ident set; never directories. */
int uw_storage_list_tree(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err);
int uw_storage_read(uw_storage *st, const char *path, uw_sink *dest, uw_err *err);
uw_sink *uw_storage_write(uw_storage *st, const char *path, uw_err *err);
int uw_storage_remove(uw_storage *st, const char *path, uw_err *err);
/* Remove a directory and everything under it (missing is not an error),
 * temporaries of interrupted writers included. Posix: a symbolic link below
 * dir stops the removal with UW_E_REPO_FORMAT naming it, and is never
 * followed. */
int uw_storage_remove_tree(uw_storage *st, const char *dir, uw_err *err);


/* Remove the objects at paths[0..n) (missing ones are not an error): one
 * DeleteObjects request per 1000 on S3, one removal after another elsewhere
 * (callers run batches in parallel, see uw_storage_remove_batch). */
int uw_storage_remove_many(uw_storage *st, const char *const *paths, size_t n, uw_err *err);
/* How many paths one uw_storage_remove_many call should get: a bulk request's
 * size where the driver has one, else a small batch for a pool worker. */
size_t uw_storage_remove_batch(const uw_storage *st);

/* Rename through the driver (it must have one), never replacing an existing
 * `to` where the driver can guarantee it (posix): then EEXIST is
 * UW_E_ARCHIVE_MISMATCH. */
int uw_storage_rename_noreplace(uw_storage *st, const char *from, const char *to, uw_err *err);

/* Temporaries: a writer stores "<name>.uwtmp.<pid>.<word>.<host>" until the
 * object is complete (never listed). One is stale, and may be removed, when
 * its owner's pid on this host no longer runs, or when it was not modified
 * for max_age seconds (a writer on another host, or an older name). */
#define UW_TEMP_MAX_AGE (6 * 3600)
struct uw_sweep_stats {
    uint64_t count, bytes; /* temporaries removed (posix) */
    uint64_t uploads;      /* unfinished S3 multipart uploads aborted */
};
/* Remove what killed writers left under dir (recursively), adding to stats;
 * each driver its own (the driver's sweep):
 *   posix  stale temporaries (above);
 *   s3     unfinished multipart uploads initiated more than max_age seconds
 *          ago (ListMultipartUploads, AbortMultipartUpload): a live writer's
 *          upload is younger, and S3 gives no owner to tell it otherwise;
 *   azure  nothing: uncommitted blocks cannot be deleted through the API
 *          without committing a blob at their name; the service discards
 *          them after 7 days.
 * max_age 0 takes everything under dir (a removed interrupted backup). */
int uw_storage_sweep(uw_storage *st, const char *dir, int64_t max_age, uw_sweep_stats *stats,
                     uw_err *err);
/* Sweep dir and log what went (info: count and bytes); a failure is only a
 * warning, the next sweep retries. `why` says where ("pusher start"). */
void uw_storage_sweep_log(uw_storage *st, const char *dir, const char *why);
/* This host's name as temporaries carry it (no dots, at most len-1 bytes). */
void uw_storage_temp_host(char *out, size_t len);
/* Whether temporary `name` (any path prefix) is stale; age in seconds. */
bool uw_storage_temp_stale(const char *name, const char *host, int64_t age, int64_t max_age);
/* "FIFO", "socket", "character device"... for messages. */
const char *uw_file_type_name(unsigned mode);
/* Read a whole small object into memory. */
int uw_storage_get(uw_storage *st, const char *path, uw_buf *out, uw_err *err);
/* The same, failing with UW_E_REPO_FORMAT as soon as more than `max` bytes
 * arrive: metadata from an untrusted repository is read with a bound. */
int uw_storage_get_max(uw_storage *st, const char *path, uw_buf *out, uint64_t max, uw_err *err);
/* Write a whole small object. */
int uw_storage_put(uw_storage *st, const char *path, const void *data, size_t len, uw_err *err);

extern const uw_storage_driver uw_storage_posix;
extern const uw_storage_driver uw_storage_azure;
extern const uw_storage_driver uw_storage_s3;
/* Optional bulk removal hooks, used by uw_storage_remove_tree when the driver
 * has one (see storage.c): remove every object under dir, recursively;
 * missing is not an error. S3: ListObjectsV2 + DeleteObjects. */
int uw_storage_s3_remove_tree(uw_storage *st, const char *dir, uw_err *err);
int uw_storage_posix_remove_tree(uw_storage *st, const char *dir, uw_err *err);
/* S3 DeleteObjects for many paths, in requests of 1000; a flat listing. */
int uw_storage_s3_remove_many(uw_storage *st, const char *const *paths, size_t n, uw_err *err);
int uw_storage_posix_sweep(uw_storage *st, const char *dir, int64_t max_age, uw_sweep_stats *stats,
                           uw_err *err);
/* The S3 driver's sweep (see uw_storage_sweep). */
int uw_storage_s3_sweep(uw_storage *st, const char *dir, int64_t max_age, uw_sweep_stats *stats,
                        uw_err *err);
/* Rename that never replaces an existing `to` (renameat2 RENAME_NOREPLACE, or
 * link+unlink where unsupported): EEXIST is UW_E_ARCHIVE_MISMATCH. */
int uw_storage_posix_rename_noreplace(uw_storage *st, const char *from, const char *to,
                                      uw_err *err);

/* Listing responses, parsed by the drivers' list calls (and fuzzed on their own,
 * tests/fuzz). S3 ListObjectsV2: cb gets each Contents key (with its size)
 * and each CommonPrefixes prefix, in full; *next is the continuation token
 * when the listing is truncated (caller frees). Azure List Blobs: cb gets the
 * names directly under prefix, relative to it (a non-zero return sets *stop);
 * *marker is the next page's marker, NULL (and *stop set) on the last page.
 * A body that is no listing is UW_E_STORAGE naming `what`. */
int uw_s3_list_parse(const char *xml, size_t len, const char *what, uw_list_cb cb, void *ctx,
                     char **next, uw_err *err);
/* S3 ListMultipartUploads: cb gets each Upload's key, upload id and
 * initiation time (Unix seconds, -1 when unreadable); *next_key and
 * *next_id (caller frees) are the next page's markers when truncated. */
typedef int (*uw_s3_upload_cb)(void *ctx, const char *key, const char *upload_id,
                               int64_t initiated);
int uw_s3_uploads_parse(const char *xml, size_t len, const char *what, uw_s3_upload_cb cb,
                        void *ctx, char **next_key, char **next_id, uw_err *err);
int uw_azure_list_parse(const char *xml, size_t len, const char *prefix, const char *what,
                        uw_list_cb cb, void *ctx, bool *stop, char **marker, uw_err *err);

#endif
