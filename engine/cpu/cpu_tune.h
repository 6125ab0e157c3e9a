/* cpu_tune.h - what the CPU backend knows of the processor it runs on, and
 * the convolution algorithm it chose for each shape (cpu_tune.c). */
#ifndef RL_CPU_TUNE_H
#define RL_CPU_TUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "../tune.h"

typedef struct {
  char vendor[13], model[49];
  int64_t l1d, l2, l3; /* bytes: L1d and L2 of one core, L3 of the package */
  int cpus;            /* online */
  bool avx2, fma, avx512f, avx512bw, avx512vl, avx512_bf16, amx_tile, amx_bf16, amx_int8;
  const char *built_for; /* the vector ISA the kernels were compiled for */
  int built_lanes;       /* f32 lanes of their vectors (CONV_VL) */
  const char *cache_source; /* where the cache sizes came from */
} rl_cpu_info_t;

/* The processor, detected once (cpuid, sysconf, sysfs). */
const rl_cpu_info_t *rl_cpu_info(void);

/* 0, or -1 with the error set when the kernels were compiled for vector
 * instructions this processor lacks (a build made on another machine). */
int rl_cpu_check_build(void);

/* Working sets derived from the caches: a convolution chunk's staged
 * input and outputs (half a core's L2), a Winograd chunk's V and M (three
 * quarters of it). */
int64_t rl_cpu_conv_chunk_bytes(void);
int64_t rl_cpu_wino_chunk_bytes(void);

/* ---- the convolution algorithm of each shape ------------------------------ */

typedef enum {
  RL_CPU_ALG_AUTO = 0, /* measured on a shape's first use */
  RL_CPU_ALG_DIRECT,   /* tap by tap on a staged input (the register loop in f32 forward) */
  RL_CPU_ALG_WINOGRAD, /* F(2x2, 3x3) */
  RL_CPU_ALG_IM2COL,   /* one image at a time, im2col + GEMM */
  RL_CPU_ALG_ONEDNN,   /* oneDNN's direct convolution (cpu_dnnl.c) */
  RL_CPU_ALG_ONEDNN_WINO, /* oneDNN's Winograd, F(4x4, 3x3) */
  RL_CPU_ALG_WINOGRAD4, /* F(4x4, 3x3) (cpu_winograd4.c) */
  RL_CPU_ALG_N
} rl_cpu_alg;

/* The CPU's book of choices (engine/tune.h): the algorithms above by
 * name, RL_CPU_CONV to force one, RL_CPU_CONV_CACHE=off to keep the
 * choices in the process, the file keyed by the processor and the
 * build's candidates. */
rl_tune_book *rl_cpu_conv_book(void);

#endif
