/* A memfd passed to children as an fd: the parent fills it with write() (never mapped by it),
 * forks two children, and every round each process adds one to its own counter slot in the
 * memfd with pread/pwrite; the second child also maps the memfd after the fork and keeps a
 * second counter through the mapping, which the parent reads with pread. At the end the
 * parent checks that every slot holds exactly `rounds` (the contents came back as of the
 * checkpoint, shared), that the fd is still a memfd of its old name, size and file position
 * (shared with the children: they never moved it), and hashes the data written at the start.
 * With a program path as second argument, the first child execs it (the same program built
 * for the other architecture) as "PROGRAM rounds --child 1 FD": a mixed 64/32-bit computation
 * sharing the memfd through the fd.
 * Prints "step N" every few rounds (parent) and a RESULT line.
 * Usage: memfd_fds [rounds] [other-arch program] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA 10000
#define SLOTS 12288 /* counters start here: on the fourth page, past the data */

static uint64_t get(int fd, int k) {
    uint64_t v = 0;
    if (pread(fd, &v, 8, SLOTS + 8 * k) != 8) return ~0ull;
    return v;
}

static int count(int fd, int me, int rounds) {
    volatile uint64_t *mapped = NULL;
    if (me == 2) {
        mapped = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (mapped == MAP_FAILED) { perror("mmap"); return 1; }
    }
    for (int i = 1; i <= rounds; i++) {
        uint64_t v = get(fd, me) + 1;
        if (pwrite(fd, &v, 8, SLOTS + 8 * me) != 8) { perror("pwrite"); return 1; }
        if (mapped) mapped[SLOTS / 8 + 4] += 1;
        if (me == 0 && i % 5 == 0) {
            printf("step %d\n", i);
            fflush(stdout);
        }
        usleep(25000);
    }
    return 0;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 60;
    if (argc > 4 && strcmp(argv[2], "--child") == 0) return count(atoi(argv[4]), atoi(argv[3]), rounds);
    int fd = memfd_create("passed", 0);
    if (fd < 0) { perror("memfd_create"); return 1; }
    unsigned char buf[DATA];
    for (int i = 0; i < DATA; i++) buf[i] = (unsigned char)(i * 13 + 7);
    if (write(fd, buf, DATA) != DATA) { perror("write"); return 1; }
    /* The counters live past the data, at SLOTS; the file position stays at DATA. */
    if (ftruncate(fd, SLOTS + 4096) != 0) { perror("ftruncate"); return 1; }
    int me = 0;
    pid_t kids[2];
    for (int c = 1; c <= 2; c++) {
        pid_t p = fork();
        if (p == 0) { me = c; break; }
        kids[c - 1] = p;
    }
    if (me == 1 && argc > 2) {
        char fds[16];
        snprintf(fds, sizeof fds, "%d", fd);
        execl(argv[2], argv[2], argv[1], "--child", "1", fds, (char *)NULL);
        perror("execl");
        return 1;
    }
    if (count(fd, me, rounds) != 0) return 1;
    if (me != 0) return 0;
    for (int c = 0; c < 2; c++) waitpid(kids[c], NULL, 0);
    char link[64], target[256] = "";
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) target[n] = 0;
    struct stat st;
    fstat(fd, &st);
    uint64_t h = 14695981039346656037ull;
    memset(buf, 0, sizeof buf);
    if (pread(fd, buf, DATA, 0) != DATA) return 1;
    for (int i = 0; i < DATA; i++) h = h * 1099511628211ull ^ buf[i];
    printf("RESULT slots=%llu,%llu,%llu mapped=%llu name=%s size=%lld pos=%lld hash=%llu\n",
           (unsigned long long)get(fd, 0), (unsigned long long)get(fd, 1), (unsigned long long)get(fd, 2),
           (unsigned long long)get(fd, 4), strstr(target, "memfd:passed") ? "passed" : target, (long long)st.st_size,
           (long long)lseek(fd, 0, SEEK_CUR), (unsigned long long)h);
    return 0;
}
