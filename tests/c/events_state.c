/* The state of each event kind, set up before a long sleep (through which the tests
 * checkpoint and restart) and checked after it:
 * - eventfds: a semaphore with count 5 (reads 1 five times, then EAGAIN), a counter above 2^32
 *   shared with a dup (a write through the dup shows in the first), their flags;
 * - timerfds: a periodic one keeps ticking, a one-shot of an hour and an absolute CLOCK_REALTIME
 *   one an hour away are still armed with about that much left, one that expired before the
 *   sleep (unread) reads 1 expiration, a never-armed one is still disarmed, and a one-shot of
 *   3 s (polled at each step: "fired at step N") expires once;
 * - a signalfd: a signal sent (blocked) before the sleep is read after it, one sent after it too;
 * - epoll: data fields, a one-shot entry that fired stays disarmed, an edge-triggered entry
 *   reports one edge once, an EPOLLEXCLUSIVE entry is there, and an epoll inside another
 *   reports its readiness;
 * - inotify: watch descriptors (with removed ones and a dup of the inotify fd), the next
 *   descriptor handed out, and an event on a watched folder.
 * Usage: events_state STEPS      sleeps STEPS x 50 ms, prints one RESULT line. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* Removes the folder `d` and the files in it, if there (no child process: a checkpoint may
 * come at any time, and a shell would be one more process in it). */
static void rm_dir(const char *d) {
    DIR *dir = opendir(d);
    if (!dir) return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(dir))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", d, e->d_name);
        if (unlink(path)) die("unlink");
    }
    closedir(dir);
    if (rmdir(d)) die("rmdir");
}

static char out[4096];
static void put(const char *fmt, long long v) {
    char b[128];
    snprintf(b, sizeof b, fmt, v);
    strcat(out, b);
}

static int wait_ep(int ep, uint64_t *data, int n) {
    struct epoll_event evs[8];
    int r;
    do r = epoll_wait(ep, evs, n, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) die("epoll_wait");
    for (int i = 0; i < r; i++) data[i] = evs[i].data.u64;
    return r;
}

static void add(int ep, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) die("epoll_ctl");
}

