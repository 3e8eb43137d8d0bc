/* Run-time loading of optional shared libraries. See dl.h. */
#include "core/dl.h"

#include <dlfcn.h>
#include <stdio.h>

int uw_dl_load(const uw_dl_lib *lib, const uw_dl_sym *syms, size_t n, uw_err *err)
{
    void *h = NULL;
    const char *soname = NULL;
    char why[512] = "no library name";
    for (const char *const *s = lib->sonames; *s && !h; s++) {
        /* RTLD_LOCAL: the library's symbols must not interpose on anyone else's */
        h = dlopen(*s, RTLD_NOW | RTLD_LOCAL);
        if (h)
            soname = *s;
        else
            snprintf(why, sizeof why, "%s", dlerror()); /* the last one tried */
    }
    if (!h)
        return uw_fail(err, lib->code, "unable to load %s: %s (%s)", lib->what, why, lib->hint);
    for (size_t i = 0; i < n; i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot) {
            for (size_t j = 0; j <= i; j++)
                *syms[j].slot = NULL;
            dlclose(h);
            return uw_fail(err, lib->code, "unable to load %s: %s lacks %s (%s)", lib->what, soname,
                           syms[i].name, lib->hint);
        }
    }
    return 0;
}
