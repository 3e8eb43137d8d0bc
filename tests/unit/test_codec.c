/* The text codecs (core/codec.h: hex, percent-encoding, base64, dates) and
 * the minimal XML reader (core/xml.h) that the signers and the object-store
 * drivers rely on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/xml.h"
#include "unit.h"

static void test_hex(void)
{
    uw_t_section("hex");
    const uint8_t in[] = {0x00, 0x7f, 0x80, 0xab, 0xff};
    char out[11];
    uw_hex(in, sizeof in, out);
    CHECK_STR(out, "007f80abff");
    uint8_t back[5];
    CHECK(uw_unhex("007F80ABff", back, 5) == 0 && memcmp(back, in, 5) == 0);
    CHECK(uw_unhex("007f80abf", back, 5) == -1);  /* odd length */
    CHECK(uw_unhex("007f80abfg", back, 5) == -1); /* not a digit */
    CHECK_INT(uw_hexval('a'), 10);
    CHECK_INT(uw_hexval('F'), 15);
    CHECK_INT(uw_hexval('g'), -1);
}

static void test_uri(void)
{
    uw_t_section("percent-encoding");
    char *e = uw_uri_encode("a b/c~d", 7, true);
    CHECK_STR(e, "a%20b/c~d");
    free(e);
    e = uw_uri_encode("a b/c~d", 7, false);
    CHECK_STR(e, "a%20b%2Fc~d");
    free(e);
    /* only %XX decodes: '+' stays, a malformed escape is kept as it is */
    char *d = uw_uri_decode("a+b%2fc%zz%4", 12);
    CHECK_STR(d, "a+b/c%zz%4");
    free(d);
}

static void test_base64(void)
{
    uw_t_section("base64");
    struct {
        const char *in, *out;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *e = uw_base64_encode(v[i].in, strlen(v[i].in));
        CHECK_STR(e, v[i].out);
        size_t n = 0;
        uint8_t *d = uw_base64_decode(v[i].out, &n);
        CHECK(d && n == strlen(v[i].in) && memcmp(d, v[i].in, n) == 0);
        free(d);
        free(e);
    }
    uint8_t bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (uint8_t)(255 - i);
    char *e = uw_base64_encode(bin, sizeof bin);
    size_t n = 0;
    uint8_t *d = uw_base64_decode(e, &n);
    CHECK(d && n == 256 && memcmp(d, bin, 256) == 0);
    free(d);
    free(e);
    size_t dummy;
    CHECK(uw_base64_decode("Zm9", &dummy) == NULL);
    CHECK(uw_base64_decode("Z=9v", &dummy) == NULL);
    CHECK(uw_base64_decode("Zm9v!A==", &dummy) == NULL);
}

static void test_xml(void)
{
    uw_t_section("XML extraction");
    const char *x =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
        "<Message>The request signature we calculated does not match &amp; &lt;x&gt; "
        "&#233;&#x41;</Message><Empty/><Resource>/b/k</Resource></Error>";
    const char *end = x + strlen(x);
    char *c = uw_xml_get(x, end, "Code", NULL);
    CHECK_STR(c, "SignatureDoesNotMatch");
    free(c);
    char *m = uw_xml_get(x, end, "Message", NULL);
    CHECK_STR(m, "The request signature we calculated does not match & <x> \xC3\xA9"
                 "A");
    free(m);
    char *e = uw_xml_get(x, end, "Empty", NULL);
    CHECK_STR(e, "");
    free(e);
    CHECK(uw_xml_get(x, end, "Missing", NULL) == NULL);
    /* "Code" must not match "<CodeX>" */
    const char *y = "<CodeX>1</CodeX><Code>2</Code>";
    c = uw_xml_get(y, y + strlen(y), "Code", NULL);
    CHECK_STR(c, "2");
    free(c);
    /* iteration over repeated elements, nested bodies */
    const char *l = "<ListBucketResult><IsTruncated>true</IsTruncated>"
                    "<Contents><Key>a/1</Key><Size>10</Size></Contents>"
                    "<Contents><Key>a/2 &amp; 3</Key><Size>20</Size></Contents>"
                    "<CommonPrefixes><Prefix>a/sub/</Prefix></CommonPrefixes>"
                    "<NextContinuationToken>tok+/=</NextContinuationToken></ListBucketResult>";
    const char *le = l + strlen(l), *p = l, *b, *be;
    int n = 0;
    const char *keys[] = {"a/1", "a/2 & 3"};
    while (uw_xml_find(p, le, "Contents", &b, &be, &p)) {
        char *k = uw_xml_get(b, be, "Key", NULL);
        if (n < 2)
            CHECK_STR(k, keys[n]);
        free(k);
        n++;
    }
    CHECK_INT(n, 2);
    char *t = uw_xml_get(l, le, "NextContinuationToken", NULL);
    CHECK_STR(t, "tok+/=");
    free(t);
    char *esc = uw_xml_escape("a&b<c>\"d'");
    CHECK_STR(esc, "a&amp;b&lt;c&gt;&quot;d&apos;");
    free(esc);
    /* truncated input: no crash, no match */
    const char *tr = "<Code>abc";
    CHECK(uw_xml_get(tr, tr + strlen(tr), "Code", NULL) == NULL);
}

static void test_dates(void)
{
    uw_t_section("dates");
    char d[32];
    uw_date_iso8601(d);
    CHECK(strlen(d) == 16 && d[8] == 'T' && d[15] == 'Z');
    uw_date_rfc1123(d);
    CHECK(strlen(d) == 29 && strcmp(d + 26, "GMT") == 0);
}

int main(void)
{
    test_hex();
    test_uri();
    test_base64();
    test_xml();
    test_dates();
    return uw_t_done("test_codec");
}
