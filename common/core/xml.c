/* Minimal XML reading and escaping for service responses. See xml.h. */
#include "core/xml.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/error.h"

bool uw_xml_find(const char *xml, const char *end, const char *tag, const char **body,
                 const char **body_end, const char **after)
{
    size_t tl = strlen(tag);
    const char *p = xml;
    while (p && p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt)
            return false;
        if ((size_t)(end - lt) > tl + 1 && memcmp(lt + 1, tag, tl) == 0) {
            const char *q = lt + 1 + tl;
            if (q < end && (*q == '>' || *q == '/' || isspace((unsigned char)*q))) {
                const char *gt = memchr(q, '>', (size_t)(end - q));
                if (!gt)
                    return false;
                if (gt[-1] == '/') { /* <tag/> */
                    *body = *body_end = gt + 1;
                    if (after)
                        *after = gt + 1;
                    return true;
                }
                const char *b = gt + 1;
                /* find "</tag>" */
                const char *s = b;
                while (s < end) {
                    const char *c = memchr(s, '<', (size_t)(end - s));
                    if (!c)
                        return false;
                    if ((size_t)(end - c) >= tl + 3 && c[1] == '/' && memcmp(c + 2, tag, tl) == 0 &&
                        c[2 + tl] == '>') {
                        *body = b;
                        *body_end = c;
                        if (after)
                            *after = c + 3 + tl;
                        return true;
                    }
                    s = c + 1;
                }
                return false;
            }
        }
        p = lt + 1;
    }
    return false;
}

static void put_utf8(char **o, unsigned long cp)
{
    char *p = *o;
    if (cp < 0x80) {
        *p++ = (char)cp;
    } else if (cp < 0x800) {
        *p++ = (char)(0xC0 | (cp >> 6));
        *p++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *p++ = (char)(0xE0 | (cp >> 12));
        *p++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *p++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *p++ = (char)(0xF0 | (cp >> 18));
        *p++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *p++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *p++ = (char)(0x80 | (cp & 0x3F));
    }
    *o = p;
}

char *uw_xml_get(const char *xml, const char *end, const char *tag, const char **after)
{
    const char *b, *e;
    if (!uw_xml_find(xml, end, tag, &b, &e, after))
        return NULL;
    /* decoded text is never longer than the source (entities shrink; &#N; of at
     * least 4 chars yields at most 4 UTF-8 bytes) */
    char *out = uw_malloc((size_t)(e - b) + 4), *o = out;
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    for (const char *p = b; p < e;) {
        if (*p == '&') {
            bool done = false;
            for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
                size_t n = strlen(ents[i].name);
                if ((size_t)(e - p - 1) >= n && memcmp(p + 1, ents[i].name, n) == 0) {
                    *o++ = ents[i].c;
                    p += 1 + n;
                    done = true;
                    break;
                }
            }
            if (!done && p + 2 < e && p[1] == '#') {
                const char *q = p + 2;
                int base = 10;
                if (*q == 'x' || *q == 'X') {
                    base = 16;
                    q++;
                }
                unsigned long cp = 0;
                const char *d = q;
                while (d < e && cp <= 0x10FFFF &&
                       (base == 16 ? isxdigit((unsigned char)*d) : isdigit((unsigned char)*d))) {
                    cp = cp * (unsigned long)base + (unsigned long)uw_hexval(*d);
                    d++;
                }
                if (d > q && d < e && *d == ';' && cp > 0 && cp <= 0x10FFFF) {
                    put_utf8(&o, cp);
                    p = d + 1;
                    done = true;
                }
            }
            if (!done)
                *o++ = *p++;
        } else if ((size_t)(e - p) >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            const char *q = p + 9;
            while (q + 2 < e && memcmp(q, "]]>", 3) != 0)
                *o++ = *q++;
            p = q + 2 < e ? q + 3 : e;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

char *uw_xml_escape(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += (*p == '&') ? 5 : (*p == '<' || *p == '>') ? 4 : (*p == '"' || *p == '\'') ? 6 : 1;
    char *out = uw_malloc(n + 1), *o = out;
    for (const char *p = s; *p; p++) {
        const char *r = NULL;
        switch (*p) {
        case '&': r = "&amp;"; break;
        case '<': r = "&lt;"; break;
        case '>': r = "&gt;"; break;
        case '"': r = "&quot;"; break;
        case '\'': r = "&apos;"; break;
        }
        if (r) {
            size_t rl = strlen(r);
            memcpy(o, r, rl);
            o += rl;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}
