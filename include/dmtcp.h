/*
 * dmtcp.h: the C API of dmtcp-rs, source-compatible with DMTCP's <dmtcp.h> for the calls a
 * program makes on itself (see docs in payloads/libdmtcp/src/api.rs).
 *
 * The functions live in libdmtcp.so, which dmtcp_launch preloads. Each is declared weak, and
 * each macro below tests the function's address first: a program built with this header runs
 * unchanged without dmtcp (then the address is null and the macro gives DMTCP_NOT_PRESENT, 0 or
 * NULL). Build the program as a position-independent executable (gcc's default, or -fPIE/-fPIC):
 * a non-PIE link resolves an undefined weak function to 0 for good.
 *
 * This file is placed in the public domain.
 */
#ifndef DMTCP_H
#define DMTCP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return values. */
#define DMTCP_AFTER_CHECKPOINT 1 /* dmtcp_checkpoint: the image was written, we go on */
#define DMTCP_AFTER_RESTART 2    /* dmtcp_checkpoint: we are a process restarted from it */
#define DMTCP_NOT_PRESENT 3      /* not running under dmtcp */
#define DMTCP_IS_PRESENT 4       /* the status calls: the values were filled in */

/* 1 when running under dmtcp_launch (or restarted by dmtcp_restart), 0 otherwise. */
int dmtcp_is_enabled(void) __attribute__((weak));
#define dmtcp_is_enabled() (dmtcp_is_enabled ? dmtcp_is_enabled() : 0)

/* Checkpoints the whole computation and returns once this process's image is written
 * (DMTCP_AFTER_CHECKPOINT), or in a process restarted from that image (DMTCP_AFTER_RESTART);
 * a value <= 0 when the checkpoint failed. Never call it inside a dmtcp_disable_ckpt section:
 * the checkpoint would wait for that section to end. */
int dmtcp_checkpoint(void) __attribute__((weak));
#define dmtcp_checkpoint() (dmtcp_checkpoint ? dmtcp_checkpoint() : DMTCP_NOT_PRESENT)

/* Keeps checkpoints from starting in this process until the matching dmtcp_enable_ckpt: a
 * checkpoint requested meanwhile waits, then runs. Calls nest, and several threads may be
 * inside at once. Only this process waits: other processes of the computation may already be
 * stopped, so do not wait for them inside a section. Return 1. */
int dmtcp_disable_ckpt(void) __attribute__((weak));
#define dmtcp_disable_ckpt() (dmtcp_disable_ckpt ? dmtcp_disable_ckpt() : DMTCP_NOT_PRESENT)
int dmtcp_enable_ckpt(void) __attribute__((weak));
#define dmtcp_enable_ckpt() (dmtcp_enable_ckpt ? dmtcp_enable_ckpt() : DMTCP_NOT_PRESENT)

/* The coordinator's view: processes connected and whether they all run. DMTCP_IS_PRESENT. */
int dmtcp_get_coordinator_status(int *num_peers, int *is_running) __attribute__((weak));
#define dmtcp_get_coordinator_status(p, r) \
  (dmtcp_get_coordinator_status ? dmtcp_get_coordinator_status(p, r) : DMTCP_NOT_PRESENT)

/* This process: how many times it was checkpointed (restarts excluded) and restarted. */
int dmtcp_get_local_status(int *num_checkpoints, int *num_restarts) __attribute__((weak));
#define dmtcp_get_local_status(c, r) \
  (dmtcp_get_local_status ? dmtcp_get_local_status(c, r) : DMTCP_NOT_PRESENT)

/* The checkpoint generation of this process's last image: 0 before the first checkpoint. */
uint32_t dmtcp_get_generation(void) __attribute__((weak));

/* 1 while a checkpoint requested by the coordinator has not finished in this process. */
int checkpoint_is_pending(void) __attribute__((weak));

/* The path of this process's image (written, or to be written); NULL without dmtcp. The text
 * stays valid until the next call. */
const char *dmtcp_get_ckpt_filename(void) __attribute__((weak));
#define dmtcp_get_ckpt_filename() (dmtcp_get_ckpt_filename ? dmtcp_get_ckpt_filename() : NULL)

/* The folder images are written to; NULL without dmtcp. */
const char *dmtcp_get_ckpt_dir(void) __attribute__((weak));
#define dmtcp_get_ckpt_dir() (dmtcp_get_ckpt_dir ? dmtcp_get_ckpt_dir() : NULL)

/* DMTCP's plugin-internal names of the same section. */
int dmtcp_plugin_disable_ckpt(void) __attribute__((weak));
void dmtcp_plugin_enable_ckpt(void) __attribute__((weak));

#ifdef __cplusplus
}
#endif

#endif /* DMTCP_H */
