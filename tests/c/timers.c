/* Timers across checkpoint and restart. Mode "all": the three interval timers (real, virtual,
 * profiling) and POSIX timers of every notification kind (SIGEV_SIGNAL on CLOCK_MONOTONIC,
 * SIGEV_THREAD_ID to a worker thread on CLOCK_REALTIME, glibc's SIGEV_THREAD (its helper
 * thread blocks every signal but SIGSETXID), SIGEV_SIGNAL on the process CPU clock, SIGEV_NONE
 * on CLOCK_BOOTTIME, and one never armed) each count to a target and stop themselves; at the
 * end every saved timer id must still answer timer_gettime, the idle one must still be
 * disarmed and the SIGEV_NONE one still armed, and a one-shot timer's signal, blocked and so
 * pending at every checkpoint, must still arrive as that timer's. Mode "alarm": three alarm(2)
 * rounds, each waited for with pause(), none shorter than 2 s on CLOCK_MONOTONIC.
 * Prints "tick N" lines and one RESULT line that an uninterrupted run must match. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { T_REAL = 200, T_VIRT = 120, T_PROF = 120, T_MONO = 200, T_TID = 120, T_THREAD = 100, T_CPU = 80 };

static volatile sig_atomic_t n_real, n_virt, n_prof, n_mono, n_tid, n_cpu, bad_mono, wrong_thread;
static atomic_int n_thread;
static timer_t t_mono, t_tid, t_thread, t_cpu, t_none, t_idle;
static volatile pid_t worker_tid;
static volatile int all_done;

static const struct itimerval ZERO_IT;
static const struct itimerspec ZERO_TS;

static void stop_itimer(int which) { setitimer(which, &ZERO_IT, NULL); }

static void on_alrm(int s) { (void)s; if (++n_real == T_REAL) stop_itimer(ITIMER_REAL); }
static void on_vtalrm(int s) { (void)s; if (++n_virt == T_VIRT) stop_itimer(ITIMER_VIRTUAL); }
static void on_prof(int s) { (void)s; if (++n_prof == T_PROF) stop_itimer(ITIMER_PROF); }

static void on_mono(int s, siginfo_t *si, void *uc) {
    (void)s; (void)uc;
    /* The timer's own signal: SI_TIMER, its sigval and its id (also for an expiry that was
     * pending at the checkpoint). */
    if (si->si_code != SI_TIMER || si->si_value.sival_int != 111 || si->si_timerid != (int)(intptr_t)t_mono)
        bad_mono++;
    if (++n_mono == T_MONO) timer_settime(t_mono, 0, &ZERO_TS, NULL);
}

/* A one-shot timer whose signal stays blocked, so pending across every checkpoint: when it is
 * finally taken it must still be the timer's (SI_TIMER, sigval 555, its id). */
static timer_t t_pend;
static volatile sig_atomic_t n_pend, pend_ok;
static void on_pend(int s, siginfo_t *si, void *uc) {
    (void)s; (void)uc;
    n_pend++;
    pend_ok = si->si_code == SI_TIMER && si->si_value.sival_int == 555 && si->si_timerid == (int)(intptr_t)t_pend;
}

static void on_tid(int s) {
    (void)s;
    if (syscall(SYS_gettid) != worker_tid) wrong_thread++;
    if (++n_tid == T_TID) timer_settime(t_tid, 0, &ZERO_TS, NULL);
}

static void on_cpu(int s) { (void)s; if (++n_cpu == T_CPU) timer_settime(t_cpu, 0, &ZERO_TS, NULL); }

static void on_thread(union sigval v) {
    if (v.sival_int != 333) return;
    if (atomic_fetch_add(&n_thread, 1) + 1 == T_THREAD) timer_settime(t_thread, 0, &ZERO_TS, NULL);
}

static void handle(int sig, void (*h)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, NULL);
}

static void on_wake(int s) { (void)s; }

static void *worker(void *arg) {
    (void)arg;
    worker_tid = syscall(SYS_gettid);
    while (!all_done) pause();
    return NULL;
}

static void every(timer_t t, long ms) {
    struct itimerspec its = {{ms / 1000, (ms % 1000) * 1000000}, {ms / 1000, (ms % 1000) * 1000000}};
    if (timer_settime(t, 0, &its, NULL)) { perror("timer_settime"); exit(1); }
}

static timer_t make(clockid_t clock, int notify, int sig, int value, pid_t tid) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = notify;
    ev.sigev_signo = sig;
    ev.sigev_value.sival_int = value;
    if (notify == SIGEV_THREAD_ID) ev._sigev_un._tid = tid;
    if (notify == SIGEV_THREAD) ev.sigev_notify_function = on_thread;
    timer_t t;
    if (timer_create(clock, &ev, &t)) { perror("timer_create"); exit(1); }
    return t;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile sig_atomic_t fired;
