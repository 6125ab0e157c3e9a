/* cuda_index.cu - index ops along dim 1 of [outer, n, inner]: index_select,
 * gather, scatter_add and index_add.
 *
 * index_add and scatter_add gather instead of scattering: each output
 * element adds its sources in index order, exactly as the CPU does, so a
 * result is the same bits on every run.
 *
 * The half types: index_select and gather move their uint16_t bits; the
 * adds widen both terms to f32 and round each sum to the half type, as the
 * CPU's add_row (engine/cpu/cpu_index.c) does, in the same order. */
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
  case 2: { typedef uint16_t E; __VA_ARGS__; } break; /* bf16, f16 */                 \
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

/* One addition of the running sum acc and a source element s, as the CPU
 * does it: in the type itself (wrapping for the integers), or for the half
 * type H widened to f32 and the sum rounded back at once. */
template <typename T> struct AddIn {
  typedef T S;
  __device__ __forceinline__ T operator()(T acc, T s) const { return (T)(acc + s); }
};
template <rl_dtype H> struct AddHalf {
  typedef uint16_t S;
  __device__ __forceinline__ uint16_t operator()(uint16_t acc, uint16_t s) const {
    return rl_half_of_f32(H, rl_f32_of_half(H, acc) + rl_f32_of_half(H, s));
  }
};

/* Launch KERNEL<A> with the adder A of dtype dt; the arguments may use S,
 * its element type. */
#define ADD_CASE_(D, ADDER, KERNEL, GRID, ...)                                 \
  case D: {                                                                    \
    typedef ADDER A;                                                           \
    typedef A::S S;                                                            \
    KERNEL<A><<<GRID, RL_THREADS>>>(__VA_ARGS__);                              \
  } break;
#define DISPATCH_ADD(opname, dt, KERNEL, GRID, ...)                            \
  switch (dt) {                                                                \
    ADD_CASE_(RL_F32, AddIn<float>, KERNEL, GRID, __VA_ARGS__)                 \
    ADD_CASE_(RL_F64, AddIn<double>, KERNEL, GRID, __VA_ARGS__)                \
    ADD_CASE_(RL_I64, AddIn<int64_t>, KERNEL, GRID, __VA_ARGS__)               \
    ADD_CASE_(RL_U8, AddIn<uint8_t>, KERNEL, GRID, __VA_ARGS__)                \
    ADD_CASE_(RL_BF16, AddHalf<RL_BF16>, KERNEL, GRID, __VA_ARGS__)            \
    ADD_CASE_(RL_F16, AddHalf<RL_F16>, KERNEL, GRID, __VA_ARGS__)              \
  default: return rl_err(opname ": not defined for dtype %d", (int)(dt));      \
  }

/* scatter_add: y[o, idx[o, j, i], i] += x[o, j, i].  A thread per (o, i)
 * column walks j in order, so no two threads write one element and the
 * additions happen in the CPU's order.  Parallel over outer * inner only. */
template <typename A>
__global__ void scatter_add_kernel(const typename A::S *x, int64_t outer, int64_t k,
                                   int64_t inner, const int64_t *idx, int64_t n,
                                   typename A::S *y) {
  A add;
  GRID_STRIDE(e, outer * inner) {
    int64_t o = e / inner, i = e % inner;
    for (int64_t j = 0; j < k; j++) {
      int64_t s = (o * k + j) * inner + i, r = idx[s];
      if (r >= 0 && r < n) {
        typename A::S *d = y + (o * n + r) * inner + i;
        *d = add(*d, x[s]);
      }
    }
  }
}

int rl_cuda_scatter_add(rl_dtype dt, const void *x, int64_t outer, int64_t k, int64_t inner,
                        const int64_t *idx, int64_t n, void *y) {
  if (outer * inner == 0 || k == 0) return 0;
  DISPATCH_ADD("scatter_add", dt, scatter_add_kernel, rl_blocks(outer * inner), (const S *)x,
               outer, k, inner, idx, n, (S *)y);
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

template <typename A>
__global__ void index_add_kernel(const typename A::S *x, int64_t outer, int64_t k,
                                 int64_t inner, const int32_t *pos, const int32_t *start,
                                 const int32_t *end, int64_t n, typename A::S *y) {
  A add;
  GRID_STRIDE(e, outer * n * inner) {
    int64_t i = e % inner, r = (e / inner) % n, o = e / (inner * n);
    int32_t b = start[r], f = end[r];
    if (b >= f) continue;
    typename A::S acc = y[e];
    for (int32_t p = b; p < f; p++) acc = add(acc, x[(o * k + pos[p]) * inner + i]);
    y[e] = acc;
  }
}

/* index_add_kernel for dt (checked by the caller), with seg = [start | end]. */
static int launch_index_add(rl_dtype dt, unsigned blocks, const void *x, int64_t outer,
                            int64_t k, int64_t inner, const int32_t *pos, const int32_t *seg,
                            int64_t n, void *y) {
  DISPATCH_ADD("index_add", dt, index_add_kernel, blocks, (const S *)x, outer, k, inner, pos,
               seg, seg + n, n, (S *)y);
  return 0;
}

int rl_cuda_index_add(rl_dtype dt, const void *x, int64_t outer, int64_t k, int64_t inner,
                      const int64_t *idx, int64_t n, void *y) {
  if (outer * inner == 0 || k == 0 || n == 0) return 0;
  switch (dt) { /* refused before any work is queued */
  case RL_F32: case RL_F64: case RL_I64: case RL_U8: case RL_BF16: case RL_F16: break;
  default: return rl_err("index_add: not defined for dtype %d", (int)dt);
  }
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
    rc = launch_index_add(dt, rl_blocks(cnt), x, outer, k, inner, vout, seg, n, y);
    e = cudaGetLastError();
    if (!rc && e != cudaSuccess) rc = rl_cuda_fail("launch of index_add_kernel", e);
  }
  rl_cuda_scratch_free(buf, total);
  return rc;
}
