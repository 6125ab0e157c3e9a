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

int rl_cpu_fill(const rl_iter *it, double v);
int rl_cpu_copy(const rl_iter *it);
int rl_cpu_unary(rl_unary_op op, const rl_iter *it, const double *p);
int rl_cpu_binary(rl_binary_op op, const rl_iter *it, double p0);
int rl_cpu_ternary(rl_ternary_op op, const rl_iter *it, const double *p);
int rl_cpu_reduce(rl_reduce_op op, const rl_rediter *r);
int rl_cpu_gemm(rl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                double alpha, const void *a, int64_t lda, int64_t sa, const void *b,
                int64_t ldb, int64_t sb, double beta, void *c, int64_t ldc, int64_t sc,
                int64_t batch);
/* Bracket an OpenMP region whose threads call BLAS each on its own. */
int rl_cpu_blas_solo_begin(void);
void rl_cpu_blas_solo_end(int saved);
int rl_cpu_im2col(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H, int64_t W,
                  const int64_t *g, void *col);
int rl_cpu_col2im(rl_dtype dt, const void *col, int64_t nb, int64_t C, int64_t H,
                  int64_t W, const int64_t *g, void *x);
int rl_cpu_conv2d(rl_dtype dt, const void *x, const void *w, const void *b, int64_t N,
                  int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *g, void *y);
int rl_cpu_conv2d_bwd(rl_dtype dt, const void *x, const void *w, const void *dy,
                      int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                      const int64_t *g, void *dx, void *dw, void *db);
/* 3x3, stride 1, f32 with >= 8 input channels and >= 10 output columns:
 * the forward as Winograd F(2x2, 3x3) (cpu_winograd.c). */
bool rl_cpu_wino_ok(rl_dtype dt, int64_t C, const int64_t *g);
int rl_cpu_wino_fwd(const float *x, const float *w, const float *b, int64_t N, int64_t C,
                    int64_t H, int64_t W, int64_t O, const int64_t *g, float *y);
/* The tile transforms of the engine's Winograd path (backend.h). */
int rl_cpu_wino_weight(rl_dtype dt, const void *w, int64_t O, int64_t C, bool flip, void *U);
int rl_cpu_wino_input(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H, int64_t W,
                      int64_t ph, int64_t pw, int64_t TH, int64_t TW, int64_t nbc, void *V);
int rl_cpu_wino_output(rl_dtype dt, const void *M, int64_t nb, int64_t O, int64_t OH,
                       int64_t OW, int64_t TH, int64_t TW, const void *b, void *y);
int rl_cpu_wino_doutput(rl_dtype dt, const void *dy, int64_t nb, int64_t O, int64_t OH,
                        int64_t OW, int64_t TH, int64_t TW, int64_t nbc, void *dM);
int rl_cpu_wino_dweight(rl_dtype dt, const void *dU, int64_t S, int64_t O, int64_t C,
                        void *dw);
int rl_cpu_maxpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                     const int64_t *g, void *y, int64_t *idx);
int rl_cpu_maxpool2d_bwd(rl_dtype dt, const void *dy, const int64_t *idx, int64_t nc,
                         int64_t H, int64_t W, const int64_t *g, void *dx);
int rl_cpu_avgpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                     const int64_t *g, bool count_pad, void *y);
int rl_cpu_avgpool2d_bwd(rl_dtype dt, const void *dy, int64_t nc, int64_t H, int64_t W,
                         const int64_t *g, bool count_pad, void *dx);
int rl_cpu_bn_stats(rl_dtype dt, const void *x, int64_t N, int64_t C, int64_t S,
                    void *mean, void *var);
int rl_cpu_bn_bwd_reduce(rl_dtype dt, const void *dy, const void *x, const void *mean,
                         int64_t N, int64_t C, int64_t S, void *sum_dy, void *sum_dyxmu);
int rl_cpu_softmax(rl_dtype dt, const void *x, int64_t rows, int64_t cols, bool log,
                   void *y);
int rl_cpu_softmax_bwd(rl_dtype dt, const void *dy, const void *y, int64_t rows,
                       int64_t cols, bool log, void *dx);
int rl_cpu_nll(rl_dtype dt, const void *logp, const int64_t *t, int64_t rows,
               int64_t cols, void *out);
int rl_cpu_nll_bwd(rl_dtype dt, const void *g, int64_t gstride, const int64_t *t,
                   int64_t rows, int64_t cols, void *dlogp);
int rl_cpu_index_select(rl_dtype dt, const void *x, int64_t outer, int64_t n,
                        int64_t inner, const int64_t *idx, int64_t k, void *y);
int rl_cpu_index_add(rl_dtype dt, const void *x, int64_t outer, int64_t k, int64_t inner,
                     const int64_t *idx, int64_t n, void *y);
int rl_cpu_gather(rl_dtype dt, const void *x, int64_t outer, int64_t n, int64_t inner,
                  const int64_t *idx, int64_t k, void *y);
int rl_cpu_scatter_add(rl_dtype dt, const void *x, int64_t outer, int64_t k,
                       int64_t inner, const int64_t *idx, int64_t n, void *y);
int rl_cpu_rng_fill(rl_dtype dt, void *dst, int64_t n, rl_rng_dist dist, uint64_t seed,
                    uint64_t offset, double p0, double p1);
int rl_cpu_l2_step(rl_dtype dt, const void *a, const void *g, const void *c, int64_t B,
                   int64_t D, const double *p, void *out);
int rl_cpu_nearest_other(const uint8_t *q, const int64_t *qlab, int64_t nq,
                         const uint8_t *r, const int64_t *rlab, int64_t nr, int64_t D,
                         int p, bool skip_self, int64_t *dist, int64_t *arg);

#endif
