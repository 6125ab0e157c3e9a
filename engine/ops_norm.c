/* ops_norm.c - batch normalisation and dropout.
 *
 * batch_norm in training mode normalises with the batch's mean and biased
 * variance and updates the running statistics in place (running_var with
 * the unbiased variance, as PyTorch); its backward is the closed form
 *   dx = k*dy + c1*x + c0,  k = w*invstd,
 *   c1 = -k*invstd^2*sum(dy*(x-mean))/n,  c0 = -k*sum(dy)/n - c1*mean
 * from two per-channel sums.  Each direction is two backend calls: the
 * sums with every per-channel value computed from them (engine/bn_coef.h:
 * statistics, coefficients, running statistics, dw and db), then one pass
 * over the elements (bn_apply).  In eval mode the op is an affine map
 * built from differentiable ops.
 *
 * A bf16 or f16 input (what rl.autocast's convolutions give) is normalised
 * as PyTorch's batch norm does it: the statistics, the running statistics,
 * the weight and bias and every per-channel value are f32, each element is
 * widened exactly, computed in f32 and rounded once, and the output and the
 * input's gradient are the input's dtype.  The result is the f32 op's on the
 * widened input, rounded: same statistics, same bits.
 *
 * Dropout draws a Philox mask. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* x [N, C, ...] viewed as [N, C, S]; per-channel tensors as [1, C, 1...]. */
static void channel_shape(const rl_tensor *x, int64_t *shape) {
  for (int d = 0; d < x->ndim; d++) shape[d] = d == 1 ? x->size[1] : 1;
}

static rl_tensor *as_channel(rl_tensor *v, const rl_tensor *x) {
  int64_t shape[RL_MAX_DIMS];
  channel_shape(x, shape);
  return rl_reshape(v, x->ndim, shape);
}

/* y = x * scale + shift with per-channel scale and shift ([C]). */
static rl_tensor *affine_channels(rl_tensor *x, rl_tensor *scale, rl_tensor *shift) {
  rl_tensor *s = as_channel(scale, x), *t = s ? as_channel(shift, x) : NULL;
  rl_tensor *y = t ? rl_ternary(RL_TER_FMA, x, s, t, NULL) : NULL;
  if (s) rl_release(s);
  if (t) rl_release(t);
  return y;
}

/* x [N, C, ...] as [N, C, S] (S = 0 for an empty batch). */
static int64_t plane_size(const rl_tensor *x) {
  int64_t NC = x->size[0] * x->size[1];
  return NC > 0 ? rl_numel(x) / NC : 0;
}

/* The dtype of batch norm's per-channel values for input dtype dt. */
static rl_dtype acc_dtype(rl_dtype dt) { return rl_dtype_is_half(dt) ? RL_F32 : dt; }

/* Training mode's backward (the saved mean and invstd are the batch's),
 * or eval mode's (ip[2]; the running mean and its invstd, and the map's
 * scale last): there dx = scale*dy, and dw and db come from the same sums. */
