/* A backup manifest as read from a repository (common/repo/manifest.c). */
#include "fuzz.h"
#include "repo/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uw_manifest m;
    uw_err err;
    char *raw = fuzz_text(data, size);
    if (uw_manifest_parse(raw, &m, &err) < 0)
        fuzz_check_err(&err);
    uw_manifest_free(&m);
    free(raw);
    char *sealed = fuzz_reseal(data, size);
    if (uw_manifest_parse(sealed, &m, &err) < 0) {
        fuzz_check_err(&err);
    } else {
        /* Every accepted path is safe, and what parsed renders to a manifest
         * that parses to the same entries. */
        for (size_t i = 0; i < m.count; i++)
            if (!uw_manifest_path_safe(m.entries[i].path))
                abort();
        char *again = uw_manifest_render(&m);
        uw_manifest m2;
        if (uw_manifest_parse(again, &m2, &err) < 0 || m2.count != m.count)
            abort();
        uw_manifest_sort(&m2);
        for (size_t i = 0; i < m.count; i++)
            if (!uw_manifest_find(&m2, m.entries[i].path))
                abort();
        uw_manifest_free(&m2);
        free(again);
    }
    uw_manifest_free(&m);
    free(sealed);
    return 0;
}
