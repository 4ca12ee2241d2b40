/* A program that uses DMTCP's C API (include/dmtcp.h) on itself: it checkpoints itself with
 * dmtcp_checkpoint(), then keeps checkpoints out of a critical section with
 * dmtcp_disable_ckpt()/dmtcp_enable_ckpt(). The section lasts until the file "section.go"
 * exists in the working folder, so a test can ask for a checkpoint while it is inside.
 * It also runs without dmtcp: the weak symbols are then null and every call says so.
 *
 * Prints "self-checkpoint: after checkpoint|after restart", "section begin", "section end",
 * and "RESULT sum=<n> api=<present-ok|absent-ok|broken:...>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include "../../include/dmtcp.h"

static unsigned long long sum;
static char broken[256];

static void note(const char *what) {
  if (strlen(broken) + strlen(what) + 2 < sizeof broken) {
    strcat(broken, broken[0] ? "," : "");
    strcat(broken, what);
  }
}

static void step(int i) {
  struct timespec t = {0, 50 * 1000 * 1000};
  sum = sum * 1000003ULL + (unsigned long long)i * 7 + 1;
  nanosleep(&t, NULL);
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 20;
  int present = dmtcp_is_enabled();
  int i = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);

  for (; i < steps; i++)
    step(i);

  /* 1. checkpoint ourselves */
  int r = dmtcp_checkpoint();
  if (present) {
    if (r == DMTCP_AFTER_CHECKPOINT)
      printf("self-checkpoint: after checkpoint\n");
    else if (r == DMTCP_AFTER_RESTART)
      printf("self-checkpoint: after restart\n");
    else {
      printf("self-checkpoint: failed (%d)\n", r);
      note("checkpoint");
    }
    int ckpts = -1, restarts = -1;
    if (dmtcp_get_local_status(&ckpts, &restarts) != DMTCP_IS_PRESENT || ckpts < 1 ||
        (r == DMTCP_AFTER_RESTART) != (restarts >= 1))
      note("local_status");
    if (dmtcp_get_generation() < 1)
      note("generation");
    const char *f = dmtcp_get_ckpt_filename();
    if (!f || strstr(f, ".dmtcp") == NULL || (r == DMTCP_AFTER_CHECKPOINT && access(f, R_OK) != 0))
      note("ckpt_filename");
    int peers = -1, running = -1;
    if (dmtcp_get_coordinator_status(&peers, &running) != DMTCP_IS_PRESENT || peers != 1 || running != 1)
      note("coordinator_status");
    printf("local status: checkpoints %d restarts %d\n", ckpts, restarts);
  } else {
    if (r != DMTCP_NOT_PRESENT)
      note("checkpoint-absent");
    int a = 7, b = 7;
    if (dmtcp_get_local_status(&a, &b) != DMTCP_NOT_PRESENT || a != 7 || b != 7)
      note("local_status-absent");
    if (dmtcp_get_coordinator_status(&a, &b) != DMTCP_NOT_PRESENT)
      note("coordinator_status-absent");
    if (dmtcp_get_ckpt_filename() != NULL)
      note("ckpt_filename-absent");
    printf("self-checkpoint: dmtcp not present\n");
  }

  for (; i < 2 * steps; i++)
    step(i);

  /* 2. a critical section no checkpoint may cut */
  int before = 0, after = 0, dummy;
  if (present)
    dmtcp_get_local_status(&dummy, &before);
  int d = dmtcp_disable_ckpt();
  if (d != (present ? 1 : DMTCP_NOT_PRESENT))
    note("disable");
  printf("section begin\n");
  while (access("section.go", F_OK) != 0) {
    struct timespec t = {0, 20 * 1000 * 1000};
    nanosleep(&t, NULL);
  }
  step(i++);
  if (present) {
    dmtcp_get_local_status(&dummy, &after);
    if (after != before)
      note("restarted-inside-section");
  }
  printf("section end\n");
  if (dmtcp_enable_ckpt() != (present ? 1 : DMTCP_NOT_PRESENT))
    note("enable");

  for (; i < 3 * steps; i++)
    step(i);
  printf("RESULT sum=%llu api=%s%s\n", sum, broken[0] ? "broken:" : (present ? "present-ok" : "absent-ok"),
         broken);
  return 0;
}
