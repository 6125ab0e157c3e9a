/* cpu_conv.c - convolutions on NCHW: the CPU's own whole-convolution
 * kernels (the conv2d entries), and im2col / col2im for the composition of
 * engine/conv_gemm.c, which these entries run when a spec forces it.
 *
 * Every backward here gathers: each input element sums the contributions of
 * the windows that cover it, in a fixed order.  No two threads write one
 * element, so results are deterministic.
 *
 * bf16 (rl.autocast's convolutions: bf16 operands, f32 sums, bf16 results)
 * is one more dtype of the measured choice, keyed apart from f32: oneDNN
 * runs it natively (cpu_dnnl.c, AVX-512 BF16 where the processor has it),
 * and every other algorithm runs its f32 kernel on the operands widened to
 * f32 (exactly: a bf16 is an f32 with a shorter mantissa, and products of
 * two bf16 are exact in f32) with each result rounded to bf16 once
 * (by_f32).  Which is faster is measured per shape, as for f32. */
#include <stdio.h>
#include <string.h>

#include "../conv_gemm.h"
#include "cpu.h"
#include "cpu_dnnl.h"
#include "cpu_tune.h"
#include "direct.h"
#include "wino_cpu.h"

/* One row of col for one image: tap (c, i, j) of every output pixel, ohw
 * values written to dst (zero where the tap falls in the padding). */
#define DEFINE_IM2COL_ROW(name, T)                                                    \
  static void name(const T *x, int64_t H, int64_t W, const int64_t *g, int64_t row,   \
                   T *dst) {                                                          \
    int64_t kh = g[G_KH], kw = g[G_KW], OH = g[G_OH], OW = g[G_OW];                   \
    int64_t c = row / (kh * kw), i = (row / kw) % kh, j = row % kw;                   \
    const T *src = x + c * H * W;                                                     \
    int64_t w0 = -g[G_PW] + j * g[G_DW], sw = g[G_SW];                                \
    bool inside = sw == 1 && w0 >= 0 && w0 + OW <= W;                                 \
    for (int64_t oh = 0; oh < OH; oh++) {                                             \
      int64_t h = oh * g[G_SH] - g[G_PH] + i * g[G_DH];                               \
      T *d = dst + oh * OW;                                                           \
      if (h < 0 || h >= H) {                                                          \
        memset(d, 0, sizeof(T) * (size_t)OW);                                         \
        continue;                                                                     \
      }                                                                               \
      const T *s = src + h * W;                                                       \
      if (inside) {                                                                   \
        memcpy(d, s + w0, sizeof(T) * (size_t)OW);                                    \
      } else {                                                                        \
        for (int64_t ow = 0; ow < OW; ow++) {                                         \
          int64_t w = ow * sw + w0;                                                   \
          d[ow] = (w >= 0 && w < W) ? s[w] : (T)0;                                    \
        }                                                                             \
      }                                                                               \
    }                                                                                 \
  }

/* Channel plane c of one image, overwritten with the sum of its taps in
 * col (rows of ldcol values, this image's block starting at col): each tap
 * in a fixed order, a straight run of additions along a row at stride 1. */
#define DEFINE_COL2IM_PLANE(name, T)                                                  \
  static void name(const T *col, int64_t ldcol, int64_t c, int64_t H, int64_t W,      \
                   const int64_t *g, T *dst) {                                        \
    int64_t kh = g[G_KH], kw = g[G_KW], OH = g[G_OH], OW = g[G_OW];                   \
    int64_t sh = g[G_SH], sw = g[G_SW], ph = g[G_PH], pw = g[G_PW];                   \
    int64_t dh = g[G_DH], dw = g[G_DW];                                               \
    memset(dst, 0, sizeof(T) * (size_t)(H * W));                                      \
    for (int64_t i = 0; i < kh; i++)                                                  \
      for (int64_t j = 0; j < kw; j++) {                                              \
        const T *src = col + ((c * kh + i) * kw + j) * ldcol;                         \
        int64_t w0 = j * dw - pw;                                                     \
        /* the output columns whose input column lies inside the image */             \
        int64_t owl = w0 >= 0 ? 0 : (-w0 + sw - 1) / sw;                              \
        int64_t owh = W - 1 - w0 < 0 ? 0 : (W - 1 - w0) / sw + 1;                      \
        if (owh > OW) owh = OW;                                                       \
        for (int64_t oh = 0; oh < OH; oh++) {                                         \
          int64_t h = oh * sh - ph + i * dh;                                          \
          if (h < 0 || h >= H) continue;                                              \
          T *drow = dst + h * W + w0;                                                 \
          const T *srow = src + oh * OW;                                              \
          if (sw == 1) {                                                              \
            for (int64_t ow = owl; ow < owh; ow++) drow[ow] += srow[ow];              \
          } else {                                                                    \
            for (int64_t ow = owl; ow < owh; ow++) drow[ow * sw] += srow[ow];         \
          }                                                                           \
        }                                                                             \
      }                                                                               \
  }

/* im2col of nb images: col [C*kh*kw, nb*ohw], one (row, image) per task. */
#define DEFINE_IM2COL(name, row_fn, T)                                                \
  static void name(const T *x, int64_t nb, int64_t C, int64_t H, int64_t W,           \
                   const int64_t *g, T *col) {                                        \
    int64_t ohw = g[G_OH] * g[G_OW], ncols = nb * ohw, rows = C * g[G_KH] * g[G_KW];  \
    RL_PARALLEL_FOR(rn, rows * nb, ohw, {                                             \
      int64_t row = rn / nb, n = rn % nb;                                             \
      row_fn(x + n * C * H * W, H, W, g, row, col + row * ncols + n * ohw);           \
    });                                                                               \
  }

/* col2im of nb images: each (image, channel) plane is owned by one thread,
 * so the result does not depend on the thread count. */
#define DEFINE_COL2IM(name, plane_fn, T)                                              \
  static void name(const T *col, int64_t nb, int64_t C, int64_t H, int64_t W,         \
                   const int64_t *g, T *x) {                                          \
    int64_t ohw = g[G_OH] * g[G_OW], ncols = nb * ohw;                                \
    RL_PARALLEL_FOR(nc, nb * C, H * W * g[G_KH] * g[G_KW], {                          \
      int64_t n = nc / C, c = nc % C;                                                 \
      plane_fn(col + n * ohw, ncols, c, H, W, g, x + nc * H * W);                     \
    });                                                                               \
  }

DEFINE_IM2COL_ROW(im2col_row_f32, float)
DEFINE_IM2COL_ROW(im2col_row_f64, double)
DEFINE_IM2COL_ROW(im2col_row_u16, uint16_t) /* bf16: bits moved, 0 is +0 */
DEFINE_COL2IM_PLANE(col2im_plane_f32, float)
DEFINE_COL2IM_PLANE(col2im_plane_f64, double)
DEFINE_IM2COL(im2col_f32, im2col_row_f32, float)
DEFINE_IM2COL(im2col_f64, im2col_row_f64, double)
DEFINE_IM2COL(im2col_u16, im2col_row_u16, uint16_t)
DEFINE_COL2IM(col2im_f32, col2im_plane_f32, float)
DEFINE_COL2IM(col2im_f64, col2im_plane_f64, double)