static int bn_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *mx = &n->meta[0];
  bool has_w = n->ip[0], has_b = n->ip[1], eval = n->ip[2];
  int idx_b = has_w ? 2 : 1;
  bool sums = !eval || (has_w && n->need[1]) || (has_b && n->need[idx_b]);
  rl_tensor *x = rl_node_saved(n, 0), *mean = rl_node_saved(n, 1),
            *invstd = rl_node_saved(n, 2), *w = has_w ? rl_node_saved(n, 3) : NULL;
  rl_tensor *scale = eval ? rl_node_saved(n, has_w ? 4 : 3) : NULL;
  rl_tensor *xc = NULL, *gc = NULL, *wc = NULL, *coef[3] = {NULL, NULL, NULL};
  int rc = -1;
  if (!x || !mean || !invstd || (has_w && !w) || (eval && !scale)) goto out;
  int64_t N = mx->size[0], C = mx->size[1], S = plane_size(x);
  rl_dtype acc = acc_dtype(mx->dtype);
  xc = rl_as_contig(x);
  /* the gradient in the input's dtype, laid out as x */
  gc = !xc ? NULL : g->dtype == mx->dtype ? rl_as_contig(g) : rl_to_dtype(g, mx->dtype);
  wc = !gc || !w ? NULL : rl_as_contig(w);
  if (!gc || (w && !wc)) goto out;
  /* k, c1, c0 of dx = k*dy + (c1*x + c0); dw and db where wanted.  An
   * empty batch (eval mode only: training refuses one) has sums of
   * nothing, so no backend reads it: dw = db = 0. */
  if (N * S == 0) {
    if (has_w && n->need[1] && !(gin[1] = rl_zeros(1, &C, acc, mx->dev))) goto out;
    if (has_b && n->need[idx_b] && !(gin[idx_b] = rl_zeros(1, &C, acc, mx->dev))) goto out;
  } else if (sums) {
    for (int i = 0; i < 3; i++)
      if (!(coef[i] = rl_empty(1, &C, acc, mx->dev))) goto out;
    if (has_w && n->need[1] && !(gin[1] = rl_empty(1, &C, acc, mx->dev))) goto out;
    if (has_b && n->need[idx_b] && !(gin[idx_b] = rl_empty(1, &C, acc, mx->dev))) goto out;
    if (mx->dev->be->bn_bwd_reduce(mx->dtype, rl_data(gc), rl_data(xc), rl_data(mean),
                                   rl_data(invstd), wc ? rl_data(wc) : NULL, N, C, S,
                                   rl_data(coef[0]), rl_data(coef[1]), rl_data(coef[2]),
                                   has_w && gin[1] ? rl_data(gin[1]) : NULL,
                                   has_b && gin[idx_b] ? rl_data(gin[idx_b]) : NULL))
      goto out;
  }
  if (n->need[0]) {
    /* eval: dx = scale*dy; training: k*dy + (c1*x + c0) */
    gin[0] = rl_empty(mx->ndim, mx->size, mx->dtype, mx->dev);
    if (!gin[0] ||
        mx->dev->be->bn_apply(mx->dtype, rl_data(gc), eval ? NULL : rl_data(xc),
                              eval ? rl_data(scale) : rl_data(coef[0]),
                              eval ? NULL : rl_data(coef[1]), eval ? NULL : rl_data(coef[2]),
                              N, C, S, rl_data(gin[0])))
      goto out;
  }
  rc = 0;
out:
  {
    rl_tensor *t[11] = {x, mean, invstd, w, scale, xc, gc, wc, coef[0], coef[1], coef[2]};
    rl_release_all(11, t);
  }
  return rc;
}

static int check_bn(const rl_tensor *x, const rl_tensor *const *per) {
  static const char *const what[4] = {"running_mean", "running_var", "weight", "bias"};
  if (x->ndim < 2)
    return rl_err("batch_norm: expects [N, C, ...], got %s", rl_shape_str(x));
  if (!rl_dtype_is_half(x->dtype) && rl_check_float("batch_norm", x)) return -1;
  rl_dtype acc = acc_dtype(x->dtype);
  for (int i = 0; i < 4; i++) {
    const rl_tensor *t = per[i];
    if (!t) continue;
    if (t->ndim != 1 || t->size[0] != x->size[1])
      return rl_err("batch_norm: %s has shape %s, expected [%lld] for input %s", what[i],
                    rl_shape_str(t), (long long)x->size[1], rl_shape_str(x));
    if (t->dtype != acc)
      return rl_err("batch_norm: %s is %s but the input is %s%s", what[i],
                    rl_dtype_name(t->dtype), rl_dtype_name(x->dtype),
                    acc != x->dtype ? " (a bf16 or f16 input takes f32 statistics, weight and "
                                      "bias, as in PyTorch)"
                                    : "");
    if (rl_dev(t) != rl_dev(x))
      return rl_err("batch_norm: %s is on %s but the input is on %s", what[i], rl_dev(t)->name,
                    rl_dev(x)->name);
  }
  return 0;
}

/* The output y = scale*x + shift (xc: x contiguous) in one pass, and its
 * node for bn_bwd: inputs x, w, b (those given), saving x, the mean and
 * invstd the map was made from, w, and for eval mode (eval_scale given)
 * the map's scale. */
