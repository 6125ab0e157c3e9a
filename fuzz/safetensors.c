/* safetensors.c - fuzz target: rl_safetensors_load on the input as a file.
 *
 * rl_safetensors_metadata (the header alone) must accept exactly the files
 * that the full load accepts, with the same metadata.  A file the reader
 * accepts is saved again and reloaded: the writer must
 * take what the reader gives, and the second load must give the same
 * tensors, byte for byte (a disagreement aborts, which libFuzzer reports). */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "io/safetensors.h"

static int same_tensor(rl_tensor *a, rl_tensor *b) {
  if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->size[d] != b->size[d]) return 0;
  size_t bytes = (size_t)rl_numel(a) * rl_dtype_size(a->dtype);
  return bytes == 0 || memcmp(rl_data(a), rl_data(b), bytes) == 0;
}

/* Save what was loaded and load it back. */
static void round_trip(int n, char **names, rl_tensor **ts, int nmeta, char **mk, char **mv) {
  const char *out = fuzz_path(1, "again.safetensors");
  if (rl_safetensors_save(out, n, (const char *const *)names, ts, nmeta,
                          (const char *const *)mk, (const char *const *)mv))
    return;
  int n2, nmeta2;
  char **names2, **mk2, **mv2;
  rl_tensor **ts2;
  if (rl_safetensors_load(out, &n2, &names2, &ts2, &nmeta2, &mk2, &mv2)) abort();
  int same = n2 == n && nmeta2 == nmeta;
  for (int i = 0; same && i < n; i++)
    same = strcmp(names[i], names2[i]) == 0 && same_tensor(ts[i], ts2[i]);
  for (int i = 0; same && i < nmeta; i++)
    same = strcmp(mk[i], mk2[i]) == 0 && strcmp(mv[i], mv2[i]) == 0;
  rl_safetensors_free(n2, names2, ts2, nmeta2, mk2, mv2);
  if (!same) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(0, "in.safetensors", data, size, 0);
  int n, nmeta, hmeta;
  char **names, **mk, **mv, **hk, **hv;
  rl_tensor **ts;
  int head_rc = rl_safetensors_metadata(path, &hmeta, &hk, &hv);
  int rc = rl_safetensors_load(path, &n, &names, &ts, &nmeta, &mk, &mv);
  if ((head_rc == 0) != (rc == 0)) abort();
  if (rc) return 0;
  int same = hmeta == nmeta;
  for (int i = 0; same && i < nmeta; i++) same = strcmp(mk[i], hk[i]) == 0 && strcmp(mv[i], hv[i]) == 0;
  rl_safetensors_free(0, NULL, NULL, hmeta, hk, hv);
  if (!same) abort();
  round_trip(n, names, ts, nmeta, mk, mv);
  rl_safetensors_free(n, names, ts, nmeta, mk, mv);
  return 0;
}
