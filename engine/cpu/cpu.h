/* cpu.h - shared pieces of the CPU backend. */
#ifndef RL_CPU_H
#define RL_CPU_H

#include <math.h>
#include <omp.h>

#include "../backend.h"

/* Work below this many elements runs on one thread: forking costs more. */
#define RL_CPU_GRAIN 32768

/* A 1-D inner loop: n elements, per-operand byte strides. */
typedef void (*rl_loop_fn)(char **data, const int64_t *strides, int64_t n,
                           const double *p);

/* Run `fn` over the whole iterator, split across threads for large ones. */
void rl_cpu_iter_run(const rl_iter *it, rl_loop_fn fn, const double *p);

/* Math on float and double by argument type. */
#define M_EXP(x) _Generic((x), float: expf, default: exp)(x)
#define M_LOG(x) _Generic((x), float: logf, default: log)(x)
#define M_SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)
#define M_TANH(x) _Generic((x), float: tanhf, default: tanh)(x)
#define M_FABS(x) _Generic((x), float: fabsf, default: fabs)(x)
#define M_FLOOR(x) _Generic((x), float: floorf, default: floor)(x)
#define M_CEIL(x) _Generic((x), float: ceilf, default: ceil)(x)
#define M_RINT(x) _Generic((x), float: nearbyintf, default: nearbyint)(x)
#define M_LOG1P(x) _Generic((x), float: log1pf, default: log1p)(x)
#define M_EXPM1(x) _Generic((x), float: expm1f, default: expm1)(x)
#define M_SIN(x) _Generic((x), float: sinf, default: sin)(x)
#define M_COS(x) _Generic((x), float: cosf, default: cos)(x)
#define M_POW(x, y) _Generic((x), float: powf, default: pow)(x, y)
#define M_FMOD(x, y) _Generic((x), float: fmodf, default: fmod)(x, y)

/* Run the body (the trailing arguments, commas allowed) for i in [0, n), in
 * parallel when n * work is large. */
#define RL_PARALLEL_FOR(i, n, work, ...)                                  \
  do {                                                                      \
    int64_t n__ = (n);                                                      \
    if ((double)n__ * (double)(work) >= RL_CPU_GRAIN && omp_get_max_threads() > 1) { \
      _Pragma("omp parallel for schedule(static)")                          \
      for (int64_t i = 0; i < n__; i++) { __VA_ARGS__; }                           \
    } else {                                                                \
      for (int64_t i = 0; i < n__; i++) { __VA_ARGS__; }                           \
    }                                                                       \
  } while (0)

/* Threads for `units` independent pieces of `work` elements each: one when
 * the whole is below the grain, never more than the pieces. */
static inline int rl_cpu_team(int64_t units, double work) {
  int t = omp_get_max_threads();
  if ((double)units * work < RL_CPU_GRAIN) t = 1;
  return units < t ? (int)units : t;
}

/* n bytes rounded up to a 64-byte line (scratch carved into pieces). */
static inline size_t rl_cpu_round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The body of a kernel entry taking f32 or f64: run the call for dt, or
 * name the op and the dtype it lacks. */
#define RL_CPU_DISPATCH_FLOAT(opname, f32call, f64call)                           \
  do {                                                                            \
    if (dt == RL_F32) f32call;                                                    \
    else if (dt == RL_F64) f64call;                                               \
    else return rl_err(opname ": not defined for %s", rl_dtype_name(dt));         \
    return 0;                                                                     \
  } while (0)

/* Return the cached big host blocks to the system. */
void rl_cpu_empty_cache(void);

/* The kernels of the table; each signature and its comment are in
 * backend.h. */
rl_fill_kernel rl_cpu_fill;
rl_copy_kernel rl_cpu_copy;
rl_unary_kernel rl_cpu_unary;
rl_binary_kernel rl_cpu_binary;
rl_ternary_kernel rl_cpu_ternary;
rl_reduce_kernel rl_cpu_reduce;
rl_gemm_kernel rl_cpu_gemm;
rl_conv2d_kernel rl_cpu_conv2d;
rl_conv2d_bwd_kernel rl_cpu_conv2d_bwd;
rl_im2col_kernel rl_cpu_im2col;
rl_col2im_kernel rl_cpu_col2im;
rl_wino_weight_kernel rl_cpu_wino_weight;
rl_wino_input_kernel rl_cpu_wino_input;
rl_wino_output_kernel rl_cpu_wino_output;
rl_wino_doutput_kernel rl_cpu_wino_doutput;
rl_wino_dweight_kernel rl_cpu_wino_dweight;
rl_maxpool2d_kernel rl_cpu_maxpool2d;
rl_maxpool2d_bwd_kernel rl_cpu_maxpool2d_bwd;
rl_avgpool2d_kernel rl_cpu_avgpool2d;
rl_avgpool2d_bwd_kernel rl_cpu_avgpool2d_bwd;
rl_bn_stats_kernel rl_cpu_bn_stats;
rl_bn_bwd_reduce_kernel rl_cpu_bn_bwd_reduce;
rl_softmax_kernel rl_cpu_softmax;
rl_softmax_bwd_kernel rl_cpu_softmax_bwd;
rl_nll_kernel rl_cpu_nll;
rl_nll_bwd_kernel rl_cpu_nll_bwd;
rl_index_select_kernel rl_cpu_index_select;
rl_index_add_kernel rl_cpu_index_add;
rl_gather_kernel rl_cpu_gather;
rl_scatter_add_kernel rl_cpu_scatter_add;
rl_rng_fill_kernel rl_cpu_rng_fill;
rl_linf_step_kernel rl_cpu_linf_step;
rl_l2_step_kernel rl_cpu_l2_step;
rl_nearest_other_kernel rl_cpu_nearest_other;

/* Bracket an OpenMP region whose threads call BLAS each on its own. */
int rl_cpu_blas_solo_begin(void);
void rl_cpu_blas_solo_end(int saved);
/* 3x3, stride 1, f32 with >= 8 input channels and >= 10 output columns:
 * the forward as Winograd F(2x2, 3x3) (cpu_winograd.c). */
bool rl_cpu_wino_ok(rl_dtype dt, int64_t C, const int64_t *g);
int rl_cpu_wino_fwd(const float *x, const float *w, const float *b, int64_t N, int64_t C,
                    int64_t H, int64_t W, int64_t O, const int64_t *g, float *y);

#endif
