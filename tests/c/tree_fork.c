/* A process tree: the parent forks two children that compute for a while and exit with
 * distinct statuses; child 0 leads a process group of its own, child 1 a session of its own.
 * Each child checks at the end that its pid, parent, process group and session are the ones it
 * had at the start (a restart must keep them) and folds that into its exit status. The parent
 * waits for each child by pid and prints their pids and statuses in a RESULT line.
 * Usage: tree_fork STEPS */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long work(int id, int steps) {
    unsigned long x = 1469598103934665603UL ^ (unsigned long)id;
    for (int i = 0; i < steps; i++) {
        for (int k = 0; k < 20000; k++) x = (x ^ (unsigned long)k) * 1099511628211UL;
        usleep(20000);
    }
    return x;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 100;
    pid_t parent = getpid(), kids[2];
    for (int i = 0; i < 2; i++) {
        pid_t p = fork();
        if (p < 0) { perror("fork"); return 1; }
        if (p == 0) {
            if (i == 0) setpgid(0, 0);
            else setsid();
            pid_t me = getpid(), pg = getpgid(0), sid = getsid(0);
            unsigned long x = work(i, steps + i * steps / 2);
            int ok = getppid() == parent && getpid() == me && getpgid(0) == pg && getsid(0) == sid
                     && pg == me && (i == 0 || sid == me);
            printf("child %d pid=%d sum=%lx ok=%d\n", i, (int)me, x, ok);
            fflush(stdout);
            _exit(ok ? 40 + i : 1);
        }
        kids[i] = p;
    }
    unsigned long x = work(9, steps / 4);
    printf("parent sum=%lx\n", x);
    fflush(stdout);
    int st[2];
    for (int i = 1; i >= 0; i--) {
        if (waitpid(kids[i], &st[i], 0) != kids[i]) { perror("waitpid"); return 1; }
    }
    if (waitpid(-1, NULL, WNOHANG) != -1) { printf("unexpected extra child\n"); return 1; }
    /* The children's pid numbers are not printed: which of child 1 and child 0's checkpoint
     * thread takes the next pid of the namespace is a race between two runs (a restart keeps
     * each number; waitpid by the pid fork returned, and each child's own check, pin that). */
    printf("RESULT parent=%d pgid_is_own=%d child0 exit=%d child1 exit=%d\n", (int)getpid(), getpgid(0) == getpid(),
           WIFEXITED(st[0]) ? WEXITSTATUS(st[0]) : -WTERMSIG(st[0]), WIFEXITED(st[1]) ? WEXITSTATUS(st[1]) : -WTERMSIG(st[1]));
    return 0;
}
