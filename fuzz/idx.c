/* idx.c - fuzz target: rl_read_idx on a label file and an image file cut
 * from the input.  The first two bytes (little-endian) give the label
 * file's length, the rest after it is the image file.  Built twice: as
 * fuzz_idx on the bytes as they are (a fuzzed gzip stream included), and
 * with FUZZ_GZIP as fuzz_idx_gz, which gzips both files first so that
 * mutations reach the parser through zlib's decompression path. */
#include "common.h"
#include "io/data.h"

#ifdef FUZZ_GZIP
#define GZ 1
#else
#define GZ 0
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t nl = (size_t)(data[0] | data[1] << 8);
  data += 2, size -= 2;
  if (nl > size) nl = size;
  const char *labels = fuzz_file(0, "labels-idx1-ubyte", data, nl, GZ);
  const char *images = fuzz_file(1, "images-idx3-ubyte", data + nl, size - nl, GZ);
  rl_tensor *x, *y;
  if (rl_read_idx(images, labels, &x, &y) == 0) rl_data_drop(&x, &y);
  return 0;
}
