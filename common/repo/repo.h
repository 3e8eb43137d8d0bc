/* Repository layout and stanza metadata.
 *
 *   <stanza>/stanza.info                       cluster identity and cipher parameters
 *   <stanza>/archive/<first 16 of name>/<walname>-<content id>[.zst][.enc]
 *   <stanza>/archive/history/<TTTTTTTT>.history-<content id>[.zst][.enc]
 *   <stanza>/backup/<backup id>/...            (base backups)
 *
 * Object names start with the WAL file's own name so an operator can find a
 * segment by name in any repository; the content id (the SHA-256 of the original
 * content, keyed with HMAC in an encrypted stanza: uw_content_id) in the name
 * makes a re-push of identical content recognisable without reading it. */
#ifndef UW_REPO_H
#define UW_REPO_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "io/crypto.h"
#include "storage/storage.h"
#include "pg/wal.h"

typedef struct {
    uint64_t system_id;
    int pg_version; /* major, e.g. 15 */
    uint32_t wal_seg_size;
    char cipher_type[32]; /* "none" | "aes-256-gcm" */
    uw_kdf_params kdf;    /* when encrypted */
    char key_check[65];
    int64_t created; /* unix time */
} uw_stanza_info;

typedef struct {
    uw_storage *st;
    char *stanza;
    uw_stanza_info info;
    bool have_info;
    uw_key key; /* derived when the stanza is encrypted */
    bool have_key;
} uw_repo;

/* Open every configured repository (repo1 always; repoN when repoN-path or
 * repoN-type is set), or only --repo. */
int uw_repos_open(const uw_config *cfg, uw_repo **repos, int *count, uw_err *err);
void uw_repos_close(uw_repo *repos, int count);

/* Commands that write to a repository call this first. Run as root, it
 * refuses (UW_E_OPTION, one line naming the owner and saying to run as that
 * user) unless every posix repository in use (repo1, repoN with a path or a
 * type, or only --repo) exists and belongs to root: a root-owned directory
 * or file in a repository postgres owns breaks archiving later. Object
 * stores have no owner on this host and pass. Not root: returns 0. */
int uw_repo_check_writer(const uw_config *cfg, uw_err *err);

/* A second handle on an opened and loaded repository, for another thread:
 * storage handles (connections) are never shared between threads. Copies the
 * stanza info and key instead of deriving the key again. */
int uw_repo_clone(const uw_config *cfg, const uw_repo *src, uw_repo *dst, uw_err *err);
void uw_repo_release(uw_repo *r);

/* Load <stanza>/stanza.info; missing gives UW_E_STANZA. Derives the cipher key
 * when the stanza is encrypted, failing with UW_E_DECRYPT on a wrong passphrase. */
int uw_repo_load(uw_repo *r, const uw_config *cfg, uw_err *err);
/* Serialise/parse stanza info: text with a SHA-256 line, so corruption is
 * caught; an encrypted stanza's also carries mac=HMAC(meta key, everything
 * before it), so that no field (cipher-type, KDF parameters) can be edited
 * without the passphrase. `key` is needed to render an encrypted one. A
 * format other than UW_STANZA_FORMAT is UW_E_FORMAT_VERSION. */
#define UW_STANZA_FORMAT 2
/* Most bytes a stanza.info may have (it is read from an untrusted repository). */
#define UW_STANZA_INFO_MAX (64 * 1024)
char *uw_stanza_info_render(const uw_stanza_info *info, const uw_key *key);
int uw_stanza_info_parse(const char *text, uw_stanza_info *info, uw_err *err);
/* Verify an encrypted stanza info's mac line with the key (UW_E_DECRYPT). */
int uw_stanza_info_auth(const char *text, const uw_key *key, uw_err *err);
int uw_repo_save_info(uw_repo *r, const uw_stanza_info *info, const uw_key *key, uw_err *err);
/* Small metadata files (a backup's manifest, its pin): in a plain stanza the
 * text as it is (its own format carries a checksum); in an encrypted stanza
 * a compressed and encrypted object bound to `bind`, so that it reveals
 * nothing and cannot be moved to another name or edited without the key.
 * get reads at most max bytes of content into out (missing: UW_E_NOT_FOUND). */
int uw_repo_meta_put(uw_repo *r, const char *path, const char *bind, const char *text, uw_err *err);
int uw_repo_meta_get(uw_repo *r, const char *path, const char *bind, size_t max, uw_buf *out,
                     uw_err *err);
/* The content id of an object name: uw_content_id with the stanza's key. */
void uw_repo_content_id_hex(const uw_repo *r, const uint8_t sha256[32], char out[65]);

/* Directory of the archived object for a WAL name, relative to the repo root. */
char *uw_repo_wal_dir(const uw_repo *r, const char *walname);

/* Find the archived object for walname. Returns 1 and sets *object (caller
 * frees; relative path) and sha (hex, 65 bytes), 0 when not archived, -1 on
 * error. */
int uw_repo_wal_find(uw_repo *r, const char *walname, char **object, char sha_hex[65], uw_err *err);

/* Classify a failed read of the archived object found for walname (by
 * uw_repo_wal_find): an object that is still listed but cannot be opened or
 * read (a dangling link, a permission error) is not a miss, which PostgreSQL
 * would take for the end of the archive, but UW_E_UNREADABLE (above 125: it
 * stops recovery). One that vanished since it was listed stays a miss; other
 * failures keep their code. Returns -1 with err updated. */
int uw_repo_wal_read_failed(uw_repo *r, const char *walname, const char *object, uw_err *err);

/* The lock file ue-basebackup holds while it backs up stanza r (and expire
 * while it removes backups): /tmp/ue-wal-<stanza>.<uid>.<12 hex of the
 * repository's identity>.backup.lock. The identity is the storage description
 * without its "repoN " index, so one repository configured as repo1 here and
 * repo2 there is one lock. Caller frees. */
char *uw_repo_backup_lock_path(const uw_repo *r);

/* Retry a storage operation with exponential backoff while it fails with
 * UW_E_STORAGE. `attempt` is 0-based; returns true when the caller should retry. */
bool uw_retry_wait(int attempt, const uw_err *err);

#endif
