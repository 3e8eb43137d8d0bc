#include "io/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int uw_sink_write(uw_sink *s, const void *buf, size_t len, uw_err *err)
{
    if (len == 0)
        return 0;
    return s->write(s, buf, len, err);
}

int uw_sink_finish(uw_sink *s, uw_err *err)
{
    if (s->finished)
        return 0;
    s->finished = true;
    return s->finish(s, err);
}

void uw_sink_free(uw_sink *s)
{
    while (s) {
        uw_sink *next = s->next;
        s->destroy(s);
        s = next;
    }
}

static int forward_finish(uw_sink *s, uw_err *err)
{
    return s->next ? uw_sink_finish(s->next, err) : 0;
}

/* ---- hash ---- */
typedef struct {
    uw_sink base;
    EVP_MD_CTX *ctx;
    uw_digest *out;
    uint64_t size;
} hash_sink;

static int hash_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    hash_sink *h = (hash_sink *)s;
    EVP_DigestUpdate(h->ctx, buf, len);
    h->size += len;
    return s->next ? uw_sink_write(s->next, buf, len, err) : 0;
}

static int hash_finish(uw_sink *s, uw_err *err)
{
    hash_sink *h = (hash_sink *)s;
    unsigned int n = 32;
    EVP_DigestFinal_ex(h->ctx, h->out->sha256, &n);
    h->out->size = h->size;
    return forward_finish(s, err);
}

static void hash_destroy(uw_sink *s)
{
    EVP_MD_CTX_free(((hash_sink *)s)->ctx);
    free(s);
}

/* Side work while the next sink consumes the file on its own: hash the same
 * file here (it is in the page cache by then or soon). */
static int hash_side(void *arg, int fd, uint64_t size, const char *what, uw_err *err)
{
    hash_sink *h = arg;
    enum { BUF = 256 << 10 };
    uint8_t *buf = uw_malloc(BUF);
    int rc = 0;
    for (uint64_t off = 0; off < size && rc == 0;) {
        size_t n = size - off < BUF ? (size_t)(size - off) : BUF;
        rc = uw_pread_all(fd, buf, n, off, what, err);
        if (rc == 0) {
            EVP_DigestUpdate(h->ctx, buf, n);
            h->size += n;
            off += n;
        }
    }
    free(buf);
    return rc;
}

static int hash_from_fd(uw_sink *s, int fd, uint64_t size, const char *what,
                        const uw_side_work *side, uw_err *err)
{
    if (side || !s->next || !s->next->from_fd)
        return 0;
    uw_side_work mine = {hash_side, s};
    return s->next->from_fd(s->next, fd, size, what, &mine, err);
}

uw_sink *uw_hash_sink(uw_sink *next, uw_digest *out)
{
    hash_sink *h = uw_calloc(1, sizeof *h);
    h->base = (uw_sink){hash_write, hash_finish, hash_destroy, next, false, hash_from_fd};
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        fputs("ue-wal: FATAL: unable to initialise SHA-256\n", stderr);
        exit(UW_E_INTERNAL);
    }
    h->out = out;
    return &h->base;
}

void uw_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

/* ---- count ---- */
typedef struct {
    uw_sink base;
    uint64_t n, *out;
} count_sink;

static int count_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    ((count_sink *)s)->n += len;
    return uw_sink_write(s->next, buf, len, err);
}

static int count_finish(uw_sink *s, uw_err *err)
{
    count_sink *c = (count_sink *)s;
    *c->out = c->n;
    return uw_sink_finish(s->next, err);
}

static void count_destroy(uw_sink *s)
{
    free(s);
}

uw_sink *uw_count_sink(uw_sink *next, uint64_t *count)
{
    count_sink *c = uw_calloc(1, sizeof *c);
    c->base = (uw_sink){count_write, count_finish, count_destroy, next, false, NULL};
    c->out = count;
    return &c->base;
}

/* ---- fd ---- */
typedef struct {
    uw_sink base;
    int fd;
} fd_sink;

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fd_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    if (write_all(((fd_sink *)s)->fd, buf, len) < 0)
        return uw_fail(err, UW_E_FILE, "unable to write: %s", strerror(errno));
    return 0;
}

