/* ue-pitr restore, internal: the phases of one restore and what they share.
 *
 * restore.c is the driver: it reads the target, plans (repositories, backup
 * choice, the links and modes its manifest may ask for, WAL and chain checks,
 * the data directory's state), then writes
 * (directories and links, files, recovery configuration) and optionally starts
 * the server. Each phase lives in its own file:
 *
 *   restore_target.c    target options -> restore_target (pure)
 *   restore_select.c    which backup serves the target (pure: the timelines
 *                       come through callbacks)
 *   restore_conf.c      shell and postgresql.conf quoting, the recovery block
 *                       of postgresql.auto.conf (pure)
 *   restore_confine.c   which links and modes a manifest may ask for, and the
 *                       tablespace map (pure)
 *   restore_check.c     the repositories: backup lists, WAL reach, the chain
 *   restore_pgdata.c    the data directory: checks, directories, tablespace
 *                       links, --delta cleanup, sync, directory times
 *   restore_files.c     the per-file fan-out over the worker pool
 *   restore_recovery.c  recovery.signal, restore_command, postgresql.auto.conf
 *   restore_start.c     --start: run the server as its owner, wait for the target
 *
 * The pure files take no clock, do no I/O and build into the uwpitr library,
 * which the unit tests link (tests/unit/test_restore_*.c). Functions return
 * 0 or -1 with err filled, as everywhere in ue-wal. */
#ifndef UW_PITR_RESTORE_H
#define UW_PITR_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/error.h"
#include "io/sink.h"
#include "repo/archive_info.h"
#include "repo/manifest.h"
#include "repo/repo.h"

/* How many segments back from the end of the archive to look for the last
 * transaction when checking a target time. */
#define RESTORE_XACT_SCAN_SEGMENTS 64

/* ------------------------------------------------------------- targets -- */

typedef enum { RT_NONE, RT_TIME, RT_LSN, RT_XID, RT_NAME, RT_IMMEDIATE } restore_target_kind;

/* The target options, in the order they are read (and named in the
 * "mutually exclusive" message). */
#define RESTORE_TARGET_OPTIONS 5
typedef struct {
    const char *option; /* "target-time" ... (as named in messages) */
    uw_opt_id id;
    restore_target_kind kind;
} restore_target_option;
extern const restore_target_option restore_target_options[RESTORE_TARGET_OPTIONS];

typedef struct {
    restore_target_kind kind;
    const char *option; /* "target-time" ... */
    const char *value;
    int64_t time_us; /* RT_TIME */
    uint64_t lsn;    /* RT_LSN */
    /* recovery_target_timeline: 0 latest, UINT32_MAX current, else the number */
    uint32_t tli;
    const char *tli_text;
    const char *action;
} restore_target;

/* What the options say, as text: given[i] is the value of
 * restore_target_options[i] or NULL when not given; timeline and action may be
 * NULL (latest; promote is the option's default). The strings are borrowed by
 * the result. */
typedef struct {
    const char *given[RESTORE_TARGET_OPTIONS];
    const char *timeline;
    const char *action;
} restore_target_input;

/* A timestamp with an explicit offset, to unix microseconds. Returns 0, -1 when
 * malformed, -2 without a time zone, -3 with a zone name. */
int restore_parse_time(const char *s, int64_t *out);
/* Validate the target options (at most one target, well-formed values, a
 * timeline of latest, current or a number): UW_E_OPTION naming the option. */
int restore_target_parse(const restore_target_input *in, restore_target *t, uw_err *err);
/* The same from the command's configuration; warns about a target-action
 * without a target. */
int restore_target_from_config(const uw_config *cfg, restore_target *t, uw_err *err);
/* "time 2026-11-25T12:00:00Z", "the end of the archived WAL"... */
void restore_target_describe(const restore_target *t, char *buf, size_t len);
/* Is backup m consistent before the target (may recovery from it stop there)? */
bool restore_before_target(const restore_target *t, const uw_manifest *m);

/* ---------------------------------------------------- backup selection -- */

/* The timelines as the archive knows them (restore_check.c reads them from
 * the repositories; tests give a table). */
typedef struct {
    /* recovery_target_timeline = 'latest' from timeline `from` */
    uint32_t (*latest)(void *arg, uint32_t from);
    /* history of tli; UW_E_NOT_FOUND when it has no history file */
    int (*history)(void *arg, uint32_t tli, uw_tl_history *h, uw_err *err);
    void *arg;
} restore_timelines;

/* The timeline recovery from backup m follows, and whether m lies on its
 * history. Returns 0 with *tli and *h filled, 1 when m is not on that history
 * (msg says why, nothing to free), -1 on error. */
int restore_timeline_for(const restore_target *t, const uw_manifest *m,
                         const restore_timelines *tls, uint32_t *tli, uw_tl_history *h, char *msg,
                         size_t msglen, uw_err *err);

