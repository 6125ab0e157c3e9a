/* cpu_nn.c - batch-norm statistics, the softmax family and NLL on the CPU. */
#include <math.h>
#include <string.h>

#include "bn_coef.h"
#include "cpu.h"

/* ---- batch norm -------------------------------------------------------- */

/* An element as the sums and the affine map see it (LD) and a result
 * stored back (ST): f32 and f64 as they are; bf16 and f16 widened to f32
 * exactly and rounded once to nearest even (core.h). */
#define LD_SAME(v) (v)
#define ST_SAME(v) (v)
#define LD_BF16(v) rl_f32_of_bf16(v)
#define ST_BF16(v) rl_bf16_of_f32(v)
#define LD_F16(v) rl_f32_of_f16(v)
#define ST_F16(v) rl_f16_of_f32(v)
/* the accumulation type's fma and sqrt (by the type of the first argument) */
#define FMA_A(a, b, c) RL_MATH3(fma, a, b, c)
#define SQRT_A(a) RL_MATH(sqrt, a)

/* x [N, C, S] of storage type T: mean and biased variance per channel, two
 * passes in double, rounded to A (T's accumulation type); then the
 * coefficients and the running statistics (engine/bn_coef.h). */
#define DEFINE_BN_STATS(name, T, A, LD)                                                    \
  static void name(const T *x, int64_t N, int64_t C, int64_t S, const A *w, const A *b,    \
                   A *rm, A *rv, double mom, double unb, double eps, A *mean, A *invstd,   \
                   A *scale, A *shift) {                                                   \
    RL_PARALLEL_FOR(c, C, N * S * 2, {                                                     \
      double s = 0;                                                                        \
      for (int64_t n = 0; n < N; n++) {                                                    \
        const T *p = x + (n * C + c) * S;                                                  \
        double t = 0;                                                                      \
        _Pragma("omp simd reduction(+ : t)") for (int64_t k = 0; k < S; k++) t += LD(p[k]); \
        s += t;                                                                            \
      }                                                                                    \
      double m = s / (double)(N * S), q = 0;                                               \
      for (int64_t n = 0; n < N; n++) {                                                    \
        const T *p = x + (n * C + c) * S;                                                  \
        double t = 0;                                                                      \
        _Pragma("omp simd reduction(+ : t)") for (int64_t k = 0; k < S; k++) {             \
          double d = LD(p[k]) - m;                                                         \
          t += d * d;                                                                      \
        }                                                                                  \
        q += t;                                                                            \
      }                                                                                    \
      A mc = (A)m, vc = (A)(q / (double)(N * S));                                          \
      mean[c] = mc;                                                                        \
      RL_BN_FWD_COEF(A, FMA_A, SQRT_A, mc, vc, w, b, rm, rv, mom, unb, eps, c, invstd,     \
                     scale, shift);                                                        \
    });                                                                                    \
  }

/* Per channel: sum(dy) and sum(dy (x - mean)) in double, rounded to A;
 * then the coefficients of dx, dw and db (engine/bn_coef.h). */
#define DEFINE_BN_BWD_REDUCE(name, T, A, LD)                                               \
  static void name(const T *dy, const T *x, const A *mean, const A *is, const A *w,        \
                   int64_t N, int64_t C, int64_t S, A *k, A *c1, A *c0, A *dw, A *db) {    \
    double rcnt = 1.0 / (double)(N * S);                                                   \
    RL_PARALLEL_FOR(c, C, N * S * 2, {                                                     \
      double a = 0, b = 0, m = mean[c];                                                    \
      for (int64_t n = 0; n < N; n++) {                                                    \
        const T *g = dy + (n * C + c) * S, *p = x + (n * C + c) * S;                       \
        double ta = 0, tb = 0;                                                             \
        _Pragma("omp simd reduction(+ : ta, tb)") for (int64_t j = 0; j < S; j++) {        \
          double gj = LD(g[j]);                                                            \
          ta += gj;                                                                        \
          tb += gj * (LD(p[j]) - m);                                                       \
        }                                                                                  \
        a += ta;                                                                           \
        b += tb;                                                                           \
      }                                                                                    \
      A sdy = (A)a, sdx = (A)b;                                                            \
      RL_BN_BWD_COEF(A, FMA_A, sdy, sdx, mean[c], is[c], w, rcnt, c, k, c1, c0, dw, db);   \
    });                                                                                    \
  }

