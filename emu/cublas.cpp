/* cublas.cpp - the cuBLAS GEMMs and the cub sort kernels/ calls, for the
 * host emulator (emu/runtime.cpp).
 *
 * Each call first checks its arguments the way cuBLAS documents them: a
 * failure returns the status cuBLAS returns (CUBLAS_STATUS_INVALID_VALUE,
 * CUBLAS_STATUS_NOT_SUPPORTED), so kernels/cuda_blas.cu's error path runs.
 * Then every matrix, with its leading dimension and batch stride, must lie
 * inside one live device allocation (else the run stops with a report);
 * that is what makes a wrong lda or stride visible here.  The product is
 * the host BLAS's in column-major order, as cuBLAS defines it: f32 and f64
 * directly; TF32 math rounds A and B to TF32 first; bf16 operands widen
 * exactly to f32, and a bf16 C is rounded once at the end.  beta == 0
 * leaves C unread, as in cuBLAS.  The bits of the sums are the host
 * BLAS's, not cuBLAS's: only a GPU run compares those. */
#include <cblas.h>
#include <cub/device/device_radix_sort.cuh>
#include <cublas_v2.h>
#include <stdlib.h>

#include <algorithm>
#include <vector>

#include "emu.h"

extern "C" {
#include "core.h"
}

struct cublasContext {
  cublasPointerMode_t pointer_mode;
  int math_mode;
};

cublasStatus_t cublasCreate(cublasHandle_t *h) {
  *h = new cublasContext{CUBLAS_POINTER_MODE_HOST, CUBLAS_DEFAULT_MATH};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  (void)s;
  return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t m) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->pointer_mode = m;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetAtomicsMode(cublasHandle_t h, cublasAtomicsMode_t m) {
  (void)m;
  return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->math_mode = (int)m;
  return CUBLAS_STATUS_SUCCESS;
}

