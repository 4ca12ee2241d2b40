/* One of two separately launched programs that share memory only the kernel holds: a memfd
 * that role 0 makes and passes to role 1 over a UNIX socket (SCM_RIGHTS), and a /dev/shm file
 * that both map and role 0 unlinks once role 1 says it has mapped it. Both close every fd of
 * them (and the socket) before counting, so only the mappings remain. Each round each takes
 * each region's process-shared mutex and adds one to its total and its slot. At the end each
 * waits for the other's slot to be complete and prints the totals.
 * Prints "step N" every 10 rounds and a RESULT line.
 * Usage: shm_two_anon NAME ROLE [rounds] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct region {
    pthread_mutex_t lock;
    volatile uint64_t ready;
    volatile uint64_t total;
    volatile uint64_t slot[2];
};

static void die(const char *what) {
    perror(what);
    exit(1);
}

static struct region *map_region(int fd, int create) {
    if (create && ftruncate(fd, 4096) != 0) die("ftruncate");
    struct region *r = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (r == MAP_FAILED) die("mmap");
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
    char shm[128];
    snprintf(shm, sizeof shm, "/%s", name);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s.sock", name);
    struct region *r[2];
    char byte = 'x';
    if (role == 0) {
        int l = socket(AF_UNIX, SOCK_STREAM, 0);
        unlink(sa.sun_path);
        if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0) die("listen");
        /* The memfd is region 0: mapped here, its fd kept until it is passed. */
        int mfd = memfd_create("passed", 0);
        if (mfd < 0) die("memfd_create");
        if (ftruncate(mfd, 4096) != 0) die("ftruncate");
        r[0] = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
        if (r[0] == MAP_FAILED) die("mmap memfd");
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutex_init(&r[0]->lock, &a);
        __atomic_store_n(&r[0]->ready, 1, __ATOMIC_RELEASE);
        r[1] = map_region(shm_open(shm, O_RDWR | O_CREAT | O_EXCL, 0600), 1);
        int c = accept(l, NULL, NULL);
        if (c < 0) die("accept");
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {&byte, 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &mfd, sizeof(int));
        if (sendmsg(c, &m, 0) != 1) die("sendmsg");
        /* Role 1 has mapped both: the /dev/shm file goes, and the fds. */
        if (read(c, &byte, 1) != 1) die("read");
        shm_unlink(shm);
        close(mfd);
        close(c);
        close(l);
        unlink(sa.sun_path);
    } else {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        if (c < 0) die("socket");
        while (connect(c, (struct sockaddr *)&sa, sizeof sa) != 0) usleep(10000);
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {&byte, 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        if (recvmsg(c, &m, 0) != 1) die("recvmsg");
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        if (!cm || cm->cmsg_type != SCM_RIGHTS) die("no fd");
        int mfd;
        memcpy(&mfd, CMSG_DATA(cm), sizeof(int));
        r[0] = map_region(mfd, 0);
        int fd = shm_open(shm, O_RDWR, 0);
        if (fd < 0) die("shm_open");
        r[1] = map_region(fd, 0);
        for (int k = 0; k < 2; k++)
            while (!__atomic_load_n(&r[k]->ready, __ATOMIC_ACQUIRE)) usleep(10000);
        if (write(c, &byte, 1) != 1) die("write");
        close(c);
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
    printf("RESULT role=%d memfd=%llu,%llu,%llu unlinked=%llu,%llu,%llu\n", role, (unsigned long long)r[0]->total,
           (unsigned long long)r[0]->slot[0], (unsigned long long)r[0]->slot[1], (unsigned long long)r[1]->total,
           (unsigned long long)r[1]->slot[0], (unsigned long long)r[1]->slot[1]);
    return 0;
}
