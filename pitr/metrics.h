/* ue-pitr metrics, the pure part: no clock, no I/O (tested on its own,
 * tests/unit/test_metrics.c).
 *
 * - uw_prom: samples in Prometheus' text exposition format (version 0.0.4).
 *   Samples of one metric are printed together under one HELP and one TYPE
 *   line, metrics in the order they were first added, samples in the order
 *   added. Label values are escaped (\\, \", \n); names are our literals.
 * - uw_repo_usage: what one listing of a stanza's directory in a repository
 *   says: bytes stored, complete backups (those with a manifest, the newest
 *   and oldest by the time in their id), archived WAL segments and the
 *   newest one. Fed one object at a time, with its path relative to the
 *   stanza directory ("backup/<id>/manifest", "archive/<16 hex>/<name>-...").
 * - uw_backup_id_time: the UTC time a backup id carries. */
#ifndef UW_PITR_METRICS_H
#define UW_PITR_METRICS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct uw_prom uw_prom;

uw_prom *uw_prom_new(void);
void uw_prom_free(uw_prom *p);
/* One sample of metric `name` (its type "gauge"|"counter" and help line are
 * those of its first sample). labels: "name", "value" pairs, NULL-terminated;
 * a pair with a NULL value is left out. */
void uw_prom_add(uw_prom *p, const char *name, const char *type, const char *help, double value,
                 const char *const *labels);
/* Number of samples added. */
int uw_prom_count(const uw_prom *p);
/* The exposition text (caller frees). */
char *uw_prom_render(const uw_prom *p);

typedef struct {
    uint64_t bytes, objects; /* everything under the stanza directory */
    uint64_t backup_bytes, wal_bytes;
    int backups;                 /* complete backups */
    char oldest[64], newest[64]; /* their ids ("" when none) */
    uint64_t wal_segments;       /* archived WAL segments (not history, .partial, .backup) */
    char newest_wal[25];         /* the highest segment name ("" when none) */
} uw_repo_usage;

/* Account one object (path relative to the stanza directory, size in bytes). */
void uw_repo_usage_add(uw_repo_usage *u, const char *path, uint64_t size);

/* Unix time of a backup id's own stamp ("20261130-040000F" and the last part
 * of "20261130-040000F_20261130-100000I"), -1 when it is no backup id. */
int64_t uw_backup_id_time(const char *id);

#endif
