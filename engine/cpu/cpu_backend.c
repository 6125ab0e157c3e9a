/* cpu_backend.c - host memory and the CPU kernel table. */
#include <malloc.h>
#include <stdlib.h>

#include "cpu.h"

/* Large blocks are served from the heap instead of fresh mmaps, so that a
 * training loop reuses freed pages instead of faulting in new ones on every
 * op (glibc would mmap and unmap each big tensor). */
static void tune_malloc(void) {
  static bool done;
  if (done) return;
  done = true;
  /* 32 MB is the largest threshold glibc accepts (a larger value is
   * refused and the default, 128 kB and adaptive, stays in force) */
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
}

static void *cpu_alloc(const rl_device *dev, size_t nbytes) {
  (void)dev;
  tune_malloc();
  size_t n = (nbytes + 63) & ~(size_t)63;
  void *p = aligned_alloc(64, n ? n : 64);
  if (!p) rl_err("out of memory: cannot allocate %zu bytes on the CPU", nbytes);
  return p;
}

static void cpu_free(const rl_device *dev, void *p, size_t nbytes) {
  (void)dev;
  (void)nbytes;
  free(p);
}

const rl_backend rl_cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .fill = rl_cpu_fill,
    .copy = rl_cpu_copy,
    .unary = rl_cpu_unary,
    .binary = rl_cpu_binary,
    .ternary = rl_cpu_ternary,
    .reduce = rl_cpu_reduce,
    .gemm = rl_cpu_gemm,
    .im2col = rl_cpu_im2col,
    .col2im = rl_cpu_col2im,
    .maxpool2d = rl_cpu_maxpool2d,
    .maxpool2d_bwd = rl_cpu_maxpool2d_bwd,
    .avgpool2d = rl_cpu_avgpool2d,
    .avgpool2d_bwd = rl_cpu_avgpool2d_bwd,
    .bn_stats = rl_cpu_bn_stats,
    .bn_bwd_reduce = rl_cpu_bn_bwd_reduce,
    .softmax = rl_cpu_softmax,
    .softmax_bwd = rl_cpu_softmax_bwd,
    .nll = rl_cpu_nll,
    .nll_bwd = rl_cpu_nll_bwd,
    .index_select = rl_cpu_index_select,
    .index_add = rl_cpu_index_add,
    .gather = rl_cpu_gather,
    .scatter_add = rl_cpu_scatter_add,
    .rng_fill = rl_cpu_rng_fill,
    .l2_step = rl_cpu_l2_step,
    .nearest_other = rl_cpu_nearest_other,
};
