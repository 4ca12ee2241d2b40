/* Fault-test program: holds `initial` MiB of random bytes; after `grow_after` steps it grows to
 * `grown` MiB. Prints "step N" every 100 ms and a RESULT line (a hash of its memory) at the
 * end, so a run whose checkpoint failed can still be checked for correctness. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t x = 88172645463325252ull;
static uint64_t next(void) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; }

int main(int argc, char **argv) {
    size_t initial = (size_t)atol(argc > 1 ? argv[1] : "16") << 20;
    size_t grown = (size_t)atol(argc > 2 ? argv[2] : "16") << 20;
    int grow_after = argc > 3 ? atoi(argv[3]) : 1000000;
    int steps = argc > 4 ? atoi(argv[4]) : 50;
    uint64_t *mem = malloc(grown > initial ? grown : initial);
    size_t len = initial;
    for (size_t i = 0; i < len / 8; i++) mem[i] = next();
    uint64_t h = 0;
    for (int s = 1; s <= steps; s++) {
        if (s == grow_after) {
            for (size_t i = len / 8; i < grown / 8; i++) mem[i] = next();
            len = grown;
        }
        mem[(size_t)s * 4099 % (len / 8)] ^= (uint64_t)s;
        printf("step %d\n", s);
        fflush(stdout);
        usleep(100000);
    }
    for (size_t i = 0; i < len / 8; i += 8) h = h * 31 + mem[i];
    printf("RESULT hash=%llu len=%zu\n", (unsigned long long)h, len);
    return 0;
}
