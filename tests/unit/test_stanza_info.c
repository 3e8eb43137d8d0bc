/* stanza.info rendering and parsing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/repo.h"
#include "unit.h"

static void sample_plain(uw_stanza_info *i)
{
    memset(i, 0, sizeof *i);
    i->system_id = 7234567890123456789ULL;
    i->pg_version = 15;
    i->wal_seg_size = 16u << 20;
    snprintf(i->cipher_type, sizeof i->cipher_type, "none");
    i->created = 1700000000;
}

static void sample_cipher(uw_stanza_info *i)
{
    sample_plain(i);
    snprintf(i->cipher_type, sizeof i->cipher_type, "aes-256-gcm");
    i->kdf.n = 1u << 15;
    i->kdf.r = 8;
    i->kdf.p = 1;
    for (int k = 0; k < UW_SALT_LEN; k++)
        i->kdf.salt[k] = (uint8_t)(0xA0 + k * 7);
    memset(i->key_check, 'c', 64);
    memcpy(i->key_check, "0123456789abcdef", 16);
    i->key_check[64] = '\0';
    i->wal_seg_size = 64u << 20;
}

static bool same(const uw_stanza_info *a, const uw_stanza_info *b)
{
    bool enc = strcmp(a->cipher_type, "none") != 0;
    return a->system_id == b->system_id && a->pg_version == b->pg_version &&
           a->wal_seg_size == b->wal_seg_size && a->created == b->created &&
           strcmp(a->cipher_type, b->cipher_type) == 0 &&
           (!enc || (a->kdf.n == b->kdf.n && a->kdf.r == b->kdf.r && a->kdf.p == b->kdf.p &&
                     memcmp(a->kdf.salt, b->kdf.salt, UW_SALT_LEN) == 0 &&
                     strcmp(a->key_check, b->key_check) == 0));
}

/* Replace the checksum line so the text is self-consistent again. */
static char *resign(const char *text)
{
    const char *ck = strstr(text, "checksum=");
    size_t body = ck ? (size_t)(ck - text) : strlen(text);
    char *b = uw_malloc(body + 1);
    memcpy(b, text, body);
    b[body] = '\0';
    uint8_t d[32];
    char hex[65];
    uw_sha256(b, body, d);
    uw_hex(d, 32, hex);
    char *out = uw_sprintf("%schecksum=%s\n", b, hex);
    free(b);
    return out;
}

/* text with the first occurrence of `from` replaced by `to` */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *p = strstr(text, from);
    if (!p)
        return uw_strdup(text);
    return uw_sprintf("%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
}

static void expect_bad(const char *text, const char *what)
{
    uw_stanza_info out;
    uw_err err;
    uw_err_clear(&err);
    int rc = uw_stanza_info_parse(text, &out, &err);
    CHECKF(rc < 0 && err.code == UW_E_REPO_FORMAT, "%s: rc %d code %d (%s)", what, rc,
           (int)err.code, err.msg);
}

static void test_round_trip(void)
{
    uw_t_section("render/parse round trip");
    uw_stanza_info in, out;
    uw_err err;
    uw_err_clear(&err);

    sample_plain(&in);
    char *text = uw_stanza_info_render(&in, NULL);
    CHECK_CONTAINS(text, "system-id=7234567890123456789\n");
    CHECK_CONTAINS(text, "wal-segment-size=16777216\n");
    CHECK_CONTAINS(text, "cipher-type=none\n");
    CHECK_NOT_CONTAINS(text, "kdf-");
    CHECK_CONTAINS(text, "\nchecksum=");
    CHECK_OK(uw_stanza_info_parse(text, &out, &err) == 0, err);
    CHECK(same(&in, &out));
    CHECK_U64(out.system_id, in.system_id);
    CHECK_INT(out.pg_version, 15);
    CHECK_STR(out.cipher_type, "none");
    /* rendering is deterministic */
    char *again = uw_stanza_info_render(&out, NULL);
    CHECK_STR(again, text);
    free(again);
    free(text);

    sample_cipher(&in);
    text = uw_stanza_info_render(&in, NULL);
    CHECK_CONTAINS(text, "cipher-type=aes-256-gcm\n");
    CHECK_CONTAINS(text, "kdf-n=32768\n");
    CHECK_CONTAINS(text, "key-check=0123456789abcdef");
    memset(&out, 0x55, sizeof out);
    CHECK_OK(uw_stanza_info_parse(text, &out, &err) == 0, err);
    CHECK(same(&in, &out));
    CHECK_U64(out.kdf.n, 1u << 15);
    CHECK_U64(out.kdf.r, 8);
    CHECK_U64(out.kdf.p, 1);
    CHECK(memcmp(out.kdf.salt, in.kdf.salt, UW_SALT_LEN) == 0);
    CHECK_STR(out.key_check, in.key_check);
    CHECK_U64(out.wal_seg_size, 64u << 20);
    free(text);

    /* Extremes. */
    sample_plain(&in);
    in.system_id = UINT64_MAX;
    in.wal_seg_size = 1u << 30;
    in.created = INT64_MAX;
    text = uw_stanza_info_render(&in, NULL);
    CHECK_OK(uw_stanza_info_parse(text, &out, &err) == 0, err);
    CHECK(same(&in, &out));
    free(text);
}

