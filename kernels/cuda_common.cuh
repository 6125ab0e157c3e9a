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
}

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

/* ---- backend entry points, one per file ------------------------------ */

int rl_cuda_fill(const rl_iter *it, double v);
int rl_cuda_copy(const rl_iter *it);
int rl_cuda_unary(rl_unary_op op, const rl_iter *it, const double *p);
int rl_cuda_binary(rl_binary_op op, const rl_iter *it, double p0);
int rl_cuda_ternary(rl_ternary_op op, const rl_iter *it, const double *p);
int rl_cuda_reduce(rl_reduce_op op, const rl_rediter *r);
int rl_cuda_gemm(rl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                 double alpha, const void *a, int64_t lda, int64_t sa, const void *b,
                 int64_t ldb, int64_t sb, double beta, void *c, int64_t ldc, int64_t sc,
                 int64_t batch);
int rl_cuda_im2col(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H, int64_t W,
                   const int64_t *g, void *col);
int rl_cuda_col2im(rl_dtype dt, const void *col, int64_t nb, int64_t C, int64_t H,
                   int64_t W, const int64_t *g, void *x);
int rl_cuda_wino_weight(rl_dtype dt, const void *w, int64_t O, int64_t C, bool flip, void *U);
int rl_cuda_wino_input(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H,
                       int64_t W, int64_t ph, int64_t pw, int64_t TH, int64_t TW, int64_t nbc,
                       void *V);
int rl_cuda_wino_output(rl_dtype dt, const void *M, int64_t nb, int64_t O, int64_t OH,
                        int64_t OW, int64_t TH, int64_t TW, const void *b, void *y);
int rl_cuda_wino_doutput(rl_dtype dt, const void *dy, int64_t nb, int64_t O, int64_t OH,
                         int64_t OW, int64_t TH, int64_t TW, int64_t nbc, void *dM);
int rl_cuda_wino_dweight(rl_dtype dt, const void *dU, int64_t S, int64_t O, int64_t C,
                         void *dw);
int rl_cuda_maxpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                      const int64_t *g, void *y, int64_t *idx);
int rl_cuda_maxpool2d_bwd(rl_dtype dt, const void *dy, const int64_t *idx, int64_t nc,
                          int64_t H, int64_t W, const int64_t *g, void *dx);
int rl_cuda_avgpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                      const int64_t *g, bool count_pad, void *y);
int rl_cuda_avgpool2d_bwd(rl_dtype dt, const void *dy, int64_t nc, int64_t H, int64_t W,
                          const int64_t *g, bool count_pad, void *dx);
int rl_cuda_bn_stats(rl_dtype dt, const void *x, int64_t N, int64_t C, int64_t S,
                     void *mean, void *var);
int rl_cuda_bn_bwd_reduce(rl_dtype dt, const void *dy, const void *x, const void *mean,
                          int64_t N, int64_t C, int64_t S, void *sum_dy, void *sum_dyxmu);
int rl_cuda_softmax(rl_dtype dt, const void *x, int64_t rows, int64_t cols, bool log,
                    void *y);
int rl_cuda_softmax_bwd(rl_dtype dt, const void *dy, const void *y, int64_t rows,
                        int64_t cols, bool log, void *dx);
int rl_cuda_nll(rl_dtype dt, const void *logp, const int64_t *t, int64_t rows, int64_t cols,
                void *out);
int rl_cuda_nll_bwd(rl_dtype dt, const void *g, int64_t gstride, const int64_t *t,
                    int64_t rows, int64_t cols, void *dlogp);
int rl_cuda_index_select(rl_dtype dt, const void *x, int64_t outer, int64_t n, int64_t inner,
                         const int64_t *idx, int64_t k, void *y);
int rl_cuda_index_add(rl_dtype dt, const void *x, int64_t outer, int64_t k, int64_t inner,
                      const int64_t *idx, int64_t n, void *y);
int rl_cuda_gather(rl_dtype dt, const void *x, int64_t outer, int64_t n, int64_t inner,
                   const int64_t *idx, int64_t k, void *y);
int rl_cuda_scatter_add(rl_dtype dt, const void *x, int64_t outer, int64_t k, int64_t inner,
                        const int64_t *idx, int64_t n, void *y);
int rl_cuda_rng_fill(rl_dtype dt, void *dst, int64_t n, rl_rng_dist dist, uint64_t seed,
                     uint64_t offset, double p0, double p1);
int rl_cuda_l2_step(rl_dtype dt, const void *a, const void *g, const void *c, int64_t B,
                    int64_t D, const double *p, void *out);
int rl_cuda_nearest_other(const uint8_t *q, const int64_t *qlab, int64_t nq, const uint8_t *r,
                          const int64_t *rlab, int64_t nr, int64_t D, int p, bool skip_self,
                          int64_t *dist, int64_t *arg);

#endif
