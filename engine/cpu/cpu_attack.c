/* cpu_attack.c - the fused attack steps on contiguous buffers: one PGD
 * step, projection and clamp per call, in l-inf (elementwise) and in l2
 * (per sample).  No autograd: engine/ops_attack.c calls these in place. */
#include "cpu.h"

/* ---- l-inf step -------------------------------------------------------- */

#define SGN(a) (((a) > 0) - ((a) < 0))

/* out = clamp(min(max(a + p0*sign(g), c - p1), c + p1), p2, p3), each
 * constant rounded to T first, as the CUDA kernel does. */
#define DEFINE_LINF_STEP(name, T)                                                  \
  static void name(const T *a, const T *g, const T *c, int64_t n, const double *p,  \
                   T *out) {                                                       \
    T alpha = (T)p[0], eps = (T)p[1], lo = (T)p[2], hi = (T)p[3];                   \
    RL_PARALLEL_FOR(i, n, 1, {                                                     \
      T v = a[i] + alpha * (T)SGN(g[i]);                                           \
      T below = c[i] - eps, above = c[i] + eps;                                    \
      v = v < below ? below : (v > above ? above : v);                             \
      out[i] = v < lo ? lo : (v > hi ? hi : v);                                    \
    });                                                                            \
  }

DEFINE_LINF_STEP(linf_step_f32, float)
DEFINE_LINF_STEP(linf_step_f64, double)

int rl_cpu_linf_step(rl_dtype dt, const void *a, const void *g, const void *c, int64_t n,
                     const double *p, void *out) {
  RL_CPU_DISPATCH_FLOAT("linf_step", linf_step_f32(a, g, c, n, p, out),
                        linf_step_f64(a, g, c, n, p, out));
}

/* ---- l2 step ----------------------------------------------------------- */

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
