/* Three processes (a parent and two children) share System V IPC objects: a private segment
 * attached before the fork, a keyed segment each process attaches by its key after the fork,
 * a private segment removed (IPC_RMID) while attached, a keyed set of two semaphores (a lock
 * and a counter) and two message queues: a keyed one the parent sends one message to every
 * round and the first child receives from (blocking, in order), and a private one filled with
 * 40 messages of types 1..4 at the start, which the second child takes one every four rounds,
 * lowest type first (msgtyp -2, then any). Each round each process takes the lock (semop),
 * adds one to the three segments' totals and to its slots, lets go and adds one to the counter.
 * At the end the parent checks the totals, the semaphores, the messages each child got (a
 * checksum against what was sent), that the keys still name the same ids, that the private
 * segment is still attached at its address, that the removed one is still marked so, the
 * modes, and that the queues are empty; then removes everything.
 * The ids of the objects go to sysv-ids.txt in the current folder (for the tests' cleanup of
 * a killed run). Prints "step N" (parent) every 10 rounds and a RESULT line.
 * Usage: sysv_ipc [rounds] */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPROC 3
#define NPRIV 40

struct seg {
    uint64_t total;
    uint64_t slot[NPROC];
    uint64_t sum[NPROC]; /* message checksums of the children */
    unsigned char tail[9000]; /* pages the parent writes once */
};

struct msg {
    long type;
    char text[64];
};

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void sem_add(int sem, int n, int d) {
    struct sembuf op = {(unsigned short)n, (short)d, 0};
    while (semop(sem, &op, 1) != 0)
        if (errno != EINTR) die("semop");
}

static uint64_t mix(uint64_t h, long type, const char *text, size_t len) {
    h = h * 1099511628211ull + (uint64_t)type;
    for (size_t i = 0; i < len; i++) h = h * 1099511628211ull + (unsigned char)text[i];
    return h;
}

