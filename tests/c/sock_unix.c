/* A parent and a child talking over five kinds of UNIX socket at once (a stream, a datagram and
 * a seqpacket socketpair, a stream connection accepted from a path listener and a seqpacket
 * connection accepted from an abstract listener), with up to WINDOW requests in flight on each
 * and a slow child, so that a checkpoint finds bytes in flight both ways. Every message is 64
 * bytes: a number and a payload; a response carries the number and a hash of its request.
 * Besides, the parent keeps in itself: a datagram socketpair with three datagrams of different
 * sizes queued, a stream socketpair with "bye" queued and its sending side shut down, a
 * non-blocking close-on-exec socket with SO_SNDBUF and SO_RCVTIMEO set. At the end it checks
 * those, and that a new client (a fresh child) can connect to the path listener.
 * Usage: sock_unix N DIR [CHILD_PROGRAM]   (the child execs CHILD_PROGRAM --child FD... if given)
 *        sock_unix --child FD1 FD2 FD3 FD4 FD5 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 64
#define WINDOW 100
#define CH 5

static uint64_t hash(const unsigned char *p, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* One message: a stream is read in full, a datagram/seqpacket must come as one message. */
static int get(int fd, int stream, unsigned char *m) {
    size_t got = 0;
    while (got < MSG) {
        ssize_t r = recv(fd, m + got, MSG - got, 0);
        if (r < 0) { perror("recv"); return -1; }
        if (r == 0) return 0;
        if (!stream && r != MSG) { fprintf(stderr, "message of %zd bytes\n", r); return -1; }
        got += r;
    }
    return 1;
}

static int put(int fd, const unsigned char *m) {
    size_t done = 0;
    while (done < MSG) {
        ssize_t r = send(fd, m + done, MSG - done, 0);
        if (r < 0) { perror("send"); return -1; }
        done += r;
    }
    return 1;
}

static const int is_stream[CH] = {1, 0, 0, 1, 0};

static int child(int *fds) {
    unsigned char m[MSG], out[MSG];
    int done[CH] = {0}, left = CH;
    uint64_t recv_bytes = 0;
    while (left > 0) {
        for (int c = 0; c < CH; c++) {
            if (done[c]) continue;
            if (get(fds[c], is_stream[c], m) != 1) { fprintf(stderr, "child: short read on %d\n", c); return 2; }
            recv_bytes += MSG;
            int32_t n;
            memcpy(&n, m, 4);
            memset(out, 0, MSG);
            memcpy(out, &n, 4);
            if (n < 0) {
                done[c] = 1;
                left--;
                memcpy(out + 8, &recv_bytes, 8);
            } else {
                uint64_t h = hash(m + 4, MSG - 4);
                memcpy(out + 8, &h, 8);
            }
            if (c == 0) usleep(1000);
            if (put(fds[c], out) != 1) return 2;
        }
    }
    return 0;
}

static int listener(int type, const struct sockaddr_un *a, socklen_t len) {
    int l = socket(AF_UNIX, type, 0);
    if (l < 0 || bind(l, (const struct sockaddr *)a, len) || listen(l, 7)) { perror("listener"); exit(1); }
    return l;
}

