/* image.c - fuzz target for the PNG and JPEG decoders (built as fuzz_png and
 * fuzz_jpeg, one per seed corpus; the format is sniffed from the bytes).
 *
 * The input file is decoded, probed, and decoded with its short side
 * resized to a size taken from its last byte.  PNG chunks carry CRCs that
 * random mutations break, so every complete chunk's CRC is recomputed
 * first: mutations then reach libpng's parsing instead of its CRC check. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common.h"
#include "io/data.h"

static uint32_t be32(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Recompute the CRC of each chunk that lies wholly inside the n bytes. */
static void fix_png_crcs(uint8_t *p, size_t n) {
  static const uint8_t sig[8] = {137, 'P', 'N', 'G', '\r', '\n', 26, '\n'};
  if (n < 8 || memcmp(p, sig, 8)) return;
  size_t at = 8;
  while (at + 12 <= n) {
    uint32_t len = be32(p + at);
    if (len > n - at - 12) return;
    uint32_t crc = (uint32_t)crc32(0, p + at + 4, len + 4);
    uint8_t *c = p + at + 8 + len;
    c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16), c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
    at += 12 + (size_t)len;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    fuzz_small_images();
    ready = 1;
  }
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) abort();
  memcpy(copy, data, size);
  fix_png_crcs(copy, size);
  const char *path = fuzz_file(0, "in.img", copy, size, 0);
  free(copy);
  char msg[512];
  rl_image im;
  int64_t h, w;
  if (rl_image_decode(path, &im, msg, sizeof msg) == 0) rl_image_free(&im);
  (void)rl_image_probe(path, &h, &w, msg, sizeof msg);
  int64_t resize = size ? 1 + data[size - 1] % 40 : 1;
  if (rl_image_fit(path, resize, &im, msg, sizeof msg) == 0) rl_image_free(&im);
  return 0;
}
