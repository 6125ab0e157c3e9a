/* cuda_none.c - the CUDA entry points of a build without CUDA.
 *
 * Linked instead of kernels/ when nvcc is absent or the build says CUDA=0,
 * so that asking for a CUDA device is an error with a reason, not a crash
 * or a missing symbol. */
#include <stdio.h>

#include "backend.h"
#include "cuda.h"

#define NOT_BUILT "CUDA backend not built (rebuild with nvcc on the PATH and CUDA=1)"

int rl_cuda_probe(int *count) {
  *count = 0;
  return rl_err(NOT_BUILT);
}

const rl_backend *rl_cuda_backend(void) { return NULL; }

int rl_cuda_memory_stats(int device, rl_cuda_memstats *s) {
  (void)device;
  (void)s;
  return rl_err(NOT_BUILT);
}

int rl_cuda_empty_cache(void) { return 0; }

/* Kept (without reading RL_CUDA_TF32: nothing here uses it), so that a
 * script may set it before it knows there is no GPU. */
bool rl_cuda_set_tf32(int on) {
  static bool tf32;
  bool was = tf32;
  if (on >= 0) tf32 = on;
  return was;
}
int rl_cuda_synchronize(void) { return 0; }

int rl_cuda_device_name(int device, char *buf, size_t n, int *major, int *minor) {
  (void)device;
  if (n) buf[0] = 0;
  *major = *minor = 0;
  return rl_err(NOT_BUILT);
}

rl_tune_book *rl_cuda_conv_book(void) { return NULL; }
const char *rl_cuda_conv_cache_path(void) { return ""; }

void rl_cuda_set_gc_hook(rl_cuda_gc_fn fn, void *ud) {
  (void)fn;
  (void)ud;
}