static void plain_destroy(uw_sink *s)
{
    free(s);
}

uw_sink *uw_fd_sink(int fd)
{
    fd_sink *f = uw_calloc(1, sizeof *f);
    f->base = (uw_sink){fd_write, forward_finish, plain_destroy, NULL, false, NULL};
    f->fd = fd;
    return &f->base;
}

/* ---- buf ---- */
void uw_buf_append(uw_buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + len + 1 > cap)
            cap *= 2;
        b->data = uw_realloc(b->data, cap);
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0; /* handy for text metadata */
}

void uw_buf_reserve(uw_buf *b, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = b->len + n + 1;
        b->data = uw_realloc(b->data, b->cap);
    }
}

void uw_buf_free(uw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

typedef struct {
    uw_sink base;
    uw_buf *out;
} buf_sink;

static int buf_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    (void)err;
    uw_buf_append(((buf_sink *)s)->out, buf, len);
    return 0;
}

uw_sink *uw_buf_sink(uw_buf *out)
{
    buf_sink *b = uw_calloc(1, sizeof *b);
    b->base = (uw_sink){buf_write, forward_finish, plain_destroy, NULL, false, NULL};
    b->out = out;
    return &b->base;
}

/* ---- tee ---- */
typedef struct {
    uw_sink base;
    uw_sink *target;
} tee_sink;

static int tee_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    return uw_sink_write(((tee_sink *)s)->target, buf, len, err);
}

static int tee_finish(uw_sink *s, uw_err *err)
{
    (void)s;
    (void)err;
    return 0;
}

uw_sink *uw_tee_sink(uw_sink *next)
{
    tee_sink *t = uw_calloc(1, sizeof *t);
    t->base = (uw_sink){tee_write, tee_finish, plain_destroy, NULL, false, NULL};
    t->target = next;
    return &t->base;
}

/* ---- pipeline stage ---- */
enum { STAGE_BUF = 256 << 10, STAGE_SLOTS = 4 };

typedef struct {
    uw_sink base;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *bufs[STAGE_SLOTS];
    size_t lens[STAGE_SLOTS];
    int head, count; /* filled slots [head, head + count), the first maybe being written */
    int tail;        /* the slot being filled: the producer's alone */
    size_t fill;     /* bytes in it */
    bool eof, failed;
    uw_err err;
} pipe_sink;

static void *pipe_run(void *arg)
{
    pipe_sink *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->count == 0 && !p->eof)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->count == 0)
            break;
        int slot = p->head;
        bool skip = p->failed; /* after an error, drain without writing */
        pthread_mutex_unlock(&p->mu);
        uw_err e;
        uw_err_clear(&e);
        int rc = skip ? 0 : uw_sink_write(p->base.next, p->bufs[slot], p->lens[slot], &e);
        pthread_mutex_lock(&p->mu);
        if (rc < 0 && !p->failed) {
            p->failed = true;
            p->err = e;
        }
        p->head = (p->head + 1) % STAGE_SLOTS;
        p->count--;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Hand the slot being filled to the consumer; wait for a free one. */
