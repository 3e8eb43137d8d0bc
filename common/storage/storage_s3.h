/* The S3 driver's part of the HTTP client's contract (its storage driver is
 * uw_storage_s3 in storage.h). */
#ifndef UW_STORAGE_S3_H
#define UW_STORAGE_S3_H

#include "storage/http.h"

/* How S3 reports an error: <Error><Code>/<Message> in an XML body, or, with no
 * body (HEAD), the x-amz-error-code / x-amz-error-message headers some
 * compatible servers send. Throttling and server-side timeouts (SlowDown,
 * RequestTimeout, InternalError, ServiceUnavailable, Throttling,
 * ThrottlingException) ask for a retry. The driver's uw_http_opts.parse_error. */
void uw_s3_parse_error(const uw_http_response *resp, uw_http_service_error *out);

#endif
