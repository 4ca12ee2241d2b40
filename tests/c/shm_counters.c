/* Three processes (a parent and two children it forks) increment counters in shared memory
 * under a process-shared mutex, in five kinds of shared memory: anonymous MAP_SHARED memory
 * inherited over fork, a POSIX shm object kept under /dev/shm, one unlinked once mapped, a
 * memfd, and a MAP_SHARED mapping of a regular file. Each round, each process takes each
 * region's mutex, adds one to the region's total and to its own slot. At the end the parent
 * checks, for each region, that the total is the sum of the slots and that every process did
 * exactly `rounds` rounds (a region whose contents did not come back as of the checkpoint, or
 * that is no longer shared, fails this), and that the file holds what its mapping shows.
 * The anonymous region also holds a process-shared barrier that all three wait at every ten
 * rounds, and a condition variable on which the children wait for the parent's go every round
 * (so a checkpoint finds threads waiting on both); the parent holds the anonymous region's
 * mutex across a short sleep each round (so a checkpoint finds it held).
 * Prints "step N" (parent) every few rounds and a RESULT line.
 * Usage: shm_counters [rounds] [tag: names the POSIX shm objects] */
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

#define NPROC 3
#define NREG 5
#define LEN (4 * 4096)

struct region {
    pthread_mutex_t lock;
    pthread_barrier_t barrier; /* anonymous region only */
    pthread_cond_t go;         /* anonymous region only: round number in `round` */
    uint64_t round;
    uint64_t total;
    uint64_t slot[NPROC];
    unsigned char tail[8000]; /* a second page that only the parent writes */
};

static const char *names[NREG] = {"anon", "posix", "posix_unlinked", "memfd", "file"};

static struct region *map_fd(int fd) {
    if (ftruncate(fd, LEN) != 0) { perror("ftruncate"); exit(1); }
    void *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    close(fd);
    return p;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 60;
    struct region *r[NREG];
    char posix[64], posix2[64];
    const char *tag = argc > 2 ? argv[2] : "x";
    snprintf(posix, sizeof posix, "/dmtcp-shm-test-%s-%d", tag, (int)getpid());
    snprintf(posix2, sizeof posix2, "/dmtcp-shm-test-%s-%d-u", tag, (int)getpid());
    r[0] = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r[0] == MAP_FAILED) { perror("mmap"); return 1; }
    int f1 = shm_open(posix, O_RDWR | O_CREAT | O_EXCL, 0600), f2 = shm_open(posix2, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (f1 < 0 || f2 < 0) { perror("shm_open"); return 1; }
    r[1] = map_fd(f1);
    r[2] = map_fd(f2);
    shm_unlink(posix2);
    r[3] = map_fd(memfd_create("counters", 0));
    r[4] = map_fd(open("shm-counters-file.bin", O_RDWR | O_CREAT | O_TRUNC, 0600));
    for (int k = 0; k < NREG; k++) {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutex_init(&r[k]->lock, &a);
    }
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&r[0]->barrier, &ba, NPROC);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&r[0]->go, &ca);
    int me = 0;
    pid_t kids[NPROC - 1];
    for (int c = 1; c < NPROC; c++) {
        pid_t p = fork();
        if (p == 0) { me = c; break; }
        kids[c - 1] = p;
    }
    for (int i = 1; i <= rounds; i++) {
        /* Round i starts when the parent says so; the children wait on the condition. */
        pthread_mutex_lock(&r[0]->lock);
        if (me == 0) {
            r[0]->round = (uint64_t)i;
            pthread_cond_broadcast(&r[0]->go);
            usleep(2000); /* held while sleeping */
        } else {
            while (r[0]->round < (uint64_t)i) pthread_cond_wait(&r[0]->go, &r[0]->lock);
        }
        pthread_mutex_unlock(&r[0]->lock);
        if (i % 10 == 0) pthread_barrier_wait(&r[0]->barrier);
        for (int k = 0; k < NREG; k++) {
            pthread_mutex_lock(&r[k]->lock);
            r[k]->total++;
            r[k]->slot[me]++;
            if (me == 0) r[k]->tail[i % 8000] = (unsigned char)i;
            pthread_mutex_unlock(&r[k]->lock);
        }
        if (me == 0 && i % 5 == 0) {
            printf("step %d\n", i);
            fflush(stdout);
        }
        usleep(20000 + 3000 * me);
    }
    if (me != 0) return 0;
    for (int c = 0; c < NPROC - 1; c++) waitpid(kids[c], NULL, 0);
    printf("RESULT");
    for (int k = 0; k < NREG; k++) {
        uint64_t sum = 0;
        int exact = 1;
        for (int c = 0; c < NPROC; c++) {
            sum += r[k]->slot[c];
            exact &= r[k]->slot[c] == (uint64_t)rounds;
        }
        unsigned tail = 0;
        for (int j = 0; j < 8000; j++) tail = tail * 31 + r[k]->tail[j];
        printf(" %s=%llu/%s/%s/%u", names[k], (unsigned long long)r[k]->total, sum == r[k]->total ? "sum" : "BADSUM",
               exact ? "exact" : "NOTEXACT", tail);
    }
    struct region disk;
    int fd = open("shm-counters-file.bin", O_RDONLY);
    int same = fd >= 0 && pread(fd, &disk, sizeof disk, 0) == (ssize_t)sizeof disk && disk.total == r[4]->total;
    printf(" file_on_disk=%s\n", same ? "same" : "DIFFERENT");
    shm_unlink(posix);
    return 0;
}
