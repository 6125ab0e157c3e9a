/* common.c - scratch files and input splitting for the harnesses. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common.h"
#include "io/data.h"

#define SLOTS 8

static char dir[4096];
static char paths[SLOTS][4200];

/* Remove whatever the harness wrote, then the directory (flat: the
 * harnesses make no sub-directories but the folder one's, below). */
static void remove_dir(void) {
  char cmd[4200];
  if (!dir[0]) return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/rllua-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    perror("fuzz: mkdtemp");
    abort();
  }
  atexit(remove_dir);
  return 0;
}

const char *fuzz_path(int slot, const char *name) {
  if (slot < 0 || slot >= SLOTS) abort();
  snprintf(paths[slot], sizeof paths[slot], "%s/%s", dir, name);
  return paths[slot];
}

const char *fuzz_file(int slot, const char *name, const void *p, size_t n, int gz) {
  const char *path = fuzz_path(slot, name);
  int ok;
  if (gz) {
    gzFile f = gzopen(path, "wb1");
    ok = f && (n == 0 || gzwrite(f, p, (unsigned)n) == (int)n);
    ok = f && gzclose(f) == Z_OK && ok;
  } else {
    FILE *f = fopen(path, "wb");
    ok = f && fwrite(p, 1, n, f) == n;
    ok = f && fclose(f) == 0 && ok;
  }
  if (!ok) {
    perror(path);
    abort();
  }
  return path;
}

void fuzz_small_images(void) {
  /* 2^16 pixels decode in a millisecond or so; sides up to 1024 still let
   * the fuzzer reach the resize paths with odd aspect ratios */
  rl_image_limits l = {1024, (int64_t)1 << 16};
  if (rl_image_set_limits(l)) abort();
}

int fuzz_split(const uint8_t *data, size_t size, size_t *at, const char sep[4],
               const uint8_t **piece, size_t *len) {
  if (*at >= size) return 0;
  const uint8_t *p = data + *at;
  size_t left = size - *at;
  const uint8_t *hit = memmem(p, left, sep, 4);
  *piece = p;
  *len = hit ? (size_t)(hit - p) : left;
  *at += *len + (hit ? 4 : 0);
  return 1;
}
