/* selftest.cu - the CUDA emulator's own checks (make test-cuda-emu runs them
 * before spec/cuda_spec.lua on the emulator).
 *
 * Each case runs in a child process.  A "runs" case must finish and return
 * true: barriers and shuffles give the sums a GPU gives, every thread of a
 * grid runs once with its own indices, cuBLAS's column-major product and
 * its argument checks.  A "stops" case holds a defect of the kind the
 * emulator exists to catch, and must end in a report that names it: if the
 * emulator let one through, what it says of kernels/ would mean nothing.
 *
 * CUDA source: the emulator's build rewrites it like kernels/ (cu2cpp.lua);
 * nvcc would compile it too. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda_mma.cuh"

/* ---- kernels ----------------------------------------------------------------- */

/* Sum of v over the block: a tree through shared memory, then warp
 * butterflies; thread 0 writes it. */
__global__ void block_sum_kernel(const float *x, int n, float *out) {
  __shared__ float sm[256];
  int t = threadIdx.x;
  float v = 0;
  for (int i = t; i < n; i += blockDim.x) v += x[i];
  sm[t] = v;
  __syncthreads();
  for (int s = 128; s >= 32; s >>= 1) {
    if (t < s) sm[t] += sm[t + s];
    __syncthreads();
  }
  if (t < 32) {
    v = sm[t];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (t == 0) *out = v;
  }
}

/* Every thread writes its flat id where its indices say it belongs. */
__global__ void geometry_kernel(int *ids) {
  unsigned bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  ids[bx * per_block + tx] += 1; /* 2 if two threads shared their indices */
}

__global__ void divergent_barrier_kernel(float *x) {
  if (threadIdx.x < 64) __syncthreads();
  else __syncthreads();
  x[threadIdx.x] = 0;
}

__global__ void missing_lane_kernel(float *x) {
  float v = x[threadIdx.x];
  if (threadIdx.x % 2) v += __shfl_xor_sync(0xffffffffu, v, 1);
  x[threadIdx.x] = v;
}

__global__ void read_at_kernel(const float *x, int64_t i, float *out) { *out = x[i]; }

__global__ void nothing_kernel(float *x) { (void)x; }

/* Block 0 fills its shared array; block 1 reads its own without writing:
 * what it finds must be the emulator's 0xff bytes, not block 0's values. */
__global__ void shared_stale_kernel(uint32_t *out) {
  __shared__ uint32_t sm[32];
  if (blockIdx.x == 0) sm[threadIdx.x] = 7;
  else out[threadIdx.x] = sm[threadIdx.x];
}

struct Span {
  const float *p;
  int64_t n;
};

__global__ void span_sum_kernel(Span s, float *out) {
  float v = 0;
  for (int64_t i = 0; i < s.n; i++) v += s.p[i];
  *out = v;
}

__global__ void write_at_kernel(float *x, int64_t i) { x[i] = 1; }

/* Thread t of the 32 records its turn: the order threads ran in. */
__global__ void order_kernel(int *turn, int *seen) {
  int t = threadIdx.x + 32 * blockIdx.x;
  seen[t] = turn[0]++;
}

/* Two groups in one warp, each summing over its 16 lanes with its own mask. */
__global__ void two_groups_kernel(float *x) {
  float v = x[threadIdx.x];
  unsigned mask = threadIdx.x < 16 ? 0x0000ffffu : 0xffff0000u;
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o);
  x[threadIdx.x] = v;
}

/* Two int fields side by side: one word that may look like an address. */
struct IntPair {
  int a, b;
};

__global__ void int_pair_kernel(IntPair p, int *out) { *out = p.a + p.b; }

/* Lanes 0-15 sum over themselves with a 16-lane mask; lanes 16-31 end. */
__global__ void half_warp_kernel(float *x) {
  if (threadIdx.x >= 16) return;
  float v = x[threadIdx.x];
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0x0000ffffu, v, o);
  x[threadIdx.x] = v;
}

__device__ float deep(int d) {
  volatile float pad[1024];
  pad[d % 1024] = (float)d;
  return d == 0 ? pad[0] : deep(d - 1) + pad[d % 1024];
}

__global__ void deep_kernel(float *x) { x[0] = deep(1 << 20); }

/* ---- cases ------------------------------------------------------------------------ */

#define CHECK(c)                                                              \
  do {                                                                        \
    if (!(c)) {                                                               \
      fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__);          \
      return false;                                                           \
    }                                                                         \
  } while (0)

