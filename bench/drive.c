/* bench/drive: call archive_command / restore_command the way PostgreSQL does.
 *
 *   drive push  PGDATA LIST 'COMMAND'   archiver: for each WAL name in LIST, in
 *        order, run COMMAND through /bin/sh -c with cwd PGDATA, %p = pg_wal/NAME,
 *        %f = NAME; on exit 0 rename pg_wal/archive_status/NAME.ready to .done.
 *   drive fetch PGDATA LIST 'COMMAND'   startup process: %f = NAME,
 *        %p = pg_wal/RECOVERYXLOG; on exit 0 the file must be there, and it is
 *        moved to $DRIVE_COLLECT/NAME (if set) or removed, as recovery would.
 *   drive once  DIR 'COMMAND'           one call (backup, restore), cwd DIR.
 *
 * A failing call is retried like the archiver does (up to 3 times, 1 s apart,
 * counted in the time); a third failure aborts the run (exit 1).
 *
 * Peak RSS is the kernel's ru_maxrss from wait4(), the very number that
 * `/usr/bin/time -v` prints as "Maximum resident set size": for each call it
 * covers the shell, the tool and every descendant it waited for. The driver is
 * a child subreaper, so background processes a tool detaches (pgBackRest's
 * async archive-push/get process, ue-wal-fetch's prefetcher) are reparented to
 * it and reaped here too: their peak is reported separately ("bg"). After the
 * last call, stragglers get DRIVE_GRACE seconds (default 10) to exit, then
 * SIGTERM (they were started by this run; time is already taken).
 *
 * With DRIVE_TREE_PSS=1 a sampler thread also adds up, every 50 ms, the PSS
 * (/proc/PID/smaps_rollup) of every process below the driver: the footprint of
 * the whole operation, fair between a tool that works in threads (one process)
 * and one that forks workers (ru_maxrss only sees the largest process, and
 * counts shared libraries in each).
 *
 * CPU time: cpu_s is the user + system time of everything the driver waited
 * for (getrusage(RUSAGE_CHILDREN) at the end: every call, its descendants and
 * the background processes reaped here, so it includes what they did after
 * the timed part). With DRIVE_WATCH_PIDS="PID..." (processes that are not
 * ours, e.g. an object-store emulator) watch_cpu_s is the user + system time
 * those processes used during the timed part (/proc/PID/stat).
 *
 * Output, one line on stdout:
 *   seconds=S calls=N failures=F maxrss_kb=K bg_maxrss_kb=B bg_procs=P tree_pss_kb=T
 *   cpu_s=C watch_cpu_s=W
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static long bg_maxrss, bg_procs;

/* Reap background processes that were reparented to us. */
static void reap_orphans(int block_s)
{
    double until = now_s() + block_s;
    for (;;) {
        int st;
        struct rusage ru;
        pid_t p = wait4(-1, &st, WNOHANG, &ru);
        if (p > 0) {
            bg_procs++;
            if (ru.ru_maxrss > bg_maxrss)
                bg_maxrss = ru.ru_maxrss;
            continue;
        }
        if (p < 0 || now_s() >= until) /* ECHILD: none left */
            return;
        sleep_s(0.01);
    }
}

/* Our remaining children (orphans adopted as subreaper). */
static int children(pid_t *out, int max)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) && n < max) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        long ppid = 0;
        char state;
        if (rp && sscanf(rp + 1, " %c %ld", &state, &ppid) == 2 && ppid == (long)getpid())
            out[n++] = (pid_t)pid;
    }
    if (d)
        closedir(d);
    return n;
}

static void finish_orphans(double grace)
{
    reap_orphans((int)grace);
    pid_t kids[256];
    int n = children(kids, 256);
    if (n == 0)
        return;
    fprintf(stderr, "drive: %d background process(es) still running after %.0f s: SIGTERM\n", n,
            grace);
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGTERM);
    reap_orphans(5);
    n = children(kids, 256);
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    reap_orphans(5);
}

/* ---- sampled PSS of the process tree ---- */
static volatile bool sampling = true;
static long tree_pss;

