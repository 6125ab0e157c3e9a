/* ops_dist.c - nearest point of another class: checks, outputs, dispatch.
 *
 * The kernel (backend.h, nearest_other) sees contiguous rows and labels and
 * marks a query without any ref of another label with arg -1; this layer
 * makes dist -1 there too, whatever the kernel left, so every backend
 * answers alike. */
#include "dist.h"
#include "internal.h"

#define OP "nearest_other"

/* Rows of t: its first size, and the bytes of one row in *D. */
static int rows_of(const char *what, const rl_tensor *t, int64_t *n, int64_t *D) {
  if (t->ndim < 1)
    return rl_err(OP ": %s must have a first dim of rows, got a scalar", what);
  *n = t->size[0];
  *D = 1;
  for (int d = 1; d < t->ndim; d++) *D *= t->size[d];
  return 0;
}

static int check_labels(const char *what, const rl_tensor *lab, int64_t n, const char *rows) {
  if (rl_check_dtype(OP, what, lab, RL_I64)) return -1;
  if (lab->ndim != 1 || lab->size[0] != n)
    return rl_err(OP ": %s must have size %lld (one per row of the %s), got %s", what,
                  (long long)n, rows, rl_shape_str(lab));
  return 0;
}

int rl_nearest_other(rl_tensor *q, rl_tensor *qlab, rl_tensor *r, rl_tensor *rlab, int p,
                     bool skip_self, rl_tensor **dist, rl_tensor **arg) {
  *dist = *arg = NULL;
  int64_t nq = 0, nr = 0, dq = 0, dr = 0;
  rl_tensor *all[4] = {q, qlab, r, rlab};
  if (p != 0 && p != 2)
    return rl_err(OP ": p must be 0 (l-inf) or 2 (squared l2), got %d", p);
  if (rl_check_dtype(OP, "queries", q, RL_U8) || rl_check_dtype(OP, "refs", r, RL_U8) ||
      rows_of("queries", q, &nq, &dq) || rows_of("refs", r, &nr, &dr) ||
      check_labels("query labels", qlab, nq, "queries") ||
      check_labels("ref labels", rlab, nr, "refs") || rl_check_same_device(OP, 4, all))
    return -1;
  if (dq != dr)
    return rl_err(OP ": query rows have %lld values (size %s) but ref rows have %lld (size %s)",
                  (long long)dq, rl_shape_str(q), (long long)dr, rl_shape_str(r));
  const rl_device *dev = rl_dev(q);
  if (!dev->be->nearest_other) return rl_err(OP ": not implemented on %s", dev->name);

  rl_tensor *c[4] = {NULL, NULL, NULL, NULL}, *d = NULL, *a = NULL, *none = NULL;
  int rc = -1;
  for (int i = 0; i < 4; i++)
    if (!(c[i] = rl_as_contig(all[i]))) goto done;
  int64_t size[1] = {nq};
  if (!(d = rl_empty(1, size, RL_I64, dev)) || !(a = rl_empty(1, size, RL_I64, dev)))
    goto done;
  if (dev->be->nearest_other(rl_data(c[0]), rl_data(c[1]), nq, rl_data(c[2]), rl_data(c[3]),
                             nr, dq, p, skip_self, rl_data(d), rl_data(a)))
    goto done;
  /* one sentinel for "no ref of another label", on any backend */
  if (!(none = rl_unary(RL_UN_LT_S, a, 0, 0)) || rl_masked_fill_(d, none, -1)) goto done;
  rc = 0;
done:
  rl_release_all(4, c);
  if (none) rl_release(none);
  if (rc) {
    if (d) rl_release(d);
    if (a) rl_release(a);
    return rl_err_prefix(OP);
  }
  *dist = d;
  *arg = a;
  return 0;
}