/* bf16 x from an f32 col: each plane gathered in f32 (a plane per thread
 * in one buffer), then rounded once. */
static int col2im_bf16(const float *col, int64_t nb, int64_t C, int64_t H, int64_t W,
                       const int64_t *g, uint16_t *x) {
  int64_t ohw = g[G_OH] * g[G_OW], ncols = nb * ohw, hw = H * W;
  size_t bytes = sizeof(float) * (size_t)(hw * omp_get_max_threads());
  float *buf = rl_cpu_backend.alloc(NULL, bytes);
  if (!buf) return -1;
  RL_PARALLEL_FOR(nc, nb * C, hw * g[G_KH] * g[G_KW], {
    int64_t n = nc / C, c = nc % C;
    float *plane = buf + hw * omp_get_thread_num();
    col2im_plane_f32(col + n * ohw, ncols, c, H, W, g, plane);
    for (int64_t i = 0; i < hw; i++) x[nc * hw + i] = rl_bf16_of_f32(plane[i]);
  });
  rl_cpu_backend.free(NULL, buf, bytes);
  return 0;
}

int rl_cpu_im2col(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H, int64_t W,
                  const int64_t *g, void *col) {
  if (dt == RL_BF16) { /* a bf16 convolution's col (engine/conv_gemm.c) */
    im2col_u16(x, nb, C, H, W, g, col);
    return 0;
  }
  RL_CPU_DISPATCH_FLOAT("conv2d", im2col_f32(x, nb, C, H, W, g, col),
                        im2col_f64(x, nb, C, H, W, g, col));
}

int rl_cpu_col2im(rl_dtype dt, const void *col, int64_t nb, int64_t C, int64_t H,
                  int64_t W, const int64_t *g, void *x) {
  if (dt == RL_BF16) return col2im_bf16(col, nb, C, H, W, g, x); /* f32 col */
  RL_CPU_DISPATCH_FLOAT("conv2d", col2im_f32(col, nb, C, H, W, g, x),
                        col2im_f64(col, nb, C, H, W, g, x));
}

/* The implicit GEMM's arithmetic (backend.h), for the specs that force
 * that path on the CPU: each output the f32 sum of its bf16 products over
 * k = (channel, tap) in order, plus the bias, rounded once. */
int rl_cpu_conv_implicit(rl_dtype dt, const void *xv, int64_t N, int64_t C, int64_t H,
                         int64_t W, const int64_t *g, const void *wv, bool flip, int64_t O,
                         const void *bv, void *yv) {
  if (dt != RL_BF16)
    return rl_err("conv2d: the implicit GEMM takes bf16, not %s", rl_dtype_name(dt));
  const uint16_t *x = xv, *w = wv, *b = bv;
  uint16_t *y = yv;
  int64_t kh = g[G_KH], kw = g[G_KW], khw = kh * kw, OH = g[G_OH], OW = g[G_OW];
  RL_PARALLEL_FOR(no, N * O, OH * OW * C * khw, {
    int64_t n = no / O, o = no % O;
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        float acc = 0.f;
        for (int64_t c = 0; c < C; c++)
          for (int64_t r = 0; r < kh; r++) {
            int64_t ih = oh * g[G_SH] - g[G_PH] + r * g[G_DH];
            for (int64_t q = 0; q < kw; q++) {
              int64_t iw = ow * g[G_SW] - g[G_PW] + q * g[G_DW];
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              /* flipped: w is [C', O'] = [c, o] here, the kernel rotated */
              int64_t wi = flip ? (c * O + o) * khw + (khw - 1 - (r * kw + q))
                                : (o * C + c) * khw + r * kw + q;
              acc = fmaf(rl_f32_of_bf16(x[((n * C + c) * H + ih) * W + iw]),
                         rl_f32_of_bf16(w[wi]), acc);
            }
          }
        if (b) acc += rl_f32_of_bf16(b[o]);
        y[(no * OH + oh) * OW + ow] = rl_bf16_of_f32(acc);
      }
  });
  return 0;
}

/* Its weight gradient (backend.h): each chunk's sum over its pixels in
 * order, in f32, then the chunks' sums in order, rounded once. */
int rl_cpu_conv_implicit_dw(rl_dtype dt, const void *xv, const void *dyv, int64_t N,
                            int64_t C, int64_t H, int64_t W, const int64_t *g, int64_t O,
                            int64_t S, float *ws, void *dwv) {
  if (dt != RL_BF16)
    return rl_err("conv2d: the implicit GEMM takes bf16, not %s", rl_dtype_name(dt));
  const uint16_t *x = xv, *dy = dyv;
  uint16_t *dw = dwv;
  int64_t kh = g[G_KH], kw = g[G_KW], khw = kh * kw, K = C * khw, OH = g[G_OH], OW = g[G_OW];
  int64_t ohw = OH * OW, P = N * ohw, chunk = rl_implicit_dw_chunk(P, S);
  RL_PARALLEL_FOR(ok, O * K, P, {
    int64_t o = ok / K, k = ok % K, c = k / khw, r = k % khw / kw, q = k % kw;
    float total = 0.f;
    for (int64_t s = 0; s < S; s++) {
      float acc = 0.f;
      int64_t end = (s + 1) * chunk < P ? (s + 1) * chunk : P;
      for (int64_t p = s * chunk; p < end; p++) {
        int64_t n = p / ohw, pix = p % ohw, oh = pix / OW, ow = pix % OW;
        int64_t ih = oh * g[G_SH] - g[G_PH] + r * g[G_DH], iw = ow * g[G_SW] - g[G_PW] + q * g[G_DW];
        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
        acc = fmaf(rl_f32_of_bf16(dy[(n * O + o) * ohw + pix]),
                   rl_f32_of_bf16(x[((n * C + c) * H + ih) * W + iw]), acc);
      }
      ws[s * O * K + ok] = acc;
      total += acc;
    }
    dw[ok] = rl_bf16_of_f32(total);
  });
  return 0;
}

