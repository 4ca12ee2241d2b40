/* Benchmark program: holds N MiB of memory (random or compressible content) and ticks every
 * millisecond, recording the longest gap between ticks (how long it was paused). Prints
 * "ready" once the memory is filled and "maxgap_ms <x>" once a second.
 * `hold MiB random|text dump FILE` writes the same bytes to FILE and exits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1024;
    int random = argc > 2 && strcmp(argv[2], "random") == 0;
    size_t len = mib << 20;
    uint64_t *mem = malloc(len);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < len / 8; i++) {
        if (random) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            mem[i] = x;
        } else {
            mem[i] = (i / 512) * 0x0101010101010101ull; /* text-like: long runs, few values */
        }
    }
    if (argc > 4 && strcmp(argv[3], "dump") == 0) {
        FILE *f = fopen(argv[4], "w");
        if (!f || fwrite(mem, 1, len, f) != len || fclose(f) != 0) { perror(argv[4]); return 1; }
        return 0;
    }
    printf("ready\n");
    fflush(stdout);
    double last = now(), maxgap = 0, lastprint = last;
    for (;;) {
        usleep(1000);
        double t = now();
        if (t - last > maxgap) maxgap = t - last;
        last = t;
        if (t - lastprint > 1.0) {
            printf("maxgap_ms %.1f\n", maxgap * 1000);
            fflush(stdout);
            lastprint = t;
        }
    }
}
