/* The archive module's core (archive/module_core.c) without PostgreSQL: the
 * state it keeps between pushes, reloads, failures, and that log lines of
 * other threads reach the host's log function only on the owner thread.
 * Under the sanitizer build LeakSanitizer checks that nothing is left behind
 * after many pushes and the shutdown. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "module_core.h"
#include "repo/repo.h"
#include "unit.h"

enum { SEG = 4 << 20, NSEG = 6 };
static const uint64_t SYSID = 7300000000000000001ULL;

static char dir[256], repo[300], conf[300], wal[300];
static pthread_t main_thread;
static int emitted, emitted_off_thread, loads, reloads, pushed;
static char last_line[2048];

static void emit(uw_log_level level, const char *msg)
{
    (void)level;
    emitted++;
    if (!pthread_equal(pthread_self(), main_thread))
        emitted_off_thread++;
    if (strstr(msg, "configuration ") && strstr(msg, "loaded again"))
        reloads++;
    else if (strstr(msg, "configuration ") && strstr(msg, " loaded"))
        loads++;
    if (strncmp(msg, "pushed ", 7) == 0)
        pushed++;
    snprintf(last_line, sizeof last_line, "%s", msg);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void write_conf(const char *compress)
{
    char *text =
        uw_sprintf("[global]\nrepo1-path=%s\ncompress-type=%s\nlog-level=info\n", repo, compress);
    write_file(conf, text);
    free(text);
}

static void make_stanza(void)
{
    char *argv[] = {"t", "--config", conf, "--stanza", "u"};
    uw_err err;
    uw_err_clear(&err);
    uw_config *cfg = uw_config_load(5, argv, UW_CMD_PITR, &err);
    CHECKF(cfg != NULL, "%s", err.msg);
    uw_repo *repos = NULL;
    int n = 0;
    CHECKF(uw_repos_open(cfg, &repos, &n, &err) == 0, "%s", err.msg);
    uw_stanza_info info;
    memset(&info, 0, sizeof info);
    info.system_id = SYSID;
    info.pg_version = 15;
    info.wal_seg_size = SEG;
    snprintf(info.cipher_type, sizeof info.cipher_type, "none");
    CHECKF(uw_repo_save_info(&repos[0], &info, NULL, &err) == 0, "%s", err.msg);
    uw_repos_close(repos, n);
    uw_config_free(cfg);
}

/* A segment with a valid long page header and varied content. */
static char *make_segment(int segno)
{
    char *path = uw_sprintf("%s/00000001000000000000%04X", wal, segno);
    uint8_t *buf = uw_calloc(1, SEG);
    uint16_t magic = 0xD110, info = 0x0002;
    uint32_t tli = 1, seg = SEG, blck = 8192;
    uint64_t addr = (uint64_t)segno * SEG, sysid = SYSID;
    memcpy(buf, &magic, 2);
    memcpy(buf + 2, &info, 2);
    memcpy(buf + 4, &tli, 4);
    memcpy(buf + 8, &addr, 8);
    memcpy(buf + 24, &sysid, 8);
    memcpy(buf + 32, &seg, 4);
    memcpy(buf + 36, &blck, 4);
    uint32_t x = (uint32_t)segno * 2654435761u;
    for (size_t i = 64; i < SEG; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (i / 4096) % 3 ? (uint8_t)(x >> 24) : (uint8_t)(i & 7);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECKF(fd >= 0 && write(fd, buf, SEG) == SEG, "writing %s", path);
    close(fd);
    free(buf);
    return path;
}

/* Objects stored for a segment name; `zst` gets whether the one found is
 * compressed. */
static int objects(const char *name, bool *zst)
{
    char *d = uw_sprintf("%s/u/archive/%.16s", repo, name);
    DIR *dh = opendir(d);
    int n = 0;
    struct dirent *de;
    while (dh && (de = readdir(dh)))
        if (strncmp(de->d_name, name, 24) == 0 && de->d_name[24] == '-' &&
            !strstr(de->d_name, ".uwtmp.")) {
            n++;
            *zst = strstr(de->d_name, ".zst") != NULL;
        }
    if (dh)
        closedir(dh);
    free(d);
    return n;
}

static void *log_from_thread(void *arg)
{
    uw_log(UW_LOG_INFO, "%s", (const char *)arg);
    return NULL;
}

int main(void)
{
    main_thread = pthread_self();
    snprintf(dir, sizeof dir, "/tmp/uw-test-amod.XXXXXX");
    CHECKF(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(repo, sizeof repo, "%s/repo", dir);
    snprintf(conf, sizeof conf, "%s/ue-wal.conf", dir);
    snprintf(wal, sizeof wal, "%s/pg_wal", dir);
    mkdir(repo, 0750);
    mkdir(wal, 0700);
    write_conf("zstd");
    make_stanza();
    uw_amod_init(emit);

    uw_t_section("pushes keep the configuration");
    uw_err err;
    for (int i = 1; i <= NSEG; i++) {
        char *path = make_segment(i);
        uw_err_clear(&err);
        CHECKF(uw_amod_push(conf, "u", path, &err) == 0, "push %d: %s", i, err.msg);
        bool zst = false;
        CHECKF(objects(strrchr(path, '/') + 1, &zst) == 1 && zst, "segment %d stored compressed",
               i);
        free(path);
    }
    CHECKF(loads == 1, "configuration loaded once for %d pushes (%d)", NSEG, loads);
    CHECKF(pushed == NSEG, "%d 'pushed' lines (%d)", NSEG, pushed);
    CHECKF(emitted_off_thread == 0, "no line emitted off the owner thread");
    uw_err_clear(&err);
    char *again = uw_sprintf("%s/00000001000000000000%04X", wal, 1);
    CHECKF(uw_amod_push(conf, "u", again, &err) == 0, "same file again: %s", err.msg);
    CHECKF(strstr(last_line, "already archived") != NULL, "re-push recognised: %s", last_line);
    free(again);

    uw_t_section("a changed file is read again");
    sleep(1); /* a new mtime even on coarse clocks; the size differs anyway */
    write_conf("none");
    char *path = make_segment(NSEG + 1);
    uw_err_clear(&err);
    CHECKF(uw_amod_push(conf, "u", path, &err) == 0, "push after the edit: %s", err.msg);
    bool zst = true;
    CHECKF(objects(strrchr(path, '/') + 1, &zst) == 1 && !zst,
           "stored uncompressed after the edit");
    CHECKF(reloads == 1, "configuration loaded again once (%d)", reloads);
    free(path);

    uw_t_section("failures: reported, state dropped, then recovered");
    char *info = uw_sprintf("%s/u/stanza.info", repo), *aside = uw_sprintf("%s.aside", info);
    CHECKF(rename(info, aside) == 0, "moving stanza.info away");
    path = make_segment(NSEG + 2);
    uw_err_clear(&err);
    CHECKF(uw_amod_push(conf, "u", path, &err) < 0 && err.code == UW_E_STANZA,
           "stanza missing: code %d (%s)", (int)err.code, err.msg);
    CHECKF(strstr(err.msg, "does not exist") != NULL, "the message of ue-wal-push: %s", err.msg);
    CHECKF(rename(aside, info) == 0, "stanza.info back");
    uw_err_clear(&err);
    CHECKF(uw_amod_push(conf, "u", path, &err) == 0, "push after the repair: %s", err.msg);
    uw_err_clear(&err);
    CHECKF(uw_amod_push(conf, "nosuch", path, &err) < 0 && err.code == UW_E_STANZA,
           "another stanza setting applies at once: code %d", (int)err.code);
    uw_err_clear(&err);
    CHECKF(uw_amod_configure("/nonexistent/ue-wal.conf", "u", &err) < 0 && err.code == UW_E_CONFIG,
           "unreadable configuration: code %d (%s)", (int)err.code, err.msg);
    uw_err_clear(&err);
    CHECKF(uw_amod_push(conf, "u", path, &err) == 0, "back to the good settings: %s", err.msg);
    free(path);
    free(info);
    free(aside);

    uw_t_section("log lines of other threads");
    int before = emitted;
    pthread_t t;
    pthread_create(&t, NULL, log_from_thread, "line from a worker");
    pthread_join(t, NULL);
    CHECKF(emitted == before, "a worker's line is not emitted on its thread");
    uw_log(UW_LOG_INFO, "line from the owner");
    CHECKF(emitted == before + 2 && strcmp(last_line, "line from the owner") == 0,
           "queued line emitted first, by the owner");
    CHECKF(emitted_off_thread == 0, "nothing emitted off the owner thread");

    uw_amod_shutdown();
    char *cmd = uw_sprintf("rm -rf '%s'", dir);
    CHECKF(system(cmd) == 0, "cleanup");
    free(cmd);
    return uw_t_done("test_archive_module");
}
