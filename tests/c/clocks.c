/* CLOCK_MONOTONIC and CLOCK_BOOTTIME as a program reads them across checkpoints and restarts:
 * sampled every 5 ms, they must never go back, and never leap forward by more than 1 s (the
 * restart's downtime is longer). CLOCK_REALTIME is the real time: its largest step is printed
 * (not in RESULT) so that the test can see the downtime there. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 600;
    const clockid_t clocks[3] = {CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME};
    long long last[3], max_step[3] = {0, 0, 0};
    int back[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) last[k] = ns(clocks[k]);
    for (int i = 0; i < n; i++) {
        usleep(5000);
        for (int k = 0; k < 3; k++) {
            long long t = ns(clocks[k]);
            if (t < last[k]) back[k]++;
            if (t - last[k] > max_step[k]) max_step[k] = t - last[k];
            last[k] = t;
        }
        if (i % 100 == 0) {
            printf("tick %d\n", i / 100);
            fflush(stdout);
        }
    }
    printf("max_step_ms monotonic=%lld boottime=%lld realtime=%lld\n", max_step[0] / 1000000, max_step[1] / 1000000,
           max_step[2] / 1000000);
    printf("RESULT samples=%d back_monotonic=%d back_boottime=%d leap_monotonic_ok=%d leap_boottime_ok=%d\n", n,
           back[0], back[1], max_step[0] < 1000000000LL, max_step[1] < 1000000000LL);
    return 0;
}
