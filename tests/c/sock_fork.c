/* Sockets shared over fork: a parent and its child both hold one end of a UNIX stream
 * socketpair and one TCP listener. After DELAY_MS the child sets O_NONBLOCK on both (a status
 * flag of the open file description, so the parent sees it only if they still share one
 * socket), sends "child" through the shared end, and tells the parent over a pipe; the parent
 * reports what it sees and what it received on the other end.
 * Usage: sock_fork DELAY_MS */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long delay = argc > 1 ? atol(argv[1]) : 1000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int sp[2], p[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || pipe(p)) return 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR) {
        }
        fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
        fcntl(l, F_SETFL, fcntl(l, F_GETFL) | O_NONBLOCK);
        int ok = send(sp[0], "child", 5, 0) == 5 && write(p[1], "x", 1) == 1;
        _exit(ok ? 0 : 3);
    }
    close(p[1]);
    char c;
    while (read(p[0], &c, 1) < 0 && errno == EINTR) {
    }
    int su = (fcntl(sp[0], F_GETFL) & O_NONBLOCK) != 0, sl = (fcntl(l, F_GETFL) & O_NONBLOCK) != 0;
    char got[8] = "-";
    ssize_t n = recv(sp[1], got, 5, 0);
    got[n > 0 ? n : 1] = 0;
    int st = 0;
    waitpid(pid, &st, 0);
    printf("RESULT shared_unix=%d shared_listener=%d got=%s child=%d\n", su, sl, got,
           WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}
