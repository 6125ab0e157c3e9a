/* cuda_nn.cu - batch-norm statistics, the softmax family and NLL.
 *
 * Sums go through fixed trees (shared memory or warp butterflies) in
 * double, never float atomics: a result is the same bits on every run. */
#include "bn_coef.h"
#include "cuda_common.cuh"

/* ---- warp sums (block_sum is in cuda_common.cuh) -------------------------------- */

__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T> __device__ __forceinline__ T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) {
    T u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return v;
}

/* ---- batch norm ---------------------------------------------------------------- */

/* The element type S and accumulation type A of batch norm on dtype D
 * (backend.h): f32 and f64 as they are; bf16 and f16 stored as their bits,
 * widened exactly to f32 (ld) and rounded once to nearest even (st). */
template <rl_dtype D> struct Bn;
template <> struct Bn<RL_F32> {
  typedef float S;
  typedef float A;
  static __device__ __forceinline__ float ld(float v) { return v; }
  static __device__ __forceinline__ float st(float v) { return v; }
};
template <> struct Bn<RL_F64> {
  typedef double S;
  typedef double A;
  static __device__ __forceinline__ double ld(double v) { return v; }
  static __device__ __forceinline__ double st(double v) { return v; }
};
template <rl_dtype H> struct BnHalf {
  typedef uint16_t S;
  typedef float A;
  static __device__ __forceinline__ float ld(uint16_t v) { return rl_f32_of_half(H, v); }
  static __device__ __forceinline__ uint16_t st(float v) { return rl_half_of_f32(H, v); }
};
template <> struct Bn<RL_BF16> : BnHalf<RL_BF16> {};
template <> struct Bn<RL_F16> : BnHalf<RL_F16> {};

/* BODY with B = Bn<dt>, for the four float dtypes. */
#define BN_DISPATCH(dt, ...)                                                  \
  switch (dt) {                                                               \
  case RL_F32: { typedef Bn<RL_F32> B; __VA_ARGS__; } break;                  \
  case RL_F64: { typedef Bn<RL_F64> B; __VA_ARGS__; } break;                  \
  case RL_BF16: { typedef Bn<RL_BF16> B; __VA_ARGS__; } break;                \
  case RL_F16: { typedef Bn<RL_F16> B; __VA_ARGS__; } break;                  \
  default: return rl_err("batch_norm: not defined for %s", rl_dtype_name(dt)); \
  }

/* Channel c of x [N, C, S] read at flat positions q of its [N, S] slice:
 * from q0 in steps of T, with (n, k) stepped without a division. */
struct ChanWalk {
  int64_t q, n, k, dn, dk, S;
  __device__ ChanWalk(int64_t S_, int64_t q0, int T) : q(q0), S(S_) {
    n = q0 / S;
    k = q0 % S;
    dn = T / S;
    dk = T % S;
  }
  __device__ void next(int T) {
    q += T;
    n += dn;
    k += dk;
    if (k >= S) {
      k -= S;
      n++;
    }
  }
};

/* Per-channel sums, deterministic and spread over the GPU: grid (C, P),
 * block p of channel c sums positions [p*chunk, (p+1)*chunk) of its slice
 * by a fixed tree into part[c][p][0..1]; the bn_finish_* kernels add the
 * P parts in order.  mode 0: sum x; 1: sum (x - m)^2; 2: sum dy and sum dy (x - m). */
template <typename B>
__global__ void bn_part(const typename B::S *x, const typename B::S *dy, const double *m,
                        int mode, int64_t N, int64_t C, int64_t S, int64_t chunk,
                        double *part) {
  __shared__ double sm[RL_THREADS];
  int64_t c = blockIdx.x, p = blockIdx.y, cnt = N * S;
  int64_t end = (p + 1) * chunk < cnt ? (p + 1) * chunk : cnt;
  double mc = mode ? m[c] : 0, a = 0, b = 0;
  for (ChanWalk w(S, p * chunk + threadIdx.x, RL_THREADS); w.q < end; w.next(RL_THREADS)) {
    int64_t e = (w.n * C + c) * S + w.k;
    double v = B::ld(x[e]);
    if (mode == 0) {
      a += v;
    } else if (mode == 1) {
      double d = v - mc;
      a += d * d;
    } else {
      double g = B::ld(dy[e]);
      a += g;
      b += g * (v - mc);
    }
  }
  a = block_sum(a, sm);
  if (mode == 2) b = block_sum(b, sm);
  if (threadIdx.x == 0) {
    part[(c * gridDim.y + p) * 2] = a;
    part[(c * gridDim.y + p) * 2 + 1] = b;
  }
}

