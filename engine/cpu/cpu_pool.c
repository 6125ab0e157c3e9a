/* cpu_pool.c - 2-D max and average pooling on contiguous [NC, H, W] planes.
 *
 * Every backward gathers or owns its plane: no two threads write one
 * element, so results are deterministic. */
#include <string.h>

#include "cpu.h"
#include "direct.h"

static inline int64_t ceil_div(int64_t a, int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/* Output rows whose window (start o*s - p, kernel k) covers input row h. */
static inline void covering(int64_t h, int64_t k, int64_t s, int64_t p, int64_t O,
                            int64_t *lo, int64_t *hi) {
  int64_t a = ceil_div(h + p - (k - 1), s), b = (h + p) / s + 1;
  *lo = a < 0 ? 0 : a;
  *hi = b > O ? O : b;
}

/* Max pooling stores S and compares in T: LD(s) widens, ST(t) stores.
 * f32 and f64 compare as they are; bf16 compares its values widened to
 * f32 and stores them back (exactly: they were bf16), so its results are
 * the bits f32 pooling of the widened input, rounded back, would give. */
#define KEEP(v) (v)
#define BF(v) rl_f32_of_bf16(v)
#define RB(v) rl_bf16_of_f32(v)

/* 2x2 stride-2 max pooling of one plane; returns false (and the caller
 * redoes the plane) when it met a NaN, whose propagation needs the general
 * loop's ordered comparisons.  The first maximum wins a tie, as below. */
#define DEFINE_POOL2(name, S, T, LD, ST)                                              \
  static bool pool2_##name(const S *src, int64_t W, int64_t OH, int64_t OW, S *y,     \
                           int64_t *idx) {                                           \
    int nan = 0;                                                                      \
    for (int64_t oh = 0; oh < OH; oh++) {                                             \
      const S *r0 = src + 2 * oh * W, *r1 = r0 + W;                                   \
      S *yo = y + oh * OW;                                                            \
      int64_t *io = idx + oh * OW, base = 2 * oh * W;                                 \
      for (int64_t ow = 0; ow < OW; ow++) {                                           \
        T a = LD(r0[2 * ow]), b = LD(r0[2 * ow + 1]);                                 \
        T c = LD(r1[2 * ow]), d = LD(r1[2 * ow + 1]);                                 \
        nan |= (a != a) | (b != b) | (c != c) | (d != d);                             \
        int tb = b > a, td = d > c;                                                   \
        T m1 = tb ? b : a, m2 = td ? d : c;                                           \
        int t2 = m2 > m1;                                                             \
        yo[ow] = ST(t2 ? m2 : m1);                                                    \
        io[ow] = base + (t2 ? W + 2 * ow + td : 2 * ow + tb);                         \
      }                                                                               \
    }                                                                                 \
    return !nan;                                                                      \
  }
DEFINE_POOL2(maxpool_f64, double, double, KEEP, KEEP)
DEFINE_POOL2(scalar_f32, float, float, KEEP, KEEP)
DEFINE_POOL2(scalar_bf16, uint16_t, float, BF, RB)

/* The same in f32, PV output columns at a time in vectors of the build's
 * width (GCC's vector extension: 16 lanes under AVX-512, 8 under AVX2):
 * the two input rows' pairs split into even and odd columns by shuffles,
 * the selections as masks, the row's last columns through a padded copy.
 * Same comparisons, same results as the scalar loop.  On CNN002's 24x24
 * planes (batch 64, 32 channels) 1.8 -> 1.0 ms. */
#define PV CONV_VL
typedef float pv_f __attribute__((vector_size(PV * sizeof(float))));
typedef int32_t pv_i __attribute__((vector_size(PV * sizeof(int32_t))));
typedef int64_t pv_l __attribute__((vector_size(PV * sizeof(int64_t))));

/* m ? x : y, lane by lane (a macro: a vector argument's ABI depends on
 * whether the build has AVX) */
#define PV_SELECT(m, x, y) ((pv_f)((((pv_i)(x)) & (m)) | (((pv_i)(y)) & ~(m))))

