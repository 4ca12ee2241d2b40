/* fork() time of a process holding MIB MiB of touched private memory (the cost a
 * copy-on-write snapshot adds to a checkpoint's stop). Prints "fork_ms <median of 5>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
  char *p = malloc(mib << 20);
  if (!p) return 1;
  memset(p, 1, mib << 20);
  double t[5];
  for (int i = 0; i < 5; i++) {
    double t0 = now_ms();
    pid_t c = fork();
    if (c == 0) _exit(p[i] == 1 ? 0 : 1);
    t[i] = now_ms() - t0;
    waitpid(c, NULL, 0);
  }
  qsort(t, 5, sizeof t[0], cmp);
  printf("fork_ms %.1f\n", t[2]);
  return 0;
}
