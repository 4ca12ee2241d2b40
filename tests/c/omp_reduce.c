/* An OpenMP program (gcc's libgomp): four threads share each step's work on an array in a
 * parallel for with a reduction, then the master sleeps a little (so checkpoints find the
 * pool's threads parked in libgomp's barrier). Prints "step N" every 10 steps and a RESULT
 * line with the array's checksum and the sum of the reductions.
 * Usage: omp_reduce [steps] */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define N 100000

static uint32_t a[N];

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 200;
    omp_set_num_threads(4);
    for (int i = 0; i < N; i++) a[i] = (uint32_t)i * 2654435761u;
    uint64_t total = 0;
    int threads = 0;
    for (int s = 0; s < steps; s++) {
        uint64_t sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
        for (int i = 0; i < N; i++) {
            a[i] = a[i] * 1103515245u + 12345u + (uint32_t)s;
            sum += a[i] >> 16;
        }
#pragma omp parallel
        {
#pragma omp single
            threads = omp_get_num_threads();
        }
        total += sum;
        if (s % 10 == 0) {
            printf("step %d\n", s);
            fflush(stdout);
        }
        usleep(10000);
    }
    uint64_t h = 0;
    for (int i = 0; i < N; i++) h = h * 31 + a[i];
    printf("RESULT threads=%d total=%llu hash=%llx\n", threads, (unsigned long long)total, (unsigned long long)h);
    return 0;
}
