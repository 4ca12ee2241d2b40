/* A TCP server (the parent) listening on 127.0.0.1:PORT and [::1]:PORT, with three client
 * processes (two over IPv4, one over IPv6) that keep up to WINDOW requests in flight while the
 * server answers slowly, so that a checkpoint finds bytes in flight both ways. Every message is
 * 64 bytes: a number and a payload; a response carries the number and a hash of the request.
 * Besides: two UDP sockets bound to loopback ports and connected to each other, exchanging a
 * datagram at the end; a child that talks to an echo server outside the computation
 * (127.0.0.1:ECHO_PORT) and reconnects whenever the connection fails; and, at the end, a new
 * client that connects to the listener.
 * Usage: sock_tcp N PORT ECHO_PORT
 *        sock_tcp --server PORT N, sock_tcp --client PORT N   (one server, one client) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 64
#define WINDOW 100
#define CLIENTS 3

static uint64_t hash(const unsigned char *p, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static int get(int fd, unsigned char *m, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, m + got, n - got, 0);
        if (r < 0) return -1;
        if (r == 0) return 0;
        got += r;
    }
    return 1;
}

static int put(int fd, const unsigned char *m, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t r = send(fd, m + done, n - done, MSG_NOSIGNAL);
        if (r < 0) return -1;
        done += r;
    }
    return 1;
}

static int tcp_connect(int v6, int port) {
    int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int r;
    if (v6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        r = connect(s, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        r = connect(s, (struct sockaddr *)&a, sizeof a);
    }
    if (r) { close(s); return -1; }
    return s;
}

static int tcp_listen(int v6, int port) {
    int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int r;
    if (v6) {
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        r = bind(s, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        r = bind(s, (struct sockaddr *)&a, sizeof a);
    }
    if (r || listen(s, 16)) { perror("listen"); exit(1); }
    return s;
}

/* One client: n requests with a window; exit 0 if every answer is right and the options stayed. */
static int client(int id, int v6, int port, int n) {
    int s = tcp_connect(v6, port);
    if (s < 0) { perror("client connect"); return 3; }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned char m[MSG];
    uint64_t hashes[WINDOW], x = 88172645463325252ULL + id;
    int sent = 0, next = 0, bad = 0;
    while (next < n) {
        if (sent < n && sent - next < WINDOW) {
            memcpy(m, &sent, 4);
            for (int k = 4; k < MSG; k++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; m[k] = (unsigned char)x; }
            hashes[sent % WINDOW] = hash(m + 4, MSG - 4);
            if (put(s, m, MSG) != 1) { perror("client send"); return 3; }
            sent++;
            continue;
        }
        if (get(s, m, MSG) != 1) { perror("client recv"); return 3; }
        int32_t k;
        uint64_t h;
        memcpy(&k, m, 4);
        memcpy(&h, m + 8, 8);
        if (k != next || h != hashes[k % WINDOW]) bad++;
        next++;
    }
    int32_t stop = -1;
    memset(m, 0, MSG);
    memcpy(m, &stop, 4);
    if (put(s, m, MSG) != 1 || get(s, m, MSG) != 1) return 3;
    uint64_t server_got;
    memcpy(&server_got, m + 8, 8);
    int nodelay = 0;
    socklen_t l = sizeof nodelay;
    getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &nodelay, &l);
    if (bad || server_got != (uint64_t)(n + 1) * MSG) return 1;
    return nodelay ? 0 : 2;
}

/* Talks to the outside echo server until `n` echoes came back right; reconnects on failure. */
/* How the connection failed: E (end of file), R (ECONNRESET), P (EPIPE), else the errno; and
 * whether the fd was still a socket then (an fd number never goes bad or to another file). */
static char failures[64];
static int nfail;

static void failed(int s, int r, int err) {
    struct stat st;
    if (nfail + 2 >= (int)sizeof failures) return;
    failures[nfail++] = r == 0 ? 'E' : err == ECONNRESET ? 'R' : err == EPIPE ? 'P' : '?';
    failures[nfail++] = fstat(s, &st) == 0 && S_ISSOCK(st.st_mode) ? 's' : 'x';
    if (failures[nfail - 2] == '?') fprintf(stderr, "outside: unexpected failure: %s\n", strerror(err));
}

static int outside(int port, int n) {
    int s = -1, ok = 0, reconnects = -1;
    while (ok < n) {
        if (s < 0) {
            s = tcp_connect(0, port);
            if (s < 0) { usleep(20000); continue; }
            reconnects++;
        }
        unsigned char b[8], r[8];
        memcpy(b, &ok, 4);
        memcpy(b + 4, "ping", 4);
        int w = put(s, b, 8), e = errno, g = w == 1 ? get(s, r, 8) : -1;
        if (w != 1 || g != 1 || memcmp(b, r, 8) != 0) {
            failed(s, w != 1 ? -1 : g, w != 1 ? e : errno);
            close(s);
            s = -1;
            continue;
        }
        ok++;
        usleep(5000);
    }
    printf("outside reconnects=%d failures=%s\n", reconnects, failures);
    fflush(stdout);
    return 0;
}