/* A backup's consistency point, for messages. */
typedef struct {
    char id[UW_BACKUP_ID_MAX];
    int64_t stop_time;
    uint64_t stop_lsn;
} restore_point;

/* The search for a backup over the repositories' lists, newest first. */
typedef struct {
    const restore_target *t;
    const char *set; /* --set, or NULL */
    /* what was seen so far, for the message when nothing qualifies */
    char why[512];
    restore_point earliest;
    bool have_earliest;
    int nbackups;
    /* the pick: index in the list last searched */
    int index;
    uint32_t tli;
    uw_tl_history hist;
} restore_pick;

void restore_pick_init(restore_pick *p, const restore_target *t, const char *set);
/* Search one repository's list (oldest first, as uw_backups_list gives it).
 * Returns 1 with p->index, p->tli and p->hist set (the caller owns hist), 0
 * when no backup of this list qualifies, -1 on error (--set naming a backup
 * that is too new for the target, or a history that cannot be read). */
int restore_pick_in(restore_pick *p, const uw_manifest *list, int n, const restore_timelines *tls,
                    uw_err *err);
/* Whether to stop searching further repositories without a pick (--set found). */
bool restore_pick_done(const restore_pick *p);
/* The error when no repository had a backup: UW_E_RESTORE saying why. */
int restore_pick_fail(const restore_pick *p, const char *stanza, uw_err *err);

/* ----------------------------------------------------- links and modes -- */

/* Longest link location accepted (PostgreSQL's MAXPGPATH). */
#define RESTORE_LOCATION_MAX 1024

/* --tablespace-map OID=DIR (repeatable) and --tablespace-map-all DIR. */
typedef struct {
    char *oid;
    char *dir;
    bool used; /* the backup has this tablespace */
} restore_ts_mapping;

typedef struct {
    restore_ts_mapping *maps;
    size_t n;
    char *all; /* --tablespace-map-all, or NULL */
} restore_ts_map;

/* Is `path` (relative to the data directory) where PostgreSQL has a link:
 * pg_tblspc/<oid> or pg_wal? */
bool restore_link_allowed(const char *path);
/* A link location: absolute, not "/", no empty, "." or ".." components, no
 * control characters, shorter than RESTORE_LOCATION_MAX. */
bool restore_location_valid(const char *dir);
/* The permission bits a restored entry gets: directories within 0750, files
 * within 0640 (no set-id, sticky or group/world-writable bits). */
uint32_t restore_mode_mask(char type, uint32_t mode);
/* `list`: the --tablespace-map values, one per line (may be NULL); `all`:
 * --tablespace-map-all (may be NULL). UW_E_OPTION naming the bad value. */
int restore_ts_map_parse(const char *list, const char *all, restore_ts_map *map, uw_err *err);
void restore_ts_map_free(restore_ts_map *map);
/* Check and rewrite backup m before anything is written: a link anywhere but
 * pg_tblspc/<oid> and pg_wal, or to an unclean location, is UW_E_REPO_FORMAT
 * naming the entry; tablespace links are pointed where the map says; modes
 * are masked (restore_mode_mask, with a warning for set-id, sticky or
 * writable bits). A map entry for a tablespace the backup does not have is
 * UW_E_RESTORE. */
int restore_confine(uw_manifest *m, restore_ts_map *map, uw_err *err);
/* tablespace_map for backup m (after restore_confine): "<oid> <location>" per
 * tablespace link. PostgreSQL recreates the links from this file when it
 * starts from a backup, so the restore writes it from the confined, mapped
 * links instead of restoring the backup's copy. */
void restore_tablespace_map(const uw_manifest *m, uw_buf *out);

/* ------------------------------------------------- recovery configuration -- */

#define RESTORE_BLOCK_BEGIN "# ue-wal restore begin"
#define RESTORE_BLOCK_END "# ue-wal restore end"

/* Quote one argument for /bin/sh: unchanged when it is plain, else in single
 * quotes. */
void restore_shell_quote(uw_buf *b, const char *s);
/* Append one fixed argument of restore_command (space-separated): shell-quoted,
 * and with '%' doubled because PostgreSQL replaces %f, %p, %r and %% before the
 * shell sees it. */
void restore_command_arg(uw_buf *cmd, const char *arg);
/* A postgresql.conf string literal, quotes and backslashes doubled. */
void restore_conf_quote(uw_buf *b, const char *s);

/* What the recovery block of postgresql.auto.conf says. */
typedef struct {
    const char *backup_id;
    const char *written_at; /* ISO time of the restore */
    const char *restore_command;
    const restore_target *t;
    long long port; /* 0: not set */
    /* archive_mode = off: a restored cluster that promotes must not archive
     * its new timeline into the stanza it came from (--archive-mode=off, and
     * always for the drill and restore-table). */
    bool archive_off;
} restore_conf_block;

