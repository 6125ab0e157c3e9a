/* cpu_winograd.c - 3x3 stride-1 f32 convolutions by Winograd F(2x2, 3x3):
 * the forward (dx is a forward, cpu_conv.c) and the weight gradient, and
 * the drivers of both (rl_cpu_wino_run_fwd, rl_cpu_wino_run_dw) that
 * F(4x4, 3x3) shares.
 *
 * A 2x2 block of outputs comes from a 4x4 tile d of the (padded) input:
 *   y = A^T [ (G g G^T) .* (B^T d B) ] A
 * so the 36 multiplies of a direct 3x3 convolution become 16, and with C
 * input channels the elementwise product is 16 independent sums over C:
 *   M[xi] (O x P) = U[xi] (O x C) @ V[xi] (C x P)      xi = 0..15
 * with U the transformed weights, V the transformed tiles (P tiles) and M
 * transformed back into outputs.  The 16 products go through the same
 * register-blocked loop as the tap path (direct.c).  Images are split over
 * threads in chunks fixed by the shapes, as in cpu_conv.c, so the result
 * does not depend on the thread count.
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0   |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1   |
 *
 * Every transform is one long vector loop over the tiles of a plane, p =
 * th*TW + tw, however few columns it has: the padded input plane is first
 * split into its four phases (even/odd rows x even/odd columns, TH+1 rows
 * of TW each), twice, the second copy one tile column on, so that input
 * value (a, b) of tile p sits at p + (a/2)*TW of phase (a%2, b%2), copy
 * b/2, for every p alike.  (A "wide" layout of TW+1 columns needs one copy
 * but computes a dropped tile per row: a sixth of the work at 10 columns.)
 * Outputs come back the same way, as four phase planes interleaved into y
 * at the end. */
#include <string.h>

#include "cpu.h"
#include "cpu_tune.h"
#include "direct.h"
#include "wino_cpu.h"
#include "winograd.h"

/* Fewest input channels, and output columns: below, the transforms (and
 * the extra tile column of the wide layout this file had then) cost more
 * than they save.  Measured on 2 threads, batch 64: 32->32 at 26x26 4.9 -> 3.9-4.4 ms, 64->64 at
 * 32x32 25.7 -> 18.3 ms, 128->128 at 16x16 28.9 -> 19.5 ms against the tap
 * loop; but 64->64 at 10x10 (8 columns out) 2.8 -> 3.1 ms. */
#define WINO_MIN_C 8
#define WINO_MIN_OW 10
bool rl_cpu_wino_fits(rl_dtype dt, const int64_t *g) {
  return dt == RL_F32 && g[G_KH] == 3 && g[G_KW] == 3 && g[G_SH] == 1 && g[G_SW] == 1 &&
         g[G_DH] == 1 && g[G_DW] == 1;
}

bool rl_cpu_wino_ok(rl_dtype dt, int64_t C, const int64_t *g) {
  return rl_cpu_wino_fits(dt, g) && C >= WINO_MIN_C && g[G_OW] >= WINO_MIN_OW;
}

wino_plan rl_cpu_wino_plan(int m, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                           const int64_t *g) {
  wino_plan p = {.m = m, .K = (m + 2) * (m + 2), .N = N, .C = C, .H = H, .W = W, .O = O,
                 .OH = g[G_OH], .OW = g[G_OW], .ph = g[G_PH], .pw = g[G_PW]};
  p.TH = (p.OH + m - 1) / m;
  p.TW = (p.OW + m - 1) / m;
  p.T = p.TH * p.TW;
  p.phase = (p.TH + 1) * p.TW;
  int64_t per = p.K * (C + O) * p.T * (int64_t)sizeof(float);
  p.nb = rl_cpu_wino_chunk_bytes() / per;
  /* but enough tiles for the product loop's blocks of positions: small
   * planes (8x8: 20 tiles an image) would leave most of each block idle */
  int64_t least = (WINO_MIN_TILES + p.T - 1) / p.T;
  p.nb = p.nb < least ? least : p.nb;
  p.nb = p.nb > N ? N : p.nb;
  return p;
}

