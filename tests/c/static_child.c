/* Built with -static by the tests: `static_child MS CODE` prints "static <pid>", sleeps MS
 * milliseconds and exits with CODE. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int ms = argc > 1 ? atoi(argv[1]) : 1000, code = argc > 2 ? atoi(argv[2]) : 0;
    printf("static %d\n", (int)getpid());
    fflush(stdout);
    usleep(ms * 1000);
    return code;
}