/* A thread per channel: the P parts of the first sum in order, divided
 * by cnt: the mean, as a double for the variance's pass and in A. */
template <typename A>
__global__ void bn_finish_mean(const double *part, int64_t C, int P, double cnt, double *md,
                               A *mean) {
  GRID_STRIDE(c, C) {
    double a = 0;
    for (int p = 0; p < P; p++) a += part[(c * P + p) * 2];
    a /= cnt;
    md[c] = a;
    mean[c] = (A)a;
  }
}

/* A thread per channel: the variance from its P parts, then the map's
 * coefficients and the running statistics (engine/bn_coef.h). */
template <typename A>
__global__ void bn_finish_fwd(const double *part, int64_t C, int P, double cnt, const A *mean,
                              const A *w, const A *b, A *rm, A *rv, double mom, double unb,
                              double eps, A *invstd, A *scale, A *shift) {
  GRID_STRIDE(c, C) {
    double q = 0;
    for (int p = 0; p < P; p++) q += part[(c * P + p) * 2];
    A v = (A)(q / cnt);
    RL_BN_FWD_COEF(A, fma, sqrt, mean[c], v, w, b, rm, rv, mom, unb, eps, c, invstd, scale,
                   shift);
  }
}

/* A thread per channel: sum(dy) and sum(dy (x - mean)) from the P parts,
 * then the coefficients of dx, dw and db (engine/bn_coef.h). */
template <typename A>
__global__ void bn_finish_bwd(const double *part, int64_t C, int P, double rcnt, const A *mean,
                              const A *is, const A *w, A *k, A *c1, A *c0, A *dw, A *db) {
  GRID_STRIDE(c, C) {
    double a = 0, b = 0;
    for (int p = 0; p < P; p++) {
      a += part[(c * P + p) * 2];
      b += part[(c * P + p) * 2 + 1];
    }
    A sdy = (A)a, sdx = (A)b;
    RL_BN_BWD_COEF(A, fma, sdy, sdx, mean[c], is[c], w, rcnt, c, k, c1, c0, dw, db);
  }
}

/* A thread per channel: the coefficients from given statistics (eval
 * mode's running ones). */
template <typename A>
__global__ void bn_coef_k(int64_t C, const A *mean, const A *var, const A *w, const A *b,
                          double eps, A *invstd, A *scale, A *shift) {
  A *none = NULL;
  GRID_STRIDE(c, C) {
    RL_BN_FWD_COEF(A, fma, sqrt, mean[c], var[c], w, b, none, none, 0, 0, eps, c, invstd, scale,
                   shift);
  }
}

/* mean [C] as doubles, from the tensor's type */
template <typename T> __global__ void to_double(const T *v, int64_t n, double *d) {
  GRID_STRIDE(i, n) d[i] = (double)v[i];
}

/* Blocks per channel: about 1024 blocks in all, 16K elements each at least
 * (cnt > 0: ops_norm.c never sums an empty batch). */
static int bn_parts(int64_t C, int64_t cnt, int64_t *chunk) {
  int64_t P = (cnt + 16383) / 16384, most = 1024 / (C > 0 ? C : 1);
  if (most < 1) most = 1;
  if (P > most) P = most;
  if (P > 65535) P = 65535;
  if (P < 1) P = 1;
  *chunk = (cnt + P - 1) / P;
  return (int)((cnt + *chunk - 1) / *chunk);
}

/* x [N, C, S]: mean, then the biased variance around it, both in double
 * (two passes, as the CPU), then the coefficients. */
