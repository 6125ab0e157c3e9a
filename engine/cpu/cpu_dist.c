/* cpu_dist.c - nearest point of another class, on u8 rows (separation).
 *
 * Exact integer arithmetic on raw pixels.  Queries and references are
 * processed in tiles that fit in cache; within a tile each pair stops as
 * soon as its partial distance reaches the best distance found so far for
 * that query (the distance only grows along a row). */
#include <string.h>

#include "cpu.h"

#define QTILE 32
#define RTILE 256
#define STEP 64 /* bytes between early-exit checks */

/* l-inf distance of two rows, stopping early once it reaches `bound`. */
static int64_t linf_row(const uint8_t *a, const uint8_t *b, int64_t D, int64_t bound) {
  int64_t m = 0;
  for (int64_t k0 = 0; k0 < D; k0 += STEP) {
    int64_t k1 = k0 + STEP < D ? k0 + STEP : D;
    uint8_t t = 0;
#pragma omp simd reduction(max : t)
    for (int64_t k = k0; k < k1; k++) {
      uint8_t d = a[k] > b[k] ? (uint8_t)(a[k] - b[k]) : (uint8_t)(b[k] - a[k]);
      t = d > t ? d : t;
    }
    if (t > m) m = t;
    if (m >= bound) return m;
  }
  return m;
}

/* squared l2 distance, early exit likewise */
static int64_t l2_row(const uint8_t *a, const uint8_t *b, int64_t D, int64_t bound) {
  int64_t s = 0;
  for (int64_t k0 = 0; k0 < D; k0 += STEP) {
    int64_t k1 = k0 + STEP < D ? k0 + STEP : D;
    int32_t t = 0;
#pragma omp simd reduction(+ : t)
    for (int64_t k = k0; k < k1; k++) {
      int32_t d = (int32_t)a[k] - (int32_t)b[k];
      t += d * d;
    }
    s += t;
    if (s >= bound) return s;
  }
  return s;
}

int rl_cpu_nearest_other(const uint8_t *q, const int64_t *qlab, int64_t nq,
                         const uint8_t *r, const int64_t *rlab, int64_t nr, int64_t D,
                         int p, bool skip_self, int64_t *dist, int64_t *arg) {
  int64_t none = p == 0 ? 256 : INT64_MAX;
  for (int64_t i = 0; i < nq; i++) {
    dist[i] = none;
    arg[i] = -1;
  }
  int64_t nqt = (nq + QTILE - 1) / QTILE;
  /* Threads own query tiles, so no two write one result. */
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t qt = 0; qt < nqt; qt++) {
    int64_t q0 = qt * QTILE, q1 = q0 + QTILE < nq ? q0 + QTILE : nq;
    for (int64_t r0 = 0; r0 < nr; r0 += RTILE) {
      int64_t r1 = r0 + RTILE < nr ? r0 + RTILE : nr;
      for (int64_t i = q0; i < q1; i++) {
        const uint8_t *qi = q + i * D;
        int64_t best = dist[i], barg = arg[i];
        for (int64_t j = r0; j < r1; j++) {
          if (rlab[j] == qlab[i] || (skip_self && j == i)) continue;
          int64_t d = p == 0 ? linf_row(qi, r + j * D, D, best)
                             : l2_row(qi, r + j * D, D, best);
          if (d < best) {
            best = d;
            barg = j;
          }
        }
        dist[i] = best;
        arg[i] = barg;
      }
    }
  }
  return 0;
}
