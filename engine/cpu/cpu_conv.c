/* cpu_conv.c - im2col / col2im and 2-D pooling on NCHW planes.
 *
 * Every backward here gathers: each input element sums the contributions of
 * the windows that cover it, in a fixed order.  No two threads write one
 * element, so results are deterministic. */
#include <string.h>

#include "cpu.h"

/* The output positions o with o*s - p + i*d == h for a fixed tap i, as a
 * range [lo, hi) in the output, and whether h is reached at all. */
static inline int64_t ceil_div(int64_t a, int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

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
      if (inside) { /* rows are short: no memcpy call */                              \
        const T *sr = s + w0;                                                         \
        for (int64_t ow = 0; ow < OW; ow++) d[ow] = sr[ow];                           \
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
DEFINE_COL2IM_PLANE(col2im_plane_f32, float)
DEFINE_COL2IM_PLANE(col2im_plane_f64, double)
DEFINE_IM2COL(im2col_f32, im2col_row_f32, float)
DEFINE_IM2COL(im2col_f64, im2col_row_f64, double)
DEFINE_COL2IM(col2im_f32, col2im_plane_f32, float)
DEFINE_COL2IM(col2im_f64, col2im_plane_f64, double)

int rl_cpu_im2col(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H, int64_t W,
                  const int64_t *g, void *col) {
  if (dt == RL_F32) im2col_f32(x, nb, C, H, W, g, col);
  else if (dt == RL_F64) im2col_f64(x, nb, C, H, W, g, col);
  else return rl_err("conv2d: not defined for %s", rl_dtype_name(dt));
  return 0;
}

int rl_cpu_col2im(rl_dtype dt, const void *col, int64_t nb, int64_t C, int64_t H,
                  int64_t W, const int64_t *g, void *x) {
  if (dt == RL_F32) col2im_f32(col, nb, C, H, W, g, x);
  else if (dt == RL_F64) col2im_f64(col, nb, C, H, W, g, x);
  else return rl_err("conv2d: not defined for %s", rl_dtype_name(dt));
  return 0;
}

/* ---- whole convolutions, image by image --------------------------------
 *
 * On the CPU a convolution of a batch is split over threads by images, and
 * each thread works one image at a time with GEMMs on that thread alone
 * (OpenBLAS runs single-threaded inside a parallel region): the image's
 * data stays in the core's L2 cache, and the threads meet once per call
 * instead of at every GEMM.
 *
 * Stride 1 with enough input channels goes tap by tap and needs no im2col.
 * Lay the output out "wide", OH rows of Wp (the padded input width) of
 * which the first OW are real: then output q = oh*Wp + ow reads, for tap
 * (i, j), the input at q + i*dh*Wp + j*dw of the padded plane, so tap
 * (i, j) is one GEMM of W[:, :, i, j] [O, C] against the padded input
 * itself, shifted, read as [C, nw] with row stride Hp*Wp:
 *   y_wide [O, nw] = sum over taps of W_ij @ x_pad[:, off_ij : off_ij + nw]
 * with nw = (OH-1)*Wp + OW, which ends exactly at the plane's last element.
 * The extra columns (ow >= OW) are dropped; going backward they are zero in
 * dy_wide, so they add nothing to dW or dx:
 *   dW_ij += dy_wide @ x_pad[:, off_ij ...]^T,  dx_pad[:, off_ij ...] += W_ij^T @ dy_wide
 * Other convolutions go through an im2col of one image (a few hundred KB
 * for the paper's networks).
 *
 * The weight gradient sums over images.  The batch is cut into a number of
 * groups that depends on the shapes only (never on the thread count); each
 * group sums its images in order into its own partial dW, and the partials
 * are added in group order: the same result for any number of threads. */

/* Most groups of images for the weight gradient, and the most bytes their
 * partial sums may take. */
#define RL_CONV_DW_GROUPS 16
#define RL_CONV_DW_BYTES ((int64_t)64 << 20)
/* Fewest input channels for the tap-by-tap path: below, one im2col GEMM of
 * depth C*kh*kw beats kh*kw GEMMs of depth C. */
#define RL_CONV_TAP_MIN_C 8

typedef struct {
  rl_dtype dt;
  size_t es;
  int64_t N, C, H, W, O, K, ohw, OH, OW, taps;
  const int64_t *g;
  bool by_taps; /* the tap-by-tap path; the rest only matter for it */
  bool padded;  /* x goes through a zero-padded copy */
  bool wide;    /* Wp > OW: outputs go through a wide scratch */
  int64_t Hp, Wp, nw, ldw;
} conv_plan;

/* Per-thread scratch: one image's im2col, or its padded input, wide
 * output and padded input gradient. */
typedef struct {
  char *col, *xpad, *wide, *dxpad;
} conv_scratch;

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

static conv_plan conv_plan_of(rl_dtype dt, int64_t N, int64_t C, int64_t H, int64_t W,
                              int64_t O, const int64_t *g) {
  conv_plan p = {.dt = dt, .es = rl_dtype_size(dt), .N = N, .C = C, .H = H, .W = W, .O = O,
                 .OH = g[G_OH], .OW = g[G_OW], .taps = g[G_KH] * g[G_KW], .g = g};
  p.K = C * p.taps;
  p.ohw = p.OH * p.OW;
  p.by_taps = g[G_SH] == 1 && g[G_SW] == 1 && C >= RL_CONV_TAP_MIN_C;
  p.Hp = H + 2 * g[G_PH];
  p.Wp = W + 2 * g[G_PW];
  p.padded = p.by_taps && (g[G_PH] || g[G_PW]);
  p.wide = p.by_taps && p.Wp > p.OW;
  p.nw = (p.OH - 1) * p.Wp + p.OW;
  p.ldw = p.OH * p.Wp;
  return p;
}

/* Bytes of one thread's scratch (bwd: for the backward pass, with dx). */
static size_t scratch_bytes(const conv_plan *p, bool bwd, bool dx) {
  if (!p->by_taps) return round64((size_t)(p->K * p->ohw) * p->es);
  size_t plane = round64((size_t)(p->C * p->Hp * p->Wp) * p->es);
  return (p->padded ? plane : 0) + (p->wide ? round64((size_t)(p->O * p->ldw) * p->es) : 0) +
         (p->padded && bwd && dx ? plane : 0);
}

static conv_scratch scratch_at(const conv_plan *p, char *base) {
  conv_scratch s = {NULL, NULL, NULL, NULL};
  if (!p->by_taps) {
    s.col = base;
    return s;
  }
  size_t plane = round64((size_t)(p->C * p->Hp * p->Wp) * p->es);
  if (p->padded) s.xpad = base, base += plane;
  if (p->wide) s.wide = base, base += round64((size_t)(p->O * p->ldw) * p->es);
  if (p->padded) s.dxpad = base;
  return s;
}

/* Threads for `units` independent pieces of work of `work` elements each. */
static int conv_threads(int64_t units, int64_t work) {
  int t = omp_get_max_threads();
  if ((double)units * (double)work < RL_CPU_GRAIN) t = 1;
  return units < t ? (int)units : t;
}

/* Copy rows of `len` elements: n rows, from src at stride ss to dst at
 * stride ds (elements of es bytes). */
static void copy_rows(size_t es, char *dst, int64_t ds, const char *src, int64_t ss,
                      int64_t n, int64_t len) {
  for (int64_t r = 0; r < n; r++)
    memcpy(dst + (size_t)(r * ds) * es, src + (size_t)(r * ss) * es, (size_t)len * es);
}

/* The image's planes into the middle of the zeroed padded planes. */
static void pad_image(const conv_plan *p, const char *x, char *xpad) {
  memset(xpad, 0, (size_t)(p->C * p->Hp * p->Wp) * p->es);
  int64_t ph = p->g[G_PH], pw = p->g[G_PW];
  for (int64_t c = 0; c < p->C; c++)
    copy_rows(p->es, xpad + (size_t)((c * p->Hp + ph) * p->Wp + pw) * p->es, p->Wp,
              x + (size_t)(c * p->H * p->W) * p->es, p->W, p->H, p->W);
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
      for (int64_t q = 0; q < n; q++) r[q] = v;
    } else {
      double v = ((const double *)b)[o], *r = (double *)y + o * ld;
      for (int64_t q = 0; q < n; q++) r[q] = v;
    }
  }
}

