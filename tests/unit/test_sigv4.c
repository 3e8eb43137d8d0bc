/* AWS Signature Version 4 against the published vectors (S3 API reference
 * "Signature Calculations for the Authorization Header" examples and the
 * generic aws-sig-v4-test-suite), plus canonicalisation edge cases, the URI
 * encoding of object keys the signer relies on, and http.h's header lists.
 * The codecs themselves are tested in test_codec.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "storage/http.h"
#include "storage/sigv4.h"
#include "io/sink.h"
#include "unit.h"

#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_KEY "AKIAIOSFODNN7EXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_KEY "AKIDEXAMPLE"

static const char empty_sha_line[] = "x-amz-content-sha256: " UW_SIGV4_EMPTY_SHA256;

static void sha_hex(const char *s, char out[65])
{
    uint8_t d[32];
    uw_sha256(s, strlen(s), d);
    uw_hex(d, 32, out);
}

/* Sign with the S3 examples' fixed parameters. */
static void s3_sign(const char *method, const char *path, const char *query,
                    const char *const *headers, size_t n, const char *payload, uw_sigv4_result *r)
{
    uw_sigv4_input in = {method,      path, query,  headers,  n, payload, "20130524T000000Z",
                         "us-east-1", "s3", S3_KEY, S3_SECRET};
    uw_sigv4_sign(&in, r);
}