/* ---- whole convolutions, a few images at a time ---------------------------
 *
 * On the CPU a convolution of a batch is split over threads by chunks of
 * images, and each thread works a chunk at a time with GEMMs on that thread
 * alone (OpenBLAS runs single-threaded inside a parallel region): a chunk's
 * data stays in the core's L2 cache, and the threads meet once per call
 * instead of at every GEMM.
 *
 * Stride 1 with enough input channels goes tap by tap and needs no im2col.
 * Stage the chunk's input as [C, nb, Hp, Wp] (zero-padded planes of its nb
 * images side by side for each channel) and lay the output out the same
 * way, [O, nb, Hp, Wp], of which rows oh < OH and columns ow < OW of each
 * plane are real.  Output q then reads, for tap (i, j), the staged input at
 * q + off_ij with off_ij = i*dh*Wp + j*dw, so tap (i, j) is one GEMM of
 * W[:, :, i, j] [O, C] against the staged input itself, shifted:
 *   y_wide [O, n] = sum over taps of W_ij @ x_st[:, off_ij : off_ij + n]
 * with n = (nb-1)*Hp*Wp + (OH-1)*Wp + OW, which ends exactly at the last
 * staged element.  The other outputs are dropped; going backward they are
 * zero in dy_wide, so they add nothing to dW or dx:
 *   dW_ij += dy_wide @ x_st[:, off_ij ...]^T
 *   dx_st[:, off_ij ...] += W_ij^T @ dy_wide
 * A single unpadded image needs no staging, and a 1x1 kernel on a single
 * image no wide output.  In f32 the forward's taps run in one direct loop
 * (direct.c) instead of nine GEMMs.  Other convolutions take an im2col of
 * one image at a time (a few hundred KB for the paper's networks).
 *
 * 3x3 stride-1 f32 convolutions may also take Winograd, F(2x2, 3x3) or
 * F(4x4, 3x3), for the forward, dx and dW (cpu_winograd.c,
 * cpu_winograd4.c).
 *
 * Which of the three a shape takes (Winograd, the tap path, "direct", or
 * im2col) is measured on its first use in f32, for the forward, for dx and
 * for dW (with db) apart: every candidate runs, the
 * fastest is kept for the process and, through cpu_tune.c, for every later
 * process on the machine (RL_CPU_CONV forces one).  f64, and work too
 * small to time, go by the rules below (RL_CONV_TAP_*, WINO_MIN_*), which
 * were the measured choices on the first machines.
 *
 * The weight gradient sums over images.  The batch is cut into groups, and
 * groups into chunks, by the shapes only (never by the thread count); each
 * group sums its chunks in order into its own partial dW, and the partials
 * are added in group order: the same result for any number of threads. */

/* Most groups of images for the weight gradient, and the most bytes their
 * partial sums may take. */
#define RL_CONV_DW_BYTES ((int64_t)64 << 20)
/* Fewest input channels for the tap-by-tap path: below, one im2col GEMM of
 * depth C*kh*kw beats kh*kw GEMMs of depth C. */
#define RL_CONV_TAP_MIN_C 8
/* Most taps (kh * kw) of the tap path. */
#define RL_CONV_MAX_TAPS 64
/* Most wide outputs per real one on the tap path (Hp*Wp / (OH*OW) at most
 * 5/4): the GEMMs compute the dropped ones too, and on small planes that
 * costs more than an im2col (CNN002's 10x10 -> 8x8 layer: 20% slower). */
#define RL_CONV_TAP_WASTE_NUM 5
#define RL_CONV_TAP_WASTE_DEN 4
/* Below this many multiply-adds a forward or backward pass is not timed:
 * the rule chooses. */
#define RL_CONV_MEASURE_MIN 4e6
/* Staged input, wide output and staged input gradient of one chunk stay
 * under rl_cpu_conv_chunk_bytes(): half a core's L2. */

typedef struct {
  rl_dtype dt;
  size_t es;
  int64_t N, C, H, W, O, K, ohw, OH, OW, taps;
  const int64_t *g;
  int64_t nb;   /* images per chunk (1 on the im2col path) */
  int64_t G;    /* groups of images for the weight gradient */
  bool by_taps; /* the tap-by-tap path; the rest only matter for it */
  bool padded;
  int64_t Hp, Wp, plane, nw; /* nw = (OH-1)*Wp + OW */
} conv_plan;

/* Per-thread scratch: one image's im2col, or a chunk's staged input, wide
 * output and staged input gradient. */
typedef struct {
  char *col, *xs, *wide, *dxs;
} conv_scratch;

/* Whether the tap path can run the convolution at all, and whether the
 * rule would take it. */
static bool taps_fit(const int64_t *g) {
  return g[G_SH] == 1 && g[G_SW] == 1 && g[G_KH] * g[G_KW] <= RL_CONV_MAX_TAPS;
}

static bool taps_rule(int64_t C, int64_t H, int64_t W, const int64_t *g) {
  int64_t plane = (H + 2 * g[G_PH]) * (W + 2 * g[G_PW]);
  return taps_fit(g) && C >= RL_CONV_TAP_MIN_C &&
         plane * RL_CONV_TAP_WASTE_DEN <= g[G_OH] * g[G_OW] * RL_CONV_TAP_WASTE_NUM;
}

/* bwd: the plan of a backward pass; dw, dx: which gradients it forms;
 * taps: the tap path (else im2col). */
static conv_plan conv_plan_of(rl_dtype dt, int64_t N, int64_t C, int64_t H, int64_t W,
                              int64_t O, const int64_t *g, bool bwd, bool dw, bool dx,
                              bool taps) {
  conv_plan p = {.dt = dt, .es = rl_dtype_size(dt), .N = N, .C = C, .H = H, .W = W, .O = O,
                 .OH = g[G_OH], .OW = g[G_OW], .taps = g[G_KH] * g[G_KW], .g = g, .nb = 1};
  p.K = C * p.taps;
  p.ohw = p.OH * p.OW;
  p.Hp = H + 2 * g[G_PH];
  p.Wp = W + 2 * g[G_PW];
  p.plane = p.Hp * p.Wp;
  p.by_taps = taps && taps_fit(g);
  p.padded = g[G_PH] || g[G_PW];
  p.nw = (p.OH - 1) * p.Wp + p.OW;
  p.G = 1;
  if (bwd && dw) {
    int64_t fit = RL_CONV_DW_BYTES / (O * p.K * (int64_t)p.es);
    p.G = N < RL_CPU_DW_GROUPS ? N : RL_CPU_DW_GROUPS;
    if (p.G > fit) p.G = fit > 1 ? fit : 1;
  }
  if (p.by_taps) {
    int64_t per = (C * (bwd && dx ? 2 : 1) + O) * p.plane * (int64_t)p.es;
    int64_t most = bwd ? (N + p.G - 1) / p.G : N;
    p.nb = rl_cpu_conv_chunk_bytes() / per;
    p.nb = p.nb < 1 ? 1 : p.nb > most ? most : p.nb;
  }
  return p;
}

/* A chunk of nb images is staged unless it is one unpadded image, and its
 * output goes through the wide scratch unless it is one image whose rows
 * are already as wide as the input's (a 1x1 kernel). */
static bool staged(const conv_plan *p, int64_t nb) { return p->padded || nb > 1; }
static bool direct_out(const conv_plan *p, int64_t nb) { return nb == 1 && p->Wp == p->OW; }

/* Whether a forward pass on the tap path takes rl_cpu_direct_conv (f32 only; f64,
 * and every backward pass, keep to BLAS). */
static bool direct_taps(const conv_plan *p) { return p->by_taps && p->dt == RL_F32; }

/* Bytes of one thread's scratch (fwd: for a forward pass).  The direct f32
 * forward always stages its input, and reads CONV_SLACK past it. */
static size_t scratch_bytes(const conv_plan *p, bool fwd, bool dx) {
  if (!p->by_taps) return rl_cpu_round64((size_t)(p->K * p->ohw) * p->es);
  size_t st = rl_cpu_round64((size_t)(p->C * p->nb * p->plane) * p->es + 4 * CONV_SLACK);
  size_t wide = rl_cpu_round64((size_t)(p->O * p->nb * p->plane) * p->es);
  if (fwd && direct_taps(p)) return st + wide;
  return (staged(p, p->nb) ? st * (dx ? 2 : 1) : 0) + (direct_out(p, p->nb) ? 0 : wide);
}

