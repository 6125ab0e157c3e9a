/* data_folder.c - many image files into one u8 tensor, decoded in parallel.
 *
 * Each file is decoded, its short side resized (torchvision's Resize(s))
 * and its centre cut (CenterCrop), straight into its row of x.  (Images
 * that keep their whole resized extent: data_ragged.c.)  Worker
 * threads keep their messages in a per-file slot (rl_err's buffer is per
 * thread); the first failing file in list order names the error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

#define MSG_LEN 512

typedef struct {
  int64_t resize, crop_h, crop_w;
} fit_opts;

/* Copy the centre crop of im into dst [3, ch, cw]. */
static void crop_into(const rl_image *im, int64_t ch, int64_t cw, uint8_t *dst) {
  int64_t oy = rl_center_offset(im->h, ch), ox = rl_center_offset(im->w, cw);
  for (int c = 0; c < 3; c++)
    for (int64_t i = 0; i < ch; i++)
      memcpy(dst + (c * ch + i) * cw, im->px + (c * im->h + oy + i) * im->w + ox, (size_t)cw);
}

int rl_image_fit(const char *path, int64_t resize, rl_image *out, char *msg, size_t msglen) {
  if (rl_image_decode(path, out, msg, msglen)) return -1;
  if (resize <= 0) return 0;
  int64_t oh, ow;
  rl_image rs;
  if (rl_image_fit_size(path, out->h, out->w, resize, &oh, &ow, msg, msglen)) {
    rl_image_free(out);
    return -1;
  }
  int rc = rl_image_resize(out, oh, ow, &rs);
  rl_image_free(out);
  if (rc) {
    snprintf(msg, msglen, "image: '%s': out of memory resizing", path);
    return -1;
  }
  *out = rs;
  return 0;
}

/* Decode, resize and crop one file into dst. */
static int fit_one(const char *path, const fit_opts *o, uint8_t *dst, char *msg) {
  rl_image im;
  if (rl_image_fit(path, o->resize, &im, msg, MSG_LEN)) return -1;
  int rc = 0;
  if (im.h < o->crop_h || im.w < o->crop_w) {
    snprintf(msg, MSG_LEN, "image: '%s': %lldx%lld%s is smaller than the %lldx%lld crop", path,
             (long long)im.h, (long long)im.w, o->resize > 0 ? " after resizing" : "",
             (long long)o->crop_h, (long long)o->crop_w);
    rc = -1;
  } else {
    crop_into(&im, o->crop_h, o->crop_w, dst);
  }
  rl_image_free(&im);
  return rc;
}

/* Without a crop size: resize x resize, or the first image's size. */
static int default_crop(const char *path, int64_t resize, int64_t *h, int64_t *w) {
  if (resize > 0) {
    *h = *w = resize;
    return 0;
  }
  char msg[MSG_LEN];
  rl_image im;
  if (rl_image_decode(path, &im, msg, sizeof msg)) return rl_err("%s", msg);
  *h = im.h;
  *w = im.w;
  rl_image_free(&im);
  return 0;
}

int rl_read_images(int64_t n, const char *const *files, int64_t resize, int64_t crop_h,
                   int64_t crop_w, rl_tensor **x) {
  *x = NULL;
  if (n < 1) return rl_err("images: no files given");
  if (resize < 0 || crop_h < 0 || crop_w < 0) return rl_err("images: negative size");
  /* x is allocated before any file is read: its sizes must be sane first */
  int64_t side = rl_image_get_limits().max_side;
  if (resize > side || crop_h > side || crop_w > side)
    return rl_err("images: resize %lld, crop %lldx%lld: beyond the image limits (max_side %lld)",
                  (long long)resize, (long long)crop_h, (long long)crop_w, (long long)side);
  fit_opts o = {resize, crop_h, crop_w};
  if ((!crop_h || !crop_w) && default_crop(files[0], resize, &o.crop_h, &o.crop_w)) return -1;
  int64_t size[4] = {n, 3, o.crop_h, o.crop_w}, row = 3 * o.crop_h * o.crop_w;
  char *msgs = malloc((size_t)n * MSG_LEN);
  int8_t *bad = calloc((size_t)n, 1);
  if (!msgs || !bad || !(*x = rl_empty(4, size, RL_U8, rl_cpu()))) {
    free(msgs);
    free(bad);
    return rl_err("images: out of memory for %lld images", (long long)n);
  }
  uint8_t *dst = rl_data(*x);
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t i = 0; i < n; i++)
    bad[i] = (int8_t)(fit_one(files[i], &o, dst + i * row, msgs + i * MSG_LEN) != 0);
  int rc = 0;
  for (int64_t i = 0; i < n && !rc; i++)
    if (bad[i]) rc = rl_err("%s", msgs + i * MSG_LEN);
  free(msgs);
  free(bad);
  if (rc) rl_data_drop(x, NULL);
  return rc;
}
