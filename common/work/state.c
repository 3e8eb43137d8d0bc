/* Per-stanza command outcomes in the spool (see state.h). */
#include "work/state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/sink.h"

/* A state file is a handful of lines; anything far bigger is not ours. */
#define STATE_MAX (64 * 1024)

struct uw_state {
    size_t n, cap;
    char **keys, **values;
};

uw_state *uw_state_new(void)
{
    return uw_calloc(1, sizeof(uw_state));
}

void uw_state_free(uw_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++) {
        free(st->keys[i]);
        free(st->values[i]);
    }
    free(st->keys);
    free(st->values);
    free(st);
}

static bool key_ok(const char *k, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
            return false;
    return true;
}

static void put(uw_state *st, const char *key, char *value)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->keys[i], key) == 0) {
            free(st->values[i]);
            st->values[i] = value;
            return;
        }
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 16;
        st->keys = uw_realloc(st->keys, st->cap * sizeof(char *));
        st->values = uw_realloc(st->values, st->cap * sizeof(char *));
    }
    st->keys[st->n] = uw_strdup(key);
    st->values[st->n++] = value;
}

const char *uw_state_get(const uw_state *st, const char *key)
{
    for (size_t i = 0; st && i < st->n; i++)
        if (strcmp(st->keys[i], key) == 0)
            return st->values[i];
    return NULL;
}

int64_t uw_state_get_int(const uw_state *st, const char *key, int64_t dflt)
{
    const char *v = uw_state_get(st, key);
    if (!v || !*v)
        return dflt;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    return (*end || errno) ? dflt : (int64_t)x;
}

void uw_state_set(uw_state *st, const char *key, const char *fmt, ...)
{
    if (!key_ok(key, strlen(key)))
        abort(); /* a bug: keys are literals in our code */
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *v = uw_malloc((size_t)(len < 0 ? 0 : len) + 1);
    va_start(ap, fmt);
    vsnprintf(v, (size_t)(len < 0 ? 0 : len) + 1, fmt, ap);
    va_end(ap);
    for (char *p = v; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    put(st, key, v);
}

void uw_state_set_int(uw_state *st, const char *key, int64_t value)
{
    uw_state_set(st, key, "%" PRId64, value);
}

const char *uw_state_key(const uw_state *st, size_t i, const char **value)
{
    if (!st || i >= st->n)
        return NULL;
    if (value)
        *value = st->values[i];
    return st->keys[i];
}

void uw_state_outcome(uw_state *st, const uw_err *err)
{
    bool ok = !err || err->code == UW_OK;
    uw_state_set(st, "result", "%s", ok ? "ok" : "fail");
    uw_state_set_int(st, "code", ok ? 0 : (int64_t)err->code);
    int64_t now = (int64_t)time(NULL);
    uw_state_set_int(st, "end", now);
    uw_state_set(st, "message", "%s", ok ? "" : err->msg);
    /* Kept across failures: "no success for N days" needs the last success,
     * not the last run. */
    if (ok)
        uw_state_set_int(st, "last_success_end", now);
}

uw_state *uw_state_load_file(const char *path, uw_err *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return uw_state_new();
        uw_fail(err, UW_E_FILE, "unable to open state file '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > STATE_MAX) {
        uw_fail(err, UW_E_FILE, "state file '%s' is not a regular file of at most %d bytes", path,
                STATE_MAX);
        close(fd);
        return NULL;
    }
    char *text = uw_malloc((size_t)sb.st_size + 1);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, text + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    text[got] = 0;
    uw_state *st = uw_state_new();
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (!*line)
            continue;
        char *eq = strchr(line, '=');
        if (!eq || !key_ok(line, (size_t)(eq - line))) {
            uw_fail(err, UW_E_FILE, "state file '%s' line %d: expected key=value", path, lineno);
            uw_state_free(st);
            free(text);
            return NULL;
        }
        *eq = 0;
        put(st, line, uw_strdup(eq + 1));
    }
    free(text);
    return st;
}

char *uw_state_dir(const uw_config *cfg, const char *stanza)
{
    return uw_sprintf("%s/%s/state", uw_cfg_str(cfg, UW_OPT_SPOOL_PATH), stanza);
}

static char *state_path(const uw_config *cfg, const char *stanza, const char *name)
{
    char *dir = uw_state_dir(cfg, stanza);
    char *p = uw_sprintf("%s/%s.state", dir, name);
    free(dir);
    return p;
}

uw_state *uw_state_load(const uw_config *cfg, const char *stanza, const char *name, uw_err *err)
{
    char *p = state_path(cfg, stanza, name);
    uw_state *st = uw_state_load_file(p, err);
    free(p);
    return st;
}

int uw_state_save_file(const char *path, const uw_state *st, uw_err *err)
{
    uw_buf b = {0};
    for (size_t i = 0; i < st->n; i++) {
        uw_buf_append(&b, st->keys[i], strlen(st->keys[i]));
        uw_buf_append(&b, "=", 1);
        uw_buf_append(&b, st->values[i], strlen(st->values[i]));
        uw_buf_append(&b, "\n", 1);
    }
    uw_buf_append(&b, "", 1);
    int rc = uw_file_put(path, (const char *)b.data, 0, err);
    uw_buf_free(&b);
    return rc;
}

int uw_state_save(const uw_config *cfg, const char *stanza, const char *name, const uw_state *st,
                  uw_err *err)
{
    char *dir = uw_state_dir(cfg, stanza);
    int rc = uw_mkdir_p(dir, 0700, err);
    if (rc == 0) {
        char *p = state_path(cfg, stanza, name);
        rc = uw_state_save_file(p, st, err);
        if (rc < 0)
            uw_wrap(err, "recording the outcome for metrics");
        free(p);
    }
    free(dir);
    return rc;
}
