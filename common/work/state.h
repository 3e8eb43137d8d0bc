/* Command outcomes kept in the spool for `ue-pitr metrics`: every command that
 * owns a metric (ue-basebackup, verify, drill, expire, ...) records its last
 * result at its end, success or failure, in
 *
 *     <spool-path>/<stanza>/state/<name>.state
 *
 * as "key=value" lines (keys [a-z0-9_], values one line), written atomically
 * (temporary file, fsync, rename) with mode 0600 in a 0700 directory. Metrics
 * then only reads these small files instead of scanning repositories.
 *
 * Conventional keys, shared by every command: result (ok|fail), code (exit
 * code), start and end (Unix seconds, UTC), message (the failure's one line),
 * last_success_end (end of the last successful run, kept through failures).
 * A command adds its own (size_bytes, rto_seconds, ...), documented where it
 * records them. Counters that must survive runs (failures_total) are kept by
 * loading the previous state, updating it and saving it again. */
#ifndef UW_STATE_H
#define UW_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"

typedef struct uw_state uw_state;

/* An empty state (no keys). */
uw_state *uw_state_new(void);
/* The state last saved under name for stanza; an empty state when there is
 * none. A file that cannot be read or parsed is an error (code 4), never
 * silently empty: counters would restart from zero. */
uw_state *uw_state_load(const uw_config *cfg, const char *stanza, const char *name, uw_err *err);
/* Same, from an explicit file (tests, metrics over a directory). */
uw_state *uw_state_load_file(const char *path, uw_err *err);
void uw_state_free(uw_state *st);

/* Value of key, or NULL. */
const char *uw_state_get(const uw_state *st, const char *key);
/* Integer value of key, or dflt when absent or not an integer. */
int64_t uw_state_get_int(const uw_state *st, const char *key, int64_t dflt);
/* Set (replace) key; the value is printf-formatted, and newlines in it become
 * spaces so a message cannot forge another key. */
void uw_state_set(uw_state *st, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void uw_state_set_int(uw_state *st, const char *key, int64_t value);
/* Iterate: the i-th key (in insertion order), NULL past the end. */
const char *uw_state_key(const uw_state *st, size_t i, const char **value);

/* Records result/code/end (and message on failure) from a command's outcome:
 * err NULL or code 0 is success, which also sets last_success_end (= end), so
 * a state loaded, updated and saved keeps the time of the last success through
 * failures. Keeps every other key as set. */
void uw_state_outcome(uw_state *st, const uw_err *err);

/* Save atomically under name for stanza (creates the state directory). */
int uw_state_save(const uw_config *cfg, const char *stanza, const char *name, const uw_state *st,
                  uw_err *err);
int uw_state_save_file(const char *path, const uw_state *st, uw_err *err);
/* <spool-path>/<stanza>/state (caller frees). */
char *uw_state_dir(const uw_config *cfg, const char *stanza);

#endif
