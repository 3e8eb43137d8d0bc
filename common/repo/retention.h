/* Retention policy: which backups and which archived WAL a repository keeps.
 *
 * Pure: no clock, no I/O. The caller lists the backups and passes "now"; the
 * answer is keep or remove per backup with the rules that decided, and the WAL
 * the kept backups still need. ue-pitr expire applies it; tests drive it
 * through simulated years.
 *
 * Rules (a backup kept by any rule is kept; every period is in UTC):
 *   retention-full=N     the newest N full backups, and the incremental backups
 *                        built on them when retention-incr is not set
 *   retention-incr=P     incremental backups that started within P
 *   retention-daily=P    the first full backup of each UTC day, within P
 *   retention-weekly=P   ... of each ISO week (Monday to Sunday, UTC)
 *   retention-monthly=P  ... of each calendar month
 *   retention-yearly=P   ... of each calendar year
 * "Within P": the backup started at or after now minus P, where P is Nd
 * (days), Nw (weeks), Nm (calendar months) or Ny (calendar years); a day of
 * the month that the earlier month lacks becomes its last day.
 *
 * Never removed: a backup in progress, a pinned backup (until its pin ends),
 * every backup a kept incremental depends on (its prior, transitively), and
 * the newest full backup when no rule keeps any full backup (the repository
 * always keeps one full backup). With no rule set at all every backup is kept,
 * and all of the WAL.
 *
 * WAL: every kept backup needs the segments from its start to its stop on its
 * timeline (consistency). The point-in-time window starts at the oldest kept
 * backup, or with retention-archive=N at the oldest of the newest N kept full
 * backups: from a window backup on timeline T, recovery may replay any
 * timeline >= T, so every segment at or after its start segment on those
 * timelines is kept. A timeline's history file is kept while any kept backup
 * is on that timeline or an earlier one. */
#ifndef UW_RETENTION_H
#define UW_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A period: n units of 'd' days, 'w' weeks, 'm' months or 'y' years; n = 0: unset. */
typedef struct {
    int n;
    char unit;
} uw_period;

/* "7d", "12m", "7y", "2w" (1..100000 units). Returns -1 when malformed. */
int uw_period_parse(const char *s, uw_period *out);
/* now minus the period, in calendar units for months and years (UTC). */
int64_t uw_period_cutoff(int64_t now, uw_period p);

#define UW_PIN_FOREVER INT64_MAX

typedef struct {
    const char *label;
    bool full;          /* else incremental */
    const char *prior;  /* incremental: the backup it was taken against */
    int64_t start_time; /* unix seconds, UTC */
    int64_t stop_time;
    uint32_t timeline;
    uint64_t start_segno, stop_segno; /* first and last WAL segment it needs */
    int64_t pinned_until;             /* 0: not pinned; UW_PIN_FOREVER */
    bool in_progress;                 /* times and WAL unknown */
} uw_ret_backup;

typedef struct {
    int full_count; /* retention-full; 0: unset */
    uw_period incr, daily, weekly, monthly, yearly;
    int archive_count; /* retention-archive; 0: unset */
} uw_ret_options;

/* Whether any backup rule is set (retention-archive alone is none). */
bool uw_ret_options_any(const uw_ret_options *o);

/* Why a backup is kept: bits. */
enum {
    UW_RET_FULL_COUNT = 1 << 0,
    UW_RET_INCR = 1 << 1,
    UW_RET_DAILY = 1 << 2,
    UW_RET_WEEKLY = 1 << 3,
    UW_RET_MONTHLY = 1 << 4,
    UW_RET_YEARLY = 1 << 5,
    UW_RET_PINNED = 1 << 6,
    UW_RET_DEPENDENCY = 1 << 7,
    UW_RET_ONLY_FULL = 1 << 8,
    UW_RET_IN_PROGRESS = 1 << 9,
    UW_RET_NO_POLICY = 1 << 10,
};

/* Keep segments of timeline tli from first to last (inclusive). */
typedef struct {
    uint32_t tli;
    uint64_t first, last;
} uw_ret_range;

typedef struct {
    unsigned *rules; /* per backup, in input order; 0 = remove */
    size_t n;
    bool keep_all_wal;         /* nothing retained to anchor the WAL: expire none */
    uw_ret_range *consistency; /* per kept backup: start..stop on its timeline */
    size_t nconsistency;
    uw_ret_range *window; /* per window backup: (tli, start, UINT64_MAX), any timeline >= tli */
    size_t nwindow;
    uint32_t history_min; /* kept backups' smallest timeline (when have_history_min) */
    bool have_history_min;
} uw_ret_result;

/* Decide. Backups may come in any order; labels are unique. */
void uw_retention_apply(const uw_ret_backup *b, size_t n, const uw_ret_options *o, int64_t now,
                        uw_ret_result *out);
void uw_ret_result_free(uw_ret_result *r);

/* Whether the kept backups need segment (tli, segno). */
bool uw_ret_wal_needed(const uw_ret_result *r, uint32_t tli, uint64_t segno);
/* Oldest segment needed on timeline tli; UINT64_MAX when none is. */
uint64_t uw_ret_oldest_needed(const uw_ret_result *r, uint32_t tli);
/* Whether timeline tli's history file must stay. */
bool uw_ret_history_needed(const uw_ret_result *r, uint32_t tli);

/* The rules in bits as "retention-daily, dependency" (buf >= 160). */
const char *uw_ret_rules_str(unsigned rules, char *buf, size_t len);
/* Why a backup that no rule keeps goes, for --dry-run (buf >= 256): the rules
 * that could have kept it and why each does not. */
const char *uw_ret_removal_str(const uw_ret_backup *b, const uw_ret_options *o, char *buf,
                               size_t len);

#endif
