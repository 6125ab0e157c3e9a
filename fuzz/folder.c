/* folder.c - fuzz target for the image-folder readers: rl_read_images
 * (decode, resize, centre crop into one tensor) and rl_read_images_ragged
 * (every image whole at its resized size), then a centre crop and a random
 * batch of the ragged store.
 *
 * Input: byte 0 picks the resize (0..23; 0 keeps the size), byte 1 the
 * crop (0..15; 0 is the default), and the rest is up to 4 image files
 * separated by "FSEP". */
#include "common.h"
#include "io/data.h"

#define MAX_FILES 4

static void ragged(int n, const char *const *files, int64_t resize, int64_t crop) {
  rl_ragged r;
  if (rl_read_images_ragged(n, files, resize, &r)) return;
  rl_tensor *x = rl_ragged_center_crop(&r, crop ? crop : 1, crop ? crop : 1);
  if (x) rl_release(x);
  rl_tensor *idx = rl_arange(0, n, 1, RL_I64, rl_cpu());
  if (idx) {
    rl_augment a = {crop ? crop : 1, crop ? crop : 1, 2, true, true};
    rl_tensor *b = rl_data_batch_ragged(&r, idx, &a, NULL);
    if (b) rl_release(b);
    rl_release(idx);
  }
  rl_data_drop(&r.pixels, &r.extent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    fuzz_small_images();
    ready = 1;
  }
  if (size < 2) return 0;
  int64_t resize = data[0] % 24, crop = data[1] % 16;
  static const char *names[MAX_FILES] = {"a.png", "b.jpg", "c.png", "d.jpg"};
  const char *files[MAX_FILES];
  size_t at = 2, len;
  const uint8_t *p;
  int n = 0;
  while (n < MAX_FILES && fuzz_split(data, size, &at, "FSEP", &p, &len)) {
    files[n] = fuzz_file(n, names[n], p, len, 0);
    n++;
  }
  if (n == 0) return 0;
  rl_tensor *x;
  if (rl_read_images(n, files, resize, crop, crop, &x) == 0) rl_release(x);
  ragged(n, files, resize, crop);
  return 0;
}
