/* The cache of verified objects that makes `ue-pitr verify` incremental.
 *
 *   <spool-path>/<stanza>/verify/cache      (directory 0700, file 0600)
 *
 * One line per object that an earlier run read and found sound:
 *
 *   <repo>\t<size>\t<sha256 of the content>\t<change identity>\t<path>\n
 *
 * The change identity is what the storage listing gives for the object
 * (uw_storage_list_ident: mtime, ctime and inode on posix; ETag and
 * Last-Modified on S3 and Azure). An object whose repository, path, size and
 * identity are all unchanged was not rewritten since it was verified, so it
 * need not be read again; any rewrite (even of one byte in place) changes the
 * identity. An object without an identity is never skipped. The file is
 * rewritten whole and atomically at the end of a run with exactly the objects
 * found sound by it, so removed or damaged objects drop out. A cache that
 * cannot be parsed is ignored (everything is read again), never trusted. */
#ifndef UW_VERIFY_CACHE_H
#define UW_VERIFY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"

typedef struct {
    int repo;
    uint64_t size;
    char sha256[65];
    char *ident;
    char *path;
} uw_vc_entry;

typedef struct {
    uw_vc_entry *e;
    size_t n, cap;
    bool sorted;
} uw_verify_cache;

/* <spool-path>/<stanza>/verify (caller frees). */
char *uw_verify_cache_dir(const uw_config *cfg, const char *stanza);
/* Load the cache (missing or malformed: empty, with a warning for malformed). */
void uw_verify_cache_load(uw_verify_cache *c, const char *dir);
/* Add an entry (strings copied). */
void uw_verify_cache_add(uw_verify_cache *c, int repo, const char *path, uint64_t size,
                         const char *ident, const char *sha256);
/* The entry for (repo, path) when its size and identity are unchanged (and
 * the identity is not empty), or NULL. Not thread-safe against add. */
const uw_vc_entry *uw_verify_cache_match(uw_verify_cache *c, int repo, const char *path,
                                         uint64_t size, const char *ident);
/* Write the cache atomically into dir (created 0700), file mode 0600. */
int uw_verify_cache_save(const uw_verify_cache *c, const char *dir, uw_err *err);
void uw_verify_cache_free(uw_verify_cache *c);
/* The entries of repo whose path begins with prefix: [*first, *first + n). */
size_t uw_verify_cache_range(uw_verify_cache *c, int repo, const char *prefix, size_t *first);

/* A new cache written as a stream, so that a run over hundreds of thousands
 * of objects holds none of them: lines go to a temporary file in dir (made
 * 0700), which replaces the cache atomically at commit; abort (or a failed
 * commit) leaves the old cache as it was. */
typedef struct uw_vc_writer uw_vc_writer;
uw_vc_writer *uw_verify_cache_writer(const char *dir, uw_err *err);
/* One line; a write error is kept and returned by commit. */
void uw_verify_cache_put(uw_vc_writer *w, int repo, const char *path, uint64_t size,
                         const char *ident, const char *sha256);
/* Finish and free w (NULL: nothing, 0). */
int uw_verify_cache_commit(uw_vc_writer *w, uw_err *err);
void uw_verify_cache_abort(uw_vc_writer *w);

#endif
