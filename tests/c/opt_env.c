/* Ticks for a while, then reports variables that a dmtcp_env.txt changes at restart, and one
 * it sets itself after that (setenv must work on an environment that dmtcp_restart changed).
 * Usage: opt_env TICKS */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *show(const char *name) {
    const char *v = getenv(name);
    return v ? v : "(unset)";
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5;
    for (int i = 0; i < n; i++) {
        printf("tick %d\n", i);
        fflush(stdout);
        usleep(300000);
    }
    setenv("OPT_LATE", "late", 1);
    unsetenv("OPT_KEEP_GONE");
    printf("RESULT target=%s remove=%s keep=%s late=%s home=%s\n", show("OPT_TARGET"), show("OPT_REMOVE"),
           show("OPT_KEEP"), show("OPT_LATE"), getenv("HOME") ? "set" : "unset");
    return 0;
}