static float *dev_floats(int n, float v) {
  float *h = (float *)malloc(sizeof(float) * n), *d = NULL;
  for (int i = 0; i < n; i++) h[i] = v;
  cudaMalloc((void **)&d, sizeof(float) * n);
  cudaMemcpy(d, h, sizeof(float) * n, cudaMemcpyHostToDevice);
  free(h);
  return d;
}

static bool block_sum(void) {
  const int n = 1000;
  float *x = dev_floats(n, 0.5f), *out = dev_floats(1, 0), r = 0;
  block_sum_kernel<<<1, 256>>>(x, n, out);
  CHECK(cudaGetLastError() == cudaSuccess);
  cudaMemcpy(&r, out, sizeof r, cudaMemcpyDeviceToHost);
  CHECK(r == 500.0f);
  return true;
}

static bool geometry(void) {
  dim3 g(3, 2, 2), b(8, 4, 2);
  int n = 3 * 2 * 2 * 8 * 4 * 2, *d = NULL, *h = (int *)calloc(n, sizeof(int));
  cudaMalloc((void **)&d, sizeof(int) * n);
  cudaMemcpy(d, h, sizeof(int) * n, cudaMemcpyHostToDevice);
  geometry_kernel<<<g, b>>>(d);
  CHECK(cudaGetLastError() == cudaSuccess);
  cudaMemcpy(h, d, sizeof(int) * n, cudaMemcpyDeviceToHost);
  for (int i = 0; i < n; i++) CHECK(h[i] == 1);
  return true;
}

static bool fresh_memory_is_ff(void) {
  uint32_t *d = NULL, h[4];
  cudaMalloc((void **)&d, sizeof h);
  cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 4; i++) CHECK(h[i] == 0xffffffffu);
  return true;
}

static bool shared_is_fresh(void) {
  uint32_t *d = NULL, h[32];
  cudaMalloc((void **)&d, sizeof h);
  shared_stale_kernel<<<2, 32>>>(d);
  cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 32; i++) CHECK(h[i] == 0xffffffffu);
  return true;
}

static bool bad_config(void) {
  float *x = dev_floats(4, 0);
  nothing_kernel<<<1, 2048>>>(x);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(cudaGetLastError() == cudaSuccess);
  nothing_kernel<<<dim3(1, 70000), 32>>>(x);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  return true;
}

/* C (2 x 3) = A^T (A stored 4 x 2, lda 5) B (4 x 3, ldb 4), column-major. */
static bool cublas_product(void) {
  float A[10], B[12], C[6], want[6];
  for (int i = 0; i < 10; i++) A[i] = (float)(i + 1);
  for (int i = 0; i < 12; i++) B[i] = (float)(i % 5) - 1.5f;
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < 2; i++) {
      float s = 0;
      for (int p = 0; p < 4; p++) s += A[i * 5 + p] * B[j * 4 + p];
      want[j * 2 + i] = s;
    }
  float *dA, *dB, *dC;
  cudaMalloc((void **)&dA, sizeof A);
  cudaMalloc((void **)&dB, sizeof B);
  cudaMalloc((void **)&dC, sizeof C);
  cudaMemcpy(dA, A, sizeof A, cudaMemcpyHostToDevice);
  cudaMemcpy(dB, B, sizeof B, cudaMemcpyHostToDevice);
  cublasHandle_t h;
  cublasCreate(&h);
  float one = 1, zero = 0;
  /* C starts as NaN (fresh memory): beta = 0 must not read it */
  CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, 2, 3, 4, &one, dA, 5, dB, 4, &zero, dC, 2) ==
        CUBLAS_STATUS_SUCCESS);
  cudaMemcpy(C, dC, sizeof C, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 6; i++) CHECK(C[i] == want[i]);
  /* lda below the stored rows is refused, as cuBLAS refuses it */
  CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, 2, 3, 4, &one, dA, 3, dB, 4, &zero, dC, 2) ==
        CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 3, 4, &one, dA, CUDA_R_16BF, 2, dB,
                     CUDA_R_32F, 4, &zero, dC, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED);
  return true;
}

/* Two 2 x 2 products, C's matrices `sc` apart, A's `sa`. */
static void two_products(long long sa, long long sc) {
  float *dA = dev_floats(8, 1), *dB = dev_floats(8, 1), *dC = dev_floats(8, 0);
  cublasHandle_t h;
  cublasCreate(&h);
  float one = 1, zero = 0;
  cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dA, 2, sa, dB, 2, 4,
                            &zero, dC, 2, sc, 2);
}

/* A's second matrix 1024 elements on: not in its allocation */
static bool cublas_past_end(void) {
  two_products(1024, 4);
  return true;
}

