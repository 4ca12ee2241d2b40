/* Makes children every way, in a loop: system(), popen(), posix_spawn() and fork+exec of
 * another program (a 32-bit one in the mixed case), checking each child's output or status.
 * Usage: spawn_loop ITERATIONS PROGRAM   (PROGRAM: tests/c/hello, run with HELLO_STATUS)
 * Prints "parent <pid>", then "iter I" every 10 iterations, then
 * "RESULT iterations=N bad=B sum=S". */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int status_of(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int n = atoi(argv[1]);
    const char *prog = argv[2];
    unsigned long sum = 0;
    int bad = 0;
    printf("parent %d\n", (int)getpid());
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        char cmd[64];
        /* system() */
        snprintf(cmd, sizeof cmd, "exit %d", i % 50);
        int st = system(cmd);
        if (status_of(st) != i % 50) bad++, fprintf(stderr, "iter %d: system gave %d\n", i, st);
        sum = sum * 31 + (unsigned long)status_of(st);
        /* popen() */
        snprintf(cmd, sizeof cmd, "echo $((%d * 7))", i);
        FILE *f = popen(cmd, "r");
        int v = -1;
        if (!f || fscanf(f, "%d", &v) != 1 || v != i * 7) bad++, fprintf(stderr, "iter %d: popen read %d\n", i, v);
        if (f && status_of(pclose(f)) != 0) bad++, fprintf(stderr, "iter %d: pclose\n", i);
        sum = sum * 31 + (unsigned long)v;
        /* posix_spawn() */
        pid_t pid;
        char *sargv[] = {"sh", "-c", "exit 5", NULL};
        if (posix_spawn(&pid, "/bin/sh", NULL, NULL, sargv, environ) != 0) {
            bad++;
        } else {
            pid_t got = waitpid(pid, &st, 0);
            if (got != pid || status_of(st) != 5)
                bad++, fprintf(stderr, "iter %d: posix_spawn pid %d waitpid %d (%s) status %d\n", i, (int)pid,
                               (int)got, got < 0 ? strerror(errno) : "", st);
        }
        /* fork + exec of PROGRAM, which exits with HELLO_STATUS */
        pid = fork();
        if (pid == 0) {
            char code[16];
            snprintf(code, sizeof code, "%d", i % 100);
            setenv("HELLO_STATUS", code, 1);
            if (!freopen("/dev/null", "w", stdout)) _exit(99);
            execl(prog, prog, "x", (char *)NULL);
            _exit(98);
        }
        pid_t got = pid < 0 ? -1 : waitpid(pid, &st, 0);
        if (got != pid || status_of(st) != i % 100)
            bad++, fprintf(stderr, "iter %d: fork+exec pid %d waitpid %d (%s) status %d\n", i, (int)pid, (int)got,
                           got < 0 ? strerror(errno) : "", st);
        sum = sum * 31 + (unsigned long)status_of(st);
        if (i % 10 == 0) {
            printf("iter %d\n", i);
            fflush(stdout);
        }
    }
    printf("RESULT iterations=%d bad=%d sum=%lu\n", n, bad, sum);
    return bad != 0;
}
