/* A timeline history file (<TLI>.history) as read from the archive
 * (common/repo/archive_info.c). The first 4 bytes choose the timeline. */
#include "fuzz.h"
#include "repo/archive_info.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t tli = 3;
    if (size >= 4) {
        memcpy(&tli, data, 4);
        data += 4;
        size -= 4;
    }
    char *text = fuzz_text(data, size);
    uw_tl_history h;
    uw_err err;
    if (uw_tl_history_parse(text, tli, "fuzz.history", &h, &err) < 0) {
        fuzz_check_err(&err);
    } else {
        if (h.n == 0 || h.e[h.n - 1].tli != tli)
            abort();
        for (size_t i = 1; i < h.n; i++)
            if (h.e[i].tli <= h.e[i - 1].tli)
                abort();
        uw_tl_of_lsn(&h, h.e[0].end);
        uw_tl_history_free(&h);
    }
    free(text);
    return 0;
}
