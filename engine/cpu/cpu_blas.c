/* cpu_blas.c - GEMM through OpenBLAS; integer GEMM by a plain loop. */
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

int rl_cpu_gemm(rl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                double alpha, const void *a, int64_t lda, int64_t sa, const void *b,
                int64_t ldb, int64_t sb, double beta, void *c, int64_t ldc, int64_t sc,
                int64_t batch) {
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
    default:
      return rl_err("matmul: not defined for %s", rl_dtype_name(dt));
    }
  }
  return 0;
}