static int connect_to(int type, const struct sockaddr_un *a, socklen_t len) {
    int c = socket(AF_UNIX, type, 0);
    if (c < 0 || connect(c, (const struct sockaddr *)a, len)) { perror("connect"); exit(1); }
    return c;
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "--child") == 0) {
        int fds[CH];
        for (int i = 0; i < CH; i++) fds[i] = atoi(argv[2 + i]);
        return child(fds);
    }
    if (argc < 3) return 1;
    int n = atoi(argv[1]);
    struct sockaddr_un path = {.sun_family = AF_UNIX}, abstract = {.sun_family = AF_UNIX};
    snprintf(path.sun_path, sizeof path.sun_path, "%s/sock_unix.%d", argv[2], (int)getpid());
    socklen_t plen = sizeof path;
    unlink(path.sun_path);
    /* The abstract namespace is the host's: the folder's inode makes the name unique. */
    struct stat dir;
    if (stat(argv[2], &dir)) { perror("stat"); return 1; }
    snprintf(abstract.sun_path + 1, sizeof abstract.sun_path - 1, "sock_unix.%lu.%d", (unsigned long)dir.st_ino,
             (int)getpid());
    socklen_t alen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abstract.sun_path + 1);

    int pairs[3][2];
    int types[3] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    for (int i = 0; i < 3; i++)
        if (socketpair(AF_UNIX, types[i], 0, pairs[i])) { perror("socketpair"); return 1; }
    int lpath = listener(SOCK_STREAM, &path, plen);
    int labs = listener(SOCK_SEQPACKET, &abstract, alen);
    int cpath = connect_to(SOCK_STREAM, &path, plen), cabs = connect_to(SOCK_SEQPACKET, &abstract, alen);
    int apath = accept(lpath, NULL, NULL), aabs = accept(labs, NULL, NULL);
    if (apath < 0 || aabs < 0) { perror("accept"); return 1; }
    int mine[CH] = {pairs[0][0], pairs[1][0], pairs[2][0], cpath, cabs};
    int theirs[CH] = {pairs[0][1], pairs[1][1], pairs[2][1], apath, aabs};

    /* Kept in the parent. */
    int dg[2], sh[2], idle[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || socketpair(AF_UNIX, SOCK_STREAM, 0, sh) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, idle)) { perror("socketpair"); return 1; }
    send(dg[0], "a", 1, 0);
    send(dg[0], "bbbbbbbbbbbb", 12, 0);
    send(dg[0], "ccccc", 5, 0);
    /* A bound datagram socket (a server's) with two datagrams queued from an unbound sender. */
    struct sockaddr_un dpath = {.sun_family = AF_UNIX};
    snprintf(dpath.sun_path, sizeof dpath.sun_path, "%s/sock_unix_dg.%d", argv[2], (int)getpid());
    unlink(dpath.sun_path);
    int dsrv = socket(AF_UNIX, SOCK_DGRAM, 0), dcli = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (bind(dsrv, (struct sockaddr *)&dpath, sizeof dpath)) { perror("bind dgram"); return 1; }
    sendto(dcli, "abc", 3, 0, (struct sockaddr *)&dpath, sizeof dpath);
    sendto(dcli, "defghij", 7, 0, (struct sockaddr *)&dpath, sizeof dpath);
    close(dcli);
    send(sh[0], "bye", 3, 0);
    shutdown(sh[0], SHUT_WR);
    int sndbuf = 40000;
    struct timeval tv = {.tv_sec = 7, .tv_usec = 250000};
    setsockopt(idle[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    setsockopt(idle[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        for (int c = 0; c < CH; c++) close(mine[c]);
        close(lpath);
        close(labs);
        if (argc > 3) {
            char a[CH][16];
            for (int c = 0; c < CH; c++) snprintf(a[c], 16, "%d", theirs[c]);
            execl(argv[3], argv[3], "--child", a[0], a[1], a[2], a[3], a[4], (char *)NULL);
            perror("execl");
            _exit(127);
        }
        _exit(child(theirs));
    }
    for (int c = 0; c < CH; c++) close(theirs[c]);

    uint64_t hashes[CH][WINDOW], sent = 0, x = 88172645463325252ULL;
    int sent_n[CH] = {0}, next[CH] = {0}, bad = 0;
    unsigned char m[MSG];
    for (;;) {
        int busy = 0;
        for (int c = 0; c < CH; c++) {
            if (sent_n[c] < n && sent_n[c] - next[c] < WINDOW) {
                int i = sent_n[c];
                memcpy(m, &i, 4);
                for (int k = 4; k < MSG; k++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; m[k] = (unsigned char)x; }
                hashes[c][i % WINDOW] = hash(m + 4, MSG - 4);
                if (put(mine[c], m) != 1) return 1;
                sent += MSG;
                sent_n[c]++;
                busy = 1;
            }
        }
        for (int c = 0; c < CH; c++) {
            if (next[c] < sent_n[c] && (sent_n[c] - next[c] == WINDOW || sent_n[c] == n)) {
                if (get(mine[c], is_stream[c], m) != 1) { fprintf(stderr, "parent: short read on %d\n", c); return 1; }
                int32_t k;
                uint64_t h;
                memcpy(&k, m, 4);
                memcpy(&h, m + 8, 8);
                if (k != next[c] || h != hashes[c][k % WINDOW]) bad++;
                next[c]++;
                busy = 1;
            }
        }
        if (!busy) break;
    }
    uint64_t child_recv = 0;
    for (int c = 0; c < CH; c++) {
        int32_t stop = -1;
        memset(m, 0, MSG);
        memcpy(m, &stop, 4);
        if (put(mine[c], m) != 1) return 1;
        sent += MSG;
    }
    for (int c = 0; c < CH; c++) {
        if (get(mine[c], is_stream[c], m) != 1) { fprintf(stderr, "parent: no final message on %d\n", c); return 1; }
        memcpy(&child_recv, m + 8, 8);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid) { perror("waitpid"); return 1; }

    /* What the parent kept. */
    char buf[64];
    int d1 = recv(dg[1], buf, sizeof buf, MSG_DONTWAIT), d2 = recv(dg[1], buf, sizeof buf, MSG_DONTWAIT),
        d3 = recv(dg[1], buf, sizeof buf, MSG_DONTWAIT);
    int q1 = recv(dsrv, buf, sizeof buf, MSG_DONTWAIT), q2 = recv(dsrv, buf, sizeof buf, MSG_DONTWAIT);
    int q_ok = q2 == 7 && memcmp(buf, "defghij", 7) == 0;
    struct sockaddr_un again = {.sun_family = AF_UNIX};
    socklen_t agl = sizeof again;
    getsockname(dsrv, (struct sockaddr *)&again, &agl);
    int named = strcmp(again.sun_path, dpath.sun_path) == 0;
    unlink(dpath.sun_path);
    int s1 = recv(sh[1], buf, sizeof buf, 0);
    int bye = s1 == 3 && memcmp(buf, "bye", 3) == 0;
    int s2 = recv(sh[1], buf, sizeof buf, 0);
    int wr = send(sh[1], "x", 1, MSG_NOSIGNAL) == 1; /* the other way is still open */
    int got = 0;
    socklen_t gl = sizeof got;
    getsockopt(idle[0], SOL_SOCKET, SO_SNDBUF, &got, &gl);
    struct timeval tv2 = {0};
    socklen_t tl = sizeof tv2;
    getsockopt(idle[0], SOL_SOCKET, SO_RCVTIMEO, &tv2, &tl);
    int fl = fcntl(idle[0], F_GETFL), fdfl = fcntl(idle[0], F_GETFD);

    /* A new client of the path listener. */
    pid_t cl = fork();
    if (cl == 0) {
        int c = connect_to(SOCK_STREAM, &path, plen);
        _exit(send(c, "new", 3, 0) == 3 ? 0 : 3);
    }
    int a = accept(lpath, NULL, NULL);
    int newc = a >= 0 && recv(a, buf, 3, MSG_WAITALL) == 3 && memcmp(buf, "new", 3) == 0;
    int cst;
    waitpid(cl, &cst, 0);
    unlink(path.sun_path);

    printf("RESULT n=%d bad=%d balanced=%d child=%d dgrams=%d,%d,%d bye=%d eof=%d back=%d sndbuf=%d "
           "rcvtimeo=%ld.%06ld nonblock=%d cloexec=%d new_client=%d server_dgrams=%d,%d,%d named=%d\n",
           n, bad, sent == child_recv, WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st), d1, d2, d3, bye, s2 == 0,
           wr, got, (long)tv2.tv_sec, (long)tv2.tv_usec, (fl & O_NONBLOCK) != 0, (fdfl & FD_CLOEXEC) != 0,
           newc && WIFEXITED(cst) && WEXITSTATUS(cst) == 0, q1, q2, q_ok, named);
    return 0;
}
