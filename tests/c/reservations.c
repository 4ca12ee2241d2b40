/* Large reservations and areas with kernel flags, as runtimes make them: a MAP_NORESERVE heap
 * larger than the machine can commit (Go, Java), a PROT_NONE reservation with a writable part
 * (V8), a MAP_GROWSDOWN stack, a guard page, an mlock'ed area, areas with MADV_DONTFORK,
 * MADV_WIPEONFORK, MADV_DONTDUMP, MADV_HUGEPAGE and MADV_NOHUGEPAGE, and a private mapping of
 * a deleted file. Prints "step N" every 100 ms, then a RESULT line: a hash of the data, the
 * VmFlags each area has (from /proc/self/smaps) and whether the big areas hold little memory.
 * Usage: reservations [steps] [noreserve GiB] [prot_none GiB] (use small sizes on 32 bits). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

static uint64_t h = 14695981039346656037ull;
static void mix(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = h * 1099511628211ull ^ p[i];
}

/* The VmFlags line and Rss (kB) of the smaps entry starting at p. */
static void flags_of(void *p, char *out, size_t outlen, long *rss) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    out[0] = 0;
    *rss = -1;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = s == (unsigned long)p;
            continue;
        }
        if (in && strncmp(line, "Rss:", 4) == 0) *rss = atol(line + 4);
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, outlen, "%s", line + 9);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    }
    if (f) fclose(f);
}

static int has(const char *flags, const char *code) {
    size_t n = strlen(code);
    for (const char *q = flags; (q = strstr(q, code)); q++)
        if ((q == flags || q[-1] == ' ') && (q[n] == ' ' || q[n] == 0)) return 1;
    return 0;
}

static void *map(size_t len, int prot, int flags) {
    void *p = mmap(NULL, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    return p;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 40;
    size_t big = (size_t)atol(argc > 2 ? argv[2] : "64") << 30;
    size_t none = (size_t)atol(argc > 3 ? argv[3] : "16") << 30;
    unsigned char *heap = map(big, PROT_READ | PROT_WRITE, MAP_NORESERVE);
    for (size_t off = 0; off < big; off += big / 8) memset(heap + off, (int)(off >> 20) | 1, 3 * PAGE);
    unsigned char *res = map(none, PROT_NONE, MAP_NORESERVE);
    mprotect(res + none / 2, 16 * PAGE, PROT_READ | PROT_WRITE);
    for (int i = 0; i < 16 * PAGE; i++) res[none / 2 + i] = (unsigned char)(i * 3 + 1);
    unsigned char *plain_none = map(4 * PAGE, PROT_NONE, 0);
    unsigned char *down = map(8 * PAGE, PROT_READ | PROT_WRITE, MAP_GROWSDOWN);
    memset(down + 7 * PAGE, 0x44, PAGE);
    unsigned char *guarded = map(3 * PAGE, PROT_READ | PROT_WRITE, 0);
    memset(guarded, 0x11, 3 * PAGE);
    mprotect(guarded + PAGE, PAGE, PROT_NONE);
    unsigned char *locked = map(2 * PAGE, PROT_READ | PROT_WRITE, 0);
    memset(locked, 0x22, 2 * PAGE);
    int lock_ok = mlock(locked, 2 * PAGE) == 0;
    unsigned char *adv[5];
    int advice[5] = {MADV_DONTFORK, MADV_WIPEONFORK, MADV_DONTDUMP, MADV_HUGEPAGE, MADV_NOHUGEPAGE};
    for (int k = 0; k < 5; k++) {
        adv[k] = map(4 * PAGE, PROT_READ | PROT_WRITE, 0);
        memset(adv[k], 0x30 + k, 4 * PAGE);
        /* A PROT_NONE page between them keeps the kernel from merging them. */
        map(PAGE, PROT_NONE, 0);
        if (madvise(adv[k], 4 * PAGE, advice[k]) != 0) { perror("madvise"); return 1; }
    }
    int fd = open("reservations-deleted.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
    for (int i = 0; i < 3 * PAGE; i++) { unsigned char c = (unsigned char)(i * 17); if (write(fd, &c, 1) != 1) return 1; }
    unsigned char *gone = mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    unlink("reservations-deleted.bin");

    for (int s = 1; s <= steps; s++) {
        printf("step %d\n", s);
        fflush(stdout);
        usleep(100000);
    }

    for (size_t off = 0; off < big; off += big / 8) mix(heap + off, 3 * PAGE);
    mix(res + none / 2, 16 * PAGE);
    mix(down + 7 * PAGE, PAGE);
    mix(guarded, PAGE);
    mix(guarded + 2 * PAGE, PAGE);
    mix(locked, 2 * PAGE);
    for (int k = 0; k < 5; k++) mix(adv[k], 4 * PAGE);
    mix(gone, 3 * PAGE);
    char f[512];
    long rss;
    printf("RESULT hash=%llu", (unsigned long long)h);
    flags_of(heap, f, sizeof f, &rss);
    printf(" heap_nr=%d heap_rss_small=%d", has(f, "nr"), rss >= 0 && rss < 16384);
    flags_of(res, f, sizeof f, &rss);
    printf(" res_none=%d res_rss=%ld", !has(f, "rd") && !has(f, "wr"), rss);
    flags_of(plain_none, f, sizeof f, &rss);
    printf(" plain_none_ac=%d", has(f, "ac"));
    flags_of(down, f, sizeof f, &rss);
    printf(" gd=%d", has(f, "gd"));
    flags_of(guarded + PAGE, f, sizeof f, &rss);
    printf(" guard_none=%d", !has(f, "rd"));
    flags_of(locked, f, sizeof f, &rss);
    printf(" locked=%d", lock_ok ? has(f, "lo") : -1);
    const char *codes[5] = {"dc", "wf", "dd", "hg", "nh"};
    for (int k = 0; k < 5; k++) {
        flags_of(adv[k], f, sizeof f, &rss);
        printf(" %s=%d", codes[k], has(f, codes[k]));
    }
    printf("\n");
    return 0;
}
