/* Register-only work across checkpoints: each thread (and main) runs a loop whose state lives
 * in integer and floating-point registers only (no call, no memory in the hot loop), so the
 * checkpoint signal lands with live values in callee-saved and caller-saved registers alike.
 * After a restart each thread must go on with every register as it was: the resume point
 * returns from the signal through the kernel's frame (rt_sigreturn). One progress line per
 * round, one RESULT line at the end, equal to an uninterrupted run's.
 * Usage: resume_regs ROUNDS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NT 3
#define ITER 4000000UL
static int rounds;
static unsigned long out_i[NT + 1];
static double out_f[NT + 1];

static void work(int me) {
    unsigned long a = 1 + me, b = 2, c = 3, d = 4, e = 5, f = 6;
    double x = 1.0 + me, y = 0.5;
    for (int r = 0; r < rounds; r++) {
        for (unsigned long i = 0; i < ITER; i++) {
            a = a * 6364136223846793005UL + 1442695040888963407UL;
            b ^= a >> 13;
            c += b * 3;
            d = (d ^ c) << 7 | (d ^ c) >> (8 * sizeof d - 7);
            e += d;
            f ^= e << 1;
            x = x * 1.0000001 + 0.5;
            y = y * 0.9999999 + x * 1e-9;
        }
        if (me == 0) {
            printf("round %d\n", r);
            fflush(stdout);
        }
    }
    out_i[me] = a ^ b ^ c ^ d ^ e ^ f;
    out_f[me] = x + y;
}

static void *worker(void *arg) {
    work((int)(long)arg);
    return NULL;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atoi(argv[1]) : 20;
    pthread_t t[NT];
    for (long i = 0; i < NT; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    work(0);
    for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
    printf("RESULT");
    for (int i = 0; i <= NT; i++) printf(" %lx:%.9g", out_i[i], out_f[i]);
    printf("\n");
    return 0;
}
