/* A parent and the child it forks share a MAP_SHARED mapping of a file (PATH, under /dev/shm
 * like Open MPI's shared-memory segments), opened once and closed after mmap, so that only the
 * mapping holds it. Each round each takes the region's process-shared mutex and adds one to
 * the total and its slot; the second page holds a pattern the parent wrote once, and a page
 * in the middle of the file is never touched (a hole). At the end the parent waits for the
 * child and prints the totals, whether the pattern is intact, and whether the file on disk
 * shows what the mapping shows (it is still the mapping's file), then removes the file.
 * The parent also holds an fd on a second file, PATH.held, which it filled with write() and
 * removed at once (as Open MPI does with segments once every rank has them): each round it
 * pwrites its round number into it, and the child reads it through the same fd at the end
 * (the fd must still be one object with its contents and size, shared with the child).
 * Prints "step N" (parent) every ten rounds and a RESULT line.
 * Usage: shm_backing PATH [rounds] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 8
#define LEN (PAGES * 4096)

struct region {
    pthread_mutex_t lock;
    volatile uint64_t total;
    volatile uint64_t slot[2];
};

static int held = -1;

static void rounds_of(struct region *r, int who, int rounds) {
    for (int i = 0; i < rounds; i++) {
        if (who == 0 && pwrite(held, &i, sizeof i, 100) != sizeof i) { perror("pwrite held"); exit(1); }
        pthread_mutex_lock(&r->lock);
        r->total++;
        r->slot[who]++;
        pthread_mutex_unlock(&r->lock);
        if (who == 0 && i % 10 == 0) {
            printf("step %d\n", i);
            fflush(stdout);
        }
        usleep(8000);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *path = argv[1];
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) { perror(path); return 1; }
    if (ftruncate(fd, LEN) != 0) { perror("ftruncate"); return 1; }
    unsigned char *m = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    close(fd);
    struct region *r = (struct region *)m;
    char hpath[512];
    snprintf(hpath, sizeof hpath, "%s.held", path);
    held = open(hpath, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (held < 0) { perror(hpath); return 1; }
    static char fill[10000];
    for (int i = 0; i < (int)sizeof fill; i++) fill[i] = (char)('a' + i % 26);
    if (write(held, fill, sizeof fill) != sizeof fill) { perror("write held"); return 1; }
    unlink(hpath);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&r->lock, &a);
    for (int i = 0; i < 4096; i++) m[4096 + i] = (unsigned char)(i * 7 + 3);
    m[LEN - 1] = 0x5a;
    fflush(stdout);
    pid_t c = fork();
    if (c < 0) { perror("fork"); return 1; }
    if (c == 0) {
        rounds_of(r, 1, rounds);
        /* Wait for the parent's last round, then check the held file through the shared fd. */
        while (r->slot[0] < (uint64_t)rounds) usleep(1000);
        char got[10000];
        int last = -1;
        if (pread(held, got, sizeof got, 0) != sizeof got || pread(held, &last, sizeof last, 100) != sizeof last)
            _exit(3);
        if (last != rounds - 1 || memcmp(got, fill, 100) != 0 || memcmp(got + 104, fill + 104, sizeof got - 104) != 0)
            _exit(4);
        if (lseek(held, 0, SEEK_END) != (off_t)sizeof fill) _exit(5);
        _exit(0);
    }
    rounds_of(r, 0, rounds);
    int st = 0;
    waitpid(c, &st, 0);
    int pattern = m[LEN - 1] == 0x5a;
    for (int i = 0; i < 4096; i++) pattern &= m[4096 + i] == (unsigned char)(i * 7 + 3);
    int hole = 1;
    for (int i = 0; i < 4096; i++) hole &= m[4 * 4096 + i] == 0;
    /* The file must be the mapping's: what the mapping shows is what a read of the file gives. */
    char disk[LEN];
    int same = 0;
    int f = open(path, O_RDONLY);
    if (f >= 0 && pread(f, disk, LEN, 0) == LEN) same = memcmp(disk, m, LEN) == 0;
    if (f >= 0) close(f);
    printf("RESULT total=%llu slots=%llu,%llu child=%d pattern=%s hole=%s file=%s\n",
           (unsigned long long)r->total, (unsigned long long)r->slot[0], (unsigned long long)r->slot[1],
           WIFEXITED(st) ? WEXITSTATUS(st) : -1, pattern ? "kept" : "LOST", hole ? "zero" : "BAD",
           same ? "same" : "DIFFERENT");
    unlink(path);
    return 0;
}
