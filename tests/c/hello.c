/* Prints its arguments and what it sees of dmtcp in its environment, then exits with the
 * status in $HELLO_STATUS (default 0). Used to check that a program under dmtcp sees exactly
 * what it would see without it. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("arg[%d]=%s\n", i, argv[i]);
    const char *p = getenv("LD_PRELOAD");
    printf("LD_PRELOAD=%s\n", p ? p : "(unset)");
    const char *v = getenv("HELLO_VAR");
    printf("HELLO_VAR=%s\n", v ? v : "(unset)");
    printf("bits=%d\n", (int)(sizeof(void *) * 8));
    const char *s = getenv("HELLO_STATUS");
    return s ? atoi(s) : 0;
}
