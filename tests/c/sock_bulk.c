/* Several MiB in flight on one connection: a parent and its child connected by TCP over
 * loopback and by a UNIX stream socketpair. In each process a writer thread sends as fast as it
 * can (parent to child: 12 MiB over TCP and 4 MiB over UNIX; child to parent: 6 MiB over TCP
 * and 2 MiB over UNIX) while the reader, the main thread, does not read for DELAY_MS and then
 * reads slowly. A checkpoint before DELAY_MS finds the receivers' queues full and the TCP
 * senders' kernels holding MiB in their send queues. Every byte is a function of its offset,
 * so the reader counts bytes lost, doubled or out of order.
 * Usage: sock_bulk DELAY_MS [CHILD_PROGRAM]   (the child: CHILD_PROGRAM --child DELAY_MS TCP UNIX) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static unsigned char byte_at(uint64_t off, unsigned salt) {
    uint64_t x = (off / 8) * 0x9E3779B97F4A7C15ULL + salt;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 32;
    return (unsigned char)(x >> (8 * (off % 8)));
}

struct flow {
    int fd;
    uint64_t total;
    unsigned salt;
};

static void *writer(void *arg) {
    struct flow *f = arg;
    static __thread unsigned char buf[65536];
    uint64_t off = 0;
    while (off < f->total) {
        size_t n = sizeof buf;
        if (f->total - off < n) n = f->total - off;
        for (size_t i = 0; i < n; i++) buf[i] = byte_at(off + i, f->salt);
        size_t done = 0;
        while (done < n) {
            ssize_t r = send(f->fd, buf + done, n - done, MSG_NOSIGNAL);
            if (r < 0) {
                if (errno == EINTR) continue;
                fprintf(stderr, "send: %s\n", strerror(errno));
                return NULL;
            }
            done += r;
        }
        off += n;
    }
    shutdown(f->fd, SHUT_WR);
    return NULL;
}

/* Reads until end of file, slowly (a pause every 256 KiB); counts bytes and wrong bytes. */
static void reader(int fd, unsigned salt, uint64_t *got, uint64_t *bad) {
    static unsigned char buf[32768];
    uint64_t off = 0, wrong = 0, since = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "recv: %s\n", strerror(errno));
            break;
        }
        if (r == 0) break;
        for (ssize_t i = 0; i < r; i++) wrong += buf[i] != byte_at(off + i, salt);
        off += r;
        since += r;
        if (since >= 256 * 1024) {
            since = 0;
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    *got = off;
    *bad = wrong;
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* One side: write `tcp_out`/`unix_out` MiB, read the other side's after DELAY_MS. */
static void side(char *res, long delay, int tcp, int ux, int tcp_out, int unix_out, unsigned salt_out,
                 unsigned salt_in) {
    struct flow ft = {tcp, (uint64_t)tcp_out * MIB, salt_out}, fu = {ux, (uint64_t)unix_out * MIB, salt_out + 1};
    /* The send buffer the program chose must be the one it has at the end (a restart's refill
     * raises it for a while). */
    int sb0 = 0, sb1 = 0;
    socklen_t sl = sizeof sb0;
    getsockopt(ux, SOL_SOCKET, SO_SNDBUF, &sb0, &sl);
    pthread_t a, b;
    pthread_create(&a, NULL, writer, &ft);
    pthread_create(&b, NULL, writer, &fu);
    pause_ms(delay);
    uint64_t tg, tb, ug, ub;
    reader(tcp, salt_in, &tg, &tb);
    reader(ux, salt_in + 1, &ug, &ub);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    sl = sizeof sb1;
    getsockopt(ux, SOL_SOCKET, SO_SNDBUF, &sb1, &sl);
    snprintf(res, 128, "tcp=%llu,%llu unix=%llu,%llu sndbuf=%s", (unsigned long long)tg, (unsigned long long)tb,
             (unsigned long long)ug, (unsigned long long)ub, sb0 == sb1 ? "kept" : "changed");
}

/* The child's line goes to the parent through a pipe, written once at the end. */
static void child(long delay, int tcp, int ux, int out) {
    char res[128];
    side(res, delay, tcp, ux, 6, 2, 200, 100);
    if (write(out, res, strlen(res)) < 0) perror("write");
    close(out);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && strcmp(argv[1], "--child") == 0) {
        child(atol(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: sock_bulk DELAY_MS [CHILD_PROGRAM]\n");
        return 1;
    }
    long delay = atol(argv[1]);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &alen)) {
        perror("listen");
        return 1;
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    int s = accept(l, NULL, NULL);
    close(l);
    int sp[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
    /* A UNIX sender may have its whole send buffer in flight: make it MiB. */
    int big = 4 * MIB;
    setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    int res_pipe[2];
    if (pipe(res_pipe)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(s);
        close(sp[0]);
        close(res_pipe[0]);
        if (argc > 2) {
            char d[32], t[16], u[16], o[16];
            snprintf(d, sizeof d, "%ld", delay);
            snprintf(t, sizeof t, "%d", c);
            snprintf(u, sizeof u, "%d", sp[1]);
            snprintf(o, sizeof o, "%d", res_pipe[1]);
            execl(argv[2], argv[2], "--child", d, t, u, o, (char *)NULL);
            perror("exec");
            _exit(127);
        }
        child(delay, c, sp[1], res_pipe[1]);
        _exit(0);
    }
    close(c);
    close(sp[1]);
    close(res_pipe[1]);
    char mine[128], theirs[128] = "";
    side(mine, delay, s, sp[0], 12, 4, 100, 200);
    ssize_t n = 0, r;
    while ((r = read(res_pipe[0], theirs + n, sizeof theirs - 1 - n)) > 0) n += r;
    theirs[n > 0 ? n : 0] = 0;
    int st = 0;
    waitpid(pid, &st, 0);
    printf("RESULT parent %s child %s exit=%d\n", mine, theirs, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}
