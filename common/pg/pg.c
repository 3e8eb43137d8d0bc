#include "pg/pg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dl.h"

uw_pq_api uw_pq;
static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static uw_err pq_load_err; /* code UW_OK once loaded */

static void pq_load_once(void)
{
    static const char *const sonames[] = {"libpq.so.5", NULL};
    static const uw_dl_lib lib = {"libpq", sonames, "install libpq5", UW_E_PG};
    const uw_dl_sym syms[] = {
#define SYM(field) {(void **)&uw_pq.field, "PQ" #field}
        SYM(connectdbParams), SYM(status),  SYM(errorMessage), SYM(finish),    SYM(exec),
        SYM(resultStatus),    SYM(ntuples), SYM(getvalue),     SYM(getisnull), SYM(clear),
#undef SYM
    };
    uw_dl_load(&lib, syms, sizeof syms / sizeof syms[0], &pq_load_err);
}

int uw_pq_load(uw_err *err)
{
    pthread_once(&pq_once, pq_load_once);
    if (pq_load_err.code == UW_OK)
        return 0;
    if (err)
        *err = pq_load_err;
    return -1;
}

/* pg-user's default: the owner of the posix repository in use (--repo, else
 * repo1), who is the user PostgreSQL runs as and archives as. False for an
 * object store or a path that does not exist (libpq's default then: PGUSER,
 * else the invoking user). */
static bool repo_owner(const uw_config *cfg, char *buf, size_t len)
{
    int repo = uw_cfg_isset(cfg, UW_OPT_REPO) ? (int)uw_cfg_int(cfg, UW_OPT_REPO) : 1;
    const char *type = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_TYPE);
    const char *path = uw_cfg_repo_str(cfg, repo, UW_OPT_REPO_PATH);
    struct stat sb;
    if ((type && strcmp(type, "posix") != 0) || !path || stat(path, &sb) < 0)
        return false;
    struct passwd pw, *pwp = NULL;
    char pwbuf[1024];
    if (getpwuid_r(sb.st_uid, &pw, pwbuf, sizeof pwbuf, &pwp) != 0 || !pwp)
        return false;
    snprintf(buf, len, "%s", pw.pw_name);
    return true;
}

PGconn *uw_pg_connect(const uw_config *cfg, uw_err *err)
{
    if (uw_pq_load(err) < 0)
        return NULL;
    const char *keys[8], *vals[8];
    int n = 0;
    char port[16];
    const char *host = uw_cfg_str(cfg, UW_OPT_PG_HOST);
    const char *sock = uw_cfg_str(cfg, UW_OPT_PG_SOCKET_PATH);
    if (uw_cfg_isset(cfg, UW_OPT_PG_HOST) || !sock)
        sock = NULL;
    if (sock || host) {
        keys[n] = "host";
        vals[n++] = sock ? sock : host;
    }
    if (uw_cfg_isset(cfg, UW_OPT_PG_PORT) || !getenv("PGPORT")) {
        snprintf(port, sizeof port, "%lld", (long long)uw_cfg_int(cfg, UW_OPT_PG_PORT));
        keys[n] = "port";
        vals[n++] = port;
    }
    char owner[256];
    if (uw_cfg_str(cfg, UW_OPT_PG_USER)) {
        keys[n] = "user";
        vals[n++] = uw_cfg_str(cfg, UW_OPT_PG_USER);
    } else if (!(getenv("PGUSER") && *getenv("PGUSER")) && repo_owner(cfg, owner, sizeof owner)) {
        keys[n] = "user";
        vals[n++] = owner;
    }
    if (uw_cfg_isset(cfg, UW_OPT_PG_DATABASE) || !getenv("PGDATABASE")) {
        keys[n] = "dbname";
        vals[n++] = uw_cfg_str(cfg, UW_OPT_PG_DATABASE);
    }
    keys[n] = "application_name";
    vals[n++] = "ue-wal";
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 0);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", conn ? PQerrorMessage(conn) : "out of memory");
        for (char *p = msg; *p; p++)
            if (*p == '\n')
                *p = *(p + 1) ? ' ' : '\0';
        uw_fail(err, UW_E_PG, "unable to connect to PostgreSQL: %s", msg);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static void one_line(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '\n')
            *p = *(p + 1) ? ' ' : '\0';
}

PGresult *uw_pg_query(PGconn *conn, const char *sql, uw_err *err)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
        one_line(msg);
        uw_fail(err, UW_E_PG, "query failed: %s", msg);
        PQclear(res);
        return NULL;
    }
    return res;
}

int uw_pg_exec(PGconn *conn, const char *sql, uw_err *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
        one_line(msg);
        PQclear(res);
        return uw_fail(err, UW_E_PG, "query failed: %s", msg);
    }
    PQclear(res);
    return 0;
}

int uw_pg_cluster_info(PGconn *conn, uw_pg_cluster *out, uw_err *err)
{
    PGresult *res = uw_pg_query(conn,
                                "SELECT (SELECT system_identifier FROM pg_control_system()), "
                                "current_setting('server_version_num')",
                                err);
    if (!res)
        return -1;
    memset(out, 0, sizeof *out);
    out->system_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    out->version_num = atoi(PQgetvalue(res, 0, 1));
    PQclear(res);
    /* SHOW wal_segment_size prints "16MB"; pg_settings has the number and unit. */
    res = uw_pg_query(conn,
                      "SELECT setting::bigint * CASE unit WHEN '8kB' THEN 8192 WHEN 'MB' "
                      "THEN 1048576 ELSE 1 END FROM pg_settings WHERE name = "
                      "'wal_segment_size'",
                      err);
    if (!res)
        return -1;
    out->wal_seg_size = (uint32_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    uw_err ignored;
    res = uw_pg_query(conn, "SELECT current_setting('data_directory')", &ignored);
    if (res) {
        snprintf(out->data_directory, sizeof out->data_directory, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    } else {
        /* Only superusers and pg_read_all_settings may read it. */
        out->data_directory[0] = '\0';
    }
    return 0;
}

int uw_pg_control_system_id(const char *pgdata, uint64_t *sysid, uw_err *err)
{
    char *path = uw_sprintf("%s/global/pg_control", pgdata);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        uw_fail(err, UW_E_FILE, "unable to open '%s': %s", path, strerror(errno));
        free(path);
        return -1;
    }
    uint8_t buf[8];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n != (ssize_t)sizeof buf) {
        uw_fail(err, UW_E_FILE, "unable to read '%s'", path);
        free(path);
        return -1;
    }
    free(path);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | buf[i];
    *sysid = v;
    return 0;
}
