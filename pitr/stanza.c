/* stanza-create: record which cluster a stanza belongs to, so that every later
 * push, fetch and restore can refuse another cluster's files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cmd.h"
#include "pg/pg.h"
#include "pitr.h"
#include "repo/repo.h"

int pitr_stanza_create(const uw_config *cfg, uw_err *err)
{
    if (uw_repo_check_writer(cfg, err) < 0)
        return -1;
    PGconn *conn = uw_pg_connect(cfg, err);
    if (!conn)
        return -1;
    uw_pg_cluster c;
    int rc = uw_pg_cluster_info(conn, &c, err);
    PQfinish(conn);
    if (rc < 0)
        return -1;
    const char *pgpath = uw_cfg_str(cfg, UW_OPT_PG_PATH);
    if (pgpath) {
        uint64_t sysid;
        if (uw_pg_control_system_id(pgpath, &sysid, err) < 0)
            return uw_wrap(err, "option 'pg-path'");
        if (sysid != c.system_id)
            return uw_fail(err, UW_E_STANZA,
                           "pg-path '%s' holds database system %llu but the server on the "
                           "configured port is %llu",
                           pgpath, (unsigned long long)sysid, (unsigned long long)c.system_id);
    }
    if (!uw_wal_seg_size_valid(c.wal_seg_size))
        return uw_fail(err, UW_E_PG, "unexpected wal_segment_size %u", c.wal_seg_size);
    uw_repo *repos;
    int n;
    if (uw_repos_open(cfg, &repos, &n, err) < 0)
        return -1;
    const char *cipher = uw_cfg_str(cfg, UW_OPT_CIPHER_TYPE);
    for (int i = 0; i < n && rc == 0; i++) {
        uw_repo *r = &repos[i];
        char *path = uw_sprintf("%s/stanza.info", r->stanza);
        int exists = uw_storage_stat(r->st, path, NULL, err);
        free(path);
        if (exists < 0) {
            rc = -1;
            break;
        }
        if (exists) {
            if ((rc = uw_repo_load(r, cfg, err)) < 0)
                break;
            if (r->info.system_id != c.system_id) {
                rc = uw_fail(err, UW_E_STANZA,
                             "stanza '%s' in %s belongs to database system %llu, not to this "
                             "cluster (%llu): refusing to re-create it",
                             r->stanza, r->st->desc, (unsigned long long)r->info.system_id,
                             (unsigned long long)c.system_id);
                break;
            }
            if (strcmp(r->info.cipher_type, cipher) != 0)
                uw_log(UW_LOG_WARN, "stanza '%s' in %s keeps cipher-type %s (configured: %s)",
                       r->stanza, r->st->desc, r->info.cipher_type, cipher);
            uw_log(UW_LOG_INFO, "stanza '%s' already exists in %s for system %llu", r->stanza,
                   r->st->desc, (unsigned long long)c.system_id);
            continue;
        }
        uw_stanza_info info = {0};
        info.system_id = c.system_id;
        info.pg_version = c.version_num / 10000;
        info.wal_seg_size = c.wal_seg_size;
        info.created = (int64_t)time(NULL);
        snprintf(info.cipher_type, sizeof info.cipher_type, "%s", cipher);
        uw_key key = {0};
        bool enc = strcmp(cipher, "none") != 0;
        if (enc) {
            uw_kdf_params_new(&info.kdf);
            if ((rc = uw_kdf_derive(uw_cfg_str(cfg, UW_OPT_CIPHER_PASS), &info.kdf, &key, err)) < 0)
                break;
            uw_key_check(&key, info.key_check);
        }
        rc = uw_repo_save_info(r, &info, enc ? &key : NULL, err);
        uw_key_wipe(&key);
        if (rc < 0)
            break;
        uw_log(UW_LOG_INFO,
               "created stanza '%s' in %s (system %llu, PostgreSQL %d, %u-byte WAL "
               "segments, cipher %s)",
               r->stanza, r->st->desc, (unsigned long long)c.system_id, info.pg_version,
               c.wal_seg_size, cipher);
    }
    uw_repos_close(repos, n);
    return rc;
}
