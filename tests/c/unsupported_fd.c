/* Holds a netlink socket at fd 50 (a kind dmtcp does not restore) and a regular file, held.txt,
 * at fd 51, and ticks. At the end it reports what fd 50 is: a read and a write on it, whether
 * it is still open, and which fd a new open gets (never 50 while 50 is held); and what a read
 * of fd 51 gives (a test removes held.txt before a restart: fd 51 is then a placeholder too).
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
    int h = open("held.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (h < 0 || dup2(h, 51) != 51 || write(51, "held\n", 5) != 5) { perror("held.txt"); return 2; }
    close(h);
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
    errno = 0;
    ssize_t h51 = read(51, b, sizeof b);
    printf("fd51 read=%zd (%s)\n", h51, strerror(errno));
    int nfd = open("/dev/null", O_RDONLY);
    printf("fd50 read=%zd (%s) write=%zd (%s) open=%d new_fd_is_50=%d\n", r, strerror(re), w, strerror(we), open_now,
           nfd == 50);
    printf("RESULT ticks=%d open=%d new_fd_is_50=%d\n", ticks, open_now, nfd == 50);
    return 0;
}
