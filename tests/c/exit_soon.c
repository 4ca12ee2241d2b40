/* A parent and a child that ends by itself shortly after a checkpoint is requested: the child
 * fills 64 MiB, ticks TICKS times (5 ms apart) and exits with a status made of its memory's
 * sum; the parent fills 32 MiB, waits for it and prints RESULT. A checkpoint taken while the
 * child lives must hold both images (the child ending while its image is written must not
 * drop its image). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t fill_and_sum(size_t mib, uint64_t seed) {
  size_t n = mib << 17; /* u64 words */
  uint64_t *p = malloc(n * sizeof *p), s = 0;
  if (!p) exit(3);
  for (size_t i = 0; i < n; i++) p[i] = (seed + i) * 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i += 512) s += p[i];
  return s;
}

int main(int argc, char **argv) {
  int ticks = argc > 1 ? atoi(argv[1]) : 300;
  setvbuf(stdout, NULL, _IONBF, 0);
  pid_t c = fork();
  if (c < 0) return 2;
  if (c == 0) {
    volatile uint64_t s = fill_and_sum(64, 7);
    struct timespec ts = {0, 5000000};
    for (int i = 0; i < ticks; i++) {
      nanosleep(&ts, NULL);
      s += (uint64_t)i;
    }
    _exit((int)(s & 0x7f));
  }
  uint64_t s = fill_and_sum(32, 11);
  int st = 0;
  if (waitpid(c, &st, 0) != c) return 4;
  printf("RESULT child=%d parent=%llx\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1, (unsigned long long)s);
  return 0;
}
