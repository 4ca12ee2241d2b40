/* A pty pair inside the computation, the way forkpty users (script, expect) have one: the
 * parent opens a master (posix_openpt), sets the window size to 33x77, turns packet mode on,
 * and forks a child that starts a session and takes the slave as its controlling terminal
 * (and as stdin/stdout/stderr), in canonical mode with echo and VKILL changed to Ctrl-K.
 * Step by step the parent types "ping <i>" into the master and reads what comes back (the
 * echo, then the child's answer), in packet mode; the child waits a little before it reads
 * and before it answers, so that bytes are in flight both ways most of the time. The child's
 * answer says what it sees: the window size, whether it is the terminal's foreground group,
 * VKILL, canonical mode and echo, and whether ttyname(0) and /proc/self/fd/0 name the same
 * slave; the parent adds whether that name is ptsname() of its master. Usage: pty_pair STEPS.
 * Ends with "RESULT <steps> <checksum of every line>". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int child(const char *name) {
    if (setsid() < 0) return 10;
    int s = open(name, O_RDWR);
    if (s < 0) return 11;
    dup2(s, 0);
    dup2(s, 1);
    dup2(s, 2);
    if (s > 2) close(s);
    struct termios t;
    tcgetattr(0, &t);
    t.c_cc[VKILL] = 11;
    tcsetattr(0, TCSANOW, &t);
    char line[256];
    for (;;) {
        pause_ms(40);
        ssize_t n = read(0, line, sizeof line - 1);
        if (n <= 0) return 12;
        line[n] = 0;
        if (strncmp(line, "quit", 4) == 0) return 0;
        int i = atoi(line + 5);
        pause_ms(40);
        struct winsize w = {0};
        ioctl(0, TIOCGWINSZ, &w);
        tcgetattr(0, &t);
        char link[128] = "", *tn = ttyname(0);
        ssize_t l = readlink("/proc/self/fd/0", link, sizeof link - 1);
        if (l > 0) link[l] = 0;
        printf("pong %d rows=%d cols=%d fg=%d vkill=%d icanon=%d echo=%d names=%s tty=%s\n", i, w.ws_row, w.ws_col,
               tcgetpgrp(0) == getpgrp(), t.c_cc[VKILL], !!(t.c_lflag & ICANON), !!(t.c_lflag & ECHO),
               tn && strcmp(tn, link) == 0 ? "same" : "differ", tn ? tn : "none");
        fflush(stdout);
    }
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 20;
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) {
        perror("pty");
        return 1;
    }
    char name[64];
    snprintf(name, sizeof name, "%s", ptsname(m));
    struct winsize w = {33, 77, 0, 0};
    ioctl(m, TIOCSWINSZ, &w);
    int one = 1;
    ioctl(m, TIOCPKT, &one);
    pid_t pid = fork();
    if (pid == 0) {
        close(m);
        _exit(child(name));
    }
    unsigned long sum = 5381;
    char acc[4096];
    size_t have = 0;
    for (int i = 0; i < steps; i++) {
        char ping[32];
        int n = snprintf(ping, sizeof ping, "ping %d\n", i);
        if (write(m, ping, n) != n) return 2;
        /* The echo, and soon the answer, wait in the master meanwhile. */
        pause_ms(100);
        char want[32];
        snprintf(want, sizeof want, "pong %d ", i);
        char *line = NULL;
        while (!line) {
            char buf[512];
            ssize_t k = read(m, buf, sizeof buf);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) {
                printf("read: %s\n", k < 0 ? strerror(errno) : "end");
                return 3;
            }
            if (buf[0] != 0) {
                printf("packet status %d\n", buf[0]);
                continue;
            }
            if (have + k > sizeof acc - 1) have = 0;
            memcpy(acc + have, buf + 1, k - 1);
            have += k - 1;
            acc[have] = 0;
            char *p = strstr(acc, want), *e = p ? strstr(p, "\r\n") : NULL;
            if (e) {
                *e = 0;
                line = p;
            }
        }
        char *tty = strstr(line, " tty=");
        char out[512];
        snprintf(out, sizeof out, "step %d: %.*s ptsname=%s", i, (int)(tty - line), line,
                 tty && strcmp(tty + 5, ptsname(m)) == 0 ? "agrees" : "differs");
        printf("%s\n", out);
        fflush(stdout);
        for (char *c = out; *c; c++) sum = sum * 33 + (unsigned char)*c;
        have = 0;
    }
    write(m, "quit\n", 5);
    int st;
    waitpid(pid, &st, 0);
    printf("RESULT %d %lx child=%d\n", steps, sum, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
