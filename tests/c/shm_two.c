/* One of two separately launched programs that share memory: a named POSIX shm object
 * (/dev/shm/NAME) and a MAP_SHARED regular file (NAME.bin in the current folder). Role 0
 * creates and initialises both (a process-shared mutex each), role 1 waits until they are
 * ready. Each round each takes each region's mutex and adds one to its total and its slot.
 * At the end each waits for the other's slot to be complete and prints the totals.
 * Prints "step N" every 10 rounds and a RESULT line.
 * Usage: shm_two NAME ROLE [rounds] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct region {
    pthread_mutex_t lock;
    volatile uint64_t ready;
    volatile uint64_t total;
    volatile uint64_t slot[2];
};

static struct region *open_region(int fd, int create) {
    if (create && ftruncate(fd, 4096) != 0) { perror("ftruncate"); exit(1); }
    struct region *r = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (r == MAP_FAILED) { perror("mmap"); exit(1); }
    close(fd);
    if (create) {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutex_init(&r->lock, &a);
        __atomic_store_n(&r->ready, 1, __ATOMIC_RELEASE);
    }
    return r;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *name = argv[1];
    int role = atoi(argv[2]), rounds = argc > 3 ? atoi(argv[3]) : 200;
    char shm[128], file[128];
    snprintf(shm, sizeof shm, "/%s", name);
    snprintf(file, sizeof file, "%s.bin", name);
    struct region *r[2];
    if (role == 0) {
        r[0] = open_region(shm_open(shm, O_RDWR | O_CREAT | O_EXCL, 0600), 1);
        r[1] = open_region(open(file, O_RDWR | O_CREAT | O_TRUNC, 0600), 1);
    } else {
        int fd;
        while ((fd = shm_open(shm, O_RDWR, 0)) < 0) usleep(10000);
        r[0] = open_region(fd, 0);
        while ((fd = open(file, O_RDWR)) < 0) usleep(10000);
        while (lseek(fd, 0, SEEK_END) < 4096) usleep(10000);
        r[1] = open_region(fd, 0);
        for (int k = 0; k < 2; k++)
            while (!__atomic_load_n(&r[k]->ready, __ATOMIC_ACQUIRE)) usleep(10000);
    }
    for (int i = 0; i < rounds; i++) {
        for (int k = 0; k < 2; k++) {
            pthread_mutex_lock(&r[k]->lock);
            r[k]->total++;
            r[k]->slot[role]++;
            pthread_mutex_unlock(&r[k]->lock);
        }
        if (i % 10 == 0) {
            printf("step %d\n", i);
            fflush(stdout);
        }
        usleep(8000);
    }
    for (int k = 0; k < 2; k++)
        for (int w = 0; r[k]->slot[1 - role] < (uint64_t)rounds && w < 3000; w++) usleep(10000);
    printf("RESULT role=%d shm=%llu,%llu,%llu file=%llu,%llu,%llu\n", role, (unsigned long long)r[0]->total,
           (unsigned long long)r[0]->slot[0], (unsigned long long)r[0]->slot[1], (unsigned long long)r[1]->total,
           (unsigned long long)r[1]->slot[0], (unsigned long long)r[1]->slot[1]);
    if (role == 0) {
        usleep(200000);
        shm_unlink(shm);
    }
    return 0;
}
