/* cpu_dnnl.h - oneDNN's f32 convolution forward, dx and dW, a candidate of the
 * measured per-shape choice (cpu_dnnl.c). */
#ifndef RL_CPU_DNNL_H
#define RL_CPU_DNNL_H

#include <stdbool.h>
#include <stdint.h>

#include "../core.h"

typedef enum { RL_DNNL_FWD, RL_DNNL_BWD_DATA, RL_DNNL_BWD_WEIGHTS } rl_dnnl_pass;

/* Whether oneDNN can run this pass for this shape by its direct
 * convolution, or with wino by its Winograd F(4x4, 3x3) (it is built in,
 * dt is f32, and oneDNN has a primitive for it); the primitive is made
 * here and kept.  g is the convolution's geometry (G_* in backend.h).
 * Every function below takes the same wino. */
bool rl_cpu_dnnl_fits(rl_dnnl_pass pass, bool wino, rl_dtype dt, int64_t N, int64_t C, int64_t H,
                      int64_t W, int64_t O, const int64_t *g, bool bias);

/* y = conv(x, w) + b (b may be NULL), NCHW and OIHW. */
int rl_cpu_dnnl_fwd(bool wino, const float *x, const float *w, const float *b, int64_t N, int64_t C,
                    int64_t H, int64_t W, int64_t O, const int64_t *g, float *y);
/* dx of the convolution, from w and dy. */
int rl_cpu_dnnl_bwd_data(bool wino, const float *w, const float *dy, int64_t N, int64_t C, int64_t H,
                         int64_t W, int64_t O, const int64_t *g, float *dx);

/* dw (and db unless NULL) of the convolution, from x and dy: the batch in
 * groups fixed by N (RL_CPU_DW_GROUPS), one thread each, the partials
 * summed in group order, so that the bits do not depend on the thread
 * count. */
int rl_cpu_dnnl_bwd_weights(bool wino, const float *x, const float *dy, int64_t N, int64_t C, int64_t H,
                            int64_t W, int64_t O, const int64_t *g, float *dw, float *db);

/* oneDNN's version ("2.6.3"), or NULL when the build has none. */
const char *rl_cpu_dnnl_version(void);

#endif
