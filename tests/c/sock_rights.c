/* A file descriptor in flight at checkpoint: the program sends the fd of a file over a UNIX
 * stream socketpair (SCM_RIGHTS, with the bytes "FD!!"), then the bytes "tail" without one, and
 * receives both only after DELAY_MS. Prints what arrived: the bytes, how many descriptors, and
 * what a descriptor reads (the file holds "hello").
 * Usage: sock_rights DELAY_MS */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long delay = argc > 1 ? atol(argv[1]) : 1000;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp)) return 1;
    int f = open("rights.txt", O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (f < 0 || write(f, "hello", 5) != 5) return 1;
    lseek(f, 0, SEEK_SET);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {"FD!!", 4};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &f, sizeof f);
    if (sendmsg(sp[0], &m, 0) != 4) return 1;
    close(f);
    if (send(sp[0], "tail", 4, 0) != 4) return 1;
    printf("sent\n");
    fflush(stdout);
    struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
    char got[64] = "", *p = got;
    int fds = 0;
    char what[16] = "-";
    for (int i = 0; i < 2; i++) {
        char rb[CMSG_SPACE(4 * sizeof(int))];
        struct iovec ri = {p, 4};
        struct msghdr rm = {.msg_iov = &ri, .msg_iovlen = 1, .msg_control = rb, .msg_controllen = sizeof rb};
        ssize_t n = recvmsg(sp[1], &rm, MSG_DONTWAIT);
        if (n <= 0) break;
        p += n;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&rm); h; h = CMSG_NXTHDR(&rm, h)) {
            if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
            int fd;
            memcpy(&fd, CMSG_DATA(h), sizeof fd);
            fds += (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            ssize_t k = read(fd, what, sizeof what - 1);
            what[k > 0 ? k : 0] = 0;
        }
    }
    *p = 0;
    printf("RESULT bytes=%s fds=%d reads=%s\n", got, fds, what);
    return 0;
}
