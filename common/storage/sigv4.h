/* AWS Signature Version 4 (header-based, AWS4-HMAC-SHA256), as a pure function:
 * no clock, no I/O, so it is unit-tested against AWS's published vectors.
 *
 * The caller builds the request exactly as it will be sent, then signs:
 *   - path: the URI path as sent on the wire, already percent-encoded once
 *     (S3 keys: uw_uri_encode(key, len, true)); used verbatim as the
 *     canonical URI (S3 does not normalise paths);
 *   - query: the query string as sent (without '?'); each name and value is
 *     %-decoded ('+' stays a literal plus), re-encoded per RFC 3986 and the pairs
 *     are sorted bytewise by name, then value; "name" alone means "name=";
 *   - headers: every header to sign, as "Name: value" lines (host and
 *     x-amz-date at least; S3 also wants x-amz-content-sha256 and, with
 *     temporary credentials, x-amz-security-token). Names are lower-cased,
 *     values trimmed and inner blank runs collapsed; repeated names are joined
 *     with ',' in the given order.
 */
#ifndef UW_SIGV4_H
#define UW_SIGV4_H

#include <stddef.h>

/* SHA-256 of an empty payload, in hex. */
#define UW_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
    const char *method;         /* "GET" */
    const char *path;           /* "/bucket/some%20key" */
    const char *query;          /* "list-type=2&prefix=a%2F" or NULL */
    const char *const *headers; /* "Name: value" lines to sign */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;     /* "20130524T000000Z" (its first 8 chars are the scope date) */
    const char *region;       /* "us-east-1" */
    const char *service;      /* "s3" */
    const char *access_key;
    const char *secret_key;
} uw_sigv4_input;

typedef struct {
    char *canonical_request;
    char *string_to_sign;
    char *signed_headers; /* "host;x-amz-content-sha256;x-amz-date" */
    char signature[65];   /* hex */
    char *authorization;  /* value of the Authorization header */
} uw_sigv4_result;

/* Fill out (free with uw_sigv4_result_free). The Authorization value is
 * "AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request,
 * SignedHeaders=<list>,Signature=<hex>" (no blanks after the commas, as S3
 * writes it; AWS accepts both). Never log it. */
void uw_sigv4_sign(const uw_sigv4_input *in, uw_sigv4_result *out);
void uw_sigv4_result_free(uw_sigv4_result *r);

/* The canonical query string of a wire query (see above). Caller frees. */
char *uw_sigv4_canonical_query(const char *query);

/* The signing key HMAC chain, exposed for tests: out = kSigning. */
void uw_sigv4_signing_key(const char *secret_key, const char *date8, const char *region,
                          const char *service, unsigned char out[32]);

#endif
