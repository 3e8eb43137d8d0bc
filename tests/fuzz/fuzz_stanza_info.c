/* stanza.info as read from a repository (common/repo/repo.c). */
#include <string.h>

#include "fuzz.h"
#include "repo/repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uw_stanza_info info;
    uw_err err;
    char *raw = fuzz_text(data, size);
    if (uw_stanza_info_parse(raw, &info, &err) < 0)
        fuzz_check_err(&err);
    free(raw);
    char *sealed = fuzz_reseal(data, size);
    if (uw_stanza_info_parse(sealed, &info, &err) < 0) {
        fuzz_check_err(&err);
    } else if (strcmp(info.cipher_type, "none") == 0) {
        /* What parsed must render to something that parses the same way (an
         * encrypted one renders only with its key: its mac). */
        char *again = uw_stanza_info_render(&info, NULL);
        uw_stanza_info info2;
        if (uw_stanza_info_parse(again, &info2, &err) < 0 || info2.system_id != info.system_id ||
            info2.wal_seg_size != info.wal_seg_size)
            abort();
        free(again);
    }
    free(sealed);
    return 0;
}
