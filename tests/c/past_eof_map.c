/* Regression program: mappings that cannot be read as /proc/self/maps records them. A file
 * mapped longer than the file (ld.so maps a library's whole span from its file before it maps
 * the segments over it, so a checkpoint during dlopen sees that), and a file truncated under a
 * mapping whose pages the program had copied: reading past the end gives SIGBUS, and the image
 * writer's write() of them EFAULT ("the image writer stopped reading: Bad address"). A thread
 * keeps calling dlopen/dlclose meanwhile. Prints "step N" every 100 ms, then a RESULT line
 * with the number of readable pages of each mapping and a hash of what they hold.
 * Usage: past_eof_map [steps] */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

static sigjmp_buf jb;
static void on_bus(int sig) { (void)sig; siglongjmp(jb, 1); }
static volatile int stop;
static long loops;

static void *dl_loop(void *arg) {
    (void)arg;
    while (!stop) {
        void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        if (h) dlclose(h);
        loops++;
        usleep(200);
    }
    return NULL;
}

/* Readable pages at the start of [p, p + n pages), and a hash of their bytes. */
static int readable(volatile unsigned char *p, int n, uint64_t *h) {
    int k = 0;
    for (; k < n; k++) {
        if (sigsetjmp(jb, 1)) break;
        for (int i = 0; i < PAGE; i++) *h = *h * 1099511628211ull ^ p[k * PAGE + i];
    }
    return k;
}

static int make_file(const char *name, size_t len) {
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror("open"); exit(1); }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)(i * 11 + 5);
        if (write(fd, &c, 1) != 1) { perror("write"); exit(1); }
    }
    return fd;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 40;
    int fa = make_file("eof-short.bin", 5000);
    unsigned char *a = mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE, fa, 0);
    int fb = make_file("eof-trunc.bin", 4 * PAGE);
    unsigned char *b = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fb, 0);
    if (a == MAP_FAILED || b == MAP_FAILED) { perror("mmap"); return 1; }
    close(fa);
    for (int i = 0; i < 4 * PAGE; i += 64) b[i] ^= 0x5a;
    if (ftruncate(fb, PAGE) != 0) { perror("ftruncate"); return 1; }
    close(fb);
    pthread_t t;
    pthread_create(&t, NULL, dl_loop, NULL);
    for (int s = 1; s <= steps; s++) {
        printf("step %d\n", s);
        fflush(stdout);
        usleep(100000);
    }
    stop = 1;
    pthread_join(t, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus;
    sigaction(SIGBUS, &sa, NULL);
    uint64_t h = 14695981039346656037ull;
    int ra = readable(a, 4, &h);
    int rb = readable(b, 4, &h);
    printf("RESULT readable_a=%d readable_b=%d hash=%llu dlopen_ran=%d\n", ra, rb, (unsigned long long)h, loops > 0);
    return 0;
}
