#include "work/push_set.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static int check_same_cluster(const uw_push_set *s, uw_err *err)
{
    for (int i = 1; i < s->n; i++)
        if (s->repos[i].info.system_id != s->repos[0].info.system_id)
            return uw_fail(err, UW_E_STANZA, "stanza '%s' differs between %s and %s",
                           s->repos[0].stanza, s->repos[0].st->desc, s->repos[i].st->desc);
    return 0;
}

/* The checksum of stanza.info as it is now; -1 when it cannot be read (the
 * caller then loads it, which reports why with uw_repo_load's own words). */
static int info_checksum(uw_repo *r, uint8_t out[32])
{
    uw_buf buf = {0};
    char *path = uw_sprintf("%s/stanza.info", r->stanza);
    uw_err e;
    uw_err_clear(&e);
    int rc = uw_storage_get_max(r->st, path, &buf, UW_STANZA_INFO_MAX, &e);
    if (rc == 0)
        uw_sha256(buf.data ? buf.data : (const uint8_t *)"", buf.len, out);
    uw_buf_free(&buf);
    free(path);
    return rc;
}

/* (Re)load one repository's stanza from scratch and remember its checksum. */
static int load_one(const uw_config *cfg, uw_push_set *s, int i, uw_err *err)
{
    uw_repo *r = &s->repos[i];
    uw_key_wipe(&r->key);
    r->have_key = r->have_info = false;
    if (uw_repo_load(r, cfg, err) < 0)
        return -1;
    /* Read once more for the checksum: a change in between only costs a
     * reload at the next refresh. */
    if (s->info_sha && info_checksum(r, s->info_sha[i]) < 0)
        memset(s->info_sha[i], 0, 32);
    return 0;
}

int uw_push_set_open(const uw_config *cfg, uw_push_set *s, bool track, uw_err *err)
{
    memset(s, 0, sizeof *s);
    if (uw_repos_open(cfg, &s->repos, &s->n, err) < 0) {
        s->repos = NULL;
        s->n = 0;
        return -1;
    }
    if (track)
        s->info_sha = uw_calloc((size_t)s->n, sizeof *s->info_sha);
    for (int i = 0; i < s->n; i++)
        if (load_one(cfg, s, i, err) < 0) {
            uw_push_set_close(s);
            return -1;
        }
    if (check_same_cluster(s, err) < 0) {
        uw_push_set_close(s);
        return -1;
    }
    return 0;
}

void uw_push_set_close(uw_push_set *s)
{
    if (s->repos)
        uw_repos_close(s->repos, s->n);
    free(s->info_sha);
    memset(s, 0, sizeof *s);
}

int uw_push_set_refresh(const uw_config *cfg, uw_push_set *s, uw_err *err)
{
    if (!s->info_sha)
        return 0;
    for (int i = 0; i < s->n; i++) {
        uint8_t now[32];
        if (info_checksum(&s->repos[i], now) == 0 && memcmp(now, s->info_sha[i], 32) == 0)
            continue;
        uw_log(UW_LOG_DETAIL, "stanza info of %s changed or unreadable: loading it again",
               s->repos[i].st->desc);
        if (load_one(cfg, s, i, err) < 0)
            return -1;
    }
    return check_same_cluster(s, err);
}

int uw_push_file(const uw_config *cfg, uw_push_set *s, const char *path, int threads,
                 uw_push_job *job, uw_err *err)
{
    const char *slash = strrchr(path, '/');
    memset(job, 0, sizeof *job);
    job->path = path;
    job->name = slash ? slash + 1 : path;
    job->threads = threads;
    /* One repository that can rename: read, hash and compress in one pass,
     * unless the name is already taken (then compare checksums first). */
    bool one_pass = s->n == 1 && uw_push_single_pass_ok(&s->repos[0]);
    if (one_pass) {
        char *existing = NULL, sha[65];
        int found = uw_repo_wal_find(&s->repos[0], job->name, &existing, sha, err);
        free(existing);
        if (found < 0)
            return -1;
        one_pass = !found;
    }
    if (uw_push_prepare(cfg, &s->repos[0], job, !one_pass, err) < 0)
        return -1;
    for (int i = 0; i < s->n; i++) {
        double t0 = uw_now_ms();
        int already = 0;
        uint64_t stored = 0;
        if ((one_pass ? uw_push_single_pass(&s->repos[i], job, &already, &stored, err)
                      : uw_push_one(&s->repos[i], job, &already, &stored, err)) < 0)
            return -1;
        if (already)
            uw_log(UW_LOG_INFO, "%s already archived in %s with the same checksum", job->name,
                   s->repos[i].st->desc);
        else
            uw_log(UW_LOG_INFO, "pushed %s to %s (%llu -> %llu bytes, %.0f ms)", job->name,
                   s->repos[i].st->desc, (unsigned long long)job->size, (unsigned long long)stored,
                   uw_now_ms() - t0);
    }
    return 0;
}

int uw_push_threads(int workers)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long t = cpus / (workers > 0 ? workers : 1);
    return t < 1 ? 1 : t > 4 ? 4 : (int)t;
}
