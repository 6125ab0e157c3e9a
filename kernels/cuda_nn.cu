/* cuda_nn.cu - batch-norm statistics, the softmax family, NLL, index ops
 * and the l2 attack step.
 *
 * Sums go through fixed trees (shared memory or warp butterflies) in
 * double, never float atomics: a result is the same bits on every run.
 * index_add and scatter_add gather instead of scattering: each output
 * element adds its sources in index order, exactly as the CPU does. */
#include <cub/device/device_radix_sort.cuh>

#include "cuda_common.cuh"

/* ---- block and warp sums ------------------------------------------------------ */

/* Sum of v over the block (blockDim.x == RL_THREADS) by a fixed tree; every
 * thread gets the result. */
__device__ double block_sum(double v, double *sm) {
  sm[threadIdx.x] = v;
  __syncthreads();
  for (int s = RL_THREADS / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) sm[threadIdx.x] += sm[threadIdx.x + s];
    __syncthreads();
  }
  double r = sm[0];
  __syncthreads();
  return r;
}

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
 * by a fixed tree into part[c][p][0..1]; bn_finish adds the P parts in
 * order.  mode 0: sum x; 1: sum (x - m)^2; 2: sum dy and sum dy (x - m). */
template <typename T>
__global__ void bn_part(const T *x, const T *dy, const double *m, int mode, int64_t N,
                        int64_t C, int64_t S, int64_t chunk, double *part) {
  __shared__ double sm[RL_THREADS];
  int64_t c = blockIdx.x, p = blockIdx.y, cnt = N * S;
  int64_t end = (p + 1) * chunk < cnt ? (p + 1) * chunk : cnt;
  double mc = mode ? m[c] : 0, a = 0, b = 0;
  for (ChanWalk w(S, p * chunk + threadIdx.x, RL_THREADS); w.q < end; w.next(RL_THREADS)) {
    int64_t e = (w.n * C + c) * S + w.k;
    double v = x[e];
    if (mode == 0) {
      a += v;
    } else if (mode == 1) {
      double d = v - mc;
      a += d * d;
    } else {
      double g = dy[e];
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

/* A thread per channel: the P parts in order, divided by cnt (0 = no
 * division), into d (double) and/or o0, o1 (the tensor's type). */
template <typename T>
__global__ void bn_finish(const double *part, int64_t C, int P, double cnt, double *d, T *o0,
                          T *o1) {
  GRID_STRIDE(c, C) {
    double a = 0, b = 0;
    for (int p = 0; p < P; p++) {
      a += part[(c * P + p) * 2];
      b += part[(c * P + p) * 2 + 1];
    }
    if (cnt > 0) a /= cnt;
    if (d) d[c] = a;
    if (o0) o0[c] = (T)a;
    if (o1) o1[c] = (T)b;
  }
}

/* mean [C] as doubles, from the tensor's type */
template <typename T> __global__ void to_double(const T *v, int64_t n, double *d) {
  GRID_STRIDE(i, n) d[i] = (double)v[i];
}

/* Blocks per channel: about 1024 blocks in all, 16K elements each at least. */
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
 * (two passes, as the CPU). */
template <typename T>
static int bn_stats_t(const T *x, int64_t N, int64_t C, int64_t S, T *mean, T *var) {
  int64_t chunk, cnt = N * S;
  int P = bn_parts(C, cnt, &chunk);
  size_t nb = sizeof(double) * (size_t)(C * P * 2 + C);
  double *part = (double *)rl_cuda_scratch(nb);
  if (!part) return -1;
  double *md = part + C * P * 2;
  dim3 grid((unsigned)C, (unsigned)P);
  bn_part<T><<<grid, RL_THREADS>>>(x, NULL, NULL, 0, N, C, S, chunk, part);
  bn_finish<T><<<rl_blocks(C), RL_THREADS>>>(part, C, P, (double)cnt, md, mean, (T *)NULL);
  bn_part<T><<<grid, RL_THREADS>>>(x, NULL, md, 1, N, C, S, chunk, part);
  bn_finish<T><<<rl_blocks(C), RL_THREADS>>>(part, C, P, (double)cnt, NULL, var, (T *)NULL);
  cudaError_t e = cudaGetLastError();
  rl_cuda_scratch_free(part, nb);
  return e == cudaSuccess ? 0 : rl_cuda_fail("launch of the batch-norm statistics", e);
}

template <typename T>
static int bn_bwd_t(const T *dy, const T *x, const T *mean, int64_t N, int64_t C, int64_t S,
                    T *sdy, T *sdx) {
  int64_t chunk, cnt = N * S;
  int P = bn_parts(C, cnt, &chunk);
  size_t nb = sizeof(double) * (size_t)(C * P * 2 + C);
  double *part = (double *)rl_cuda_scratch(nb);
  if (!part) return -1;
  double *md = part + C * P * 2;
  to_double<T><<<rl_blocks(C), RL_THREADS>>>(mean, C, md);
  bn_part<T><<<dim3((unsigned)C, (unsigned)P), RL_THREADS>>>(x, dy, md, 2, N, C, S, chunk, part);
  bn_finish<T><<<rl_blocks(C), RL_THREADS>>>(part, C, P, 0, NULL, sdy, sdx);
  cudaError_t e = cudaGetLastError();
  rl_cuda_scratch_free(part, nb);
  return e == cudaSuccess ? 0 : rl_cuda_fail("launch of the batch-norm backward sums", e);
}

int rl_cuda_bn_stats(rl_dtype dt, const void *x, int64_t N, int64_t C, int64_t S, void *mean,
                     void *var) {
  if (C == 0) return 0;
  RL_DISPATCH_FLOAT("batch_norm", dt,
                    return bn_stats_t<T>((const T *)x, N, C, S, (T *)mean, (T *)var));
  return 0;
}

int rl_cuda_bn_bwd_reduce(rl_dtype dt, const void *dy, const void *x, const void *mean,
                          int64_t N, int64_t C, int64_t S, void *sum_dy, void *sum_dyxmu) {
  if (C == 0) return 0;
  RL_DISPATCH_FLOAT("batch_norm", dt,
                    return bn_bwd_t<T>((const T *)dy, (const T *)x, (const T *)mean, N, C, S,
                                       (T *)sum_dy, (T *)sum_dyxmu));
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
  for (int64_t k = lane; k < cols; k += 32) s += m_exp(a[k] - m);
  s = warp_sum(s);
  if (lg) {
    T ls = (T)log(s);
    for (int64_t k = lane; k < cols; k += 32) o[k] = a[k] - m - ls;
  } else {
    T inv = (T)(1.0 / s);
    for (int64_t k = lane; k < cols; k += 32) o[k] = m_exp(a[k] - m) * inv;
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
    for (int64_t k = lane; k < cols; k += 32) o[k] = g[k] - m_exp(p[k]) * ts;
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

/* ---- index ops ------------------------------------------------------------------------ */

/* The ops layer checks every index before a kernel runs; these kernels
 * still never touch memory outside the tensors (a bad index reads 0). */

#define GRID_STRIDE_IT(i, n)                                                  \
  for (IT i = (IT)(blockIdx.x * blockDim.x + threadIdx.x); i < (n);          \
       i += (IT)(gridDim.x * blockDim.x))

/* y[o, j, i] = x[o, idx[j], i]; E is an unsigned type of the element size */
template <typename E, typename IT>
__global__ void index_select_kernel(const E *x, IT outer, IT n, IT inner, const int64_t *idx,
                                    IT k, E *y) {
  GRID_STRIDE_IT(e, outer * k * inner) {
    IT i = e % inner, oj = e / inner, j = oj % k, o = oj / k;
    int64_t r = idx[j];
    y[e] = r >= 0 && r < n ? x[((int64_t)o * n + r) * inner + i] : (E)0;
  }
}

template <typename E, typename IT>
__global__ void gather_kernel(const E *x, IT outer, IT n, IT inner, const int64_t *idx, IT k,
                              E *y) {
  GRID_STRIDE_IT(e, outer * k * inner) {
    IT i = e % inner, o = e / (inner * k);
    int64_t r = idx[e];
    y[e] = r >= 0 && r < n ? x[((int64_t)o * n + r) * inner + i] : (E)0;
  }
}


#define DISPATCH_BYTES(dt, ...)                                                       \
  switch (rl_dtype_size(dt)) {                                                        \
  case 1: { typedef uint8_t E; __VA_ARGS__; } break;                                  \
  case 4: { typedef uint32_t E; __VA_ARGS__; } break;                                 \
  case 8: { typedef uint64_t E; __VA_ARGS__; } break;                                 \
  default: return rl_err("index op: unsupported element size");                       \
  }

int rl_cuda_index_select(rl_dtype dt, const void *x, int64_t outer, int64_t n, int64_t inner,
                         const int64_t *idx, int64_t k, void *y) {
  int64_t cnt = outer * k * inner;
  if (cnt == 0) return 0;
  bool f = fits32(cnt, outer * n * inner);
  DISPATCH_BYTES(dt, RL_LAUNCH_IT(f, (index_select_kernel<E, IT>), rl_blocks(cnt), (const E *)x,
                                  (IT)outer, (IT)n, (IT)inner, idx, (IT)k, (E *)y));
  LAUNCH_CHECK("index_select_kernel");
  return 0;
}

int rl_cuda_gather(rl_dtype dt, const void *x, int64_t outer, int64_t n, int64_t inner,
                   const int64_t *idx, int64_t k, void *y) {
  int64_t cnt = outer * k * inner;
  if (cnt == 0) return 0;
  bool f = fits32(cnt, outer * n * inner);
  DISPATCH_BYTES(dt, RL_LAUNCH_IT(f, (gather_kernel<E, IT>), rl_blocks(cnt), (const E *)x,
                                  (IT)outer, (IT)n, (IT)inner, idx, (IT)k, (E *)y));
  LAUNCH_CHECK("gather_kernel");
  return 0;
}

/* scatter_add: y[o, idx[o, j, i], i] += x[o, j, i].  A thread per (o, i)
 * column walks j in order, so no two threads write one element and the
 * additions happen in the CPU's order.  Parallel over outer * inner only. */
template <typename T>
__global__ void scatter_add_kernel(const T *x, int64_t outer, int64_t k, int64_t inner,
                                   const int64_t *idx, int64_t n, T *y) {
  GRID_STRIDE(e, outer * inner) {
    int64_t o = e / inner, i = e % inner;
    for (int64_t j = 0; j < k; j++) {
      int64_t s = (o * k + j) * inner + i, r = idx[s];
      if (r >= 0 && r < n) {
        T *d = y + (o * n + r) * inner + i;
        *d = (T)(*d + x[s]);
      }
    }
  }
}

int rl_cuda_scatter_add(rl_dtype dt, const void *x, int64_t outer, int64_t k, int64_t inner,
                        const int64_t *idx, int64_t n, void *y) {
  if (outer * inner == 0 || k == 0) return 0;
  RL_DISPATCH_ALL(dt, scatter_add_kernel<T><<<rl_blocks(outer * inner), RL_THREADS>>>(
                          (const T *)x, outer, k, inner, idx, n, (T *)y));
  LAUNCH_CHECK("scatter_add_kernel");
  return 0;
}

/* index_add: y[:, idx[j], :] += x[:, j, :] in index order.  The positions j
 * are sorted by idx[j] (a stable radix sort, so equal indices keep j's
 * order); each row r of y then owns the segment of positions that point at
 * it, and each element of y adds its segment's rows in order. */
__global__ void iota_kernel(int32_t *v, int64_t k) {
  GRID_STRIDE(j, k) v[j] = (int32_t)j;
}

__global__ void segments_kernel(const int64_t *key, int64_t k, int64_t n, int32_t *start,
                                int32_t *end) {
  GRID_STRIDE(p, k) {
    int64_t r = key[p];
    if (r < 0 || r >= n) continue;
    if (p == 0 || key[p - 1] != r) start[r] = (int32_t)p;
    if (p == k - 1 || key[p + 1] != r) end[r] = (int32_t)(p + 1);
  }
}

template <typename T>
__global__ void index_add_kernel(const T *x, int64_t outer, int64_t k, int64_t inner,
                                 const int32_t *pos, const int32_t *start, const int32_t *end,
                                 int64_t n, T *y) {
  GRID_STRIDE(e, outer * n * inner) {
    int64_t i = e % inner, r = (e / inner) % n, o = e / (inner * n);
    int32_t b = start[r], f = end[r];
    if (b >= f) continue;
    T acc = y[e];
    for (int32_t p = b; p < f; p++) acc = (T)(acc + x[(o * k + pos[p]) * inner + i]);
    y[e] = acc;
  }
}

int rl_cuda_index_add(rl_dtype dt, const void *x, int64_t outer, int64_t k, int64_t inner,
                      const int64_t *idx, int64_t n, void *y) {
  if (outer * inner == 0 || k == 0 || n == 0) return 0;
  if (k >= INT32_MAX || n >= INT32_MAX)
    return rl_err("index_add: %lld indices into a dim of %lld is too large for the CUDA kernel",
                  (long long)k, (long long)n);
  int bits = 1;
  while (bits < 63 && ((int64_t)1 << bits) < n) bits++;
  size_t tmp_bytes = 0;
  CUDA_TRY(cub::DeviceRadixSort::SortPairs(NULL, tmp_bytes, (const int64_t *)NULL,
                                           (int64_t *)NULL, (const int32_t *)NULL,
                                           (int32_t *)NULL, (int)k, 0, bits, (cudaStream_t)0));
  size_t kb = sizeof(int64_t) * (size_t)k, vb = sizeof(int32_t) * (size_t)k,
         sb = sizeof(int32_t) * (size_t)n;
  size_t total = kb + 2 * vb + 2 * sb + tmp_bytes + 5 * 256; /* 5 pieces, each aligned */
  char *buf = (char *)rl_cuda_scratch(total);
  if (!buf) return rl_err_prefix("index_add");
  /* carve the scratch block into 256-byte aligned pieces */
  char *q = buf;
  auto take = [&](size_t nb) {
    char *p = q;
    q += (nb + 255) & ~(size_t)255;
    return p;
  };
  int64_t *keys = (int64_t *)take(kb);
  int32_t *vin = (int32_t *)take(vb), *vout = (int32_t *)take(vb);
  int32_t *seg = (int32_t *)take(2 * sb);
  void *tmp = take(tmp_bytes);
  int rc = 0;
  cudaError_t e;
  iota_kernel<<<rl_blocks(k), RL_THREADS>>>(vin, k);
  e = cudaGetLastError();
  if (e == cudaSuccess)
    e = cub::DeviceRadixSort::SortPairs(tmp, tmp_bytes, idx, keys, vin, vout, (int)k, 0, bits,
                                        (cudaStream_t)0);
  if (e == cudaSuccess) e = cudaMemsetAsync(seg, 0, 2 * sb, 0);
  if (e == cudaSuccess) {
    segments_kernel<<<rl_blocks(k), RL_THREADS>>>(keys, k, n, seg, seg + n);
    e = cudaGetLastError();
  }
  if (e != cudaSuccess) {
    rc = rl_cuda_fail("index_add (sorting the indices)", e);
  } else {
    int64_t cnt = outer * n * inner;
    switch (dt) {
    case RL_F32: index_add_kernel<float><<<rl_blocks(cnt), RL_THREADS>>>((const float *)x, outer, k, inner, vout, seg, seg + n, n, (float *)y); break;
    case RL_F64: index_add_kernel<double><<<rl_blocks(cnt), RL_THREADS>>>((const double *)x, outer, k, inner, vout, seg, seg + n, n, (double *)y); break;
    case RL_I64: index_add_kernel<int64_t><<<rl_blocks(cnt), RL_THREADS>>>((const int64_t *)x, outer, k, inner, vout, seg, seg + n, n, (int64_t *)y); break;
    case RL_U8: index_add_kernel<uint8_t><<<rl_blocks(cnt), RL_THREADS>>>((const uint8_t *)x, outer, k, inner, vout, seg, seg + n, n, (uint8_t *)y); break;
    default: rc = rl_err("index_add: unknown dtype");
    }
    e = cudaGetLastError();
    if (!rc && e != cudaSuccess) rc = rl_cuda_fail("launch of index_add_kernel", e);
  }
  rl_cuda_scratch_free(buf, total);
  return rc;
}

/* ---- l2 attack step ------------------------------------------------------------------- */

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
