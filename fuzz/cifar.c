/* cifar.c - fuzz target: rl_read_cifar on the input as one batch file and
 * as the same file given twice (the multi-file path). */
#include "common.h"
#include "io/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(0, "data_batch.bin", data, size, 0);
  const char *both[2] = {path, path};
  rl_tensor *x, *y;
  for (int n = 1; n <= 2; n++)
    if (rl_read_cifar(n, both, &x, &y) == 0) rl_data_drop(&x, &y);
  return 0;
}
