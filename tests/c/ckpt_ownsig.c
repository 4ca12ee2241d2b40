/* A program that takes the checkpoint signal for itself: it installs its own handler for
 * SIGUSR2 (dmtcp's default checkpoint signal), blocks it with sigprocmask and pthread_sigmask,
 * and raises it; checkpoints must still work and its handler still see its own signals. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t mine;
static void on_usr2(int sig) { (void)sig; mine++; }

static void *spin(void *arg) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    for (int i = 0; i < *(int *)arg; i++) usleep(100000);
    return NULL;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 30;
    struct sigaction sa = {0};
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    sigprocmask(SIG_BLOCK, &s, NULL);
    pthread_t t;
    pthread_create(&t, NULL, spin, &steps);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    for (int i = 1; i <= steps; i++) {
        raise(SIGUSR2);
        printf("step %d\n", i);
        fflush(stdout);
        usleep(100000);
    }
    pthread_join(t, NULL);
    printf("RESULT own_signals=%d\n", (int)mine);
    return 0;
}
