/* cpu_blas.c - GEMM through OpenBLAS; integer GEMM by a plain loop; bf16
 * GEMM as OpenBLAS's f32 GEMM on the operands widened. */
#include <cblas.h>

#include "cpu.h"

#ifdef RL_HAVE_OPENBLAS_THREADS
int openblas_get_num_threads(void);
void openblas_set_num_threads(int n);
#endif

/* OpenBLAS's OpenMP build runs a call made inside a parallel region on the
 * calling thread alone; its pthread build would hand it to its own pool,
 * which every calling thread then shares.  Around such a region it is told
 * to use one thread, and afterwards what it had before. */
int rl_cpu_blas_solo_begin(void) {
#ifdef RL_HAVE_OPENBLAS_THREADS
  int n = openblas_get_num_threads();
  if (n > 1) openblas_set_num_threads(1);
  return n;
#else
  return 1;
#endif
}

void rl_cpu_blas_solo_end(int saved) {
#ifdef RL_HAVE_OPENBLAS_THREADS
  if (saved > 1) openblas_set_num_threads(saved);
#else
  (void)saved;
#endif
}

static void gemm_i64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t alpha,
                     const int64_t *a, int64_t lda, const int64_t *b, int64_t ldb,
                     int64_t beta, int64_t *c, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      int64_t s = 0;
      for (int64_t p = 0; p < k; p++)
        s += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = alpha * s + (beta ? beta * c[i * ldc + j] : 0);
    }
}

/* rows x cols of bf16 at ld apart -> compact f32 (exact). */
static void widen_rows(const uint16_t *src, int64_t ld, int64_t rows, int64_t cols, float *dst) {
  RL_PARALLEL_FOR(r, rows, cols, {
    for (int64_t j = 0; j < cols; j++) dst[r * cols + j] = rl_f32_of_bf16(src[r * ld + j]);
  });
}

/* bf16 GEMM (rl.autocast's linear and its gradients, and the GEMM
 * composition of a bf16 convolution): A and B widened to f32, which is
 * exact, and one sgemm summing in f32.  A bf16 C (widened too when beta is
 * not 0) is rounded once at the end: the bits of the same sgemm on f32
 * copies; an f32 C (c_f32) is the sgemm's own output. */
static int gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                     const uint16_t *a, int64_t lda, int64_t sa, const uint16_t *b, int64_t ldb,
                     int64_t sb, double beta, void *c, bool c_f32, int64_t ldc, int64_t sc,
                     int64_t batch) {
  int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  size_t na = rl_cpu_round64(sizeof(float) * (size_t)(ar * ac));
  size_t nb = rl_cpu_round64(sizeof(float) * (size_t)(br * bc));
  size_t total = na + nb + (c_f32 ? 0 : sizeof(float) * (size_t)(m * n));
  char *buf = rl_cpu_backend.alloc(NULL, total);
  if (!buf) return -1;
  float *af = (float *)buf, *bf = (float *)(buf + na), *cf = (float *)(buf + na + nb);
  for (int64_t i = 0; i < batch; i++) {
    widen_rows(a + i * sa, lda, ar, ac, af);
    widen_rows(b + i * sb, ldb, br, bc, bf);
    uint16_t *ci = (uint16_t *)c + i * sc;
    float *out = c_f32 ? (float *)c + i * sc : cf;
    int64_t ldo = c_f32 ? ldc : n;
    if (!c_f32 && beta != 0) widen_rows(ci, ldc, m, n, cf);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, (float)alpha, af, (int)(ac > 1 ? ac : 1), bf,
                (int)(bc > 1 ? bc : 1), (float)beta, out, (int)(ldo > 1 ? ldo : 1));
    if (!c_f32) {
      RL_PARALLEL_FOR(r, m, n, {
        for (int64_t j = 0; j < n; j++) ci[r * ldc + j] = rl_bf16_of_f32(cf[r * n + j]);
      });
    }
  }
  rl_cpu_backend.free(NULL, buf, total);
  return 0;
}

int rl_cpu_gemm(rl_dtype dt, rl_dtype ct, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                double alpha, const void *a, int64_t lda, int64_t sa, const void *b,
                int64_t ldb, int64_t sb, double beta, void *c, int64_t ldc, int64_t sc,
                int64_t batch) {
  if (ct != dt && !(dt == RL_BF16 && ct == RL_F32))
    return rl_err("matmul: %s operands into a %s result are not defined", rl_dtype_name(dt),
                  rl_dtype_name(ct));
  if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || lda > INT32_MAX ||
      ldb > INT32_MAX || ldc > INT32_MAX)
    return rl_err("matmul: %lldx%lldx%lld is too large for BLAS", (long long)m,
                  (long long)n, (long long)k);
  enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE TB = tb ? CblasTrans : CblasNoTrans;
  for (int64_t i = 0; i < batch; i++) {
    switch (dt) {
    case RL_F32:
      cblas_sgemm(CblasRowMajor, TA, TB, (int)m, (int)n, (int)k, (float)alpha,
                  (const float *)a + i * sa, (int)lda, (const float *)b + i * sb, (int)ldb,
                  (float)beta, (float *)c + i * sc, (int)ldc);
      break;
    case RL_F64:
      cblas_dgemm(CblasRowMajor, TA, TB, (int)m, (int)n, (int)k, alpha,
                  (const double *)a + i * sa, (int)lda, (const double *)b + i * sb,
                  (int)ldb, beta, (double *)c + i * sc, (int)ldc);
      break;
    case RL_I64:
      gemm_i64(ta, tb, m, n, k, (int64_t)alpha, (const int64_t *)a + i * sa, lda,
               (const int64_t *)b + i * sb, ldb, (int64_t)beta, (int64_t *)c + i * sc, ldc);
      break;
    case RL_BF16: /* every batch at once */
      return gemm_bf16(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ct == RL_F32,
                       ldc, sc, batch);
    default:
      return rl_err("matmul: not defined for %s", rl_dtype_name(dt));
    }
  }
  return 0;
}
