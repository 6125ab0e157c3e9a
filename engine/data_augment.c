/* data_augment.c - batch assembly: gather, pad, crop, flip, u8 -> f32.
 *
 * One pass per output pixel: out[b, c, i, j] = x[idx[b], c, oy + i - pad,
 * ox + j' - pad] / 255 with j' = j (or cw - 1 - j when flipped), and 0
 * where that falls in the padding.  The draws are counter-based (data.h),
 * so rows are filled in parallel and the batch depends only on the
 * generator state it starts from. */
#include <string.h>

#include "data.h"
#include "philox.h"

typedef struct {
  int64_t c, h, w, ch, cw, pad, oy_range, ox_range;
  const rl_augment *a;
  const float *lut;
} batch_geom;

/* Where row b's window starts and whether it is flipped. */
static void draw(const batch_geom *g, uint64_t seed, uint64_t counter, bool random,
                 int64_t *oy, int64_t *ox, bool *flip) {
  *oy = rl_center_offset(g->h + 2 * g->pad, g->ch);
  *ox = rl_center_offset(g->w + 2 * g->pad, g->cw);
  *flip = false;
  if (!random) return;
  rl_u32x4 r = rl_philox(seed, counter);
  if (g->a->random_crop) {
    *oy = (int64_t)(((uint64_t)r.v[0] * (uint64_t)g->oy_range) >> 32);
    *ox = (int64_t)(((uint64_t)r.v[1] * (uint64_t)g->ox_range) >> 32);
  }
  *flip = g->a->flip && (r.v[2] >> 31);
}

/* One output row: d[j] = lut[row[sx(j)]] with sx(j) = x0 + j (or x0 + cw - 1
 * - j flipped), 0 where sx falls outside [0, w). */
static void cut_row(const batch_geom *g, const uint8_t *row, float *d, int64_t x0, bool flip) {
  int64_t lo = x0 < 0 ? -x0 : 0, hi = g->w - x0 < g->cw ? g->w - x0 : g->cw;
  if (hi < lo) hi = lo;
  for (int64_t j = 0; j < g->cw; j++) d[j] = 0.0f;
  for (int64_t k = lo; k < hi; k++) d[flip ? g->cw - 1 - k : k] = g->lut[row[x0 + k]];
}

/* One image src [c, h, w] into dst [c, ch, cw]. */
static void cut(const batch_geom *g, const uint8_t *src, float *dst, int64_t oy, int64_t ox,
                bool flip) {
  for (int64_t c = 0; c < g->c; c++)
    for (int64_t i = 0; i < g->ch; i++) {
      float *d = dst + (c * g->ch + i) * g->cw;
      int64_t sy = oy + i - g->pad;
      if (sy < 0 || sy >= g->h) {
        memset(d, 0, sizeof *d * (size_t)g->cw);
        continue;
      }
      cut_row(g, src + (c * g->h + sy) * g->w, d, ox - g->pad, flip);
    }
}

/* Shapes and options; fills g. */
static int check_batch(rl_tensor *x, rl_tensor *idx, const rl_augment *a, batch_geom *g) {
  if (x->dtype != RL_U8 || x->ndim != 4 || rl_dev(x) != rl_cpu())
    return rl_err("batch: images must be a u8 CPU tensor [N, C, H, W], got %s %s on %s",
                  rl_dtype_name(x->dtype), rl_shape_str(x), rl_dev(x)->name);
  if (idx->dtype != RL_I64 || idx->ndim != 1 || rl_dev(idx) != rl_cpu())
    return rl_err("batch: indices must be an i64 CPU tensor [B], got %s %s",
                  rl_dtype_name(idx->dtype), rl_shape_str(idx));
  g->c = x->size[1], g->h = x->size[2], g->w = x->size[3], g->pad = a->pad, g->a = a;
  g->ch = a->crop_h ? a->crop_h : g->h;
  g->cw = a->crop_w ? a->crop_w : g->w;
  g->oy_range = g->h + 2 * g->pad - g->ch + 1;
  g->ox_range = g->w + 2 * g->pad - g->cw + 1;
  if (a->pad < 0 || g->ch < 1 || g->cw < 1 || g->oy_range < 1 || g->ox_range < 1)
    return rl_err("batch: cannot cut %lldx%lld from %lldx%lld images padded by %lld",
                  (long long)g->ch, (long long)g->cw, (long long)g->h, (long long)g->w,
                  (long long)a->pad);
  return 0;
}

static int check_indices(const int64_t *ix, int64_t b, int64_t n) {
  for (int64_t i = 0; i < b; i++)
    if (ix[i] < 0 || ix[i] >= n)
      return rl_err("batch: index %lld (position %lld) is out of range for %lld images",
                    (long long)ix[i], (long long)i + 1, (long long)n);
  return 0;
}

rl_tensor *rl_data_batch(rl_tensor *x, rl_tensor *idx, const rl_augment *a,
                         rl_generator *g) {
  batch_geom geo;
  if (check_batch(x, idx, a, &geo)) return NULL;
  rl_tensor *xc = rl_contiguous(x), *ic = xc ? rl_contiguous(idx) : NULL, *out = NULL;
  int64_t b = idx->size[0], size[4] = {b, geo.c, geo.ch, geo.cw};
  if (ic && !check_indices(rl_data(ic), b, x->size[0]))
    out = rl_empty(4, size, RL_F32, rl_cpu());
  if (out) {
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
    geo.lut = lut;
    bool random = a->random_crop || a->flip;
    if (!g) g = rl_default_generator();
    uint64_t off = random ? rl_generator_take(g, (uint64_t)b) : 0, seed = g->seed;
    const int64_t *ix = rl_data(ic);
    const uint8_t *src = rl_data(xc);
    float *dst = rl_data(out);
    int64_t in_img = geo.c * geo.h * geo.w, out_img = geo.c * geo.ch * geo.cw;
    /* threads pay off only on large batches */
#pragma omp parallel for schedule(static) if (b * out_img > (1 << 20))
    for (int64_t r = 0; r < b; r++) {
      int64_t oy, ox;
      bool flip;
      draw(&geo, seed, off + (uint64_t)r, random, &oy, &ox, &flip);
      cut(&geo, src + ix[r] * in_img, dst + r * out_img, oy, ox, flip);
    }
  }
  if (xc) rl_release(xc);
  if (ic) rl_release(ic);
  return out;
}
