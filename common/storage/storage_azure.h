/* The Azure Blob driver's part of the HTTP client's contract (its storage
 * driver is uw_storage_azure in storage.h). */
#ifndef UW_STORAGE_AZURE_H
#define UW_STORAGE_AZURE_H

#include "storage/http.h"

/* How Azure Storage reports an error: <Error><Code>/<Message> in an XML body
 * (the message without the "RequestId:... Time:..." lines Azure appends), or,
 * with no body (HEAD), the x-ms-error-code header. Throttling and server-side
 * timeouts (ServerBusy, OperationTimedOut, InternalError) ask for a retry. The
 * driver's uw_http_opts.parse_error. */
void uw_azure_parse_error(const uw_http_response *resp, uw_http_service_error *out);

#endif