static void test_corruption(void)
{
    uw_t_section("corrupted stanza info");
    uw_stanza_info in;
    sample_cipher(&in);
    char *text = uw_stanza_info_render(&in, NULL);
    size_t len = strlen(text);

    /* Change each digit (not the checksum itself) to another digit. */
    const char *ck = strstr(text, "checksum=");
    int digits = 0;
    for (size_t i = 0; text + i < ck; i++) {
        if (text[i] < '0' || text[i] > '9')
            continue;
        char *t = uw_strdup(text);
        t[i] = t[i] == '9' ? '0' : (char)(t[i] + 1);
        char what[64];
        snprintf(what, sizeof what, "digit at %zu", i);
        expect_bad(t, what);
        free(t);
        digits++;
    }
    CHECKF(digits > 40, "only %d digits tried", digits);
    /* Change a letter of a key or value. */
    char *t = replace(text, "cipher-type=aes-256-gcm", "cipher-type=aes-256-gcn");
    expect_bad(t, "cipher type letter");
    free(t);
    /* Change a digit of the checksum. */
    t = uw_strdup(text);
    size_t cpos = (size_t)(strstr(t, "checksum=") - t) + 9 + 10;
    t[cpos] = t[cpos] == '0' ? '1' : '0';
    expect_bad(t, "checksum digit");
    free(t);
    /* Drop a line. */
    t = replace(text, "pg-version=15\n", "");
    expect_bad(t, "line removed");
    free(t);
    /* Add a line before the checksum. */
    t = replace(text, "checksum=", "repo-extra=1\nchecksum=");
    expect_bad(t, "line added");
    free(t);
    /* Missing checksum. */
    t = uw_strdup(text);
    *strstr(t, "checksum=") = '\0';
    expect_bad(t, "checksum line removed");
    free(t);
    t = replace(text, "checksum=", "checksun=");
    expect_bad(t, "checksum key misspelt");
    free(t);
    t = replace(text, "checksum=", "xchecksum=");
    expect_bad(t, "checksum not at line start");
    free(t);
    /* Truncations. */
    for (size_t cut = 0; cut < len - 1; cut += 5) {
        t = uw_strdup(text);
        t[cut] = '\0';
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu", cut);
        expect_bad(t, what);
        free(t);
    }
    t = uw_strdup(text);
    t[len - 2] = '\0'; /* last checksum digit gone */
    expect_bad(t, "last checksum digit removed");
    free(t);
    expect_bad("", "empty");
    expect_bad("checksum=", "only the checksum key");

    uw_t_section("self-consistent but unsupported");
    /* Other format versions (the old format 1 included) are exit 153. */
    const char *versions[] = {"format=1\n", "format=3\n", "format=10\n"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        char *f2 = replace(text, "format=2\n", versions[i]);
        CHECK_CONTAINS(f2, versions[i]);
        t = resign(f2);
        free(f2);
        uw_stanza_info out;
        uw_err err;
        uw_err_clear(&err);
        CHECK_FAIL_CODE(uw_stanza_info_parse(t, &out, &err) < 0, err, UW_E_FORMAT_VERSION);
        CHECK_CONTAINS(err.msg, "format");
        free(t);
    }
    /* resign() itself produces a valid file from a valid body */
    t = resign(text);
    {
        uw_stanza_info out;
        uw_err err;
        uw_err_clear(&err);
        CHECK_OK(uw_stanza_info_parse(t, &out, &err) == 0, err);
    }
    free(t);
    const char *swaps[][2] = {
        {"format=2\n", "format=\n"},
        {"format=2\n", ""},
        {"wal-segment-size=67108864\n", "wal-segment-size=12345\n"},
        {"wal-segment-size=67108864\n", "wal-segment-size=2147483648\n"},
        {"wal-segment-size=67108864\n", ""},
        {"system-id=7234567890123456789\n", ""},
        {"kdf-salt=", "kdf-salt=zz"},
    };
    for (size_t i = 0; i < sizeof swaps / sizeof swaps[0]; i++) {
        char *r = replace(text, swaps[i][0], swaps[i][1]);
        t = resign(r);
        char what[128];
        snprintf(what, sizeof what, "'%.*s' -> '%.*s'", (int)strcspn(swaps[i][0], "\n"),
                 swaps[i][0], (int)strcspn(swaps[i][1], "\n"), swaps[i][1]);
        expect_bad(t, what);
        free(t);
        free(r);
    }
    free(text);
}

