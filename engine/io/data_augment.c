/* data_augment.c - batch assembly: gather, pad, crop, flip, u8 -> f32.
 *
 * One pass per output pixel: out[b, c, i, j] = img[c, oy + i - pad,
 * ox + j' - pad] / 255 with j' = j (or cw - 1 - j when flipped), and 0
 * where that falls in the padding.  img is row idx[b] of a dense x [N, C,
 * H, W] or image idx[b] of a ragged store, each cut at its own size.  The
 * draws are counter-based (data.h), so rows are filled in parallel and the
 * batch depends only on the generator state it starts from. */
#include <string.h>

#include "data.h"
#include "philox.h"

/* What every row shares. */
typedef struct {
  int64_t c, ch, cw, pad;
  const rl_augment *a;
  const float *lut;
} batch_geom;

/* Where the images are: dense (ext NULL: image i at px + i * c * h * w)
 * or ragged (image i at px + ext[3i], ext[3i + 1] x ext[3i + 2]). */
typedef struct {
  const uint8_t *px;
  const int64_t *ext;
  int64_t n, h, w;
} image_src;

typedef struct {
  const uint8_t *px;
  int64_t h, w;
} one_image;

static one_image image_at(const image_src *s, int64_t c, int64_t i) {
  if (!s->ext) return (one_image){s->px + i * c * s->h * s->w, s->h, s->w};
  const int64_t *e = s->ext + 3 * i;
  return (one_image){s->px + e[0], e[1], e[2]};
}

/* Where an image's window starts and whether it is flipped: the centre of
 * the padded image, or uniform over its h + 2 pad - ch + 1 rows and
 * w + 2 pad - cw + 1 columns (as torchvision's RandomCrop with padding). */
static void draw(const batch_geom *g, const one_image *im, uint64_t seed, uint64_t counter,
                 bool random, int64_t *oy, int64_t *ox, bool *flip) {
  *oy = rl_center_offset(im->h + 2 * g->pad, g->ch);
  *ox = rl_center_offset(im->w + 2 * g->pad, g->cw);
  *flip = false;
  if (!random) return;
  rl_u32x4 r = rl_philox(seed, counter);
  if (g->a->random_crop) {
    uint64_t rows = (uint64_t)(im->h + 2 * g->pad - g->ch + 1);
    uint64_t cols = (uint64_t)(im->w + 2 * g->pad - g->cw + 1);
    *oy = (int64_t)(((uint64_t)r.v[0] * rows) >> 32);
    *ox = (int64_t)(((uint64_t)r.v[1] * cols) >> 32);
  }
  *flip = g->a->flip && (r.v[2] >> 31);
}

/* One output row: d[j] = lut[row[sx(j)]] with sx(j) = x0 + j (or x0 + cw - 1
 * - j flipped), 0 where sx falls outside [0, w). */
static void cut_row(const batch_geom *g, const uint8_t *row, int64_t w, float *d, int64_t x0,
                    bool flip) {
  int64_t lo = x0 < 0 ? -x0 : 0, hi = w - x0 < g->cw ? w - x0 : g->cw;
  if (hi < lo) hi = lo;
  for (int64_t j = 0; j < g->cw; j++) d[j] = 0.0f;
  for (int64_t k = lo; k < hi; k++) d[flip ? g->cw - 1 - k : k] = g->lut[row[x0 + k]];
}

/* One image [c, h, w] into dst [c, ch, cw]. */
static void cut(const batch_geom *g, const one_image *im, float *dst, int64_t oy, int64_t ox,
                bool flip) {
  for (int64_t c = 0; c < g->c; c++)
    for (int64_t i = 0; i < g->ch; i++) {
      float *d = dst + (c * g->ch + i) * g->cw;
      int64_t sy = oy + i - g->pad;
      if (sy < 0 || sy >= im->h) {
        memset(d, 0, sizeof *d * (size_t)g->cw);
        continue;
      }
      cut_row(g, im->px + (c * im->h + sy) * im->w, im->w, d, ox - g->pad, flip);
    }
}

/* Whether an h x w image, padded, holds the window. */
static bool fits(const batch_geom *g, int64_t h, int64_t w) {
  return g->ch >= 1 && g->cw >= 1 && h + 2 * g->pad - g->ch + 1 >= 1 &&
         w + 2 * g->pad - g->cw + 1 >= 1;
}

static int check_indices(const int64_t *ix, int64_t b, int64_t n) {
  for (int64_t i = 0; i < b; i++)
    if (ix[i] < 0 || ix[i] >= n)
      return rl_err("batch: index %lld (position %lld) is out of range for %lld images",
                    (long long)ix[i], (long long)i + 1, (long long)n);
  return 0;
}

