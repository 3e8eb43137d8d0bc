/* The S3 driver's ListMultipartUploads parser (uw_s3_uploads_parse), which
 * the sweep of unfinished uploads pages with: the response of the AWS S3 API
 * reference's example (two uploads of one key, a truncated page), a last
 * page, and bodies that are no listing. The sweep itself runs against
 * s3rver in it.fault_backup_objstore. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"
#include "unit.h"

typedef struct {
    char keys[4][64], ids[4][64];
    int64_t times[4];
    int n;
} seen;

static int collect(void *ctx, const char *key, const char *id, int64_t initiated)
{
    seen *s = ctx;
    if (s->n < 4) {
        snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
        snprintf(s->ids[s->n], sizeof s->ids[0], "%s", id);
        s->times[s->n] = initiated;
    }
    s->n++;
    return 0;
}

static const char page1[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Bucket>bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
    "<NextKeyMarker>my-movie.m2ts</NextKeyMarker>"
    "<NextUploadIdMarker>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</NextUploadIdMarker>"
    "<MaxUploads>3</MaxUploads><IsTruncated>true</IsTruncated>"
    "<Upload><Key>my-divisor</Key>"
    "<UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>"
    "<Initiator><ID>arn:aws:iam::111122223333:user/user1-11111a31-17b5</ID>"
    "<DisplayName>user1-11111a31-17b5</DisplayName></Initiator>"
    "<Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>"
    "<DisplayName>OwnerDisplayName</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated>"
    "</Upload>"
    "<Upload><Key>my-movie.m2ts</Key>"
    "<UploadId>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</UploadId>"
    "<StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated>"
    "</Upload>"
    "<Upload><Key>a&amp;b/c</Key><UploadId>id3</UploadId>"
    "<Initiated>not a time</Initiated></Upload>"
    "</ListMultipartUploadsResult>";

static const char last[] = "<ListMultipartUploadsResult><Bucket>b</Bucket><KeyMarker>k</KeyMarker>"
                           "<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>";

static const char no_marker[] =
    "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><Upload><Key>k</Key>"
    "<UploadId>i</UploadId><Initiated>2026-12-01T00:00:00Z</Initiated></Upload>"
    "</ListMultipartUploadsResult>";

int main(void)
{
    uw_err err;
    char *nk, *ni;
    seen s;

    uw_t_section("a truncated page: uploads, times, next markers");
    memset(&s, 0, sizeof s);
    CHECK_OK(uw_s3_uploads_parse(page1, strlen(page1), "list", collect, &s, &nk, &ni, &err) == 0,
             err);
    CHECK_INT(s.n, 3);
    CHECK_STR(s.keys[0], "my-divisor");
    CHECK_STR(s.ids[0], "XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw");
    CHECK_INT(s.times[0], 1289422113); /* 2010-11-10T20:48:33Z */
    CHECK_STR(s.keys[1], "my-movie.m2ts");
    CHECK_STR(s.keys[2], "a&b/c");
    CHECK_INT(s.times[2], -1); /* unreadable: never taken for an old upload */
    CHECK_STR(nk, "my-movie.m2ts");
    CHECK_STR(ni, "YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ");
    free(nk);
    free(ni);

    uw_t_section("the last page: no markers");
    memset(&s, 0, sizeof s);
    CHECK_OK(uw_s3_uploads_parse(last, strlen(last), "list", collect, &s, &nk, &ni, &err) == 0,
             err);
    CHECK_INT(s.n, 0);
    CHECK(nk == NULL && ni == NULL);

    uw_t_section("no listing, or truncated without a marker");
    const char *bad = "<ListBucketResult></ListBucketResult>";
    CHECK_FAIL_CODE(
        uw_s3_uploads_parse(bad, strlen(bad), "list 'x/'", collect, &s, &nk, &ni, &err) < 0, err,
        UW_E_STORAGE);
    CHECK_CONTAINS(err.msg, "list 'x/'");
    CHECK_FAIL_CODE(uw_s3_uploads_parse(NULL, 0, "list", collect, &s, &nk, &ni, &err) < 0, err,
                    UW_E_STORAGE);
    memset(&s, 0, sizeof s);
    CHECK_FAIL_CODE(
        uw_s3_uploads_parse(no_marker, strlen(no_marker), "list", collect, &s, &nk, &ni, &err) < 0,
        err, UW_E_STORAGE);
    CHECK_CONTAINS(err.msg, "NextKeyMarker");
    free(nk);
    free(ni);
    return uw_t_done("test_s3_uploads");
}