template <typename B, typename A = typename B::A>
static int bn_stats_t(const typename B::S *x, int64_t N, int64_t C, int64_t S, const A *w,
                      const A *b, A *rm, A *rv, double mom, double unb, double eps, A *mean,
                      A *invstd, A *scale, A *shift) {
  int64_t chunk, cnt = N * S;
  int P = bn_parts(C, cnt, &chunk);
  size_t nb = sizeof(double) * (size_t)(C * P * 2 + C);
  double *part = (double *)rl_cuda_scratch(nb);
  if (!part) return -1;
  double *md = part + C * P * 2;
  dim3 grid((unsigned)C, (unsigned)P);
  bn_part<B><<<grid, RL_THREADS>>>(x, NULL, NULL, 0, N, C, S, chunk, part);
  bn_finish_mean<A><<<rl_blocks(C), RL_THREADS>>>(part, C, P, (double)cnt, md, mean);
  bn_part<B><<<grid, RL_THREADS>>>(x, NULL, md, 1, N, C, S, chunk, part);
  bn_finish_fwd<A><<<rl_blocks(C), RL_THREADS>>>(part, C, P, (double)cnt, mean, w, b, rm, rv,
                                                 mom, unb, eps, invstd, scale, shift);
  cudaError_t e = cudaGetLastError();
  rl_cuda_scratch_free(part, nb);
  return e == cudaSuccess ? 0 : rl_cuda_fail("launch of the batch-norm statistics", e);
}

template <typename B, typename A = typename B::A>
static int bn_bwd_t(const typename B::S *dy, const typename B::S *x, const A *mean,
                    const A *is, const A *w, int64_t N, int64_t C, int64_t S, A *k, A *c1,
                    A *c0, A *dw, A *db) {
  int64_t chunk, cnt = N * S;
  int P = bn_parts(C, cnt, &chunk);
  size_t nb = sizeof(double) * (size_t)(C * P * 2 + C);
  double *part = (double *)rl_cuda_scratch(nb);
  if (!part) return -1;
  double *md = part + C * P * 2;
  to_double<A><<<rl_blocks(C), RL_THREADS>>>(mean, C, md);
  bn_part<B><<<dim3((unsigned)C, (unsigned)P), RL_THREADS>>>(x, dy, md, 2, N, C, S, chunk, part);
  bn_finish_bwd<A><<<rl_blocks(C), RL_THREADS>>>(part, C, P, 1.0 / (double)cnt, mean, is, w, k,
                                                 c1, c0, dw, db);
  cudaError_t e = cudaGetLastError();
  rl_cuda_scratch_free(part, nb);
  return e == cudaSuccess ? 0 : rl_cuda_fail("launch of the batch-norm backward sums", e);
}

/* y = a[c]*u + (b[c]*v + d[c]) (v NULL: a[c]*u + d[c]; d NULL too:
 * a[c]*u) over the n elements of contiguous [N, C, S], computed in A and
 * rounded once, with the CPU's explicit fmas.  A grid the GPU holds at
 * once strides over the elements; each thread divides once for the
 * channel c and the position k in its plane of its first element, then
 * steps both along without a division. */
