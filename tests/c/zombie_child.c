/* A child that has ended but is not reaped yet when the checkpoints come: the parent forks two
 * children that end at once (one with _exit(7), one killed by SIGTERM), waits a few seconds
 * without reaping them (checkpoint, kill and restart happen then), and reaps them only at the
 * end. Prints "ready" once both have ended, then
 * "RESULT exited=<status> killed=<signal>" (or the waitpid error). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    pid_t a = fork();
    if (a == 0) _exit(7);
    pid_t b = fork();
    if (b == 0) {
        raise(SIGTERM);
        _exit(1);
    }
    /* Both have ended once waitid with WNOWAIT sees them. */
    siginfo_t si;
    pid_t kids[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        memset(&si, 0, sizeof si);
        while (waitid(P_PID, kids[k], &si, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
        }
    }
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 90; i++) {
        struct timespec t = {0, 100 * 1000 * 1000};
        while (nanosleep(&t, &t) != 0 && errno == EINTR) {
        }
    }
    int sa = 0, sb = 0;
    pid_t ra = waitpid(a, &sa, 0);
    const char *ea = ra == a ? "" : strerror(errno);
    pid_t rb = waitpid(b, &sb, 0);
    const char *eb = rb == b ? "" : strerror(errno);
    printf("RESULT exited=%d%s killed=%d%s\n", ra == a && WIFEXITED(sa) ? WEXITSTATUS(sa) : -1, ea,
           rb == b && WIFSIGNALED(sb) ? WTERMSIG(sb) : -1, eb);
    return 0;
}
