/* What a program that hands its pty to the tty group (as screen does) sees: it opens a pty
 * pair, then chown()s the slave by name and fchown()s it by fd to (its uid, the tty group),
 * chmod()s it 0620, and prints each result with errno's name. The same lines must come out
 * with and without dmtcp (as root: success; as another user: EPERM), and a regular file's
 * chown to an unmapped group keeps the namespace's own answer, which is printed last so that
 * the test can compare it separately. 64 and 32 bit. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *res(int r) {
    static char buf[64];
    if (r == 0) return "ok";
    snprintf(buf, sizeof buf, "%s", strerrorname_np(errno));
    return buf;
}

int main(int argc, char **argv) {
    struct group *g = getgrnam("tty");
    gid_t tty = g ? g->gr_gid : 5;
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
        perror("posix_openpt");
        return 1;
    }
    const char *name = ptsname(m);
    int s = open(name, O_RDWR | O_NOCTTY);
    if (s < 0) {
        perror(name);
        return 1;
    }
    printf("chown pty: %s\n", res(chown(name, getuid(), tty)));
    printf("fchown pty: %s\n", res(fchown(s, (uid_t)-1, tty)));
    printf("fchownat pty: %s\n", res(fchownat(AT_FDCWD, name, getuid(), tty, 0)));
    printf("chmod pty: %s\n", res(chmod(name, 0620)));
    struct stat st;
    if (fstat(s, &st) == 0) printf("mode %o\n", st.st_mode & 07777);
    if (argc > 1) {
        int f = open(argv[1], O_CREAT | O_WRONLY, 0600);
        printf("file: %s\n", res(fchown(f, (uid_t)-1, tty)));
    }
    return 0;
}
