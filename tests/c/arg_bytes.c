/* Prints its arguments' bytes in hex at the start and again after ticking through checkpoints,
 * so a test can see that an argument that is not UTF-8 (the byte 0xff) reaches the program
 * untouched, before and after restarts. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void hex(const char *tag, int argc, char **argv) {
    printf("%s", tag);
    for (int i = 2; i < argc; i++) {
        printf(" ");
        for (const unsigned char *p = (const unsigned char *)argv[i]; *p; p++) printf("%02x", *p);
    }
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    hex("start", argc, argv);
    for (int i = 0; i < n; i++) {
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
        printf("tick %d\n", i);
        fflush(stdout);
    }
    hex("RESULT", argc, argv);
    return 0;
}