/* The private queue's messages: type and text of number i. */
static size_t priv_msg(int i, struct msg *m) {
    m->type = 1 + (i * 7) % 4;
    return (size_t)snprintf(m->text, sizeof m->text, "private %d %.*s", i, i % 20, "abcdefghijklmnopqrstuvwxyz");
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 160;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* Keys of our own: a launch runs in a pid namespace of its own, so pids repeat. */
    key_t base = (key_t)(0x51000000 | ((now.tv_nsec ^ (now.tv_sec << 8) ^ getpid()) & 0xfffff0));
    key_t kseg = base | 1, ksem = base | 2, kmsg = base | 3;
    int priv = shmget(IPC_PRIVATE, sizeof(struct seg), 0600);
    int keyed = shmget(kseg, sizeof(struct seg), IPC_CREAT | IPC_EXCL | 0640);
    int dest = shmget(IPC_PRIVATE, 4096, 0600);
    int sem = semget(ksem, 2, IPC_CREAT | IPC_EXCL | 0600);
    int q = msgget(kmsg, IPC_CREAT | IPC_EXCL | 0620);
    int pq = msgget(IPC_PRIVATE, 0600);
    if (priv < 0 || keyed < 0 || dest < 0 || sem < 0 || q < 0 || pq < 0) die("get");
    FILE *ids = fopen("sysv-ids.txt", "w");
    if (ids) {
        fprintf(ids, "m %d\nm %d\nm %d\ns %d\nq %d\nq %d\n", priv, keyed, dest, sem, q, pq);
        fclose(ids);
    }
    struct seg *a = shmat(priv, NULL, 0);
    uint64_t *d = shmat(dest, NULL, 0);
    if (a == (void *)-1 || d == (void *)-1) die("shmat");
    memset(a->tail, 0x5a, sizeof a->tail);
    unsigned short init[2] = {1, 0};
    if (semctl(sem, 0, SETALL, init) != 0) die("SETALL");
    uint64_t want2 = 0;
    for (int i = 0; i < NPRIV; i++) {
        struct msg m;
        size_t len = priv_msg(i, &m);
        if (msgsnd(pq, &m, len, 0) != 0) die("msgsnd");
    }
    /* The order the second child takes them in: lowest type <= 2 first, else the oldest. */
    {
        int taken[NPRIV] = {0}, ntake = (rounds + 3) / 4 < NPRIV ? (rounds + 3) / 4 : NPRIV;
        for (int k = 0; k < ntake; k++) {
            int pick = -1;
            for (int i = 0; i < NPRIV; i++) {
                struct msg m;
                priv_msg(i, &m);
                if (taken[i] || m.type > 2) continue;
                struct msg b;
                if (pick >= 0) priv_msg(pick, &b);
                if (pick < 0 || m.type < b.type) pick = i;
            }
            if (pick < 0)
                for (int i = 0; i < NPRIV && pick < 0; i++)
                    if (!taken[i]) pick = i;
            taken[pick] = 1;
            struct msg m;
            size_t len = priv_msg(pick, &m);
            want2 = mix(want2, m.type, m.text, len);
        }
    }

    int me = 0;
    pid_t kids[NPROC];
    for (int k = 1; k < NPROC; k++) {
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) {
            me = k;
            break;
        }
        kids[k] = p;
    }
    struct seg *b = shmat(shmget(kseg, 0, 0), NULL, 0);
    if (b == (void *)-1) die("shmat keyed");
    if (me == 0) {
        /* Both children hold the removed segment through the fork. */
        if (shmctl(dest, IPC_RMID, NULL) != 0) die("IPC_RMID");
    }
    uint64_t want1 = 0;
    for (int r = 0; r < rounds; r++) {
        sem_add(sem, 0, -1);
        a->total++;
        a->slot[me]++;
        b->total++;
        b->slot[me]++;
        (*d)++;
        sem_add(sem, 0, 1);
        sem_add(sem, 1, 1);
        struct msg m;
        if (me == 0) {
            m.type = 1 + r % 3;
            int len = snprintf(m.text, sizeof m.text, "round %d", r);
            while (msgsnd(q, &m, (size_t)len, 0) != 0)
                if (errno != EINTR) die("msgsnd round");
            if (r % 10 == 0) {
                printf("step %d\n", r);
                fflush(stdout);
            }
        } else if (me == 1) {
            ssize_t n;
            while ((n = msgrcv(q, &m, sizeof m.text, 0, 0)) < 0)
                if (errno != EINTR) die("msgrcv");
            a->sum[1] = mix(a->sum[1], m.type, m.text, (size_t)n);
        } else if (r % 4 == 0 && r / 4 < NPRIV) {
            ssize_t n = msgrcv(pq, &m, sizeof m.text, -2, IPC_NOWAIT);
            if (n < 0 && errno == ENOMSG) n = msgrcv(pq, &m, sizeof m.text, 0, IPC_NOWAIT);
            if (n < 0) die("msgrcv private");
            a->sum[2] = mix(a->sum[2], m.type, m.text, (size_t)n);
        }
        usleep(8000);
    }
    if (me != 0) _exit(0);
    for (int k = 1; k < NPROC; k++) {
        int st;
        if (waitpid(kids[k], &st, 0) != kids[k] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("RESULT BAD child %d\n", k);
            return 1;
        }
    }
    for (int r = 0; r < rounds; r++) {
        struct msg m;
        m.type = 1 + r % 3;
        int len = snprintf(m.text, sizeof m.text, "round %d", r);
        want1 = mix(want1, m.type, m.text, (size_t)len);
    }
    int okp = a->total == (uint64_t)NPROC * rounds, okk = b->total == (uint64_t)NPROC * rounds;
    for (int k = 0; k < NPROC; k++) {
        okp &= a->slot[k] == (uint64_t)rounds;
        okk &= b->slot[k] == (uint64_t)rounds;
    }
    int tail = 1;
    for (size_t i = 0; i < sizeof a->tail; i++) tail &= a->tail[i] == 0x5a;
    int same_ids = shmget(kseg, 0, 0) == keyed && semget(ksem, 0, 0) == sem && msgget(kmsg, 0) == q;
    /* Still attached where it was: the maps line at its address is the segment. */
    char line[512], want[32];
    snprintf(want, sizeof want, "%lx-", (unsigned long)(uintptr_t)a);
    int attached = 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    while (maps && fgets(line, sizeof line, maps))
        if (strncmp(line, want, strlen(want)) == 0 && strstr(line, "/SYSV")) attached = 1;
    if (maps) fclose(maps);
    struct shmid_ds ds, dd;
    struct msqid_ds qs, ps;
    shmctl(keyed, IPC_STAT, &ds);
    shmctl(dest, IPC_STAT, &dd);
    msgctl(q, IPC_STAT, &qs);
    msgctl(pq, IPC_STAT, &ps);
    printf("RESULT priv=%s keyed=%s tail=%s dest=%llu,%s sem=%d,%d msgs=%s,%s ids=%s attach=%s nattch=%lu "
           "modes=%o,%o queued=%lu,%lu\n",
           okp ? "ok" : "BAD", okk ? "ok" : "BAD", tail ? "ok" : "BAD", (unsigned long long)*d,
           (dd.shm_perm.mode & SHM_DEST) ? "removed" : "NOT-removed", semctl(sem, 0, GETVAL), semctl(sem, 1, GETVAL),
           a->sum[1] == want1 ? "ok" : "BAD", a->sum[2] == want2 ? "ok" : "BAD", same_ids ? "same" : "CHANGED",
           attached ? "same" : "MOVED", (unsigned long)ds.shm_nattch, ds.shm_perm.mode & 0777,
           qs.msg_perm.mode & 0777, (unsigned long)qs.msg_qnum, (unsigned long)ps.msg_qnum);
    shmdt(a);
    shmdt(b);
    shmdt(d);
    shmctl(priv, IPC_RMID, NULL);
    shmctl(keyed, IPC_RMID, NULL);
    semctl(sem, 0, IPC_RMID);
    msgctl(q, IPC_RMID, NULL);
    msgctl(pq, IPC_RMID, NULL);
    return 0;
}
