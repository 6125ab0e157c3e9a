/* cuda_index.cu - index ops along dim 1 of [outer, n, inner]: index_select,
 * gather, scatter_add and index_add.
 *
 * index_add and scatter_add gather instead of scattering: each output
 * element adds its sources in index order, exactly as the CPU does, so a
 * result is the same bits on every run. */
#include <cub/device/device_radix_sort.cuh>

#include "cuda_common.cuh"

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
