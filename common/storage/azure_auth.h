/* Azure Blob service request signing (SharedKey) and URL encoding, as pure
 * functions with no I/O so that every step can be unit-tested against known
 * strings.
 *
 * SharedKey (service version 2015-02-21 and later):
 *
 *   StringToSign = VERB "\n" Content-Encoding "\n" Content-Language "\n"
 *                  Content-Length (empty when 0) "\n" Content-MD5 "\n"
 *                  Content-Type "\n" Date "\n" If-Modified-Since "\n"
 *                  If-Match "\n" If-None-Match "\n" If-Unmodified-Since "\n"
 *                  Range "\n" CanonicalizedHeaders CanonicalizedResource
 *
 *   CanonicalizedHeaders: every x-ms-* header, name lower-cased, sorted by
 *     name, "name:value\n" with the value trimmed and inner runs of
 *     whitespace folded to one space; repeated headers comma-joined.
 *   CanonicalizedResource: "/" account encoded-URI-path, then one
 *     "\nname:value" per query parameter: names lower-cased and sorted,
 *     names and values percent-decoded, repeated parameters' values sorted
 *     and comma-joined.
 *
 *   Authorization: SharedKey account:Base64(HMAC-SHA256(Base64Decode(key),
 *     StringToSign))
 */
#ifndef UW_AZURE_AUTH_H
#define UW_AZURE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    const char *name; /* any case */
    const char *value;
} uw_az_header;

/* Percent-encoding and base64 come from core/codec.h (uw_uri_encode/decode,
 * uw_base64_encode/decode). */

/* The canonicalized x-ms-* headers (each line ends with '\n'). */
char *uw_az_canon_headers(const uw_az_header *h, size_t n);
/* The canonicalized resource. path is the encoded URI path as sent, starting
 * with '/' (for path-style URLs it includes the account: "/acct/cont/blob");
 * query is the encoded query string without '?' (NULL or "" for none). */
char *uw_az_canon_resource(const char *account, const char *path, const char *query);
/* The whole string to sign. headers holds every request header (standard and
 * x-ms-*); names are matched case-insensitively. */
char *uw_az_string_to_sign(const char *verb, const uw_az_header *h, size_t n, const char *account,
                           const char *path, const char *query);
/* Base64 HMAC-SHA256 of sts with the base64 account key. Fails with
 * UW_E_OPTION when the key is not valid base64. */
int uw_az_sign(const char *key_b64, const char *sts, char **sig_b64, uw_err *err);
/* "SharedKey account:signature" for a request. */
int uw_az_authorization(const char *account, const char *key_b64, const char *verb,
                        const uw_az_header *h, size_t n, const char *path, const char *query,
                        char **out, uw_err *err);

/* Where requests for a container go. endpoint: "[http[s]://]host[:port]"
 * (https when no scheme; NULL: "<account>.blob.core.windows.net"), no path.
 * port: when non-zero, replaces the endpoint's port. Sets *base_url to
 * "scheme://host[:port]" and *url_root to the container's URL path:
 * "/container" (host style: the account is in the host name) or
 * "/account/container" (path style, e.g. Azurite). Fails with UW_E_OPTION. */
int uw_az_endpoint(const char *endpoint, const char *account, const char *container,
                   bool path_style, int port, char **base_url, char **url_root, uw_err *err);

/* Block ID for block number i of a Put Block List upload: the base64 of a
 * fixed-length string, so every ID of a blob has the same length. */
char *uw_az_block_id(uint32_t i);

#endif
