/* memfd seals across a restart: a sealable memfd with data, sealed against shrinking, growing
 * and writing (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) and then F_SEAL_SEAL, held by the
 * parent and a child it forks, and mapped read-only by the child; a second memfd sealed
 * only against shrinking (more seals may still be added); a third made without
 * MFD_ALLOW_SEALING (it reads as F_SEAL_SEAL). Both processes count rounds; at the end each
 * checks its seals and that the kernel enforces them (write and ftruncate fail with EPERM,
 * adding a seal to the first fails, to the second works), and the contents.
 * Prints "step N" every 10 rounds and a RESULT line (the parent's, with the child's verdict).
 * Usage: memfd_seals [rounds] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEN 8192

static int check(int sealed, int shrink, int plain, const char *who, char *out, size_t outlen) {
    int s1 = fcntl(sealed, F_GET_SEALS), s2 = fcntl(shrink, F_GET_SEALS), s3 = fcntl(plain, F_GET_SEALS);
    errno = 0;
    int w = (int)pwrite(sealed, "x", 1, 0) < 0 && errno == EPERM;
    errno = 0;
    int t = ftruncate(sealed, LEN * 2) < 0 && errno == EPERM;
    errno = 0;
    int t2 = ftruncate(shrink, 10) < 0 && errno == EPERM;
    errno = 0;
    int add = fcntl(sealed, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0 && errno == EPERM;
    char buf[16] = {0};
    int data = pread(sealed, buf, 11, 100) == 11 && memcmp(buf, "sealed data", 11) == 0;
    snprintf(out, outlen, "%s=%x,%x,%x,%s%s%s%s%s", who, s1, s2, s3, w ? "w" : "W!", t ? "t" : "T!", t2 ? "s" : "S!",
             add ? "a" : "A!", data ? "d" : "D!");
    return 0;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    int sealed = memfd_create("sealed", MFD_ALLOW_SEALING);
    int shrink = memfd_create("shrink", MFD_ALLOW_SEALING);
    int plain = memfd_create("plain", 0);
    if (sealed < 0 || shrink < 0 || plain < 0) { perror("memfd_create"); return 1; }
    if (ftruncate(sealed, LEN) || ftruncate(shrink, LEN) || ftruncate(plain, LEN)) { perror("ftruncate"); return 1; }
    if (pwrite(sealed, "sealed data", 11, 100) != 11) { perror("pwrite"); return 1; }
    if (fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) ||
        fcntl(sealed, F_ADD_SEALS, F_SEAL_SEAL) || fcntl(shrink, F_ADD_SEALS, F_SEAL_SHRINK)) {
        perror("F_ADD_SEALS");
        return 1;
    }
    int pfd[2];
    if (pipe(pfd)) { perror("pipe"); return 1; }
    pid_t kid = fork();
    if (kid == 0) {
        close(pfd[0]);
        const char *m = mmap(NULL, LEN, PROT_READ, MAP_SHARED, sealed, 0);
        if (m == MAP_FAILED) { perror("mmap"); _exit(1); }
        for (int r = 0; r < rounds; r++) usleep(10000);
        char out[128];
        check(sealed, shrink, plain, "child", out, sizeof out);
        if (memcmp(m + 100, "sealed data", 11) != 0) strcat(out, "M!");
        if (write(pfd[1], out, strlen(out) + 1) < 0) _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    for (int r = 0; r < rounds; r++) {
        if (r % 10 == 0) {
            printf("step %d\n", r);
            fflush(stdout);
        }
        usleep(10000);
    }
    char child[128] = {0}, mine[128];
    if (read(pfd[0], child, sizeof child - 1) <= 0) strcpy(child, "child=NONE");
    int st;
    waitpid(kid, &st, 0);
    check(sealed, shrink, plain, "parent", mine, sizeof mine);
    /* Seals may still be added to the second one. */
    int more = fcntl(shrink, F_ADD_SEALS, F_SEAL_GROW) == 0 && fcntl(shrink, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW);
    printf("RESULT %s %s more=%s\n", mine, child, more ? "yes" : "NO");
    return 0;
}