/* y = a[c]*u + (b[c]*v + d[c]), or a[c]*u + d[c] without v, two explicit
 * fmas (as kernels/cuda_nn.cu), or a[c]*u without v and d: over the N*C
 * planes of S elements, or, for S == 1 ([N, C] input), over the N rows of
 * C. */
#define BN_AFFINE(T, A, LD, ST, cnt, cof)                                                  \
  do {                                                                                     \
    if (!d) {                                                                              \
      _Pragma("omp simd") for (int64_t k = 0; k < (cnt); k++)                              \
        py[k] = ST(a[cof] * LD(pu[k]));                                                    \
    } else if (v) {                                                                        \
      const T *pv = v + o;                                                                 \
      _Pragma("omp simd") for (int64_t k = 0; k < (cnt); k++) {                            \
        A t = FMA_A(b[cof], LD(pv[k]), d[cof]);                                            \
        py[k] = ST(FMA_A(a[cof], LD(pu[k]), t));                                           \
      }                                                                                    \
    } else {                                                                               \
      _Pragma("omp simd") for (int64_t k = 0; k < (cnt); k++)                              \
        py[k] = ST(FMA_A(a[cof], LD(pu[k]), d[cof]));                                      \
    }                                                                                      \
  } while (0)

#define DEFINE_BN_APPLY(name, T, A, LD, ST)                                                \
  static void name(const T *u, const T *v, const A *a, const A *b, const A *d, int64_t N,  \
                   int64_t C, int64_t S, T *y) {                                           \
    if (S == 1) {                                                                          \
      RL_PARALLEL_FOR(n, N, C * 3, {                                                       \
        int64_t o = n * C;                                                                 \
        const T *pu = u + o;                                                               \
        T *py = y + o;                                                                     \
        BN_AFFINE(T, A, LD, ST, C, k);                                                     \
      });                                                                                  \
      return;                                                                              \
    }                                                                                      \
    RL_PARALLEL_FOR(i, N * C, S * 3, {                                                     \
      int64_t c = i % C, o = i * S;                                                        \
      const T *pu = u + o;                                                                 \
      T *py = y + o;                                                                       \
      BN_AFFINE(T, A, LD, ST, S, c);                                                       \
    });                                                                                    \
  }

DEFINE_BN_STATS(bn_stats_f32, float, float, LD_SAME)
DEFINE_BN_STATS(bn_stats_f64, double, double, LD_SAME)
DEFINE_BN_STATS(bn_stats_bf16, uint16_t, float, LD_BF16)
DEFINE_BN_STATS(bn_stats_f16, uint16_t, float, LD_F16)
DEFINE_BN_BWD_REDUCE(bn_bwd_f32, float, float, LD_SAME)
DEFINE_BN_BWD_REDUCE(bn_bwd_f64, double, double, LD_SAME)
DEFINE_BN_BWD_REDUCE(bn_bwd_bf16, uint16_t, float, LD_BF16)
DEFINE_BN_BWD_REDUCE(bn_bwd_f16, uint16_t, float, LD_F16)
/* The coefficients from given statistics (eval mode), per channel. */
#define DEFINE_BN_COEF(name, A)                                                            \
  static void name(int64_t C, const A *mean, const A *var, const A *w, const A *b,         \
                   double eps, A *invstd, A *scale, A *shift) {                            \
    A *none = NULL;                                                                        \
    for (int64_t c = 0; c < C; c++)                                                        \
      RL_BN_FWD_COEF(A, FMA_A, SQRT_A, mean[c], var[c], w, b, none, none, 0, 0, eps, c,    \
                     invstd, scale, shift);                                                \
  }