static rl_tensor *map_and_record(rl_tensor *x, rl_tensor *xc, rl_tensor *w, rl_tensor *b,
                                 rl_tensor *scale, rl_tensor *shift, rl_tensor *mean,
                                 rl_tensor *invstd, rl_tensor *eval_scale) {
  rl_tensor *out = rl_empty(x->ndim, x->size, x->dtype, rl_dev(x));
  if (!out) return NULL;
  if (RL_BE(x)->bn_apply(x->dtype, rl_data(xc), NULL, rl_data(scale), NULL, rl_data(shift),
                         x->size[0], x->size[1], plane_size(x), rl_data(out))) {
    rl_release(out);
    return NULL;
  }
  rl_tensor *in[3] = {x, w ? w : b, b};
  int nin = 1 + (w != NULL) + (b != NULL);
  rl_node *n = rl_record("batch_norm", bn_bwd, out, nin, in);
  if (!n) return out;
  n->ip[0] = w != NULL;
  n->ip[1] = b != NULL;
  n->ip[2] = eval_scale != NULL;
  if (rl_node_save(n, x) || rl_node_save(n, mean) || rl_node_save(n, invstd) ||
      (w && rl_node_save(n, w)) || (eval_scale && rl_node_save(n, eval_scale))) {
    rl_release(out);
    return NULL;
  }
  return out;
}

/* A running statistic as the kernel updates it in place: the tensor itself
 * when contiguous, else a contiguous copy, written back by put_running. */
static rl_tensor *get_running(rl_tensor *r) {
  if (!r || rl_is_contiguous(r)) return r ? (rl_retain(r), r) : NULL;
  return rl_as_contig(r);
}

static int put_running(rl_tensor *r, rl_tensor *rc) {
  if (!r) return 0;
  if (rc != r && rl_copy_(r, rc)) return -1;
  if (rc == r) rl_bump_version(r);
  return 0;
}

static rl_tensor *bn_train(rl_tensor *x, rl_tensor *rm, rl_tensor *rv, rl_tensor *w,
                           rl_tensor *b, double momentum, double eps) {
  int64_t N = x->size[0], C = x->size[1], S = plane_size(x);
  if (N * S < 2) {
    rl_err("batch_norm: training needs more than one value per channel (input %s)",
           rl_shape_str(x));
    return NULL;
  }
  rl_dtype acc = acc_dtype(x->dtype);
  const rl_device *dev = rl_dev(x);
  rl_tensor *xc = rl_as_contig(x), *out = NULL;
  rl_tensor *wc = w && xc ? rl_as_contig(w) : NULL, *bc = b && xc ? rl_as_contig(b) : NULL;
  rl_tensor *rmc = get_running(rm), *rvc = get_running(rv);
  /* mean, invstd, scale, shift */
  rl_tensor *ch[4] = {NULL, NULL, NULL, NULL};
  bool ok = xc && (!w || wc) && (!b || bc) && (!rm || rmc) && (!rv || rvc);
  for (int i = 0; ok && i < 4; i++) ok = (ch[i] = rl_empty(1, &C, acc, dev)) != NULL;
  /* the statistics, the map's coefficients and the running statistics
   * (moved toward the unbiased variance, as PyTorch) in one call */
  if (!ok ||
      RL_BE(x)->bn_stats(x->dtype, rl_data(xc), N, C, S, wc ? rl_data(wc) : NULL,
                         bc ? rl_data(bc) : NULL, rmc ? rl_data(rmc) : NULL,
                         rvc ? rl_data(rvc) : NULL, momentum,
                         (double)(N * S) / (double)(N * S - 1), eps, rl_data(ch[0]),
                         rl_data(ch[1]), rl_data(ch[2]), rl_data(ch[3])) ||
      put_running(rm, rmc) || put_running(rv, rvc))
    goto done;
  out = map_and_record(x, xc, w, b, ch[2], ch[3], ch[0], ch[1], NULL);
done:;
  rl_tensor *t[9] = {xc, wc, bc, rmc, rvc, ch[0], ch[1], ch[2], ch[3]};
  rl_release_all(9, t);
  return out;
}

/* Eval mode with running statistics that require a gradient: the map
 * built from differentiable ops (a half x computed in f32 and rounded). */
