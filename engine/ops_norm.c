/* ops_norm.c - batch normalisation and dropout.
 *
 * batch_norm in training mode normalises with the batch's mean and biased
 * variance and updates the running statistics in place (running_var with
 * the unbiased variance, as PyTorch); its backward is the closed form
 *   dx = k*dy + c1*x + c0,  k = w*invstd,
 *   c1 = -k*invstd^2*sum(dy*(x-mean))/n,  c0 = -k*sum(dy)/n - c1*mean
 * computed from two per-channel sums, then one pass (bn_apply).  In eval
 * mode the op is an affine map built from differentiable ops.
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

/* The dtype of batch norm's per-channel values for input dtype dt. */
static rl_dtype acc_dtype(rl_dtype dt) { return rl_dtype_is_half(dt) ? RL_F32 : dt; }

static int bn_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *mx = &n->meta[0];
  bool has_w = n->ip[0], has_b = n->ip[1];
  rl_tensor *x = rl_node_saved(n, 0), *mean = rl_node_saved(n, 1),
            *invstd = rl_node_saved(n, 2), *w = has_w ? rl_node_saved(n, 3) : NULL;
  rl_tensor *xc = NULL, *gc = NULL, *sdy = NULL, *sdx = NULL, *k = NULL, *c1 = NULL,
            *c0 = NULL;
  int rc = -1;
  if (!x || !mean || !invstd || (has_w && !w)) goto out;
  int64_t N = mx->size[0], C = mx->size[1], S = N * C > 0 ? rl_numel(x) / (N * C) : 0;
  double cnt = (double)(N * S);
  rl_dtype acc = acc_dtype(mx->dtype);
  xc = rl_as_contig(x);
  /* the gradient in the input's dtype, laid out as x */
  gc = !xc ? NULL : g->dtype == mx->dtype ? rl_as_contig(g) : rl_to_dtype(g, mx->dtype);
  sdy = gc ? rl_empty(1, &C, acc, mx->dev) : NULL;
  sdx = sdy ? rl_empty(1, &C, acc, mx->dev) : NULL;
  if (!sdx || mx->dev->be->bn_bwd_reduce(mx->dtype, rl_data(gc), rl_data(xc), rl_data(mean),
                                         N, C, S, rl_data(sdy), rl_data(sdx)))
    goto out;
  /* k = w * invstd */
  k = w ? rl_mul(w, invstd) : (rl_retain(invstd), invstd);
  int idx_b = has_w ? 2 : 1;
  if (has_w && n->need[1]) { /* dw = sum(dy*(x-mean)) * invstd */
    if (!(gin[1] = rl_mul(sdx, invstd))) goto out;
  }
  if (has_b && n->need[idx_b]) {
    rl_retain(sdy);
    gin[idx_b] = sdy;
  }
  if (n->need[0]) {
    rl_tensor *i2 = rl_unary(RL_UN_SQUARE, invstd, 0, 0);
    rl_tensor *ki2 = i2 ? rl_mul(k, i2) : NULL;
    c1 = ki2 ? rl_mul(ki2, sdx) : NULL;
    if (c1 && rl_unary_(RL_UN_AFFINE, c1, -1.0 / cnt, 0)) goto out;
    rl_tensor *ks = c1 ? rl_mul(k, sdy) : NULL;
    rl_tensor *cm = ks ? rl_mul(c1, mean) : NULL;
    /* c0 = -ks/n - c1*mean */
    c0 = cm ? rl_binary(RL_BIN_ADD, cm, ks, 1.0 / cnt) : NULL;
    if (c0 && rl_unary_(RL_UN_NEG, c0, 0, 0)) goto out;
    rl_tensor *t4[4] = {i2, ki2, ks, cm};
    rl_release_all(4, t4);
    /* dx = k*dy + (c1*x + c0) */
    gin[0] = c0 ? rl_empty(mx->ndim, mx->size, mx->dtype, mx->dev) : NULL;
    if (!gin[0] || mx->dev->be->bn_apply(mx->dtype, rl_data(gc), rl_data(xc), rl_data(k),
                                         rl_data(c1), rl_data(c0), N, C, S, rl_data(gin[0])))
      goto out;
  }
  rc = 0;
