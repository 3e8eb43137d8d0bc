/* ue_wal_archive: a PostgreSQL 15 archive library (archive_library =
 * 'ue_wal_archive') that archives like ue-wal-push, with the same
 * configuration file and guarantees, without a process per segment.
 *
 * This file is the only one that sees PostgreSQL: GUCs, callbacks and
 * logging. The work is in module_core.c, which never calls PostgreSQL; its
 * log lines reach ereport only on the archiver's own thread (module_core.h).
 * Nothing here raises an ERROR: PostgreSQL 15's archiver has no error
 * recovery (an ERROR would end the process); a failure is a WARNING and
 * `false`, and the archiver keeps the WAL and retries. */
#include "postgres.h"

#include "fmgr.h"
#include "postmaster/pgarch.h"
#include "utils/guc.h"

#include "module_core.h"

PG_MODULE_MAGIC;

void _PG_init(void);
void _PG_archive_module_init(ArchiveModuleCallbacks *cb);

static char *config_path = NULL;
static char *stanza_name = NULL;

static void emit(uw_log_level level, const char *msg)
{
    static const int elevel[] = {WARNING, WARNING, LOG, DEBUG1, DEBUG2};
    ereport(elevel[level], (errmsg_internal("ue_wal_archive: %s", msg)));
}

static void report(const char *what, const uw_err *err)
{
    ereport(WARNING, (errmsg("ue_wal_archive: %s: [%d %s] %s", what, (int)err->code,
                             uw_code_name(err->code), err->msg)));
}

static bool configured(void)
{
    uw_err err;
    uw_err_clear(&err);
    if (uw_amod_configure(config_path, stanza_name, &err) == 0)
        return true;
    report("not configured", &err);
    return false;
}

static bool archive_file(const char *file, const char *path)
{
    uw_err err;
    uw_err_clear(&err);
    if (uw_amod_push(config_path, stanza_name, path, &err) == 0)
        return true;
    char what[128];
    snprintf(what, sizeof what, "archiving \"%s\" failed", file);
    report(what, &err);
    return false;
}

static void module_shutdown(void)
{
    uw_amod_shutdown();
}

void _PG_init(void)
{
    DefineCustomStringVariable("ue_wal_archive.config",
                               "ue-wal configuration file (empty: UE_WAL_CONFIG or "
                               "/etc/ue-wal/ue-wal.conf, as for ue-wal-push).",
                               NULL, &config_path, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
    DefineCustomStringVariable("ue_wal_archive.stanza",
                               "Stanza to archive to (empty: the configuration file's).", NULL,
                               &stanza_name, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
    MarkGUCPrefixReserved("ue_wal_archive");
}

void _PG_archive_module_init(ArchiveModuleCallbacks *cb)
{
    AssertVariableIsOfType(&_PG_archive_module_init, ArchiveModuleInit);
    uw_amod_init(emit);
    cb->check_configured_cb = configured;
    cb->archive_file_cb = archive_file;
    cb->shutdown_cb = module_shutdown;
}
