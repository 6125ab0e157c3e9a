/* cuda_common.cuh - what every kernel file of the CUDA backend shares:
 * error checks that become rl_err messages, launch geometry, the scratch
 * allocator, and float/double math by argument type.
 *
 * Every CUDA and cuBLAS call is checked; a failure returns -1 with a
 * message naming the call and cudaGetErrorString's text.  Nothing here
 * aborts.  All work is queued on the legacy default stream, in order, so a
 * block freed to the cache can be handed to the next op at once. */
#ifndef RL_CUDA_COMMON_CUH
#define RL_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "backend.h"
#include "conv_gemm.h"
}

/* The multiprocessors of the device in use, read when it is first used:
 * the split-k GEMMs (rl_split_k_chunks) aim at about 4 waves of blocks on
 * them.  0 before a device is in use, which rl_split_k_chunks reads as
 * "do not split". */
int64_t rl_cuda_sms(void);

/* A failed CUDA call as an rl_err message; returns -1. */
int rl_cuda_fail(const char *call, cudaError_t e);

#define CUDA_TRY(call)                                                        \
  do {                                                                        \
    cudaError_t e_ = (call);                                                  \
    if (e_ != cudaSuccess) return rl_cuda_fail(#call, e_);                    \
  } while (0)

/* After a launch: a bad configuration shows up here, a fault in the kernel
 * at a later synchronising call. */
#define LAUNCH_CHECK(name)                                                    \
  do {                                                                        \
    cudaError_t e_ = cudaGetLastError();                                      \
    if (e_ != cudaSuccess) return rl_cuda_fail("launch of " name, e_);        \
  } while (0)

/* Scratch device memory from the caching allocator (kernels/cuda_backend.cu).
 * Freeing right after queueing the kernels that use it is safe: the block
 * is only handed out again to work queued later on the same stream. */
void *rl_cuda_scratch(size_t nbytes);
void rl_cuda_scratch_free(void *p, size_t nbytes);

/* i64 arithmetic wraps, as on the CPU (engine/cpu/cpu.h) and in PyTorch:
 * done in uint64_t, where overflow is defined, and converted back. */
#define U64(x) ((uint64_t)(x))
#define WRAP(e) ((int64_t)(e))

#define RL_THREADS 256

/* Blocks for a grid-stride loop over n items. */
static inline unsigned rl_blocks(int64_t n, int threads = RL_THREADS) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > (1 << 20)) b = 1 << 20;
  return (unsigned)b;
}

#define GRID_STRIDE(i, n)                                                     \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);   \
       i += (int64_t)gridDim.x * blockDim.x)

/* Whether offsets below a and b fit 32-bit index math (with room for the
 * sums a kernel forms): 64-bit division costs several times more on a GPU. */
static inline bool fits32(int64_t a, int64_t b) {
  return a < INT32_MAX / 2 && b < INT32_MAX / 2;
}

/* Launch KERNEL (a template instance naming IT, in parentheses) on GRID
 * with IT = int32_t when `fits` (32-bit index math), else int64_t; the
 * arguments may use IT too. */
#define RL_LAUNCH_IT(fits, KERNEL, GRID, ...)                                \
  do {                                                                        \
    if (fits) {                                                               \
      typedef int32_t IT;                                                     \
      KERNEL<<<GRID, RL_THREADS>>>(__VA_ARGS__);                              \
    } else {                                                                  \
      typedef int64_t IT;                                                     \
      KERNEL<<<GRID, RL_THREADS>>>(__VA_ARGS__);                              \
    }                                                                         \
  } while (0)

/* Planes (or rows) run along grid y, with a stride when there are more
 * than a grid holds; positions within one along x, in the index type IT. */
#define PLANES(pl, n) for (int64_t pl = blockIdx.y; pl < (n); pl += gridDim.y)
#define IN_PLANE(i, n)                                                        \
  for (IT i = (IT)(blockIdx.x * blockDim.x + threadIdx.x); i < (n);          \
       i += (IT)(gridDim.x * blockDim.x))

static inline dim3 grid2(int64_t per_plane, int64_t planes) {
  int64_t bx = (per_plane + RL_THREADS - 1) / RL_THREADS;
  if (bx > 65535) bx = 65535;
  if (bx < 1) bx = 1;
  return dim3((unsigned)bx, (unsigned)(planes < 65535 ? (planes > 0 ? planes : 1) : 65535));
}

/* ---- block sums and window geometry ------------------------------------ */

/* Sum of v over the block (blockDim.x == RL_THREADS) by a fixed tree; every
 * thread gets the result. */
