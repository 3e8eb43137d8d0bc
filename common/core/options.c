/* The single table of options. Adding an option here makes it parseable from the
 * command line, the environment and the file, validated, and listed in --help. */
#include "core/config.h"

static const char *const repo_types[] = {"posix", "azure", "s3", NULL};
static const char *const s3_uri_styles[] = {"host", "path", NULL};
static const char *const azure_uri_styles[] = {"host", "path", NULL};
static const char *const compress_types[] = {"zstd", "none", NULL};
static const char *const cipher_types[] = {"none", "aes-256-gcm", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "detail", "debug", NULL};
static const char *const outputs[] = {"text", "json", NULL};
static const char *const backup_types[] = {"full", "incr", NULL};
static const char *const target_actions[] = {"promote", "pause", "shutdown", NULL};
static const char *const targets[] = {"immediate", NULL};

#define ANY UW_CMD_ALL
#define REPO_CMDS (UW_CMD_PUSH | UW_CMD_FETCH | UW_CMD_PITR | UW_CMD_BACKUP)
#define PG_CMDS (UW_CMD_PUSH | UW_CMD_PITR | UW_CMD_BACKUP)

const uw_opt_def uw_options[] = {
    {"config", UW_OPT_STRING, "/etc/ue-wal/ue-wal.conf", 0, 0, NULL, UW_OPTF_CLI_ONLY, ANY,
     "configuration file (env UE_WAL_CONFIG)"},
    {"stanza", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_NO_STANZA, ANY, "stanza (cluster) name"},
    {"log-level", UW_OPT_ENUM, "info", 0, 0, log_levels, 0, ANY, "error|warn|info|detail|debug"},
    {"repo", UW_OPT_INT, NULL, 1, UW_REPO_MAX, NULL, UW_OPTF_CLI_ONLY, ANY,
     "use only this repository (1..4)"},
    {"type", UW_OPT_ENUM, "posix", 0, 0, repo_types, UW_OPTF_REPO, REPO_CMDS, "repository type"},
    {"path", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO, REPO_CMDS,
     "posix: the repository directory; s3/azure: prefix in the bucket or container"},
    /* Object stores (S3, Azure): shared by the drivers. */
    {"storage-port", UW_OPT_INT, NULL, 1, 65535, NULL, UW_OPTF_REPO, REPO_CMDS,
     "object store: port (overrides the endpoint's)"},
    {"storage-verify-tls", UW_OPT_BOOL, "y", 0, 0, NULL, UW_OPTF_REPO, REPO_CMDS,
     "object store: verify the server's TLS certificate"},
    {"storage-ca-file", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO, REPO_CMDS,
     "object store: CA bundle (PEM) instead of the system store"},
    {"storage-timeout", UW_OPT_INT, "60", 1, 3600, NULL, UW_OPTF_REPO, REPO_CMDS,
     "object store: seconds without progress before a request fails"},
    /* Azure Blob storage (repoN-type=azure). */
    {"azure-account", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO, REPO_CMDS,
     "azure: storage account name"},
    {"azure-key", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO | UW_OPTF_SECRET, REPO_CMDS,
     "azure: account key, base64 (SharedKey; config file or environment only)"},
    {"azure-sas", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO | UW_OPTF_SECRET, REPO_CMDS,
     "azure: SAS token instead of the key (config file or environment only)"},
    {"azure-container", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO, REPO_CMDS,
     "azure: container (repoN-path is a prefix inside it)"},
    {"azure-endpoint", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO, REPO_CMDS,
     "azure: [http[s]://]host[:port] (default <account>.blob.core.windows.net)"},
    {"azure-uri-style", UW_OPT_ENUM, "host", 0, 0, azure_uri_styles, UW_OPTF_REPO, REPO_CMDS,
     "azure: host|path (path: http://host/<account>/<container>/..., e.g. Azurite)"},
    {"azure-block-size", UW_OPT_SIZE, "4MiB", 64 * 1024, 256LL << 20, NULL, UW_OPTF_REPO, REPO_CMDS,
     "azure: larger objects are uploaded in blocks of this size"},
    /* Amazon S3 and compatible stores (repoN-type=s3). */
    {"s3-endpoint", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO, REPO_CMDS,
     "s3: [http[s]://]host[:port] (default https://s3.<region>.amazonaws.com)"},
    {"s3-region", UW_OPT_STRING, "us-east-1", 0, 0, NULL, UW_OPTF_REPO, REPO_CMDS,
     "s3: region (signing scope)"},
    {"s3-bucket", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO, REPO_CMDS,
     "s3: bucket (repoN-path is a prefix inside it, default /)"},
    {"s3-uri-style", UW_OPT_ENUM, "host", 0, 0, s3_uri_styles, UW_OPTF_REPO, REPO_CMDS,
     "s3: host (bucket.endpoint) or path (endpoint/bucket)"},
    {"s3-key", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO, REPO_CMDS,
     "s3: access key id (default: AWS_ACCESS_KEY_ID)"},
    {"s3-key-secret", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO | UW_OPTF_SECRET, REPO_CMDS,
     "s3: secret access key (config file or environment; default: AWS_SECRET_ACCESS_KEY)"},
    {"s3-token", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_REPO | UW_OPTF_SECRET, REPO_CMDS,
     "s3: session token (config file or environment; default: AWS_SESSION_TOKEN)"},
    {"s3-part-size", UW_OPT_SIZE, "16MiB", 5LL << 20, 5LL << 30, NULL, UW_OPTF_REPO, REPO_CMDS,
     "s3: larger objects are uploaded in parts of this size (multipart upload)"},
    {"compress-type", UW_OPT_ENUM, "zstd", 0, 0, compress_types, 0, REPO_CMDS, "zstd|none"},
    {"compress-level", UW_OPT_INT, "3", 1, 19, NULL, 0, REPO_CMDS, "compression level"},
    {"cipher-type", UW_OPT_ENUM, "none", 0, 0, cipher_types, 0, REPO_CMDS, "none|aes-256-gcm"},
    {"cipher-pass", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_SECRET, REPO_CMDS,
     "encryption passphrase (config file or UE_WAL_CIPHER_PASS only)"},
    {"pg-path", UW_OPT_STRING, NULL, 0, 0, NULL, 0, ANY, "PostgreSQL data directory"},
    {"pg-host", UW_OPT_STRING, NULL, 0, 0, NULL, 0, ANY, "PostgreSQL host (TCP)"},
    {"pg-port", UW_OPT_INT, "5432", 1, 65535, NULL, 0, ANY, "PostgreSQL port"},
    {"pg-socket-path", UW_OPT_STRING, NULL, 0, 0, NULL, 0, ANY, "PostgreSQL unix socket directory"},
    {"pg-user", UW_OPT_STRING, NULL, 0, 0, NULL, 0, ANY, "PostgreSQL user"},
    {"pg-database", UW_OPT_STRING, "postgres", 0, 0, NULL, 0, ANY, "PostgreSQL database"},
    {"process-max", UW_OPT_INT, "1", 1, 64, NULL, 0, ANY, "parallel workers"},
    {"archive-async", UW_OPT_BOOL, "n", 0, 0, NULL, 0, UW_CMD_PUSH,
     "push other ready WAL files in parallel and answer later calls from the spool"},
    {"spool-path", UW_OPT_STRING, "/var/spool/ue-wal", 0, 0, NULL, 0, UW_CMD_PUSH | UW_CMD_FETCH,
     "local directory for asynchronous archiving state"},
    {"archive-get-queue-max", UW_OPT_SIZE, "0", 0, 64LL << 30, NULL, 0, UW_CMD_FETCH,
     "bytes of WAL to prefetch ahead of recovery (0: no prefetch)"},
    {"archive-timeout", UW_OPT_INT, "60", 1, 86400, NULL, 0,
     UW_CMD_BACKUP | UW_CMD_PITR | UW_CMD_PUSH, "seconds to wait for WAL to reach the archive"},
    {"output", UW_OPT_ENUM, "text", 0, 0, outputs, UW_OPTF_CLI_ONLY, UW_CMD_PITR, "text|json"},
    {"type", UW_OPT_ENUM, "full", 0, 0, backup_types, UW_OPTF_CLI_ONLY, UW_CMD_BACKUP,
     "backup type: full|incr"},
    {"pgdata", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore: target data directory"},
    {"target", UW_OPT_ENUM, NULL, 0, 0, targets, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore: immediate"},
    {"target-time", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore: timestamp with time zone"},
    {"target-lsn", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR, "restore: LSN"},
    {"target-xid", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore: transaction id"},
    {"target-name", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore: restore point name"},
    {"target-timeline", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore: latest|current|N"},
    {"target-action", UW_OPT_ENUM, "promote", 0, 0, target_actions, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore: promote|pause|shutdown"},
    {"set", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR, "restore: backup id"},
    {"delta", UW_OPT_BOOL, "n", 0, 0, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore: rewrite only changed files"},
    {"start", UW_OPT_BOOL, "n", 0, 0, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore: start the server and wait for the target"},
    {"port", UW_OPT_INT, NULL, 1, 65535, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore --start: port of the restored server"},
    {"tablespace-map", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_CLI_ONLY | UW_OPTF_LIST,
     UW_CMD_PITR, "restore: OID=DIR, restore tablespace OID into DIR (repeatable)"},
    {"tablespace-map-all", UW_OPT_STRING, NULL, 0, 0, NULL, UW_OPTF_CLI_ONLY, UW_CMD_PITR,
     "restore: restore every other tablespace into DIR/<oid>"},
};

const int uw_option_count = (int)(sizeof uw_options / sizeof uw_options[0]);