/* u[xi] = (G g G^T)[xi] of one kernel k. */
static void transform_weight(const float *k, float *u) {
  float t[4][3];
  for (int j = 0; j < 3; j++) { /* t = G g */
    t[0][j] = k[j];
    t[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
    t[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
    t[3][j] = k[6 + j];
  }
  for (int i = 0; i < 4; i++) { /* u = t G^T */
    u[4 * i] = t[i][0];
    u[4 * i + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
    u[4 * i + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
    u[4 * i + 3] = t[i][2];
  }
}

/* The four phases of plane src, zero-padded, and again one tile column on:
 * ph8[4*s + 2*ra + cb] holds padded element (2i + ra, 2(j + s) + cb) at
 * i*TW + j. */
static void split_phases(const wino_plan *p, const float *src, float *ph8) {
  int64_t TW = p->TW, W = p->W, pw = p->pw;
  memset(ph8, 0, sizeof(float) * (size_t)(8 * p->phase));
  for (int64_t h = 0; h < p->H; h++) {
    int64_t r = h + p->ph; /* padded row */
    if (r >= 2 * (p->TH + 1)) break;
    float *e = ph8 + (2 * (r & 1)) * p->phase + (r >> 1) * TW;
    float *d[2] = {e, e + p->phase}, *d1[2] = {e + 4 * p->phase, e + 5 * p->phase};
    wino_split_row(src + h * W, W, pw, 2, d, TW);
    wino_split_row(src + h * W, W, pw - 2, 2, d1, TW);
  }
}

/* V [16][C][ld] for the nb images at x: tile (i, th, tw) in column
 * i*T + th*TW + tw. */
static void transform_input(const wino_plan *p, const float *x, int64_t nb, int64_t ld,
                            float *v, float *ph8) {
  int64_t TW = p->TW, xs = wino_plane(p->C * ld), n = p->T;
  for (int64_t i = 0; i < nb; i++)
    for (int64_t c = 0; c < p->C; c++) {
      split_phases(p, x + (i * p->C + c) * p->H * p->W, ph8);
      /* d[a][b] = phase (a%2, b%2), copy b/2, at p + (a/2)*TW */
      const float *q00 = ph8, *q01 = ph8 + p->phase, *q10 = ph8 + 2 * p->phase,
                  *q11 = ph8 + 3 * p->phase;
      const float *s00 = q00 + 4 * p->phase, *s01 = q01 + 4 * p->phase,
                  *s10 = q10 + 4 * p->phase, *s11 = q11 + 4 * p->phase;
      float *out = v + c * ld + i * p->T;
/* rows of B^T d for one column b of d, then (B^T d) B for one row of it */
#define BT(d0, d1, d2, d3, u0, u1, u2, u3)                                            \
  float u0 = (d0) - (d2), u1 = (d1) + (d2), u2 = (d2) - (d1), u3 = (d1) - (d3)
      float *o0 = out, *o1 = out + xs, *o2 = out + 2 * xs, *o3 = out + 3 * xs;
      float *o4 = out + 4 * xs, *o5 = out + 5 * xs, *o6 = out + 6 * xs, *o7 = out + 7 * xs;
      float *o8 = out + 8 * xs, *o9 = out + 9 * xs, *o10 = out + 10 * xs, *o11 = out + 11 * xs;
      float *o12 = out + 12 * xs, *o13 = out + 13 * xs, *o14 = out + 14 * xs,
            *o15 = out + 15 * xs;
#pragma omp simd
      for (int64_t t = 0; t < n; t++) {
        /* column b of d: rows 0..3 are phases (0, b%2), (1, b%2), then
         * the same one tile-row down */
        BT(q00[t], q10[t], q00[t + TW], q10[t + TW], a0, a1, a2, a3); /* b = 0 */
        BT(q01[t], q11[t], q01[t + TW], q11[t + TW], b0, b1, b2, b3); /* b = 1 */
        BT(s00[t], s10[t], s00[t + TW], s10[t + TW], c0, c1, c2, c3); /* b = 2 */
        BT(s01[t], s11[t], s01[t + TW], s11[t + TW], e0, e1, e2, e3); /* b = 3 */
        /* row a of u = B^T d is (a_a, b_a, c_a, e_a); times B */
        o0[t] = a0 - c0, o1[t] = b0 + c0, o2[t] = c0 - b0, o3[t] = b0 - e0;
        o4[t] = a1 - c1, o5[t] = b1 + c1, o6[t] = c1 - b1, o7[t] = b1 - e1;
        o8[t] = a2 - c2, o9[t] = b2 + c2, o10[t] = c2 - b2, o11[t] = b2 - e2;
        o12[t] = a3 - c3, o13[t] = b3 + c3, o14[t] = c3 - b3, o15[t] = b3 - e3;
      }
#undef BT
    }
}

/* y (+ bias) for the nb images from M [16][O][ld]: the four output phases
 * first (as the tiles), then interleaved into the rows of y. */
static void transform_output(const wino_plan *p, const float *m, int64_t nb, int64_t ld,
                             const float *b, float *y, float *ph4) {
  int64_t TW = p->TW, ms = wino_plane(p->O * ld), n = p->T, OW = p->OW;
  float *y00 = ph4, *y01 = ph4 + n, *y10 = ph4 + 2 * n, *y11 = ph4 + 3 * n;
  for (int64_t i = 0; i < nb; i++)
    for (int64_t o = 0; o < p->O; o++) {
      float bias = b ? b[o] : 0.0f;
      const float *q = m + o * ld + i * p->T;
      const float *m0 = q, *m1 = q + ms, *m2 = q + 2 * ms, *m3 = q + 3 * ms;
      const float *m4 = q + 4 * ms, *m5 = q + 5 * ms, *m6 = q + 6 * ms, *m7 = q + 7 * ms;
      const float *m8 = q + 8 * ms, *m9 = q + 9 * ms, *m10 = q + 10 * ms, *m11 = q + 11 * ms;
      const float *m12 = q + 12 * ms, *m13 = q + 13 * ms, *m14 = q + 14 * ms,
                  *m15 = q + 15 * ms;
#pragma omp simd
      for (int64_t t = 0; t < n; t++) {
        /* u = A^T m: two rows; column bb from m[bb], m[4+bb], m[8+bb], m[12+bb] */
        float u00 = m0[t] + m4[t] + m8[t], u10 = m4[t] - m8[t] - m12[t];
        float u01 = m1[t] + m5[t] + m9[t], u11 = m5[t] - m9[t] - m13[t];
        float u02 = m2[t] + m6[t] + m10[t], u12 = m6[t] - m10[t] - m14[t];
        float u03 = m3[t] + m7[t] + m11[t], u13 = m7[t] - m11[t] - m15[t];
        y00[t] = u00 + u01 + u02 + bias; /* u A */
        y01[t] = u01 - u02 - u03 + bias;
        y10[t] = u10 + u11 + u12 + bias;
        y11[t] = u11 - u12 - u13 + bias;
      }
      float *dst = y + (i * p->O + o) * p->OH * OW;
      for (int64_t oh = 0; oh < p->OH; oh++) {
        const float *e = ((oh & 1) ? y10 : y00) + (oh >> 1) * TW;
        const float *od = ((oh & 1) ? y11 : y01) + (oh >> 1) * TW;
        const float *y2[2] = {e, od};
        wino_merge_row(y2, 2, dst + oh * OW, OW);
      }
    }
}

/* U [K][O/OB][C][OB] (planes us apart), packed for rl_cpu_direct_conv: o
 * fastest within a block of OB, so that each plane is written in order,
 * once (by o, c, a scattered float at a time); rows past O zero. */
static void pack_weights(const wino_kind *k, const float *w, int64_t C, int64_t O, int64_t us,
                         float *u) {
  int K = (k->m + 2) * (k->m + 2);
  int64_t nob = (O + CONV_OB - 1) / CONV_OB;
  for (int64_t ob = 0; ob < nob; ob++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t oi = 0; oi < CONV_OB; oi++) {
        float v[36] = {0};
        if (ob * CONV_OB + oi < O) k->weight(w + ((ob * CONV_OB + oi) * C + c) * 9, v);
        for (int xi = 0; xi < K; xi++) u[xi * us + (ob * C + c) * CONV_OB + oi] = v[xi];
      }
}

int rl_cpu_wino_run_fwd(const wino_kind *k, const float *x, const float *w, const float *b,
                        int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *g,
                        float *y) {
  wino_plan p = rl_cpu_wino_plan(k->m, N, C, H, W, O, g);
  int K = p.K;
  int64_t chunks = (N + p.nb - 1) / p.nb, ldmax = p.nb * p.T;
  int64_t nob = (O + CONV_OB - 1) / CONV_OB;
  int T = rl_cpu_team(chunks, (double)p.nb * (double)(K * C * O * p.T));
  /* per thread: V (and the loop's slack past it), M, and the phase planes */
  size_t vbytes = rl_cpu_round64(sizeof(float) * (size_t)(K * wino_plane(C * ldmax) + CONV_SLACK));
  size_t mbytes = rl_cpu_round64(sizeof(float) * (size_t)(K * wino_plane(O * ldmax)));
  size_t bbytes = rl_cpu_round64(sizeof(float) * (size_t)wino_buf_floats(&p));
  size_t per = vbytes + mbytes + bbytes;
  int64_t us = wino_plane(nob * C * CONV_OB);
  size_t ubytes = sizeof(float) * (size_t)(K * us);
  size_t total = per * (size_t)T + ubytes;
  char *scratch = rl_cpu_backend.alloc(NULL, total);
  if (!scratch) return -1;
  float *u = (float *)(scratch + per * (size_t)T);
  pack_weights(k, w, C, O, us, u);
  int64_t toff[1] = {0};
#pragma omp parallel num_threads(T)
  {
    int t = omp_get_thread_num();
    char *base = scratch + per * (size_t)t;
    float *v = (float *)base;
    float *m = (float *)(base + vbytes);
    float *buf = (float *)(base + vbytes + mbytes);
    for (int64_t ck = chunks * t / T; ck < chunks * (t + 1) / T; ck++) {
      int64_t n0 = ck * p.nb, nb = N - n0 < p.nb ? N - n0 : p.nb, ld = nb * p.T;
      k->input(&p, x + n0 * C * H * W, nb, ld, v, buf);
      int64_t vs = wino_plane(C * ld), ms = wino_plane(O * ld);
      /* the loop reads past each plane's last row (for its last block of positions) */
      for (int xi = 0; xi < K; xi++)
        memset(v + xi * vs + C * ld, 0, sizeof(float) * (size_t)(vs - C * ld));
      memset(v + K * vs, 0, sizeof(float) * CONV_SLACK);
      for (int xi = 0; xi < K; xi++)
        rl_cpu_direct_conv(v + xi * vs, ld, C, O, ld, toff, 1, u + xi * us, NULL, m + xi * ms);
      k->output(&p, m, nb, ld, b, y + n0 * O * p.OH * p.OW, buf);
    }
  }
  rl_cpu_backend.free(NULL, scratch, total);
  return 0;
}

/* ---- the weight gradient ------------------------------------------------------
 *
 * y is linear in U = G g G^T, one 16-sum per tile position: so with the
 * forward's V and dM = A dy A^T (one 4x4 per 2x2 block of dy),
 *   dU[xi] (O x C) = sum over tiles  dM[xi] (O x P) @ V[xi]^T (P x C)
 * and dg = G^T dU G.  That is 16 GEMMs of K = tiles, 4x4 tiles of x read
 * at stride 2: 16 multiplies where the direct sum takes 36 per 2x2 block.
 * The tiles are the forward's; dM is zero past OH x OW.  The batch is split into the groups of
 * RL_CPU_DW_GROUPS fixed by N, each summed by one thread in chunks fixed by
 * the shapes, and the groups' dU are summed in group order in f64 before
 * the transform back: no bit depends on the thread count. */

/* dM [16][O][ld] for the nb images of dy: the four phases of each plane of
 * dy (even/odd rows x even/odd columns, zero past OH x OW) first, then
 * A g A^T at every tile alike. */
static void transform_doutput(const wino_plan *p, const float *dy, int64_t nb, int64_t ld,
                              float *dm, float *ph4) {
  int64_t TW = p->TW, ms = wino_plane(p->O * ld), n = p->T, OW = p->OW;
  float *g00 = ph4, *g01 = ph4 + n, *g10 = ph4 + 2 * n, *g11 = ph4 + 3 * n;
  for (int64_t i = 0; i < nb; i++)
    for (int64_t o = 0; o < p->O; o++) {
      memset(ph4, 0, sizeof(float) * (size_t)(4 * n));
      const float *src = dy + (i * p->O + o) * p->OH * OW;
      for (int64_t oh = 0; oh < p->OH; oh++) {
        float *d[2] = {((oh & 1) ? g10 : g00) + (oh >> 1) * TW,
                       ((oh & 1) ? g11 : g01) + (oh >> 1) * TW};
        wino_split_row(src + oh * OW, OW, 0, 2, d, TW);
      }
      float *q = dm + o * ld + i * p->T;
      float *d0 = q, *d1 = q + ms, *d2 = q + 2 * ms, *d3 = q + 3 * ms;
      float *d4 = q + 4 * ms, *d5 = q + 5 * ms, *d6 = q + 6 * ms, *d7 = q + 7 * ms;
      float *d8 = q + 8 * ms, *d9 = q + 9 * ms, *d10 = q + 10 * ms, *d11 = q + 11 * ms;
      float *d12 = q + 12 * ms, *d13 = q + 13 * ms, *d14 = q + 14 * ms, *d15 = q + 15 * ms;
#pragma omp simd
      for (int64_t t = 0; t < n; t++) {
        /* rows of A g: g0, g0 + g1, g0 - g1, -g1 (columns j = 0, 1) */
        float a0 = g00[t], b0 = g01[t];
        float a1 = g00[t] + g10[t], b1 = g01[t] + g11[t];
        float a2 = g00[t] - g10[t], b2 = g01[t] - g11[t];
        float a3 = -g10[t], b3 = -g11[t];
        /* each row (a, b) times A^T: a, a + b, a - b, -b */
        d0[t] = a0, d1[t] = a0 + b0, d2[t] = a0 - b0, d3[t] = -b0;
        d4[t] = a1, d5[t] = a1 + b1, d6[t] = a1 - b1, d7[t] = -b1;
        d8[t] = a2, d9[t] = a2 + b2, d10[t] = a2 - b2, d11[t] = -b2;
        d12[t] = a3, d13[t] = a3 + b3, d14[t] = a3 - b3, d15[t] = -b3;
      }
    }
}

bool rl_cpu_wino_dw_fits(const wino_kind *k, rl_dtype dt, int64_t N, int64_t C, int64_t H,
                         int64_t W, int64_t O, const int64_t *g) {
  if (!rl_cpu_wino_fits(dt, g)) return false;
  wino_plan p = rl_cpu_wino_plan(k->m, N, C, H, W, O, g);
  return p.nb * p.T <= INT32_MAX && O <= INT32_MAX && C <= INT32_MAX &&
         (double)RL_CPU_DW_GROUPS * p.K * (double)(O * C) * sizeof(float) <= WINO_DW_MAX_BYTES;
}

int rl_cpu_wino_run_dw(const wino_kind *k, const float *x, const float *dy, int64_t N,
                       int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *g, float *dw,
                       float *db) {
  if (!rl_cpu_wino_dw_fits(k, RL_F32, N, C, H, W, O, g)) /* the caller checked */
    return rl_err("conv2d: %lldx%lld planes are too large for the Winograd weight gradient",
                  (long long)H, (long long)W);
  wino_plan p = rl_cpu_wino_plan(k->m, N, C, H, W, O, g);
  int K = p.K;
  int64_t G = N < RL_CPU_DW_GROUPS ? N : RL_CPU_DW_GROUPS, ldmax = p.nb * p.T;
  int64_t ohw = p.OH * p.OW;
  int T = rl_cpu_team(G, (double)((N + G - 1) / G) * (double)(K * C * O * p.T));
  size_t vbytes = rl_cpu_round64(sizeof(float) * (size_t)(K * wino_plane(C * ldmax)));
  size_t mbytes = rl_cpu_round64(sizeof(float) * (size_t)(K * wino_plane(O * ldmax)));
  size_t bbytes = rl_cpu_round64(sizeof(float) * (size_t)wino_buf_floats(&p));
  size_t per = vbytes + mbytes + bbytes;
  size_t ubytes = rl_cpu_round64(sizeof(float) * (size_t)(K * O * C));
  size_t dbytes = rl_cpu_round64(sizeof(double) * (size_t)O);
  size_t sbytes = sizeof(double) * (size_t)(K * O * C);
  size_t total = per * (size_t)T + (ubytes + dbytes) * (size_t)G + sbytes;
  char *scratch = rl_cpu_backend.alloc(NULL, total);
  if (!scratch) return -1;
  char *parts = scratch + per * (size_t)T, *bparts = parts + ubytes * (size_t)G;
  double *sum = (double *)(bparts + dbytes * (size_t)G);
  int blas = T > 1 ? rl_cpu_blas_solo_begin() : 1;
#pragma omp parallel num_threads(T)
  {
    int t = omp_get_thread_num();
    char *base = scratch + per * (size_t)t;
    float *v = (float *)base, *m = (float *)(base + vbytes);
    float *buf = (float *)(base + vbytes + mbytes);
    for (int64_t gi = t; gi < G; gi += T) {
      float *du = (float *)(parts + ubytes * (size_t)gi);
      double *pb = (double *)(bparts + dbytes * (size_t)gi);
      int64_t g0 = N * gi / G, g1 = N * (gi + 1) / G;
      for (int64_t o = 0; o < O; o++) pb[o] = 0;
      for (int64_t n0 = g0; n0 < g1; n0 += p.nb) {
        int64_t nb = g1 - n0 < p.nb ? g1 - n0 : p.nb, ld = nb * p.T;
        const float *dyc = dy + n0 * O * ohw;
        k->input(&p, x + n0 * C * H * W, nb, ld, v, buf);
        k->doutput(&p, dyc, nb, ld, m, buf);
        for (int xi = 0; xi < K; xi++) /* sizes within BLAS's ints: checked above */
          rl_cpu_gemm(RL_F32, RL_F32, false, true, O, C, ld, 1.0, m + xi * wino_plane(O * ld), ld,
                      0, v + xi * wino_plane(C * ld), ld, 0, n0 == g0 ? 0.0 : 1.0, du + xi * O * C,
                      C, 0, 1);
        for (int64_t i = 0; db && i < nb; i++)
          for (int64_t o = 0; o < O; o++) {
            const float *r = dyc + (i * O + o) * ohw;
            double acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t q = 0; q < ohw; q++) acc += (double)r[q];
            pb[o] += acc;
          }
      }
    }
  }
  if (T > 1) rl_cpu_blas_solo_end(blas);
  /* dU summed over the groups in order, in f64 (each group's dU read in
   * order: gathering one element's K * G values across them reads floats
   * 4 KiB apart at O = C = 32), and taken back to dg */
  int64_t KOC = K * O * C;
  RL_PARALLEL_FOR(q, KOC, G, {
    double acc = 0;
    for (int64_t gi = 0; gi < G; gi++)
      acc += (double)((const float *)(parts + ubytes * (size_t)gi))[q];
    sum[q] = acc;
  });
  RL_PARALLEL_FOR(e, O * C, K * 4, {
    double u[36], kd[9];
    for (int xi = 0; xi < K; xi++) u[xi] = sum[xi * O * C + e];
    k->dweight(u, kd);
    for (int j = 0; j < 9; j++) dw[e * 9 + j] = (float)kd[j];
  });
  for (int64_t o = 0; db && o < O; o++) {
    double acc = 0;
    for (int64_t gi = 0; gi < G; gi++) acc += ((const double *)(bparts + dbytes * (size_t)gi))[o];
    db[o] = (float)acc;
  }
  rl_cpu_backend.free(NULL, scratch, total);
  return 0;
}

static void dweight_of(const double *u16, double *k9) { /* dg = G^T dU G */
  double u[4][4], k[3][3];
  memcpy(u, u16, sizeof u);
  RL_WINO_DWEIGHT(double, u, k);
  memcpy(k9, k, sizeof k);
}

const wino_kind rl_cpu_wino2 = {.m = 2, .weight = transform_weight, .input = transform_input,
                                 .output = transform_output, .doutput = transform_doutput,
                                 .dweight = dweight_of};

/* ---- the backend's tile entries ---------------------------------------------
 *
 * The Winograd path of engine/conv_gemm.c, which CUDA takes, calls these
 * through the backend table.  The CPU's own convolutions never do; the
 * specs switch convolutions onto that path (rl._conv_path('winograd')) to
 * gradcheck it in f64 on the CPU, with the transforms of winograd.h that
 * the CUDA kernels expand as well.  Plain loops, one tile at a time. */

/* Column of tile p = (n*TH + th)*TW + tw in chunks of nbc images of T
 * tiles each (backend.h): chunk p / (nbc*T), then rows of `rows` columns
 * for each of the 16 tile positions. */
static int64_t wino_col(int64_t p, int64_t T, int64_t nbc, int64_t rows) {
  int64_t pc = nbc * T, s = p / pc;
  return s * 16 * rows * pc + (p - s * pc);
}

/* The entries for compute type T, with the values the engine passes (x, w,
 * U, V, dy, dM, y, b, dw) stored as S: LD widens one to T, ST rounds a T
 * to S.  M and dU are T. */
#define DEFINE_WINO_ENTRIES(sfx, T, S, LD, ST)                                                 \
  static void wino_weight_##sfx(const S *w, int64_t O, int64_t C, bool flip, S *U) { \
    for (int64_t o = 0; o < O; o++)                                                 \
      for (int64_t c = 0; c < C; c++) {                                             \
        const S *g = w + (o * C + c) * 9;                                           \
        T k[3][3], u[4][4];                                                         \
        for (int i = 0; i < 3; i++)                                                 \
          for (int j = 0; j < 3; j++) k[i][j] = LD(flip ? g[(2 - i) * 3 + 2 - j] : g[i * 3 + j]); \
        RL_WINO_WEIGHT(T, k, u);                                                    \
        int64_t at = flip ? c * O + o : o * C + c;                                  \
        for (int xi = 0; xi < 16; xi++) U[xi * O * C + at] = ST(u[xi / 4][xi % 4]);     \
      }                                                                             \
  }                                                                                 \
  static void wino_input_##sfx(const S *x, int64_t nb, int64_t C, int64_t H, int64_t W, \
                               int64_t ph, int64_t pw, int64_t TH, int64_t TW,      \
                               int64_t nbc, S *V) {                                 \
    int64_t P = nb * TH * TW, pc = nbc * TH * TW;                                   \
    for (int64_t c = 0; c < C; c++)                                                 \
      for (int64_t p = 0; p < P; p++) {                                             \
        int64_t n = p / (TH * TW), th = p / TW % TH, tw = p % TW;                   \
        const S *src = x + (n * C + c) * H * W;                                     \
        T d[4][4], v[4][4];                                                         \
        for (int a = 0; a < 4; a++)                                                 \
          for (int b = 0; b < 4; b++) {                                             \
            int64_t h = 2 * th - ph + a, w = 2 * tw - pw + b;                       \
            d[a][b] = h >= 0 && h < H && w >= 0 && w < W ? LD(src[h * W + w]) : (T)0;   \
          }                                                                         \
        RL_WINO_INPUT(T, d, v);                                                     \
        S *dst = V + wino_col(p, TH * TW, nbc, C) + c * pc;                         \
        for (int xi = 0; xi < 16; xi++) dst[xi * C * pc] = ST(v[xi / 4][xi % 4]);       \
      }                                                                             \
  }                                                                                 \
  static void wino_output_##sfx(const T *M, int64_t nb, int64_t O, int64_t OH,     \
                                int64_t OW, int64_t TH, int64_t TW, const S *b, S *y) { \
    int64_t P = nb * TH * TW;                                                       \
    for (int64_t o = 0; o < O; o++)                                                 \
      for (int64_t p = 0; p < P; p++) {                                             \
        int64_t n = p / (TH * TW), th = p / TW % TH, tw = p % TW;                   \
        T m[4][4], r[2][2];                                                         \
        for (int xi = 0; xi < 16; xi++) m[xi / 4][xi % 4] = M[(xi * O + o) * P + p]; \
        RL_WINO_OUTPUT(T, m, r);                                                    \
        S *dst = y + (n * O + o) * OH * OW;                                         \
        for (int i = 0; i < 2; i++)                                                 \
          for (int j = 0; j < 2; j++)                                               \
            if (2 * th + i < OH && 2 * tw + j < OW)                                 \
              dst[(2 * th + i) * OW + 2 * tw + j] = ST(r[i][j] + (b ? LD(b[o]) : (T)0));    \
      }                                                                             \
  }                                                                                 \
  static void wino_doutput_##sfx(const S *dy, int64_t nb, int64_t O, int64_t OH,   \
                                 int64_t OW, int64_t TH, int64_t TW, int64_t nbc, S *dM) { \
    int64_t P = nb * TH * TW, pc = nbc * TH * TW;                                   \
    for (int64_t o = 0; o < O; o++)                                                 \
      for (int64_t p = 0; p < P; p++) {                                             \
        int64_t n = p / (TH * TW), th = p / TW % TH, tw = p % TW;                   \
        const S *src = dy + (n * O + o) * OH * OW;                                  \
        T g[2][2], m[4][4];                                                         \
        for (int i = 0; i < 2; i++)                                                 \
          for (int j = 0; j < 2; j++) {                                             \
            int64_t h = 2 * th + i, w = 2 * tw + j;                                 \
            g[i][j] = h < OH && w < OW ? LD(src[h * OW + w]) : (T)0;                    \
          }                                                                         \
        RL_WINO_DOUTPUT(T, g, m);                                                   \
        S *dst = dM + wino_col(p, TH * TW, nbc, O) + o * pc;                        \
        for (int xi = 0; xi < 16; xi++) dst[xi * O * pc] = ST(m[xi / 4][xi % 4]);       \
      }                                                                             \
  }                                                                                 \
  static void wino_dweight_##sfx(const T *dU, int64_t nS, int64_t O, int64_t C, S *dw) { \
    for (int64_t e = 0; e < O * C; e++) {                                           \
      T u[4][4], k[3][3];                                                           \
      for (int xi = 0; xi < 16; xi++) {                                             \
        T acc = 0;                                                                  \
        for (int64_t s = 0; s < nS; s++) acc += dU[(s * 16 + xi) * O * C + e];       \
        u[xi / 4][xi % 4] = acc;                                                    \
      }                                                                             \
      RL_WINO_DWEIGHT(T, u, k);                                                     \
      for (int i = 0; i < 9; i++) dw[e * 9 + i] = ST(k[i / 3][i % 3]);                  \
    }                                                                               \
  }
