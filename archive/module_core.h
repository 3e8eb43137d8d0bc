/* The archive module's state and work, without PostgreSQL: archive/module.c
 * is the thin glue that PostgreSQL loads (archive_library = 'ue_wal_archive')
 * and calls; everything here is plain C over common/, so that it can be
 * tested (and leak-checked) in a process of its own.
 *
 * What is kept between segments, in the archiver process only: the parsed
 * configuration, the repositories opened and their stanza loaded (storage
 * handles with their connections, the derived key), and the compression
 * contexts (common/io/compress.c keeps them warm). Kept state is rebuilt when
 * the settings (ue_wal_archive.config/.stanza) or the configuration file
 * (its inode, size, mtime or ctime) change, and dropped after a failed push.
 *
 * Threads: every function is called on the thread that called
 * uw_amod_init (PostgreSQL's archiver); compression threads started by a push
 * never reach `emit`: what they log is queued and emitted on the calling
 * thread before the push returns. Signals other than SIGQUIT are blocked
 * while a push runs, so no PostgreSQL signal handler runs on a library
 * thread (pending ones run when the push returns). */
#ifndef UW_MODULE_CORE_H
#define UW_MODULE_CORE_H

#include "core/error.h"
#include "core/log.h"

/* `emit` gets every log line of the library, on the init thread only. */
void uw_amod_init(uw_log_sink emit);
/* Make the kept configuration match these settings (NULL or "": the
 * default, as for ue-wal-push). 0, or -1 with err (the settings are then
 * unusable and nothing is kept). */
int uw_amod_configure(const char *config, const char *stanza, uw_err *err);
/* Archive the WAL file at `path` to every repository. 0 only when every
 * repository holds it; -1 with err, codes and messages as ue-wal-push's
 * (never above 125). */
int uw_amod_push(const char *config, const char *stanza, const char *path, uw_err *err);
/* Drop everything kept (archiver exit). */
void uw_amod_shutdown(void);

#endif
