/* For scripts/bench.sh: one TCP connection over loopback, both ends in this process, with up to
 * MIB MiB written and not read. The send buffer is left to the kernel's tuning (up to
 * net.ipv4.tcp_wmem's maximum, 4 MiB by default); beyond 4 MiB the receive buffer is asked for
 * MIB/2 MiB (the kernel doubles it; net.core.rmem_max caps it). Prints "ready inflight=BYTES" once the writer
 * end is full, then waits; on SIGUSR1 (or after a restart, the same) it reads everything and
 * prints "read=BYTES bad=WRONG" (every byte is a function of its offset).
 * Usage: inflight MIB */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static unsigned char at(uint64_t off) { return (unsigned char)((off * 2654435761u) >> 13); }

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 4;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGUSR1, on_usr1);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 1);
    getsockname(l, (struct sockaddr *)&a, &n);
    int w = socket(AF_INET, SOCK_STREAM, 0);
    int half = (int)(mib * 1024 * 1024 / 2);
    connect(w, (struct sockaddr *)&a, sizeof a);
    int r = accept(l, NULL, NULL);
    if (mib > 4) setsockopt(r, SOL_SOCKET, SO_RCVBUF, &half, sizeof half);
    close(l);
    fcntl(w, F_SETFL, O_NONBLOCK);
    static unsigned char buf[65536];
    uint64_t off = 0, limit = (uint64_t)mib * 1024 * 1024;
    for (int idle = 0; mib > 0 && idle < 20 && off < limit;) {
        size_t k = sizeof buf;
        if (limit - off < k) k = limit - off;
        for (size_t i = 0; i < k; i++) buf[i] = at(off + i);
        ssize_t s = send(w, buf, k, MSG_NOSIGNAL);
        if (s > 0) { off += s; idle = 0; continue; }
        idle++;
        usleep(10000);
    }
    int outq = 0, inq = 0;
    ioctl(w, TIOCOUTQ, &outq);
    ioctl(r, FIONREAD, &inq);
    printf("ready inflight=%llu sendq=%d recvq=%d\n", (unsigned long long)off, outq, inq);
    while (!go) pause();
    shutdown(w, SHUT_WR);
    uint64_t got = 0, bad = 0;
    for (;;) {
        ssize_t k = recv(r, buf, sizeof buf, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        for (ssize_t i = 0; i < k; i++) bad += buf[i] != at(got + i);
        got += k;
    }
    printf("read=%llu bad=%llu\n", (unsigned long long)got, (unsigned long long)bad);
    return 0;
}