#define WINO_SAME(v) (v)
DEFINE_WINO_ENTRIES(f32, float, float, WINO_SAME, WINO_SAME)
DEFINE_WINO_ENTRIES(f64, double, double, WINO_SAME, WINO_SAME)
/* bf16: x, w, U, V, dy, dM, y, b and dw are bf16, transformed in f32 (each
 * transform's result rounded once); M and dU, the GEMMs' sums, are f32 */
DEFINE_WINO_ENTRIES(bf16, float, uint16_t, rl_f32_of_bf16, rl_bf16_of_f32)

int rl_cpu_wino_weight(rl_dtype dt, const void *w, int64_t O, int64_t C, bool flip, void *U) {
  if (dt == RL_BF16) {
    wino_weight_bf16(w, O, C, flip, U);
    return 0;
  }
  RL_CPU_DISPATCH_FLOAT("conv2d (Winograd)", wino_weight_f32(w, O, C, flip, U),
                        wino_weight_f64(w, O, C, flip, U));
}

int rl_cpu_wino_input(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H, int64_t W,
                      int64_t ph, int64_t pw, int64_t TH, int64_t TW, int64_t nbc, void *V) {
  if (dt == RL_BF16) {
    wino_input_bf16(x, nb, C, H, W, ph, pw, TH, TW, nbc, V);
    return 0;
  }
  RL_CPU_DISPATCH_FLOAT("conv2d (Winograd)",
                        wino_input_f32(x, nb, C, H, W, ph, pw, TH, TW, nbc, V),
                        wino_input_f64(x, nb, C, H, W, ph, pw, TH, TW, nbc, V));
}