static conv_scratch scratch_at(const conv_plan *p, char *base, bool fwd, bool dx) {
  conv_scratch s = {NULL, NULL, NULL, NULL};
  if (!p->by_taps) {
    s.col = base;
    return s;
  }
  size_t st = rl_cpu_round64((size_t)(p->C * p->nb * p->plane) * p->es + 4 * CONV_SLACK);
  if (fwd && direct_taps(p)) {
    s.xs = base;
    s.wide = base + st;
    return s;
  }
  if (staged(p, p->nb)) {
    s.xs = base, base += st;
    if (dx) s.dxs = base, base += st;
  }
  if (!direct_out(p, p->nb)) s.wide = base;
  return s;
}

/* Copy rows of `len` elements: n rows, from src at stride ss to dst at
 * stride ds (elements of es bytes). */
static void copy_rows(size_t es, char *dst, int64_t ds, const char *src, int64_t ss,
                      int64_t n, int64_t len) {
  for (int64_t r = 0; r < n; r++)
    memcpy(dst + (size_t)(r * ds) * es, src + (size_t)(r * ss) * es, (size_t)len * es);
}

/* Where image i's plane c (of a staged chunk of nb) keeps its pixel (0, 0). */
static size_t staged_at(const conv_plan *p, int64_t nb, int64_t c, int64_t i) {
  return (size_t)((c * nb + i) * p->plane + p->g[G_PH] * p->Wp + p->g[G_PW]) * p->es;
}

/* nb images from x as [C, nb, Hp, Wp], zero-padded. */
static void stage_input(const conv_plan *p, const char *x, int64_t nb, char *xs) {
  if (p->padded) memset(xs, 0, (size_t)(p->C * nb * p->plane) * p->es);
  for (int64_t i = 0; i < nb; i++)
    for (int64_t c = 0; c < p->C; c++)
      copy_rows(p->es, xs + staged_at(p, nb, c, i), p->Wp,
                x + (size_t)((i * p->C + c) * p->H * p->W) * p->es, p->W, p->H, p->W);
}

/* n elements of src at stride `stride` into dst, packed. */
static void gather_strided(size_t es, char *dst, const char *src, int64_t n, int64_t stride) {
  if (es == 4)
    for (int64_t k = 0; k < n; k++) ((float *)dst)[k] = ((const float *)src)[k * stride];
  else
    for (int64_t k = 0; k < n; k++) ((double *)dst)[k] = ((const double *)src)[k * stride];
}

/* Rows of y ([O] rows of n values at stride ld) set to the bias. */
static void fill_bias(rl_dtype dt, const void *b, int64_t O, int64_t n, int64_t ld, void *y) {
  for (int64_t o = 0; o < O; o++) {
    if (dt == RL_F32) {
      float v = ((const float *)b)[o], *r = (float *)y + o * ld;
#pragma omp simd
      for (int64_t q = 0; q < n; q++) r[q] = v;
    } else {
      double v = ((const double *)b)[o], *r = (double *)y + o * ld;
#pragma omp simd
      for (int64_t q = 0; q < n; q++) r[q] = v;
    }
  }
}

/* Offset of tap t in a staged plane, in bytes. */
static size_t tap_offset(const conv_plan *p, int64_t t) {
  int64_t i = t / p->g[G_KW], j = t % p->g[G_KW];
  return (size_t)(i * p->g[G_DH] * p->Wp + j * p->g[G_DW]) * p->es;
}

static void im2col_image(const conv_plan *p, const void *x, void *col) {
  for (int64_t row = 0; row < p->K; row++) {
    if (p->dt == RL_F32)
      im2col_row_f32(x, p->H, p->W, p->g, row, (float *)col + row * p->ohw);
    else
      im2col_row_f64(x, p->H, p->W, p->g, row, (double *)col + row * p->ohw);
  }
}

static void col2im_image(const conv_plan *p, const void *col, void *x) {
  int64_t hw = p->H * p->W;
  for (int64_t c = 0; c < p->C; c++) {
    if (p->dt == RL_F32)
      col2im_plane_f32(col, p->ohw, c, p->H, p->W, p->g, (float *)x + c * hw);
    else
      col2im_plane_f64(col, p->ohw, c, p->H, p->W, p->g, (double *)x + c * hw);
  }
}

/* The chunk's dy ([nb, O, OH, OW] at dy) laid out wide and zero elsewhere. */
static void widen(const conv_plan *p, const char *dy, int64_t nb, char *wide) {
  int64_t ld = nb * p->plane;
  memset(wide, 0, (size_t)(p->O * ld) * p->es);
  for (int64_t i = 0; i < nb; i++)
    for (int64_t o = 0; o < p->O; o++)
      copy_rows(p->es, wide + (size_t)(o * ld + i * p->plane) * p->es, p->Wp,
                dy + (size_t)((i * p->O + o) * p->ohw) * p->es, p->OW, p->OH, p->OW);
}

/* w [O, C, taps] packed for rl_cpu_direct_conv as [taps][O/OB][C][OB]; output
 * rows past the last are zero. */
static void pack_direct(const conv_plan *p, const float *w, float *wk) {
  int64_t nob = (p->O + CONV_OB - 1) / CONV_OB;
  for (int64_t t = 0; t < p->taps; t++)
    for (int64_t ob = 0; ob < nob; ob++)
      for (int64_t c = 0; c < p->C; c++)
        for (int64_t oi = 0; oi < CONV_OB; oi++) {
          int64_t o = ob * CONV_OB + oi;
          wk[((t * nob + ob) * p->C + c) * CONV_OB + oi] =
              o < p->O ? w[(o * p->C + c) * p->taps + t] : 0.0f;
        }
}

/* Tap offsets in elements. */
static void tap_offsets(const conv_plan *p, int64_t *toff) {
  for (int64_t t = 0; t < p->taps; t++) toff[t] = (int64_t)(tap_offset(p, t) / p->es);
}

/* y for nb images from x.  w is [O, K], or on the tap path the repacked
 * [taps, O, C] (in f32: the direct loop's packing). */
