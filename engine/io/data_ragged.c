/* data_ragged.c - image sets whose images keep their own sizes.
 *
 * Restricted ImageNet trains on RandomCrop(64, padding=8) of each image
 * resized to short side 72, so a crop may land anywhere along the long
 * side: the store must keep every resized image whole.  Images are packed
 * one after another in a u8 buffer; extent row i = (offset, h, w) of image
 * i.  Reading probes every header first, sums the sizes and allocates the
 * buffer once, then decodes straight into it: memory is the final size
 * plus one image per thread, never twice the set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

#define MSG_LEN 512

int rl_ragged_check(const rl_ragged *r, const char *op) {
  rl_tensor *p = r->pixels, *e = r->extent;
  if (p->dtype != RL_U8 || p->ndim != 1 || rl_dev(p) != rl_cpu() || !rl_is_contiguous(p))
    return rl_err("%s: ragged pixels must be a contiguous u8 CPU tensor [total], got %s %s", op,
                  rl_dtype_name(p->dtype), rl_shape_str(p));
  if (e->dtype != RL_I64 || e->ndim != 2 || e->size[1] != 3 || rl_dev(e) != rl_cpu() ||
      !rl_is_contiguous(e))
    return rl_err("%s: ragged extent must be a contiguous i64 CPU tensor [N, 3], got %s %s", op,
                  rl_dtype_name(e->dtype), rl_shape_str(e));
  if (r->c < 1) return rl_err("%s: ragged images need at least 1 channel, got %lld", op, (long long)r->c);
  const int64_t *x = rl_data(e), total = p->size[0];
  for (int64_t i = 0; i < e->size[0]; i++) {
    int64_t off = x[3 * i], h = x[3 * i + 1], w = x[3 * i + 2];
    /* divisions, not products: a corrupt row must not overflow the test */
    if (off < 0 || off > total || h < 1 || w < 1 || r->c > total / h ||
        w > (total - off) / (r->c * h))
      return rl_err("%s: ragged image %lld (offset %lld, %lldx%lldx%lld) does not lie inside %lld bytes",
                    op, (long long)i, (long long)off, (long long)r->c, (long long)h, (long long)w,
                    (long long)total);
  }
  return 0;
}

/* ---- reading ------------------------------------------------------------------ */

/* The size of file i once resized, into row i of ext (offset filled later);
 * both the header's and the resized size must be within the image limits. */
static int size_one(const char *path, int64_t resize, int64_t *row, char *msg) {
  int64_t h, w;
  if (rl_image_probe(path, &h, &w, msg, MSG_LEN)) return -1;
  return rl_image_fit_size(path, h, w, resize, &row[1], &row[2], msg, MSG_LEN);
}

/* Decode and resize file i into its place. */
static int fill_one(const char *path, int64_t resize, const int64_t *row, uint8_t *px, char *msg) {
  rl_image im;
  if (rl_image_fit(path, resize, &im, msg, MSG_LEN)) return -1;
  int rc = 0;
  if (im.h != row[1] || im.w != row[2]) {
    snprintf(msg, MSG_LEN, "image: '%s': decodes to %lldx%lld where its header promised %lldx%lld",
             path, (long long)im.h, (long long)im.w, (long long)row[1], (long long)row[2]);
    rc = -1;
  } else {
    memcpy(px + row[0], im.px, (size_t)(3 * im.h * im.w));
  }
  rl_image_free(&im);
  return rc;
}

/* The first failure in list order, as the error. */
static int first_bad(int64_t n, const int8_t *bad, const char *msgs) {
  for (int64_t i = 0; i < n; i++)
    if (bad[i]) return rl_err("%s", msgs + i * MSG_LEN);
  return 0;
}

int rl_read_images_ragged(int64_t n, const char *const *files, int64_t resize, rl_ragged *out) {
  out->pixels = out->extent = NULL;
  out->c = 3;
  if (n < 1) return rl_err("images: no files given");
  if (resize < 0) return rl_err("images: negative size");
  int64_t es[2] = {n, 3};
  char *msgs = malloc((size_t)n * MSG_LEN);
  int8_t *bad = calloc((size_t)n, 1);
  out->extent = msgs && bad ? rl_empty(2, es, RL_I64, rl_cpu()) : NULL;
  int rc = 0;
  if (!out->extent) rc = rl_err("images: out of memory for %lld images", (long long)n);
  int64_t *ext = rc ? NULL : rl_data(out->extent);
  if (!rc) {
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; i++)
      bad[i] = (int8_t)(size_one(files[i], resize, ext + 3 * i, msgs + i * MSG_LEN) != 0);
    rc = first_bad(n, bad, msgs);
  }
  int64_t total = 0;
  if (!rc) {
    for (int64_t i = 0; i < n; i++) {
      ext[3 * i] = total;
      total += 3 * ext[3 * i + 1] * ext[3 * i + 2];
    }
    if (!(out->pixels = rl_empty(1, &total, RL_U8, rl_cpu())))
      rc = rl_err("images: out of memory for %lld images (%lld bytes)", (long long)n, (long long)total);
  }
  if (!rc) {
    uint8_t *px = rl_data(out->pixels);
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < n; i++)
      bad[i] = (int8_t)(fill_one(files[i], resize, ext + 3 * i, px, msgs + i * MSG_LEN) != 0);
    rc = first_bad(n, bad, msgs);
  }
  free(msgs);
  free(bad);
  if (rc) rl_data_drop(&out->pixels, &out->extent);
  return rc;
}