/* Offset of tap t in the padded plane. */
static int64_t tap_offset(const conv_plan *p, int64_t t) {
  int64_t i = t / p->g[G_KW], j = t % p->g[G_KW];
  return i * p->g[G_DH] * p->Wp + j * p->g[G_DW];
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

/* y_n [O, ohw] for image x_n.  w is [O, K], or for the tap path the
 * repacked wr [taps, O, C]. */
static void fwd_image(const conv_plan *p, const char *x, const char *w, const void *b,
                      char *y, const conv_scratch *s) {
  size_t es = p->es;
  if (!p->by_taps) {
    im2col_image(p, x, s->col);
    if (b) fill_bias(p->dt, b, p->O, p->ohw, p->ohw, y);
    rl_cpu_gemm(p->dt, false, false, p->O, p->ohw, p->K, 1.0, w, p->K, 0, s->col, p->ohw, 0,
                b ? 1.0 : 0.0, y, p->ohw, 0, 1);
    return;
  }
  const char *src = x;
  if (p->padded) pad_image(p, x, s->xpad), src = s->xpad;
  char *yw = p->wide ? s->wide : y;
  if (b) fill_bias(p->dt, b, p->O, p->nw, p->ldw, yw);
  for (int64_t t = 0; t < p->taps; t++)
    rl_cpu_gemm(p->dt, false, false, p->O, p->nw, p->C, 1.0, w + (size_t)(t * p->O * p->C) * es,
                p->C, 0, src + (size_t)tap_offset(p, t) * es, p->Hp * p->Wp, 0,
                b || t ? 1.0 : 0.0, yw, p->ldw, 0, 1);
  if (p->wide) copy_rows(es, y, p->OW, yw, p->Wp, p->O * p->OH, p->OW);
}

/* For image n: part (+)= its dW (when part; `first` overwrites), dx_n (when
 * dx).  part is [O, K] on the im2col path, [taps, O, C] on the tap path. */
static void bwd_image(const conv_plan *p, const char *x, const char *w, const char *dy,
                      char *dx, char *part, bool first, const conv_scratch *s) {
  size_t es = p->es;
  if (!p->by_taps) {
    if (part) { /* part (+)= dy_n [O, ohw] @ col_n^T [ohw, K] */
      im2col_image(p, x, s->col);
      rl_cpu_gemm(p->dt, false, true, p->O, p->K, p->ohw, 1.0, dy, p->ohw, 0, s->col, p->ohw,
                  0, first ? 0.0 : 1.0, part, p->K, 0, 1);
    }
    if (dx) { /* dcol = W^T [K, O] @ dy_n [O, ohw], gathered into dx_n */
      rl_cpu_gemm(p->dt, true, false, p->K, p->ohw, p->O, 1.0, w, p->K, 0, dy, p->ohw, 0, 0.0,
                  s->col, p->ohw, 0, 1);
      col2im_image(p, s->col, dx);
    }
    return;
  }
  const char *dyw = dy; /* dy laid out wide, zero in the extra columns */
  if (p->wide) {
    copy_rows(es, s->wide, p->Wp, dy, p->OW, p->O * p->OH, p->OW);
    for (int64_t r = 0; r < p->O * p->OH; r++)
      memset(s->wide + (size_t)(r * p->Wp + p->OW) * es, 0, (size_t)(p->Wp - p->OW) * es);
    dyw = s->wide;
  }
  int64_t plane = p->Hp * p->Wp;
  if (part) {
    const char *src = x;
    if (p->padded) pad_image(p, x, s->xpad), src = s->xpad;
    for (int64_t t = 0; t < p->taps; t++)
      rl_cpu_gemm(p->dt, false, true, p->O, p->C, p->nw, 1.0, dyw, p->ldw, 0,
                  src + (size_t)tap_offset(p, t) * es, plane, 0, first ? 0.0 : 1.0,
                  part + (size_t)(t * p->O * p->C) * es, p->C, 0, 1);
  }
  if (dx) {
    char *dxp = p->padded ? s->dxpad : dx;
    memset(dxp, 0, (size_t)(p->C * plane) * es);
    for (int64_t t = 0; t < p->taps; t++)
      rl_cpu_gemm(p->dt, true, false, p->C, p->nw, p->O, 1.0,
                  w + (size_t)(t * p->O * p->C) * es, p->C, 0, dyw, p->ldw, 0, 1.0,
                  dxp + (size_t)tap_offset(p, t) * es, plane, 0, 1);
    if (p->padded)
      for (int64_t c = 0; c < p->C; c++)
        copy_rows(es, dx + (size_t)(c * p->H * p->W) * es, p->W,
                  dxp + (size_t)((c * p->Hp + p->g[G_PH]) * p->Wp + p->g[G_PW]) * es, p->Wp,
                  p->H, p->W);
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
  if (p->K > INT32_MAX || p->ohw > INT32_MAX || p->O > INT32_MAX || p->Hp * p->Wp > INT32_MAX)
    return rl_err("conv2d: %lld x %lld x %lld is too large for BLAS", (long long)p->O,
                  (long long)p->K, (long long)p->ohw);
  return 0;
}

int rl_cpu_conv2d(rl_dtype dt, const void *x, const void *w, const void *b, int64_t N,
                  int64_t C, int64_t H, int64_t W, int64_t O, const int64_t *g, void *y) {
  conv_plan p = conv_plan_of(dt, N, C, H, W, O, g);
  if (conv_check(&p)) return -1;
  int T = conv_threads(N, p.K * p.ohw * O);
  size_t per = scratch_bytes(&p, false, false);
  size_t wbytes = p.by_taps ? round64((size_t)(O * p.K) * p.es) : 0;
  size_t total = per * (size_t)T + wbytes;
  char *scratch = rl_cpu_backend.alloc(NULL, total);
  if (!scratch) return -1;
  const char *wk = w;
  if (p.by_taps) repack_taps(&p, w, scratch + per * (size_t)T), wk = scratch + per * (size_t)T;
  size_t xs = (size_t)(C * H * W) * p.es, ys = (size_t)(O * p.ohw) * p.es;
#pragma omp parallel num_threads(T)
  {
    int t = omp_get_thread_num();
    conv_scratch s = scratch_at(&p, scratch + per * (size_t)t);
    for (int64_t n = N * t / T; n < N * (t + 1) / T; n++)
      fwd_image(&p, (const char *)x + n * xs, wk, b, (char *)y + n * ys, &s);
  }
  rl_cpu_backend.free(NULL, scratch, total);
  return 0;
}

int rl_cpu_conv2d_bwd(rl_dtype dt, const void *x, const void *w, const void *dy,
                      int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                      const int64_t *g, void *dx, void *dw) {
  conv_plan p = conv_plan_of(dt, N, C, H, W, O, g);
  if (conv_check(&p)) return -1;
  int64_t wsize = O * p.K;
  /* groups: units of work that threads take whole, in a fixed layout */
  int64_t G = N;
  if (dw) {
    int64_t fit = RL_CONV_DW_BYTES / (wsize * (int64_t)p.es);
    G = N < RL_CONV_DW_GROUPS ? N : RL_CONV_DW_GROUPS;
    if (G > fit) G = fit > 1 ? fit : 1;
  }
  int T = conv_threads(G, p.K * p.ohw * O);
  size_t per = scratch_bytes(&p, true, dx != NULL);
  size_t partbytes = dw ? round64((size_t)wsize * p.es) : 0;
  size_t wbytes = p.by_taps && dx ? round64((size_t)wsize * p.es) : 0;
  size_t total = per * (size_t)T + partbytes * (size_t)G + wbytes;
  char *scratch = rl_cpu_backend.alloc(NULL, total);
  if (!scratch) return -1;
  char *parts = scratch + per * (size_t)T;
  const char *wk = w;
  if (wbytes) {
    char *wr = parts + partbytes * (size_t)G;
    repack_taps(&p, w, wr);
    wk = wr;
  }
  size_t xs = (size_t)(C * H * W) * p.es, ys = (size_t)(O * p.ohw) * p.es;
#pragma omp parallel num_threads(T)
  {
    int t = omp_get_thread_num();
    conv_scratch s = scratch_at(&p, scratch + per * (size_t)t);
    for (int64_t gi = t; gi < G; gi += T) {
      char *part = dw ? parts + partbytes * (size_t)gi : NULL;
      int64_t n0 = N * gi / G;
      for (int64_t n = n0; n < N * (gi + 1) / G; n++)
        bwd_image(&p, (const char *)x + n * xs, wk, (const char *)dy + n * ys,
                  dx ? (char *)dx + n * xs : NULL, part, n == n0, &s);
    }
  }
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
  rl_cpu_backend.free(NULL, scratch, total);
  return 0;
}

/* ---- pooling ----------------------------------------------------------- */

/* Output rows whose window (start o*s - p, kernel k) covers input row h. */
static inline void covering(int64_t h, int64_t k, int64_t s, int64_t p, int64_t O,
                            int64_t *lo, int64_t *hi) {
  int64_t a = ceil_div(h + p - (k - 1), s), b = (h + p) / s + 1;
  *lo = a < 0 ? 0 : a;
  *hi = b > O ? O : b;
}

/* 2x2 stride-2 max pooling of one plane; returns false (and the caller
 * redoes the plane) when it met a NaN, whose propagation needs the general
 * loop's ordered comparisons. */
#define DEFINE_POOL2(name, T)                                                         \
  static bool pool2_##name(const T *src, int64_t W, int64_t OH, int64_t OW, T *y,     \
                           int64_t *idx) {                                           \
    int nan = 0;                                                                      \
    for (int64_t oh = 0; oh < OH; oh++) {                                             \
      const T *r0 = src + 2 * oh * W, *r1 = r0 + W;                                   \
      T *yo = y + oh * OW;                                                            \
      int64_t *io = idx + oh * OW, base = 2 * oh * W;                                 \
      for (int64_t ow = 0; ow < OW; ow++) {                                           \
        T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];      \
        nan |= (a != a) | (b != b) | (c != c) | (d != d);                             \
        int tb = b > a, td = d > c;                                                   \
        T m1 = tb ? b : a, m2 = td ? d : c;                                           \
        int t2 = m2 > m1;                                                             \
        yo[ow] = t2 ? m2 : m1;                                                        \
        io[ow] = base + (t2 ? W + 2 * ow + td : 2 * ow + tb);                         \
      }                                                                               \
    }                                                                                 \
    return !nan;                                                                      \
  }