static void fwd_chunk(const conv_plan *p, const char *x, int64_t nb, const char *w,
                      const void *b, char *y, const conv_scratch *s) {
  size_t es = p->es;
  if (!p->by_taps) { /* nb == 1 */
    im2col_image(p, x, s->col);
    if (b) fill_bias(p->dt, b, p->O, p->ohw, p->ohw, y);
    rl_cpu_gemm(p->dt, p->dt, false, false, p->O, p->ohw, p->K, 1.0, w, p->K, 0, s->col, p->ohw, 0,
                b ? 1.0 : 0.0, y, p->ohw, 0, 1);
    return;
  }
  int64_t n = (nb - 1) * p->plane + p->nw, ld = nb * p->plane;
  if (direct_taps(p)) { /* staged always, into the wide output */
    int64_t toff[RL_CONV_MAX_TAPS];
    tap_offsets(p, toff);
    stage_input(p, x, nb, s->xs);
    memset(s->xs + (size_t)(p->C * ld) * es, 0, CONV_SLACK * sizeof(float));
    rl_cpu_direct_conv((const float *)s->xs, ld, p->C, p->O, n, toff, p->taps,
                       (const float *)w, b, (float *)s->wide);
    for (int64_t i = 0; i < nb; i++)
      for (int64_t o = 0; o < p->O; o++)
        copy_rows(es, y + (size_t)((i * p->O + o) * p->ohw) * es, p->OW,
                  s->wide + (size_t)(o * ld + i * p->plane) * es, p->Wp, p->OH, p->OW);
    return;
  }
  const char *src = x;
  if (staged(p, nb)) stage_input(p, x, nb, s->xs), src = s->xs;
  bool direct = direct_out(p, nb);
  char *yw = direct ? y : s->wide;
  int64_t ldy = direct ? p->ohw : ld;
  if (b) fill_bias(p->dt, b, p->O, n, ldy, yw);
  for (int64_t t = 0; t < p->taps; t++)
    rl_cpu_gemm(p->dt, p->dt, false, false, p->O, n, p->C, 1.0, w + (size_t)(t * p->O * p->C) * es,
                p->C, 0, src + tap_offset(p, t), ld, 0, b || t ? 1.0 : 0.0, yw, ldy, 0, 1);
  if (!direct)
    for (int64_t i = 0; i < nb; i++)
      for (int64_t o = 0; o < p->O; o++)
        copy_rows(es, y + (size_t)((i * p->O + o) * p->ohw) * es, p->OW,
                  yw + (size_t)(o * ld + i * p->plane) * es, p->Wp, p->OH, p->OW);
}

/* pb[o] += the sum of dy over the chunk's images and pixels. */
static void bias_sums(const conv_plan *p, const char *dy, int64_t nb, double *pb) {
  for (int64_t i = 0; i < nb; i++)
    for (int64_t o = 0; o < p->O; o++) {
      double acc = 0;
      if (p->dt == RL_F32) {
        const float *r = (const float *)dy + (i * p->O + o) * p->ohw;
#pragma omp simd reduction(+ : acc)
        for (int64_t q = 0; q < p->ohw; q++) acc += (double)r[q];
      } else {
        const double *r = (const double *)dy + (i * p->O + o) * p->ohw;
#pragma omp simd reduction(+ : acc)
        for (int64_t q = 0; q < p->ohw; q++) acc += r[q];
      }
      pb[o] += acc;
    }
}

/* For nb images: part (+)= their dW (when part; `first` overwrites), pb +=
 * their db (when pb), and their dx (when dx).  part is [O, K] on the im2col
 * path, [taps, O, C] on the tap path. */
static void bwd_chunk(const conv_plan *p, const char *x, int64_t nb, const char *w,
                      const char *dy, char *dx, char *part, bool first, double *pb,
                      const conv_scratch *s) {
  size_t es = p->es;
  if (pb) bias_sums(p, dy, nb, pb);
  if (!p->by_taps) { /* nb == 1 */
    if (part) { /* part (+)= dy_n [O, ohw] @ col_n^T [ohw, K] */
      im2col_image(p, x, s->col);
      rl_cpu_gemm(p->dt, p->dt, false, true, p->O, p->K, p->ohw, 1.0, dy, p->ohw, 0, s->col, p->ohw,
                  0, first ? 0.0 : 1.0, part, p->K, 0, 1);
    }
    if (dx) { /* dcol = W^T [K, O] @ dy_n [O, ohw], gathered into dx_n */
      rl_cpu_gemm(p->dt, p->dt, true, false, p->K, p->ohw, p->O, 1.0, w, p->K, 0, dy, p->ohw, 0,
                  0.0, s->col, p->ohw, 0, 1);
      col2im_image(p, s->col, dx);
    }
    return;
  }
  int64_t n = (nb - 1) * p->plane + p->nw, ld = nb * p->plane;
  bool direct = direct_out(p, nb), st = staged(p, nb);
  const char *dyw = dy;
  if (!direct) widen(p, dy, nb, s->wide), dyw = s->wide;
  int64_t ldy = direct ? p->ohw : ld;
  if (part) {
    const char *src = x;
    if (st) stage_input(p, x, nb, s->xs), src = s->xs;
    for (int64_t t = 0; t < p->taps; t++)
      rl_cpu_gemm(p->dt, p->dt, false, true, p->O, p->C, n, 1.0, dyw, ldy, 0,
                  src + tap_offset(p, t), ld, 0, first ? 0.0 : 1.0,
                  part + (size_t)(t * p->O * p->C) * es, p->C, 0, 1);
  }
  if (dx) {
    char *dxs = st ? s->dxs : dx;
    memset(dxs, 0, (size_t)(p->C * ld) * es);
    for (int64_t t = 0; t < p->taps; t++)
      rl_cpu_gemm(p->dt, p->dt, true, false, p->C, n, p->O, 1.0, w + (size_t)(t * p->O * p->C) * es,
                  p->C, 0, dyw, ldy, 0, 1.0, dxs + tap_offset(p, t), ld, 0, 1);
    if (st)
      for (int64_t i = 0; i < nb; i++)
        for (int64_t c = 0; c < p->C; c++)
          copy_rows(es, dx + (size_t)((i * p->C + c) * p->H * p->W) * es, p->W,
                    dxs + staged_at(p, nb, c, i), p->Wp, p->H, p->W);
  }
}

/* w [O, C, taps] repacked as [taps, O, C] for the tap path. */
static void repack_taps(const conv_plan *p, const char *w, char *wr) {
  for (int64_t t = 0; t < p->taps; t++)
    gather_strided(p->es, wr + (size_t)(t * p->O * p->C) * p->es, w + (size_t)t * p->es,
                   p->O * p->C, p->taps);
}

static int conv_check(const conv_plan *p) {
  if (p->dt != RL_F32 && p->dt != RL_F64)
    return rl_err("conv2d: not defined for %s", rl_dtype_name(p->dt));
  if (p->K > INT32_MAX || p->ohw > INT32_MAX || p->O > INT32_MAX ||
      p->nb * p->plane > INT32_MAX)
    return rl_err("conv2d: %lld x %lld x %lld is too large for BLAS", (long long)p->O,
                  (long long)p->K, (long long)p->ohw);
  return 0;
}

/* A convolution's operands, for running it by one algorithm or another. */
typedef struct {
  rl_dtype dt;
  const void *x, *w, *b, *dy;
  void *y, *dx, *dw, *db;
  int64_t N, C, H, W, O;
  const int64_t *g;
} conv_args;

/* The dtype an algorithm's own kernels compute a pass in: bf16 in f32. */
static rl_dtype compute_dt(rl_dtype dt) { return dt == RL_BF16 ? RL_F32 : dt; }

static bool is_dnnl(int alg) { return alg == RL_CPU_ALG_ONEDNN || alg == RL_CPU_ALG_ONEDNN_WINO; }

typedef int (*conv_pass_fn)(int alg, const conv_args *a);

