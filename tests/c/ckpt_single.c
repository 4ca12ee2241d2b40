/* Single-threaded checkpoint/restart test program: a large heap, a stack array, a file written
 * at offsets, a signal handler, and id checks. Prints "step N" lines and, at the end, one RESULT
 * line that an uninterrupted run and a checkpointed/restarted run must agree on. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/rseq.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 1 if glibc's rseq area of this thread is registered with the kernel (a second registration
 * is refused with EBUSY), 0 if not (a stale registration after a restart), 2 without rseq. */
static int rseq_state(void) {
    if (__rseq_size == 0) return 2;
    void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
    long r = syscall(SYS_rseq, area, 32, 0, 0x53053053);
    if (r == 0) { syscall(SYS_rseq, area, 32, 1 /* unregister */, 0x53053053); return 0; }
    return errno == EBUSY ? 1 : 3;
}

/* The capability sets as /proc shows them. */
static void caps(char *out, size_t n) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "CapPrm:", 7) == 0 || strncmp(line, "CapAmb:", 7) == 0) {
            line[strcspn(line, "\n")] = 0;
            strncat(out, line + 7, n - strlen(out) - 1);
        }
    }
    if (f) fclose(f);
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig) { (void)sig; handled++; }

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 40;
    const char *path = argc > 2 ? argv[2] : "ckpt_single.dat";
    size_t heap_len = (argc > 3 ? (size_t)atoi(argv[3]) : 48) << 20;
    unsigned char *heap = malloc(heap_len);
    unsigned long stack_arr[4096];
    pid_t pid = getpid(), ppid = getppid(), tid = (pid_t)syscall(SYS_gettid);
    int ids_ok = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    for (size_t i = 0; i < heap_len; i += 64) heap[i] = (unsigned char)(i * 7 + 3);
    for (int i = 0; i < 4096; i++) stack_arr[i] = (unsigned long)i * 2654435761u;
    /* Process state outside memory: name, a resource limit, the working folder. */
    prctl(PR_SET_NAME, "ckpt-single", 0, 0, 0);
    struct rlimit rl = {200, 4096};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 200;
    setrlimit(RLIMIT_NOFILE, &rl);
    mkdir("workdir", 0755);
    if (chdir("workdir") != 0) { perror("chdir"); return 2; }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 2; }
    unsigned long acc = 0;
    for (int s = 1; s <= steps; s++) {
        for (size_t i = (size_t)s * 4096; i < heap_len; i += 1 << 20) heap[i] ^= (unsigned char)s;
        stack_arr[s % 4096] += (unsigned long)s;
        char rec[32];
        int n = snprintf(rec, sizeof rec, "rec %04d\n", s);
        if (lseek(fd, (off_t)(s - 1) * 9, SEEK_SET) < 0 || write(fd, rec, (size_t)n) != n) { perror("write"); return 2; }
        raise(SIGUSR1);
        if (getpid() != pid || getppid() != ppid || (pid_t)syscall(SYS_gettid) != tid) ids_ok = 0;
        acc = acc * 31 + heap[(size_t)s * 4096 % heap_len] + stack_arr[s % 4096];
        printf("step %d\n", s);
        fflush(stdout);
        usleep(100000);
    }
    unsigned long h = 0;
    for (size_t i = 0; i < heap_len; i += 64) h = h * 1099511628211ul + heap[i];
    for (int i = 0; i < 4096; i++) h = h * 31 + stack_arr[i];
    char buf[16];
    unsigned long fsum = 0;
    for (int s = 1; s <= steps; s++) {
        if (pread(fd, buf, 9, (off_t)(s - 1) * 9) != 9) { perror("pread"); return 2; }
        for (int i = 0; i < 9; i++) fsum = fsum * 131 + (unsigned char)buf[i];
    }
    char name[17] = {0}, cwd[4096];
    prctl(PR_GET_NAME, name, 0, 0, 0);
    getrlimit(RLIMIT_NOFILE, &rl);
    const char *dir = getcwd(cwd, sizeof cwd) ? strrchr(cwd, '/') + 1 : "?";
    char capbuf[128];
    caps(capbuf, sizeof capbuf);
    printf("RESULT acc=%lu heap=%lu file=%lu handled=%d ids_ok=%d rseq=%d name=%s nofile=%lu cwd=%s caps=%s\n", acc, h,
           fsum, (int)handled, ids_ok, rseq_state(), name, (unsigned long)rl.rlim_cur, dir, capbuf);
    return 0;
}