DEFINE_BN_COEF(bn_coef_f32, float)
DEFINE_BN_COEF(bn_coef_f64, double)
DEFINE_BN_APPLY(bn_apply_f32, float, float, LD_SAME, ST_SAME)
DEFINE_BN_APPLY(bn_apply_f64, double, double, LD_SAME, ST_SAME)
DEFINE_BN_APPLY(bn_apply_bf16, uint16_t, float, LD_BF16, ST_BF16)
DEFINE_BN_APPLY(bn_apply_f16, uint16_t, float, LD_F16, ST_F16)

/* One call per dtype: f32, f64, then the half types (their per-channel
 * values f32). */
#define BN_DISPATCH(fn, ...)                                                               \
  do {                                                                                     \
    switch (dt) {                                                                          \
    case RL_F32: fn##_f32(__VA_ARGS__); return 0;                                          \
    case RL_F64: fn##_f64(__VA_ARGS__); return 0;                                          \
    case RL_BF16: fn##_bf16(__VA_ARGS__); return 0;                                        \
    case RL_F16: fn##_f16(__VA_ARGS__); return 0;                                          \
    default: return rl_err("batch_norm: not defined for %s", rl_dtype_name(dt));           \
    }                                                                                      \
  } while (0)

int rl_cpu_bn_stats(rl_dtype dt, const void *x, int64_t N, int64_t C, int64_t S, const void *w,
                    const void *b, void *rmean, void *rvar, double momentum, double unb,
                    double eps, void *mean, void *invstd, void *scale, void *shift) {
  BN_DISPATCH(bn_stats, x, N, C, S, w, b, rmean, rvar, momentum, unb, eps, mean, invstd, scale,
              shift);
}

int rl_cpu_bn_bwd_reduce(rl_dtype dt, const void *dy, const void *x, const void *mean,
                         const void *invstd, const void *w, int64_t N, int64_t C, int64_t S,
                         void *k, void *c1, void *c0, void *dw, void *db) {
  BN_DISPATCH(bn_bwd, dy, x, mean, invstd, w, N, C, S, k, c1, c0, dw, db);
}

int rl_cpu_bn_coef(rl_dtype dt, int64_t C, const void *mean, const void *var, const void *w,
                   const void *b, double eps, void *invstd, void *scale, void *shift) {
  if (dt == RL_F64) bn_coef_f64(C, mean, var, w, b, eps, invstd, scale, shift);
  else if (dt == RL_F32 || rl_dtype_is_half(dt)) bn_coef_f32(C, mean, var, w, b, eps, invstd, scale, shift);
  else return rl_err("batch_norm: not defined for %s", rl_dtype_name(dt));
  return 0;
}

int rl_cpu_bn_apply(rl_dtype dt, const void *u, const void *v, const void *a, const void *b,
                    const void *d, int64_t N, int64_t C, int64_t S, void *y) {
  BN_DISPATCH(bn_apply, u, v, a, b, d, N, C, S, y);
}

/* ---- softmax ----------------------------------------------------------- */

#define DEFINE_SOFTMAX(name, T)                                                    \
  static void name(const T *x, int64_t rows, int64_t cols, bool lg, T *y) {        \
    RL_PARALLEL_FOR(r, rows, cols * 8, {                                           \
      const T *a = x + r * cols;                                                   \
      T *o = y + r * cols;                                                         \
      T m = -INFINITY;                                                             \
      for (int64_t k = 0; k < cols; k++) m = a[k] > m ? a[k] : m;                  \
      double s = 0;                                                                \
      for (int64_t k = 0; k < cols; k++) s += RL_MATH(exp, a[k] - m);              \
      if (lg) {                                                                    \
        T ls = (T)log(s);                                                          \
        for (int64_t k = 0; k < cols; k++) o[k] = a[k] - m - ls;                   \
      } else {                                                                     \
        T inv = (T)(1.0 / s);                                                      \
        for (int64_t k = 0; k < cols; k++) o[k] = RL_MATH(exp, a[k] - m) * inv;    \
      }                                                                            \
    });                                                                            \
  }