/* Even and odd elements of 2 * PV floats at p. */
static inline void pv_split(const float *p, pv_f *even, pv_f *odd) {
  pv_f lo, hi;
  memcpy(&lo, p, sizeof lo);
  memcpy(&hi, p + PV, sizeof hi);
#if defined(__clang__) /* clang spells the shuffle with constant indices */
#if PV == 16
  *even = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  *odd = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
#else
  *even = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
  *odd = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
#endif
#else
#if PV == 16
  const pv_i ev = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
#else
  const pv_i ev = {0, 2, 4, 6, 8, 10, 12, 14};
#endif
  *even = __builtin_shuffle(lo, hi, ev);
  *odd = __builtin_shuffle(lo, hi, ev + 1);
#endif
}

static bool pool2_maxpool_f32(const float *src, int64_t W, int64_t OH, int64_t OW, float *y,
                              int64_t *idx) {
  /* rows of fewer than half a vector: the scalar loop wastes less */
  if (OW < PV / 2 || W >= INT32_MAX / 4) return pool2_scalar_f32(src, W, OH, OW, y, idx);
  pv_i nan = {0}, lane;
  for (int k = 0; k < PV; k++) lane[k] = 2 * k;
  for (int64_t oh = 0; oh < OH; oh++) {
    const float *r0 = src + 2 * oh * W, *r1 = r0 + W;
    int64_t base = 2 * oh * W;
    for (int64_t ow = 0; ow < OW; ow += PV) {
      int64_t m = OW - ow < PV ? OW - ow : PV;
      pv_f a, b, c, d;
      if (m == PV) {
        pv_split(r0 + 2 * ow, &a, &b);
        pv_split(r1 + 2 * ow, &c, &d);
      } else { /* the row's last columns, zero-padded (the padding is dropped) */
        float t0[2 * PV] = {0}, t1[2 * PV] = {0};
        memcpy(t0, r0 + 2 * ow, sizeof(float) * (size_t)(2 * m));
        memcpy(t1, r1 + 2 * ow, sizeof(float) * (size_t)(2 * m));
        pv_split(t0, &a, &b);
        pv_split(t1, &c, &d);
      }
      nan |= (a != a) | (b != b) | (c != c) | (d != d);
      pv_i tb = b > a, td = d > c;
      pv_f m1 = PV_SELECT(tb, b, a), m2 = PV_SELECT(td, d, c);
      pv_i t2 = m2 > m1;
      pv_f best = PV_SELECT(t2, m2, m1);
      pv_i col = lane + (pv_i){0} + (int32_t)(2 * ow);
      /* tb, td are -1 where true: subtracting adds the odd column */
      pv_i at = (t2 & (col + (int32_t)W - td)) | (~t2 & (col - tb));
      pv_l at64 = __builtin_convertvector(at, pv_l) + base;
      if (m == PV) {
        memcpy(y + oh * OW + ow, &best, sizeof best);
        memcpy(idx + oh * OW + ow, &at64, sizeof at64);
      } else {
        memcpy(y + oh * OW + ow, &best, sizeof(float) * (size_t)m);
        memcpy(idx + oh * OW + ow, &at64, sizeof(int64_t) * (size_t)m);
      }
    }
  }
  for (int k = 0; k < PV; k++)
    if (nan[k]) return false;
  return true;
}

/* bf16 2x2: as many pairs of input rows as fit a stack buffer (a whole
 * plane of CNN001's 24 x 24) widened (exactly) into f32 and pooled by the
 * vector kernel above, the output rows stored back: f32 pooling of the
 * widened plane, to the bit, at f32's speed.  Rows wider than the buffer,
 * or too narrow for a vector, take the scalar loop. */
#define POOL2_BUF 4096
static bool pool2_maxpool_bf16(const uint16_t *src, int64_t W, int64_t OH, int64_t OW, uint16_t *y,
                               int64_t *idx) {
  if (2 * W > POOL2_BUF || OW < PV / 2) return pool2_scalar_bf16(src, W, OH, OW, y, idx);
  float in[POOL2_BUF], out[POOL2_BUF / 4];
  int64_t pairs = POOL2_BUF / (2 * W); /* output rows per chunk */
  for (int64_t oh = 0; oh < OH; oh += pairs) {
    int64_t rows = OH - oh < pairs ? OH - oh : pairs, n = 2 * rows * W, base = 2 * oh * W;
    int64_t *io = idx + oh * OW;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) in[j] = BF(src[base + j]);
    if (!pool2_maxpool_f32(in, W, rows, OW, out, io)) return false;
#pragma omp simd
    for (int64_t j = 0; j < rows * OW; j++) {
      y[oh * OW + j] = RB(out[j]);
      io[j] += base;
    }
  }
  return true;
}

