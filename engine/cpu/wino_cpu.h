/* wino_cpu.h - what the CPU's Winograd kernels (cpu_winograd.c, F(2x2, 3x3),
 * and cpu_winograd4.c, F(4x4, 3x3)) share: their buffers' plane strides and
 * chunk floor, and the rows split into (and merged from) column phases. */
#ifndef RL_CPU_WINO_CPU_H
#define RL_CPU_WINO_CPU_H

#include <stdint.h>

#include "direct.h"

/* Fewest tile positions a Winograd chunk gives the product loop: a few of
 * its blocks. */
#define WINO_MIN_TILES (4 * CONV_QB)

/* Floats from one of a Winograd buffer's tile-position planes to the next:
 * n rounded up to a line, and one line more, so that the transforms' 16 or
 * 36 streams (one per plane) never sit a multiple of 4 KiB apart, where they
 * would all fall in one set of the L1 cache. */
static inline int64_t wino_plane(int64_t n) { return ((n + 15) & ~(int64_t)15) + 16; }

/* The S column phases of one padded row (S = 2 or 4): d[k][j] = row[S*j +
 * k - pad] for the padded columns S*j + k (j < n) that hold an input
 * column (0 <= S*j + k - pad < W); the others are left as they are (the
 * caller zeroed them).  pad may be negative: pad - S gives the phases one
 * tile column on (d[k][j] = padded column S*(j + 1) + k).  The whole
 * groups of S go as one vector loop of interleaved loads (omp simd: at -O2
 * GCC's cost model leaves such loops scalar), the ragged ends one by one. */
static inline void wino_split_row(const float *row, int64_t W, int64_t pad, int S,
                                  float *const *d, int64_t n) {
  int64_t q = pad > 0 ? pad : 0, qend = pad + W < S * n ? pad + W : S * n;
  for (; q < qend && q % S; q++) d[q % S][q / S] = row[q - pad];
  int64_t j0 = q / S, j1 = qend / S;
  if (j1 <= j0) j1 = j0; /* no whole group: s below would point off the row */
  /* s[S*(j - j0) + k] is padded column S*j + k */
  const float *s = j1 > j0 ? row + (S * j0 - pad) : row;
  if (S == 4) {
    float *restrict d0 = d[0] + j0, *restrict d1 = d[1] + j0, *restrict d2 = d[2] + j0,
                    *restrict d3 = d[3] + j0;
#pragma omp simd
    for (int64_t j = 0; j < j1 - j0; j++) {
      d0[j] = s[4 * j];
      d1[j] = s[4 * j + 1];
      d2[j] = s[4 * j + 2];
      d3[j] = s[4 * j + 3];
    }
  } else {
    float *restrict d0 = d[0] + j0, *restrict d1 = d[1] + j0;
#pragma omp simd
    for (int64_t j = 0; j < j1 - j0; j++) {
      d0[j] = s[2 * j];
      d1[j] = s[2 * j + 1];
    }
  }
  for (q = j1 > j0 ? S * j1 : q; q < qend; q++) d[q % S][q / S] = row[q - pad];
}

/* The inverse for an output row of OW columns: row[S*j + k] = y[k][j]. */
static inline void wino_merge_row(const float *const *y, int S, float *row, int64_t OW) {
  int64_t whole = OW / S;
  if (S == 4) {
    const float *y0 = y[0], *y1 = y[1], *y2 = y[2], *y3 = y[3];
    float *restrict r = row;
#pragma omp simd
    for (int64_t j = 0; j < whole; j++) {
      r[4 * j] = y0[j];
      r[4 * j + 1] = y1[j];
      r[4 * j + 2] = y2[j];
      r[4 * j + 3] = y3[j];
    }
  } else {
    const float *y0 = y[0], *y1 = y[1];
    float *restrict r = row;
#pragma omp simd
    for (int64_t j = 0; j < whole; j++) {
      r[2 * j] = y0[j];
      r[2 * j + 1] = y1[j];
    }
  }
  for (int64_t q = S * whole; q < OW; q++) row[q] = y[q % S][q / S];
}

/* Most bytes a Winograd weight gradient's group partials (RL_CPU_DW_GROUPS
 * of K*O*C floats) may take: past it the candidate does not fit (F(4x4,
 * 3x3) at 640 channels would take 470 MB). */
#define WINO_DW_MAX_BYTES ((int64_t)256 << 20)

/* A Winograd weight gradient, F(2x2, 3x3) or F(4x4, 3x3): the K (16 or 36)
 * tile-position GEMMs dU[xi] (O x C) = dM[xi] @ V[xi]^T over the tiles of
 * batch groups fixed by N, the groups' dU summed in order in f64 and taken
 * back to dg; db by the same groups. */
typedef struct {
  int K;              /* tile positions: 16 or 36 */
  int64_t T, nb;      /* tiles per image, images per chunk */
  int64_t buf_floats; /* each thread's phase planes */
  const void *plan;   /* the size's own plan, for the callbacks */
  /* V [K][C][ld] (planes wino_plane(C*ld) apart) of nb images of x */
  void (*input)(const void *plan, const float *x, int64_t nb, int64_t ld, float *v, float *buf);
  /* dM [K][O][ld] (planes wino_plane(O*ld) apart) of nb images of dy */
  void (*doutput)(const void *plan, const float *dy, int64_t nb, int64_t ld, float *dm,
                  float *buf);
  void (*dweight)(const double *u, double *k9); /* dg [3x3] of one dU [K] */
} wino_dw_spec;

int rl_cpu_wino_dw_run(const wino_dw_spec *s, const float *x, const float *dy, int64_t N,
                       int64_t C, int64_t H, int64_t W, int64_t O, int64_t ohw, float *dw,
                       float *db);

#endif
