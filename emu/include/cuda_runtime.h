/* cuda_runtime.h - the part of the CUDA runtime that kernels/ uses, for the
 * host emulator (emu/runtime.cpp; `make test-cuda-emu`).
 *
 * The .cu files of kernels/ are compiled by g++ as C++ against this header
 * after emu/cu2cpp.lua has rewritten each launch `k<<<grid, block>>>(args)` as
 * `rl_emu::launch<k>(grid, block)(args)`.  A launch runs every thread of
 * the grid on the calling thread, blocks in order, the threads of a block
 * as fibers that meet at __syncthreads and at warp shuffles.  Device memory
 * is host memory the emulator keeps inaccessible except while a kernel, a
 * copy or an emulated cuBLAS call runs, so host code that dereferences a
 * device pointer stops with a report instead of reading it.
 *
 * What this proves and what it cannot: see emu/runtime.cpp. */
#ifndef RL_EMU_CUDA_RUNTIME_H
#define RL_EMU_CUDA_RUNTIME_H

#ifndef __cplusplus
#error "the CUDA emulator is C++"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

/* ---- qualifiers --------------------------------------------------------- */

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* Blocks run one after another on one host thread, so one static object
 * per kernel instance serves every block in turn. */
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

/* ---- types ---------------------------------------------------------------- */

struct uint3 {
  unsigned x, y, z;
};
/* the vector type kernels load 16 bytes at a time with */
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchFailure = 719,
};
typedef cudaError_t cudaError;

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;

/* the runtime the emulator stands for (a timing's cache key names it) */
#define CUDART_VERSION 0

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor;
  int multiProcessorCount;
  int warpSize;
  int maxThreadsPerBlock;
};

enum cudaDataType_t {
  CUDA_R_32F = 0,
  CUDA_R_64F = 1,
  CUDA_R_16F = 2,
  CUDA_R_16BF = 14,
};

/* ---- runtime API ------------------------------------------------------------ */

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDevice(int *dev);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemGetInfo(size_t *free_, size_t *total);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t s = 0);
cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s = 0);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);

/* ---- the emulator's side of kernels ------------------------------------------ */

namespace rl_emu {

/* The built-in variables of the running thread. */
extern uint3 thread_idx, block_idx;
extern dim3 block_dim, grid_dim;

/* Run `body(ctx)` once per thread of the grid; `name` names the kernel in
 * reports.  A bad configuration sets the last error, as a launch does. */
void run_grid(const char *name, dim3 grid, dim3 block, size_t smem, void (*body)(void *),
              void *ctx);
/* A kernel's pointer argument must be NULL or point into (or just past) a
 * live device allocation; anything else stops with a report. */
void check_arg(const char *kernel, int index, const void *p);
/* A struct argument: no 8-byte word of it may be a host address, and a
 * device address in it must be as check_arg wants. */
void check_words(const char *kernel, int index, const void *p, size_t n);
/* __syncthreads at file:line, and the exchange of a warp shuffle (8 bytes
 * per lane) there. */
void sync_block(const char *file, int line);
uint64_t shfl_xor(unsigned mask, uint64_t v, int lane_mask, int width, const char *file,
                  int line);

/* mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, d += a @ b: the
 * whole warp takes part, each lane giving its fragments as the PTX ISA
 * lays them out (a: 4 registers of 2 bf16, b: 2, d: 4 floats).  The
 * products are exact and summed in f64, then rounded once to f32 with the
 * accumulator; a GPU sums in its own order and precision, so results
 * agree with it to f32 rounding, not bit for bit. */
void mma_bf16_16816(float *d, const uint32_t *a, const uint32_t *b, const char *file, int line);

/* ldmatrix.sync.aligned.m8n8.x4.shared.b16: the whole warp takes part,
 * lane l giving the address of row l % 8 of matrix l / 8 (8 b16, 16
 * bytes, 16-byte aligned); lane l gets in r[q] the pair of matrix q's row
 * l / 4 at columns 2 (l % 4) and 2 (l % 4) + 1, low half first, as the
 * PTX ISA lays out a fragment. */
void ldmatrix_x4(uint32_t *r, const void *p, const char *file, int line);

/* Fill a block's shared array with 0xff bytes, once per block: the
 * declaration's rewrite (cu2cpp.lua) calls it in every thread. */
void shared_fresh(void *p, size_t n);

/* The kernel's name, from the template argument's spelling in
 * __PRETTY_FUNCTION__ ("... [with auto F = nll_kernel<float>; ...]"). */
const char *kernel_name(const char *pretty);

template <typename P> inline void check_one(const char *k, int i, const P &v) {
  if constexpr (std::is_pointer<P>::value) check_arg(k, i, (const void *)v);
  else if constexpr (std::is_class<P>::value) check_words(k, i, &v, sizeof v);
}

template <auto F, typename Sig> struct Bound;
template <auto F, typename... P> struct Bound<F, void (*)(P...)> {
  dim3 g, b;
  size_t smem;
  /* the arguments convert to the kernel's parameters at the launch, as
   * they do for a kernel launch (NULL included), and are copied */
  void operator()(P... a) {
    static const char *name = kernel_name(__PRETTY_FUNCTION__);
    std::tuple<typename std::decay<P>::type...> args(a...);
    int i = 0;
    std::apply([&](const auto &...v) { (check_one(name, i++, v), ...); }, args);
    auto call = [&]() { std::apply(F, args); };
    run_grid(name, g, b, smem, [](void *c) { (*(decltype(call) *)c)(); }, &call);
  }
};

template <auto F> Bound<F, decltype(F)> launch(dim3 g, dim3 b, size_t smem = 0,
                                               cudaStream_t s = 0) {
  (void)s;
  return Bound<F, decltype(F)>{g, b, smem};
}

} // namespace rl_emu