static int check_idx_tensor(rl_tensor *idx) {
  if (idx->dtype != RL_I64 || idx->ndim != 1 || rl_dev(idx) != rl_cpu())
    return rl_err("batch: indices must be an i64 CPU tensor [B], got %s %s",
                  rl_dtype_name(idx->dtype), rl_shape_str(idx));
  return 0;
}

/* Rows ix[0..b) of src into a new f32 [b, c, ch, cw]. */
static rl_tensor *assemble(const image_src *src, const int64_t *ix, int64_t b, batch_geom *geo,
                           rl_generator *g) {
  if (check_indices(ix, b, src->n)) return NULL;
  int64_t size[4] = {b, geo->c, geo->ch, geo->cw}, out_img = geo->c * geo->ch * geo->cw;
  rl_tensor *out = rl_empty(4, size, RL_F32, rl_cpu());
  if (!out) return NULL;
  float lut[256];
  for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
  geo->lut = lut;
  bool random = geo->a->random_crop || geo->a->flip;
  if (!g) g = rl_default_generator();
  uint64_t off = random ? rl_generator_take(g, (uint64_t)b) : 0, seed = g->seed;
  float *dst = rl_data(out);
  /* threads pay off only on large batches */
#pragma omp parallel for schedule(static) if (b * out_img > (1 << 20))
  for (int64_t r = 0; r < b; r++) {
    one_image im = image_at(src, geo->c, ix[r]);
    int64_t oy, ox;
    bool flip;
    draw(geo, &im, seed, off + (uint64_t)r, random, &oy, &ox, &flip);
    cut(geo, &im, dst + r * out_img, oy, ox, flip);
  }
  return out;
}

rl_tensor *rl_data_batch(rl_tensor *x, rl_tensor *idx, const rl_augment *a,
                         rl_generator *g) {
  if (x->dtype != RL_U8 || x->ndim != 4 || rl_dev(x) != rl_cpu()) {
    rl_err("batch: images must be a u8 CPU tensor [N, C, H, W], got %s %s on %s",
           rl_dtype_name(x->dtype), rl_shape_str(x), rl_dev(x)->name);
    return NULL;
  }
  if (check_idx_tensor(idx)) return NULL;
  int64_t h = x->size[2], w = x->size[3];
  batch_geom geo = {x->size[1], a->crop_h ? a->crop_h : h, a->crop_w ? a->crop_w : w, a->pad, a,
                    NULL};
  if (a->pad < 0 || !fits(&geo, h, w)) {
    rl_err("batch: cannot cut %lldx%lld from %lldx%lld images padded by %lld", (long long)geo.ch,
           (long long)geo.cw, (long long)h, (long long)w, (long long)a->pad);
    return NULL;
  }
  rl_tensor *xc = rl_contiguous(x), *ic = xc ? rl_contiguous(idx) : NULL, *out = NULL;
  if (ic) {
    image_src src = {rl_data(xc), NULL, x->size[0], h, w};
    out = assemble(&src, rl_data(ic), idx->size[0], &geo, g);
  }
  if (xc) rl_release(xc);
  if (ic) rl_release(ic);
  return out;
}

rl_tensor *rl_data_batch_ragged(const rl_ragged *r, rl_tensor *idx, const rl_augment *a,
                                rl_generator *g) {
  if (rl_ragged_check(r, "batch") || check_idx_tensor(idx)) return NULL;
  if (!a->crop_h || !a->crop_w) {
    rl_err("batch: images of different sizes need a crop size");
    return NULL;
  }
  batch_geom geo = {r->c, a->crop_h, a->crop_w, a->pad, a, NULL};
  if (a->pad < 0) {
    rl_err("batch: padding must be >= 0, got %lld", (long long)a->pad);
    return NULL;
  }
  rl_tensor *ic = rl_contiguous(idx), *out = NULL;
  if (!ic) return NULL;
  const int64_t *ix = rl_data(ic), *ext = rl_data(r->extent), n = r->extent->size[0];
  int rc = check_indices(ix, idx->size[0], n);
  for (int64_t i = 0; !rc && i < idx->size[0]; i++) {
    const int64_t *e = ext + 3 * ix[i];
    if (!fits(&geo, e[1], e[2]))
      rc = rl_err("batch: cannot cut %lldx%lld from image %lld (%lldx%lld) padded by %lld",
                  (long long)geo.ch, (long long)geo.cw, (long long)ix[i], (long long)e[1],
                  (long long)e[2], (long long)a->pad);
  }
  if (!rc) {
    image_src src = {rl_data(r->pixels), ext, n, 0, 0};
    out = assemble(&src, ix, idx->size[0], &geo, g);
  }
  rl_release(ic);
  return out;
}
