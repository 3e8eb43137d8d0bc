/* Minimal JSON output on stdout for the ue-pitr subcommands' --output json
 * (check, verify). Keys are written in the caller's order; `first` tracks
 * whether a comma is needed inside the current object or array. */
#ifndef UW_PITR_JSON_H
#define UW_PITR_JSON_H

#include <stdbool.h>
#include <stdint.h>

/* A JSON string: escapes quotes, backslashes and control characters, and
 * replaces bytes that are not valid UTF-8 (paths need not be) with U+FFFD. */
void pj_str(const char *s);
/* "k": (with the comma when not first) */
void pj_key(const char *k, bool *first);
void pj_kstr(const char *k, const char *v, bool *first); /* NULL: null */
void pj_kint(const char *k, int64_t v, bool *first);
void pj_kbool(const char *k, bool v, bool *first);

#endif
