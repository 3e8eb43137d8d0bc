/* Writes the binary seeds of tests/fuzz/corpus with the library's own writers
 * (the code the tools store repositories with), so the fuzzers start from
 * valid files:
 *
 *   build-fuzz/fuzz-gen-corpus tests/fuzz/corpus
 *
 * stanza_info/, manifest/, object/ and object_enc/ (encrypted with the fixed
 * key of fuzz_object_enc.c). The text seeds of the other targets and the WAL
 * pages (from a real initdb) are checked in as they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/object.h"
#include "repo/manifest.h"
#include "repo/repo.h"

static const uw_key fuzz_key = {{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32},
                                {0},
                                {0}};

static void put(const char *dir, const char *sub, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "fuzz-gen-corpus: unable to write '%s'\n", path);
        exit(1);
    }
}

static void object(const char *dir, const char *sub, const char *name, uw_obj_kind kind,
                   const char *compress, const uw_key *key, const uint8_t *content, size_t len)
{
    uw_buf out = {0};
    uw_err err;
    uw_obj_write_opts o = {
        kind, 7312345678901234567ULL, uw_compressor_by_name(compress), 3, 0, key, NULL, name};
    uw_sink *w = uw_object_writer(&o, uw_buf_sink(&out), NULL, &err);
    if (!w || uw_sink_write(w, content, len, &err) < 0 || uw_sink_finish(w, &err) < 0) {
        fprintf(stderr, "fuzz-gen-corpus: %s\n", err.msg);
        exit(1);
    }
    uw_sink_free(w);
    put(dir, sub, name, out.data, out.len);
    uw_buf_free(&out);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz-gen-corpus CORPUS_DIR\n");
        return 2;
    }
    const char *dir = argv[1];

    /* stanza.info, plain and encrypted */
    uw_stanza_info si = {0};
    si.system_id = 7312345678901234567ULL;
    si.pg_version = 15;
    si.wal_seg_size = 16u << 20;
    si.created = 1764500000;
    snprintf(si.cipher_type, sizeof si.cipher_type, "none");
    char *t = uw_stanza_info_render(&si, NULL);
    put(dir, "stanza_info", "plain", t, strlen(t));
    free(t);
    snprintf(si.cipher_type, sizeof si.cipher_type, "aes-256-gcm");
    uw_kdf_params_new(&si.kdf);
    uw_key_check(&fuzz_key, si.key_check);
    t = uw_stanza_info_render(&si, &fuzz_key);
    put(dir, "stanza_info", "encrypted", t, strlen(t));
    free(t);

    /* a full and an incremental manifest */
    uw_manifest m;
    uw_manifest_init(&m);
    snprintf(m.id, sizeof m.id, "20261130-120000F");
    snprintf(m.type, sizeof m.type, "full");
    m.start_lsn = 0x3000028;
    m.stop_lsn = 0x3000138;
    m.timeline = 1;
    snprintf(m.start_wal, sizeof m.start_wal, "000000010000000000000003");
    snprintf(m.stop_wal, sizeof m.stop_wal, "000000010000000000000003");
    m.start_time = 1764504000;
    m.stop_time = 1764504012;
    m.duration_ms = 12034;
    m.pg_version = 15;
    m.system_id = si.system_id;
    m.wal_seg_size = si.wal_seg_size;
    m.size = m.stored = m.total_size = 24576;
    snprintf(m.compress_type, sizeof m.compress_type, "zstd");
    uw_mf_entry e = {0};
    e.type = 'd';
    e.mode = 0700;
    e.mtime = 1764504000;
    e.path = "base";
    uw_manifest_add(&m, &e);
    e.path = "base/5";
    uw_manifest_add(&m, &e);
    e.type = 'f';
    e.mode = 0600;
    e.path = "base/5/1259";
    e.size = 8192 * 3;
    e.stored = 412;
    memset(e.sha256, 0xab, 32);
    snprintf(e.ref, sizeof e.ref, "%s", m.id);
    snprintf(e.ext, sizeof e.ext, ".zst");
    uw_manifest_add(&m, &e);
    e.path = "PG_VERSION";
    e.size = 3;
    e.stored = 80;
    uw_manifest_add(&m, &e);
    e.path = "backup_label";
    e.size = 227;
    e.stored = 260;
    uw_manifest_add(&m, &e);
    e.path = "pg_tblspc/16385";
    e.type = 'l';
    e.mode = 0777;
    e.size = e.stored = 0;
    e.ext[0] = '\0';
    e.link = "/srv/tablespace with space";
    uw_manifest_add(&m, &e);
    t = uw_manifest_render(&m);
    put(dir, "manifest", "full", t, strlen(t));
    free(t);
    snprintf(m.id, sizeof m.id, "20261130-120000F_20261130-130000I");
    snprintf(m.type, sizeof m.type, "incr");
    snprintf(m.prior, sizeof m.prior, "20261130-120000F");
    m.encrypted = true;
    for (size_t i = 0; i < m.count; i++)
        if (m.entries[i].type == 'f' && strcmp(m.entries[i].path, "base/5/1259") == 0) {
            snprintf(m.entries[i].ref, sizeof m.entries[i].ref, "%s", m.id);
            snprintf(m.entries[i].base, sizeof m.entries[i].base, "20261130-120000F");
            snprintf(m.entries[i].ext, sizeof m.entries[i].ext, ".zst.enc");
        }
    t = uw_manifest_render(&m);
    put(dir, "manifest", "incr", t, strlen(t));
    free(t);
    uw_manifest_free(&m);

    /* objects: a WAL-like page run, a small file, metadata */
    uint8_t content[3 * 8192];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (uint8_t)(i % 8192 < 64 ? i * 7 : (i / 8192) + 'a');
    object(dir, "object", "wal-zstd", UW_OBJ_WAL, "zstd", NULL, content, sizeof content);
    object(dir, "object", "file-none", UW_OBJ_FILE, "none", NULL, content, 300);
    object(dir, "object", "meta-empty", UW_OBJ_META, "zstd", NULL, content, 0);
    object(dir, "object_enc", "wal-zstd", UW_OBJ_WAL, "zstd", &fuzz_key, content, sizeof content);
    object(dir, "object_enc", "file-none", UW_OBJ_FILE, "none", &fuzz_key, content, 300);
    object(dir, "object_enc", "meta-empty", UW_OBJ_META, "zstd", &fuzz_key, content, 0);
    return 0;
}
