/* Text codecs of the wire protocols the storage drivers speak: hex, RFC 3986
 * percent-encoding, base64 and the date formats of HTTP and SigV4.
 *
 * They sit in core, below every layer that needs them (io for digests, storage
 * for signatures, URLs and headers, repo for manifests), because they are pure
 * functions of their input: no I/O, no state, no locale (ASCII ranges only, so
 * a signature never depends on LC_CTYPE). Allocated results are the caller's
 * to free; running out of memory aborts (see error.h) rather than return NULL. */
#ifndef UW_CODEC_H
#define UW_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Lower-case hex of [data, data+len); out must hold 2*len+1. */
void uw_hex(const uint8_t *data, size_t len, char *out);
/* Exactly 2*len hex digits (either case) into out; -1 on any other input. */
int uw_unhex(const char *hex, uint8_t *out, size_t len);
/* Value of one hex digit (either case), or -1. */
int uw_hexval(char c);

/* RFC 3986 percent-encoding of [s, s+len): unreserved characters
 * (A-Z a-z 0-9 - _ . ~) are kept, '/' too when keep_slash, everything else
 * (UTF-8 bytes included) becomes %XX with upper-case hex. */
char *uw_uri_encode(const char *s, size_t len, bool keep_slash);
/* Decode %XX (and nothing else; '+' stays '+', a malformed % is kept). */
char *uw_uri_decode(const char *s, size_t len);

/* Base64 (standard alphabet, padded). decode: trailing blanks/newlines are
 * ignored; returns the bytes and their length, or NULL on invalid input. */
char *uw_base64_encode(const void *data, size_t len);
uint8_t *uw_base64_decode(const char *s, size_t *out_len);

/* The current time as RFC 1123 ("Sun, 06 Nov 1994 08:49:37 GMT", HTTP dates,
 * Azure's x-ms-date) or ISO 8601 basic ("20150830T123600Z", SigV4's
 * x-amz-date), in UTC. buf must hold 32 bytes. */
void uw_date_rfc1123(char buf[32]);
void uw_date_iso8601(char buf[32]);

#endif