#define threadIdx rl_emu::thread_idx
#define blockIdx rl_emu::block_idx
#define blockDim rl_emu::block_dim
#define gridDim rl_emu::grid_dim

/* The call's place names the barrier: every thread of a block must wait at
 * the same one (CUDA's rule for __syncthreads in conditional code). */
inline void __syncthreads(const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  rl_emu::sync_block(file, line);
}

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                         const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  static_assert(sizeof(T) <= 8, "a shuffle moves at most 8 bytes");
  uint64_t w = 0;
  memcpy(&w, &v, sizeof(T));
  w = rl_emu::shfl_xor(mask, w, lane_mask, width, file, line);
  T r;
  memcpy(&r, &w, sizeof(T));
  return r;
}

/* ---- integer intrinsics, per the CUDA Math API ----------------------------- */

/* Byte-wise |a - b| of unsigned bytes. */
inline unsigned __vabsdiffu4(unsigned a, unsigned b) {
  unsigned r = 0;
  for (int i = 0; i < 32; i += 8) {
    unsigned x = (a >> i) & 0xff, y = (b >> i) & 0xff;
    r |= (x > y ? x - y : y - x) << i;
  }
  return r;
}
/* Byte-wise max of unsigned bytes. */
inline unsigned __vmaxu4(unsigned a, unsigned b) {
  unsigned r = 0;
  for (int i = 0; i < 32; i += 8) {
    unsigned x = (a >> i) & 0xff, y = (b >> i) & 0xff;
    r |= (x > y ? x : y) << i;
  }
  return r;
}
/* Four-way byte dot product plus c: unsigned bytes here, signed below. */
inline unsigned __dp4a(unsigned a, unsigned b, unsigned c) {
  for (int i = 0; i < 32; i += 8) c += ((a >> i) & 0xff) * ((b >> i) & 0xff);
  return c;
}
inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 32; i += 8) c += (int)(int8_t)(a >> i) * (int)(int8_t)(b >> i);
  return c;
}

/* CUDA's integer min and max overloads (the float ones come from math.h). */
#define RL_EMU_MINMAX(T)                                                      \
  inline T min(T a, T b) { return a < b ? a : b; }                            \
  inline T max(T a, T b) { return a > b ? a : b; }
RL_EMU_MINMAX(int)
RL_EMU_MINMAX(unsigned)
RL_EMU_MINMAX(long)
RL_EMU_MINMAX(unsigned long)
RL_EMU_MINMAX(long long)
RL_EMU_MINMAX(unsigned long long)
#undef RL_EMU_MINMAX

#endif
