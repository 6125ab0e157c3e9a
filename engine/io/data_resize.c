/* data_resize.c - bilinear resampling and centre crops of u8 planes.
 *
 * The filter is PIL's BILINEAR (Image.resize): for output pixel i, centre
 * = (i + 0.5) * in/out; the triangle 1 - |x| is widened by in/out when
 * shrinking (so it averages instead of aliasing), weights are normalised,
 * rounded to 22-bit fixed point, and the rows are resampled before the
 * columns through an 8-bit intermediate - the steps PIL takes, so the
 * pixels match what torchvision's Resize gives on PIL images. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

#define PREC 22

/* Per output pixel: first input pixel, count, and ksize fixed-point weights. */
typedef struct {
  int64_t *first, *count;
  int32_t *k;
  int ksize;
} coeffs;

static void coeffs_free(coeffs *c) {
  free(c->first);
  free(c->count);
  free(c->k);
}

static double triangle(double x) {
  x = fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

/* The weights of output pixel i into row k (already allocated). */
static void coeffs_one(coeffs *c, int64_t in, double scale, double fs, int64_t i, double *w) {
  double centre = (i + 0.5) * scale, support = fs, ss = 1.0 / fs;
  int64_t lo = (int64_t)(centre - support + 0.5), hi;
  if (lo < 0) lo = 0;
  hi = (int64_t)(centre + support + 0.5);
  if (hi > in) hi = in;
  int64_t n = hi - lo;
  double total = 0;
  for (int64_t x = 0; x < n; x++) total += w[x] = triangle((x + lo - centre + 0.5) * ss);
  int32_t *k = c->k + i * c->ksize;
  for (int64_t x = 0; x < c->ksize; x++) {
    double v = x < n && total != 0 ? w[x] / total : 0.0;
    k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PREC) : 0.5 + v * (1 << PREC));
  }
  c->first[i] = lo;
  c->count[i] = n;
}

static int coeffs_make(coeffs *c, int64_t in, int64_t out) {
  double scale = (double)in / (double)out, fs = scale > 1.0 ? scale : 1.0;
  c->ksize = (int)ceil(fs) * 2 + 1;
  c->first = malloc(sizeof *c->first * (size_t)out);
  c->count = malloc(sizeof *c->count * (size_t)out);
  c->k = malloc(sizeof *c->k * (size_t)(out * c->ksize));
  double *w = malloc(sizeof *w * (size_t)c->ksize);
  if (!c->first || !c->count || !c->k || !w) {
    free(w);
    coeffs_free(c);
    return -1;
  }
  for (int64_t i = 0; i < out; i++) coeffs_one(c, in, scale, fs, i, w);
  free(w);
  return 0;
}

static uint8_t clip8(int64_t ss) {
  ss >>= PREC;
  return (uint8_t)(ss < 0 ? 0 : ss > 255 ? 255 : ss);
}

/* One plane h x w -> h x ow (rows), or h x w -> oh x w (columns: stride w). */
static void resample_rows(const uint8_t *src, int64_t h, int64_t w, uint8_t *dst, int64_t ow,
                          const coeffs *c) {
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < ow; x++) {
      int64_t ss = 1 << (PREC - 1);
      const int32_t *k = c->k + x * c->ksize;
      const uint8_t *s = src + y * w + c->first[x];
      for (int64_t j = 0; j < c->count[x]; j++) ss += s[j] * (int64_t)k[j];
      dst[y * ow + x] = clip8(ss);
    }
}

static void resample_cols(const uint8_t *src, int64_t w, uint8_t *dst, int64_t oh,
                          const coeffs *c) {
  for (int64_t y = 0; y < oh; y++) {
    const int32_t *k = c->k + y * c->ksize;
    for (int64_t x = 0; x < w; x++) {
      int64_t ss = 1 << (PREC - 1);
      const uint8_t *s = src + c->first[y] * w + x;
      for (int64_t j = 0; j < c->count[y]; j++) ss += s[j * w] * (int64_t)k[j];
      dst[y * w + x] = clip8(ss);
    }
  }
}

/* Resample plane by plane through tmp (h x ow). */
static void resize_planes(const rl_image *src, int64_t oh, int64_t ow, const coeffs *ch,
                          const coeffs *cv, uint8_t *tmp, rl_image *dst) {
  int64_t ip = src->h * src->w, op = oh * ow;
  for (int c = 0; c < src->c; c++) {
    const uint8_t *s = src->px + c * ip;
    uint8_t *d = dst->px + c * op;
    if (ow != src->w) resample_rows(s, src->h, src->w, oh != src->h ? tmp : d, ow, ch);
    const uint8_t *mid = ow != src->w ? tmp : s;
    if (oh != src->h) resample_cols(mid, ow, d, oh, cv);
    else if (ow == src->w) memcpy(d, s, (size_t)op);
  }
}

int rl_image_resize(const rl_image *src, int64_t oh, int64_t ow, rl_image *dst) {
  coeffs ch = {0}, cv = {0};
  dst->c = src->c;
  dst->h = oh;
  dst->w = ow;
  dst->px = malloc((size_t)(src->c * oh * ow) + 1);
  uint8_t *tmp = malloc((size_t)(src->h * ow) + 1);
  int rc = dst->px && tmp ? 0 : -1;
  if (!rc && ow != src->w) rc = coeffs_make(&ch, src->w, ow);
  if (!rc && oh != src->h) rc = coeffs_make(&cv, src->h, oh);
  if (!rc) resize_planes(src, oh, ow, &ch, &cv, tmp, dst);
  coeffs_free(&ch);
  coeffs_free(&cv);
  free(tmp);
  if (rc) rl_image_free(dst);
  return rc;
}

void rl_image_short_side(int64_t h, int64_t w, int64_t s, int64_t *oh, int64_t *ow) {
  if (w <= h) {
    *ow = s;
    *oh = (int64_t)((double)(s * h) / (double)w);
  } else {
    *oh = s;
    *ow = (int64_t)((double)(s * w) / (double)h);
  }
}

int64_t rl_center_offset(int64_t len, int64_t n) {
  int64_t d = len - n, k = d / 2;
  return d % 2 && k % 2 ? k + 1 : k; /* d/2 = k + 0.5 rounds to the even one */
}

rl_tensor *rl_image_resize_t(rl_tensor *img, int64_t oh, int64_t ow) {
  if (img->dtype != RL_U8 || img->ndim != 3 || rl_dev(img) != rl_cpu()) {
    rl_err("resize: expects a u8 CPU image [C, H, W], got %s %s", rl_dtype_name(img->dtype),
           rl_shape_str(img));
    return NULL;
  }
  if (oh < 1 || ow < 1 || img->size[1] < 1 || img->size[2] < 1) {
    rl_err("resize: cannot resize %s to %lldx%lld", rl_shape_str(img), (long long)oh, (long long)ow);
    return NULL;
  }
  char msg[256];
  if (rl_image_check_size(oh, ow, "resize: the target", msg, sizeof msg)) {
    rl_err("%s", msg);
    return NULL;
  }
  rl_tensor *c = rl_contiguous(img);
  if (!c) return NULL;
  rl_image src = {(int)img->size[0], img->size[1], img->size[2], rl_data(c)}, dst;
  int rc = rl_image_resize(&src, oh, ow, &dst);
  rl_release(c);
  if (rc) {
    rl_err("resize: out of memory");
    return NULL;
  }
  int64_t size[3] = {src.c, oh, ow};
  rl_tensor *t = rl_from_host(3, size, RL_U8, dst.px, rl_cpu());
  rl_image_free(&dst);
  return t;
}
