/* Regression program: saved data in areas the program cannot read or write (PROT_NONE), as
 * emacs's portable dump has: its dump file is mapped privately, relocated in place (pages
 * copied on write, one of them overwritten with zeros over nonzero file bytes), then parts are
 * protected PROT_NONE. An anonymous area with data behind a PROT_NONE guard is the same case.
 * The restorer used to read the saved pages straight into the PROT_NONE mapping (EFAULT,
 * reported as a truncated image). Prints "step N" every 100 ms and a RESULT line with a hash
 * of both areas. Usage: pnone_file_data [steps] */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 16

static uint64_t hash(const unsigned char *p, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) h = h * 1099511628211ull ^ p[i];
    return h;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 40;
    unsigned char buf[PAGE];
    int fd = open("pnone-dump.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror("open"); return 1; }
    for (int pg = 0; pg < PAGES; pg++) {
        for (int i = 0; i < PAGE; i++) buf[i] = (unsigned char)(i * 7 + pg * 13 + 1);
        if (write(fd, buf, PAGE) != PAGE) { perror("write"); return 1; }
    }
    unsigned char *dump = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    unsigned char *anon = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (dump == MAP_FAILED || anon == MAP_FAILED) { perror("mmap"); return 1; }
    close(fd);
    memset(dump + 2 * PAGE, 0xa5, PAGE);          /* relocated page */
    memset(dump + 5 * PAGE, 0, PAGE);             /* zeros over nonzero file bytes */
    for (int i = 0; i < 100; i++) dump[9 * PAGE + i * 40] ^= 0xff;
    for (int i = 0; i < 4 * PAGE; i++) anon[i] = (unsigned char)(i * 31 + 3);
    mprotect(dump + 4 * PAGE, 8 * PAGE, PROT_NONE); /* pages 4-11: cold, protected */
    mprotect(anon, 4 * PAGE, PROT_NONE);
    for (int s = 1; s <= steps; s++) {
        printf("step %d\n", s);
        fflush(stdout);
        usleep(100000);
    }
    mprotect(dump, PAGES * PAGE, PROT_READ);
    mprotect(anon, 4 * PAGE, PROT_READ);
    uint64_t h = hash(dump, PAGES * PAGE, 14695981039346656037ull);
    h = hash(anon, 4 * PAGE, h);
    printf("RESULT hash=%llu zero_page_still_zero=%d\n", (unsigned long long)h, dump[5 * PAGE + 77] == 0);
    return 0;
}
