/* Several threads calling the path functions of DMTCP's C API at once, many times: the library
 * must let them take turns (it keeps the text in one static buffer per function).
 * Prints "RESULT calls=<n> ok=<0|1>". */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "../../include/dmtcp.h"

#define NT 8
#define N 20000
static int bad;

static void *run(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) {
    const char *f = dmtcp_get_ckpt_filename();
    const char *d = dmtcp_get_ckpt_dir();
    if (!f || !strstr(f, ".dmtcp") || !d)
      __atomic_store_n(&bad, 1, __ATOMIC_SEQ_CST);
  }
  return NULL;
}

int main(void) {
  pthread_t t[NT];
  for (int i = 0; i < NT; i++)
    pthread_create(&t[i], NULL, run, NULL);
  for (int i = 0; i < NT; i++)
    pthread_join(t[i], NULL);
  printf("RESULT calls=%d ok=%d\n", NT * N, !bad && dmtcp_is_enabled());
  return 0;
}
