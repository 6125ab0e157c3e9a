/* cpu_winograd4.c - 3x3 stride-1 f32 convolutions by Winograd F(4x4, 3x3),
 * the algorithm "winograd4": the forward (dx is a forward, cpu_conv.c) and
 * the weight gradient.
 *
 * A 4x4 block of outputs comes from a 6x6 tile d of the padded input:
 *   y = A^T [ (G g G^T) .* (B^T d B) ] A
 * 36 multiplies for 16 outputs, where F(2x2, 3x3) (cpu_winograd.c) takes
 * 64 and the direct sum 144; the price is larger transforms and more
 * rounding (the interpolation points 0, +-1, +-2 scale the terms by up to
 * 8).  With C input channels the 36 products are sums over C:
 *   M[xi] (O x P) = U[xi] (O x C) @ V[xi] (C x P)      xi = 0..35
 * run by the register-blocked loop of the tap path (direct.c).
 *
 *   B^T = | 4  0 -5  0  1  0 |   G = |  1/4    0     0   |   A^T = | 1 1  1 1  1 0 |
 *         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |         | 0 1 -1 2 -2 0 |
 *         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |         | 0 1  1 4  4 0 |
 *         | 0 -2 -1  2  1  0 |       |  1/24  1/12  1/6  |         | 0 1 -1 8 -8 1 |
 *         | 0  2 -1 -2  1  0 |       |  1/24 -1/12  1/6  |
 *         | 0  4  0 -5  0  1 |       |  0     0     1    |
 *
 * The layout is cpu_winograd.c's, at stride 4: the padded plane split
 * into its 16 phases (row mod 4 x column mod 4, TH+1 rows of TW), twice,
 * the second copy one tile column on, so that input value (a, b) of tile
 * p = th*TW + tw is at p + (a/4)*TW of phase (a%4, b%4), copy b/4, for
 * every p alike and each transform is one vector loop over p.  The
 * transforms are this file's; the drivers that run them (chunks, threads,
 * the products) are cpu_winograd.c's, shared with F(2x2, 3x3). */
#include <string.h>

#include "cpu.h"
#include "direct.h"
#include "wino_cpu.h"

/* G times three values (a column or a row of a kernel), in f64: multiplies
 * by the reciprocals, which the divisions would cost ten times over. */
#define W4_G(g0, g1, g2, r0, r1, r2, r3, r4, r5)                                        \
  do {                                                                                  \
    double s02 = (g0) + (g2), q = (g0) * (1.0 / 24) + (g2) * (1.0 / 6);                 \
    r0 = (g0) * 0.25;                                                                   \
    r1 = -(s02 + (g1)) * (1.0 / 6);                                                     \
    r2 = -(s02 - (g1)) * (1.0 / 6);                                                     \
    r3 = q + (g1) * (1.0 / 12);                                                         \
    r4 = q - (g1) * (1.0 / 12);                                                         \
    r5 = (g2);                                                                          \
  } while (0)

/* u[xi] = (G g G^T)[xi] of one kernel k, formed in f64 and rounded once. */
static void transform_weight(const float *k, float *u) {
  double t[6][3], v[6][6];
  for (int j = 0; j < 3; j++) { /* t = G g, column j */
    double g0 = k[j], g1 = k[3 + j], g2 = k[6 + j];
    W4_G(g0, g1, g2, t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j]);
  }
  for (int i = 0; i < 6; i++) { /* v = t G^T, row i */
    double g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
    W4_G(g0, g1, g2, v[i][0], v[i][1], v[i][2], v[i][3], v[i][4], v[i][5]);
  }
  for (int xi = 0; xi < 36; xi++) u[xi] = (float)v[xi / 6][xi % 6];
}

/* r = B^T d for six values d0..d5 (a column or a row of a tile). */
#define W4_BT(d0, d1, d2, d3, d4, d5, r)                                                \
  do {                                                                                  \
    r[0] = 4.0f * (d0) - 5.0f * (d2) + (d4);                                            \
    r[1] = (d3) + (d4) - 4.0f * ((d1) + (d2));                                          \
    r[2] = (d4) - (d3) + 4.0f * ((d1) - (d2));                                          \
    r[3] = (d4) - (d2) + 2.0f * ((d3) - (d1));                                          \
    r[4] = (d4) - (d2) + 2.0f * ((d1) - (d3));                                          \
    r[5] = 4.0f * (d1) - 5.0f * (d3) + (d5);                                            \
  } while (0)

/* The 16 phases of plane src, zero-padded, and again one tile column on:
 * ph32[16*s + 4*ra + cb] holds padded element (4i + ra, 4(j + s) + cb) at
 * i*TW + j. */