namespace {

enum Elem { E_F32, E_F64, E_BF16 };

size_t elem_size(Elem e) { return e == E_F64 ? 8 : e == E_F32 ? 4 : 2; }

struct Gemm {
  const char *call;
  cublasHandle_t h;
  cublasOperation_t ta, tb;
  int m, n, k;
  const void *alpha, *beta; /* float (f32, bf16) or double (f64) */
  const void *A, *B;
  void *C;
  Elem ab, c;
  int lda, ldb, ldc;
  long long sa, sb, sc;
  int batch;
  bool tf32;
};

/* Elements from the first to one past the last of a rows x cols
 * column-major matrix with leading dimension ld, over `batch` matrices
 * `stride` apart (0 when it holds none). */
size_t extent(int rows, int cols, int ld, long long stride, int batch) {
  if (rows == 0 || cols == 0 || batch == 0) return 0;
  return (size_t)(cols - 1) * ld + rows + (size_t)(batch - 1) * (size_t)stride;
}

/* Round an f32 to TF32 (10 stored mantissa bits), to nearest, ties away
 * from zero, as the tensor cores' conversion does. */
float to_tf32(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  memcpy(&x, &u, 4);
  return x;
}

/* One matrix of A or B as f32, column-major with the same leading
 * dimension (rows x cols as stored). */
std::vector<float> widen(const void *p, Elem e, int rows, int cols, int ld, bool tf32) {
  std::vector<float> w((size_t)ld * cols);
  for (int j = 0; j < cols; j++)
    for (int i = 0; i < rows; i++) {
      size_t o = (size_t)j * ld + i;
      float v = e == E_BF16 ? rl_f32_of_bf16(((const uint16_t *)p)[o]) : ((const float *)p)[o];
      w[o] = tf32 ? to_tf32(v) : v;
    }
  return w;
}

/* A matrix as it lies in memory: batch matrices of rows x cols (as
 * stored, column-major), ld apart by column, stride apart by matrix. */
struct Mat {
  uintptr_t base;
  size_t es;
  int rows, cols, ld;
  long long stride;
  int batch;
  uintptr_t lo() const { return base; }
  uintptr_t hi() const { return base + es * extent(rows, cols, ld, stride, batch); }
};

/* f(byte offset from x's base) for every element of x. */
template <typename F> void each_elem(const Mat &x, F f) {
  for (int b = 0; b < x.batch; b++)
    for (int j = 0; j < x.cols; j++)
      for (int i = 0; i < x.rows; i++)
        f(x.es * ((size_t)b * (size_t)x.stride + (size_t)j * x.ld + i));
}

/* What C's elements collide with, or NULL.  Disjoint extents settle it at
 * once; otherwise a bitmap of the bytes (spans up to 64 MiB; beyond, the
 * call is not checked). */
const char *c_clash(const Mat &a, const Mat &b, const Mat &c) {
  size_t one = extent(c.rows, c.cols, c.ld, 0, 1);
  bool c_self = c.batch > 1 && (size_t)c.stride < one;
  bool with_a = c.lo() < a.hi() && a.lo() < c.hi(), with_b = c.lo() < b.hi() && b.lo() < c.hi();
  if (!c_self && !with_a && !with_b) return NULL;
  /* the bytes of C and of what overlaps it, nothing else */
  uintptr_t lo = c.lo(), hi = c.hi();
  if (with_a) lo = std::min(lo, a.lo()), hi = std::max(hi, a.hi());
  if (with_b) lo = std::min(lo, b.lo()), hi = std::max(hi, b.hi());
  if (hi - lo > ((size_t)64 << 20)) return NULL;
  std::vector<bool> used(hi - lo);
  const char *clash = NULL;
  each_elem(c, [&](size_t o) {
    for (size_t k = 0; k < c.es; k++) {
      size_t at = c.base - lo + o + k;
      if (used[at]) clash = "the matrices of C overlap";
      used[at] = true;
    }
  });
  if (clash) return clash;
  auto reads = [&](const Mat &x) {
    bool hit = false;
    each_elem(x, [&](size_t o) {
      for (size_t k = 0; k < x.es; k++) hit = hit || used[x.base - lo + o + k];
    });
    return hit;
  };
  if (with_a && reads(a)) return "C overlaps A";
  if (with_b && reads(b)) return "C overlaps B";
  return NULL;
}

cublasStatus_t run(const Gemm &g) {
  if (!g.h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (g.h->pointer_mode != CUBLAS_POINTER_MODE_HOST)
    rl_emu::die("%s: device pointer mode is not emulated", g.call);
  bool ta = g.ta != CUBLAS_OP_N, tb = g.tb != CUBLAS_OP_N;
  int ar = ta ? g.k : g.m, ac = ta ? g.m : g.k; /* A as stored */
  int br = tb ? g.n : g.k, bc = tb ? g.k : g.n;
  if ((g.ta != CUBLAS_OP_N && g.ta != CUBLAS_OP_T && g.ta != CUBLAS_OP_C) ||
      (g.tb != CUBLAS_OP_N && g.tb != CUBLAS_OP_T && g.tb != CUBLAS_OP_C) || g.m < 0 ||
      g.n < 0 || g.k < 0 || g.batch < 0 || g.lda < std::max(1, ar) || g.ldb < std::max(1, br) ||
      g.ldc < std::max(1, g.m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (g.m == 0 || g.n == 0 || g.batch == 0) return CUBLAS_STATUS_SUCCESS;
  /* host pointer mode: alpha and beta are host memory, read here */
  if (rl_emu::is_device(g.alpha) || rl_emu::is_device(g.beta))
    rl_emu::die("%s: alpha or beta is a device pointer in host pointer mode", g.call);
  double al64 = g.ab == E_F64 ? *(const double *)g.alpha : *(const float *)g.alpha;
  double be64 = g.ab == E_F64 ? *(const double *)g.beta : *(const float *)g.beta;
  size_t es = elem_size(g.ab), cs = elem_size(g.c);
  /* C is written: no element of it may be another of C's, or one of A's
   * or B's (interleaved batches are fine) */
  Mat ma = {(uintptr_t)g.A, es, ar, ac, g.lda, g.sa, g.batch};
  Mat mb = {(uintptr_t)g.B, es, br, bc, g.ldb, g.sb, g.batch};
  Mat mc = {(uintptr_t)g.C, cs, g.m, g.n, g.ldc, g.sc, g.batch};
  const char *clash = c_clash(ma, mb, mc);
  if (clash) rl_emu::die("%s: %s, which cuBLAS leaves undefined", g.call, clash);
  rl_emu::begin_device(g.call);
  char what[160];
  snprintf(what, sizeof what, "%s's A", g.call);
  rl_emu::need_range(what, g.A, ma.hi() - ma.lo());
  snprintf(what, sizeof what, "%s's B", g.call);
  rl_emu::need_range(what, g.B, mb.hi() - mb.lo());
  snprintf(what, sizeof what, "%s's C", g.call);
  rl_emu::need_range(what, g.C, mc.hi() - mc.lo());
  CBLAS_TRANSPOSE ota = ta ? CblasTrans : CblasNoTrans, otb = tb ? CblasTrans : CblasNoTrans;
  for (int b = 0; b < g.batch; b++) {
    if (g.ab == E_F64) {
      double al = al64, be = be64;
      const double *A = (const double *)g.A + b * g.sa, *B = (const double *)g.B + b * g.sb;
      double *C = (double *)g.C + b * g.sc;
      if (be == 0)
        for (int j = 0; j < g.n; j++) memset(C + (size_t)j * g.ldc, 0, sizeof(double) * g.m);
      cblas_dgemm(CblasColMajor, ota, otb, g.m, g.n, g.k, al, A, g.lda, B, g.ldb, be, C, g.ldc);
      continue;
    }
    float al = (float)al64, be = (float)be64;
    const char *A = (const char *)g.A + es * b * g.sa, *B = (const char *)g.B + es * b * g.sb;
    char *C = (char *)g.C + cs * b * g.sc;
    std::vector<float> wa, wb, wc;
    const float *fa = (const float *)A, *fb = (const float *)B;
    if (g.ab == E_BF16 || g.tf32) {
      wa = widen(A, g.ab, ar, ac, g.lda, g.tf32);
      wb = widen(B, g.ab, br, bc, g.ldb, g.tf32);
      fa = wa.data();
      fb = wb.data();
    }
    float *fc = (float *)C;
    int ldc = g.ldc;
    if (g.c == E_BF16) {
      wc.assign((size_t)g.m * g.n, 0.0f);
      if (be != 0)
        for (int j = 0; j < g.n; j++)
          for (int i = 0; i < g.m; i++)
            wc[(size_t)j * g.m + i] = rl_f32_of_bf16(((uint16_t *)C)[(size_t)j * g.ldc + i]);
      fc = wc.data();
      ldc = g.m;
    } else if (be == 0) {
      for (int j = 0; j < g.n; j++) memset(fc + (size_t)j * ldc, 0, sizeof(float) * g.m);
    }
    cblas_sgemm(CblasColMajor, ota, otb, g.m, g.n, g.k, al, fa, g.lda, fb, g.ldb, be, fc, ldc);
    if (g.c == E_BF16)
      for (int j = 0; j < g.n; j++)
        for (int i = 0; i < g.m; i++)
          ((uint16_t *)C)[(size_t)j * g.ldc + i] = rl_bf16_of_f32(wc[(size_t)j * g.m + i]);
  }
  rl_emu::end_device();
  return CUBLAS_STATUS_SUCCESS;
}

bool tf32_mode(cublasHandle_t h) {
  return h && (h->math_mode & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH;
}

/* The element types of a GemmEx call, or false for a combination cuBLAS
 * does not offer with that compute type (only those kernels/ may use). */
bool ex_types(cudaDataType_t at, cudaDataType_t bt, cudaDataType_t ct,
              cublasComputeType_t compute, Elem *ab, Elem *c) {
  if (at != bt || (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32))
    return false;
  if (at == CUDA_R_16BF && (ct == CUDA_R_16BF || ct == CUDA_R_32F)) {
    *ab = E_BF16;
    *c = ct == CUDA_R_16BF ? E_BF16 : E_F32;
    return compute == CUBLAS_COMPUTE_32F;
  }
  if (at == CUDA_R_32F && ct == CUDA_R_32F) {
    *ab = *c = E_F32;
    return true;
  }
  return false;
}

} // namespace

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *A, int lda,
                           const float *B, int ldb, const float *beta, float *C, int ldc) {
  return run({"cublasSgemm", h, ta, tb, m, n, k, alpha, beta, A, B, C, E_F32, E_F32, lda, ldb,
              ldc, 0, 0, 0, 1, tf32_mode(h)});
}

cublasStatus_t cublasDgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const double *alpha, const double *A, int lda,
                           const double *B, int ldb, const double *beta, double *C, int ldc) {
  return run({"cublasDgemm", h, ta, tb, m, n, k, alpha, beta, A, B, C, E_F64, E_F64, lda, ldb,
              ldc, 0, 0, 0, 1, false});
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                         cublasOperation_t tb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda,
                                         long long sa, const float *B, int ldb, long long sb,
                                         const float *beta, float *C, int ldc, long long sc,
                                         int batch) {
  return run({"cublasSgemmStridedBatched", h, ta, tb, m, n, k, alpha, beta, A, B, C, E_F32,
              E_F32, lda, ldb, ldc, sa, sb, sc, batch, tf32_mode(h)});
}

cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                         cublasOperation_t tb, int m, int n, int k,
                                         const double *alpha, const double *A, int lda,
                                         long long sa, const double *B, int ldb, long long sb,
                                         const double *beta, double *C, int ldc, long long sc,
                                         int batch) {
  return run({"cublasDgemmStridedBatched", h, ta, tb, m, n, k, alpha, beta, A, B, C, E_F64,
              E_F64, lda, ldb, ldc, sa, sb, sc, batch, false});
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType_t at,
                            int lda, const void *B, cudaDataType_t bt, int ldb, const void *beta,
                            void *C, cudaDataType_t ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo) {
  (void)algo;
  Elem ab, c;
  if (!ex_types(at, bt, ct, compute, &ab, &c)) return CUBLAS_STATUS_NOT_SUPPORTED;
  bool tf = ab == E_F32 && (tf32_mode(h) || compute == CUBLAS_COMPUTE_32F_FAST_TF32);
  return run({"cublasGemmEx", h, ta, tb, m, n, k, alpha, beta, A, B, C, ab, c, lda, ldb, ldc, 0,
              0, 0, 1, tf});
}

cublasStatus_t cublasGemmStridedBatchedEx(
    cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
    const void *alpha, const void *A, cudaDataType_t at, int lda, long long sa, const void *B,
    cudaDataType_t bt, int ldb, long long sb, const void *beta, void *C, cudaDataType_t ct,
    int ldc, long long sc, int batch, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
  (void)algo;
  Elem ab, c;
  if (!ex_types(at, bt, ct, compute, &ab, &c)) return CUBLAS_STATUS_NOT_SUPPORTED;
  bool tf = ab == E_F32 && (tf32_mode(h) || compute == CUBLAS_COMPUTE_32F_FAST_TF32);
  return run({"cublasGemmStridedBatchedEx", h, ta, tb, m, n, k, alpha, beta, A, B, C, ab, c, lda,
              ldb, ldc, sa, sb, sc, batch, tf});
}

/* ---- cub::DeviceRadixSort::SortPairs ----------------------------------------------- */

/* A stable sort by bits [begin_bit, end_bit) of the keys, signed keys
 * ordered as cub orders them (the sign bit flipped).  The size query asks
 * for scratch that the sort then must be given. */
cudaError_t rl_emu::sort_pairs_i64_i32(void *tmp, size_t &tmp_bytes, const int64_t *kin,
                                       int64_t *kout, const int32_t *vin, int32_t *vout, int n,
                                       int begin_bit, int end_bit) {
  size_t need = 256 + (size_t)(n > 0 ? n : 0) * 12;
  if (!tmp) {
    tmp_bytes = need;
    return cudaSuccess;
  }
  if (tmp_bytes < need || n < 0 || begin_bit < 0 || end_bit > 64 || begin_bit > end_bit)
    return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  uintptr_t ki = (uintptr_t)kin, ko_ = (uintptr_t)kout, vi = (uintptr_t)vin, vo_ = (uintptr_t)vout;
  if ((ki < ko_ + 8 * (size_t)n && ko_ < ki + 8 * (size_t)n) ||
      (vi < vo_ + 4 * (size_t)n && vo_ < vi + 4 * (size_t)n))
    die("cub::DeviceRadixSort::SortPairs: an output overlaps its input (this form of the call "
        "needs them apart)");
  begin_device("cub::DeviceRadixSort::SortPairs");
  need_range("SortPairs' scratch", tmp, tmp_bytes);
  need_range("SortPairs' keys in", kin, sizeof(int64_t) * n);
  need_range("SortPairs' keys out", kout, sizeof(int64_t) * n);
  need_range("SortPairs' values in", vin, sizeof(int32_t) * n);
  need_range("SortPairs' values out", vout, sizeof(int32_t) * n);
  uint64_t mask = end_bit - begin_bit == 64 ? ~0ull : ((1ull << (end_bit - begin_bit)) - 1);
  std::vector<std::pair<uint64_t, int>> order((size_t)n);
  for (int i = 0; i < n; i++) {
    uint64_t twiddled = (uint64_t)kin[i] ^ (1ull << 63);
    order[i] = {begin_bit < 64 ? (twiddled >> begin_bit) & mask : 0, i};
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const std::pair<uint64_t, int> &a, const std::pair<uint64_t, int> &b) {
                     return a.first < b.first;
                   });
  std::vector<int64_t> ko((size_t)n);
  std::vector<int32_t> vo((size_t)n);
  for (int i = 0; i < n; i++) {
    ko[i] = kin[order[i].second];
    vo[i] = vin[order[i].second];
  }
  memcpy(kout, ko.data(), sizeof(int64_t) * n);
  memcpy(vout, vo.data(), sizeof(int32_t) * n);
  end_device();
  return cudaSuccess;
}
