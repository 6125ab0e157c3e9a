/* data_limits.c - the size limits on decoded and resized images (data.h).
 *
 * Every size an image reader is about to allocate for goes through
 * rl_image_check_size first: the header's size before decoding, the
 * resized size before resampling.  Sizes are compared side by side before
 * any product is formed, so no check can overflow. */
#include <stdio.h>

#include "data.h"

static rl_image_limits limits = {RL_IMAGE_MAX_SIDE, RL_IMAGE_MAX_PIXELS};

rl_image_limits rl_image_get_limits(void) { return limits; }

int rl_image_set_limits(rl_image_limits l) {
  if (l.max_side < 1 || l.max_side > RL_IMAGE_LIMIT_SIDE_CAP)
    return rl_err("image limits: max_side must be in 1..%lld, got %lld",
                  (long long)RL_IMAGE_LIMIT_SIDE_CAP, (long long)l.max_side);
  if (l.max_pixels < 1 || l.max_pixels > RL_IMAGE_LIMIT_PIXELS_CAP)
    return rl_err("image limits: max_pixels must be in 1..%lld, got %lld",
                  (long long)RL_IMAGE_LIMIT_PIXELS_CAP, (long long)l.max_pixels);
  limits = l;
  return 0;
}

int rl_image_check_size(int64_t h, int64_t w, const char *what, char *msg, size_t msglen) {
  rl_image_limits l = limits;
  /* sides first: with both <= max_side (< 2^31) the product fits int64 */
  bool ok = h >= 1 && w >= 1 && h <= l.max_side && w <= l.max_side && h * w <= l.max_pixels;
  if (ok) return 0;
  snprintf(msg, msglen, "%s %lldx%lld (height x width), beyond the image limits (max_side %lld, "
           "max_pixels %lld)", what, (long long)h, (long long)w, (long long)l.max_side,
           (long long)l.max_pixels);
  return -1;
}

int rl_image_fit_size(const char *path, int64_t h, int64_t w, int64_t resize, int64_t *oh,
                      int64_t *ow, char *msg, size_t msglen) {
  char what[400];
  snprintf(what, sizeof what, "image: '%s': size", path);
  if (rl_image_check_size(h, w, what, msg, msglen)) return -1;
  if (resize <= 0) {
    *oh = h;
    *ow = w;
    return 0;
  }
  /* the short side alone must fit before the long side is scaled: that
   * keeps resize * side inside int64 */
  snprintf(what, sizeof what, "image: '%s': resizing to short side %lld needs at least", path,
           (long long)resize);
  if (rl_image_check_size(resize, resize, what, msg, msglen)) return -1;
  rl_image_short_side(h, w, resize, oh, ow);
  snprintf(what, sizeof what, "image: '%s': %lldx%lld resized to short side %lld gives", path,
           (long long)h, (long long)w, (long long)resize);
  return rl_image_check_size(*oh, *ow, what, msg, msglen);
}