/* C's two matrices interleaved column by column (ldc 4, 2 apart): legal */
static bool cublas_interleaved_c(void) {
  float *dA = dev_floats(8, 1), *dB = dev_floats(8, 1), *dC = dev_floats(8, 0), h[8];
  cublasHandle_t hd;
  cublasCreate(&hd);
  float one = 1, zero = 0;
  CHECK(cublasSgemmStridedBatched(hd, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dA, 2, 4, dB, 2,
                                  4, &zero, dC, 4, 2, 2) == CUBLAS_STATUS_SUCCESS);
  cudaMemcpy(h, dC, sizeof h, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 8; i++) CHECK(h[i] == 2);
  return true;
}

/* C written over A: A's second matrix is C's first */
static bool cublas_c_overlaps_a(void) {
  float *dA = dev_floats(16, 1), *dB = dev_floats(8, 1);
  cublasHandle_t h;
  cublasCreate(&h);
  float one = 1, zero = 0;
  cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dA, 2, 4, dB, 2, 4,
                            &zero, dA + 4, 2, 4, 2);
  return true;
}

/* both products written to one C */
static bool cublas_c_overlap(void) {
  two_products(4, 0);
  return true;
}

static bool reverse_order(void) {
  int *d = NULL, h[65];
  cudaMalloc((void **)&d, sizeof h);
  memset(h, 0, sizeof h);
  cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice);
  order_kernel<<<2, 32>>>(d, d + 1);
  cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
  /* blocks last first, and in a block the last thread first */
  for (int t = 0; t < 64; t++) CHECK(h[1 + t] == 63 - t);
  return true;
}

/* One m16n8k16 bf16 product on a warp, each lane building its fragments
 * from A [16][16] and B [16][8] (bf16 bits) as the PTX ISA lays them out
 * (kernels/cuda_igemm.cu reads them so), and writing its four sums of D
 * [16][8] back where they belong, through the kernels' own wrapper. */
__global__ void mma_kernel(const uint16_t *A, const uint16_t *B, float *D) {
  int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  uint32_t a[4], b[2];
  for (int i = 0; i < 4; i++) {
    int row = g + (i & 1) * 8, col = 2 * t + (i >> 1) * 8;
    a[i] = A[row * 16 + col] | (uint32_t)A[row * 16 + col + 1] << 16;
  }
  for (int i = 0; i < 2; i++) {
    int k = 2 * t + i * 8;
    b[i] = B[k * 8 + g] | (uint32_t)B[(k + 1) * 8 + g] << 16;
  }
  float d[4];
  for (int i = 0; i < 4; i++) d[i] = D[(g + (i >> 1) * 8) * 8 + 2 * t + (i & 1)];
  rl_mma_16816(d, a, b);
  for (int i = 0; i < 4; i++) D[(g + (i >> 1) * 8) * 8 + 2 * t + (i & 1)] = d[i];
}

static uint16_t bf16_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return (uint16_t)(u >> 16); /* the values below are exact in bf16 */
}

/* D = C + A @ B for small integers (exact in bf16 and in the sums) */
static bool mma_product(void) {
  uint16_t ha[256], hb[128];
  float hc[128], hd[128];
  for (int i = 0; i < 256; i++) ha[i] = bf16_bits((float)((i * 7) % 11 - 5));
  for (int i = 0; i < 128; i++) hb[i] = bf16_bits((float)((i * 5) % 9 - 4));
  for (int i = 0; i < 128; i++) hc[i] = (float)(i % 3);
  uint16_t *a = NULL, *b = NULL;
  float *d = NULL;
  cudaMalloc((void **)&a, sizeof ha);
  cudaMalloc((void **)&b, sizeof hb);
  cudaMalloc((void **)&d, sizeof hc);
  cudaMemcpy(a, ha, sizeof ha, cudaMemcpyHostToDevice);
  cudaMemcpy(b, hb, sizeof hb, cudaMemcpyHostToDevice);
  cudaMemcpy(d, hc, sizeof hc, cudaMemcpyHostToDevice);
  mma_kernel<<<1, 32>>>(a, b, d);
  CHECK(cudaGetLastError() == cudaSuccess);
  cudaMemcpy(hd, d, sizeof hd, cudaMemcpyDeviceToHost);
  for (int m = 0; m < 16; m++)
    for (int n = 0; n < 8; n++) {
      float want = hc[m * 8 + n];
      for (int k = 0; k < 16; k++)
        want += (float)((m * 16 + k) * 7 % 11 - 5) * (float)((k * 8 + n) * 5 % 9 - 4);
      CHECK(hd[m * 8 + n] == want);
    }
  return true;
}

