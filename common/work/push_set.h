/* Pushing one WAL file to every configured repository: what ue-wal-push does
 * per call and what the archive module (archive/module.c) does per segment,
 * with the repositories kept open between segments.
 *
 * Contract: uw_push_file returns 0 only when every repository of the set
 * durably holds the file (stored now, or already there with the same
 * checksum); any failure returns -1 with the error of the first repository
 * that failed, and nothing is reported archived. Threads: a set belongs to
 * one thread at a time; uw_push_file may start compression threads of its
 * own, which only run library code (they never call back into the caller). */
#ifndef UW_PUSH_SET_H
#define UW_PUSH_SET_H

#include <stdint.h>

#include "core/config.h"
#include "repo/repo.h"
#include "work/walpush.h"

typedef struct {
    uw_repo *repos;
    int n;
    /* SHA-256 of each repository's stanza.info as last loaded: a set kept
     * open across pushes re-reads it and derives the key again only when it
     * changed (uw_push_set_refresh). Filled by uw_push_set_open(..., true). */
    uint8_t (*info_sha)[32];
} uw_push_set;

/* Open every configured repository, load its stanza (key derivation when
 * encrypted) and check that all of them hold the same cluster. `track`:
 * also remember each stanza.info's checksum, for uw_push_set_refresh. On
 * failure the set is left closed. */
int uw_push_set_open(const uw_config *cfg, uw_push_set *s, bool track, uw_err *err);
void uw_push_set_close(uw_push_set *s);
/* For a set kept open between pushes: re-read every stanza.info (so that a
 * stanza dropped or re-created since is noticed exactly as a fresh
 * ue-wal-push would) and reload a repository only when its stanza.info
 * changed. On failure the caller closes the set. */
int uw_push_set_refresh(const uw_config *cfg, uw_push_set *s, uw_err *err);
/* Push the local file `path` to every repository of the set, compressing on
 * `threads` threads; *job gets its checksum and identity (fstat). Logs one
 * INFO line per repository. */
int uw_push_file(const uw_config *cfg, uw_push_set *s, const char *path, int threads,
                 uw_push_job *job, uw_err *err);
/* Compression threads for one file when `workers` files are pushed at once:
 * the cores shared out, 1..4. */
int uw_push_threads(int workers);

#endif
