/* cuda_attack.cu - the fused attack steps on contiguous buffers: one PGD
 * step, projection and clamp per call, in l-inf (elementwise) and in l2 (a
 * block per sample).  The CPU's formulas (engine/cpu/cpu_attack.c), so the
 * l-inf step gives the CPU's bits. */
#include "cuda_common.cuh"

/* ---- l-inf step ---------------------------------------------------------------------- */

/* out = clamp(min(max(a + p0*sign(g), c - p1), c + p1), p2, p3), the
 * constants rounded to T first.  out may alias a: each element is read
 * before it is written, by one thread. */
template <typename T>
__global__ void linf_step_kernel(const T *a, const T *g, const T *c, int64_t n, T alpha, T eps,
                                 T lo, T hi, T *out) {
  GRID_STRIDE(i, n) {
    T gi = g[i], v = a[i] + alpha * (T)((gi > 0) - (gi < 0));
    T below = c[i] - eps, above = c[i] + eps;
    v = v < below ? below : (v > above ? above : v);
    out[i] = v < lo ? lo : (v > hi ? hi : v);
  }
}

int rl_cuda_linf_step(rl_dtype dt, const void *a, const void *g, const void *c, int64_t n,
                      const double *p, void *out) {
  if (n == 0) return 0;
  RL_DISPATCH_FLOAT("linf_step", dt,
                    linf_step_kernel<T><<<rl_blocks(n), RL_THREADS>>>(
                        (const T *)a, (const T *)g, (const T *)c, n, (T)p[0], (T)p[1],
                        (T)p[2], (T)p[3], (T *)out));
  LAUNCH_CHECK("linf_step_kernel");
  return 0;
}

/* ---- l2 step ------------------------------------------------------------------------- */

/* A block per sample: ||g||, then ||a + step*g - c||, both in double, then
 * the projected, clamped point (the CPU's formula). */
template <typename T>
__global__ void l2_step_kernel(const T *a, const T *g, const T *c, int64_t D, double p0,
                               double p1, double lo, double hi, T *out) {
  __shared__ double sm[RL_THREADS];
  int64_t b = blockIdx.x;
  const T *ab = a + b * D, *gb = g + b * D, *cb = c + b * D;
  T *ob = out + b * D;
  double gn = 0;
  for (int64_t k = threadIdx.x; k < D; k += RL_THREADS) gn += (double)gb[k] * gb[k];
  gn = sqrt(block_sum(gn, sm));
  double step = gn > 0 ? p0 / gn : 0, dn = 0;
  for (int64_t k = threadIdx.x; k < D; k += RL_THREADS) {
    double d = (double)ab[k] + step * gb[k] - cb[k];
    dn += d * d;
  }
  dn = sqrt(block_sum(dn, sm));
  double f = dn > p1 ? p1 / dn : 1;
  /* out may alias a: each element is read before it is written, by one thread */
  for (int64_t k = threadIdx.x; k < D; k += RL_THREADS) {
    double d = ((double)ab[k] + step * gb[k] - cb[k]) * f;
    double v = cb[k] + d;
    ob[k] = (T)(v < lo ? lo : (v > hi ? hi : v));
  }
}

int rl_cuda_l2_step(rl_dtype dt, const void *a, const void *g, const void *c, int64_t B,
                    int64_t D, const double *p, void *out) {
  if (B == 0 || D == 0) return 0;
  RL_DISPATCH_FLOAT("l2_step", dt,
                    l2_step_kernel<T><<<(unsigned)B, RL_THREADS>>>(
                        (const T *)a, (const T *)g, (const T *)c, D, p[0], p[1], p[2], p[3],
                        (T *)out));
  LAUNCH_CHECK("l2_step_kernel");
  return 0;
}