/* Max pooling; the maximum's flat index goes to idx (the first on ties; a
 * NaN wins, as PyTorch).  Selections are written as conditional moves: on
 * random data a branch per comparison mispredicts half the time. */
#define DEFINE_MAXPOOL(name, S, T, LD, ST)                                            \
  static void name(const S *x, int64_t nc, int64_t H, int64_t W, const int64_t *gp,   \
                   S *y, int64_t *idx) {                                             \
    int64_t g[G_N];                                                                   \
    memcpy(g, gp, sizeof g);                                                          \
    int64_t OH = g[G_OH], OW = g[G_OW], kh = g[G_KH], kw = g[G_KW];                   \
    int64_t sh = g[G_SH], sw = g[G_SW], ph = g[G_PH], pw = g[G_PW];                   \
    bool two = kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0;        \
    RL_PARALLEL_FOR(pl, nc, OH * OW * kh * kw, {                                      \
      const S *src = x + pl * H * W;                                                  \
      S *yo = y + pl * OH * OW;                                                       \
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
          T best = LD(src[bi]);                                                       \
          for (int64_t h = hs; h < he; h++)                                           \
            for (int64_t w = ws; w < we; w++) {                                       \
              T v = LD(src[h * W + w]);                                               \
              int take = (v > best) | ((v != v) & (best == best));                     \
              best = take ? v : best;                                                 \
              bi = take ? h * W + w : bi;                                             \
            }                                                                         \
          yo[oh * OW + ow] = ST(best);                                                \
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

DEFINE_MAXPOOL(maxpool_f32, float, float, KEEP, KEEP)
DEFINE_MAXPOOL(maxpool_f64, double, double, KEEP, KEEP)
DEFINE_MAXPOOL(maxpool_bf16, uint16_t, float, BF, RB)
DEFINE_MAXPOOL_BWD(maxpool_bwd_f32, float)
DEFINE_MAXPOOL_BWD(maxpool_bwd_f64, double)
DEFINE_AVGPOOL(avgpool_f32, float)
DEFINE_AVGPOOL(avgpool_f64, double)
DEFINE_AVGPOOL_BWD(avgpool_bwd_f32, float)
DEFINE_AVGPOOL_BWD(avgpool_bwd_f64, double)

int rl_cpu_maxpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                     const int64_t *g, void *y, int64_t *idx) {
  if (dt == RL_BF16) {
    maxpool_bf16(x, nc, H, W, g, y, idx);
    return 0;
  }
  RL_CPU_DISPATCH_FLOAT("max_pool2d", maxpool_f32(x, nc, H, W, g, y, idx),
            maxpool_f64(x, nc, H, W, g, y, idx));
}

int rl_cpu_maxpool2d_bwd(rl_dtype dt, const void *dy, const int64_t *idx, int64_t nc,
                         int64_t H, int64_t W, const int64_t *g, void *dx) {
  RL_CPU_DISPATCH_FLOAT("max_pool2d", maxpool_bwd_f32(dy, idx, nc, H, W, g, dx),
            maxpool_bwd_f64(dy, idx, nc, H, W, g, dx));
}

int rl_cpu_avgpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                     const int64_t *g, bool count_pad, void *y) {
  RL_CPU_DISPATCH_FLOAT("avg_pool2d", avgpool_f32(x, nc, H, W, g, count_pad, y),
            avgpool_f64(x, nc, H, W, g, count_pad, y));
}

int rl_cpu_avgpool2d_bwd(rl_dtype dt, const void *dy, int64_t nc, int64_t H, int64_t W,
                         const int64_t *g, bool count_pad, void *dx) {
  RL_CPU_DISPATCH_FLOAT("avg_pool2d", avgpool_bwd_f32(dy, nc, H, W, g, count_pad, dx),
            avgpool_bwd_f64(dy, nc, H, W, g, count_pad, dx));
}
