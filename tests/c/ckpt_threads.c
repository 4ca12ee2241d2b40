/* Multi-threaded checkpoint/restart test program: worker threads meet at a barrier each round,
 * update a shared total under a mutex, pass a token through a condition variable, keep __thread
 * data, and receive pthread_kill signals; main joins them. One RESULT line at the end. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NT 4
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t bar;
static unsigned long total;
static int token;
static int rounds;
static __thread unsigned long tls_acc;
static volatile sig_atomic_t got[NT];
static __thread int my_index;
static unsigned long results[NT];
static int tid_ok[NT];

static void on_usr1(int sig) { (void)sig; got[my_index]++; }

static void *worker(void *arg) {
    int me = (int)(long)arg;
    my_index = me;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    tid_ok[me] = 1;
    for (int r = 1; r <= rounds; r++) {
        pthread_barrier_wait(&bar);
        pthread_mutex_lock(&mu);
        total += (unsigned long)(me + 1) * r;
        pthread_mutex_unlock(&mu);
        pthread_mutex_lock(&mu);
        while (token % NT != me) pthread_cond_wait(&cv, &mu);
        token++;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        tls_acc = tls_acc * 7 + (unsigned long)r * (me + 3);
        if ((pid_t)syscall(SYS_gettid) != tid) tid_ok[me] = 0;
        usleep(50000);
    }
    results[me] = tls_acc;
    return NULL;
}

/* A thread that only waits to be cancelled (sleeping: a cancellation point). */
static void *sleeper(void *arg) {
    (void)arg;
    for (;;) sleep(1);
    return NULL;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atoi(argv[1]) : 40;
    pthread_t th[NT];
    signal(SIGUSR1, on_usr1);
    pthread_barrier_init(&bar, NULL, NT);
    for (long i = 0; i < NT; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    pthread_t sl;
    pthread_create(&sl, NULL, sleeper, NULL);
    for (int r = 0; r < rounds / 4; r++) {
        usleep(200000);
        for (int i = 0; i < NT; i++) pthread_kill(th[i], SIGUSR1);
        printf("tick %d\n", r);
        fflush(stdout);
    }
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    void *ret = NULL;
    pthread_cancel(sl);
    pthread_join(sl, &ret);
    int cancel_ok = ret == PTHREAD_CANCELED;
    int sig_ok = 1, ids = 1;
    for (int i = 0; i < NT; i++) { if (got[i] < 1) sig_ok = 0; if (!tid_ok[i]) ids = 0; }
    printf("RESULT total=%lu token=%d tls=%lu,%lu,%lu,%lu signals_ok=%d tids_ok=%d cancel_ok=%d\n", total,
           token, results[0], results[1], results[2], results[3], sig_ok, ids, cancel_ok);
    return 0;
}