static void test_s3_examples(void)
{
    uw_t_section("S3 documentation examples");
    char h[65];
    {
        /* GET Object: first 10 bytes of test.txt */
        const char *hd[] = {"Host: examplebucket.s3.amazonaws.com", "Range: bytes=0-9",
                            empty_sha_line, "x-amz-date: 20130524T000000Z"};
        uw_sigv4_result r;
        s3_sign("GET", "/test.txt", NULL, hd, 4, UW_SIGV4_EMPTY_SHA256, &r);
        CHECK_STR(r.canonical_request,
                  "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                  "x-amz-content-sha256:" UW_SIGV4_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
                  "host;range;x-amz-content-sha256;x-amz-date\n" UW_SIGV4_EMPTY_SHA256);
        CHECK_STR(r.string_to_sign,
                  "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                  "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
        CHECK_STR(r.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
        CHECK_STR(r.authorization,
                  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                  "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                  "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
        uw_sigv4_result_free(&r);
    }
    {
        /* PUT Object "test$file.text": '$' is percent-encoded in the path; headers
         * arrive unsorted and in mixed case. */
        sha_hex("Welcome to Amazon S3.", h);
        CHECK_STR(h, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
        char *path = uw_uri_encode("/test$file.text", 15, true);
        CHECK_STR(path, "/test%24file.text");
        char sha_line[128];
        snprintf(sha_line, sizeof sha_line, "X-Amz-Content-Sha256: %s", h);
        const char *hd[] = {"x-amz-storage-class: REDUCED_REDUNDANCY",
                            "Host: examplebucket.s3.amazonaws.com", sha_line,
                            "Date: Fri, 24 May 2013 00:00:00 GMT", "x-amz-date: 20130524T000000Z"};
        uw_sigv4_result r;
        s3_sign("PUT", path, "", hd, 5, h, &r);
        CHECK_STR(r.signed_headers,
                  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
        CHECK_CONTAINS(r.string_to_sign,
                       "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
        CHECK_STR(r.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
        uw_sigv4_result_free(&r);
        free(path);
    }
    {
        /* GET Bucket Lifecycle: "?lifecycle" has no value -> "lifecycle=" */
        const char *hd[] = {"Host: examplebucket.s3.amazonaws.com", "x-amz-date: 20130524T000000Z",
                            empty_sha_line};
        uw_sigv4_result r;
        s3_sign("GET", "/", "lifecycle", hd, 3, UW_SIGV4_EMPTY_SHA256, &r);
        CHECK_CONTAINS(r.canonical_request, "GET\n/\nlifecycle=\nhost:");
        CHECK_CONTAINS(r.string_to_sign,
                       "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
        CHECK_STR(r.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
        uw_sigv4_result_free(&r);
    }
    {
        /* Get Bucket (List Objects) */
        const char *hd[] = {"Host: examplebucket.s3.amazonaws.com", "x-amz-date: 20130524T000000Z",
                            empty_sha_line};
        uw_sigv4_result r;
        s3_sign("GET", "/", "prefix=J&max-keys=2", hd, 3, UW_SIGV4_EMPTY_SHA256, &r);
        CHECK_CONTAINS(r.canonical_request, "GET\n/\nmax-keys=2&prefix=J\n");
        CHECK_CONTAINS(r.string_to_sign,
                       "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
        CHECK_STR(r.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
        uw_sigv4_result_free(&r);
    }
}

/* aws-sig-v4-test-suite: service "service", host example.amazonaws.com. */
static void suite_sign(const char *method, const char *path, const char *query,
                       const char *const *extra, size_t nextra, const char *payload,
                       uw_sigv4_result *r)
{
    const char *hd[8] = {"Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"};
    size_t n = 2;
    for (size_t i = 0; i < nextra && n < 8; i++)
        hd[n++] = extra[i];
    uw_sigv4_input in = {
        method,      path,      query,     hd,          n, payload, "20150830T123600Z",
        "us-east-1", "service", SUITE_KEY, SUITE_SECRET};
    uw_sigv4_sign(&in, r);
}

static void check_suite(const char *name, const char *method, const char *path, const char *query,
                        const char *const *extra, size_t nextra, const char *body,
                        const char *want_sig)
{
    char ph[65];
    sha_hex(body, ph);
    uw_sigv4_result r;
    suite_sign(method, path, query, extra, nextra, ph, &r);
    CHECKF(strcmp(r.signature, want_sig) == 0, "%s: signature %s, want %s; canonical request:\n%s",
           name, r.signature, want_sig, r.canonical_request);
    uw_sigv4_result_free(&r);
}

static void test_suite_vectors(void)
{
    uw_t_section("aws-sig-v4-test-suite vectors");
    check_suite("get-vanilla", "GET", "/", NULL, NULL, 0, "",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    {
        uw_sigv4_result r;
        suite_sign("GET", "/", NULL, NULL, 0, UW_SIGV4_EMPTY_SHA256, &r);
        CHECK_STR(r.authorization,
                  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                  "aws4_request,SignedHeaders=host;x-amz-date,Signature="
                  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
        uw_sigv4_result_free(&r);
    }
    check_suite("get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", NULL,
                0, "", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    check_suite("get-vanilla-query-order-value", "GET", "/", "Param1=value2&Param1=value1", NULL, 0,
                "", "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694");
    /* "/?ሴ=bar": UTF-8 in the query name, sent encoded */
    check_suite("get-vanilla-utf8-query", "GET", "/", "%E1%88%B4=bar", NULL, 0, "",
                "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
    check_suite("get-unreserved", "GET",
                "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", NULL, NULL,
                0, "", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
    {
        const char *x[] = {"My-Header1:value4", "My-Header1:value1", "My-Header1:value3",
                           "My-Header1:value2"};
        check_suite("get-header-value-order", "GET", "/", NULL, x, 4, "",
                    "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01");
    }
    {
        const char *x[] = {"My-Header1:value2", "My-Header1:value2", "My-Header1:value1"};
        check_suite("get-header-key-duplicate", "GET", "/", NULL, x, 3, "",
                    "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
    }
    {
        const char *x[] = {"My-Header1: value1", "My-Header2: \"a   b   c\""};
        check_suite("get-header-value-trim", "GET", "/", NULL, x, 2, "",
                    "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
        uw_sigv4_result r;
        suite_sign("GET", "/", NULL, x, 2, UW_SIGV4_EMPTY_SHA256, &r);
        CHECK_CONTAINS(r.canonical_request, "my-header1:value1\nmy-header2:\"a b c\"\n");
        uw_sigv4_result_free(&r);
    }
    {
        const char *x[] = {"Content-Type:application/x-www-form-urlencoded"};
        check_suite("post-x-www-form-urlencoded", "POST", "/", NULL, x, 1, "Param1=value1",
                    "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
    }
    {
        const char *x[] = {"X-Amz-Security-Token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa"
                           "31553b73ebf194267"};
        check_suite("session token (x-amz-security-token signed)", "GET", "/", NULL, x, 1, "",
                    "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
    }
    /* get-space / get-utf8: the path as the S3 driver encodes it */
    {
        char *p = uw_uri_encode("/example space/", 15, true);
        CHECK_STR(p, "/example%20space/");
        free(p);
        p = uw_uri_encode("/\xE1\x88\xB4", 4, true);
        CHECK_STR(p, "/%E1%88%B4");
        free(p);
    }
}

static void check_cq(const char *in, const char *want)
{
    char *cq = uw_sigv4_canonical_query(in);
    CHECKF(strcmp(cq, want) == 0, "canonical query of '%s' is '%s', want '%s'", in ? in : "(null)",
           cq, want);
    free(cq);
}

static void test_canonical_query(void)
{
    uw_t_section("canonical query: sorting and encoding");
    check_cq(NULL, "");
    check_cq("", "");
    check_cq("Param2=value2&Param1=value1", "Param1=value1&Param2=value2");
    /* bytewise: upper case sorts before lower case, "1" before "9" */
    check_cq("b=1&B=2&a=3", "B=2&a=3&b=1");
    check_cq("a=10&a=9", "a=10&a=9");
    check_cq("x=a.b&x=a%2Fb", "x=a%2Fb&x=a.b");
    check_cq("a=1&a=1", "a=1&a=1");
    /* '+' is a literal plus on the wire, not a space */
    check_cq("q=a+b", "q=a%2Bb");
    check_cq("q=a%20b", "q=a%20b");
    check_cq("b&a=1", "a=1&b=");
    check_cq("a=1=2", "a=1%3D2");
    /* unreserved escapes decode, lower-case hex becomes upper case */
    check_cq("q=%7Ea&r=%2f", "q=~a&r=%2F");
    check_cq("&&a=1&", "a=1");
    /* ListObjectsV2 as the driver sends it */
    check_cq("prefix=db%2Farchive%2F&list-type=2&delimiter=%2F&continuation-token=1%2B2%3D%3D",
             "continuation-token=1%2B2%3D%3D&delimiter=%2F&list-type=2&prefix=db%2Farchive%2F");
    /* keys with spaces, unicode and '=' */
    check_cq("prefix=a%20b%3Dc%C3%A9", "prefix=a%20b%3Dc%C3%A9");
    check_cq("uploadId=abc&partNumber=10", "partNumber=10&uploadId=abc");
    check_cq("delete", "delete=");
    check_cq("uploads=", "uploads=");
}

static void test_object_keys(void)
{
    uw_t_section("object key paths: spaces, unicode, '='");
    struct {
        const char *key, *want;
    } cases[] = {
        {"/bucket/db/archive/000000010000000000000001-ab.zst",
         "/bucket/db/archive/000000010000000000000001-ab.zst"},
        {"/bucket/a b/c", "/bucket/a%20b/c"},
        {"/bucket/k=v", "/bucket/k%3Dv"},
        {"/bucket/caf\xC3\xA9", "/bucket/caf%C3%A9"},
        {"/bucket/a+b&c?d#e%f", "/bucket/a%2Bb%26c%3Fd%23e%25f"},
        {"/bucket/~x_y-z.w", "/bucket/~x_y-z.w"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = uw_uri_encode(cases[i].key, strlen(cases[i].key), true);
        CHECK_STR(p, cases[i].want);
        char *d = uw_uri_decode(p, strlen(p));
        CHECK_STR(d, cases[i].key);
        free(d);
        free(p);
    }
    char *q = uw_uri_encode("a/b", 3, false);
    CHECK_STR(q, "a%2Fb");
    free(q);
    /* A signature over an encoded key: canonical request carries the path verbatim. */
    const char *hd[] = {"Host: 127.0.0.1:9000", "x-amz-date: 20130524T000000Z",
                        "x-amz-content-sha256: UNSIGNED-PAYLOAD"};
    uw_sigv4_result r;
    s3_sign("GET", "/bucket/a%20b%3Dc%C3%A9", NULL, hd, 3, "UNSIGNED-PAYLOAD", &r);
    CHECK_CONTAINS(r.canonical_request, "GET\n/bucket/a%20b%3Dc%C3%A9\n\nhost:127.0.0.1:9000\n");
    CHECK(strlen(r.signature) == 64);
    uw_sigv4_result_free(&r);
    /* A different secret changes the signature; the secret never appears. */
    uw_sigv4_input in = {
        "GET", "/",    NULL,          hd, 3, "UNSIGNED-PAYLOAD", "20130524T000000Z", "us-east-1",
        "s3",  S3_KEY, "other-secret"};
    uw_sigv4_result r2;
    uw_sigv4_sign(&in, &r2);
    s3_sign("GET", "/", NULL, hd, 3, "UNSIGNED-PAYLOAD", &r);
    CHECK(strcmp(r.signature, r2.signature) != 0);
    CHECK_NOT_CONTAINS(r2.authorization, "other-secret");
    CHECK_NOT_CONTAINS(r2.canonical_request, "other-secret");
    uw_sigv4_result_free(&r);
    uw_sigv4_result_free(&r2);
}

static void test_signing_key(void)
{
    uw_t_section("signing key derivation");
    /* From the AWS "derive a signing key" example (IAM, us-east-1, 20120215). */
    unsigned char k[32];
    char hex[65];
    uw_sigv4_signing_key(SUITE_SECRET, "20120215", "us-east-1", "iam", k);
    uw_hex(k, 32, hex);
    CHECK_STR(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

static void test_headers(void)
{
    uw_t_section("header lists");
    uw_http_headers h = {0};
    uw_http_headers_add(&h, "ETag", "\"%s\"", "abc");
    uw_http_headers_add(&h, "Content-Length", "%d", 42);
    CHECK_STR(uw_http_headers_get(&h, "etag"), "\"abc\"");
    CHECK_STR(uw_http_headers_get(&h, "CONTENT-LENGTH"), "42");
    CHECK(uw_http_headers_get(&h, "Content") == NULL);
    uw_http_headers_clear(&h);
    CHECK(h.n == 0 && h.v == NULL);
}

int main(void)
{
    test_s3_examples();
    test_suite_vectors();
    test_canonical_query();
    test_object_keys();
    test_signing_key();
    test_headers();
    return uw_t_done("test_sigv4");
}
