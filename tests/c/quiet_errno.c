/* errno never changes across a checkpoint: three threads set errno to values of their own and
 * check it after calls that succeed (nanosleep, poll with a timeout) and while computing. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int rounds;
static volatile int changed[3];

static void *sleeper(void *a) {
    (void)a;
    for (int i = 0; i < rounds; i++) {
        errno = 1111;
        struct timespec ts = {0, 20 * 1000000L};
        if (nanosleep(&ts, NULL) != 0 || errno != 1111) changed[0]++;
    }
    return NULL;
}

static void *poller(void *a) {
    (void)a;
    for (int i = 0; i < rounds; i++) {
        errno = 2222;
        if (poll(NULL, 0, 20) != 0 || errno != 2222) changed[1]++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atoi(argv[1]) : 300;
    pthread_t t[2];
    pthread_create(&t[0], NULL, sleeper, NULL);
    pthread_create(&t[1], NULL, poller, NULL);
    volatile unsigned long sum = 0;
    for (int i = 0; i < rounds; i++) {
        errno = 3333;
        /* Computing, with no call: a checkpoint lands in user code here. */
        for (unsigned long k = 0; k < 200000; k++) {
            sum += k;
            if (errno != 3333) {
                changed[2]++;
                errno = 3333;
            }
        }
        struct timespec ts = {0, 15 * 1000000L};
        nanosleep(&ts, NULL);
        if (i % 50 == 0) {
            printf("round %d\n", i);
            fflush(stdout);
        }
    }
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    printf("RESULT rounds=%d changed=%d,%d,%d\n", rounds, changed[0], changed[1], changed[2]);
    return 0;
}
