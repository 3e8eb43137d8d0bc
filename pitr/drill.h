/* ue-pitr drill and restore-table: the restore drill of the runbook (restore
 * a backup into a scratch instance, recover, check, time, clean up) and the
 * single-table restore (recover a scratch instance to a target, pg_dump the
 * named tables).
 *
 *   drill.c         the drill: steps, checks, report, drill.state
 *   restore_table.c restore-table: which database files to restore, pg_dump
 *   scratch.c       the scratch instance both use: directory, restore with
 *                   archive_mode off, a private server started as the data
 *                   directory's owner, waiting for promotion, and a cleanup
 *                   that always runs (also on SIGINT and SIGTERM)
 *   drill_plan.c    pure (no clock, no I/O; unit-tested in
 *                   tests/unit/test_restore_drill.c): the --check-sql file,
 *                   the tolerance, table names, the pg_database catalog
 *
 * Functions return 0 or -1 with err filled, as everywhere in ue-wal. */
#ifndef UW_PITR_DRILL_H
#define UW_PITR_DRILL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "pg/pg.h"
#include "restore.h"

/* ------------------------------------------------------ drill_plan.c -- */

/* One critical query of a --check-sql file (format in drill_checks_parse). */
typedef struct {
    char *name;      /* "-- check: NAME", or "line N" */
    char *database;  /* "-- database: DB", or NULL: pg-database */
    char *expect;    /* the expected value, or NULL with `production` */
    bool production; /* "-- expect: production": the same value as production */
    char *sql;
    int line; /* of its first directive */
} drill_check;

typedef struct {
    drill_check *v;
    size_t n;
} drill_checks;

/* The --check-sql / drill-check-sql file: blocks of directive lines
 *
 *     -- check: active claims        (optional name)
 *     -- database: app               (optional, default pg-database)
 *     -- expect: 42                  (required)
 *     select count(*) from claims where status <> 'draft';
 *
 * each followed by its SQL up to the next directive or the end. The value is
 * the first column of the query's only row as PostgreSQL prints it (NULL as
 * the text NULL); `-- expect: production` asks for the value the same query
 * returns on --compare-with. Other lines starting with "--" and blank lines
 * before a block's SQL are ignored. UW_E_OPTION naming file:line. */
int drill_checks_parse(const char *text, const char *file, drill_checks *out, uw_err *err);
void drill_checks_free(drill_checks *c);

/* --tolerance: a percentage from 0 to 100 ("5", "0.5"). */
int drill_parse_tolerance(const char *s, double *pct, uw_err *err);
/* Does a row count `got` lie within pct percent of `want`, relative to the
 * larger of the two (so a table emptied or filled fails either way)? */
bool drill_within(int64_t got, int64_t want, double pct);

/* "schema.table", either part possibly double-quoted ("" inside quotes is a
 * quote); unquoted parts are taken as written (no case folding).
 * UW_E_OPTION naming the value. */
int drill_table_parse(const char *s, char **schema, char **table, uw_err *err);
/* A pg_dump --table pattern matching exactly schema.table: both parts
 * double-quoted (caller frees). */
char *drill_table_pattern(const char *schema, const char *table);

/* The oids of every tuple named `name` in the pages of pg_database's heap
 * (global/1262, 8 KiB pages): live or dead versions alike, since there is no
 * commit log to tell them apart, so a caller keeps all of them. Malformed
 * pages are skipped. Returns how many were found (at most max). */
int drill_pg_database_oids(const uint8_t *data, size_t len, const char *name, uint32_t *oids,
                           int max);
/* The database a relation file of the data directory belongs to:
 * base/<db>/<digits...> or pg_tblspc/<ts>/<version dir>/<db>/<digits...>.
 * False for every other path (the database's PG_VERSION, pg_filenode.map,
 * global/, ...). */
bool drill_relation_db(const char *path, uint32_t *db);

/* --------------------------------------------------------- scratch.c -- */

/* Set by the SIGINT/SIGTERM/SIGHUP handler scratch_signals() installs; every
 * wait and the restore's file loop stop when it is set. */
extern volatile sig_atomic_t scratch_cancel;
/* Install the handlers (no SA_RESTART: a blocking wait returns EINTR). */
void scratch_signals(void);

/* A scratch instance: a directory of its own holding the data directory, the
 * server's socket and log, and a pg_hba.conf that trusts local connections
 * only (the socket directory is the owner's, mode 0700). */
typedef struct {
    const uw_config *cfg;
    char *dir;    /* the scratch directory this run created (removed at the end) */
    char *pgdata; /* dir/pgdata */
    char *log;    /* dir/server.log */
    char *pg_ctl; /* of the backup's PostgreSQL version */
    char *bindir; /* pg_ctl's directory (pg_dump...) */
    int port;     /* a free loopback port; the server listens on the socket only */
    long pid;     /* the postmaster, once started */
    bool started;
    restore rs; /* the restore into pgdata (kept for the backup, target, reach) */
    bool have_rs;
    /* results */
    double restore_s, recovery_s;
    char *lsn;       /* the LSN at promotion */
    char *xact_time; /* the last replayed transaction's time, "" when none */
    char *stop_line; /* "recovery stopping before ..." from the log, or NULL */
    char user[64];   /* the role the checks connect as */
} scratch;

/* Create the scratch directory: --scratch DIR (or spool-path/<stanza>) gets a
 * new subdirectory "<stanza>-<what>-<pid>" of its own. */
int scratch_create(scratch *s, const uw_config *cfg, const char *what, uw_err *err);
/* Restore into s->pgdata with archive_mode off and the configured target;
 * `hooks` may set before_files / sparse / hook_arg (or be NULL). */
int scratch_restore(scratch *s, const restore *hooks, uw_err *err);
/* Start the server as the data directory's owner (private socket, no TCP,
 * no archiving, no autovacuum) and wait until recovery reached its target
 * and the server promoted. */
int scratch_recover(scratch *s, uw_err *err);
/* A connection to database db of the scratch server. */
PGconn *scratch_connect(scratch *s, const char *db, uw_err *err);
/* Stop the server (immediate; SIGKILL to the postmaster of the pid file if
 * it is still there) and remove the scratch directory. Safe to call at any
 * point, and more than once. Returns -1 with err when something is left.
 * The results (lsn, times, the restore's backup) stay until scratch_free. */
int scratch_cleanup(scratch *s, uw_err *err);
void scratch_free(scratch *s);

#endif
