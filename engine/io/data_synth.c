/* data_synth.c - a synthetic, well-separated image set for tests and demos.
 *
 * Pixel p of class k's pattern (p counts over C x H x W) is bright (215)
 * when bit p % 32 of lane (p / 32) % 4 of Philox counter
 * k * ceil(npix / 128) + p / 128 is set, dark (40) otherwise.  Sample i
 * (label i % classes) adds noise in [-30, 30] from byte p % 4 of lane
 * (p / 4) % 4 of counter 2^40 + i * ceil(npix / 16) + p / 16, so two samples of different classes differ by at least 175 - 60 = 115
 * wherever their patterns differ, and the set is the same on every
 * machine for one seed. */
#include <stdlib.h>

#include "data.h"
#include "philox.h"

#define DARK 40
#define BRIGHT 215
#define NOISE_BASE ((uint64_t)1 << 40)

/* The pattern of every class: base[k * npix + p] is DARK or BRIGHT. */
static void fill_patterns(uint64_t seed, int classes, int64_t npix, uint8_t *base) {
  int64_t words = (npix + 127) / 128;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < classes; k++)
    for (int64_t w = 0; w < words; w++) {
      rl_u32x4 r = rl_philox(seed, (uint64_t)(k * words + w));
      for (int64_t p = w * 128; p < npix && p < (w + 1) * 128; p++) {
        int bit = (int)((r.v[(p / 32) % 4] >> (p % 32)) & 1);
        base[k * npix + p] = bit ? BRIGHT : DARK;
      }
    }
}

/* Sample i: its class pattern plus noise in [-30, 30], 16 pixels a counter. */
static void fill_sample(uint64_t seed, int64_t i, int64_t npix, const uint8_t *base,
                        uint8_t *out) {
  int64_t words = (npix + 15) / 16;
  for (int64_t w = 0; w < words; w++) {
    rl_u32x4 r = rl_philox(seed, NOISE_BASE + (uint64_t)(i * words + w));
    for (int64_t p = w * 16; p < npix && p < (w + 1) * 16; p++) {
      uint32_t byte = (r.v[(p / 4) % 4] >> (8 * (p % 4))) & 0xff;
      out[p] = (uint8_t)(base[p] + (int)(byte * 61 / 256) - 30);
    }
  }
}

int rl_synthetic(int64_t n, int classes, int channels, int size, uint64_t seed,
                 rl_tensor **x, rl_tensor **y) {
  *x = *y = NULL;
  if (n < 0 || classes < 1 || channels < 1 || size < 1)
    return rl_err("synthetic: need n >= 0, classes, channels and size >= 1 (got n=%lld, "
                  "classes=%d, channels=%d, size=%d)",
                  (long long)n, classes, channels, size);
  int64_t npix = (int64_t)channels * size * size;
  uint8_t *base = malloc((size_t)(classes * npix));
  if (!base) return rl_err("synthetic: out of memory for %d class patterns", classes);
  if (rl_data_alloc(n, channels, size, size, x, y)) {
    free(base);
    return -1;
  }
  fill_patterns(seed, classes, npix, base);
  uint8_t *px = rl_data(*x);
  int64_t *lab = rl_data(*y);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    lab[i] = i % classes;
    fill_sample(seed, i, npix, base + (i % classes) * npix, px + i * npix);
  }
  free(base);
  return 0;
}