/* ---- selecting and cropping ----------------------------------------------------- */

/* idx as a contiguous i64 CPU vector whose values index r's images. */
static rl_tensor *check_idx(const rl_ragged *r, rl_tensor *idx, const char *op) {
  if (idx->dtype != RL_I64 || idx->ndim != 1 || rl_dev(idx) != rl_cpu()) {
    rl_err("%s: indices must be an i64 CPU tensor [B], got %s %s", op, rl_dtype_name(idx->dtype),
           rl_shape_str(idx));
    return NULL;
  }
  rl_tensor *ic = rl_contiguous(idx);
  if (!ic) return NULL;
  const int64_t *ix = rl_data(ic), n = r->extent->size[0];
  for (int64_t i = 0; i < idx->size[0]; i++)
    if (ix[i] < 0 || ix[i] >= n) {
      rl_err("%s: index %lld (position %lld) is out of range for %lld images", op, (long long)ix[i],
             (long long)i + 1, (long long)n);
      rl_release(ic);
      return NULL;
    }
  return ic;
}

int rl_ragged_select(const rl_ragged *r, rl_tensor *idx, rl_ragged *out) {
  out->pixels = out->extent = NULL;
  out->c = r->c;
  if (rl_ragged_check(r, "ragged select")) return -1;
  rl_tensor *ic = check_idx(r, idx, "ragged select");
  if (!ic) return -1;
  int64_t b = idx->size[0], es[2] = {b, 3}, total = 0;
  const int64_t *ix = rl_data(ic), *src = rl_data(r->extent);
  int rc = (out->extent = rl_empty(2, es, RL_I64, rl_cpu())) ? 0 : -1;
  if (!rc) {
    int64_t *dst = rl_data(out->extent);
    for (int64_t i = 0; i < b; i++) {
      const int64_t *s = src + 3 * ix[i];
      dst[3 * i] = total, dst[3 * i + 1] = s[1], dst[3 * i + 2] = s[2];
      total += r->c * s[1] * s[2];
    }
    rc = (out->pixels = rl_empty(1, &total, RL_U8, rl_cpu())) ? 0 : -1;
  }
  if (!rc) {
    const uint8_t *from = rl_data(r->pixels);
    uint8_t *to = rl_data(out->pixels);
    const int64_t *dst = rl_data(out->extent);
#pragma omp parallel for schedule(static) if (total > (1 << 22))
    for (int64_t i = 0; i < b; i++)
      memcpy(to + dst[3 * i], from + src[3 * ix[i]], (size_t)(r->c * dst[3 * i + 1] * dst[3 * i + 2]));
  }
  rl_release(ic);
  if (rc) rl_data_drop(&out->pixels, &out->extent);
  return rc;
}

rl_tensor *rl_ragged_center_crop(const rl_ragged *r, int64_t ch, int64_t cw) {
  if (rl_ragged_check(r, "ragged centre crop")) return NULL;
  const int64_t *e = rl_data(r->extent), n = r->extent->size[0];
  if (ch < 1 || cw < 1) {
    rl_err("ragged centre crop: crop sizes must be >= 1, got %lldx%lld", (long long)ch, (long long)cw);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++)
    if (e[3 * i + 1] < ch || e[3 * i + 2] < cw) {
      rl_err("ragged centre crop: image %lld is %lldx%lld, smaller than the %lldx%lld crop",
             (long long)i, (long long)e[3 * i + 1], (long long)e[3 * i + 2], (long long)ch,
             (long long)cw);
      return NULL;
    }
  int64_t size[4] = {n, r->c, ch, cw};
  rl_tensor *x = rl_empty(4, size, RL_U8, rl_cpu());
  if (!x) return NULL;
  const uint8_t *px = rl_data(r->pixels);
  uint8_t *dst = rl_data(x);
#pragma omp parallel for schedule(static) if (n * r->c * ch * cw > (1 << 22))
  for (int64_t i = 0; i < n; i++) {
    int64_t h = e[3 * i + 1], w = e[3 * i + 2];
    int64_t oy = rl_center_offset(h, ch), ox = rl_center_offset(w, cw);
    for (int64_t c = 0; c < r->c; c++)
      for (int64_t y = 0; y < ch; y++)
        memcpy(dst + ((i * r->c + c) * ch + y) * cw, px + e[3 * i] + (c * h + oy + y) * w + ox,
               (size_t)cw);
  }
  return x;
}
