/* cpu_nn.c - batch-norm statistics, softmax family, NLL, index ops and the
 * l2 attack step on the CPU. */
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
      for (int64_t k = 0; k < cols; k++) s += M_EXP(a[k] - m);                     \
      if (lg) {                                                                    \
        T ls = (T)log(s);                                                          \
        for (int64_t k = 0; k < cols; k++) o[k] = a[k] - m - ls;                   \
      } else {                                                                     \
        T inv = (T)(1.0 / s);                                                      \
        for (int64_t k = 0; k < cols; k++) o[k] = M_EXP(a[k] - m) * inv;           \
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
        for (int64_t k = 0; k < cols; k++) o[k] = g[k] - M_EXP(p[k]) * (T)s;       \
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

/* ---- index ops (byte-generic: they only move elements) ----------------- */

static int check_index(const char *op, const int64_t *idx, int64_t k, int64_t n) {
  for (int64_t j = 0; j < k; j++)
    if (idx[j] < 0 || idx[j] >= n)
      return rl_err("%s: index %lld is out of range for a dim of size %lld (indices are "
                    "0-based)",
                    op, (long long)idx[j], (long long)n);
  return 0;
}

int rl_cpu_index_select(rl_dtype dt, const void *x, int64_t outer, int64_t n,
                        int64_t inner, const int64_t *idx, int64_t k, void *y) {
  if (check_index("index_select", idx, k, n)) return -1;
  size_t es = rl_dtype_size(dt), row = (size_t)inner * es;
  RL_PARALLEL_FOR(o, outer, k * inner, {
    for (int64_t j = 0; j < k; j++)
      memcpy((char *)y + ((size_t)(o * k + j)) * row,
             (const char *)x + ((size_t)(o * n + idx[j])) * row, row);
  });
  return 0;
}

#define ADD_ROW(T, dst, src, cnt)                                                  \
  do {                                                                             \
    T *d_ = (T *)(dst);                                                            \
    const T *s_ = (const T *)(src);                                                \
    for (int64_t q = 0; q < (cnt); q++) d_[q] += s_[q];                            \
  } while (0)

static void add_row(rl_dtype dt, void *dst, const void *src, int64_t cnt) {
  switch (dt) {
  case RL_F32: ADD_ROW(float, dst, src, cnt); break;
  case RL_F64: ADD_ROW(double, dst, src, cnt); break;
  case RL_I64: ADD_ROW(int64_t, dst, src, cnt); break;
  case RL_U8: ADD_ROW(uint8_t, dst, src, cnt); break;
  default: break;
  }
}

int rl_cpu_index_add(rl_dtype dt, const void *x, int64_t outer, int64_t k, int64_t inner,
                     const int64_t *idx, int64_t n, void *y) {
  if (check_index("index_add", idx, k, n)) return -1;
  size_t es = rl_dtype_size(dt);
  /* each outer slice is independent; within one, rows add in index order */
  RL_PARALLEL_FOR(o, outer, k * inner, {
    for (int64_t j = 0; j < k; j++)
      add_row(dt, (char *)y + (size_t)((o * n + idx[j]) * inner) * es,
              (const char *)x + (size_t)((o * k + j) * inner) * es, inner);
  });
  return 0;
}

int rl_cpu_gather(rl_dtype dt, const void *x, int64_t outer, int64_t n, int64_t inner,
                  const int64_t *idx, int64_t k, void *y) {
  if (check_index("gather", idx, outer * k * inner, n)) return -1;
  size_t es = rl_dtype_size(dt);
  RL_PARALLEL_FOR(o, outer, k * inner, {
    for (int64_t j = 0; j < k; j++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t src = (o * n + idx[(o * k + j) * inner + i]) * inner + i;
        memcpy((char *)y + (size_t)((o * k + j) * inner + i) * es,
               (const char *)x + (size_t)src * es, es);
      }
  });
  return 0;
}

int rl_cpu_scatter_add(rl_dtype dt, const void *x, int64_t outer, int64_t k,
                       int64_t inner, const int64_t *idx, int64_t n, void *y) {
  if (check_index("scatter_add", idx, outer * k * inner, n)) return -1;
  size_t es = rl_dtype_size(dt);
  RL_PARALLEL_FOR(o, outer, k * inner, {
    for (int64_t j = 0; j < k; j++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t dst = (o * n + idx[(o * k + j) * inner + i]) * inner + i;
        add_row(dt, (char *)y + (size_t)dst * es,
                (const char *)x + (size_t)((o * k + j) * inner + i) * es, 1);
      }
  });
  return 0;
}

/* ---- l2 attack step ---------------------------------------------------- */

#define DEFINE_L2_STEP(name, T)                                                    \
  static void name(const T *a, const T *g, const T *c, int64_t B, int64_t D,        \
                   const double *p, T *out) {                                      \
    RL_PARALLEL_FOR(b, B, D * 4, {                                                 \
      const T *ab = a + b * D, *gb = g + b * D, *cb = c + b * D;                   \
      T *ob = out + b * D;                                                         \
      double gn = 0;                                                               \
      for (int64_t k = 0; k < D; k++) gn += (double)gb[k] * gb[k];                 \
      gn = sqrt(gn);                                                               \
      double step = gn > 0 ? p[0] / gn : 0, dn = 0;                                \
      for (int64_t k = 0; k < D; k++) {                                            \
        double d = (double)ab[k] + step * gb[k] - cb[k];                           \
        dn += d * d;                                                               \
      }                                                                            \
      dn = sqrt(dn);                                                               \
      double f = dn > p[1] ? p[1] / dn : 1;                                        \
      for (int64_t k = 0; k < D; k++) {                                            \
        double d = ((double)ab[k] + step * gb[k] - cb[k]) * f;                     \
        double v = cb[k] + d;                                                      \
        ob[k] = (T)(v < p[2] ? p[2] : (v > p[3] ? p[3] : v));                      \
      }                                                                            \
    });                                                                            \
  }

DEFINE_L2_STEP(l2_step_f32, float)
DEFINE_L2_STEP(l2_step_f64, double)

int rl_cpu_l2_step(rl_dtype dt, const void *a, const void *g, const void *c, int64_t B,
                   int64_t D, const double *p, void *out) {
  RL_CPU_DISPATCH_FLOAT("l2_step", l2_step_f32(a, g, c, B, D, p, out),
            l2_step_f64(a, g, c, B, D, p, out));
}
