/* The demo's sample program: counts, printing one line a second, and keeps a running sum in
 * memory so that a restarted run can be compared with an uninterrupted one. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 30;
    unsigned long sum = 0;
    for (int i = 1; i <= n; i++) {
        sum += (unsigned long)i * i;
        printf("step %d sum %lu\n", i, sum);
        fflush(stdout);
        sleep(1);
    }
    return 0;
}
