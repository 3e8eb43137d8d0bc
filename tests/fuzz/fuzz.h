/* Shared by the libFuzzer targets (tests/fuzz/fuzz_*.c, built with -DUW_FUZZ=ON,
 * run by scripts/fuzz.sh). Each target feeds its input to the real parser of
 * the library, as it would arrive from a repository, a server or a file. */
#ifndef UW_FUZZ_H
#define UW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a NUL-terminated string (parsers of text metadata take C
 * strings; an embedded NUL ends the text as it would for them). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Error messages are one line and terminated: check what every failing parser
 * leaves behind. */
static inline void fuzz_check_err(const uw_err *err)
{
    size_t n = strnlen(err->msg, sizeof err->msg);
    if (n == sizeof err->msg)
        abort();
}

/* Metadata files end with a "checksum=<sha256 of everything before>" line,
 * which random mutations never get right. Returns the input resealed: the
 * text before its first checksum line (all of it when there is none), ended
 * with a newline, followed by a valid checksum line; so the fuzzer reaches
 * what the parsers do after the checksum passed. Caller frees. */
static inline char *fuzz_reseal(const uint8_t *data, size_t size)
{
    char *in = fuzz_text(data, size);
    char *ck = strstr(in, "checksum=");
    while (ck && ck != in && ck[-1] != '\n')
        ck = strstr(ck + 1, "checksum=");
    size_t body = ck ? (size_t)(ck - in) : strlen(in);
    char *out = malloc(body + 1 + 9 + 64 + 2);
    if (!out)
        abort();
    memcpy(out, in, body);
    if (body && out[body - 1] != '\n')
        out[body++] = '\n';
    uint8_t d[32];
    uw_sha256(out, body, d);
    memcpy(out + body, "checksum=", 9);
    uw_hex(d, 32, out + body + 9);
    memcpy(out + body + 9 + 64, "\n", 2);
    free(in);
    return out;
}

#endif
