/* Runs until killed. `sleeper [--fork]`: prints "ready <pid>" (and, with --fork, forks one
 * child that prints "child <pid>" and sleeps too). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--fork") == 0) {
        pid_t c = fork();
        if (c == 0) {
            printf("child %d\n", (int)getpid());
            fflush(stdout);
            for (;;) sleep(1);
        }
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) sleep(1);
}