out:
  {
    rl_tensor *t[11] = {x, mean, invstd, w, xc, gc, sdy, sdx, k, c1, c0};
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

/* running = (1 - m) * running + m * v, in place, outside the graph */
static int update_running(rl_tensor *running, rl_tensor *v, double m) {
  if (!running) return 0;
  double p[4] = {m, 0, 0, 0};
  rl_tensor *ra = rl_alias(running);
  int rc = ra ? rl_ternary_(RL_TER_LERP, ra, v, v, p) : -1;
  if (ra) rl_release(ra);
  return rc;
}

static rl_tensor *bn_train(rl_tensor *x, rl_tensor *rm, rl_tensor *rv, rl_tensor *w,
                           rl_tensor *b, double momentum, double eps) {
  int64_t N = x->size[0], C = x->size[1], S = N * C > 0 ? rl_numel(x) / (N * C) : 0;
  if (N * S < 2) {
    rl_err("batch_norm: training needs more than one value per channel (input %s)",
           rl_shape_str(x));
    return NULL;
  }
  rl_dtype acc = acc_dtype(x->dtype);
  rl_tensor *xc = rl_as_contig(x);
  rl_tensor *mean = xc ? rl_empty(1, &C, acc, rl_dev(x)) : NULL;
  rl_tensor *var = mean ? rl_empty(1, &C, acc, rl_dev(x)) : NULL;
  rl_tensor *invstd = NULL, *scale = NULL, *shift = NULL, *out = NULL, *uvar = NULL;
  bool prev = rl_set_grad_enabled(false);
  if (!var || RL_BE(x)->bn_stats(x->dtype, rl_data(xc), N, C, S, rl_data(mean), rl_data(var)))
    goto done;
  /* running statistics: the unbiased variance, as PyTorch */
  uvar = rl_mul_scalar(var, (double)(N * S) / (double)(N * S - 1));
  if (!uvar || update_running(rm, mean, momentum) || update_running(rv, uvar, momentum))
    goto done;
  invstd = rl_unary(RL_UN_AFFINE, var, 1, eps);
  if (!invstd || rl_unary_(RL_UN_RSQRT, invstd, 0, 0)) goto done;
  scale = w ? rl_mul(w, invstd) : (rl_retain(invstd), invstd);
  rl_tensor *ms = scale ? rl_mul(mean, scale) : NULL;
  shift = ms ? (b ? rl_sub(b, ms) : rl_neg(ms)) : NULL;
  if (ms) rl_release(ms);
  out = shift ? rl_empty(x->ndim, x->size, x->dtype, rl_dev(x)) : NULL;
  if (out && RL_BE(x)->bn_apply(x->dtype, rl_data(xc), NULL, rl_data(scale), NULL,
                                rl_data(shift), N, C, S, rl_data(out))) {
    rl_release(out);
    out = NULL;
  }
done:
  rl_set_grad_enabled(prev);
  if (out) {
    rl_tensor *in[3] = {x, w ? w : b, b};
    int nin = 1 + (w != NULL) + (b != NULL);
    if (!w) in[1] = b;
    rl_node *n = rl_record("batch_norm", bn_bwd, out, nin, in);
    if (n) {
      n->ip[0] = w != NULL;
      n->ip[1] = b != NULL;
      if (rl_node_save(n, x) || rl_node_save(n, mean) || rl_node_save(n, invstd) ||
          (w && rl_node_save(n, w))) {
        rl_release(out);
        out = NULL;
      }
    }
  }
  rl_tensor *t[7] = {xc, mean, var, invstd, scale, shift, uvar};
  rl_release_all(7, t);
  return out;
}

static rl_tensor *bn_eval(rl_tensor *x, rl_tensor *rm, rl_tensor *rv, rl_tensor *w,
                          rl_tensor *b, double eps) {
  if (!rm || !rv) {
    rl_err("batch_norm: eval mode needs running_mean and running_var");
    return NULL;
  }
  /* scale = w / sqrt(rv + eps), shift = b - rm * scale: differentiable in w, b, x */
  rl_tensor *is = rl_unary(RL_UN_AFFINE, rv, 1, eps);
  if (is && rl_unary_(RL_UN_RSQRT, is, 0, 0)) {
    rl_release(is);
    is = NULL;
  }
  rl_tensor *scale = is ? (w ? rl_mul(w, is) : (rl_retain(is), is)) : NULL;
  rl_tensor *ms = scale ? rl_mul(rm, scale) : NULL;
  rl_tensor *shift = ms ? (b ? rl_sub(b, ms) : rl_neg(ms)) : NULL;
  /* a half x: the f32 map on x widened, rounded back (differentiable) */
  rl_tensor *out = shift ? affine_channels(x, scale, shift) : NULL;
  if (rl_dtype_is_half(x->dtype)) out = rl_out_half(out, x->dtype);
  rl_tensor *t[4] = {is, scale, ms, shift};
  rl_release_all(4, t);
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
