/* A program that wraps dlsym itself (build with -rdynamic so the wrapper interposes on every
 * library, as DMTCP plugins do). It counts the calls and forwards to libc's dlsym found with
 * dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34"). The preload library must find the real dlsym
 * without going through this wrapper: the count at the start of main must be 0.
 * Prints "dlsym calls before main: N", then uses the wrapper once and execs its arguments
 * (if any) through execvp, to show that exec wrapping still works. Exits 0 if N == 0. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int calls;

void *dlsym(void *handle, const char *symbol) {
    static void *(*real)(void *, const char *);
    calls++;
    if (!real)
        real = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    return real(handle, symbol);
}

int main(int argc, char **argv) {
    int before = calls;
    printf("dlsym calls before main: %d\n", before);
    void *p = dlsym(RTLD_DEFAULT, "printf");
    printf("wrapper works: %s, calls now %d\n", p ? "yes" : "no", calls);
    fflush(stdout);
    if (argc > 1) {
        execvp(argv[1], &argv[1]);
        perror("execvp");
        return 127;
    }
    return before == 0 ? 0 : 1;
}
