/* POSIX message queues across restarts: a named queue (maxmsg 10, msgsize 64, mode 0640) that
 * the parent and a child it forks share through the inherited descriptor, and an unlinked,
 * non-blocking queue the child answers on. In each phase the parent sends 8 messages of
 * priorities 0..4 and tells the child (a pipe); the child takes them slowly (highest priority
 * first, oldest first within one), adds them to a checksum, and sends its checksum back on the
 * second queue. So every checkpoint finds messages queued in one or the other. At the end the
 * parent checks the checksums against what it sent, the attributes and flags of both
 * descriptors, the mode, that /dev/mqueue shows the named queue, and that both still carry a
 * message; then unlinks the name. The name goes to mq-name.txt (the tests remove a killed
 * run's queue). Prints "step N" every phase and a RESULT line.
 * Usage: mq_posix [phases] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PER 8

static uint64_t mix(uint64_t h, unsigned prio, const char *t, size_t n) {
    h = h * 1099511628211ull + prio;
    for (size_t i = 0; i < n; i++) h = h * 1099511628211ull + (unsigned char)t[i];
    return h;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void xread(int fd) {
    char c;
    while (read(fd, &c, 1) != 1)
        if (errno != EINTR) die("read");
}

static size_t text(int phase, int i, char *buf, unsigned *prio) {
    *prio = (unsigned)((i * 3 + phase) % 5);
    return (size_t)snprintf(buf, 64, "phase %d message %d %.*s", phase, i, i * 3, "................................");
}

int main(int argc, char **argv) {
    int phases = argc > 1 ? atoi(argv[1]) : 20;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char name[64], back[80];
    snprintf(name, sizeof name, "/dmtcp-mq-test-%lx", (unsigned long)(now.tv_nsec ^ (now.tv_sec << 20)));
    snprintf(back, sizeof back, "%s-back", name);
    FILE *f = fopen("mq-name.txt", "w");
    if (f) {
        fprintf(f, "%s\n%s\n", name + 1, back + 1);
        fclose(f);
    }
    struct mq_attr attr = {0, 10, 64, 0};
    mode_t old = umask(0);
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0640, &attr);
    umask(old);
    mqd_t b = mq_open(back, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0600, &attr);
    if (q < 0 || b < 0) die("mq_open");
    mq_unlink(back);
    int go[2], done[2];
    if (pipe(go) || pipe(done)) die("pipe");
    pid_t kid = fork();
    if (kid == 0) {
        uint64_t sum = 0;
        for (int p = 0; p < phases; p++) {
            xread(go[0]);
            for (int i = 0; i < PER; i++) {
                char buf[64];
                unsigned prio;
                ssize_t n;
                while ((n = mq_receive(q, buf, sizeof buf, &prio)) < 0)
                    if (errno != EINTR) die("mq_receive");
                sum = mix(sum, prio, buf, (size_t)n);
                usleep(6000);
            }
            char s[32];
            int len = snprintf(s, sizeof s, "%016llx", (unsigned long long)sum);
            while (mq_send(b, s, (size_t)len, 1) != 0)
                if (errno != EINTR && errno != EAGAIN) die("mq_send back");
            usleep(20000);
            if (write(done[1], "d", 1) != 1) die("write");
        }
        _exit(0);
    }
    uint64_t want = 0;
    int good = 1;
    for (int p = 0; p < phases; p++) {
        printf("step %d\n", p);
        fflush(stdout);
        /* The order the child gets them in: priority 4 first, oldest first within one. */
        for (int prio = 4; prio >= 0; prio--)
            for (int i = 0; i < PER; i++) {
                char buf[64];
                unsigned pr;
                size_t n = text(p, i, buf, &pr);
                if ((int)pr == prio) want = mix(want, pr, buf, n);
            }
        for (int i = 0; i < PER; i++) {
            char buf[64];
            unsigned prio;
            size_t n = text(p, i, buf, &prio);
            while (mq_send(q, buf, n, prio) != 0)
                if (errno != EINTR) die("mq_send");
        }
        if (write(go[1], "g", 1) != 1) die("write");
        xread(done[0]);
        char s[64];
        unsigned prio;
        ssize_t n = mq_receive(b, s, sizeof s, &prio);
        char w[32];
        snprintf(w, sizeof w, "%016llx", (unsigned long long)want);
        if (n != 16 || memcmp(s, w, 16) != 0 || prio != 1) good = 0;
    }
    int st;
    waitpid(kid, &st, 0);
    struct mq_attr qa, ba;
    mq_getattr(q, &qa);
    mq_getattr(b, &ba);
    struct stat qs;
    fstat(q, &qs);
    char path[128];
    snprintf(path, sizeof path, "/dev/mqueue%s", name);
    struct stat ds;
    int listed = stat(path, &ds) == 0;
    /* Both still carry a message. */
    char m[64];
    unsigned pr;
    int works = mq_send(q, "last", 4, 3) == 0 && mq_receive(q, m, sizeof m, &pr) == 4 && pr == 3 &&
                mq_send(b, "x", 1, 0) == 0 && mq_receive(b, m, sizeof m, &pr) == 1;
    printf("RESULT sums=%s attr=%ld,%ld,%ld,%s back=%ld,%ld,%s mode=%o listed=%s works=%s child=%d\n",
           good ? "ok" : "BAD", qa.mq_maxmsg, qa.mq_msgsize, qa.mq_curmsgs, (qa.mq_flags & O_NONBLOCK) ? "NONBLOCK!" : "blocking",
           ba.mq_maxmsg, ba.mq_curmsgs, (ba.mq_flags & O_NONBLOCK) ? "nonblocking" : "BLOCKING", qs.st_mode & 0777,
           listed ? "yes" : "NO", works ? "yes" : "NO", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    mq_unlink(name);
    return 0;
}
