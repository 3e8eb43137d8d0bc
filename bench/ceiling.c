/* bench/ceiling: the machine's compute ceiling for archiving WAL.
 *
 *   ceiling [-t THREADS] [-l LEVEL] SEGMENT...
 *
 * One thread per core (default: the online CPUs), each taking the next segment
 * from a shared counter: read it (page cache), SHA-256 it and compress it with
 * zstd at LEVEL (default 3), in process, nothing written. That is the least
 * work any archiver must do per segment, so segments/second here bounds what
 * ue-wal-push can reach on this machine.
 *
 * Output, one line on stdout:
 *   seconds=S segments=N threads=T level=L in_bytes=I out_bytes=O
 *
 * Build: cc -O2 -o ceiling ceiling.c -lzstd -lcrypto -lpthread */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

static char **files;
static int nfiles, level = 3;
static atomic_int next_file;
static atomic_ullong in_total, out_total;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "ceiling: %s: %s\n", what, detail);
    exit(1);
}

static void *worker(void *arg)
{
    (void)arg;
    size_t cap = 0, ocap = 0;
    unsigned char *buf = NULL, *out = NULL;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!cctx || !md)
        die("init", "out of memory");
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    for (;;) {
        int i = atomic_fetch_add(&next_file, 1);
        if (i >= nfiles)
            break;
        int fd = open(files[i], O_RDONLY);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) < 0)
            die(files[i], strerror(errno));
        size_t size = (size_t)sb.st_size;
        if (size > cap) {
            cap = size;
            buf = realloc(buf, cap);
            ocap = ZSTD_compressBound(cap);
            out = realloc(out, ocap);
            if (!buf || !out)
                die("alloc", "out of memory");
        }
        size_t got = 0;
        while (got < size) {
            ssize_t r = read(fd, buf + got, size - got);
            if (r <= 0)
                die(files[i], r < 0 ? strerror(errno) : "short read");
            got += (size_t)r;
        }
        close(fd);
        unsigned char digest[32];
        unsigned int dlen = 0;
        if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(md, buf, size) != 1 || EVP_DigestFinal_ex(md, digest, &dlen) != 1)
            die("sha256", "failed");
        size_t z = ZSTD_compress2(cctx, out, ocap, buf, size);
        if (ZSTD_isError(z))
            die("zstd", ZSTD_getErrorName(z));
        atomic_fetch_add(&in_total, size);
        atomic_fetch_add(&out_total, z);
    }
    ZSTD_freeCCtx(cctx);
    EVP_MD_CTX_free(md);
    free(buf);
    free(out);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN), opt;
    while ((opt = getopt(argc, argv, "t:l:")) != -1) {
        if (opt == 't')
            threads = atoi(optarg);
        else if (opt == 'l')
            level = atoi(optarg);
        else {
            fprintf(stderr, "usage: ceiling [-t THREADS] [-l LEVEL] SEGMENT...\n");
            return 2;
        }
    }
    if (threads < 1)
        threads = 1;
    files = argv + optind;
    nfiles = argc - optind;
    if (nfiles == 0)
        die("usage", "no segments given");
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    double t0 = now_s();
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker, NULL) != 0)
            die("pthread_create", "failed");
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double secs = now_s() - t0;
    printf("seconds=%.6f segments=%d threads=%d level=%d in_bytes=%llu out_bytes=%llu\n", secs,
           nfiles, threads, level, (unsigned long long)in_total, (unsigned long long)out_total);
    free(t);
    return 0;
}
