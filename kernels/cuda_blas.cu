/* cuda_blas.cu - GEMM through cuBLAS; integer GEMM by a plain kernel.
 *
 * bf16 (rl.autocast's linear and convolutions) is cublasGemmEx with bf16
 * A and B, an f32 compute type, and a bf16 C (rounded once from the f32
 * sums) or an f32 one (engine/conv_gemm.c's sums, rounded later); the
 * handle refuses reduced-precision reductions, so cuBLAS's own split-k
 * also sums in f32.
 *
 * The table's GEMM is row-major; cuBLAS is column-major.  A row-major
 * matrix with row stride ld is, read column-major, its transpose with the
 * same ld, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: swap the
 * operands and m with n, keep each operand's transpose flag.  Transposed
 * and batch-shared operands (batch stride 0) go to cuBLAS as they are, so
 * nothing is copied.  The handle runs on the default stream, without
 * atomics (results are reproducible from run to run), and in cuBLAS's
 * default math mode (full fp32) unless TF32 is allowed (engine/cuda.h). */
#include <cublas_v2.h>
#include <stdlib.h>

#include "cuda_common.cuh"

static cublasHandle_t handle;
static int tf32 = -1; /* -1: not yet read from RL_CUDA_TF32 */

/* The handle's math mode: TF32 for f32 GEMMs when allowed, and never a
 * bf16 reduction in bf16. */
static cublasMath_t math_mode(bool tf) {
  return (cublasMath_t)((tf ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH) |
                        CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
}

static bool tf32_on(void) {
  if (tf32 < 0) {
    const char *e = getenv("RL_CUDA_TF32");
    tf32 = e && e[0] == '1';
  }
  return tf32 == 1;
}

static const char *cublas_status(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED (out of memory)";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  default: return "unknown cuBLAS status";
  }
}

#define CUBLAS_TRY(call)                                                      \
  do {                                                                        \
    cublasStatus_t s_ = (call);                                               \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                          \
      return rl_err("cuBLAS error in %s: %s", #call, cublas_status(s_));      \
  } while (0)

static int get_handle(void) {
  if (handle) return 0;
  CUBLAS_TRY(cublasCreate(&handle));
  CUBLAS_TRY(cublasSetStream(handle, 0));
  CUBLAS_TRY(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST));
  CUBLAS_TRY(cublasSetAtomicsMode(handle, CUBLAS_ATOMICS_NOT_ALLOWED));
  CUBLAS_TRY(cublasSetMathMode(handle, math_mode(tf32_on())));
  return 0;
}

extern "C" bool rl_cuda_set_tf32(int on) {
  bool was = tf32_on();
  if (on < 0) return was;
  tf32 = on > 0;
  if (handle) cublasSetMathMode(handle, math_mode(on > 0));
  return was;
}

/* C_b[i, j] = alpha * sum_p op(A)[i, p] op(B)[p, j] + beta * C_b[i, j]; one
 * thread per element of C, all batches in one grid. */
__global__ void gemm_i64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t alpha,
                         const int64_t *a, int64_t lda, int64_t sa, const int64_t *b,
                         int64_t ldb, int64_t sb, int64_t beta, int64_t *c, int64_t ldc,
                         int64_t sc, int64_t batch) {
  GRID_STRIDE(e, m * n * batch) {
    int64_t bi = e / (m * n), i = (e / n) % m, j = e % n;
    const int64_t *A = a + bi * sa, *B = b + bi * sb;
    int64_t s = 0;
    for (int64_t p = 0; p < k; p++)
      s += (ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]);
    int64_t *C = c + bi * sc + i * ldc + j;
    *C = alpha * s + (beta ? beta * *C : 0);
  }
}

/* One cuBLAS GEMM call (row-major arguments, see the top of the file). */
static int gemm_call(rl_dtype dt, rl_dtype ct, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                     double alpha, const void *a, int64_t lda, int64_t sa, const void *b,
                     int64_t ldb, int64_t sb, double beta, void *c, int64_t ldc, int64_t sc,
                     int64_t batch);

/* out[i, j] = alpha * sum_s P[s][i, j] + beta * out[i, j], s in order; the
 * partial products P are T (f32 for bf16 operands), out is TC (bf16 as
 * uint16_t: bf_load and bf_store, cuda_common.cuh). */
