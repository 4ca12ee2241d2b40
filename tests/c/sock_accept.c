/* Connections in a listener's accept queue at checkpoint: the parent listens on TCP
 * 127.0.0.1 (any port) and on the UNIX path acc.sock, its child connects to both at once and
 * waits for a greeting, but the parent accepts only after DELAY_MS. Then it greets each
 * client, the child answers on each, and the parent prints what it got.
 * Usage: sock_accept DELAY_MS */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int get(int fd, char *buf, int n) {
    int got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += r;
    }
    buf[got] = 0;
    return got;
}

int main(int argc, char **argv) {
    long delay = argc > 1 ? atol(argv[1]) : 1000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int tl = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(tl, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(tl, (struct sockaddr *)&a, sizeof a) || listen(tl, 4) || getsockname(tl, (struct sockaddr *)&a, &alen)) {
        perror("tcp listen");
        return 1;
    }
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    strcpy(u.sun_path, "acc.sock");
    unlink(u.sun_path);
    int ul = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(ul, (struct sockaddr *)&u, sizeof u) || listen(ul, 4)) {
        perror("unix listen");
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(tl);
        close(ul);
        int t = socket(AF_INET, SOCK_STREAM, 0), x = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(t, (struct sockaddr *)&a, sizeof a) || connect(x, (struct sockaddr *)&u, sizeof u)) {
            perror("connect");
            _exit(2);
        }
        printf("connected\n");
        char buf[16];
        int ok = get(t, buf, 7) == 7 && !strcmp(buf, "welcome") && send(t, "thanks", 6, 0) == 6;
        ok = ok && get(x, buf, 7) == 7 && !strcmp(buf, "welcome") && send(x, "thanks", 6, 0) == 6;
        _exit(ok ? 0 : 3);
    }
    struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
    char tb[16] = "-", ub[16] = "-";
    int t = accept(tl, NULL, NULL);
    if (t >= 0 && send(t, "welcome", 7, 0) == 7) get(t, tb, 6);
    int x = accept(ul, NULL, NULL);
    if (x >= 0 && send(x, "welcome", 7, 0) == 7) get(x, ub, 6);
    int st = 0;
    waitpid(pid, &st, 0);
    unlink("acc.sock");
    printf("RESULT tcp=%s unix=%s child=%d\n", tb, ub, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}
