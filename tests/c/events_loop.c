/* An event loop on one epoll over five event sources, chained so that every round goes
 * through all of them in turn: a periodic timerfd tick starts a round, which writes a byte
 * into a pipe; the pipe's byte makes the loop add 1 to an eventfd; the eventfd's count makes
 * it send itself SIGUSR1 (blocked, read through a signalfd); the signal makes it open the file
 * "watched/r<N>" for writing and close it (the file may be there already, from the run that
 * went on after the checkpoint, hence IN_CLOSE_WRITE); the inotify event for that name ends
 * the round. Every epoll event must carry the data the source was added with, every inotify
 * event the watch descriptor and the name expected. Late in the run (round TARGET*3/4) it
 * adds one more watch and records the descriptor it got (the kernel's numbering must go on as
 * before a restart). epoll_wait is retried on EINTR. A round that does not end within 250
 * ticks prints what each source holds and fails.
 * Usage: events_loop TARGET [TICK_MS]      prints "round N" lines and one RESULT line. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <fcntl.h>
#include <unistd.h>

#define D_TIMER 0x7100000000000001ULL
#define D_PIPE 0x7200000000000002ULL
#define D_EVENT 0x7300000000000003ULL
#define D_SIGNAL 0x7400000000000004ULL
#define D_INOTIFY 0x7500000000000005ULL

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

static void add(int ep, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) die("epoll_ctl");
}

int main(int argc, char **argv) {
    int target = argc > 1 ? atoi(argv[1]) : 100;
    int tick_ms = argc > 2 ? atoi(argv[2]) : 20;
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dirs[] = {"watched", "a", "b", "d", "late"};
    for (int i = 0; i < 5; i++) rm_dir(dirs[i]);
    if (mkdir("watched", 0755) || mkdir("a", 0755) || mkdir("b", 0755) || mkdir("d", 0755) || mkdir("late", 0755))
        die("mkdir");

    int ino = inotify_init1(IN_CLOEXEC);
    if (ino < 0) die("inotify_init1");
    /* Numbers handed out: a=1, b=2, watched=3, d=4; a and d removed: the next one is 5. */
    int wa = inotify_add_watch(ino, "a", IN_CREATE);
    int wb = inotify_add_watch(ino, "b", IN_CREATE | IN_ONLYDIR);
    int ww = inotify_add_watch(ino, "watched", IN_CLOSE_WRITE);
    int wd_ = inotify_add_watch(ino, "d", IN_CREATE);
    if (wa < 0 || wb < 0 || ww < 0 || wd_ < 0) die("inotify_add_watch");
    if (inotify_rm_watch(ino, wa) || inotify_rm_watch(ino, wd_)) die("inotify_rm_watch");

    int p[2];
    if (pipe2(p, O_NONBLOCK)) die("pipe2");
    int efd = eventfd(0, EFD_NONBLOCK);
    if (efd < 0) die("eventfd");
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &mask, NULL)) die("sigprocmask");
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK);
    if (sfd < 0) die("signalfd");
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (tfd < 0) die("timerfd_create");
    struct itimerspec its = {{0, tick_ms * 1000000L}, {0, tick_ms * 1000000L}};
    if (timerfd_settime(tfd, 0, &its, NULL)) die("timerfd_settime");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    add(ep, tfd, EPOLLIN, D_TIMER);
    add(ep, p[0], EPOLLIN | EPOLLET, D_PIPE);
    add(ep, efd, EPOLLIN, D_EVENT);
    add(ep, sfd, EPOLLIN, D_SIGNAL);
    add(ep, ino, EPOLLIN, D_INOTIFY);

    int round = 0, busy = 0, late_wd = 0;
    long n_pipe = 0, n_event = 0, n_signal = 0, n_inotify = 0, n_ignored = 0, bad = 0, intr = 0;
    while (round < target) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, 5000);
        if (n < 0 && errno == EINTR) {
            intr++;
            continue;
        }
        if (n < 0) die("epoll_wait");
        if (n == 0) {
            fprintf(stderr, "stuck in round %d (busy %d)\n", round, busy);
            return 1;
        }
        for (int i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64, v;
            char buf[4096];
            if (d == D_TIMER) {
                if (read(tfd, &v, 8) == 8 && busy && ++busy > 250) {
                    int inpipe = -1, inq = -1;
                    uint64_t cnt = 0;
                    sigset_t pend;
                    char name[64];
                    ioctl(p[0], FIONREAD, &inpipe);
                    ioctl(ino, FIONREAD, &inq);
                    if (read(efd, &cnt, 8) != 8) cnt = 0;
                    sigpending(&pend);
                    snprintf(name, sizeof name, "watched/r%d", round);
                    fprintf(stderr, "round %d stuck: pipe %d eventfd %llu SIGUSR1 pending %d inotify queue %d %s %s\n",
                            round, inpipe, (unsigned long long)cnt, sigismember(&pend, SIGUSR1), inq, name,
                            access(name, F_OK) == 0 ? "exists" : "missing");
                    return 1;
                }
                if (!busy) {
                    busy = 1;
                    if (write(p[1], "x", 1) != 1) die("write pipe");
                }
            } else if (d == D_PIPE) {
                ssize_t r;
                while ((r = read(p[0], buf, sizeof buf)) > 0) {
                    n_pipe += r;
                    v = 1;
                    if (write(efd, &v, 8) != 8) die("write eventfd");
                }
            } else if (d == D_EVENT) {
                if (read(efd, &v, 8) == 8) {
                    n_event += v;
                    if (kill(getpid(), SIGUSR1)) die("kill");
                }
            } else if (d == D_SIGNAL) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo != SIGUSR1) bad++;
                    n_signal++;
                    char name[64];
                    snprintf(name, sizeof name, "watched/r%d", round);
                    int f = open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
                    if (f < 0) die("open");
                    close(f);
                }
            } else if (d == D_INOTIFY) {
                ssize_t r = read(ino, buf, sizeof buf);
                for (char *q = buf; r > 0 && q < buf + r;) {
                    struct inotify_event *e = (struct inotify_event *)q;
                    if (e->mask & IN_IGNORED) {
                        n_ignored++;
                    } else {
                        char want[64];
                        snprintf(want, sizeof want, "r%d", round);
                        if (e->wd != ww || !(e->mask & IN_CLOSE_WRITE) || strcmp(e->name, want) != 0) {
                            fprintf(stderr, "unexpected inotify event wd %d mask %x name %s in round %d\n", e->wd,
                                    e->mask, e->len ? e->name : "", round);
                            bad++;
                        } else {
                            n_inotify++;
                            busy = 0;
                            round++;
                            printf("round %d\n", round);
                            if (round == target * 3 / 4) late_wd = inotify_add_watch(ino, "late", IN_CREATE);
                        }
                    }
                    q += sizeof *e + e->len;
                }
            } else {
                bad++;
            }
        }
    }
    printf("RESULT rounds=%d pipe=%ld eventfd=%ld signals=%ld inotify=%ld ignored=%ld wds=%d,%d late_wd=%d bad=%ld\n",
           round, n_pipe, n_event, n_signal, n_inotify, n_ignored, wb, ww, late_wd, bad);
    fprintf(stderr, "epoll_wait EINTR: %ld\n", intr);
    for (int i = 0; i < 5; i++) rm_dir(dirs[i]);
    return 0;
}
