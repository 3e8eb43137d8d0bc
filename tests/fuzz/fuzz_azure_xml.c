/* XML bodies from Azure Blob storage (common/storage/storage_azure.c, http.c):
 * a List Blobs page under the prefix "archive/", and the <Code>/<Message> of
 * an error response. */
#include <stdbool.h>

#include "fuzz.h"
#include "core/xml.h"
#include "storage/http.h"
#include "storage/storage.h"

static int entry(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    (void)is_dir;
    (void)size;
    /* names are relative to the prefix, one level, never empty */
    if (!*name || strchr(name, '/'))
        abort();
    *(size_t *)ctx += strlen(name);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *xml = fuzz_text(data, size);
    const char *end = xml + size;
    size_t total = 0;
    char *marker = NULL;
    bool stop = false;
    uw_err err;
    if (uw_azure_list_parse(xml, size, "archive/", "List Blobs 'archive'", entry, &total, &stop,
                            &marker, &err) < 0)
        fuzz_check_err(&err);
    free(marker);
    free(uw_xml_get(xml, end, "Code", NULL));
    free(uw_xml_get(xml, end, "Message", NULL));
    free(xml);
    return 0;
}
