/* cpu_index.c - index ops along dim 1 of [outer, n, inner] on the CPU:
 * index_select, index_add, gather and scatter_add.  Byte-generic where they
 * only move elements; the adds go in index order, so results are
 * deterministic. */
#include <string.h>

#include "cpu.h"

static int check_index(const char *op, const int64_t *idx, int64_t k, int64_t n) {
  for (int64_t j = 0; j < k; j++)
    if (idx[j] < 0 || idx[j] >= n)
      return rl_err("%s: index %lld is out of range for a dim of size %lld (indices are "
                    "0-based)",
                    op, (long long)idx[j], (long long)n);
  return 0;
}

int rl_cpu_index_select(rl_dtype dt, const void *x, int64_t outer, int64_t n,
                        int64_t inner, const int64_t *idx, int64_t k, void *y) {
  if (check_index("index_select", idx, k, n)) return -1;
  size_t es = rl_dtype_size(dt), row = (size_t)inner * es;
  RL_PARALLEL_FOR(o, outer, k * inner, {
    for (int64_t j = 0; j < k; j++)
      memcpy((char *)y + ((size_t)(o * k + j)) * row,
             (const char *)x + ((size_t)(o * n + idx[j])) * row, row);
  });
  return 0;
}

#define ADD_ROW(T, dst, src, cnt)                                                  \
  do {                                                                             \
    T *d_ = (T *)(dst);                                                            \
    const T *s_ = (const T *)(src);                                                \
    for (int64_t q = 0; q < (cnt); q++) d_[q] += s_[q];                            \
  } while (0)

static void add_row(rl_dtype dt, void *dst, const void *src, int64_t cnt) {
  switch (dt) {
  case RL_F32: ADD_ROW(float, dst, src, cnt); break;
  case RL_F64: ADD_ROW(double, dst, src, cnt); break;
  case RL_I64: ADD_ROW(int64_t, dst, src, cnt); break;
  case RL_U8: ADD_ROW(uint8_t, dst, src, cnt); break;
  case RL_BF16:
  case RL_F16: /* each sum rounded to the half type, as its add */
    for (int64_t q = 0; q < cnt; q++)
      ((uint16_t *)dst)[q] = rl_half_of_f32(dt, rl_f32_of_half(dt, ((uint16_t *)dst)[q]) +
                                                    rl_f32_of_half(dt, ((const uint16_t *)src)[q]));
    break;
  default: break;
  }
}

int rl_cpu_index_add(rl_dtype dt, const void *x, int64_t outer, int64_t k, int64_t inner,
                     const int64_t *idx, int64_t n, void *y) {
  if (check_index("index_add", idx, k, n)) return -1;
  size_t es = rl_dtype_size(dt);
  /* each outer slice is independent; within one, rows add in index order */
  RL_PARALLEL_FOR(o, outer, k * inner, {
    for (int64_t j = 0; j < k; j++)
      add_row(dt, (char *)y + (size_t)((o * n + idx[j]) * inner) * es,
              (const char *)x + (size_t)((o * k + j) * inner) * es, inner);
  });
  return 0;
}

int rl_cpu_gather(rl_dtype dt, const void *x, int64_t outer, int64_t n, int64_t inner,
                  const int64_t *idx, int64_t k, void *y) {
  if (check_index("gather", idx, outer * k * inner, n)) return -1;
  size_t es = rl_dtype_size(dt);
  RL_PARALLEL_FOR(o, outer, k * inner, {
    for (int64_t j = 0; j < k; j++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t src = (o * n + idx[(o * k + j) * inner + i]) * inner + i;
        memcpy((char *)y + (size_t)((o * k + j) * inner + i) * es,
               (const char *)x + (size_t)src * es, es);
      }
  });
  return 0;
}

int rl_cpu_scatter_add(rl_dtype dt, const void *x, int64_t outer, int64_t k,
                       int64_t inner, const int64_t *idx, int64_t n, void *y) {
  if (check_index("scatter_add", idx, outer * k * inner, n)) return -1;
  size_t es = rl_dtype_size(dt);
  RL_PARALLEL_FOR(o, outer, k * inner, {
    for (int64_t j = 0; j < k; j++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t dst = (o * n + idx[(o * k + j) * inner + i]) * inner + i;
        add_row(dt, (char *)y + (size_t)dst * es,
                (const char *)x + (size_t)((o * k + j) * inner + i) * es, 1);
      }
  });
  return 0;
}