/* A bf16 pass by alg's f32 kernels: the operands a has (x, w, b, dy)
 * widened into f32 scratch, the pass run on them, and each result it asks
 * for (y, dx, dw, db) rounded to bf16 once. */
static int by_f32(conv_pass_fn run, int alg, const conv_args *a) {
  const int64_t *g = a->g;
  int64_t n_x = a->N * a->C * a->H * a->W, n_w = a->O * a->C * g[G_KH] * g[G_KW];
  int64_t n_y = a->N * a->O * g[G_OH] * g[G_OW];
  struct {
    const void *in;
    void *out;
    int64_t n;
  } t[8] = {{a->x, NULL, n_x},  {a->w, NULL, n_w},  {a->b, NULL, a->O}, {a->dy, NULL, n_y},
            {NULL, a->y, n_y},  {NULL, a->dx, n_x}, {NULL, a->dw, n_w}, {NULL, a->db, a->O}};
  size_t at[8], total = 0;
  for (int i = 0; i < 8; i++) {
    at[i] = total;
    if (t[i].in || t[i].out) total += rl_cpu_round64(sizeof(float) * (size_t)t[i].n);
  }
  char *buf = rl_cpu_backend.alloc(NULL, total);
  if (!buf) return -1;
  float *f[8];
  for (int i = 0; i < 8; i++) {
    f[i] = t[i].in || t[i].out ? (float *)(buf + at[i]) : NULL;
    if (!t[i].in) continue;
    const uint16_t *src = t[i].in;
    float *dst = f[i];
    RL_PARALLEL_FOR(e, t[i].n, 1, { dst[e] = rl_f32_of_bf16(src[e]); });
  }
  conv_args w = *a;
  w.dt = RL_F32;
  w.x = f[0], w.w = f[1], w.b = f[2], w.dy = f[3];
  w.y = f[4], w.dx = f[5], w.dw = f[6], w.db = f[7];
  int rc = run(alg, &w);
  for (int i = 4; i < 8 && rc == 0; i++) {
    if (!t[i].out) continue;
    const float *src = f[i];
    uint16_t *dst = t[i].out;
    RL_PARALLEL_FOR(e, t[i].n, 1, { dst[e] = rl_bf16_of_f32(src[e]); });
  }
  rl_cpu_backend.free(NULL, buf, total);
  return rc;
}

/* The Winograd kernels an algorithm names, or NULL. */
static const wino_kind *wino_of(int alg) {
  return alg == RL_CPU_ALG_WINOGRAD    ? &rl_cpu_wino2
         : alg == RL_CPU_ALG_WINOGRAD4 ? &rl_cpu_wino4
                                       : NULL;
}

static int conv_fwd(int alg, const conv_args *a) {
  rl_dtype dt = a->dt;
  const void *x = a->x, *w = a->w, *b = a->b;
  void *y = a->y;
  int64_t N = a->N, C = a->C, H = a->H, W = a->W, O = a->O;
  const int64_t *g = a->g;
  if (is_dnnl(alg)) return rl_cpu_dnnl_fwd(alg == RL_CPU_ALG_ONEDNN_WINO, dt, x, w, b, N, C, H, W, O, g, y);
  if (dt == RL_BF16) return by_f32(conv_fwd, alg, a);
  if (wino_of(alg)) return rl_cpu_wino_run_fwd(wino_of(alg), x, w, b, N, C, H, W, O, g, y);
  conv_plan p = conv_plan_of(dt, N, C, H, W, O, g, false, false, false, alg == RL_CPU_ALG_DIRECT);
  if (conv_check(&p)) return -1;
  int64_t chunks = (N + p.nb - 1) / p.nb;
  int T = rl_cpu_team(chunks, p.nb * p.K * p.ohw * O);
  size_t per = scratch_bytes(&p, true, false);
  int64_t opad = (O + CONV_OB - 1) / CONV_OB * CONV_OB;
  size_t wbytes = p.by_taps ? rl_cpu_round64((size_t)(opad * p.K) * p.es) : 0;
  size_t total = per * (size_t)T + wbytes;
  char *scratch = rl_cpu_backend.alloc(NULL, total);
  if (!scratch) return -1;
  const char *wk = w;
  if (p.by_taps) {
    char *wr = scratch + per * (size_t)T;
    if (direct_taps(&p)) pack_direct(&p, w, (float *)wr);
    else repack_taps(&p, w, wr);
    wk = wr;
  }
  size_t xs = (size_t)(C * H * W) * p.es, ys = (size_t)(O * p.ohw) * p.es;
  int blas = T > 1 ? rl_cpu_blas_solo_begin() : 1;
#pragma omp parallel num_threads(T)
  {
    int t = omp_get_thread_num();
    conv_scratch s = scratch_at(&p, scratch + per * (size_t)t, true, false);
    for (int64_t k = chunks * t / T; k < chunks * (t + 1) / T; k++) {
      int64_t n0 = k * p.nb, nb = N - n0 < p.nb ? N - n0 : p.nb;
      fwd_chunk(&p, (const char *)x + n0 * xs, nb, wk, b, (char *)y + n0 * ys, &s);
    }
  }
  if (T > 1) rl_cpu_blas_solo_end(blas);
  rl_cpu_backend.free(NULL, scratch, total);
  return 0;
}

/* For a 3x3 stride-1 convolution, dx is itself one: dy convolved with the
 * weights transposed ([C, O]) and flipped, padding 2 - p, giving H x W, g2.
 * Whether Winograd can form dx that way (rule: and whether the rule would
 * take Winograd for it). */
static bool dx_wino_fits(rl_dtype dt, int64_t C, int64_t H, int64_t W, int64_t O,
                         const int64_t *g, int64_t *g2, bool rule) {
  if (dt != RL_F32 || g[G_KH] != 3 || g[G_KW] != 3 || g[G_SH] != 1 || g[G_SW] != 1 ||
      g[G_DH] != 1 || g[G_DW] != 1 || g[G_PH] > 2 || g[G_PW] > 2 || (rule && C < 8) || H < 1 ||
      W < 1)
    return false;
  memcpy(g2, g, sizeof(int64_t) * G_N);
  g2[G_PH] = 2 - g[G_PH];
  g2[G_PW] = 2 - g[G_PW];
  g2[G_OH] = H;
  g2[G_OW] = W;
  return rule ? rl_cpu_wino_ok(dt, O, g2) : rl_cpu_wino_fits(dt, g2);
}

/* dx by a Winograd forward (dx_wino_fits must hold). */
static int dx_by_winograd(const wino_kind *k, const float *w, const float *dy, int64_t N, int64_t C,
                          int64_t H, int64_t W, int64_t O, const int64_t *g, const int64_t *g2,
                          float *dx) {
  size_t bytes = sizeof(float) * (size_t)(C * O * 9);
  float *wf = rl_cpu_backend.alloc(NULL, bytes);
  if (!wf) return -1;
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++)
      for (int k = 0; k < 9; k++) wf[(c * O + o) * 9 + 8 - k] = w[(o * C + c) * 9 + k];
  int rc = rl_cpu_wino_run_fwd(k, dy, wf, NULL, N, O, g[G_OH], g[G_OW], C, g2, dx);
  rl_cpu_backend.free(NULL, wf, bytes);
  return rc;
}