static void split_phases(const wino_plan *p, const float *src, float *ph32) {
  int64_t TW = p->TW, W = p->W, pw = p->pw;
  memset(ph32, 0, sizeof(float) * (size_t)(32 * p->phase));
  for (int64_t h = 0; h < p->H; h++) {
    int64_t r = h + p->ph; /* padded row */
    if (r >= 4 * (p->TH + 1)) break;
    for (int s = 0; s < 2; s++) {
      float *d0 = ph32 + (16 * s + 4 * (r & 3)) * p->phase + (r >> 2) * TW;
      float *d[4] = {d0, d0 + p->phase, d0 + 2 * p->phase, d0 + 3 * p->phase};
      wino_split_row(src + h * W, W, pw - 4 * s, 4, d, TW); /* padded columns 4(j+s) + cb */
    }
  }
}

/* V [36][C][ld] for the nb images at x: tile (i, th, tw) in column
 * i*T + th*TW + tw. */
static void transform_input(const wino_plan *p, const float *x, int64_t nb, int64_t ld,
                            float *v, float *ph32) {
  int64_t TW = p->TW, xs = wino_plane(p->C * ld), n = p->T;
  for (int64_t i = 0; i < nb; i++)
    for (int64_t c = 0; c < p->C; c++) {
      split_phases(p, x + (i * p->C + c) * p->H * p->W, ph32);
      float *out = v + c * ld + i * p->T;
#pragma omp simd
      for (int64_t t = 0; t < n; t++) {
        float u[6][6]; /* u = B^T d, column by column */
#pragma GCC unroll 6
        for (int b = 0; b < 6; b++) {
          /* column b of d: rows a = 0..5 from phase (a%4, b%4) of copy
           * b/4, a/4 rows down */
          const float *q = ph32 + (16 * (b >> 2) + (b & 3)) * p->phase + t;
          float col[6];
          W4_BT(q[0], q[4 * p->phase], q[8 * p->phase], q[12 * p->phase], q[TW],
                q[4 * p->phase + TW], col);
#pragma GCC unroll 6
          for (int a = 0; a < 6; a++) u[a][b] = col[a];
        }
#pragma GCC unroll 6
        for (int a = 0; a < 6; a++) { /* row a of u times B */
          float r[6];
          W4_BT(u[a][0], u[a][1], u[a][2], u[a][3], u[a][4], u[a][5], r);
#pragma GCC unroll 6
          for (int b = 0; b < 6; b++) out[(6 * a + b) * xs + t] = r[b];
        }
      }
    }
}

/* r = A^T m for six values m0..m5. */
#define W4_AT(m0, m1, m2, m3, m4, m5, r)                                                \
  do {                                                                                  \
    float s12 = (m1) + (m2), d12 = (m1) - (m2), s34 = (m3) + (m4), d34 = (m3) - (m4);   \
    r[0] = (m0) + s12 + s34;                                                            \
    r[1] = d12 + 2.0f * d34;                                                            \
    r[2] = s12 + 4.0f * s34;                                                            \
    r[3] = d12 + 8.0f * d34 + (m5);                                                     \
  } while (0)

/* y (+ bias) for the nb images from M [36][O][ld]: the 16 output phases
 * first (as the tiles), then interleaved into the rows of y. */
static void transform_output(const wino_plan *p, const float *m, int64_t nb, int64_t ld,
                             const float *b, float *y, float *ph16) {
  int64_t TW = p->TW, ms = wino_plane(p->O * ld), n = p->T, OW = p->OW;
  for (int64_t i = 0; i < nb; i++)
    for (int64_t o = 0; o < p->O; o++) {
      float bias = b ? b[o] : 0.0f;
      const float *q = m + o * ld + i * p->T;
#pragma omp simd
      for (int64_t t = 0; t < n; t++) {
        float u[4][6]; /* u = A^T m, column by column */
#pragma GCC unroll 6
        for (int bb = 0; bb < 6; bb++) {
          float col[4];
          W4_AT(q[bb * ms + t], q[(6 + bb) * ms + t], q[(12 + bb) * ms + t],
                q[(18 + bb) * ms + t], q[(24 + bb) * ms + t], q[(30 + bb) * ms + t], col);
#pragma GCC unroll 4
          for (int a = 0; a < 4; a++) u[a][bb] = col[a];
        }
#pragma GCC unroll 4
        for (int a = 0; a < 4; a++) { /* row a of u times A */
          float r[4];
          W4_AT(u[a][0], u[a][1], u[a][2], u[a][3], u[a][4], u[a][5], r);
#pragma GCC unroll 4
          for (int bb = 0; bb < 4; bb++) ph16[(4 * a + bb) * n + t] = r[bb] + bias;
        }
      }
      float *dst = y + (i * p->O + o) * p->OH * OW;
      for (int64_t oh = 0; oh < p->OH; oh++) {
        const float *src = ph16 + 4 * (oh & 3) * n + (oh >> 2) * TW;
        const float *y4[4] = {src, src + n, src + 2 * n, src + 3 * n};
        wino_merge_row(y4, 4, dst + oh * OW, OW);
      }
    }
}

