/* wino_cpu.h - what the CPU's Winograd kernels (cpu_winograd.c, F(2x2, 3x3),
 * and cpu_winograd4.c, F(4x4, 3x3)) share: their buffers' plane strides and
 * chunk floor, and the rows split into (and merged from) column phases. */
#ifndef RL_CPU_WINO_CPU_H
#define RL_CPU_WINO_CPU_H

#include <stdint.h>

#include "cpu.h"
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

/* A Winograd convolution's sizes: tiles of m x m outputs from (m+2) x (m+2)
 * inputs, K = (m+2)^2 tile positions; TH x TW tiles an image, compact; the
 * padded input split into its m x m phases, twice (the second copy one tile
 * column on), each phase TH+1 rows of TW; nb images a chunk. */
typedef struct {
  int m, K;
  int64_t N, C, H, W, O, OH, OW, ph, pw;
  int64_t TH, TW; /* tiles per image: rows, columns */
  int64_t T;      /* tile positions per image: TH * TW */
  int64_t phase;  /* floats of one phase plane: (TH + 1) * TW */
  int64_t nb;     /* images per chunk */
} wino_plan;

/* V and M of one chunk of images stay under rl_cpu_wino_chunk_bytes()
 * (three quarters of a core's L2), unless that leaves fewer than
 * WINO_MIN_TILES tile positions. */
wino_plan rl_cpu_wino_plan(int m, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                           const int64_t *g);

/* Floats of each thread's phase planes: the input's 2*m*m (and the output's
 * or dy's m*m of T, fewer). */
static inline int64_t wino_buf_floats(const wino_plan *p) {
  return 2 * p->m * p->m * p->phase + 16;
}

/* One tile size's transforms, which the drivers below run. */
typedef struct {
  int m;
  /* u[K] = G g G^T of one 3x3 kernel k */
  void (*weight)(const float *k, float *u);
  /* V [K][C][ld] (planes wino_plane(C*ld) apart) of nb images of x */
  void (*input)(const wino_plan *p, const float *x, int64_t nb, int64_t ld, float *v,
                float *buf);
  /* y (+ b) of nb images from M [K][O][ld] (planes wino_plane(O*ld) apart) */
  void (*output)(const wino_plan *p, const float *m, int64_t nb, int64_t ld, const float *b,
                 float *y, float *buf);
  /* dM [K][O][ld] (planes wino_plane(O*ld) apart) of nb images of dy */
  void (*doutput)(const wino_plan *p, const float *dy, int64_t nb, int64_t ld, float *dm,
                  float *buf);
  /* dg [3x3] of one dU [K], in f64 */
  void (*dweight)(const double *u, double *k9);
} wino_kind;

/* The forward: K products M[xi] = U[xi] @ V[xi] by the register-blocked
 * loop (direct.c), images over threads in chunks fixed by the shapes. */
int rl_cpu_wino_run_fwd(const wino_kind *k, const float *x, const float *w, const float *b,
                        int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *g,
                        float *y);

/* The weight gradient: the K GEMMs dU[xi] (O x C) = dM[xi] @ V[xi]^T over
 * the tiles of batch groups fixed by N, the groups' dU summed in order in
 * f64 and taken back to dg; db by the same groups.  Fits where its GEMMs'
 * sizes fit BLAS's ints and its group partials WINO_DW_MAX_BYTES. */
bool rl_cpu_wino_dw_fits(const wino_kind *k, rl_dtype dt, int64_t N, int64_t C, int64_t H,
                         int64_t W, int64_t O, const int64_t *g);
int rl_cpu_wino_run_dw(const wino_kind *k, const float *x, const float *dy, int64_t N,
                       int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *g, float *dw,
                       float *db);

/* F(2x2, 3x3) (cpu_winograd.c) and F(4x4, 3x3) (cpu_winograd4.c). */
extern const wino_kind rl_cpu_wino2, rl_cpu_wino4;

#endif
