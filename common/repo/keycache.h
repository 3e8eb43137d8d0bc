/* A cache of the scrypt-derived master key for the per-segment commands.
 *
 * ue-wal-push and ue-wal-fetch run once per WAL segment; deriving the key
 * (scrypt, ~60 ms and 32 MiB by design) in each of them halves encrypted
 * archiving throughput. The derived master key of a stanza is therefore kept
 * in <spool-path>/<stanza>/key/<kdf salt>.key, mode 0600 in a 0700 directory
 * owned by the user running us (the spool is created 0700 when missing;
 * never written by root, whose directories would lock the archiver out), and
 * reused while the configuration file that holds the passphrase is unchanged
 * (device, inode, size, mtime and ctime: ctime cannot be set back by anyone,
 * so any edit invalidates the entry).
 *
 * Why this protects the passphrase as well as the configuration file does:
 * only the same user (or root) can read the cache, and that user can read
 * the passphrase from the configuration file anyway; the cached key opens
 * this stanza only (the scrypt salt is per stanza), and it gives no shortcut
 * for guessing the passphrase (checking a guess against it costs a full
 * scrypt, exactly as against stanza.info). A cached key is only used after
 * it verifies the stanza info's key check; a stale one is dropped and the key
 * derived again. Not used when the passphrase comes from the environment (no
 * file identity to bind to) or with cipher-key-cache=n. */
#ifndef UW_KEYCACHE_H
#define UW_KEYCACHE_H

#include <stdbool.h>

#include "core/config.h"
#include "io/crypto.h"

/* Whether the cache applies to this configuration (command, option, source of
 * the passphrase). */
bool uw_keycache_enabled(const uw_config *cfg);
/* Fill key (master and sub-keys) from the cache; false when there is no valid
 * entry (missing, foreign owner or mode, other configuration file, other KDF
 * parameters). Never an error: the caller derives the key instead. */
bool uw_keycache_get(const uw_config *cfg, const char *stanza, const uw_kdf_params *kdf,
                     uw_key *key);
/* Store key for these parameters (best effort: a failure is logged at debug
 * level and costs only the next derivation). */
void uw_keycache_put(const uw_config *cfg, const char *stanza, const uw_kdf_params *kdf,
                     const uw_key *key);
/* Remove the entry (it did not verify). */
void uw_keycache_drop(const uw_config *cfg, const char *stanza, const uw_kdf_params *kdf);

#endif
