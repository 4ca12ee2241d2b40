/* `execer <how> <program> [args...]`: replaces itself with <program> through the exec
 * function <how>: execve, execv, execvp, execvpe, fexecve, or spawn (posix_spawnp, then
 * waits and exits with the child's status). With $EXECER_UNSET_PRELOAD set, the environment
 * passed on has no LD_PRELOAD; with $EXECER_PRELOAD=x it has LD_PRELOAD=x. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: execer how program [args...]\n");
        return 2;
    }
    const char *how = argv[1];
    char **args = &argv[2];
    if (getenv("EXECER_UNSET_PRELOAD"))
        unsetenv("LD_PRELOAD");
    if (getenv("EXECER_PRELOAD"))
        setenv("LD_PRELOAD", getenv("EXECER_PRELOAD"), 1);
    if (!strcmp(how, "execve"))
        execve(args[0], args, environ);
    else if (!strcmp(how, "execv"))
        execv(args[0], args);
    else if (!strcmp(how, "execvp"))
        execvp(args[0], args);
    else if (!strcmp(how, "execvpe"))
        execvpe(args[0], args, environ);
    else if (!strcmp(how, "fexecve")) {
        int fd = open(args[0], O_RDONLY | O_CLOEXEC);
        if (fd < 0) { perror("open"); return 2; }
        fexecve(fd, args, environ);
    } else if (!strcmp(how, "spawn")) {
        pid_t pid;
        int r = posix_spawnp(&pid, args[0], NULL, NULL, args, environ);
        if (r != 0) { fprintf(stderr, "posix_spawnp: %s\n", strerror(r)); return 127; }
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    } else {
        fprintf(stderr, "execer: unknown exec function %s\n", how);
        return 2;
    }
    fprintf(stderr, "execer: %s %s: %s\n", how, args[0], strerror(errno));
    return 127;
}