inline __device__ double block_sum(double v, double *sm) {
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

/* The window geometry of conv and pool kernels (cuda_conv.cu, cuda_pool.cu):
 * the G_* array of backend.h as plain values (the array lives on the host),
 * in the index type of the launch: 32-bit whenever every offset fits, as
 * 64-bit division costs several times more on a GPU. */
template <typename IT> struct Geom {
  IT kh, kw, sh, sw, ph, pw, dh, dw, OH, OW;
};

template <typename IT> static Geom<IT> geom_of(const int64_t *g) {
  Geom<IT> q = {(IT)g[G_KH], (IT)g[G_KW], (IT)g[G_SH], (IT)g[G_SW], (IT)g[G_PH],
                (IT)g[G_PW], (IT)g[G_DH], (IT)g[G_DW], (IT)g[G_OH], (IT)g[G_OW]};
  return q;
}

/* ---- math by argument type ------------------------------------------- */

/* The kernels call libm by its plain name (tanh, exp, pow, ...): CUDA's
 * C++ overloads give tanhf for a float argument and tanh for a double, the
 * same instructions as the suffixed names (the PTX was compared). */

template <typename T> struct is_real { static const bool value = false; };
template <> struct is_real<float> { static const bool value = true; };
template <> struct is_real<double> { static const bool value = true; };

/* bf16 storage, f32 arithmetic: the kernels that take bf16 operands (the
 * GEMM's split-k sums, max pooling, the Winograd transforms) store S and
 * compute in wide_of<S>::type.  f32 and f64 are as they are; uint16_t,
 * which holds bf16 in those kernels, widens exactly to f32 (bf_load) and
 * rounds back once (bf_store). */
template <typename S> struct wide_of { typedef S type; };
template <> struct wide_of<uint16_t> { typedef float type; };
template <typename T> __device__ __forceinline__ T bf_load(const T *p) { return *p; }
__device__ __forceinline__ float bf_load(const uint16_t *p) { return rl_f32_of_bf16(*p); }
template <typename T> __device__ __forceinline__ void bf_store(T *p, T v) { *p = v; }
__device__ __forceinline__ void bf_store(uint16_t *p, float v) { *p = rl_bf16_of_f32(v); }

/* Dispatch on a dtype: BODY sees the type as `T`. */
#define RL_DISPATCH_ALL(dt, ...)                                              \
  switch (dt) {                                                               \
  case RL_F32: { typedef float T; __VA_ARGS__; } break;                       \
  case RL_F64: { typedef double T; __VA_ARGS__; } break;                      \
  case RL_I64: { typedef int64_t T; __VA_ARGS__; } break;                     \
  case RL_U8: { typedef uint8_t T; __VA_ARGS__; } break;                      \
  default: return rl_err("unknown dtype %d", (int)(dt));                      \
  }

#define RL_DISPATCH_FLOAT(opname, dt, ...)                                    \
  switch (dt) {                                                               \
  case RL_F32: { typedef float T; __VA_ARGS__; } break;                       \
  case RL_F64: { typedef double T; __VA_ARGS__; } break;                      \
  default: return rl_err(opname ": not defined for %s", rl_dtype_name(dt));   \
  }

/* Dispatch for kernels that only move elements (copies, selections): the
 * half types too, as their uint16_t bits.  Never for arithmetic: a half
 * value is computed in f32 (rl_f32_of_half, rl_half_of_f32 of core.h),
 * which RL_DISPATCH_ALL and RL_DISPATCH_FLOAT leave to each kernel. */
#define RL_DISPATCH_MOVE(opname, dt, ...)                                     \
  switch (dt) {                                                               \
  case RL_F32: { typedef float T; __VA_ARGS__; } break;                       \
  case RL_F64: { typedef double T; __VA_ARGS__; } break;                      \
  case RL_I64: { typedef int64_t T; __VA_ARGS__; } break;                     \
  case RL_U8: { typedef uint8_t T; __VA_ARGS__; } break;                      \
  case RL_BF16: case RL_F16: { typedef uint16_t T; __VA_ARGS__; } break;      \
  default: return rl_err(opname ": not defined for dtype %d", (int)(dt));     \
  }

/* ---- the kernels of the table ---------------------------------------- */

/* Each signature and its comment are in backend.h; conv2d and conv2d_bwd
 * (cuda_conv.cu) run engine/conv_gemm.c. */
#define RL_CUDA_KERNEL_(k) rl_##k##_kernel rl_cuda_##k;
RL_KERNELS(RL_CUDA_KERNEL_)
#undef RL_CUDA_KERNEL_

#endif
