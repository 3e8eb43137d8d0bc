/* Backup pins (ue-pitr backup-keep): a pinned backup is never expired, until
 * its pin ends or is removed.
 *
 * Stored in the repository beside the backup, at <stanza>/backup/<id>/keep, as
 * "id=<id>", "until=<unix seconds>|forever" and a final checksum=<sha256 of
 * everything before it> line. In an encrypted stanza the text is an encrypted
 * object bound to "keep:<id>" (io/object.h), so a pin cannot be forged or
 * moved to another backup without the passphrase. The pin is read only for a
 * backup that exists (has a manifest); removing the backup removes it. */
#ifndef UW_BACKUP_PIN_H
#define UW_BACKUP_PIN_H

#include <stdint.h>

#include "core/error.h"
#include "repo/repo.h"

/* *until: 0 when the backup is not pinned, INT64_MAX (UW_PIN_FOREVER) for ever. */
int uw_backup_pin_get(uw_repo *r, const char *id, int64_t *until, uw_err *err);
int uw_backup_pin_set(uw_repo *r, const char *id, int64_t until, uw_err *err);
/* Removing a pin that does not exist is not an error. */
int uw_backup_pin_clear(uw_repo *r, const char *id, uw_err *err);

#endif
