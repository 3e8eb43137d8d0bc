/* An HTTP response head from S3 or Azure (common/storage/http.c): the status
 * line, then "Name: value" lines, with Retry-After and the error-code headers
 * read as the client reads them. Values are also run through the decoders
 * the drivers apply to header and configuration values (base64, %XX). */
#include <stdbool.h>

#include "fuzz.h"
#include "core/codec.h"
#include "storage/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    uw_http_headers h = {0};
    char reason[128];
    bool first = true;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        size_t l = strlen(line);
        while (l && line[l - 1] == '\r')
            line[--l] = '\0';
        if (first || strncmp(line, "HTTP/", 5) == 0) {
            /* as header_cb: a status line starts a new response */
            uw_http_status_line(line, l, reason, sizeof reason);
            if (strlen(reason) >= sizeof reason)
                abort();
            uw_http_headers_clear(&h);
            first = false;
            continue;
        }
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        uw_http_headers_add(&h, line, "%s", colon + 1);
        uw_http_retry_after_ms(colon + 1);
        size_t n;
        free(uw_base64_decode(colon + 1, &n));
        free(uw_uri_decode(colon + 1, strlen(colon + 1)));
    }
    const char *ra = uw_http_headers_get(&h, "Retry-After");
    if (ra)
        uw_http_retry_after_ms(ra);
    uw_http_headers_get(&h, "x-ms-error-code");
    uw_http_headers_get(&h, "x-amz-error-code");
    uw_http_headers_get(&h, "ETag");
    uw_http_headers_clear(&h);
    free(text);
    return 0;
}