/* The backward pass by `alg`: the Winograd and oneDNN ones form dx, or dW
 * and db (conv_bwd_entry asks for dx apart from dW and db); DIRECT and
 * IM2COL form whichever of the three a asks for, their way. */
static int conv_bwd(int alg, const conv_args *a) {
  rl_dtype dt = a->dt;
  const void *x = a->x, *w = a->w, *dy = a->dy;
  void *dx = a->dx, *dw = a->dw, *db = a->db;
  int64_t N = a->N, C = a->C, H = a->H, W = a->W, O = a->O;
  const int64_t *g = a->g;
  if (dt == RL_BF16 && !is_dnnl(alg)) return by_f32(conv_bwd, alg, a);
  const wino_kind *k = wino_of(alg);
  if (k) { /* the caller checked the fit */
    int64_t g2[G_N];
    if (dx && !dw && !db && dx_wino_fits(dt, C, H, W, O, g, g2, false))
      return dx_by_winograd(k, w, dy, N, C, H, W, O, g, g2, dx);
    if (!dx && dw && rl_cpu_wino_dw_fits(k, dt, N, C, H, W, O, g))
      return rl_cpu_wino_run_dw(k, x, dy, N, C, H, W, O, g, dw, db);
    return rl_err("conv2d: Winograd forms dx, or dW (and db), of 3x3 stride-1 f32");
  }
  if (is_dnnl(alg)) {
    bool wino = alg == RL_CPU_ALG_ONEDNN_WINO;
    if (dx && (dw || db))
      return rl_err("conv2d: oneDNN forms dx apart from dW"); /* the caller checked */
    return dx ? rl_cpu_dnnl_bwd_data(wino, dt, w, dy, N, C, H, W, O, g, dx)
              : rl_cpu_dnnl_bwd_weights(wino, dt, x, dy, N, C, H, W, O, g, dw, db);
  }
  conv_plan p = conv_plan_of(dt, N, C, H, W, O, g, true, dw || db, dx != NULL,
                             alg == RL_CPU_ALG_DIRECT);
  if (conv_check(&p)) return -1;
  int64_t wsize = O * p.K, G = dw || db ? p.G : N;
  int T = rl_cpu_team(G, p.K * p.ohw * O * ((N + G - 1) / G));
  size_t per = scratch_bytes(&p, false, dx != NULL);
  size_t partbytes = dw ? rl_cpu_round64((size_t)wsize * p.es) : 0;
  size_t wbytes = p.by_taps && dx ? rl_cpu_round64((size_t)wsize * p.es) : 0;
  size_t bbytes = db ? rl_cpu_round64((size_t)O * sizeof(double)) : 0;
  size_t total = per * (size_t)T + partbytes * (size_t)G + wbytes + bbytes * (size_t)G;
  char *scratch = rl_cpu_backend.alloc(NULL, total);
  if (!scratch) return -1;
  char *parts = scratch + per * (size_t)T;
  char *bparts = parts + partbytes * (size_t)G + wbytes;
  if (db) memset(bparts, 0, bbytes * (size_t)G);
  const char *wk = w;
  if (wbytes) {
    char *wr = parts + partbytes * (size_t)G;
    repack_taps(&p, w, wr);
    wk = wr;
  }
  size_t xs = (size_t)(C * H * W) * p.es, ys = (size_t)(O * p.ohw) * p.es;
  int blas = T > 1 ? rl_cpu_blas_solo_begin() : 1;
#pragma omp parallel num_threads(T)
  {
    int t = omp_get_thread_num();
    conv_scratch s = scratch_at(&p, scratch + per * (size_t)t, false, dx != NULL);
    for (int64_t gi = t; gi < G; gi += T) {
      char *part = dw ? parts + partbytes * (size_t)gi : NULL;
      double *pb = db ? (double *)(bparts + bbytes * (size_t)gi) : NULL;
      int64_t g0 = N * gi / G, g1 = N * (gi + 1) / G;
      for (int64_t n0 = g0; n0 < g1; n0 += p.nb) {
        int64_t nb = g1 - n0 < p.nb ? g1 - n0 : p.nb;
        bwd_chunk(&p, (const char *)x + n0 * xs, nb, wk, (const char *)dy + n0 * ys,
                  dx ? (char *)dx + n0 * xs : NULL, part, n0 == g0, pb, &s);
      }
    }
  }
  if (T > 1) rl_cpu_blas_solo_end(blas);
  if (dw) { /* dw = the partials summed in group order (and unpacked from taps) */
    int64_t taps = p.taps, OC = O * C;
    bool by_taps = p.by_taps;
    RL_PARALLEL_FOR(e, wsize, G, {
      int64_t k = by_taps ? (e % taps) * OC + e / taps : e;
      double acc = 0;
      for (int64_t gi = 0; gi < G; gi++) {
        const char *q = parts + partbytes * (size_t)gi;
        acc += dt == RL_F32 ? (double)((const float *)q)[k] : ((const double *)q)[k];
      }
      if (dt == RL_F32) ((float *)dw)[e] = (float)acc;
      else ((double *)dw)[e] = acc;
    });
  }
  for (int64_t o = 0; db && o < O; o++) { /* db likewise */
    double acc = 0;
    for (int64_t gi = 0; gi < G; gi++) acc += ((const double *)(bparts + bbytes * (size_t)gi))[o];
    if (dt == RL_F32) ((float *)db)[o] = (float)acc;
    else ((double *)db)[o] = acc;
  }
  rl_cpu_backend.free(NULL, scratch, total);
  return 0;
}

/* ---- choosing the algorithm ---------------------------------------------------- */

/* Whether the pass's shape is chosen by timing the candidates: f32 or
 * bf16 work of RL_CONV_MEASURE_MIN multiply-adds or more (else the rule's). */
static bool measured(const conv_args *a) {
  const int64_t *g = a->g;
  double work = (double)a->N * (double)a->O * (double)a->C * (double)(g[G_KH] * g[G_KW]) *
                (double)(g[G_OH] * g[G_OW]);
  return compute_dt(a->dt) == RL_F32 && work >= RL_CONV_MEASURE_MIN;
}

/* Which algorithms can run a pass: 1 or 0, and -1 for oneDNN's until asked
 * (deciding makes its primitive, JIT-compiled, so only where it can be
 * taken: forced, named by a choice, or about to be timed). */
typedef struct {
  const conv_args *a;
  rl_dnnl_pass pass;
  signed char fit[RL_CPU_ALG_N];
  conv_pass_fn run; /* the pass by an algorithm, for the timing */
} conv_fits;

static bool fits_alg(int alg, void *ctx) {
  conv_fits *f = ctx;
  if (alg <= RL_CPU_ALG_AUTO || alg >= RL_CPU_ALG_N) return false;
  if (f->fit[alg] < 0) {
    const conv_args *a = f->a;
    f->fit[alg] = rl_cpu_dnnl_fits(f->pass, alg == RL_CPU_ALG_ONEDNN_WINO, a->dt, a->N, a->C,
                                   a->H, a->W, a->O, a->g, f->pass == RL_DNNL_FWD ? a->b != NULL
                                                                                  : a->db != NULL);
  }
  return f->fit[alg] == 1;
}

