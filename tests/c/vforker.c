/* `vforker PROGRAM ARGS...`: vfork()s a child that execs PROGRAM (the exec must carry the
 * computation into it), prints "vforker ready <pid>", and waits for the child. The prefix is
 * its own: the child (a sleeper) prints "ready <pid>" too, and may do so first. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    pid_t c = vfork();
    if (c == 0) {
        execv(argv[1], argv + 1);
        _exit(127);
    }
    printf("vforker ready %d\n", (int)getpid());
    fflush(stdout);
    int st = 0;
    waitpid(c, &st, 0);
    printf("child status %d\n", st);
    return 0;
}
