/* A program that forbids SIGCHLD it did not cause: its handler counts every SIGCHLD and the
 * pid it names; it forks children of its own now and then and expects exactly one SIGCHLD for
 * each, and between them waitpid(-1, WNOHANG), waitpid(-1, WNOHANG|__WALL) and waitid(P_ALL)
 * must fail with ECHILD: no child of anybody else's is ever its. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got, foreign;
static volatile pid_t own = -1;

static void on_chld(int s, siginfo_t *si, void *uc) {
    (void)s;
    (void)uc;
    got++;
    if (si->si_pid != own) foreign++;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 60;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    int children = 0, echild = 0, other = 0;
    for (int i = 0; i < rounds; i++) {
        if (i % 10 == 5) {
            sigset_t b, o;
            sigemptyset(&b);
            sigaddset(&b, SIGCHLD);
            sigprocmask(SIG_BLOCK, &b, &o);
            pid_t p = fork();
            if (p == 0) _exit(7);
            own = p;
            sigprocmask(SIG_SETMASK, &o, NULL);
            int st;
            if (waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 7) children++;
            while (got < children) usleep(1000);
            own = -1;
        }
        int st;
        errno = 0;
        pid_t r1 = waitpid(-1, &st, WNOHANG);
        int e1 = errno;
        errno = 0;
        pid_t r2 = waitpid(-1, &st, WNOHANG | __WALL);
        int e2 = errno;
        siginfo_t si;
        errno = 0;
        int r3 = waitid(P_ALL, 0, &si, WEXITED | WNOHANG);
        int e3 = errno;
        if (r1 == -1 && e1 == ECHILD && r2 == -1 && e2 == ECHILD && r3 == -1 && e3 == ECHILD) {
            echild++;
        } else {
            other++;
            printf("round %d: waitpid %d/%d, waitpid __WALL %d/%d, waitid %d/%d\n", i, r1, e1, r2, e2, r3, e3);
        }
        printf("round %d\n", i);
        fflush(stdout);
        usleep(100000);
    }
    printf("RESULT rounds=%d children=%d sigchld=%d foreign=%d echild=%d other=%d\n", rounds, children, (int)got,
           (int)foreign, echild, other);
    return 0;
}