/* ldmatrix.x4 from a shared [32][8] of b16 whose values are their own
 * indices: lane l gives row l (row l % 8 of matrix l / 8) and writes the
 * four words it gets to D[l][0..3]. */
__global__ void ldmatrix_kernel(uint32_t *D) {
  __shared__ __align__(16) uint16_t S[32][8];
  int lane = threadIdx.x & 31;
  for (int j = 0; j < 8; j++) S[lane][j] = (uint16_t)(lane * 8 + j);
  __syncthreads();
  uint32_t r[4];
  rl_ldmatrix_x4(r, &S[lane][0]);
  for (int q = 0; q < 4; q++) D[lane * 4 + q] = r[q];
}

/* lane l's r[q]: matrix q's row l / 4, columns 2 (l % 4) and + 1 */
static bool ldmatrix_layout(void) {
  uint32_t *d = NULL, hd[128];
  cudaMalloc((void **)&d, sizeof hd);
  ldmatrix_kernel<<<1, 32>>>(d);
  CHECK(cudaGetLastError() == cudaSuccess);
  cudaMemcpy(hd, d, sizeof hd, cudaMemcpyDeviceToHost);
  for (int l = 0; l < 32; l++)
    for (int q = 0; q < 4; q++) {
      uint32_t lo = (uint32_t)((q * 8 + l / 4) * 8 + 2 * (l % 4));
      CHECK(hd[l * 4 + q] == (lo | (lo + 1) << 16));
    }
  return true;
}

/* mma.sync in a block of 16 threads: half a warp */
static bool mma_half_warp(void) {
  uint16_t *a = NULL, *b = NULL;
  float *d = NULL;
  cudaMalloc((void **)&a, 512);
  cudaMalloc((void **)&b, 256);
  cudaMalloc((void **)&d, 512);
  cudaMemsetAsync(a, 0, 512);
  cudaMemsetAsync(b, 0, 256);
  cudaMemsetAsync(d, 0, 512);
  mma_kernel<<<1, 16>>>(a, b, d);
  return true;
}

static bool half_warp_shuffle(void) {
  float *x = dev_floats(32, 1), h[32];
  half_warp_kernel<<<1, 32>>>(x);
  CHECK(cudaGetLastError() == cudaSuccess);
  cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 16; i++) CHECK(h[i] == 16);
  for (int i = 16; i < 32; i++) CHECK(h[i] == 1);
  return true;
}

static bool two_shuffle_groups(void) {
  float h[32], *x = NULL;
  for (int i = 0; i < 32; i++) h[i] = i < 16 ? 1.0f : 2.0f;
  cudaMalloc((void **)&x, sizeof h);
  cudaMemcpy(x, h, sizeof h, cudaMemcpyHostToDevice);
  two_groups_kernel<<<1, 32>>>(x);
  cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 32; i++) CHECK(h[i] == (i < 16 ? 16.0f : 32.0f));
  return true;
}

/* b << 32 | a lands in the device range (2^45): still two ints */
static bool int_pair_argument(void) {
  int *out = NULL, r = 0;
  cudaMalloc((void **)&out, sizeof r);
  IntPair p = {70000, 8192};
  int_pair_kernel<<<1, 1>>>(p, out);
  cudaMemcpy(&r, out, sizeof r, cudaMemcpyDeviceToHost);
  CHECK(r == 78192);
  return true;
}

static bool write_before_start(void) {
  float *x = dev_floats(100, 0);
  write_at_kernel<<<1, 1>>>(x, -3);
  return true;
}

static bool struct_host_pointer(void) {
  float h[4] = {1, 2, 3, 4}, *out = dev_floats(1, 0);
  Span sp = {h, 4};
  span_sum_kernel<<<1, 1>>>(sp, out);
  return true;
}

static bool write_in_slack(void) {
  float *x = dev_floats(100, 0);
  write_at_kernel<<<1, 1>>>(x, 101); /* inside the 256-byte rounding */
  return true;
}

static bool stack_overflow(void) {
  float *x = dev_floats(1, 0);
  deep_kernel<<<1, 1>>>(x);
  return true;
}

static bool divergent_barrier(void) {
  float *x = dev_floats(256, 0);
  divergent_barrier_kernel<<<1, 256>>>(x);
  return true;
}

static bool missing_lane(void) {
  float *x = dev_floats(32, 1);
  missing_lane_kernel<<<1, 32>>>(x);
  return true;
}

