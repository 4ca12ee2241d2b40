/* Waits that span checkpoints: four threads wait in poll(), select(), epoll_wait() and
 * sigtimedwait() with a timeout, over and over; the main thread waits in poll() for a SIGALRM of
 * its own. A checkpoint must never make a wait fail with EINTR nor end it before its time; the
 * program's own signal must still interrupt its wait with EINTR. The epoll_wait thread runs only
 * with a third argument "epoll" (an epoll fd is not restored by a restart yet: that mode is for
 * checkpoints that the program runs through). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 1000
static int rounds;
static int pipefd[2];
static int epfd;
static volatile int bad_eintr, early, wrong, alarms_seen;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void check(const char *what, int r, int err, int want, double t0) {
    double d = now() - t0;
    pthread_mutex_lock(&out_lock);
    if (r == -1 && err == EINTR) {
        bad_eintr++;
        printf("%s failed with EINTR\n", what);
    } else if (r != want) {
        wrong++;
        printf("%s returned %d (errno %d)\n", what, r, err);
    }
    if (d < TIMEOUT_MS / 1000.0 - 0.002) {
        early++;
        printf("%s ended after %.3f s, before its %d ms\n", what, d, TIMEOUT_MS);
    }
    pthread_mutex_unlock(&out_lock);
}

static void *by_poll(void *a) {
    (void)a;
    for (int i = 0; i < rounds; i++) {
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        double t0 = now();
        int r = poll(&p, 1, TIMEOUT_MS);
        check("poll", r, errno, 0, t0);
    }
    return NULL;
}

static void *by_select(void *a) {
    (void)a;
    for (int i = 0; i < rounds; i++) {
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(pipefd[0], &rs);
        struct timeval tv = {.tv_sec = TIMEOUT_MS / 1000, .tv_usec = (TIMEOUT_MS % 1000) * 1000};
        double t0 = now();
        int r = select(pipefd[0] + 1, &rs, NULL, NULL, &tv);
        check("select", r, errno, 0, t0);
    }
    return NULL;
}

static void *by_epoll(void *a) {
    (void)a;
    for (int i = 0; i < rounds; i++) {
        struct epoll_event ev;
        double t0 = now();
        int r = epoll_wait(epfd, &ev, 1, TIMEOUT_MS);
        check("epoll_wait", r, errno, 0, t0);
    }
    return NULL;
}

static void *by_sigtimedwait(void *a) {
    (void)a;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    for (int i = 0; i < rounds; i++) {
        struct timespec ts = {.tv_sec = TIMEOUT_MS / 1000, .tv_nsec = (TIMEOUT_MS % 1000) * 1000000L};
        siginfo_t si;
        double t0 = now();
        int r = sigtimedwait(&s, &si, &ts);
        int e = errno;
        /* A timeout is -1 with EAGAIN: report it as 0. */
        check("sigtimedwait", r == -1 && e == EAGAIN ? 0 : r, e, 0, t0);
    }
    return NULL;
}

static void on_alarm(int s) {
    (void)s;
    alarms_seen++;
}

/* The program's own signal: a thread sends SIGALRM to the main thread 0.7 s after the main
 * thread is about to wait (a thread and its sleep survive a restart; an interval timer is not
 * restored yet). */
static pthread_t main_thread;
static int armed, n_alarms;

static void *alarm_sender(void *a) {
    (void)a;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    for (int i = 0; i < n_alarms; i++) {
        while (__atomic_load_n(&armed, __ATOMIC_ACQUIRE) != i + 1) usleep(1000);
        usleep(700000);
        pthread_kill(main_thread, SIGALRM);
    }
    return NULL;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atoi(argv[1]) : 10;
    int alarms = argc > 2 ? atoi(argv[2]) : 8;
    int with_epoll = argc > 3 && strcmp(argv[3], "epoll") == 0;
    if (pipe(pipefd) != 0) return 1;
    epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = pipefd[0]};
    epoll_ctl(epfd, EPOLL_CTL_ADD, pipefd[0], &ev);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    /* Only the main thread takes SIGALRM. */
    sigset_t a;
    sigemptyset(&a);
    sigaddset(&a, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &a, NULL);
    pthread_t t[4];
    pthread_create(&t[0], NULL, by_poll, NULL);
    pthread_create(&t[1], NULL, by_select, NULL);
    pthread_create(&t[2], NULL, with_epoll ? by_epoll : by_poll, NULL);
    pthread_create(&t[3], NULL, by_sigtimedwait, NULL);
    pthread_sigmask(SIG_UNBLOCK, &a, NULL);
    int alarm_eintr = 0;
    pthread_t sender;
    main_thread = pthread_self();
    n_alarms = alarms;
    pthread_create(&sender, NULL, alarm_sender, NULL);
    for (int i = 0; i < alarms; i++) {
        __atomic_store_n(&armed, i + 1, __ATOMIC_RELEASE);
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        double t0 = now();
        int r = poll(&p, 1, 20000);
        int e = errno;
        double d = now() - t0;
        /* The program's own signal ends the wait, well before its 20 s (a checkpoint and a
         * restart may come in between). */
        if (r == -1 && e == EINTR && d < 15.0) alarm_eintr++;
        else printf("alarm %d: poll returned %d (errno %d) after %.3f s\n", i, r, e, d);
        printf("alarm %d\n", i);
        fflush(stdout);
    }
    pthread_join(sender, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("RESULT rounds=%d eintr=%d early=%d wrong=%d alarms=%d alarm_eintr=%d handled=%d\n", rounds, bad_eintr,
           early, wrong, alarms, alarm_eintr, alarms_seen);
    return 0;
}