template <typename T, typename TC>
__global__ void splitk_sum(const T *P, int S, int64_t m, int64_t n, T alpha, T beta, TC *c,
                           int64_t ldc) {
  GRID_STRIDE(e, m * n) {
    T acc = 0;
    for (int s = 0; s < S; s++) acc += P[s * m * n + e];
    int64_t i = e / n, j = e % n;
    TC *o = c + i * ldc + j;
    bf_store(o, beta == (T)0 ? alpha * acc : alpha * acc + beta * bf_load(o));
  }
}

/* A product with a long k and a small output (the weight gradient of a
 * convolution: k = images * pixels) leaves most of the GPU idle in one
 * GEMM.  Cut k into S equal chunks, one batched GEMM of the chunks into
 * S partial products (and one more for the rest of k), then add them in
 * order: more parallel, still deterministic. */
static int gemm_split_k(rl_dtype dt, rl_dtype ct, bool ta, bool tb, int64_t m, int64_t n,
                        int64_t k, double alpha, const void *a, int64_t lda, const void *b,
                        int64_t ldb, double beta, void *c, int64_t ldc, int S) {
  /* the partial products in the type of the sums: f32 for bf16 operands */
  rl_dtype pt = dt == RL_BF16 ? RL_F32 : dt;
  size_t es = rl_dtype_size(dt), ps = rl_dtype_size(pt);
  int64_t kc = k / S, rest = k - kc * S, mn = m * n;
  int slots = S + (rest > 0);
  size_t nbytes = (size_t)slots * (size_t)mn * ps;
  char *P = (char *)rl_cuda_scratch(nbytes);
  if (!P) return -1;
  /* chunk s of op(A) is columns [s kc, (s+1) kc): stored rows when A is
   * transposed; likewise rows of op(B) */
  int64_t step_a = ta ? kc * lda : kc, step_b = tb ? kc : kc * ldb;
  int rc = gemm_call(dt, pt, ta, tb, m, n, kc, 1.0, a, lda, step_a, b, ldb, step_b, 0.0, P, n,
                     mn, S);
  if (!rc && rest > 0)
    rc = gemm_call(dt, pt, ta, tb, m, n, rest, 1.0, (const char *)a + (size_t)(S * step_a) * es,
                   lda, 0, (const char *)b + (size_t)(S * step_b) * es, ldb, 0, 0.0,
                   P + (size_t)S * (size_t)mn * ps, n, 0, 1);
  if (!rc) {
    unsigned nb = rl_blocks(mn);
    if (dt == RL_F64)
      splitk_sum<double, double><<<nb, RL_THREADS>>>((const double *)P, slots, m, n, alpha,
                                                     beta, (double *)c, ldc);
    else if (ct == RL_BF16)
      splitk_sum<float, uint16_t><<<nb, RL_THREADS>>>((const float *)P, slots, m, n,
                                                      (float)alpha, (float)beta,
                                                      (uint16_t *)c, ldc);
    else
      splitk_sum<float, float><<<nb, RL_THREADS>>>((const float *)P, slots, m, n, (float)alpha,
                                                   (float)beta, (float *)c, ldc);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) rc = rl_cuda_fail("launch of splitk_sum", e);
  }
  rl_cuda_scratch_free(P, nbytes);
  return rc;
}

/* Chunks of k for one GEMM (conv_gemm.h's rule), for a long k only. */
static int split_count(int64_t m, int64_t n, int64_t k, int64_t batch) {
  if (batch != 1 || k < 8192) return 1;
  return (int)rl_split_k_chunks(rl_cuda_sms(), ((m + 127) / 128) * ((n + 127) / 128), k);
}

int rl_cuda_gemm(rl_dtype dt, rl_dtype ct, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                 double alpha, const void *a, int64_t lda, int64_t sa, const void *b,
                 int64_t ldb, int64_t sb, double beta, void *c, int64_t ldc, int64_t sc,
                 int64_t batch) {
  if (ct != dt && !(dt == RL_BF16 && ct == RL_F32))
    return rl_err("matmul: %s operands into a %s result are not defined", rl_dtype_name(dt),
                  rl_dtype_name(ct));
  if (m == 0 || n == 0 || batch == 0) return 0;
  if (dt == RL_F32 || dt == RL_F64 || dt == RL_BF16) {
    int S = split_count(m, n, k, batch);
    if (S > 1)
      return gemm_split_k(dt, ct, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, S);
  }
  return gemm_call(dt, ct, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc,
                   batch);
}