static bool read_past_end(void) {
  float *x = dev_floats(100, 0), *out = dev_floats(1, 0);
  read_at_kernel<<<1, 1>>>(x, 100 + 1024, out);
  return true;
}

static bool read_after_free(void) {
  float *x = dev_floats(100, 0), *out = dev_floats(1, 0);
  cudaFree(x);
  read_at_kernel<<<1, 1>>>(x, 0, out);
  return true;
}

static bool host_pointer_argument(void) {
  float h[4] = {0, 0, 0, 0}, *out = dev_floats(1, 0);
  read_at_kernel<<<1, 1>>>(h, 0, out);
  return true;
}

static bool host_reads_device(void) {
  float *x = dev_floats(4, 2);
  volatile float v = x[1];
  (void)v;
  return true;
}

static bool memcpy_wrong_kind(void) {
  float h[4], *x = dev_floats(4, 2);
  cudaMemcpy(x, h, sizeof h, cudaMemcpyDeviceToHost);
  return true;
}

struct Case {
  const char *name;
  bool (*fn)(void);
  const char *stops_with; /* NULL: must run to the end */
  const char *env;        /* set for the case's process */
};

static const Case cases[] = {
    {"block_sum", block_sum, NULL},
    {"geometry", geometry, NULL},
    {"fresh_memory_is_ff", fresh_memory_is_ff, NULL},
    {"shared_is_fresh", shared_is_fresh, NULL},
    {"bad_config", bad_config, NULL},
    {"cublas_product", cublas_product, NULL},
    {"cublas_past_end", cublas_past_end, "cublasSgemmStridedBatched's A"},
    {"cublas_interleaved_c", cublas_interleaved_c, NULL},
    {"cublas_c_overlap", cublas_c_overlap, "the matrices of C overlap"},
    {"reverse_order", reverse_order, NULL, "RL_EMU_ORDER=reverse"},
    {"half_warp_shuffle", half_warp_shuffle, NULL},
    {"mma_product", mma_product, NULL},
    {"mma_half_warp", mma_half_warp, "takes a whole warp"},
    {"ldmatrix_layout", ldmatrix_layout, NULL},
    {"two_shuffle_groups", two_shuffle_groups, NULL},
    {"int_pair_argument", int_pair_argument, NULL},
    {"write_before_start", write_before_start, "wrote 12 bytes before an allocation of 400"},
    {"cublas_c_overlaps_a", cublas_c_overlaps_a, "C overlaps A"},
    {"struct_host_pointer", struct_host_pointer, "host memory, which a kernel cannot read"},
    {"write_in_slack", write_in_slack, "wrote 4 bytes past the end of an allocation of 400"},
    {"stack_overflow", stack_overflow, "overflowed its 256 KiB stack"},
    {"divergent_barrier", divergent_barrier, "wait at different __syncthreads"},
    {"missing_lane", missing_lane, "which does not take part"},
    {"read_past_end", read_past_end, "past the end of an allocation of 400 bytes"},
    {"read_after_free", read_after_free, "since freed"},
    {"host_pointer_argument", host_pointer_argument, "which is not device memory"},
    {"host_reads_device", host_reads_device, "host code dereferenced device memory"},
    {"memcpy_wrong_kind", memcpy_wrong_kind, "cudaMemcpyDeviceToHost from host memory"},
};

int main(int argc, char **argv) {
  int nc = (int)(sizeof cases / sizeof cases[0]);
  if (argc == 2) {
    for (int i = 0; i < nc; i++)
      if (!strcmp(argv[1], cases[i].name)) return cases[i].fn() ? 0 : 1;
    fprintf(stderr, "no case %s\n", argv[1]);
    return 2;
  }
  int passed = 0, failed = 0;
  for (int i = 0; i < nc; i++) {
    char cmd[512], out[8192];
    snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", cases[i].env ? cases[i].env : "", argv[0],
             cases[i].name);
    FILE *p = popen(cmd, "r");
    size_t len = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[len] = 0;
    int st = p ? pclose(p) : -1;
    bool exited0 = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    bool ok = cases[i].stops_with ? !exited0 && strstr(out, cases[i].stops_with) != NULL
                                  : exited0;
    printf("%-4s %-22s %s\n", ok ? "ok" : "FAIL", cases[i].name,
           cases[i].stops_with ? cases[i].stops_with : "runs to the end");
    if (!ok) printf("     its output:\n%s\n", out);
    ok ? passed++ : failed++;
  }
  printf("emulator self-test: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
