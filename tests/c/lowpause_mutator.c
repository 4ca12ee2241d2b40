/* A program that rewrites its memory as fast as it can while checkpoints are written in the
 * background. T threads each own a buffer; each round a thread first checks that its buffer
 * holds exactly the previous round's pattern (a snapshot that mixed pages from before and
 * after the stop would show here after a restart), then writes the round's pattern. Between
 * rounds every thread asks waitpid(-1, WNOHANG|__WALL) and waitid(P_ALL) for a child: none
 * of the tool's may ever show up, and no SIGCHLD may arrive.
 * Usage: lowpause_mutator MIB ROUNDS THREADS. One progress line per round (thread 0), one
 * RESULT line at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int rounds, nt;
static size_t words;
static volatile sig_atomic_t sigchld;
static unsigned long bad[16], seen[16], sums[16];

static uint64_t pattern(uint64_t r, uint64_t i, uint64_t t) {
    uint64_t x = (r + 1) * 0x9E3779B97F4A7C15ull ^ (i + 1) * 0xBF58476D1CE4E5B9ull ^ t;
    x ^= x >> 31;
    return x * 0x94D049BB133111EBull;
}

static void on_chld(int s) { (void)s; sigchld++; }

static void *worker(void *arg) {
    long t = (long)arg;
    uint64_t *buf = malloc(words * 8);
    for (int r = 0; r < rounds; r++) {
        if (r > 0)
            for (size_t i = 0; i < words; i++)
                if (buf[i] != pattern(r - 1, i, t)) bad[t]++;
        for (size_t i = 0; i < words; i++) buf[i] = pattern(r, i, t);
        int st;
        siginfo_t si;
        errno = 0;
        if (waitpid(-1, &st, WNOHANG | __WALL) != -1 || errno != ECHILD) seen[t]++;
        errno = 0;
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) != -1 || errno != ECHILD) seen[t]++;
        if (t == 0) {
            printf("round %d\n", r);
            fflush(stdout);
        }
        usleep(2000);
    }
    uint64_t s = 0;
    for (size_t i = 0; i < words; i++) s = s * 31 + buf[i];
    sums[t] = (unsigned long)s;
    return NULL;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
    rounds = argc > 2 ? atoi(argv[2]) : 100;
    nt = argc > 3 ? atoi(argv[3]) : 1;
    if (nt < 1 || nt > 16) nt = 1;
    words = (mib << 20) / 8 / (size_t)nt;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    pthread_t th[16];
    for (long t = 1; t < nt; t++) pthread_create(&th[t], NULL, worker, (void *)t);
    worker((void *)0);
    for (long t = 1; t < nt; t++) pthread_join(th[t], NULL);
    unsigned long b = 0, w = 0, x = 0;
    for (int t = 0; t < nt; t++) {
        b += bad[t];
        w += seen[t];
        x ^= sums[t];
    }
    printf("RESULT rounds=%d threads=%d bad=%lu waits=%lu sigchld=%d sum=%lx\n", rounds, nt, b, w, (int)sigchld, x);
    return 0;
}