/* ---- the weight gradient ------------------------------------------------------
 *
 * As cpu_winograd.c's, at F(4x4, 3x3): dM = A dy A^T for each 4x4 block of
 * dy (6x6), dU[xi] = sum over tiles of dM[xi] V[xi]^T (36 GEMMs), dg =
 * G^T dU G. */

/* r = A g for four values g0..g3 (a column or a row of a block of dy). */
#define W4_A(g0, g1, g2, g3, r)                                                         \
  do {                                                                                  \
    float s02 = (g0) + (g2), s13 = (g1) + (g3), q02 = (g0) + 4.0f * (g2),               \
          q13 = 2.0f * (g1) + 8.0f * (g3);                                              \
    r[0] = (g0);                                                                        \
    r[1] = s02 + s13;                                                                   \
    r[2] = s02 - s13;                                                                   \
    r[3] = q02 + q13;                                                                   \
    r[4] = q02 - q13;                                                                   \
    r[5] = (g3);                                                                        \
  } while (0)

/* dM [36][O][ld] for the nb images of dy: the 16 phases of each plane of dy
 * (row mod 4 x column mod 4, zero past OH x OW) first, then A g A^T at
 * every tile alike. */
static void transform_doutput(const wino_plan *p, const float *dy, int64_t nb, int64_t ld,
                              float *dm, float *ph16) {
  int64_t TW = p->TW, ms = wino_plane(p->O * ld), n = p->T, OW = p->OW;
  for (int64_t i = 0; i < nb; i++)
    for (int64_t o = 0; o < p->O; o++) {
      memset(ph16, 0, sizeof(float) * (size_t)(16 * n));
      const float *src = dy + (i * p->O + o) * p->OH * OW;
      for (int64_t oh = 0; oh < p->OH; oh++) {
        float *d0 = ph16 + 4 * (oh & 3) * n + (oh >> 2) * TW;
        float *d[4] = {d0, d0 + n, d0 + 2 * n, d0 + 3 * n};
        wino_split_row(src + oh * OW, OW, 0, 4, d, TW);
      }
      float *q = dm + o * ld + i * p->T;
#pragma omp simd
      for (int64_t t = 0; t < n; t++) {
        float u[6][4]; /* u = A g, column by column */
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++) {
          float col[6];
          W4_A(ph16[b * n + t], ph16[(4 + b) * n + t], ph16[(8 + b) * n + t],
               ph16[(12 + b) * n + t], col);
#pragma GCC unroll 6
          for (int a = 0; a < 6; a++) u[a][b] = col[a];
        }
#pragma GCC unroll 6
        for (int a = 0; a < 6; a++) { /* row a of u times A^T */
          float r[6];
          W4_A(u[a][0], u[a][1], u[a][2], u[a][3], r);
#pragma GCC unroll 6
          for (int b = 0; b < 6; b++) q[(6 * a + b) * ms + t] = r[b];
        }
      }
    }
}

/* G^T times six values, in f64. */
#define W4_GT(u0, u1, u2, u3, u4, u5, k0, k1, k2)                                       \
  do {                                                                                  \
    double s12 = (u1) + (u2), d12 = (u2) - (u1), s34 = (u3) + (u4), d34 = (u3) - (u4); \
    k0 = (u0) * 0.25 - s12 * (1.0 / 6) + s34 * (1.0 / 24);                            \
    k1 = d12 * (1.0 / 6) + d34 * (1.0 / 12);                                           \
    k2 = -s12 * (1.0 / 6) + s34 * (1.0 / 6) + (u5);                                    \
  } while (0)

static void dweight_of(const double *u, double *k9) { /* dg = G^T dU G */
  double t[3][6];
  for (int j = 0; j < 6; j++) /* t = G^T dU, column j */
    W4_GT(u[j], u[6 + j], u[12 + j], u[18 + j], u[24 + j], u[30 + j], t[0][j], t[1][j], t[2][j]);
  for (int i = 0; i < 3; i++) /* row i of t times G */
    W4_GT(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], k9[3 * i], k9[3 * i + 1],
          k9[3 * i + 2]);
}

const wino_kind rl_cpu_wino4 = {.m = 4, .weight = transform_weight, .input = transform_input,
                                 .output = transform_output, .doutput = transform_doutput,
                                 .dweight = dweight_of};