template <typename B, typename IT>
__global__ void bn_apply_k(const typename B::S *u, const typename B::S *v,
                           const typename B::A *a, const typename B::A *b,
                           const typename B::A *d, IT C, IT S, IT n, typename B::S *y) {
  IT T = (IT)(gridDim.x * blockDim.x), i = (IT)(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  IT k = i % S, c = i / S % C, dk = T % S, dc = T / S % C;
  for (; i < n; i += T) {
    typename B::A r;
    if (!d) {
      r = a[c] * B::ld(u[i]);
    } else if (v) {
      typename B::A t = fma(b[c], B::ld(v[i]), d[c]);
      r = fma(a[c], B::ld(u[i]), t);
    } else {
      r = fma(a[c], B::ld(u[i]), d[c]);
    }
    y[i] = B::st(r);
    k += dk;
    c += dc;
    if (k >= S) {
      k -= S;
      c++;
    }
    if (c >= C) c -= C; /* c + dc + 1 < 2C */
  }
}

template <typename B, typename A = typename B::A>
static int bn_apply_t(const typename B::S *u, const typename B::S *v, const A *a, const A *b,
                      const A *d, int64_t N, int64_t C, int64_t S, typename B::S *y) {
  int64_t n = N * C * S, full = rl_cuda_sms() * (2048 / RL_THREADS);
  unsigned blocks = rl_blocks(n);
  if (full > 0 && blocks > full) blocks = (unsigned)full;
  RL_LAUNCH_IT(fits32(n, (int64_t)blocks * RL_THREADS), (bn_apply_k<B, IT>), blocks, u, v, a, b,
               d, (IT)C, (IT)S, (IT)n, y);
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? 0 : rl_cuda_fail("launch of the batch-norm map", e);
}

int rl_cuda_bn_stats(rl_dtype dt, const void *x, int64_t N, int64_t C, int64_t S,
                     const void *w, const void *b, void *rmean, void *rvar, double momentum,
                     double unb, double eps, void *mean, void *invstd, void *scale,
                     void *shift) {
  if (C == 0) return 0;
  BN_DISPATCH(dt, return bn_stats_t<B>((const B::S *)x, N, C, S, (const B::A *)w,
                                       (const B::A *)b, (B::A *)rmean, (B::A *)rvar, momentum,
                                       unb, eps, (B::A *)mean, (B::A *)invstd, (B::A *)scale,
                                       (B::A *)shift));
  return 0;
}

int rl_cuda_bn_bwd_reduce(rl_dtype dt, const void *dy, const void *x, const void *mean,
                          const void *invstd, const void *w, int64_t N, int64_t C, int64_t S,
                          void *k, void *c1, void *c0, void *dw, void *db) {
  if (C == 0) return 0;
  BN_DISPATCH(dt, return bn_bwd_t<B>((const B::S *)dy, (const B::S *)x, (const B::A *)mean,
                                     (const B::A *)invstd, (const B::A *)w, N, C, S,
                                     (B::A *)k, (B::A *)c1, (B::A *)c0, (B::A *)dw,
                                     (B::A *)db));
  return 0;
}

int rl_cuda_bn_coef(rl_dtype dt, int64_t C, const void *mean, const void *var, const void *w,
                    const void *b, double eps, void *invstd, void *scale, void *shift) {
  if (C == 0) return 0;
  BN_DISPATCH(dt, {
    typedef B::A A;
    bn_coef_k<A><<<rl_blocks(C), RL_THREADS>>>(C, (const A *)mean, (const A *)var,
                                               (const A *)w, (const A *)b, eps, (A *)invstd,
                                               (A *)scale, (A *)shift);
  });
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? 0 : rl_cuda_fail("launch of the batch-norm coefficients", e);
}

int rl_cuda_bn_apply(rl_dtype dt, const void *u, const void *v, const void *a, const void *b,
                     const void *d, int64_t N, int64_t C, int64_t S, void *y) {
  if (N * C * S == 0) return 0;
  BN_DISPATCH(dt, return bn_apply_t<B>((const B::S *)u, (const B::S *)v, (const B::A *)a,
                                       (const B::A *)b, (const B::A *)d, N, C, S, (B::S *)y));
  return 0;
}

/* ---- softmax -------------------------------------------------------------------- */

/* A warp per row of [rows, cols]: the max, the sum of exp in double by a
 * butterfly, then the outputs, with the CPU's expressions. */
template <typename T>
__global__ void softmax_kernel(const T *x, int64_t rows, int64_t cols, bool lg, T *y) {
  int lane = threadIdx.x & 31;
  int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (r >= rows) return;
  const T *a = x + r * cols;
  T *o = y + r * cols;
  T m = -INFINITY;
  for (int64_t k = lane; k < cols; k += 32) m = a[k] > m ? a[k] : m;
  m = warp_max(m);
  double s = 0;
  for (int64_t k = lane; k < cols; k += 32) s += exp(a[k] - m);
  s = warp_sum(s);
  if (lg) {
    T ls = (T)log(s);
    for (int64_t k = lane; k < cols; k += 32) o[k] = a[k] - m - ls;
  } else {
    T inv = (T)(1.0 / s);
    for (int64_t k = lane; k < cols; k += 32) o[k] = exp(a[k] - m) * inv;
  }
}

template <typename T>
__global__ void softmax_bwd_kernel(const T *dy, const T *y, int64_t rows, int64_t cols,
                                   bool lg, T *dx) {
  int lane = threadIdx.x & 31;
  int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (r >= rows) return;
  const T *g = dy + r * cols, *p = y + r * cols;
  T *o = dx + r * cols;
  double s = 0;
  if (lg) {
    for (int64_t k = lane; k < cols; k += 32) s += g[k];
    T ts = (T)warp_sum(s);
    for (int64_t k = lane; k < cols; k += 32) o[k] = g[k] - exp(p[k]) * ts;
  } else {
    for (int64_t k = lane; k < cols; k += 32) s += (double)g[k] * p[k];
    T ts = (T)warp_sum(s);
    for (int64_t k = lane; k < cols; k += 32) o[k] = p[k] * (g[k] - ts);
  }
}

int rl_cuda_softmax(rl_dtype dt, const void *x, int64_t rows, int64_t cols, bool log, void *y) {
  if (rows == 0 || cols == 0) return 0;
  unsigned nb = (unsigned)((rows * 32 + RL_THREADS - 1) / RL_THREADS);
  RL_DISPATCH_FLOAT("softmax", dt,
                    softmax_kernel<T><<<nb, RL_THREADS>>>((const T *)x, rows, cols, log,
                                                          (T *)y));
  LAUNCH_CHECK("softmax_kernel");
  return 0;
}

int rl_cuda_softmax_bwd(rl_dtype dt, const void *dy, const void *y, int64_t rows, int64_t cols,
                        bool log, void *dx) {
  if (rows == 0 || cols == 0) return 0;
  unsigned nb = (unsigned)((rows * 32 + RL_THREADS - 1) / RL_THREADS);
  RL_DISPATCH_FLOAT("softmax", dt,
                    softmax_bwd_kernel<T><<<nb, RL_THREADS>>>((const T *)dy, (const T *)y, rows,
                                                              cols, log, (T *)dx));
  LAUNCH_CHECK("softmax_bwd_kernel");
  return 0;
}

/* ---- negative log-likelihood ------------------------------------------------------ */

/* The ops layer checked the targets; one out of range still never reads
 * outside logp: its loss is NaN. */
template <typename T>
__global__ void nll_kernel(const T *logp, const int64_t *t, int64_t rows, int64_t cols, T *out) {
  GRID_STRIDE(i, rows) {
    int64_t c = t[i];
    out[i] = c >= 0 && c < cols ? -logp[i * cols + c] : (T)NAN;
  }
}

template <typename T>
__global__ void nll_bwd_kernel(const T *g, int64_t gstride, const int64_t *t, int64_t rows,
                               int64_t cols, T *dlogp) {
  GRID_STRIDE(e, rows * cols) {
    int64_t i, j;
    if (cols < INT32_MAX && rows * cols < INT32_MAX) {
      i = (int32_t)e / (int32_t)cols;
      j = (int32_t)e - (int32_t)i * (int32_t)cols;
    } else {
      i = e / cols;
      j = e % cols;
    }
    dlogp[e] = t[i] == j ? -g[i * gstride] : (T)0;
  }
}

int rl_cuda_nll(rl_dtype dt, const void *logp, const int64_t *t, int64_t rows, int64_t cols,
                void *out) {
  if (rows == 0) return 0;
  RL_DISPATCH_FLOAT("nll_loss", dt,
                    nll_kernel<T><<<rl_blocks(rows), RL_THREADS>>>((const T *)logp, t, rows,
                                                                   cols, (T *)out));
  LAUNCH_CHECK("nll_kernel");
  return 0;
}

int rl_cuda_nll_bwd(rl_dtype dt, const void *g, int64_t gstride, const int64_t *t, int64_t rows,
                    int64_t cols, void *dlogp) {
  if (rows * cols == 0) return 0;
  RL_DISPATCH_FLOAT("nll_loss", dt,
                    nll_bwd_kernel<T><<<rl_blocks(rows * cols), RL_THREADS>>>(
                        (const T *)g, gstride, t, rows, cols, (T *)dlogp));
  LAUNCH_CHECK("nll_bwd_kernel");
  return 0;
}
