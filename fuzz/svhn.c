/* svhn.c - fuzz target: rl_read_svhn_mat.
 *
 * Built twice.  As fuzz_svhn the input is the whole .mat file (seeds: v5
 * files, uncompressed, and v7 files, whose variables are miCOMPRESSED).
 * With FUZZ_COMPRESS, as fuzz_svhn_z, the input is the decompressed
 * content: the pieces between "ZSEP" separators are each deflated into
 * one miCOMPRESSED element after a v7 header, so that mutations reach the
 * element parser behind zlib (random bytes rarely inflate). */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common.h"
#include "io/data.h"

#define HEADER 128

#ifdef FUZZ_COMPRESS
/* Append the miCOMPRESSED element of piece p (n bytes) to buf at *len. */
static void put_compressed(uint8_t *buf, size_t *len, const uint8_t *p, size_t n) {
  uLongf zn = compressBound((uLong)n);
  if (compress2(buf + *len + 8, &zn, p, (uLong)n, 1) != Z_OK) abort();
  uint32_t tag[2] = {15, (uint32_t)zn}; /* miCOMPRESSED, byte count (little-endian host) */
  memcpy(buf + *len, tag, 8);
  *len += 8 + zn;
}

/* A v7 MAT-file of the input's pieces, each compressed; malloc'd. */
static uint8_t *make_file(const uint8_t *data, size_t size, size_t *len) {
  size_t pieces = size / 4 + 1;
  uint8_t *buf = malloc(HEADER + pieces * 8 + compressBound((uLong)size) + pieces * 64);
  if (!buf) abort();
  memset(buf, ' ', 116);
  memcpy(buf, "MATLAB 5.0 MAT-file, fuzz", 25);
  memset(buf + 116, 0, 8);
  memcpy(buf + 124, "\0\1IM", 4);
  *len = HEADER;
  size_t at = 0, n;
  const uint8_t *p;
  while (fuzz_split(data, size, &at, "ZSEP", &p, &n)) put_compressed(buf, len, p, n);
  return buf;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
#ifdef FUZZ_COMPRESS
  size_t len;
  uint8_t *file = make_file(data, size, &len);
  const char *path = fuzz_file(0, "z.mat", file, len, 0);
  free(file);
#else
  const char *path = fuzz_file(0, "in.mat", data, size, 0);
#endif
  rl_tensor *x, *y;
  if (rl_read_svhn_mat(path, &x, &y) == 0) rl_data_drop(&x, &y);
  return 0;
}