#define DEFINE_SOFTMAX_BWD(name, T)                                                \
  static void name(const T *dy, const T *y, int64_t rows, int64_t cols, bool lg,   \
                   T *dx) {                                                        \
    RL_PARALLEL_FOR(r, rows, cols * 4, {                                           \
      const T *g = dy + r * cols, *p = y + r * cols;                               \
      T *o = dx + r * cols;                                                        \
      double s = 0;                                                                \
      if (lg) {                                                                    \
        for (int64_t k = 0; k < cols; k++) s += g[k];                              \
        for (int64_t k = 0; k < cols; k++) o[k] = g[k] - RL_MATH(exp, p[k]) * (T)s; \
      } else {                                                                     \
        for (int64_t k = 0; k < cols; k++) s += (double)g[k] * p[k];               \
        for (int64_t k = 0; k < cols; k++) o[k] = p[k] * (g[k] - (T)s);            \
      }                                                                            \
    });                                                                            \
  }

DEFINE_SOFTMAX(softmax_f32, float)
DEFINE_SOFTMAX(softmax_f64, double)
DEFINE_SOFTMAX_BWD(softmax_bwd_f32, float)
DEFINE_SOFTMAX_BWD(softmax_bwd_f64, double)

int rl_cpu_softmax(rl_dtype dt, const void *x, int64_t rows, int64_t cols, bool log,
                   void *y) {
  RL_CPU_DISPATCH_FLOAT("softmax", softmax_f32(x, rows, cols, log, y),
            softmax_f64(x, rows, cols, log, y));
}

int rl_cpu_softmax_bwd(rl_dtype dt, const void *dy, const void *y, int64_t rows,
                       int64_t cols, bool log, void *dx) {
  RL_CPU_DISPATCH_FLOAT("softmax", softmax_bwd_f32(dy, y, rows, cols, log, dx),
            softmax_bwd_f64(dy, y, rows, cols, log, dx));
}

/* ---- negative log-likelihood ------------------------------------------- */

static int check_targets(const int64_t *t, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; i++)
    if (t[i] < 0 || t[i] >= cols)
      return rl_err("nll_loss: target %lld at position %lld is out of range for %lld "
                    "classes (targets are 0-based)",
                    (long long)t[i], (long long)i + 1, (long long)cols);
  return 0;
}

int rl_cpu_nll(rl_dtype dt, const void *logp, const int64_t *t, int64_t rows,
               int64_t cols, void *out) {
  if (check_targets(t, rows, cols)) return -1;
  if (dt == RL_F32)
    for (int64_t i = 0; i < rows; i++)
      ((float *)out)[i] = -((const float *)logp)[i * cols + t[i]];
  else if (dt == RL_F64)
    for (int64_t i = 0; i < rows; i++)
      ((double *)out)[i] = -((const double *)logp)[i * cols + t[i]];
  else
    return rl_err("nll_loss: not defined for %s", rl_dtype_name(dt));
  return 0;
}

int rl_cpu_nll_bwd(rl_dtype dt, const void *g, int64_t gstride, const int64_t *t,
                   int64_t rows, int64_t cols, void *dlogp) {
  /* the targets were checked by the forward pass that saved them */
  size_t es = rl_dtype_size(dt);
  memset(dlogp, 0, (size_t)(rows * cols) * es);
  if (dt == RL_F32)
    for (int64_t i = 0; i < rows; i++)
      ((float *)dlogp)[i * cols + t[i]] = -((const float *)g)[i * gstride];
  else if (dt == RL_F64)
    for (int64_t i = 0; i < rows; i++)
      ((double *)dlogp)[i * cols + t[i]] = -((const double *)g)[i * gstride];
  else
    return rl_err("nll_loss: not defined for %s", rl_dtype_name(dt));
  return 0;
}
