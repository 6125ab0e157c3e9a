/* ops_attack.c - the fused attack steps: one PGD step on x_adv, projected
 * onto the eps-ball around the clean point x and clamped to [lo, hi], in
 * place and without autograd.  Each is one backend kernel on contiguous
 * buffers (linf_step and l2_step of backend.h); this file checks the
 * operands and lays them out for it. */
#include <string.h>

#include "internal.h"

/* t as an operand of a step written into xadv: xadv's dtype, contiguous,
 * and copied first when it shares xadv's storage through another view (so
 * that it is read before xadv is written). */
static rl_tensor *step_operand(rl_tensor *xadv, rl_tensor *t) {
  bool overlaps = t->st == xadv->st &&
                  (t->offset != xadv->offset || !rl_same_shape(t, xadv) ||
                   memcmp(t->stride, xadv->stride, sizeof(int64_t) * (size_t)t->ndim));
  rl_tensor *own = overlaps ? rl_clone(t) : (rl_retain(t), t);
  rl_tensor *typed = own ? rl_as_dtype(own, xadv->dtype) : NULL;
  rl_tensor *c = typed ? rl_as_contig(typed) : NULL;
  if (own) rl_release(own);
  if (typed) rl_release(typed);
  return c;
}

int rl_linf_step_(rl_tensor *xadv, rl_tensor *g, rl_tensor *x, double alpha, double eps,
                  double lo, double hi) {
  const char *op = "linf_step_";
  double p[4] = {alpha, eps, lo, hi};
  rl_tensor *ts[3] = {xadv, g, x};
  if (!rl_same_shape(xadv, g) || !rl_same_shape(xadv, x))
    return rl_err("linf_step_: x_adv %s, gradient %s and x %s must have one shape",
                  rl_shape_str(xadv), rl_shape_str(g), rl_shape_str(x));
  if (rl_check_float(op, xadv) || rl_check_same_device(op, 3, ts) ||
      rl_check_inplace(op, xadv, g) || rl_check_inplace(op, xadv, x))
    return -1;
  /* a strided x_adv takes the step in a contiguous copy, then gets it back */
  rl_tensor *gc = step_operand(xadv, g), *xc = gc ? step_operand(xadv, x) : NULL;
  rl_tensor *ac = xc ? rl_as_contig(xadv) : NULL;
  int rc = ac ? RL_BE(xadv)->linf_step(xadv->dtype, rl_data(ac), rl_data(gc), rl_data(xc),
                                       rl_numel(xadv), p, rl_data(ac))
              : -1;
  if (rc == 0 && ac != xadv) rc = rl_copy_(xadv, ac);
  rl_tensor *tmp[3] = {gc, xc, ac};
  rl_release_all(3, tmp);
  if (rc) return rl_err_prefix(op);
  rl_bump_version(xadv);
  return 0;
}

int rl_l2_step_(rl_tensor *xadv, rl_tensor *g, rl_tensor *x, double alpha, double eps,
                double lo, double hi) {
  const char *op = "l2_step_";
  double p[4] = {alpha, eps, lo, hi};
  rl_tensor *ts[3] = {xadv, g, x};
  if (!rl_same_shape(xadv, g) || !rl_same_shape(xadv, x) || xadv->ndim < 1)
    return rl_err("l2_step_: x_adv %s, gradient %s and x %s must have one shape [B, ...]",
                  rl_shape_str(xadv), rl_shape_str(g), rl_shape_str(x));
  if (!rl_dtype_is_float(xadv->dtype) || g->dtype != xadv->dtype || x->dtype != xadv->dtype)
    return rl_err("l2_step_: x_adv, gradient and x need one float dtype");
  if (!rl_is_contiguous(xadv))
    return rl_err("l2_step_: x_adv must be contiguous");
  if (rl_check_same_device(op, 3, ts) || rl_check_inplace(op, xadv, g)) return -1;
  rl_tensor *gc = step_operand(xadv, g), *xc = gc ? step_operand(xadv, x) : NULL;
  int64_t B = xadv->size[0], D = B ? rl_numel(xadv) / B : 0;
  int rc = xc ? RL_BE(xadv)->l2_step(xadv->dtype, rl_data(xadv), rl_data(gc), rl_data(xc), B,
                                     D, p, rl_data(xadv))
              : -1;
  rl_tensor *tmp[2] = {gc, xc};
  rl_release_all(2, tmp);
  if (rc == 0) rl_bump_version(xadv);
  return rc;
}
