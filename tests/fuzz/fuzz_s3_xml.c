/* XML bodies from S3 (common/storage/storage_s3.c, http.c): a ListObjectsV2
 * page, a ListMultipartUploads page, and the <Code>/<Message> of an error
 * response. */
#include <stdbool.h>

#include "fuzz.h"
#include "core/xml.h"
#include "storage/http.h"
#include "storage/storage.h"

static int upload(void *ctx, const char *key, const char *id, int64_t initiated)
{
    (void)initiated;
    *(size_t *)ctx += strlen(key) + strlen(id);
    return 0;
}

static int entry(void *ctx, const char *name, bool is_dir, uint64_t size)
{
    (void)is_dir;
    (void)size;
    *(size_t *)ctx += strlen(name);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Service bodies land in a uw_buf, which keeps a NUL after the data. */
    char *xml = fuzz_text(data, size);
    const char *end = xml + size;
    size_t total = 0;
    char *next = NULL;
    uw_err err;
    if (uw_s3_list_parse(xml, size, "list 'fuzz/'", entry, &total, &next, &err) < 0)
        fuzz_check_err(&err);
    free(next);
    char *nk = NULL, *ni = NULL;
    if (uw_s3_uploads_parse(xml, size, "list multipart uploads 'fuzz/'", upload, &total, &nk, &ni,
                            &err) < 0)
        fuzz_check_err(&err);
    free(nk);
    free(ni);
    free(uw_xml_get(xml, end, "Code", NULL));
    free(uw_xml_get(xml, end, "Message", NULL));
    free(uw_xml_get(xml, end, "UploadId", NULL));
    free(uw_xml_get(xml, end, "ETag", NULL));
    /* DeleteObjects results: repeated <Error> elements */
    const char *p = xml, *b, *be;
    while (uw_xml_find(p, end, "Error", &b, &be, &p)) {
        free(uw_xml_get(b, be, "Key", NULL));
        free(uw_xml_get(b, be, "Code", NULL));
    }
    free(xml);
    return 0;
}
