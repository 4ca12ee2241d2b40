/* A TCP server that listens on a port the kernel picks (bind to port 0, no SO_REUSEADDR, as
 * many programs do) and CLIENTS forked clients that exchange ROUNDS numbered messages with it,
 * slowly. After a kill, the restarted server must be able to listen on that same port again.
 * Usage: tcp_noreuse ROUNDS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENTS 4

static int xfer(int fd, void *p, size_t n, int out) {
    size_t done = 0;
    while (done < n) {
        ssize_t r = out ? write(fd, (char *)p + done, n - done) : read(fd, (char *)p + done, n - done);
        if (r <= 0) return -1;
        done += r;
    }
    return 0;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 8) || getsockname(l, (struct sockaddr *)&a, &len)) {
        perror("listen");
        return 1;
    }
    for (int c = 0; c < CLIENTS; c++) {
        if (fork() == 0) {
            close(l);
            int s = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(s, (struct sockaddr *)&a, sizeof a)) return 2;
            uint64_t v = c + 1;
            for (int i = 0; i < rounds; i++) {
                if (xfer(s, &v, sizeof v, 1) || xfer(s, &v, sizeof v, 0)) return 3;
                usleep(100000);
            }
            return 0;
        }
    }
    int conns[CLIENTS];
    for (int c = 0; c < CLIENTS; c++) conns[c] = accept(l, NULL, NULL);
    uint64_t sum = 0;
    for (int i = 0; i < rounds; i++) {
        for (int c = 0; c < CLIENTS; c++) {
            uint64_t v;
            if (xfer(conns[c], &v, sizeof v, 0)) return 4;
            v = v * 6364136223846793005ULL + 1442695040888963407ULL;
            sum += v;
            if (xfer(conns[c], &v, sizeof v, 1)) return 5;
        }
        printf("round %d\n", i);
        fflush(stdout);
    }
    int bad = 0;
    for (int c = 0; c < CLIENTS; c++) {
        int st;
        wait(&st);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
    }
    printf("RESULT sum=%llu bad=%d\n", (unsigned long long)sum, bad);
    return 0;
}
