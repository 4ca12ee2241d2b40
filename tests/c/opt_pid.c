/* Prints the pid it sees and its word size, then exits: tests/options.rs tells from it whether a
 * launch ran the program in a private pid namespace (pid 2) or not. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("pid=%d bits=%d\n", (int)getpid(), (int)(sizeof(void *) * 8));
    return 0;
}
