/* Makes children every way, in a loop: system(), popen(), posix_spawn() and fork+exec of
 * another program (a 32-bit one in the mixed case), checking each child's output or status.
 * Beside it, a second thread keeps one child for the whole run (/bin/cat, over two pipes) and
 * echoes each iteration's number through it: a multi-threaded program with a long-lived
 * child over pipes, as well as children that come and go.
 * Usage: spawn_loop ITERATIONS PROGRAM   (PROGRAM: tests/c/hello, run with HELLO_STATUS)
 * Prints "parent <pid>", then "iter I" every 10 iterations, then
 * "RESULT iterations=N bad=B sum=S". */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int status_of(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

static int full(ssize_t (*io)(int, void *, size_t), int fd, void *buf, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t r = io(fd, (char *)buf + done, n - done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        done += (size_t)r;
    }
    return 0;
}
static ssize_t rd(int fd, void *b, size_t n) { return read(fd, b, n); }
static ssize_t wr(int fd, void *b, size_t n) { return write(fd, b, n); }

/* The echo thread: numbers come on to_echo, go through cat and back, and return doubled plus
 * one on from_echo; a 0 stops it, and it answers with cat's exit status. */
static int to_echo[2], from_echo[2];

static void *echo_thread(void *arg) {
    (void)arg;
    int down[2], up[2];
    if (pipe(down) || pipe(up)) return NULL;
    pid_t c = fork();
    if (c == 0) {
        dup2(down[0], 0);
        dup2(up[1], 1);
        for (int fd = 3; fd < 64; fd++) close(fd);
        execl("/bin/cat", "cat", (char *)NULL);
        _exit(97);
    }
    close(down[0]);
    close(up[1]);
    unsigned v, w;
    while (full(rd, to_echo[0], &v, sizeof v) == 0 && v != 0) {
        if (full(wr, down[1], &v, sizeof v) || full(rd, up[0], &w, sizeof w)) w = 0;
        else w = w * 2 + 1;
        if (full(wr, from_echo[1], &w, sizeof w)) break;
    }
    close(down[1]);
    int st = 0;
    unsigned code = waitpid(c, &st, 0) == c ? (unsigned)status_of(st) : 999u;
    full(wr, from_echo[1], &code, sizeof code);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int n = atoi(argv[1]);
    const char *prog = argv[2];
    unsigned long sum = 0;
    int bad = 0;
    printf("parent %d\n", (int)getpid());
    fflush(stdout);
    pthread_t echo;
    if (pipe(to_echo) || pipe(from_echo) || pthread_create(&echo, NULL, echo_thread, NULL)) return 3;
    for (int i = 0; i < n; i++) {
        char cmd[64];
        /* system() */
        snprintf(cmd, sizeof cmd, "exit %d", i % 50);
        errno = 0;
        int st = system(cmd);
        if (status_of(st) != i % 50)
            bad++, fprintf(stderr, "iter %d: system gave %d (%s)\n", i, st, st == -1 ? strerror(errno) : "");
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
        /* through the echo thread and its cat */
        unsigned e = (unsigned)i + 1, w = 0;
        if (full(wr, to_echo[1], &e, sizeof e) || full(rd, from_echo[0], &w, sizeof w) || w != e * 2 + 1)
            bad++, fprintf(stderr, "iter %d: echo gave %u\n", i, w);
        sum = sum * 31 + w;
        /* Pace the loop: with forks as cheap as they are without dmtcp, the loop would end
           before the test's cycles (each iteration is at least 60 ms). */
        struct timespec pace = {0, 60 * 1000 * 1000};
        while (nanosleep(&pace, &pace) != 0 && errno == EINTR) {
        }
        if (i % 10 == 0) {
            printf("iter %d\n", i);
            fflush(stdout);
        }
    }
    unsigned stop = 0, code = 999;
    if (full(wr, to_echo[1], &stop, sizeof stop) || full(rd, from_echo[0], &code, sizeof code) || code != 0)
        bad++, fprintf(stderr, "echo child: status %u\n", code);
    pthread_join(echo, NULL);
    printf("RESULT iterations=%d bad=%d sum=%lu\n", n, bad, sum);
    return bad != 0;
}