/* oneDNN's two to be asked when the pass is f32 or bf16 (and for dW, when
 * dW is wanted: oneDNN's weight pass always forms it). */
static void dnnl_unknown(conv_fits *f, bool can) {
  f->fit[RL_CPU_ALG_ONEDNN] = f->fit[RL_CPU_ALG_ONEDNN_WINO] =
      can && compute_dt(f->a->dt) == RL_F32 ? -1 : 0;
}

/* Each candidate that fits, timed twice after a first run (the best of
 * the two, in ms): rl_tune_choose's timing. */
static int time_algs(double *ms, rl_tune_fits_fn fits, void *ctx) {
  conv_fits *f = ctx;
  for (int round = 0; round < 3; round++)
    for (int k = 1; k < RL_CPU_ALG_N; k++) {
      if (!fits(k, ctx)) continue;
      double t0 = omp_get_wtime();
      if (f->run(k, f->a)) return -1;
      double t = (omp_get_wtime() - t0) * 1e3;
      if (round > 0 && (ms[k] == 0 || t < ms[k])) ms[k] = t;
    }
  return 0;
}

/* Run the pass by the algorithm chosen for its shape (rl_tune_choose):
 * rule for f64 and small work, else the fastest of the candidates that
 * fit, measured once per machine. */
static int run_chosen(conv_pass_fn run, const char *pass, const conv_args *a, conv_fits *f,
                      int rule) {
  char key[128];
  rl_tune_conv_key(key, sizeof key, a->dt, pass, a->N, a->C, a->H, a->W, a->O, a->g);
  f->run = run;
  int alg = rl_tune_choose(rl_cpu_conv_book(), key, rule, measured(a), fits_alg, time_algs, f);
  return alg < 0 ? -1 : run(alg, a);
}

static int conv_fwd_entry(const conv_args *a) {
  conv_fits f = {.a = a, .pass = RL_DNNL_FWD};
  f.fit[RL_CPU_ALG_DIRECT] = taps_fit(a->g);
  rl_dtype dt = compute_dt(a->dt);
  f.fit[RL_CPU_ALG_WINOGRAD] = f.fit[RL_CPU_ALG_WINOGRAD4] = rl_cpu_wino_fits(dt, a->g);
  f.fit[RL_CPU_ALG_IM2COL] = 1;
  dnnl_unknown(&f, true);
  int rule = rl_cpu_wino_ok(dt, a->C, a->g)     ? RL_CPU_ALG_WINOGRAD
             : taps_rule(a->C, a->H, a->W, a->g) ? RL_CPU_ALG_DIRECT
                                                   : RL_CPU_ALG_IM2COL;
  return run_chosen(conv_fwd, "fwd", a, &f, rule);
}

/* One backward pass: dx alone, or dW and db alone. */
static int conv_bwd_part(const conv_args *a) {
  conv_fits f = {.a = a, .pass = a->dx ? RL_DNNL_BWD_DATA : RL_DNNL_BWD_WEIGHTS};
  int64_t g2[G_N];
  rl_dtype dt = compute_dt(a->dt);
  f.fit[RL_CPU_ALG_DIRECT] = taps_fit(a->g);
  for (int alg = RL_CPU_ALG_AUTO + 1; alg < RL_CPU_ALG_N; alg++)
    if (wino_of(alg))
      f.fit[alg] = a->dx ? dx_wino_fits(dt, a->C, a->H, a->W, a->O, a->g, g2, false)
                         : a->dw && rl_cpu_wino_dw_fits(wino_of(alg), dt, a->N, a->C, a->H,
                                                        a->W, a->O, a->g);
  f.fit[RL_CPU_ALG_IM2COL] = 1;
  dnnl_unknown(&f, a->dx || a->dw);
  int rule = a->dx && dx_wino_fits(dt, a->C, a->H, a->W, a->O, a->g, g2, true)
                 ? RL_CPU_ALG_WINOGRAD
             : taps_rule(a->C, a->H, a->W, a->g) ? RL_CPU_ALG_DIRECT
                                                   : RL_CPU_ALG_IM2COL;
  return run_chosen(conv_bwd, a->dx ? "bwd-dx" : a->dw ? "bwd-dw-db" : "bwd-db", a, &f, rule);
}

/* The input gradient and the weight gradient each take the algorithm
 * measured fastest for it: the best for dx is often not the best for dW
 * (CNN002's 32->32 at 26x26: Winograd or the tap path for dx, im2col for
 * dW, 4 ms of a 29 ms training step better than one algorithm for both). */
static int conv_bwd_entry(const conv_args *a) {
  if (a->dx && (a->dw || a->db)) {
    conv_args only_dx = *a, only_dw = *a;
    only_dx.dw = only_dx.db = NULL;
    only_dw.dx = NULL;
    if (conv_bwd_part(&only_dx)) return -1;
    return conv_bwd_part(&only_dw);
  }
  return conv_bwd_part(a);
}

/* ---- the entries ------------------------------------------------------------ */

/* The figures of the composition (engine/conv_gemm.c) when a spec forces
 * it on the CPU: CUDA's (kernels/cuda_conv.cu) on a GPU of 132
 * multiprocessors (H100 SXM, H200), so that the CPU forms the chunks and
 * split-k such a GPU forms and the gradchecks cover them. */
static const rl_conv_tuning as_on_cuda = {
    .work_bytes = (int64_t)256 << 20,
    .wino_min_channels = 32,
    .sms = 132,
};

static void *data_or_null(const rl_tensor *t) { return t ? rl_data(t) : NULL; }

int rl_cpu_conv2d(const int64_t *geom, rl_tensor *x, rl_tensor *w, rl_tensor *b,
                  rl_tensor *y) {
  if (rl_conv_gemm_forced()) return rl_conv_gemm(&as_on_cuda, geom, x, w, b, y);
  conv_args a = {.dt = x->dtype, .x = rl_data(x), .w = rl_data(w), .b = data_or_null(b),
                 .y = rl_data(y), .N = x->size[0], .C = x->size[1], .H = x->size[2],
                 .W = x->size[3], .O = w->size[0], .g = geom};
  return conv_fwd_entry(&a);
}

int rl_cpu_conv2d_bwd(const int64_t *geom, rl_tensor *x, rl_tensor *w, rl_tensor *dy,
                      rl_tensor *dx, rl_tensor *dw, rl_tensor *db) {
  if (rl_conv_gemm_forced()) return rl_conv_gemm_bwd(&as_on_cuda, geom, x, w, dy, dx, dw, db);
  const rl_tensor *in = x ? x : dx; /* [N, C, H, W] */
  conv_args a = {.dt = dy->dtype, .x = dw ? rl_data(x) : NULL, .w = data_or_null(w),
                 .dy = rl_data(dy), .dx = data_or_null(dx), .dw = data_or_null(dw),
                 .db = data_or_null(db), .N = in->size[0], .C = in->size[1], .H = in->size[2],
                 .W = in->size[3], .O = dy->size[1], .g = geom};
  return conv_bwd_entry(&a);
}