/* bf16 A and B, f32 sums, C bf16 or f32 (ct): cublasGemmEx and its
 * strided batched form, arguments as gemm_call passes them to cuBLAS. */
static int gemm_bf16(rl_dtype ct, cublasOperation_t opb, cublasOperation_t opa, int n, int m,
                     int k, float alpha, const void *b, int lb, int64_t sb, const void *a,
                     int la, int64_t sa, float beta, void *c, int lc, int64_t sc, int batch) {
  cudaDataType_t ctype = ct == RL_F32 ? CUDA_R_32F : CUDA_R_16BF;
  if (batch == 1)
    CUBLAS_TRY(cublasGemmEx(handle, opb, opa, n, m, k, &alpha, b, CUDA_R_16BF, lb, a,
                            CUDA_R_16BF, la, &beta, c, ctype, lc, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
  else
    CUBLAS_TRY(cublasGemmStridedBatchedEx(handle, opb, opa, n, m, k, &alpha, b, CUDA_R_16BF,
                                          lb, sb, a, CUDA_R_16BF, la, sa, &beta, c, ctype, lc,
                                          sc, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return 0;
}

static int gemm_call(rl_dtype dt, rl_dtype ct, bool ta, bool tb, int64_t m, int64_t n,
                     int64_t k, double alpha, const void *a, int64_t lda, int64_t sa,
                     const void *b, int64_t ldb, int64_t sb, double beta, void *c, int64_t ldc,
                     int64_t sc, int64_t batch) {
  if (dt == RL_I64) {
    gemm_i64<<<rl_blocks(m * n * batch), RL_THREADS>>>(
        ta, tb, m, n, k, (int64_t)alpha, (const int64_t *)a, lda, sa, (const int64_t *)b, ldb,
        sb, (int64_t)beta, (int64_t *)c, ldc, sc, batch);
    LAUNCH_CHECK("gemm_i64");
    return 0;
  }
  if (dt != RL_F32 && dt != RL_F64 && dt != RL_BF16)
    return rl_err("matmul: not defined for %s", rl_dtype_name(dt));
  if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || lda > INT32_MAX || ldb > INT32_MAX ||
      ldc > INT32_MAX || batch > INT32_MAX)
    return rl_err("matmul: %lldx%lldx%lld (batch %lld) is too large for cuBLAS", (long long)m,
                  (long long)n, (long long)k, (long long)batch);
  if (get_handle()) return -1;
  cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  /* cuBLAS wants ld >= the stored rows even when a dim is 1 or k is 0 */
  int64_t la = lda, lb = ldb, lc = ldc;
  int64_t ra = ta ? m : k, rb = tb ? k : n;
  if (la < ra) la = ra;
  if (lb < rb) lb = rb;
  if (lc < n) lc = n;
  if (la < 1) la = 1;
  if (lb < 1) lb = 1;
  if (dt == RL_BF16)
    return gemm_bf16(ct, opb, opa, (int)n, (int)m, (int)k, (float)alpha, b, (int)lb, sb, a,
                     (int)la, sa, (float)beta, c, (int)lc, sc, (int)batch);
  if (dt == RL_F32) {
    float al = (float)alpha, be = (float)beta;
    if (batch == 1)
      CUBLAS_TRY(cublasSgemm(handle, opb, opa, (int)n, (int)m, (int)k, &al, (const float *)b,
                             (int)lb, (const float *)a, (int)la, &be, (float *)c, (int)lc));
    else
      CUBLAS_TRY(cublasSgemmStridedBatched(handle, opb, opa, (int)n, (int)m, (int)k, &al,
                                           (const float *)b, (int)lb, sb, (const float *)a,
                                           (int)la, sa, &be, (float *)c, (int)lc, sc,
                                           (int)batch));
  } else {
    if (batch == 1)
      CUBLAS_TRY(cublasDgemm(handle, opb, opa, (int)n, (int)m, (int)k, &alpha,
                             (const double *)b, (int)lb, (const double *)a, (int)la, &beta,
                             (double *)c, (int)lc));
    else
      CUBLAS_TRY(cublasDgemmStridedBatched(handle, opb, opa, (int)n, (int)m, (int)k, &alpha,
                                           (const double *)b, (int)lb, sb, (const double *)a,
                                           (int)la, sa, &beta, (double *)c, (int)lc, sc,
                                           (int)batch));
  }
  return 0;
}
