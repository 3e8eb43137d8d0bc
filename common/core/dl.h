/* Run-time loading of an optional shared library (libcurl, libpq).
 *
 * Why: linking them costs every process their dependencies' start-up (~3 ms
 * and ~6 MiB for libcurl), and most runs (every archive_command into a local
 * repository) never use them. A wrapper loads its library on first use, once
 * per process (callers serialise with pthread_once), and calls through the
 * resolved pointers.
 *
 * Loading is all or nothing: either every symbol of the table is resolved, or
 * none of the slots is set, the library is closed again and err says why in
 * one line:
 *   "unable to load libcurl: libcurl.so.4: cannot open shared object file: No
 *    such file or directory (install libcurl4: object-store repositories need it)"
 *   "unable to load libpq: libpq.so.5 lacks PQexec (install libpq5)"
 * The library stays loaded for the life of the process once loaded. */
#ifndef UW_DL_H
#define UW_DL_H

#include <stddef.h>

#include "core/error.h"

/* One symbol to resolve into *slot. */
typedef struct {
    void **slot;
    const char *name;
} uw_dl_sym;

typedef struct {
    const char *what;           /* for messages: "libcurl" */
    const char *const *sonames; /* tried in order, NULL-terminated: {"libcurl.so.4", NULL} */
    const char *hint;           /* how to get it: "install libcurl4" */
    uw_code code;               /* err->code on failure */
} uw_dl_lib;

/* Load the first of lib->sonames that opens and resolve syms[0..n). Returns 0,
 * or -1 with err filled (see above). */
int uw_dl_load(const uw_dl_lib *lib, const uw_dl_sym *syms, size_t n, uw_err *err);

#endif
