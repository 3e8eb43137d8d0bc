/* Derived-key cache for ue-wal-push and ue-wal-fetch (see keycache.h). */
#include "repo/keycache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/codec.h"
#include "core/log.h"
#include "io/sink.h"

#define CACHE_MAX 1024

bool uw_keycache_enabled(const uw_config *cfg)
{
    if (!(uw_config_command(cfg) & (UW_CMD_PUSH | UW_CMD_FETCH)))
        return false;
    if (!uw_cfg_bool(cfg, UW_OPT_CIPHER_KEY_CACHE) || !uw_cfg_file(cfg))
        return false;
    return strcmp(uw_cfg_source(cfg, UW_OPT_CIPHER_PASS), "config file") == 0;
}

static char *cache_dir(const uw_config *cfg, const char *stanza)
{
    return uw_sprintf("%s/%s/key", uw_cfg_str(cfg, UW_OPT_SPOOL_PATH), stanza);
}

static char *cache_path(const uw_config *cfg, const char *stanza, const uw_kdf_params *kdf)
{
    char salt[2 * UW_SALT_LEN + 1];
    uw_hex(kdf->salt, UW_SALT_LEN, salt);
    char *dir = cache_dir(cfg, stanza);
    char *p = uw_sprintf("%s/%s.key", dir, salt);
    free(dir);
    return p;
}

/* The identity of the configuration file the passphrase came from. */
static bool config_identity(const uw_config *cfg, char *out, size_t len)
{
    struct stat sb;
    if (stat(uw_cfg_file(cfg), &sb) != 0)
        return false;
    snprintf(out, len, "%ju %ju %jd %jd.%09ld %jd.%09ld", (uintmax_t)sb.st_dev,
             (uintmax_t)sb.st_ino, (intmax_t)sb.st_size, (intmax_t)sb.st_mtim.tv_sec,
             sb.st_mtim.tv_nsec, (intmax_t)sb.st_ctim.tv_sec, sb.st_ctim.tv_nsec);
    return true;
}

/* A directory or file of the cache is trusted only when it is ours and
 * nobody else can read or write it. */
static bool private_to_us(const struct stat *sb, mode_t type)
{
    return (sb->st_mode & S_IFMT) == type && sb->st_uid == geteuid() && !(sb->st_mode & 077);
}

static char *render(const char *ident, const uw_kdf_params *kdf, const uint8_t *master)
{
    char hex[2 * UW_KEY_LEN + 1];
    uw_hex(master, UW_KEY_LEN, hex);
    char *text = uw_sprintf("ue-wal key cache 1\nconfig %s\nkdf %" PRIu64 " %u %u\nmaster %s\n",
                            ident, kdf->n, kdf->r, kdf->p, hex);
    OPENSSL_cleanse(hex, sizeof hex);
    return text;
}

bool uw_keycache_get(const uw_config *cfg, const char *stanza, const uw_kdf_params *kdf,
                     uw_key *key)
{
    char ident[160];
    if (!config_identity(cfg, ident, sizeof ident))
        return false;
    char *dir = cache_dir(cfg, stanza);
    char *path = cache_path(cfg, stanza, kdf);
    bool ok = false;
    struct stat sb;
    char buf[CACHE_MAX + 1];
    ssize_t got = -1;
    int fd = -1;
    if (lstat(dir, &sb) != 0 || !private_to_us(&sb, S_IFDIR))
        goto done;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0 || !private_to_us(&sb, S_IFREG) || sb.st_size > CACHE_MAX)
        goto done;
    got = read(fd, buf, CACHE_MAX);
    if (got <= 0)
        goto done;
    buf[got] = 0;
    /* The expected text is rebuilt from what we know and compared with the
     * file, master key aside: a different configuration file or KDF
     * parameters never match. */
    const char *m = strstr(buf, "\nmaster ");
    if (!m || strlen(m) != strlen("\nmaster \n") + 2 * UW_KEY_LEN)
        goto done;
    uint8_t master[UW_KEY_LEN];
    char mhex[2 * UW_KEY_LEN + 1];
    memcpy(mhex, m + 8, 2 * UW_KEY_LEN);
    mhex[2 * UW_KEY_LEN] = 0;
    int bad = uw_unhex(mhex, master, UW_KEY_LEN);
    OPENSSL_cleanse(mhex, sizeof mhex);
    if (bad < 0)
        goto done;
    char *want = render(ident, kdf, master);
    ok = strcmp(want, buf) == 0;
    OPENSSL_cleanse(want, strlen(want));
    free(want);
    if (ok) {
        memcpy(key->master, master, UW_KEY_LEN);
        uw_key_expand(key);
    }
    OPENSSL_cleanse(master, sizeof master);
done:
    if (got > 0)
        OPENSSL_cleanse(buf, (size_t)got);
    if (fd >= 0)
        close(fd);
    free(dir);
    free(path);
    return ok;
}

void uw_keycache_put(const uw_config *cfg, const char *stanza, const uw_kdf_params *kdf,
                     const uw_key *key)
{
    char ident[160];
    if (!config_identity(cfg, ident, sizeof ident))
        return;
    char *dir = cache_dir(cfg, stanza);
    char *path = cache_path(cfg, stanza, kdf);
    uw_err err;
    uw_err_clear(&err);
    struct stat sb;
    /* The spool is made (0700) when missing, as the asynchronous pusher and
     * the metrics state do, so that a source install or a restore host gets
     * the cache from its first call; where it cannot be made (a default
     * /var/spool/ue-wal that nobody created), there is no cache. Never as
     * root (a manual call): root-owned directories in the spool would lock
     * the archiver out of its own later. */
    char *stanza_dir = uw_sprintf("%s/%s", uw_cfg_str(cfg, UW_OPT_SPOOL_PATH), stanza);
    if (geteuid() == 0) {
        uw_log(UW_LOG_DEBUG, "no key cache for root (the spool belongs to the archiver)");
    } else if (uw_mkdir_p(stanza_dir, 0700, &err) < 0 ||
               (mkdir(dir, 0700) != 0 && errno != EEXIST) || lstat(dir, &sb) != 0 ||
               !private_to_us(&sb, S_IFDIR)) {
        uw_log(UW_LOG_DEBUG, "no key cache in '%s' (%s)", dir,
               err.msg[0] ? err.msg : "not ours or not private");
    } else {
        char *text = render(ident, kdf, key->master);
        /* Losing the file in a crash only costs a derivation: no fsync. */
        if (uw_file_put(path, text, UW_FILE_NO_SYNC, &err) < 0)
            uw_log(UW_LOG_DEBUG, "key cache not written: %s", err.msg);
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    free(stanza_dir);
    free(dir);
    free(path);
}

void uw_keycache_drop(const uw_config *cfg, const char *stanza, const uw_kdf_params *kdf)
{
    char *path = cache_path(cfg, stanza, kdf);
    unlink(path);
    free(path);
}
