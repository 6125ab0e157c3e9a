/* cpu_nn.c - batch-norm statistics, the softmax family and NLL on the CPU. */
#include <string.h>

#include "cpu.h"

/* ---- batch norm -------------------------------------------------------- */

/* x [N, C, S]: mean and biased variance per channel, two passes in double. */
#define DEFINE_BN_STATS(name, T)                                                   \
  static void name(const T *x, int64_t N, int64_t C, int64_t S, T *mean, T *var) {  \
    RL_PARALLEL_FOR(c, C, N * S * 2, {                                             \
      double s = 0;                                                                \
      for (int64_t n = 0; n < N; n++) {                                            \
        const T *p = x + (n * C + c) * S;                                          \
        double t = 0;                                                              \
        _Pragma("omp simd reduction(+ : t)") for (int64_t k = 0; k < S; k++) t += p[k]; \
        s += t;                                                                    \
      }                                                                            \
      double m = s / (double)(N * S), q = 0;                                       \
      for (int64_t n = 0; n < N; n++) {                                            \
        const T *p = x + (n * C + c) * S;                                          \
        double t = 0;                                                              \
        _Pragma("omp simd reduction(+ : t)") for (int64_t k = 0; k < S; k++) {     \
          double d = p[k] - m;                                                     \
          t += d * d;                                                              \
        }                                                                          \
        q += t;                                                                    \
      }                                                                            \
      mean[c] = (T)m;                                                              \
      var[c] = (T)(q / (double)(N * S));                                           \
    });                                                                            \
  }

#define DEFINE_BN_BWD_REDUCE(name, T)                                              \
  static void name(const T *dy, const T *x, const T *mean, int64_t N, int64_t C,    \
                   int64_t S, T *sdy, T *sdx) {                                    \
    RL_PARALLEL_FOR(c, C, N * S * 2, {                                             \
      double a = 0, b = 0, m = mean[c];                                            \
      for (int64_t n = 0; n < N; n++) {                                            \
        const T *g = dy + (n * C + c) * S, *p = x + (n * C + c) * S;               \
        double ta = 0, tb = 0;                                                     \
        _Pragma("omp simd reduction(+ : ta, tb)") for (int64_t k = 0; k < S; k++) { \
          ta += g[k];                                                              \
          tb += g[k] * (p[k] - m);                                                 \
        }                                                                          \
        a += ta;                                                                   \
        b += tb;                                                                   \
      }                                                                            \
      sdy[c] = (T)a;                                                               \
      sdx[c] = (T)b;                                                               \
    });                                                                            \
  }

DEFINE_BN_STATS(bn_stats_f32, float)
DEFINE_BN_STATS(bn_stats_f64, double)
DEFINE_BN_BWD_REDUCE(bn_bwd_f32, float)
DEFINE_BN_BWD_REDUCE(bn_bwd_f64, double)

int rl_cpu_bn_stats(rl_dtype dt, const void *x, int64_t N, int64_t C, int64_t S,
                    void *mean, void *var) {
  RL_CPU_DISPATCH_FLOAT("batch_norm", bn_stats_f32(x, N, C, S, mean, var),
            bn_stats_f64(x, N, C, S, mean, var));
}

int rl_cpu_bn_bwd_reduce(rl_dtype dt, const void *dy, const void *x, const void *mean,
                         int64_t N, int64_t C, int64_t S, void *sum_dy, void *sum_dyxmu) {
  RL_CPU_DISPATCH_FLOAT("batch_norm", bn_bwd_f32(dy, x, mean, N, C, S, sum_dy, sum_dyxmu),
            bn_bwd_f64(dy, x, mean, N, C, S, sum_dy, sum_dyxmu));
}

/* ---- softmax ----------------------------------------------------------- */

#define DEFINE_SOFTMAX(name, T)                                                    \
  static void name(const T *x, int64_t rows, int64_t cols, bool lg, T *y) {         \
    RL_PARALLEL_FOR(r, rows, cols * 8, {                                           \
      const T *a = x + r * cols;                                                   \
      T *o = y + r * cols;                                                         \
      T m = -INFINITY;                                                             \
      for (int64_t k = 0; k < cols; k++) m = a[k] > m ? a[k] : m;                   \
      double s = 0;                                                                \
      for (int64_t k = 0; k < cols; k++) s += RL_MATH(exp, a[k] - m);                     \
      if (lg) {                                                                    \
        T ls = (T)log(s);                                                          \
        for (int64_t k = 0; k < cols; k++) o[k] = a[k] - m - ls;                   \
      } else {                                                                     \
        T inv = (T)(1.0 / s);                                                      \
        for (int64_t k = 0; k < cols; k++) o[k] = RL_MATH(exp, a[k] - m) * inv;           \
      }                                                                            \
    });                                                                            \
  }

#define DEFINE_SOFTMAX_BWD(name, T)                                                \
  static void name(const T *dy, const T *y, int64_t rows, int64_t cols, bool lg,    \
                   T *dx) {                                                        \
    RL_PARALLEL_FOR(r, rows, cols * 4, {                                           \
      const T *g = dy + r * cols, *p = y + r * cols;                               \
      T *o = dx + r * cols;                                                        \
      double s = 0;                                                                \
      if (lg) {                                                                    \
        for (int64_t k = 0; k < cols; k++) s += g[k];                              \
        for (int64_t k = 0; k < cols; k++) o[k] = g[k] - RL_MATH(exp, p[k]) * (T)s;       \
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