static rl_tensor *bn_eval_composed(rl_tensor *x, rl_tensor *rm, rl_tensor *rv, rl_tensor *w,
                                   rl_tensor *b, double eps) {
  /* scale = w / sqrt(rv + eps), shift = b - rm * scale */
  rl_tensor *ve = rl_unary(RL_UN_AFFINE, rv, 1, eps);
  rl_tensor *is = ve ? rl_unary(RL_UN_RSQRT, ve, 0, 0) : NULL;
  if (ve) rl_release(ve);
  rl_tensor *scale = is ? (w ? rl_mul(w, is) : (rl_retain(is), is)) : NULL;
  rl_tensor *ms = scale ? rl_mul(rm, scale) : NULL;
  rl_tensor *shift = ms ? (b ? rl_sub(b, ms) : rl_neg(ms)) : NULL;
  rl_tensor *out = shift ? affine_channels(x, scale, shift) : NULL;
  if (rl_dtype_is_half(x->dtype)) out = rl_out_half(out, x->dtype);
  rl_tensor *t[4] = {is, scale, ms, shift};
  rl_release_all(4, t);
  return out;
}

/* Eval mode: the map from the running statistics (bn_coef) in one pass,
 * differentiable in x, w and b by bn_bwd's eval form. */
static rl_tensor *bn_eval(rl_tensor *x, rl_tensor *rm, rl_tensor *rv, rl_tensor *w,
                          rl_tensor *b, double eps) {
  if (!rm || !rv) {
    rl_err("batch_norm: eval mode needs running_mean and running_var");
    return NULL;
  }
  if (rl_grad_enabled() && (rm->requires_grad || rv->requires_grad))
    return bn_eval_composed(x, rm, rv, w, b, eps);
  int64_t C = x->size[1];
  rl_dtype acc = acc_dtype(x->dtype);
  const rl_device *dev = rl_dev(x);
  rl_tensor *xc = rl_as_contig(x), *out = NULL;
  rl_tensor *wc = w && xc ? rl_as_contig(w) : NULL, *bc = b && xc ? rl_as_contig(b) : NULL;
  rl_tensor *rmc = xc ? rl_as_contig(rm) : NULL, *rvc = rmc ? rl_as_contig(rv) : NULL;
  /* invstd, scale, shift */
  rl_tensor *ch[3] = {NULL, NULL, NULL};
  bool ok = rvc && (!w || wc) && (!b || bc);
  for (int i = 0; ok && i < 3; i++) ok = (ch[i] = rl_empty(1, &C, acc, dev)) != NULL;
  if (!ok ||
      RL_BE(x)->bn_coef(x->dtype, C, rl_data(rmc), rl_data(rvc), wc ? rl_data(wc) : NULL,
                        bc ? rl_data(bc) : NULL, eps, rl_data(ch[0]), rl_data(ch[1]),
                        rl_data(ch[2])))
    goto done;
  out = map_and_record(x, xc, w, b, ch[1], ch[2], rmc, ch[0], ch[1]);
done:;
  rl_tensor *t[8] = {xc, wc, bc, rmc, rvc, ch[0], ch[1], ch[2]};
  rl_release_all(8, t);
  return out;
}

rl_tensor *rl_batch_norm(rl_tensor *x, rl_tensor *running_mean, rl_tensor *running_var,
                         rl_tensor *weight, rl_tensor *bias, bool training, double momentum,
                         double eps) {
  const rl_tensor *per[4] = {running_mean, running_var, weight, bias};
  if (check_bn(x, per)) return NULL;
  if (training) return bn_train(x, running_mean, running_var, weight, bias, momentum, eps);
  return bn_eval(x, running_mean, running_var, weight, bias, eps);
}

/* ---- dropout ----------------------------------------------------------------- */

rl_tensor *rl_dropout(rl_tensor *x, double p, bool training, bool channelwise,
                      rl_generator *g) {
  if (!(p >= 0 && p <= 1)) {
    rl_err("dropout: p must be in [0, 1], got %g", p);
    return NULL;
  }
  if (rl_check_float("dropout", x)) return NULL;
  if (!training || p == 0) {
    rl_retain(x);
    return x;
  }
  if (p == 1) return rl_mul_scalar(x, 0.0);
  /* the mask: per element, or per (sample, channel) for dropout2d on >2-D input */
  int64_t msize[RL_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++)
    msize[d] = channelwise && x->ndim > 2 && d >= 2 ? 1 : x->size[d];
  rl_tensor *mask = rl_empty(x->ndim, msize, x->dtype, rl_dev(x));
  if (!mask || rl_bernoulli_(mask, 1 - p, g) ||
      rl_unary_(RL_UN_AFFINE, mask, 1.0 / (1.0 - p), 0)) {
    if (mask) rl_release(mask);
    return NULL;
  }
  rl_tensor *y = rl_mul(x, mask);
  rl_release(mask);
  return y;
}
