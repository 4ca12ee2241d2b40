/* Holds a netlink socket at fd 50 (a kind dmtcp does not restore) and ticks. At the end it
 * reports what fd 50 is: a read and a write on it, whether it is still open, and which fd a
 * new open gets (never 50 while 50 is held).
 * Usage: unsupported_fd TICKS */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int ticks = argc > 1 ? atoi(argv[1]) : 30;
    int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (s < 0 || dup2(s, 50) != 50) { perror("netlink socket"); return 2; }
    close(s);
    fcntl(50, F_SETFL, O_NONBLOCK);
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < ticks; i++) {
        printf("tick %d\n", i);
        fflush(stdout);
        usleep(100000);
    }
    char b[16];
    errno = 0;
    ssize_t r = read(50, b, sizeof b);
    int re = errno;
    errno = 0;
    ssize_t w = write(50, "x", 1);
    int we = errno;
    int open_now = fcntl(50, F_GETFD) >= 0;
    int nfd = open("/dev/null", O_RDONLY);
    printf("fd50 read=%zd (%s) write=%zd (%s) open=%d new_fd_is_50=%d\n", r, strerror(re), w, strerror(we), open_now,
           nfd == 50);
    printf("RESULT ticks=%d open=%d new_fd_is_50=%d\n", ticks, open_now, nfd == 50);
    return 0;
}