DEFINE_POOL2(maxpool_f32, float)
DEFINE_POOL2(maxpool_f64, double)

/* Max pooling; the maximum's flat index goes to idx (the first on ties; a
 * NaN wins, as PyTorch).  Selections are written as conditional moves: on
 * random data a branch per comparison mispredicts half the time. */
#define DEFINE_MAXPOOL(name, T)                                                       \
  static void name(const T *x, int64_t nc, int64_t H, int64_t W, const int64_t *gp,   \
                   T *y, int64_t *idx) {                                             \
    int64_t g[G_N];                                                                   \
    memcpy(g, gp, sizeof g);                                                          \
    int64_t OH = g[G_OH], OW = g[G_OW], kh = g[G_KH], kw = g[G_KW];                   \
    int64_t sh = g[G_SH], sw = g[G_SW], ph = g[G_PH], pw = g[G_PW];                   \
    bool two = kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0;        \
    RL_PARALLEL_FOR(pl, nc, OH * OW * kh * kw, {                                      \
      const T *src = x + pl * H * W;                                                  \
      T *yo = y + pl * OH * OW;                                                       \
      int64_t *io = idx + pl * OH * OW;                                               \
      /* 2x2, stride 2: plain max selections the compiler turns into vector \
       * blends; a plane holding a NaN goes through the general loop below */  \
      if (two && pool2_##name(src, W, OH, OW, yo, io)) continue;                    \
      for (int64_t oh = 0; oh < OH; oh++) {                                           \
        int64_t h0 = oh * sh - ph, hs = h0 < 0 ? 0 : h0;                              \
        int64_t he = h0 + kh > H ? H : h0 + kh;                                       \
        for (int64_t ow = 0; ow < OW; ow++) {                                         \
          int64_t w0 = ow * sw - pw, ws = w0 < 0 ? 0 : w0;                            \
          int64_t we = w0 + kw > W ? W : w0 + kw;                                     \
          int64_t bi = hs * W + ws;                                                   \
          T best = src[bi];                                                           \
          for (int64_t h = hs; h < he; h++)                                           \
            for (int64_t w = ws; w < we; w++) {                                       \
              T v = src[h * W + w];                                                   \
              int take = (v > best) | ((v != v) & (best == best));                     \
              best = take ? v : best;                                                 \
              bi = take ? h * W + w : bi;                                             \
            }                                                                         \
          yo[oh * OW + ow] = best;                                                    \
          io[oh * OW + ow] = bi;                                                      \
        }                                                                             \
      }                                                                               \
    });                                                                               \
  }

/* The gradient of max pooling: each plane is owned by one thread, which
 * adds every output's gradient at its recorded maximum, in output order
 * (deterministic; overlapping windows simply add twice). */
#define DEFINE_MAXPOOL_BWD(name, T)                                                   \
  static void name(const T *dy, const int64_t *idx, int64_t nc, int64_t H, int64_t W, \
                   const int64_t *gp, T *dx) {                                       \
    int64_t ohw = gp[G_OH] * gp[G_OW];                                                \
    RL_PARALLEL_FOR(pl, nc, H * W + ohw, {                                            \
      const T *gy = dy + pl * ohw;                                                    \
      const int64_t *ix = idx + pl * ohw;                                             \
      T *d = dx + pl * H * W;                                                         \
      memset(d, 0, sizeof(T) * (size_t)(H * W));                                      \
      for (int64_t o = 0; o < ohw; o++) d[ix[o]] += gy[o];                            \
    });                                                                               \
  }

#define DEFINE_AVGPOOL(name, T)                                                       \
  static void name(const T *x, int64_t nc, int64_t H, int64_t W, const int64_t *gp,    \
                   bool count_pad, T *y) {                                           \
    int64_t g[G_N];                                                                   \
    memcpy(g, gp, sizeof g);                                                          \
    int64_t OH = g[G_OH], OW = g[G_OW];                                               \
    RL_PARALLEL_FOR(pl, nc, OH * OW * g[G_KH] * g[G_KW], {                            \
      const T *src = x + pl * H * W;                                                  \
      for (int64_t oh = 0; oh < OH; oh++)                                             \
        for (int64_t ow = 0; ow < OW; ow++) {                                         \
          int64_t h0 = oh * g[G_SH] - g[G_PH], w0 = ow * g[G_SW] - g[G_PW];           \
          double s = 0;                                                               \
          int64_t cnt = 0;                                                            \
          for (int64_t h = h0; h < h0 + g[G_KH]; h++)                                 \
            for (int64_t w = w0; w < w0 + g[G_KW]; w++)                               \
              if (h >= 0 && h < H && w >= 0 && w < W) {                               \
                s += src[h * W + w];                                                  \
                cnt++;                                                                \
              }                                                                       \
          int64_t div = count_pad ? g[G_KH] * g[G_KW] : (cnt ? cnt : 1);              \
          y[(pl * OH + oh) * OW + ow] = (T)(s / (double)div);                         \
        }                                                                             \
    });                                                                               \
  }

#define DEFINE_AVGPOOL_BWD(name, T)                                                   \
  static void name(const T *dy, int64_t nc, int64_t H, int64_t W, const int64_t *gp,   \
                   bool count_pad, T *dx) {                                          \
    int64_t g[G_N];                                                                   \
    memcpy(g, gp, sizeof g);                                                          \
    int64_t OH = g[G_OH], OW = g[G_OW];                                               \
    RL_PARALLEL_FOR(pl, nc, H * W * 4, {                                              \
      const T *gy = dy + pl * OH * OW;                                                \
      for (int64_t h = 0; h < H; h++) {                                               \
        int64_t ohl, ohh;                                                             \
        covering(h, g[G_KH], g[G_SH], g[G_PH], OH, &ohl, &ohh);                       \
        for (int64_t w = 0; w < W; w++) {                                             \
          int64_t owl, owh;                                                           \
          covering(w, g[G_KW], g[G_SW], g[G_PW], OW, &owl, &owh);                     \
          double acc = 0;                                                             \
          for (int64_t oh = ohl; oh < ohh; oh++)                                      \
            for (int64_t ow = owl; ow < owh; ow++) {                                  \
              int64_t div = g[G_KH] * g[G_KW];                                        \
              if (!count_pad) {                                                       \
                int64_t h0 = oh * g[G_SH] - g[G_PH], w0 = ow * g[G_SW] - g[G_PW];     \
                int64_t h1 = h0 + g[G_KH], w1 = w0 + g[G_KW];                         \
                h0 = h0 < 0 ? 0 : h0; w0 = w0 < 0 ? 0 : w0;                           \
                h1 = h1 > H ? H : h1; w1 = w1 > W ? W : w1;                           \
                div = (h1 - h0) * (w1 - w0);                                          \
              }                                                                       \
              acc += (double)gy[oh * OW + ow] / (double)div;                          \
            }                                                                         \
          dx[pl * H * W + h * W + w] = (T)acc;                                        \
        }                                                                             \
      }                                                                               \
    });                                                                               \
  }

DEFINE_MAXPOOL(maxpool_f32, float)
DEFINE_MAXPOOL(maxpool_f64, double)
DEFINE_MAXPOOL_BWD(maxpool_bwd_f32, float)
DEFINE_MAXPOOL_BWD(maxpool_bwd_f64, double)
DEFINE_AVGPOOL(avgpool_f32, float)
DEFINE_AVGPOOL(avgpool_f64, double)
DEFINE_AVGPOOL_BWD(avgpool_bwd_f32, float)
DEFINE_AVGPOOL_BWD(avgpool_bwd_f64, double)

#define DISPATCH2(opname, f32call, f64call)                                           \
  do {                                                                                \
    if (dt == RL_F32) f32call;                                                        \
    else if (dt == RL_F64) f64call;                                                   \
    else return rl_err(opname ": not defined for %s", rl_dtype_name(dt));             \
    return 0;                                                                         \
  } while (0)

int rl_cpu_maxpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                     const int64_t *g, void *y, int64_t *idx) {
  DISPATCH2("max_pool2d", maxpool_f32(x, nc, H, W, g, y, idx),
            maxpool_f64(x, nc, H, W, g, y, idx));
}

int rl_cpu_maxpool2d_bwd(rl_dtype dt, const void *dy, const int64_t *idx, int64_t nc,
                         int64_t H, int64_t W, const int64_t *g, void *dx) {
  DISPATCH2("max_pool2d", maxpool_bwd_f32(dy, idx, nc, H, W, g, dx),
            maxpool_bwd_f64(dy, idx, nc, H, W, g, dx));
}

int rl_cpu_avgpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                     const int64_t *g, bool count_pad, void *y) {
  DISPATCH2("avg_pool2d", avgpool_f32(x, nc, H, W, g, count_pad, y),
            avgpool_f64(x, nc, H, W, g, count_pad, y));
}

int rl_cpu_avgpool2d_bwd(rl_dtype dt, const void *dy, int64_t nc, int64_t H, int64_t W,
                         const int64_t *g, bool count_pad, void *dx) {
  DISPATCH2("avg_pool2d", avgpool_bwd_f32(dy, nc, H, W, g, count_pad, dx),
            avgpool_bwd_f64(dy, nc, H, W, g, count_pad, dx));
}