/* An encrypted stanza's info is authenticated with a key from the passphrase:
 * no field can be changed (cipher-type=none, cheaper or costlier KDF
 * parameters) by someone who can only recompute the keyless checksum. */
static void test_auth(void)
{
    uw_t_section("authenticated stanza info");
    uw_stanza_info in, out;
    uw_err err;
    uw_err_clear(&err);
    sample_cipher(&in);
    in.kdf.n = 1u << 10; /* fast for the test */
    uw_key key, other;
    CHECK_OK(uw_kdf_derive("stanza info pass", &in.kdf, &key, &err) == 0, err);
    CHECK_OK(uw_kdf_derive("another pass", &in.kdf, &other, &err) == 0, err);
    char *text = uw_stanza_info_render(&in, &key);
    CHECK_CONTAINS(text, "\nmac=");
    CHECK_OK(uw_stanza_info_parse(text, &out, &err) == 0, err);
    CHECK_OK(uw_stanza_info_auth(text, &key, &err) == 0, err);
    CHECK_FAIL_CODE(uw_stanza_info_auth(text, &other, &err) < 0, err, UW_E_DECRYPT);
    const char *edits[][2] = {
        {"cipher-type=aes-256-gcm\n", "cipher-type=none\n"},
        {"kdf-n=1024\n", "kdf-n=2048\n"},
        {"kdf-r=8\n", "kdf-r=9\n"},
        {"system-id=7234567890123456789\n", "system-id=7234567890123456788\n"},
        {"mac=", "mac=0"},
        {"checksum=", "cipher-type=none\nchecksum="},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *r = replace(text, edits[i][0], edits[i][1]);
        char *t = resign(r);
        CHECKF(strcmp(t, text) != 0, "edit %zu changed nothing", i);
        uw_err_clear(&err);
        CHECKF(uw_stanza_info_auth(t, &key, &err) < 0 && err.code == UW_E_DECRYPT,
               "edit %zu accepted", i);
        free(t);
        free(r);
    }
    /* Without the mac line at all. */
    char *r = uw_strdup(text);
    char *m = strstr(r, "mac=");
    memmove(m, strchr(m, '\n') + 1, strlen(strchr(m, '\n') + 1) + 1);
    char *t = resign(r);
    CHECK_FAIL_CODE(uw_stanza_info_auth(t, &key, &err) < 0, err, UW_E_DECRYPT);
    free(t);
    free(r);
    free(text);
    uw_key_wipe(&key);
    uw_key_wipe(&other);
}

int main(void)
{
    test_round_trip();
    test_corruption();
    test_auth();
    return uw_t_done("test_stanza_info");
}
