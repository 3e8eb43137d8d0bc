/* libpq wrapper: connection from the stanza's pg-* options (and PG* variables
 * for whatever they leave unset), and the few queries the commands need. */
#ifndef UW_PG_H
#define UW_PG_H

#include <libpq-fe.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

typedef struct {
    uint64_t system_id;
    int version_num;   /* server_version_num, e.g. 150018 */
    uint32_t wal_seg_size;
    char data_directory[4096];
} uw_pg_cluster;

PGconn *uw_pg_connect(const uw_config *cfg, uw_err *err);
/* Run a query expecting tuples; on error returns NULL with the server message. */
PGresult *uw_pg_query(PGconn *conn, const char *sql, uw_err *err);
int uw_pg_exec(PGconn *conn, const char *sql, uw_err *err);
int uw_pg_cluster_info(PGconn *conn, uw_pg_cluster *out, uw_err *err);
/* System identifier from <pgdata>/global/pg_control (its first field). */
int uw_pg_control_system_id(const char *pgdata, uint64_t *sysid, uw_err *err);

#endif
