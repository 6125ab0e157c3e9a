/* data_cifar.c - CIFAR-10 binary batches.
 *
 * A batch file is a sequence of 3073-byte records: the label (0..9), then
 * 1024 red, 1024 green and 1024 blue bytes of a 32x32 image, row-major -
 * already the NCHW layout, so a record copies straight into x. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

#define CIFAR_PIXELS 3072
#define CIFAR_RECORD (CIFAR_PIXELS + 1)
#define CIFAR_CLASSES 10

/* The number of records in path; its size must be a positive multiple of
 * the record size. */
static int cifar_count(const char *path, int64_t *n) {
  int64_t size;
  if (rl_data_file_size("cifar10", path, &size)) return -1;
  if (size == 0) return rl_err("cifar10: '%s': empty file (byte 0)", path);
  if (size % CIFAR_RECORD)
    return rl_err("cifar10: '%s': truncated at byte %lld: the size is not a multiple of "
                  "the %d-byte record (record %lld is incomplete)",
                  path, (long long)(size - size % CIFAR_RECORD), CIFAR_RECORD,
                  (long long)(size / CIFAR_RECORD));
  *n = size / CIFAR_RECORD;
  return 0;
}

/* Read n records of one file into x and y from row `row` on. */
static int cifar_file(const char *path, int64_t n, int64_t row, uint8_t *x, int64_t *y) {
  FILE *f = fopen(path, "rb");
  if (!f) return rl_err("cifar10: '%s': cannot open: %s", path, strerror(errno));
  uint8_t rec[CIFAR_RECORD];
  int rc = 0;
  for (int64_t i = 0; i < n && !rc; i++) {
    long long at = (long long)(i * CIFAR_RECORD);
    if (fread(rec, 1, CIFAR_RECORD, f) != CIFAR_RECORD)
      rc = rl_err("cifar10: '%s': truncated at byte %lld (record %lld)", path, at, (long long)i);
    else if (rec[0] >= CIFAR_CLASSES)
      rc = rl_err("cifar10: '%s': label %d at byte %lld (record %lld) is not in 0..9", path,
                  rec[0], at, (long long)i);
    else {
      y[row + i] = rec[0];
      memcpy(x + (row + i) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
    }
  }
  fclose(f);
  return rc;
}

int rl_read_cifar(int nfiles, const char *const *paths, rl_tensor **x, rl_tensor **y) {
  *x = *y = NULL;
  if (nfiles < 1) return rl_err("cifar10: no files given");
  int64_t *counts = malloc(sizeof *counts * (size_t)nfiles), total = 0;
  if (!counts) return rl_err("cifar10: out of memory");
  int rc = 0;
  for (int i = 0; i < nfiles && !rc; i++) {
    rc = cifar_count(paths[i], &counts[i]);
    if (!rc) total += counts[i];
  }
  if (!rc) rc = rl_data_alloc(total, 3, 32, 32, x, y);
  int64_t row = 0;
  for (int i = 0; i < nfiles && !rc; row += counts[i], i++)
    rc = cifar_file(paths[i], counts[i], row, rl_data(*x), rl_data(*y));
  free(counts);
  if (rc) return rl_data_drop(x, y);
  return 0;
}
