/* JSON output helpers (see json.h). */
#include "json.h"

#include <inttypes.h>
#include <stdio.h>

void pj_str(const char *s)
{
    putchar('"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            putchar(c);
            p++;
        } else {
            int n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            bool ok = n > 0;
            for (int i = 1; ok && i < n; i++)
                ok = (p[i] & 0xc0) == 0x80;
            if (ok && n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
                ok = false; /* overlong or surrogate */
            if (ok && n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
                ok = false;
            if (ok) {
                fwrite(p, 1, (size_t)n, stdout);
                p += n;
            } else {
                fputs("\\ufffd", stdout);
                p++;
            }
        }
    }
    putchar('"');
}

void pj_key(const char *k, bool *first)
{
    if (!*first)
        putchar(',');
    *first = false;
    pj_str(k);
    putchar(':');
}

void pj_kstr(const char *k, const char *v, bool *first)
{
    pj_key(k, first);
    if (v)
        pj_str(v);
    else
        fputs("null", stdout);
}

void pj_kint(const char *k, int64_t v, bool *first)
{
    pj_key(k, first);
    printf("%" PRId64, v);
}

void pj_kbool(const char *k, bool v, bool *first)
{
    pj_key(k, first);
    fputs(v ? "true" : "false", stdout);
}
