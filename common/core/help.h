/* --help from the option table, and "did you mean" for mistyped names.
 *
 * Options are shown in groups: general (options every command takes),
 * repository (repoN-..., compression, encryption), PostgreSQL (pg-...), and
 * the command's own. The group follows from the table (flags, name,
 * commands), so an option appended to core/options.def lands in the right
 * section without a help-specific column. A binary shows the options whose
 * `commands` include it; a binary with subcommands (ue-pitr) narrows that per
 * subcommand with uw_help_sub_select. Pure functions but uw_help_print. */
#ifndef UW_HELP_H
#define UW_HELP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/options.h"

typedef enum { UW_HELP_GENERAL, UW_HELP_REPO, UW_HELP_PG, UW_HELP_COMMAND } uw_help_group;

uw_help_group uw_help_group_of(uw_opt_id id);

/* "--pg-port=PORT", "--repoN-type=posix|s3|azure" (registered values too),
 * "--delta=y|n", "--stanza=NAME". Returns buf. */
const char *uw_help_synopsis(uw_opt_id id, char *buf, size_t len);

/* The options a binary's --help shows: those of `command` (PostgreSQL
 * options only for the commands that connect to or read the cluster). */
void uw_help_binary_select(unsigned command, bool show[UW_OPT_ID_COUNT]);

/* The options subcommand `which` of a binary with n subcommands shows:
 * general and repository options, plus lists[which] (UW_OPT_ID_COUNT ends a
 * list). A NULL list means: every option of `command` that no other
 * subcommand lists, so a new subcommand with new options needs no list. */
void uw_help_sub_select(unsigned command, const uw_opt_id *const *lists, size_t n, size_t which,
                        bool show[UW_OPT_ID_COUNT]);

/* Print usage, description, then the shown options group by group.
 * `own_title` heads the command's own options ("Restore options"). */
void uw_help_print(FILE *out, const char *synopsis, const char *description, const char *own_title,
                   const bool show[UW_OPT_ID_COUNT]);

/* Levenshtein distance (bytes). */
size_t uw_edit_distance(const char *a, const char *b);
/* The word of words[0..n) nearest to `word`, or NULL when none is near
 * enough to be a likely typo (at most a third of its length, at most 3). */
const char *uw_help_nearest(const char *word, const char *const *words, size_t n);
/* The option name nearest to `name` ("pg-prot" -> "pg-port", "repo2-paht"
 * -> "repo2-path") among those `command` takes; false when none is near. */
bool uw_help_nearest_option(const char *name, unsigned command, char *buf, size_t len);

#endif