static int pipe_push(pipe_sink *p, uw_err *err)
{
    pthread_mutex_lock(&p->mu);
    if (!p->running) {
        if (pthread_create(&p->thread, NULL, pipe_run, p) != 0) {
            pthread_mutex_unlock(&p->mu);
            /* No thread: write in the caller's, as if there were no stage. */
            int rc = uw_sink_write(p->base.next, p->bufs[p->tail], p->fill, err);
            p->fill = 0;
            return rc;
        }
        p->running = true;
    }
    p->lens[p->tail] = p->fill;
    p->count++;
    p->tail = (p->tail + 1) % STAGE_SLOTS;
    p->fill = 0;
    pthread_cond_broadcast(&p->cv);
    while (p->count == STAGE_SLOTS && !p->failed)
        pthread_cond_wait(&p->cv, &p->mu);
    int rc = 0;
    if (p->failed) {
        *err = p->err;
        rc = -1;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static int pipe_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    pipe_sink *p = (pipe_sink *)s;
    while (len) {
        if (!p->bufs[p->tail])
            p->bufs[p->tail] = uw_malloc(STAGE_BUF);
        size_t n = STAGE_BUF - p->fill < len ? STAGE_BUF - p->fill : len;
        memcpy(p->bufs[p->tail] + p->fill, buf, n);
        p->fill += n;
        buf += n;
        len -= n;
        if (p->fill == STAGE_BUF && pipe_push(p, err) < 0)
            return -1;
    }
    return 0;
}

static void pipe_stop(pipe_sink *p)
{
    if (!p->running)
        return;
    pthread_mutex_lock(&p->mu);
    p->eof = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    p->running = false;
}

static int pipe_finish(uw_sink *s, uw_err *err)
{
    pipe_sink *p = (pipe_sink *)s;
    int rc = 0;
    if (p->fill) {
        if (p->running) {
            rc = pipe_push(p, err);
        } else {
            rc = uw_sink_write(s->next, p->bufs[p->tail], p->fill, err);
            p->fill = 0;
        }
    }
    pipe_stop(p);
    if (rc == 0 && p->failed) {
        *err = p->err;
        rc = -1;
    }
    return rc < 0 ? -1 : uw_sink_finish(s->next, err);
}

static void pipe_destroy(uw_sink *s)
{
    pipe_sink *p = (pipe_sink *)s;
    /* Unfinished (an error upstream): stop the consumer before next is freed. */
    if (p->running) {
        pthread_mutex_lock(&p->mu);
        p->failed = true;
        pthread_mutex_unlock(&p->mu);
        pipe_stop(p);
    }
    for (int i = 0; i < STAGE_SLOTS; i++)
        free(p->bufs[i]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

uw_sink *uw_pipe_sink(uw_sink *next)
{
    pipe_sink *p = uw_calloc(1, sizeof *p);
    p->base = (uw_sink){pipe_write, pipe_finish, pipe_destroy, next, false, NULL};
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return &p->base;
}

/* ---- atomic file ---- */
typedef struct {
    uw_sink base;
    int fd;
    char *path, *tmp;
    bool no_replace, no_sync, writeback, done;
    uint64_t written, flushed;
} file_sink;

static int file_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    file_sink *f = (file_sink *)s;
    if (write_all(f->fd, buf, len) < 0)
        return uw_fail(err, UW_E_FILE, "unable to write '%s': %s", f->tmp, strerror(errno));
    f->written += len;
#ifdef SYNC_FILE_RANGE_WRITE
    /* Start writing back every MiB as it comes, so that the fsync at the end
     * (ours, or a syncfs or PostgreSQL's later) waits for the tail only, and
     * the disk works while we compute instead of after. */
    if ((!f->no_sync || f->writeback) && f->written - f->flushed >= (1u << 20)) {
        (void)sync_file_range(f->fd, (off_t)f->flushed, (off_t)(f->written - f->flushed),
                              SYNC_FILE_RANGE_WRITE);
        f->flushed = f->written;
    }
#endif
    return 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return uw_strdup(".");
    if (slash == path)
        return uw_strdup("/");
    char *d = uw_strdup(path);
    d[slash - path] = '\0';
    return d;
}

int uw_fsync_dir(const char *path, uw_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return uw_fail(err, UW_E_FILE, "unable to open directory '%s': %s", path, strerror(errno));
    if (fsync(fd) < 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return uw_fail(err, UW_E_FILE, "unable to fsync directory '%s': %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

static int file_finish(uw_sink *s, uw_err *err)
{
    file_sink *f = (file_sink *)s;
    if (!f->no_sync && fsync(f->fd) < 0)
        return uw_fail(err, UW_E_FILE, "unable to fsync '%s': %s", f->tmp, strerror(errno));
#ifdef SYNC_FILE_RANGE_WRITE
    if (f->writeback)
        (void)sync_file_range(f->fd, 0, 0,
                              SYNC_FILE_RANGE_WRITE); /* a hint: failure costs nothing */
#endif
    if (close(f->fd) < 0) {
        f->fd = -1;
        return uw_fail(err, UW_E_FILE, "unable to close '%s': %s", f->tmp, strerror(errno));
    }
    f->fd = -1;
    if (f->no_replace) {
        /* link() fails with EEXIST instead of silently replacing: the guard
         * against two different contents racing for one name. */
        if (link(f->tmp, f->path) < 0)
            return uw_fail(err, errno == EEXIST ? UW_E_ARCHIVE_MISMATCH : UW_E_FILE,
                           "unable to create '%s': %s", f->path, strerror(errno));
        unlink(f->tmp);
    } else if (rename(f->tmp, f->path) < 0) {
        return uw_fail(err, UW_E_FILE, "unable to rename '%s' to '%s': %s", f->tmp, f->path,
                       strerror(errno));
    }
    f->done = true;
    if (f->no_sync)
        return 0;
    char *dir = dir_of(f->path);
    int rc = uw_fsync_dir(dir, err);
    free(dir);
    return rc;
}

static void file_destroy(uw_sink *s)
{
    file_sink *f = (file_sink *)s;
    if (f->fd >= 0)
        close(f->fd);
    if (!f->done)
        unlink(f->tmp);
    free(f->path);
    free(f->tmp);
    free(f);
}

uw_sink *uw_file_sink(const char *path, int mode, unsigned flags, uw_err *err)
{
    char *tmp = uw_sprintf("%s.uwtmp.%d.%lx", path, (int)getpid(), (unsigned long)random());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        uw_fail(err, UW_E_FILE, "unable to create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return NULL;
    }
    file_sink *f = uw_calloc(1, sizeof *f);
    f->base = (uw_sink){file_write, file_finish, file_destroy, NULL, false, NULL};
    f->fd = fd;
    f->path = uw_strdup(path);
    f->tmp = tmp;
    f->no_replace = flags & UW_FILE_NO_REPLACE;
    f->no_sync = flags & UW_FILE_NO_SYNC;
    f->writeback = f->no_sync && (flags & UW_FILE_WRITEBACK);
    return &f->base;
}

int uw_file_put(const char *path, const char *text, unsigned flags, uw_err *err)
{
    uw_sink *f = uw_file_sink(path, 0600, flags, err);
    int rc = f && uw_sink_write(f, text, strlen(text), err) == 0 ? uw_sink_finish(f, err) : -1;
    uw_sink_free(f);
    return rc;
}

int uw_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *what, uw_err *err)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return uw_fail(err, UW_E_FILE, "unable to read '%s': %s", what, strerror(errno));
        if (n == 0)
            return uw_fail(err, UW_E_FILE, "'%s' became shorter while it was read", what);
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int uw_sink_from_fd(uw_sink *s, int fd, const char *what, uw_err *err)
{
    struct stat st;
    if (s->from_fd && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) == 0) {
        int rc = s->from_fd(s, fd, (uint64_t)st.st_size, what, NULL, err);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    enum { BUF = 256 << 10 };
    uint8_t *buf = uw_malloc(BUF);
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, BUF);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = uw_fail(err, UW_E_FILE, "unable to read '%s': %s", what, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if ((rc = uw_sink_write(s, buf, (size_t)n, err)) < 0)
            break;
    }
    free(buf);
    return rc;
}

int uw_fd_digest(int fd, const char *what, uw_digest *d, uw_err *err)
{
    uw_sink *h = uw_hash_sink(NULL, d);
    int rc = uw_sink_from_fd(h, fd, what, err);
    if (rc == 0)
        rc = uw_sink_finish(h, err);
    uw_sink_free(h);
    return rc;
}

int uw_mkdir_p(const char *path, int mode, uw_err *err)
{
    char *p = uw_strdup(path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
                int e = errno;
                uw_fail(err, UW_E_FILE, "unable to create directory '%s': %s", p, strerror(e));
                free(p);
                return -1;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return 0;
}
