/* ue-pitr subcommands. */
#ifndef UW_PITR_H
#define UW_PITR_H

#include "core/config.h"
#include "core/error.h"

int pitr_stanza_create(const uw_config *cfg, uw_err *err);
int pitr_restore(const uw_config *cfg, uw_err *err);
int pitr_info(const uw_config *cfg, uw_err *err);
int pitr_check(const uw_config *cfg, uw_err *err);
int pitr_verify(const uw_config *cfg, uw_err *err);
int pitr_expire(const uw_config *cfg, uw_err *err);
int pitr_backup_keep(const uw_config *cfg, uw_err *err);
int pitr_metrics(const uw_config *cfg, uw_err *err);
/* drill.c, restore_table.c (issue 12) */
int pitr_drill(const uw_config *cfg, uw_err *err);
int pitr_restore_table(const uw_config *cfg, uw_err *err);

#endif
