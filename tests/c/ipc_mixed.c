/* A parent and a child that exec's another build (the other architecture's, in a mixed
 * computation) share every IPC kind: a keyed System V segment and a POSIX shm object they both
 * count in, under a keyed System V semaphore; a keyed System V message queue and a named POSIX
 * message queue the parent sends one message to each round and the child receives from
 * (blocking). The child finds every object again by key or name after its exec. At the end the
 * parent checks the totals and slots, the checksums of the messages the child got (a sum of
 * per-message hashes, so the order the child took them in does not matter), that the keys
 * still name the same ids and that both queues are empty; then removes everything.
 * The ids go to sysv-ids.txt and the queue's name to mq-name.txt (the tests' cleanup of a
 * killed run). Prints "step N" (parent) every 10 rounds and a RESULT line.
 * Usage: ipc_mixed rounds tag [child-program]   (internal: ipc_mixed --child rounds tag) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

struct counts {
    uint64_t total;
    uint64_t slot[2];
    uint64_t msg_sum, msg_n; /* of the System V messages the child got */
    uint64_t mq_sum, mq_n;   /* of the POSIX ones */
};

struct msg {
    long type;
    char text[32];
};

static void die(const char *what) {
    perror(what);
    exit(1);
}

static uint64_t hash(long type, const char *text, size_t len) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)type;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)text[i]) * 1099511628211ull;
    return h;
}

static key_t key_of(const char *tag, int k) {
    uint32_t h = 2166136261u;
    for (const char *p = tag; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return (key_t)((h & 0x0fffff00u) | 0x10000000u | (uint32_t)k);
}

static void sem_add(int sem, int d) {
    struct sembuf op = {0, (short)d, 0};
    while (semop(sem, &op, 1) != 0)
        if (errno != EINTR) die("semop");
}

int main(int argc, char **argv) {
    int child = argc >= 4 && strcmp(argv[1], "--child") == 0;
    int base = child ? 2 : 1;
    if (argc < base + 2) {
        fprintf(stderr, "usage: ipc_mixed rounds tag [child-program]\n");
        return 2;
    }
    int rounds = atoi(argv[base]);
    const char *tag = argv[base + 1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    char name[64];
    snprintf(name, sizeof name, "/ipcmix-%s", tag);
    int excl = child ? 0 : IPC_CREAT | IPC_EXCL;
    int seg = shmget(key_of(tag, 1), sizeof(struct counts), excl | 0600);
    int sem = semget(key_of(tag, 2), 1, excl | 0600);
    int q = msgget(key_of(tag, 3), excl | 0600);
    if (seg < 0 || sem < 0 || q < 0) die("get");
    struct mq_attr attr = {0, 8, 32, 0};
    mqd_t mq = child ? mq_open(name, O_RDONLY) : mq_open(name, O_WRONLY | O_CREAT | O_EXCL, 0600, &attr);
    if (mq == (mqd_t)-1) die("mq_open");
    int pf = shm_open(name, child ? O_RDWR : O_RDWR | O_CREAT | O_EXCL, 0600);
    if (pf < 0) die("shm_open");
    if (!child && ftruncate(pf, 4096) != 0) die("ftruncate");
    struct counts *s = shmat(seg, NULL, 0);
    struct counts *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, pf, 0);
    if (s == (void *)-1 || p == MAP_FAILED) die("attach");
    close(pf);
    pid_t kid = 0;
    if (!child) {
        FILE *f = fopen("sysv-ids.txt", "w");
        if (f) {
            fprintf(f, "m %d\ns %d\nq %d\n", seg, sem, q);
            fclose(f);
        }
        f = fopen("mq-name.txt", "w");
        if (f) {
            fprintf(f, "%s\n", name + 1);
            fclose(f);
        }
        if (semctl(sem, 0, SETVAL, 1) != 0) die("SETVAL");
        kid = fork();
        if (kid < 0) die("fork");
        if (kid == 0) {
            const char *prog = argc > 3 ? argv[3] : "/proc/self/exe";
            execl(prog, prog, "--child", argv[1], tag, (char *)NULL);
            die("execl");
        }
    }
    int me = child;
    for (int r = 0; r < rounds; r++) {
        sem_add(sem, -1);
        s->total++;
        s->slot[me]++;
        p->total++;
        p->slot[me]++;
        sem_add(sem, 1);
        struct msg m;
        if (!child) {
            m.type = 1 + r % 3;
            int len = snprintf(m.text, sizeof m.text, "sysv %d", r);
            while (msgsnd(q, &m, (size_t)len, 0) != 0)
                if (errno != EINTR) die("msgsnd");
            len = snprintf(m.text, sizeof m.text, "posix %d", r);
            while (mq_send(mq, m.text, (size_t)len, (unsigned)(r % 5)) != 0)
                if (errno != EINTR) die("mq_send");
            if (r % 10 == 0) printf("step %d\n", r);
        } else {
            ssize_t n;
            while ((n = msgrcv(q, &m, sizeof m.text, 0, 0)) < 0)
                if (errno != EINTR) die("msgrcv");
            s->msg_sum += hash(m.type, m.text, (size_t)n);
            s->msg_n++;
            char t[32];
            unsigned prio;
            while ((n = mq_receive(mq, t, sizeof t, &prio)) < 0)
                if (errno != EINTR) die("mq_receive");
            p->mq_sum += hash((long)prio, t, (size_t)n);
            p->mq_n++;
        }
        usleep(8000);
    }
    if (child) return 0;
    int st;
    while (waitpid(kid, &st, 0) != kid)
        if (errno != EINTR) die("waitpid");
    uint64_t want_msg = 0, want_mq = 0;
    for (int r = 0; r < rounds; r++) {
        char t[32];
        int len = snprintf(t, sizeof t, "sysv %d", r);
        want_msg += hash(1 + r % 3, t, (size_t)len);
        len = snprintf(t, sizeof t, "posix %d", r);
        want_mq += hash(r % 5, t, (size_t)len);
    }
    uint64_t n = (uint64_t)rounds;
    int sysv_ok = s->total == 2 * n && s->slot[0] == n && s->slot[1] == n;
    int posix_ok = p->total == 2 * n && p->slot[0] == n && p->slot[1] == n;
    int ids = shmget(key_of(tag, 1), 0, 0) == seg && semget(key_of(tag, 2), 0, 0) == sem && msgget(key_of(tag, 3), 0) == q;
    struct msqid_ds qs;
    struct mq_attr now;
    msgctl(q, IPC_STAT, &qs);
    mq_getattr(mq, &now);
    printf("RESULT child=%d sysv_shm=%s posix_shm=%s sysv_msgs=%s mq=%s sem=%d ids=%s queued=%lu,%ld\n",
           WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), sysv_ok ? "ok" : "BAD", posix_ok ? "ok" : "BAD",
           s->msg_sum == want_msg && s->msg_n == n ? "ok" : "BAD", p->mq_sum == want_mq && p->mq_n == n ? "ok" : "BAD",
           semctl(sem, 0, GETVAL), ids ? "same" : "CHANGED", (unsigned long)qs.msg_qnum, (long)now.mq_curmsgs);
    shmdt(s);
    munmap(p, 4096);
    shmctl(seg, IPC_RMID, NULL);
    semctl(sem, 0, IPC_RMID);
    msgctl(q, IPC_RMID, NULL);
    mq_close(mq);
    mq_unlink(name);
    shm_unlink(name);
    return 0;
}