int rl_cpu_wino_output(rl_dtype dt, const void *M, int64_t nb, int64_t O, int64_t OH,
                       int64_t OW, int64_t TH, int64_t TW, const void *b, void *y) {
  if (dt == RL_BF16) {
    wino_output_bf16(M, nb, O, OH, OW, TH, TW, b, y);
    return 0;
  }
  RL_CPU_DISPATCH_FLOAT("conv2d (Winograd)", wino_output_f32(M, nb, O, OH, OW, TH, TW, b, y),
                        wino_output_f64(M, nb, O, OH, OW, TH, TW, b, y));
}

int rl_cpu_wino_doutput(rl_dtype dt, const void *dy, int64_t nb, int64_t O, int64_t OH,
                        int64_t OW, int64_t TH, int64_t TW, int64_t nbc, void *dM) {
  if (dt == RL_BF16) {
    wino_doutput_bf16(dy, nb, O, OH, OW, TH, TW, nbc, dM);
    return 0;
  }
  RL_CPU_DISPATCH_FLOAT("conv2d (Winograd)",
                        wino_doutput_f32(dy, nb, O, OH, OW, TH, TW, nbc, dM),
                        wino_doutput_f64(dy, nb, O, OH, OW, TH, TW, nbc, dM));
}

int rl_cpu_wino_dweight(rl_dtype dt, const void *dU, int64_t S, int64_t O, int64_t C,
                        void *dw) {
  if (dt == RL_BF16) {
    wino_dweight_bf16(dU, S, O, C, dw);
    return 0;
  }
  RL_CPU_DISPATCH_FLOAT("conv2d (Winograd)", wino_dweight_f32(dU, S, O, C, dw),
                        wino_dweight_f64(dU, S, O, C, dw));
}
