/* libpq wrapper: connection from the stanza's pg-* options (and PG* variables
 * for whatever they leave unset), and the few queries the commands need. */
#ifndef UW_PG_H
#define UW_PG_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"

/* libpq is loaded on first use (uw_pq_load), not linked: with its Kerberos and
 * LDAP dependencies it would cost every run ~4 MiB of resident memory and
 * start-up time, and restores without --start never talk to a server.
 * Callers use the usual PQ* names, which resolve to these pointers. */
typedef struct {
    PGconn *(*connectdbParams)(const char *const *, const char *const *, int);
    ConnStatusType (*status)(const PGconn *);
    char *(*errorMessage)(const PGconn *);
    void (*finish)(PGconn *);
    PGresult *(*exec)(PGconn *, const char *);
    ExecStatusType (*resultStatus)(const PGresult *);
    int (*ntuples)(const PGresult *);
    char *(*getvalue)(const PGresult *, int, int);
    int (*getisnull)(const PGresult *, int, int);
    void (*clear)(PGresult *);
} uw_pq_api;
extern uw_pq_api uw_pq;
/* Load libpq once (thread-safe); -1 with an error if it is not installed. */
int uw_pq_load(uw_err *err);
#define PQconnectdbParams uw_pq.connectdbParams
#define PQstatus uw_pq.status
#define PQerrorMessage uw_pq.errorMessage
#define PQfinish uw_pq.finish
#define PQexec uw_pq.exec
#define PQresultStatus uw_pq.resultStatus
#define PQntuples uw_pq.ntuples
#define PQgetvalue uw_pq.getvalue
#define PQgetisnull uw_pq.getisnull
#define PQclear uw_pq.clear

typedef struct {
    uint64_t system_id;
    int version_num; /* server_version_num, e.g. 150018 */
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
