/* cpu_dnnl.h - oneDNN's f32 and bf16 convolution forward, dx and dW, a
 * candidate of the measured per-shape choice (cpu_dnnl.c). */
#ifndef RL_CPU_DNNL_H
#define RL_CPU_DNNL_H

#include <stdbool.h>
#include <stdint.h>

#include "../core.h"

typedef enum { RL_DNNL_FWD, RL_DNNL_BWD_DATA, RL_DNNL_BWD_WEIGHTS } rl_dnnl_pass;

/* Whether oneDNN can run this pass for this shape by its direct
 * convolution, or with wino by its Winograd F(4x4, 3x3) (it is built in,
 * and oneDNN has a primitive for it: f32 both, bf16 the direct one where
 * oneDNN has a JIT kernel for bf16, that is on AVX-512); the primitive is
 * made here and kept.  g is the convolution's geometry (G_* in backend.h).
 * Every function below takes the same wino and dt.  In bf16 the operands
 * and results are bf16 and the sums f32; dW and db are summed in f32 and
 * rounded once. */
bool rl_cpu_dnnl_fits(rl_dnnl_pass pass, bool wino, rl_dtype dt, int64_t N, int64_t C, int64_t H,
                      int64_t W, int64_t O, const int64_t *g, bool bias);

/* y = conv(x, w) + b (b may be NULL), NCHW and OIHW. */
int rl_cpu_dnnl_fwd(bool wino, rl_dtype dt, const void *x, const void *w, const void *b, int64_t N,
                    int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *g, void *y);
/* dx of the convolution, from w and dy. */
int rl_cpu_dnnl_bwd_data(bool wino, rl_dtype dt, const void *w, const void *dy, int64_t N, int64_t C,
                         int64_t H, int64_t W, int64_t O, const int64_t *g, void *dx);

/* dw (and db unless NULL) of the convolution, from x and dy: the batch in
 * groups fixed by N (RL_CPU_DW_GROUPS), one thread each, the partials
 * summed in group order, so that the bits do not depend on the thread
 * count. */
int rl_cpu_dnnl_bwd_weights(bool wino, rl_dtype dt, const void *x, const void *dy, int64_t N, int64_t C,
                            int64_t H, int64_t W, int64_t O, const int64_t *g, void *dw, void *db);

/* oneDNN's version ("2.6.3"), or NULL when the build has none. */
const char *rl_cpu_dnnl_version(void);

#endif
