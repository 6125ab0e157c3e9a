/* cpu_tune.h - what the CPU backend knows of the processor it runs on, and
 * the convolution algorithm it chose for each shape (cpu_tune.c). */
#ifndef RL_CPU_TUNE_H
#define RL_CPU_TUNE_H

#include <stdbool.h>
#include <stdint.h>

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

const char *rl_cpu_alg_name(int alg);

/* The algorithm forced by RL_CPU_CONV (or rl_cpu_conv_force), AUTO when
 * none; -1 with the error set when RL_CPU_CONV names no algorithm. */
int rl_cpu_conv_forced(void);
/* Force `name` ("direct", "winograd", "im2col", "onednn", "onednn-wino", "winograd4",
 * "auto"), or go back to
 * RL_CPU_CONV when name is NULL.  -1 with the error set on a bad name. */
int rl_cpu_conv_force(const char *name);

/* One shape's choice: key (what the shape is), the algorithm, and how it
 * was made: measured here (ms: the candidates' best times, 0 where not a
 * candidate), read from the machine's cache, forced, or by the rule for
 * work too small to time. */
typedef struct {
  char key[128];
  int alg;
  const char *how; /* "measured", "cached", "forced", "rule" */
  double ms[RL_CPU_ALG_N];
} rl_cpu_conv_choice;

/* The choice made for key in this process, or NULL. */
const rl_cpu_conv_choice *rl_cpu_conv_lookup(const char *key);
/* Whether algorithm alg can run the shape the caller has at hand. */
typedef bool (*rl_cpu_conv_fits_fn)(int alg, void *ctx);
/* The first algorithm the machine's cache holds for key (another process
 * measured it) that can run here (fits), or AUTO. */
int rl_cpu_conv_cached(const char *key, rl_cpu_conv_fits_fn fits, void *ctx);
/* Record this process's choice for key.  A measured choice is published
 * to the machine's cache, and the cache's first entry for key that can
 * run here is the one every process uses: the returned algorithm, the one
 * to run. */
int rl_cpu_conv_settle(const char *key, int alg, const char *how, const double *ms,
                       rl_cpu_conv_fits_fn fits, void *ctx);
/* The choices made so far, in order; their number. */
int rl_cpu_conv_choices(const rl_cpu_conv_choice **list);
/* The machine's cache file ("" when persistence is off). */
const char *rl_cpu_conv_cache_path(void);

#endif