static long pss_of(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Pss: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void *sampler(void *arg)
{
    (void)arg;
    enum { MAXP = 4096 };
    static long pids[MAXP], ppids[MAXP];
    static bool mine[MAXP];
    long self = (long)getpid();
    while (sampling) {
        int n = 0;
        DIR *d = opendir("/proc");
        struct dirent *de;
        while (d && (de = readdir(d)) && n < MAXP) {
            char *end;
            long pid = strtol(de->d_name, &end, 10);
            if (*end || pid <= 0)
                continue;
            char path[64], buf[512];
            snprintf(path, sizeof path, "/proc/%ld/stat", pid);
            FILE *f = fopen(path, "r");
            if (!f)
                continue;
            size_t len = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[len] = '\0';
            char *rp = strrchr(buf, ')'), state;
            long ppid;
            if (rp && sscanf(rp + 1, " %c %ld", &state, &ppid) == 2) {
                pids[n] = pid;
                ppids[n] = ppid;
                mine[n] = false;
                n++;
            }
        }
        if (d)
            closedir(d);
        /* Descendants of the driver: iterate to a fixed point (trees are shallow). */
        bool changed = true;
        while (changed) {
            changed = false;
            for (int i = 0; i < n; i++) {
                if (mine[i])
                    continue;
                bool m = ppids[i] == self;
                for (int j = 0; !m && j < n; j++)
                    m = mine[j] && pids[j] == ppids[i];
                if (m)
                    mine[i] = changed = true;
            }
        }
        long sum = 0;
        for (int i = 0; i < n; i++)
            if (mine[i])
                sum += pss_of(pids[i]);
        if (sum > tree_pss)
            tree_pss = sum;
        sleep_s(0.05);
    }
    return NULL;
}

/* utime + stime in seconds of the processes named in DRIVE_WATCH_PIDS (all
 * their threads); -1 when unset or a process is gone. */
static double watch_cpu(void)
{
    const char *list = getenv("DRIVE_WATCH_PIDS");
    if (!list || !*list)
        return -1;
    double sum = 0;
    long hz = sysconf(_SC_CLK_TCK);
    char *end;
    for (const char *s = list; *s; s = end) {
        long pid = strtol(s, &end, 10);
        if (end == s)
            break;
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return -1;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        unsigned long ut, st;
        /* after the comm: state(3) ... utime(14) stime(15) */
        if (!rp ||
            sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
            return -1;
        sum += (double)(ut + st) / (double)hz;
    }
    return sum;
}

/* COMMAND with %p, %f and %% replaced. */
static char *expand(const char *tpl, const char *p, const char *f)
{
    size_t cap = strlen(tpl) + 1, len = 0;
    for (const char *s = tpl; *s; s++)
        if (*s == '%')
            cap += strlen(p) + strlen(f);
    char *out = malloc(cap);
    if (!out)
        abort();
    for (const char *s = tpl; *s; s++) {
        if (s[0] == '%' && (s[1] == 'p' || s[1] == 'f' || s[1] == '%')) {
            const char *r = s[1] == 'p' ? p : s[1] == 'f' ? f : "%";
            memcpy(out + len, r, strlen(r));
            len += strlen(r);
            s++;
        } else
            out[len++] = *s;
    }
    out[len] = '\0';
    return out;
}

/* Run one command through /bin/sh -c; returns its exit status (or 128+signal). */
static int run(const char *cmd, long *maxrss)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("drive: fork");
        exit(2);
    }
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("drive: wait4");
            exit(2);
        }
    if (ru.ru_maxrss > *maxrss)
        *maxrss = ru.ru_maxrss;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "once") != 0 && argc < 5)) {
        fprintf(stderr, "usage: drive push|fetch PGDATA LIST 'COMMAND'\n"
                        "       drive once DIR 'COMMAND'\n");
        return 2;
    }
    const char *mode = argv[1], *dir = argv[2];
    int is_push = strcmp(mode, "push") == 0, is_fetch = strcmp(mode, "fetch") == 0;
    if (!is_push && !is_fetch && strcmp(mode, "once") != 0) {
        fprintf(stderr, "drive: unknown mode '%s'\n", mode);
        return 2;
    }
    const char *tpl = argv[is_push || is_fetch ? 4 : 3];
    const char *collect = getenv("DRIVE_COLLECT");
    double grace = getenv("DRIVE_GRACE") ? atof(getenv("DRIVE_GRACE")) : 10;

    /* Names first (before the clock starts). */
    char **names = NULL;
    int n = 0, cap = 0;
    if (is_push || is_fetch) {
        FILE *f = fopen(argv[3], "r");
        if (!f) {
            fprintf(stderr, "drive: %s: %s\n", argv[3], strerror(errno));
            return 2;
        }
        char line[256];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (!*line)
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                names = realloc(names, (size_t)cap * sizeof *names);
                if (!names)
                    abort();
            }
            names[n++] = strdup(line);
        }
        fclose(f);
    }
    if (chdir(dir) < 0) {
        fprintf(stderr, "drive: %s: %s\n", dir, strerror(errno));
        return 2;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        perror("drive: PR_SET_CHILD_SUBREAPER");

    long maxrss = 0;
    int failures = 0, calls = 0, rc = 0;
    pthread_t sampler_thread;
    bool sample = getenv("DRIVE_TREE_PSS") && strcmp(getenv("DRIVE_TREE_PSS"), "1") == 0;
    if (sample && pthread_create(&sampler_thread, NULL, sampler, NULL) != 0)
        sample = false;
    double w0 = watch_cpu();
    double t0 = now_s();
    if (!is_push && !is_fetch) {
        calls = 1;
        int st = run(tpl, &maxrss);
        if (st != 0) {
            fprintf(stderr, "drive: command failed with exit %d: %s\n", st, tpl);
            failures = 1;
            rc = 1;
        }
    }
    for (int i = 0; i < n && rc == 0; i++) {
        char p[512];
        snprintf(p, sizeof p, "pg_wal/%s", is_push ? names[i] : "RECOVERYXLOG");
        char *cmd = expand(tpl, p, names[i]);
        for (int attempt = 1;; attempt++) {
            calls++;
            int st = run(cmd, &maxrss);
            if (st == 0 && is_fetch && access(p, F_OK) != 0) {
                fprintf(stderr, "drive: %s exited 0 but %s is missing\n", names[i], p);
                st = -1;
            }
            if (st == 0)
                break;
            failures++;
            fprintf(stderr, "drive: %s: exit %d (attempt %d): %s\n", names[i], st, attempt, cmd);
            if (attempt == 3) {
                rc = 1;
                break;
            }
            sleep_s(1);
        }
        if (rc == 0 && is_push) {
            char from[600], to[600];
            snprintf(from, sizeof from, "pg_wal/archive_status/%s.ready", names[i]);
            snprintf(to, sizeof to, "pg_wal/archive_status/%s.done", names[i]);
            if (rename(from, to) < 0) {
                fprintf(stderr, "drive: rename %s: %s\n", from, strerror(errno));
                rc = 1;
            }
        } else if (rc == 0 && is_fetch) {
            char to[4096];
            int moved = -1;
            if (collect) {
                snprintf(to, sizeof to, "%s/%s", collect, names[i]);
                moved = rename(p, to);
            } else
                moved = unlink(p);
            if (moved < 0) {
                fprintf(stderr, "drive: moving %s: %s\n", p, strerror(errno));
                rc = 1;
            }
        }
        free(cmd);
        reap_orphans(0);
    }
    double secs = now_s() - t0;
    double w1 = watch_cpu();
    if (sample) {
        sampling = false;
        pthread_join(sampler_thread, NULL);
    }
    finish_orphans(grace);
    struct rusage ch;
    getrusage(RUSAGE_CHILDREN, &ch);
    double cpu = (double)ch.ru_utime.tv_sec + ch.ru_utime.tv_usec / 1e6 +
                 (double)ch.ru_stime.tv_sec + ch.ru_stime.tv_usec / 1e6;
    printf("seconds=%.6f calls=%d failures=%d maxrss_kb=%ld bg_maxrss_kb=%ld bg_procs=%ld "
           "tree_pss_kb=%ld cpu_s=%.3f watch_cpu_s=%.3f\n",
           secs, calls, failures, maxrss, bg_maxrss, bg_procs, tree_pss, cpu,
           w0 >= 0 && w1 >= 0 ? w1 - w0 : -1.0);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}
