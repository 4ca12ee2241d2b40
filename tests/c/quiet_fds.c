/* A program that closes every fd it does not know, with close_range(3, ~0U), closefrom(3) and a
 * loop of close() up to its limit, then puts files of its own at 820, 821 (the numbers dmtcp
 * uses) and 822 with dup2, dup3 and fcntl(F_DUPFD), and writes to them across checkpoints. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <linux/close_range.h>

static int open_at(const char *path, int want, int how) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    int r;
    if (how == 0) r = dup2(fd, want);
    else if (how == 1) r = dup3(fd, want, 0);
    else r = fcntl(fd, F_DUPFD, want);
    close(fd);
    return r;
}

static int count_lines(int fd) {
    char buf[8192];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    int k = 0;
    for (ssize_t i = 0; i < n; i++) k += buf[i] == '\n';
    return k;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 30;
    int ok = 1;
    if (close_range(3, ~0U, 0) != 0) ok = 0;
    closefrom(3);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int open_found = 0;
    for (unsigned long fd = 3; fd < rl.rlim_cur; fd++)
        if (close((int)fd) == 0) open_found++;
    /* Nothing of the program's was open above 2, so nothing was closed. */
    if (open_found != 0) {
        printf("close() found %d open fds above 2\n", open_found);
        ok = 0;
    }
    int a = open_at("fd820.txt", 820, 0);
    int b = open_at("fd821.txt", 821, 1);
    int c = open_at("fd822.txt", 822, 2);
    if (a != 820 || b != 821 || c != 822) {
        printf("got fds %d %d %d, not 820 821 822\n", a, b, c);
        ok = 0;
    }
    int fds[3] = {820, 821, 822};
    for (int i = 0; i < rounds; i++) {
        for (int k = 0; k < 3; k++) {
            char line[64];
            int n = snprintf(line, sizeof line, "fd %d line %d\n", fds[k], i);
            if (write(fds[k], line, (size_t)n) != n) ok = 0;
        }
        printf("round %d\n", i);
        fflush(stdout);
        usleep(100000);
    }
    printf("RESULT rounds=%d ok=%d lines=%d,%d,%d\n", rounds, ok, count_lines(820), count_lines(821),
           count_lines(822));
    return 0;
}
