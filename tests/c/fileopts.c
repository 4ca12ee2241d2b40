/* A program writing to a file it holds open (tests/fileopts.rs): fileopts FILE STEPS.
 * Opens FILE write-only (relative to its working folder), writes one numbered line per step
 * with write() through the held fd (its offset moves), and at the end opens FILE again by
 * the same name, reads it whole and prints its length and a hash of its bytes: an
 * uninterrupted run and a checkpointed one print the same RESULT only if the file held
 * every line at its place (no line lost or doubled, no hole, nothing else in it). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fileopts FILE STEPS\n");
        return 2;
    }
    const char *name = argv[1];
    int steps = atoi(argv[2]);
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0) {
        perror(name);
        return 1;
    }
    for (int i = 1; i <= steps; i++) {
        char line[96];
        int n = snprintf(line, sizeof line, "line %d of the computation, %d squared is %d\n", i, i, i * i);
        if (write(fd, line, n) != n) {
            perror("write");
            return 1;
        }
        printf("step %d\n", i);
        fflush(stdout);
        struct timespec t = {0, 100 * 1000 * 1000};
        while (nanosleep(&t, &t) != 0) {
        }
    }
    int in = open(name, O_RDONLY);
    if (in < 0) {
        perror(name);
        return 1;
    }
    unsigned long long hash = 1469598103934665603ULL, len = 0;
    char buf[4096];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            hash = (hash ^ (unsigned char)buf[i]) * 1099511628211ULL;
        }
        len += n;
    }
    printf("RESULT len=%llu hash=%016llx\n", len, hash);
    return 0;
}
