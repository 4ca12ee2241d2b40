/* SEM_UNDO adjustments through checkpoints: the kernel gives a process's adjustments back to
 * the semaphores when it exits, as in an uninterrupted run.
 *
 * The parent (the watcher) makes a private set of three semaphores: a lock (1), a count (0)
 * and a resource count (5), and forks the holder. The holder takes the lock with SEM_UNDO,
 * adds 3 to the count with SEM_UNDO, sets the count to 4 with SETVAL (which clears its count
 * adjustment in the kernel), adds 1 more with SEM_UNDO, and takes 2 of the resource with
 * SEM_UNDO: its adjustments are lock +1, count -1, resource +2. With a program path as second
 * argument the holder then execs it ("--holder"; the kernel keeps adjustments across execve;
 * the path may be the other architecture's build). The holder forks a grandchild, which
 * inherits no adjustment and exits half way through; the holder checks that its exit changed
 * nothing, runs to the end and exits holding the lock. The watcher then reads the values the
 * kernel left (lock 1, count 4, resource 5) and takes the lock without waiting.
 * Prints "step N" (watcher) every 10 rounds and a RESULT line.
 * Usage: sem_undo rounds [holder-program]   (internal: sem_undo --holder rounds semid) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

enum { LOCK, COUNT, RES };

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void op(int sem, int n, int d, int flags) {
    struct sembuf b = {(unsigned short)n, (short)d, (short)flags};
    while (semop(sem, &b, 1) != 0)
        if (errno != EINTR) die("semop");
}

static int val(int sem, int n) {
    int v = semctl(sem, n, GETVAL);
    if (v < 0) die("GETVAL");
    return v;
}

static void nap(int rounds) {
    for (int r = 0; r < rounds; r++) usleep(10000);
}

/* The holder after its semops (and exec): a grandchild that exits half way, then the rest. */
static int holder(int sem, int rounds) {
    pid_t g = fork();
    if (g < 0) die("fork");
    if (g == 0) {
        nap(rounds / 2);
        _exit(0);
    }
    int st;
    while (waitpid(g, &st, 0) != g)
        if (errno != EINTR) die("waitpid grandchild");
    /* The grandchild's exit undid nothing of ours. */
    if (val(sem, LOCK) != 0 || val(sem, COUNT) != 5 || val(sem, RES) != 3) _exit(3);
    nap(rounds / 2);
    _exit(0); /* holding the lock: the kernel gives it back */
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--holder") == 0) return holder(atoi(argv[3]), atoi(argv[2]));
    int rounds = argc > 1 ? atoi(argv[1]) : 600;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int sem = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    if (sem < 0) die("semget");
    unsigned short init[3] = {1, 0, 5};
    if (semctl(sem, 0, SETALL, init) != 0) die("SETALL");
    FILE *ids = fopen("sysv-ids.txt", "w");
    if (ids) {
        fprintf(ids, "s %d\n", sem);
        fclose(ids);
    }
    pid_t h = fork();
    if (h < 0) die("fork");
    if (h == 0) {
        op(sem, LOCK, -1, SEM_UNDO);
        op(sem, COUNT, 3, SEM_UNDO);
        if (semctl(sem, COUNT, SETVAL, 4) != 0) die("SETVAL");
        op(sem, COUNT, 1, SEM_UNDO);
        op(sem, RES, -2, SEM_UNDO);
        if (argc > 2) {
            char r[16], s[16];
            snprintf(r, sizeof r, "%d", rounds);
            snprintf(s, sizeof s, "%d", sem);
            execl(argv[2], argv[2], "--holder", r, s, (char *)NULL);
            die("execl");
        }
        return holder(sem, rounds);
    }
    int st = 0, r = 0;
    for (;; r++) {
        pid_t w = waitpid(h, &st, WNOHANG);
        if (w == h) break;
        if (w < 0 && errno != EINTR) die("waitpid");
        if (r % 10 == 0) printf("step %d\n", r);
        usleep(10000);
    }
    int lock = val(sem, LOCK), count = val(sem, COUNT), res = val(sem, RES);
    struct sembuf take = {LOCK, -1, IPC_NOWAIT};
    int took = semop(sem, &take, 1) == 0;
    printf("RESULT lock=%d count=%d res=%d take=%s holder=%d\n", lock, count, res, took ? "ok" : "FAILED",
           WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    semctl(sem, 0, IPC_RMID);
    return 0;
}