/* Two launches: a server of one client (exits when it is done) and that client. */
static int lone_server(int port) {
    int l = tcp_listen(0, port), c = accept(l, NULL, NULL);
    unsigned char m[MSG], out[MSG];
    uint64_t got = 0;
    for (;;) {
        if (get(c, m, MSG) != 1) { fprintf(stderr, "server: short read\n"); return 1; }
        got += MSG;
        int32_t k;
        memcpy(&k, m, 4);
        memset(out, 0, MSG);
        memcpy(out, &k, 4);
        uint64_t h = hash(m + 4, MSG - 4);
        memcpy(out + 8, k < 0 ? &got : &h, 8);
        usleep(500);
        if (put(c, out, MSG) != 1) return 1;
        if (k < 0) return 0;
    }
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--server") == 0) return lone_server(atoi(argv[2]));
    if (argc == 4 && strcmp(argv[1], "--client") == 0) {
        int r = client(0, 0, atoi(argv[2]), atoi(argv[3]));
        printf("RESULT two launches n=%d client=%d\n", atoi(argv[3]), r);
        return r;
    }
    if (argc < 4) return 1;
    int n = atoi(argv[1]), port = atoi(argv[2]), echo = atoi(argv[3]);
    int l4 = tcp_listen(0, port), l6 = tcp_listen(1, port);

    /* Two UDP sockets connected to each other. */
    int u[2];
    struct sockaddr_in ua[2];
    for (int i = 0; i < 2; i++) {
        u[i] = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof ua[i];
        if (bind(u[i], (struct sockaddr *)&a, sizeof a) || getsockname(u[i], (struct sockaddr *)&ua[i], &al)) {
            perror("udp");
            return 1;
        }
    }
    connect(u[0], (struct sockaddr *)&ua[1], sizeof ua[1]);
    connect(u[1], (struct sockaddr *)&ua[0], sizeof ua[0]);

    fflush(stdout);
    pid_t kids[CLIENTS + 1];
    for (int c = 0; c < CLIENTS; c++) {
        kids[c] = fork();
        if (kids[c] == 0) {
            close(l4);
            close(l6);
            _exit(client(c, c == 2, port, n));
        }
    }
    kids[CLIENTS] = fork();
    if (kids[CLIENTS] == 0) {
        close(l4);
        close(l6);
        _exit(outside(echo, n / 10));
    }

    int conn[CLIENTS], done[CLIENTS] = {0}, left = CLIENTS;
    uint64_t got[CLIENTS] = {0};
    for (int c = 0; c < CLIENTS; c++) {
        conn[c] = accept(c == 2 ? l6 : l4, NULL, NULL);
        if (conn[c] < 0) { perror("accept"); return 1; }
        int one = 1;
        setsockopt(conn[c], SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    }
    unsigned char m[MSG], out[MSG];
    while (left > 0) {
        for (int c = 0; c < CLIENTS; c++) {
            if (done[c]) continue;
            if (get(conn[c], m, MSG) != 1) { fprintf(stderr, "server: short read from %d: %s\n", c, strerror(errno)); return 1; }
            got[c] += MSG;
            int32_t k;
            memcpy(&k, m, 4);
            memset(out, 0, MSG);
            memcpy(out, &k, 4);
            if (k < 0) {
                memcpy(out + 8, &got[c], 8);
                done[c] = 1;
                left--;
            } else {
                uint64_t h = hash(m + 4, MSG - 4);
                memcpy(out + 8, &h, 8);
                if (c == 0) usleep(500);
            }
            if (put(conn[c], out, MSG) != 1) { perror("server send"); return 1; }
        }
    }
    int statuses[CLIENTS + 1];
    for (int c = 0; c <= CLIENTS; c++) {
        int st;
        waitpid(kids[c], &st, 0);
        statuses[c] = WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
    }
    int keepalive = 0;
    socklen_t kl = sizeof keepalive;
    getsockopt(conn[0], SOL_SOCKET, SO_KEEPALIVE, &keepalive, &kl);

    char b[8];
    int udp = send(u[0], "u0", 2, 0) == 2 && recv(u[1], b, 8, 0) == 2 && memcmp(b, "u0", 2) == 0 &&
              send(u[1], "u1", 2, 0) == 2 && recv(u[0], b, 8, 0) == 2 && memcmp(b, "u1", 2) == 0;

    /* A new client over each family. */
    int newc = 1;
    for (int v6 = 0; v6 < 2; v6++) {
        pid_t p = fork();
        if (p == 0) {
            int s = tcp_connect(v6, port);
            _exit(s >= 0 && put(s, (const unsigned char *)"new", 3) == 1 ? 0 : 1);
        }
        int a = accept(v6 ? l6 : l4, NULL, NULL);
        newc = newc && a >= 0 && get(a, m, 3) == 1 && memcmp(m, "new", 3) == 0;
        int st;
        waitpid(p, &st, 0);
        newc = newc && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        close(a);
    }
    printf("RESULT n=%d clients=%d,%d,%d outside=%d keepalive=%d udp=%d new_clients=%d\n", n, statuses[0],
           statuses[1], statuses[2], statuses[3], keepalive, udp, newc);
    return 0;
}