static void on_alarm(int s) { (void)s; fired = 1; }

static int alarm_mode(void) {
    handle(SIGALRM, on_alarm);
    int early = 0;
    for (int i = 0; i < 3; i++) {
        double a = now();
        fired = 0;
        alarm(2);
        while (!fired) pause();
        if (now() - a < 1.95) early++;
        printf("tick %d\n", i);
        fflush(stdout);
    }
    printf("RESULT alarms=3 early=%d\n", early);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "alarm") == 0) return alarm_mode();
    handle(SIGALRM, on_alrm);
    handle(SIGVTALRM, on_vtalrm);
    handle(SIGPROF, on_prof);
    handle(SIGRTMIN + 1, on_tid);
    handle(SIGRTMIN + 2, on_cpu);
    handle(SIGUSR1, on_wake);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_mono;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN, &sa, NULL);
    sa.sa_sigaction = on_pend;
    sigaction(SIGRTMIN + 4, &sa, NULL);
    sigset_t pend;
    sigemptyset(&pend);
    sigaddset(&pend, SIGRTMIN + 4);
    pthread_sigmask(SIG_BLOCK, &pend, NULL); /* the worker inherits it */

    pthread_t w;
    pthread_create(&w, NULL, worker, NULL);
    while (!worker_tid) usleep(1000);
    /* The worker alone takes the thread-directed signal; the others never do. */
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGRTMIN + 1);
    pthread_sigmask(SIG_BLOCK, &only, NULL);

    /* Sparse ids: three timers made and deleted first. */
    for (int i = 0; i < 3; i++) timer_delete(make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0));
    t_mono = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, 111, 0);
    t_tid = make(CLOCK_REALTIME, SIGEV_THREAD_ID, SIGRTMIN + 1, 222, worker_tid);
    t_thread = make(CLOCK_MONOTONIC, SIGEV_THREAD, 0, 333, 0);
    t_cpu = make(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIGRTMIN + 2, 444, 0);
    t_none = make(CLOCK_BOOTTIME, SIGEV_NONE, 0, 0, 0);
    t_idle = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 3, 0, 0);
    t_pend = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 4, 555, 0);
    struct itimerspec soon = {{0, 0}, {0, 50000000}};
    timer_settime(t_pend, 0, &soon, NULL);
    struct itimerspec long_one = {{0, 0}, {1000, 0}};
    timer_settime(t_none, 0, &long_one, NULL);

    struct itimerval real = {{0, 20000}, {0, 20000}}, cpu = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &real, NULL);
    setitimer(ITIMER_VIRTUAL, &cpu, NULL);
    setitimer(ITIMER_PROF, &cpu, NULL);
    every(t_mono, 15);
    every(t_tid, 25);
    every(t_thread, 30);
    every(t_cpu, 20);

    volatile unsigned long sink = 0;
    int ticks = 0;
    for (;;) {
        int done = n_real >= T_REAL && n_virt >= T_VIRT && n_prof >= T_PROF && n_mono >= T_MONO &&
                   n_tid >= T_TID && atomic_load(&n_thread) >= T_THREAD && n_cpu >= T_CPU;
        if (done) break;
        for (int i = 0; i < 200000; i++) sink += i;
        if (n_real / 25 > ticks) {
            ticks = n_real / 25;
            printf("tick %d\n", ticks);
            fflush(stdout);
        }
    }
    all_done = 1;
    pthread_kill(w, SIGUSR1);
    pthread_join(w, NULL);
    pthread_sigmask(SIG_UNBLOCK, &pend, NULL);

    struct itimerspec v;
    int ids_ok = 1;
    timer_t all[] = {t_mono, t_tid, t_thread, t_cpu, t_none, t_idle, t_pend};
    for (unsigned i = 0; i < sizeof all / sizeof all[0]; i++)
        if (timer_gettime(all[i], &v)) ids_ok = 0;
    timer_gettime(t_idle, &v);
    int idle_disarmed = v.it_value.tv_sec == 0 && v.it_value.tv_nsec == 0;
    timer_gettime(t_none, &v);
    int none_armed = v.it_value.tv_sec > 900 && v.it_value.tv_sec < 1000;
    printf("RESULT real=%d virt=%d prof=%d mono=%d bad=%d tid=%d wrong=%d thread=%d cpu=%d ids=%d idle=%d none=%d "
           "pending=%d/%d\n",
           (int)n_real, (int)n_virt, (int)n_prof, (int)n_mono, (int)bad_mono, (int)n_tid, (int)wrong_thread,
           atomic_load(&n_thread), (int)n_cpu, ids_ok, idle_disarmed, none_armed, (int)n_pend, (int)pend_ok);
    return 0;
}