/* postgresql.auto.conf as restored (`old`, may be NULL), without an earlier
 * block of ours, then ours. */
void restore_conf_render(const char *old, const restore_conf_block *b, uw_buf *out);

/* ------------------------------------------------------------ the state -- */

typedef struct restore {
    const uw_config *cfg;
    /* Set by the caller before restore_execute (pitr_restore from the
     * options; drill and restore-table for their scratch instance). */
    const char *into;              /* the directory to restore into */
    long long port;                /* written to postgresql.auto.conf (0: not written) */
    bool archive_off;              /* archive_mode = off in the recovery block */
    volatile sig_atomic_t *cancel; /* set by a signal handler: stop before the next file */
    /* restore-table: called once the directories exist, before the files
     * are restored (it may restore a catalog file itself to decide what
     * `sparse` says). */
    int (*before_files)(struct restore *rs, uw_err *err);
    /* restore-table: entries created as sparse, zeroed files of their size
     * instead of being read from the repository (another database's
     * relations: WAL replay writes a full page image before any other change
     * of a page after the backup's checkpoint, so zeroes are enough). */
    bool (*sparse)(const struct restore *rs, const uw_mf_entry *e);
    void *hook_arg;
    restore_target t;
    uw_repo *repos;
    int nrepos;
    bool *usable;  /* stanza loaded and same cluster as the first */
    uw_repo *repo; /* the one the backup comes from */
    uw_manifest m; /* the backup */
    bool have_m;
    uw_manifest *chain; /* the backups it needs (prior, ref, base) */
    size_t nchain;
    uw_archive arch; /* WAL of every usable repository */
    bool have_arch;
    uw_tl_history hist; /* history of the timeline recovery will follow */
    uint32_t rec_tli;   /* that timeline */
    uw_reach reach;
    uw_wal_end wal_end;
    bool have_wal_end;
    char *pgdata; /* absolute */
    bool pgdata_exists;
    uid_t uid;
    gid_t gid;
    char owner[64];
    bool set_owner;
    bool delta;
    restore_ts_map map; /* --tablespace-map, --tablespace-map-all */
    /* results */
    size_t files_written, files_skipped, removed, files_sparse;
    uint64_t bytes_written, bytes_skipped, bytes_read;
} restore;

/* restore.c: the driver, callable by other commands. */
/* Read the target and tablespace map options into rs (rs->cfg set, the rest
 * zeroed or set by the caller). */
int restore_prepare(restore *rs, uw_err *err);
/* Plan (nothing written yet), then write the data directory rs->into and
 * the recovery configuration. *pg_ctl: PostgreSQL's pg_ctl of the backup's
 * version, or NULL (the caller frees it). */
int restore_execute(restore *rs, char **pg_ctl, uw_err *err);
void restore_free(restore *rs);

/* restore_check.c: the newest backup that can reach the target, from the
 * first repository that has one (fills rs->m, rs->repo, rs->hist, rs->rec_tli). */
int restore_choose_backup(restore *rs, uw_err *err);
/* The archive holds the WAL that makes the backup consistent and reaches the
 * target. */
int restore_check_wal(restore *rs, uw_err *err);
/* Every backup the restore reads from is there and of this cluster (fills
 * rs->chain). */
int restore_check_chain(restore *rs, uw_err *err);

/* restore_pgdata.c */
char *restore_absolute(const char *p);
/* --pgdata and the tablespace locations can be written (fills rs->pgdata, the
 * owner). */
int restore_check_pgdata(restore *rs, uw_err *err);
/* lchown to the cluster owner when running as root. */
int restore_own(const restore *rs, const char *path, uw_err *err);
/* mkdir (and parents) owned by the cluster owner, with an exact mode. */
int restore_make_dir(const restore *rs, const char *path, mode_t mode, uw_err *err);
/* --delta: remove pg_control, then what the backup does not have. */
int restore_clean(restore *rs, uw_err *err);
/* Directories and tablespace links, in manifest order (parents first). */
int restore_make_tree(restore *rs, uw_err *err);
/* syncfs() the file system of the data directory and of every tablespace. */
int restore_sync_all(const restore *rs, uw_err *err);
/* Directory times last: creating files in them changed their mtime. */
void restore_dir_times(const restore *rs);

/* restore_files.c: every file, in parallel, global/pg_control last. */
int restore_files(restore *rs, uw_err *err);

/* restore_recovery.c: the directories PostgreSQL needs, recovery.signal and
 * the recovery block of postgresql.auto.conf. */
int restore_write_recovery(restore *rs, uw_err *err);

/* restore_start.c */
/* pg_ctl of a major version, or NULL. */
char *restore_find_pg_ctl(int version);
/* The server log --start writes (and the printed pg_ctl line names). */
char *restore_log_path(const restore *rs);
/* --start: start the server as the owner and wait for the target. */
int restore_start_server(const restore *rs, const char *pg_ctl, uw_err *err);

#endif
