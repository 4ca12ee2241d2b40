/* A pool of forked worker processes for incremental checkpoints: most of each process's memory
 * stays the same between two checkpoints, a few pages change every round.
 * The parent holds a 32 MiB private buffer, each of NW workers a 24 MiB one; the parent sends
 * each worker the round number over its task pipe, the worker changes a few pages of its buffer
 * and answers over its result pipe with a running sum, and counts its rounds in a slot of
 * anonymous shared memory (MAP_SHARED, inherited over fork). Every 10 rounds a process drops
 * 16 pages of its buffer (MADV_DONTNEED: they must come back as zeros, not as an older image's
 * bytes), and every 25 rounds a worker unmaps a 64 KiB area and maps a fresh one at the same
 * place (MAP_FIXED) with new contents. At the end every worker hashes its whole buffer and that
 * area, and the parent prints every hash, the shared counts and the sums on a RESULT line.
 * Prints "step N" every 20 rounds.
 * Usage: incr_pool [rounds] */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NW 3
#define PAGE 4096
#define PARENT_PAGES (32 * 256)
#define WORKER_PAGES (24 * 256)
#define EXTRA (64 * 1024)

struct shared {
    uint64_t rounds[NW + 1];
    uint64_t answers[NW];
};

static uint64_t hash(const unsigned char *p, size_t n, uint64_t h) {
    const uint64_t *w = (const uint64_t *)p;
    for (size_t i = 0; i < n / 8; i++) h = (h ^ w[i]) * 0x100000001b3ULL;
    return h;
}

static unsigned char *buffer(size_t pages, int seed) {
    unsigned char *b = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) { perror("mmap"); exit(1); }
    for (size_t i = 0; i < pages * PAGE; i += 8) *(uint64_t *)(b + i) = (i * 2654435761u) ^ (uint64_t)seed;
    return b;
}

static void touch(unsigned char *b, size_t pages, int round, int who) {
    for (int j = 0; j < 6; j++) {
        size_t page = ((size_t)round * 37 + (size_t)j * 101 + (size_t)who * 13) % pages;
        b[page * PAGE + (size_t)(round * 8 + j) % PAGE] += (unsigned char)(round + j + 1);
    }
    if (round % 10 == 0) {
        size_t at = ((size_t)(round / 10) * 64 + (size_t)who * 16) % (pages - 16);
        if (madvise(b + at * PAGE, 16 * PAGE, MADV_DONTNEED) != 0) { perror("madvise"); exit(1); }
    }
}

static int full_read(int fd, void *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)p + got, n - got);
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    return 0;
}

static void worker(int w, int task, int result, struct shared *sh) {
    unsigned char *b = buffer(WORKER_PAGES, 100 + w);
    unsigned char *extra = mmap(NULL, EXTRA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (extra == MAP_FAILED) { perror("mmap"); exit(1); }
    memset(extra, 0x5a, EXTRA);
    uint64_t sum = 0;
    int round;
    while (full_read(task, &round, sizeof round) == 0 && round > 0) {
        touch(b, WORKER_PAGES, round, w + 1);
        if (round % 25 == 0) {
            if (munmap(extra, EXTRA) != 0) { perror("munmap"); exit(1); }
            void *again = mmap(extra, EXTRA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            if (again != extra) { perror("mmap fixed"); exit(1); }
            for (int k = 0; k < EXTRA; k += PAGE * 3) extra[k] = (unsigned char)round;
        }
        sum = sum * 31 + (uint64_t)b[((size_t)round * 37 % WORKER_PAGES) * PAGE + (size_t)(round * 8) % PAGE];
        sh->rounds[w + 1]++;
        sh->answers[w] = sum;
        if (write(result, &sum, sizeof sum) != sizeof sum) exit(1);
    }
    uint64_t h = hash(extra, EXTRA, hash(b, WORKER_PAGES * PAGE, 1469598103934665603ULL));
    if (write(result, &h, sizeof h) != sizeof h) exit(1);
    exit(0);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 400;
    struct shared *sh = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) { perror("mmap"); return 1; }
    int task[NW], result[NW];
    pid_t kids[NW];
    for (int w = 0; w < NW; w++) {
        int t[2], r[2];
        if (pipe(t) != 0 || pipe(r) != 0) { perror("pipe"); return 1; }
        pid_t p = fork();
        if (p < 0) { perror("fork"); return 1; }
        if (p == 0) {
            close(t[1]);
            close(r[0]);
            for (int k = 0; k < w; k++) { close(task[k]); close(result[k]); }
            worker(w, t[0], r[1], sh);
        }
        close(t[0]);
        close(r[1]);
        task[w] = t[1];
        result[w] = r[0];
        kids[w] = p;
    }
    unsigned char *b = buffer(PARENT_PAGES, 7);
    uint64_t total = 0;
    for (int i = 1; i <= rounds; i++) {
        for (int w = 0; w < NW; w++)
            if (write(task[w], &i, sizeof i) != sizeof i) { perror("write"); return 1; }
        touch(b, PARENT_PAGES, i, 0);
        for (int w = 0; w < NW; w++) {
            uint64_t s;
            if (full_read(result[w], &s, sizeof s) != 0) { fprintf(stderr, "worker %d gone\n", w); return 1; }
            total = total * 7 + s;
        }
        sh->rounds[0]++;
        if (i % 20 == 0) {
            printf("step %d\n", i);
            fflush(stdout);
        }
        usleep(10000);
    }
    int stop = 0;
    uint64_t hashes[NW];
    for (int w = 0; w < NW; w++) {
        if (write(task[w], &stop, sizeof stop) != sizeof stop) return 1;
        if (full_read(result[w], &hashes[w], sizeof hashes[w]) != 0) return 1;
        waitpid(kids[w], NULL, 0);
    }
    printf("RESULT parent=%016llx total=%016llx", (unsigned long long)hash(b, PARENT_PAGES * PAGE, 1469598103934665603ULL),
           (unsigned long long)total);
    for (int w = 0; w < NW; w++)
        printf(" w%d=%016llx/%llu/%016llx", w, (unsigned long long)hashes[w], (unsigned long long)sh->rounds[w + 1],
               (unsigned long long)sh->answers[w]);
    printf(" parent_rounds=%llu\n", (unsigned long long)sh->rounds[0]);
    return 0;
}
