/* A program that sleeps across the checkpoint: each sleep must last its full time (a sleep
 * interrupted by the checkpoint goes on for the time it had left). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    int early = 0;
    for (int i = 0; i < n; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        unsigned left = sleep(2);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double d = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        if (left != 0 || d < 1.9) early++;
        printf("slept %d\n", i);
        fflush(stdout);
    }
    printf("RESULT sleeps=%d early=%d\n", n, early);
    return 0;
}
