/* cuda_none.c - the CUDA entry points of a build without CUDA.
 *
 * Linked instead of kernels/ when nvcc is absent or the build says CUDA=0,
 * so that asking for a CUDA device is an error with a reason, not a crash
 * or a missing symbol. */
#include "backend.h"

int rl_cuda_probe(int *count) {
  *count = 0;
  return rl_err("CUDA backend not built (rebuild with nvcc on the PATH and CUDA=1)");
}

const rl_backend *rl_cuda_backend(void) { return NULL; }
