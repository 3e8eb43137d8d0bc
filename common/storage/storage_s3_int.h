/* What the S3 driver's two source files share: storage_s3.c (requests,
 * stat/list/read/remove, open/close, the driver table) and
 * storage_s3_write.c (uploads). Internal to the driver; the public part is
 * storage_s3.h and uw_storage_s3 in storage.h. */
#ifndef UW_STORAGE_S3_INT_H
#define UW_STORAGE_S3_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/http.h"
#include "storage/storage.h"

#define S3_IDLE_MAX 16

typedef struct {
    char *bucket;
    char *region;
    char *key;
    char *secret;
    char *token;
    char *base_url; /* scheme://host[:port] */
    char *host_hdr; /* Host header value, exactly what is signed */
    char *root;     /* encoded URL path of the bucket: "/bucket" or "" (host style) */
    char *prefix;   /* key prefix: "" or "some/path/" */
    size_t part_size;
    uw_http_opts opts;
    pthread_mutex_t mu;
    uw_http *idle[S3_IDLE_MAX];
    int nidle;
} s3_impl;

/* One signed request: s3_req_init, then s3_exec (any number of attempts, each
 * signed afresh), then s3_req_free. */
typedef struct {
    s3_impl *s3;
    uw_http_request req;
    char *url;
    char *path;  /* encoded URL path, signed verbatim */
    char *query; /* wire query or NULL */
    char payload_hash[65];
    char what[512];
} s3_req;

void s3_req_init(s3_req *r, s3_impl *s3, const char *method, const char *key, const char *query,
                 const void *body, size_t len, const char *what);
void s3_req_free(s3_req *r);
/* Runs the request on a pooled client; a missing bucket is UW_E_STORAGE_DENIED. */
int s3_exec(s3_impl *s3, s3_req *r, uw_http_response *resp, uw_err *err);

/* The object key of a storage path: "<prefix><path without leading '/'>". */
char *s3_full_key(const s3_impl *s3, const char *path);
void s3_md5_of(const void *data, size_t len, uint8_t out[16]);

/* The driver's write: storage_s3_write.c. */
uw_sink *s3_write(uw_storage *st, const char *path, uw_err *err);

#endif
