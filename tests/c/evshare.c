/* A parent and a child that share eventfds inherited over fork, and talk through them only.
 * The parent writes round i+1 to `ping`; the child, waiting on an epoll (inherited, watching
 * `ping`), reads it and answers 2*(i+1) on `pong`, which the parent reads. Both add one to
 * `tally` (EFD_SEMAPHORE) each round, and leave it unread: at the end the parent counts it
 * down. If a restart gave each process its own eventfds, a write by one would never be seen by
 * the other: the waits time out (reported as lost rounds, never a hang) and the tally is off.
 * Usage: evshare ROUNDS [CHILD_PROGRAM]   (the child execs CHILD_PROGRAM --child ...)
 *        evshare --child PING PONG TALLY EPOLL ROUNDS */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 30000

static int bad = 0, lost = 0;

static void put(int fd, uint64_t v) {
    if (write(fd, &v, 8) != 8) { perror("eventfd write"); exit(3); }
}

/* Waits (poll, so that a checkpoint is invisible) for `fd` to be readable, then reads it. */
static uint64_t take(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    while ((r = poll(&p, 1, WAIT_MS)) < 0 && errno == EINTR) {}
    if (r == 0) { lost++; return 0; }
    uint64_t v = 0;
    if (read(fd, &v, 8) != 8) { perror("eventfd read"); exit(3); }
    return v;
}

static int child(int ping, int pong, int tally, int ep, int rounds) {
    for (int i = 0; i < rounds; i++) {
        struct epoll_event e;
        int r;
        while ((r = epoll_wait(ep, &e, 1, WAIT_MS)) < 0 && errno == EINTR) {}
        if (r != 1 || e.data.u64 != 0xfeed) { lost++; continue; }
        uint64_t v = 0;
        if (read(ping, &v, 8) != 8) { perror("read ping"); exit(3); }
        if (v != (uint64_t)i + 1) bad++;
        put(tally, 1);
        usleep(20000);
        put(pong, 2 * v);
    }
    return (bad ? 1 : 0) | (lost ? 2 : 0);
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "--child") == 0)
        return child(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    int rounds = argc > 1 ? atoi(argv[1]) : 50;
    int ping = eventfd(0, 0), pong = eventfd(0, 0), tally = eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK);
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 0xfeed};
    if (ping < 0 || pong < 0 || tally < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ping, &e)) {
        perror("setup");
        return 2;
    }
    printf("ready\n");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (argc > 2) {
            char a[5][16];
            snprintf(a[0], 16, "%d", ping);
            snprintf(a[1], 16, "%d", pong);
            snprintf(a[2], 16, "%d", tally);
            snprintf(a[3], 16, "%d", ep);
            snprintf(a[4], 16, "%d", rounds);
            execl(argv[2], argv[2], "--child", a[0], a[1], a[2], a[3], a[4], (char *)0);
            perror("exec");
            _exit(4);
        }
        _exit(child(ping, pong, tally, ep, rounds));
    }
    uint64_t sum = 0;
    for (int i = 0; i < rounds; i++) {
        put(tally, 1);
        put(ping, (uint64_t)i + 1);
        uint64_t v = take(pong);
        if (v != 2 * ((uint64_t)i + 1)) bad++;
        sum += v;
        usleep(20000);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    /* The tally, counted down: one per read of a semaphore eventfd, until EAGAIN. */
    int count = 0;
    uint64_t one;
    while (read(tally, &one, 8) == 8) count++;
    printf("RESULT rounds=%d sum=%llu tally=%d bad=%d lost=%d child=%d\n", rounds, (unsigned long long)sum, count, bad,
           lost, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}
