/* A parent and a child talking through two pipes (requests down, responses up), with many
 * bytes in flight: the parent writes up to WINDOW requests ahead of the responses it has read,
 * and the child answers slowly. Every message is 64 bytes: a number and a payload; a response
 * carries the number and a hash of its request. The parent checks that responses come back in
 * order with the right hashes (a lost, duplicated or reordered byte breaks it) and prints the
 * bytes each side sent and received in its RESULT line.
 * Usage: pipe_pair N [CHILD_PROGRAM]   (the child execs CHILD_PROGRAM --child RFD WFD if given)
 *        pipe_pair --child RFD WFD */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 64
#define WINDOW 300

static uint64_t hash(const unsigned char *p, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static int read_full(int fd, void *buf, size_t n, uint64_t *count) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0) { perror("read"); return -1; }
        if (r == 0) return 0;
        got += r;
    }
    *count += n;
    return 1;
}

static int write_full(int fd, const void *buf, size_t n, uint64_t *count) {
    size_t put = 0;
    while (put < n) {
        ssize_t r = write(fd, (const char *)buf + put, n - put);
        if (r < 0) { perror("write"); return -1; }
        put += r;
    }
    *count += n;
    return 1;
}

static int child(int rfd, int wfd) {
    unsigned char m[MSG], out[MSG];
    uint64_t recv = 0, sent = 0;
    for (;;) {
        if (read_full(rfd, m, MSG, &recv) != 1) { fprintf(stderr, "child: short read\n"); return 2; }
        int32_t n;
        memcpy(&n, m, 4);
        if (n < 0) break;
        usleep(1000);
        memset(out, 0, MSG);
        uint64_t h = hash(m + 4, MSG - 4);
        memcpy(out, &n, 4);
        memcpy(out + 8, &h, 8);
        if (write_full(wfd, out, MSG, &sent) != 1) return 2;
    }
    memset(out, 0, MSG);
    int32_t done = -1;
    memcpy(out, &done, 4);
    memcpy(out + 8, &recv, 8);
    sent += MSG;
    memcpy(out + 16, &sent, 8);
    uint64_t dummy = 0;
    if (write_full(wfd, out, MSG, &dummy) != 1) return 2;
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--child") == 0) return child(atoi(argv[2]), atoi(argv[3]));
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int down[2], up[2];
    if (pipe(down) || pipe(up)) { perror("pipe"); return 1; }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        if (argc > 2) {
            char r[16], w[16];
            snprintf(r, sizeof r, "%d", down[0]);
            snprintf(w, sizeof w, "%d", up[1]);
            execl(argv[2], argv[2], "--child", r, w, (char *)NULL);
            perror("execl");
            _exit(127);
        }
        _exit(child(down[0], up[1]));
    }
    close(down[0]);
    close(up[1]);
    uint64_t sent = 0, recv = 0, hashes[WINDOW];
    int next = 0, bad = 0, outstanding = 0;
    unsigned char m[MSG];
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < n || outstanding > 0;) {
        if (i < n && outstanding < WINDOW) {
            memcpy(m, &i, 4);
            for (int k = 4; k < MSG; k++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; m[k] = (unsigned char)x; }
            hashes[i % WINDOW] = hash(m + 4, MSG - 4);
            if (write_full(down[1], m, MSG, &sent) != 1) return 1;
            i++;
            outstanding++;
            continue;
        }
        if (read_full(up[0], m, MSG, &recv) != 1) { fprintf(stderr, "parent: short read\n"); return 1; }
        int32_t k;
        uint64_t h;
        memcpy(&k, m, 4);
        memcpy(&h, m + 8, 8);
        if (k != next || h != hashes[k % WINDOW]) bad++;
        next++;
        outstanding--;
        if (next % 500 == 0) { printf("answered %d\n", next); fflush(stdout); }
    }
    int32_t stop = -1;
    memset(m, 0, MSG);
    memcpy(m, &stop, 4);
    if (write_full(down[1], m, MSG, &sent) != 1) return 1;
    uint64_t child_recv = 0, child_sent = 0;
    if (read_full(up[0], m, MSG, &recv) != 1) { fprintf(stderr, "parent: no final message\n"); return 1; }
    memcpy(&child_recv, m + 8, 8);
    memcpy(&child_sent, m + 16, 8);
    int st;
    if (waitpid(pid, &st, 0) != pid) { perror("waitpid"); return 1; }
    char eof = read(up[0], m, 1) == 0 ? 'y' : 'n';
    printf("RESULT n=%d bad=%d parent_sent=%llu child_recv=%llu child_sent=%llu parent_recv=%llu balanced=%d eof=%c child=%d\n",
           n, bad, (unsigned long long)sent, (unsigned long long)child_recv, (unsigned long long)child_sent,
           (unsigned long long)recv, sent == child_recv && child_sent == recv, eof,
           WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    return 0;
}
