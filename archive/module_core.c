#include "module_core.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "io/compress.h"
#include "work/push_set.h"

static struct {
    pthread_t owner;
    uw_log_sink emit;
    char *config, *stanza; /* the settings the kept state was built from */
    uw_config *cfg;
    struct stat file; /* the configuration file as it was read */
    bool have_file;
    uw_push_set set; /* open when set.repos */
} st;

/* ---- log lines from library threads ----
 * PostgreSQL's elog is not thread-safe: lines logged off the owner thread
 * wait here until the owner emits them. Beyond QUEUE_MAX they go to stderr
 * (PostgreSQL's log too, without its prefix) rather than being lost. */
enum { QUEUE_MAX = 128 };
static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uw_log_level level;
    char *msg;
} queue[QUEUE_MAX];
static int q_len;

static void flush_queue(void)
{
    for (;;) {
        pthread_mutex_lock(&q_mu);
        if (!q_len) {
            pthread_mutex_unlock(&q_mu);
            return;
        }
        uw_log_level level = queue[0].level;
        char *msg = queue[0].msg;
        memmove(queue, queue + 1, (size_t)(q_len - 1) * sizeof queue[0]);
        q_len--;
        pthread_mutex_unlock(&q_mu);
        st.emit(level, msg);
        free(msg);
    }
}

static void sink(uw_log_level level, const char *msg)
{
    if (pthread_equal(pthread_self(), st.owner)) {
        flush_queue(); /* keep the order of what came before */
        st.emit(level, msg);
        return;
    }
    pthread_mutex_lock(&q_mu);
    if (q_len < QUEUE_MAX) {
        queue[q_len].level = level;
        queue[q_len].msg = uw_strdup(msg);
        q_len++;
        pthread_mutex_unlock(&q_mu);
        return;
    }
    pthread_mutex_unlock(&q_mu);
    static const char *const upper[] = {"ERROR", "WARN", "INFO", "DETAIL", "DEBUG"};
    fprintf(stderr, "ue_wal_archive: %s: %s\n", upper[level], msg);
}

void uw_amod_init(uw_log_sink emit)
{
    st.owner = pthread_self();
    st.emit = emit;
    uw_log_init("ue_wal_archive");
    uw_log_set_sink(sink);
}

/* ---- kept state ---- */

static void drop_set(void)
{
    uw_push_set_close(&st.set);
}

static void drop_all(void)
{
    drop_set();
    uw_config_free(st.cfg);
    st.cfg = NULL;
    free(st.config);
    free(st.stanza);
    st.config = st.stanza = NULL;
    st.have_file = false;
}

static bool same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* The file uw_config_load reads for these settings (its own rule). */
static const char *file_for(const char *config)
{
    if (config && *config)
        return config;
    const char *env = getenv("UE_WAL_CONFIG");
    return env && *env ? env : uw_options[UW_OPT_CONFIG].def;
}

static bool file_changed(void)
{
    struct stat sb;
    if (stat(file_for(st.config), &sb) < 0)
        return st.have_file;
    return !st.have_file || sb.st_dev != st.file.st_dev || sb.st_ino != st.file.st_ino ||
           sb.st_size != st.file.st_size || sb.st_mtim.tv_sec != st.file.st_mtim.tv_sec ||
           sb.st_mtim.tv_nsec != st.file.st_mtim.tv_nsec ||
           sb.st_ctim.tv_sec != st.file.st_ctim.tv_sec ||
           sb.st_ctim.tv_nsec != st.file.st_ctim.tv_nsec;
}

int uw_amod_configure(const char *config, const char *stanza, uw_err *err)
{
    if (st.cfg && same_str(config, st.config) && same_str(stanza, st.stanza) && !file_changed())
        return 0;
    bool reload = st.cfg != NULL;
    drop_all();
    /* The settings as ue-wal-push's command line would give them. */
    char *argv[5] = {"ue_wal_archive"};
    int argc = 1;
    if (config && *config) {
        argv[argc++] = "--config";
        argv[argc++] = (char *)config;
    }
    if (stanza && *stanza) {
        argv[argc++] = "--stanza";
        argv[argc++] = (char *)stanza;
    }
    /* Stat before reading: an edit racing the read makes the next call
     * read the file again. */
    struct stat sb;
    memset(&sb, 0, sizeof sb);
    bool have_file = stat(file_for(config), &sb) == 0;
    uw_config *cfg = uw_config_load(argc, argv, UW_CMD_PUSH, err);
    if (!cfg)
        return -1; /* ue-wal-push's message as it is: it names the file */
    if (!uw_cfg_str(cfg, UW_OPT_STANZA)) {
        uw_config_free(cfg);
        return uw_fail(err, UW_E_OPTION,
                       "option 'stanza' is required: set ue_wal_archive.stanza, or stanza in the "
                       "[global] section of the configuration file");
    }
    st.cfg = cfg;
    st.file = sb;
    st.have_file = have_file;
    st.config = uw_strdup(config ? config : "");
    st.stanza = uw_strdup(stanza ? stanza : "");
    if (uw_cfg_bool(cfg, UW_OPT_ARCHIVE_ASYNC))
        uw_log(UW_LOG_INFO, "archive-async is set but the archive module pushes each file when "
                            "PostgreSQL asks for it (synchronously)");
    /* One line per (re)load: the log shows what the module archives with. */
    uw_log(UW_LOG_INFO, "configuration %s for stanza '%s'%s",
           uw_cfg_file(cfg) ? uw_cfg_file(cfg) : "(no file)", uw_cfg_str(cfg, UW_OPT_STANZA),
           reload ? " loaded again (settings or file changed)" : " loaded");
    return 0;
}

/* Signals PostgreSQL handles stay pending while library threads run
 * (they inherit the mask); SIGQUIT (immediate shutdown: _exit in any
 * thread) and faults are left alone. */
static void block_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGQUIT);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_BLOCK, &all, old);
}

static int push(const char *config, const char *stanza, const char *path, uw_err *err)
{
    if (uw_amod_configure(config, stanza, err) < 0)
        return -1;
    int rc = st.set.repos ? uw_push_set_refresh(st.cfg, &st.set, err)
                          : uw_push_set_open(st.cfg, &st.set, true, err);
    if (rc == 0) {
        uw_push_job job;
        rc = uw_push_file(st.cfg, &st.set, path, uw_push_threads(1), &job, err);
    }
    /* After a failure nothing is trusted: the next call opens the
     * repositories and loads the stanzas again. */
    if (rc < 0)
        drop_set();
    return rc;
}

int uw_amod_push(const char *config, const char *stanza, const char *path, uw_err *err)
{
    sigset_t old;
    block_signals(&old);
    /* Repository files are never readable by others, as with ue-wal-push
     * (which sets the same mask for its whole run). */
    mode_t mask = umask(027);
    int rc = push(config, stanza, path, err);
    umask(mask);
    flush_queue();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* As ue-wal-push's exit status: PostgreSQL must never see a code above
     * 125 from an archive command, and the module reports the same codes. */
    if (rc < 0 && err->code > 125)
        err->code = err->code == UW_E_DECRYPT ? UW_E_CRYPTO : UW_E_INTERNAL;
    return rc;
}

void uw_amod_shutdown(void)
{
    drop_all();
    uw_compress_release_cache();
    flush_queue();
    uw_log_set_sink(NULL);
}
