/* A process that stops itself with SIGSTOP, watched by its parent, for the stopped-process
 * tests. The parent forks the child and reports every change of the child it can see
 * (waitid with WSTOPPED | WCONTINUED | WEXITED). The child starts
 * a helper thread that counts in a loop, fills some memory, stops itself, and once continued
 * reports how many SIGCONT its handler saw and whether its memory and thread came through.
 *   parent: child N           the child's pid
 *   parent: child stopped by S
 *   parent: child continued
 *   parent: child exited C
 *   CHILD conts=K sum=X thread=ok
 *   RESULT events=<the parent's list>
 * A checkpoint while the child is stopped must not change any of this: the parent sees no
 * extra event, the child's SIGCONT handler runs once (for the real SIGCONT). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t conts;
static volatile unsigned long ticks;

static void on_cont(int s) { (void)s; conts++; }

static void *counter(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec t = {0, 2000000};
        nanosleep(&t, NULL);
        ticks++;
    }
    return NULL;
}

static int child(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cont;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCONT, &sa, NULL);
    enum { N = 1 << 20 };
    unsigned char *mem = malloc(N);
    for (int i = 0; i < N; i++) mem[i] = (unsigned char)(i * 7 + 3);
    pthread_t th;
    pthread_create(&th, NULL, counter, NULL);
    while (ticks < 3) {
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    kill(getpid(), SIGSTOP);
    unsigned long before = ticks;
    struct timespec t = {0, 50000000};
    nanosleep(&t, NULL);
    unsigned long sum = 0;
    for (int i = 0; i < N; i++) sum += mem[i];
    printf("CHILD conts=%d sum=%lu thread=%s\n", (int)conts, sum, ticks > before ? "ok" : "stuck");
    fflush(stdout);
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t pid = fork();
    if (pid == 0) return child();
    printf("parent: child %d\n", (int)pid);
    char events[512] = "";
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, pid, &si, WEXITED | WSTOPPED | WCONTINUED) != 0) continue;
        char e[64];
        if (si.si_code == CLD_STOPPED) snprintf(e, sizeof e, "stopped:%d", si.si_status);
        else if (si.si_code == CLD_CONTINUED) snprintf(e, sizeof e, "continued");
        else snprintf(e, sizeof e, "exited:%d", si.si_status);
        printf("parent: child %s\n", si.si_code == CLD_STOPPED ? "stopped" : e);
        if (events[0]) strcat(events, ",");
        strcat(events, e);
        if (si.si_code == CLD_EXITED || si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) break;
    }
    printf("RESULT events=%s\n", events);
    return 0;
}