static double left(int t) {
    struct itimerspec its;
    if (timerfd_gettime(t, &its)) die("timerfd_gettime");
    return its.it_value.tv_sec + its.it_value.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 40;
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dirs[] = {"w1", "w2", "w3", "w4", "w5"};
    for (int i = 0; i < 5; i++) {
        rm_dir(dirs[i]);
        if (mkdir(dirs[i], 0755)) die("mkdir");
    }

    /* eventfds */
    int e1 = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
    int e2 = eventfd(0, 0);
    uint64_t big = (1ULL << 33) + 1000000007ULL;
    if (e1 < 0 || e2 < 0 || write(e2, &big, 8) != 8) die("eventfd");
    int e3 = dup(e2);
    int e4 = eventfd(0, EFD_NONBLOCK);
    int e5 = eventfd(0, EFD_NONBLOCK);

    /* timerfds */
    int t1 = timerfd_create(CLOCK_MONOTONIC, 0);
    int t2 = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    int t3 = timerfd_create(CLOCK_REALTIME, 0);
    int t4 = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
    int t5 = timerfd_create(CLOCK_MONOTONIC, 0);
    int t6 = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (t1 < 0 || t2 < 0 || t3 < 0 || t4 < 0 || t5 < 0 || t6 < 0) die("timerfd_create");
    struct itimerspec periodic = {{0, 30000000}, {0, 30000000}}, hour = {{0, 0}, {3600, 0}}, soon = {{0, 0}, {0, 10000000}},
                      late = {{0, 0}, {3, 0}};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct itimerspec at = {{0, 0}, {now.tv_sec + 3600, 0}};
    if (timerfd_settime(t1, 0, &periodic, NULL) || timerfd_settime(t2, 0, &hour, NULL) ||
        timerfd_settime(t3, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &at, NULL) ||
        timerfd_settime(t4, 0, &soon, NULL) || timerfd_settime(t6, 0, &late, NULL))
        die("timerfd_settime");

    /* signalfd, with a signal pending through the sleep */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGRTMIN + 2);
    if (sigprocmask(SIG_BLOCK, &mask, NULL)) die("sigprocmask");
    int s1 = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s1 < 0) die("signalfd");
    if (kill(getpid(), SIGRTMIN + 2)) die("kill");

    /* epoll: e1 (level), a pipe (one-shot, fired), e4 (edge), inside another epoll */
    int p[2];
    if (pipe(p)) die("pipe");
    int ep1 = epoll_create1(EPOLL_CLOEXEC), ep2 = epoll_create1(0);
    if (ep1 < 0 || ep2 < 0) die("epoll_create1");
    add(ep1, e1, EPOLLIN, 0xdeadbeefcafef00dULL);
    add(ep1, p[0], EPOLLIN | EPOLLONESHOT, 42);
    add(ep1, e4, EPOLLIN | EPOLLET, 77);
    add(ep1, e5, EPOLLIN | EPOLLEXCLUSIVE, 99);
    add(ep2, ep1, EPOLLIN, 0x5eed);
    if (write(p[1], "a", 1) != 1) die("write");
    uint64_t d[8];
    int n = wait_ep(ep1, d, 8); /* e1 and the pipe: the one-shot fires and is disarmed */
    if (n != 2) fprintf(stderr, "before: %d events\n", n);

    /* inotify: w1=1, w2=2 (removed), w3=3 through a dup at fd 100, w4=4 (removed): next is 5 */
    int in1 = inotify_init1(IN_NONBLOCK);
    if (in1 < 0 || dup2(in1, 100) != 100) die("inotify");
    int wd1 = inotify_add_watch(in1, "w1", IN_CREATE);
    int wd2 = inotify_add_watch(in1, "w2", IN_CREATE);
    int wd3 = inotify_add_watch(100, "w3", IN_CREATE | IN_ONESHOT);
    int wd4 = inotify_add_watch(in1, "w4", IN_CREATE);
    if (wd1 < 0 || wd2 < 0 || wd3 < 0 || wd4 < 0 || inotify_rm_watch(in1, wd2) || inotify_rm_watch(100, wd4))
        die("inotify_add_watch");
    char buf[4096];
    while (read(in1, buf, sizeof buf) > 0) {
    } /* the two IN_IGNORED */

    usleep(30000); /* t4 expires, unread */
    printf("ready\n");
    uint64_t fired = 0;
    for (int i = 0; i < steps; i++) {
        usleep(50000);
        if (i % 10 == 0) printf("step %d\n", i);
        if (!fired && read(t6, &fired, 8) == 8) printf("fired at step %d\n", i);
    }

    /* epoll: the inner one is ready (e1), the one-shot pipe entry stays disarmed */
    strcat(out, "RESULT");
    n = wait_ep(ep2, d, 8);
    put(" outer=%lld", n);
    put(":%llx", n > 0 ? (long long)d[0] : 0);
    if (write(p[1], "b", 1) != 1) die("write");
    n = wait_ep(ep1, d, 8);
    put(" inner=%lld", n);
    put(":%llx", n > 0 ? (long long)d[0] : 0);

    /* eventfds */
    uint64_t v;
    int sem = 0;
    while (read(e1, &v, 8) == 8 && v == 1) sem++;
    put(" sem=%lld", sem);
    strcat(out, errno == EAGAIN ? ",EAGAIN" : ",other");
    v = 1;
    if (write(e3, &v, 8) != 8) die("write e3");
    if (read(e2, &v, 8) != 8) die("read e2");
    put(" count=%lld", (long long)v);
    put(" cloexec=%lld", (fcntl(e1, F_GETFD) & FD_CLOEXEC) * 10 + (fcntl(e2, F_GETFD) & FD_CLOEXEC));
    put(" nonblock=%lld", !!(fcntl(e1, F_GETFL) & O_NONBLOCK) * 10 + !!(fcntl(e2, F_GETFL) & O_NONBLOCK));

    /* timerfds */
    if (read(t1, &v, 8) != 8) die("read t1");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 3; i++)
        if (read(t1, &v, 8) != 8) die("read t1");
    clock_gettime(CLOCK_MONOTONIC, &b);
    double took = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    put(" ticking=%lld", took > 0.05 && took < 1.0);
    double l2 = left(t2), l3 = left(t3);
    put(" hour=%lld", l2 > 3000 && l2 < 3600);
    put(" abs=%lld", l3 > 3000 && l3 < 3600);
    struct pollfd pf = {t4, POLLIN, 0};
    v = 0;
    if (poll(&pf, 1, 2000) == 1 && read(t4, &v, 8) != 8) die("read t4");
    put(" expired=%lld", (long long)v);
    put(" disarmed=%lld", left(t5) == 0);
    put(" late=%lld", (long long)fired);

    /* signalfd */
    struct signalfd_siginfo si;
    int s_pending = read(s1, &si, sizeof si) == sizeof si ? (int)si.ssi_signo - SIGRTMIN : -100;
    if (kill(getpid(), SIGUSR1)) die("kill");
    int s_new = read(s1, &si, sizeof si) == sizeof si ? (int)si.ssi_signo : -1;
    put(" sig=RTMIN+%lld", s_pending);
    put(",%lld", s_new);

    /* epoll: e4 has no count, e1 none left */
    v = 1;
    if (write(e4, &v, 8) != 8) die("write e4");
    n = wait_ep(ep1, d, 8);
    put(" edge=%lld", n);
    put(":%lld", n > 0 ? (long long)d[0] : 0);
    n = wait_ep(ep1, d, 8);
    put(",%lld", n);
    if (write(e5, &v, 8) != 8) die("write e5");
    n = wait_ep(ep1, d, 8);
    put(" exclusive=%lld", n);
    put(":%lld", n > 0 ? (long long)d[0] : 0);

    /* inotify */
    int wd5 = inotify_add_watch(100, "w5", IN_CREATE);
    put(" wds=%lld", wd1);
    put(",%lld", wd3);
    put(" next=%lld", wd5);
    if (close(open("w1/f", O_CREAT | O_WRONLY, 0644))) die("create");
    if (close(open("w3/f", O_CREAT | O_WRONLY, 0644))) die("create");
    usleep(10000);
    ssize_t r = read(in1, buf, sizeof buf);
    strcat(out, " events=");
    for (char *q = buf; r > 0 && q < buf + r;) {
        struct inotify_event *e = (struct inotify_event *)q;
        put("%lld", e->wd);
        put(":%llx", e->mask);
        strcat(out, ":");
        strcat(out, e->len ? e->name : "");
        strcat(out, ";");
        q += sizeof *e + e->len;
    }
    printf("%s\n", out);
    for (int i = 0; i < 5; i++) rm_dir(dirs[i]);
    return 0;
}
