/* iter.c - broadcasting, the elementwise iterator, and the checks of
 * operands (device, dtype) that the ops make before iterating. */
#include <stdio.h>

#include "internal.h"

int rl_broadcast_shape(const char *op, int n, rl_tensor *const *ts, int *ndim,
                       int64_t *size) {
  int nd = 0;
  for (int i = 0; i < n; i++)
    if (ts[i]->ndim > nd) nd = ts[i]->ndim;
  for (int d = 0; d < nd; d++) size[d] = 1;
  for (int i = 0; i < n; i++) {
    const rl_tensor *t = ts[i];
    int off = nd - t->ndim;
    for (int d = 0; d < t->ndim; d++) {
      int64_t s = t->size[d], *o = &size[off + d];
      if (s == *o || s == 1) continue;
      if (*o == 1) {
        *o = s;
        continue;
      }
      char shapes[400];
      size_t k = 0;
      for (int j = 0; j < n && k < sizeof shapes - 40; j++)
        k += (size_t)snprintf(shapes + k, sizeof shapes - k, "%s%s", j ? " and " : "",
                              rl_shape_str(ts[j]));
      return rl_err("%s: shapes %s do not broadcast (dim %d: %lld vs %lld)", op, shapes,
                    off + d + 1, (long long)*o,
                    (long long)s);
    }
  }
  *ndim = nd;
  return 0;
}

void rl_iter_build(rl_iter *it, int nargs, rl_tensor *const *args) {
  const rl_tensor *out = args[0];
  int nd = out->ndim;
  int64_t size[RL_MAX_DIMS], stride[RL_ITER_MAX_ARGS][RL_MAX_DIMS];
  for (int d = 0; d < nd; d++) size[d] = out->size[d];
  for (int a = 0; a < nargs; a++) {
    const rl_tensor *t = args[a];
    int off = nd - t->ndim;
    for (int d = 0; d < nd; d++) {
      int td = d - off;
      stride[a][d] = (td < 0 || t->size[td] == 1) ? 0 : t->stride[td];
    }
    it->data[a] = rl_data(t);
    it->dtype[a] = t->dtype;
  }
  /* Drop size-1 dims, then merge a dim into the next inner one when every
   * operand steps through both as one. */
  int m = 0;
  for (int d = 0; d < nd; d++) {
    if (size[d] == 1) continue;
    if (m > 0) {
      bool merge = true;
      for (int a = 0; a < nargs && merge; a++)
        merge = it->stride[a][m - 1] == stride[a][d] * size[d];
      if (merge) {
        it->size[m - 1] *= size[d];
        for (int a = 0; a < nargs; a++) it->stride[a][m - 1] = stride[a][d];
        continue;
      }
    }
    it->size[m] = size[d];
    for (int a = 0; a < nargs; a++) it->stride[a][m] = stride[a][d];
    m++;
  }
  if (m == 0) { /* a single element */
    it->size[0] = 1;
    for (int a = 0; a < nargs; a++) it->stride[a][0] = 0;
    m = 1;
  }
  it->ndim = m;
  it->nargs = nargs;
  it->numel = 1;
  for (int d = 0; d < m; d++) it->numel *= it->size[d];
  for (int d = 0; d < nd; d++)
    if (size[d] == 0) it->numel = 0;
}

int rl_check_same_device(const char *op, int n, rl_tensor *const *ts) {
  for (int i = 1; i < n; i++)
    if (ts[i] && rl_dev(ts[i]) != rl_dev(ts[0]))
      return rl_err("%s: expected all tensors on one device, got %s and %s", op,
                    rl_dev(ts[0])->name, rl_dev(ts[i])->name);
  return 0;
}

int rl_check_dtype(const char *op, const char *what, const rl_tensor *t, rl_dtype dt) {
  if (t->dtype != dt)
    return rl_err("%s: %s must be %s, got %s", op, what, rl_dtype_name(dt),
                  rl_dtype_name(t->dtype));
  return 0;
}

int rl_check_float(const char *op, const rl_tensor *t) {
  if (t->dtype == RL_BF16)
    return rl_err("%s: not defined for bf16 (bf16 holds values; convert with :float(), or let "
                  "rl.autocast choose where bf16 is used)",
                  op);
  if (t->dtype == RL_F16)
    return rl_err("%s: not defined for f16 (f16 holds values; convert with :float())", op);
  if (!rl_dtype_is_float(t->dtype))
    return rl_err("%s: expected a floating-point tensor (f32 or f64), got %s", op,
                  rl_dtype_name(t->dtype));
  return 0;
}
