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

/* Called once per entry directly under the listed directory. Return non-zero to stop. */
typedef int (*uw_list_cb)(void *ctx, const char *name, bool is_dir, uint64_t size);

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
} uw_storage_driver;

struct uw_storage {
    const uw_storage_driver *drv;
    int repo;   /* 1-based repository index */
    char *desc; /* for messages: "repo1 (posix:/var/lib/ue-wal)" */
    void *impl;
};

/* Open repository N as configured (repoN-type, ...). */
uw_storage *uw_storage_open(const uw_config *cfg, int repo, uw_err *err);
void uw_storage_close(uw_storage *st);

/* Convenience wrappers that add the repository to error messages. */
int uw_storage_stat(uw_storage *st, const char *path, uint64_t *size, uw_err *err);
int uw_storage_list(uw_storage *st, const char *dir, uw_list_cb cb, void *ctx, uw_err *err);
int uw_storage_read(uw_storage *st, const char *path, uw_sink *dest, uw_err *err);
uw_sink *uw_storage_write(uw_storage *st, const char *path, uw_err *err);
int uw_storage_remove(uw_storage *st, const char *path, uw_err *err);
/* Remove a directory and everything under it (missing is not an error). */
int uw_storage_remove_tree(uw_storage *st, const char *dir, uw_err *err);
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

#endif
