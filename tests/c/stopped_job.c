/* A job for the shell tests: it reads lines from its terminal and answers each with how many
 * SIGCONT its handler has seen, until the line "end". Stopped with Ctrl-Z while it reads,
 * checkpointed and restarted while stopped, then brought back with `fg`, it must answer as in
 * an uninterrupted run: the one SIGCONT is the shell's.
 *   job: ready
 *   job: got <line> conts=<n>
 *   job: done */
#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t conts;

static void on_cont(int s) { (void)s; conts++; }

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cont;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCONT, &sa, NULL);
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("job: ready\n");
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        printf("job: got %s conts=%d\n", line, (int)conts);
        if (strcmp(line, "end") == 0) break;
    }
    printf("job: done\n");
    return 0;
}
