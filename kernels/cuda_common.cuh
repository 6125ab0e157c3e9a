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

/* Multiprocessors of the GPUs these kernels are tuned for (H100 SXM and
 * H200 have 132): the split-k GEMMs (rl_split_k_chunks) aim at about 4
 * waves of blocks on them. */
#define RL_CUDA_SMS 132

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

#define RL_M1(name, ff, df)                                                   \
  __device__ __forceinline__ float name(float x) { return ff(x); }            \
  __device__ __forceinline__ double name(double x) { return df(x); }
RL_M1(m_exp, expf, exp)
RL_M1(m_log, logf, log)
RL_M1(m_sqrt, sqrtf, sqrt)
RL_M1(m_tanh, tanhf, tanh)
RL_M1(m_fabs, fabsf, fabs)
RL_M1(m_floor, floorf, floor)
RL_M1(m_ceil, ceilf, ceil)
RL_M1(m_rint, rintf, rint)
RL_M1(m_log1p, log1pf, log1p)
RL_M1(m_expm1, expm1f, expm1)
RL_M1(m_sin, sinf, sin)
RL_M1(m_cos, cosf, cos)
#undef RL_M1
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float m_fmod(float x, float y) { return fmodf(x, y); }
__device__ __forceinline__ double m_fmod(double x, double y) { return fmod(x, y); }

template <typename T> struct is_real { static const bool value = false; };
template <> struct is_real<float> { static const bool value = true; };
template <> struct is_real<double> { static const bool value = true; };

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

/* ---- the kernels of the table ---------------------------------------- */

/* Each signature and its comment are in backend.h; conv2d and conv2d_bwd
 * (cuda_conv.cu) run engine/conv_gemm.c. */
rl_fill_kernel rl_cuda_fill;
rl_copy_kernel rl_cuda_copy;
rl_unary_kernel rl_cuda_unary;
rl_binary_kernel rl_cuda_binary;
rl_ternary_kernel rl_cuda_ternary;
rl_reduce_kernel rl_cuda_reduce;
rl_gemm_kernel rl_cuda_gemm;
rl_conv2d_kernel rl_cuda_conv2d;
rl_conv2d_bwd_kernel rl_cuda_conv2d_bwd;
rl_im2col_kernel rl_cuda_im2col;
rl_col2im_kernel rl_cuda_col2im;
rl_wino_weight_kernel rl_cuda_wino_weight;
rl_wino_input_kernel rl_cuda_wino_input;
rl_wino_output_kernel rl_cuda_wino_output;
rl_wino_doutput_kernel rl_cuda_wino_doutput;
rl_wino_dweight_kernel rl_cuda_wino_dweight;
rl_maxpool2d_kernel rl_cuda_maxpool2d;
rl_maxpool2d_bwd_kernel rl_cuda_maxpool2d_bwd;
rl_avgpool2d_kernel rl_cuda_avgpool2d;
rl_avgpool2d_bwd_kernel rl_cuda_avgpool2d_bwd;
rl_bn_stats_kernel rl_cuda_bn_stats;
rl_bn_bwd_reduce_kernel rl_cuda_bn_bwd_reduce;
rl_softmax_kernel rl_cuda_softmax;
rl_softmax_bwd_kernel rl_cuda_softmax_bwd;
rl_nll_kernel rl_cuda_nll;
rl_nll_bwd_kernel rl_cuda_nll_bwd;
rl_index_select_kernel rl_cuda_index_select;
rl_index_add_kernel rl_cuda_index_add;
rl_gather_kernel rl_cuda_gather;
rl_scatter_add_kernel rl_cuda_scatter_add;
rl_rng_fill_kernel rl_cuda_rng_fill;
rl_linf_step_kernel rl_cuda_linf_step;
rl_l2_step_kernel rl_cuda_l2_step;
rl_nearest_other_kernel rl_cuda_nearest_other;

#endif
