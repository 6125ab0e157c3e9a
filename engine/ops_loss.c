/* ops_loss.c - softmax, log_softmax and the losses (nll, cross_entropy,
 * kl_div, mse).
 *
 * The softmax kernels work on the last, contiguous dim; another dim is moved
 * there by a transpose.  Losses first compute per-element or per-sample
 * values, then reduce them ('none', 'sum', 'mean', and 'batchmean' for
 * kl_div) with the differentiable sum and mean. */
#include <string.h>

#include "internal.h"

int rl_reduction_parse(const char *s, rl_reduction *r) {
  if (!strcmp(s, "none")) *r = RL_RED_NONE;
  else if (!strcmp(s, "mean")) *r = RL_RED_MEAN_;
  else if (!strcmp(s, "sum")) *r = RL_RED_SUM_;
  else if (!strcmp(s, "batchmean")) *r = RL_RED_BATCHMEAN_;
  else return rl_err("unknown reduction '%s' (none, mean, sum, batchmean)", s);
  return 0;
}

/* ---- softmax ----------------------------------------------------------------- */

static int softmax_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *m = &n->meta[0];
  rl_tensor *y = rl_node_saved(n, 0), *gc = y ? rl_as_contig(g) : NULL;
  rl_tensor *dx = gc ? rl_empty(m->ndim, m->size, m->dtype, m->dev) : NULL;
  int64_t cols = m->ndim ? m->size[m->ndim - 1] : 1;
  int64_t rows = cols ? rl_numel(y) / cols : 0;
  int rc = dx ? m->dev->be->softmax_bwd(m->dtype, rl_data(gc), rl_data(y), rows, cols,
                                        n->ip[0] != 0, rl_data(dx))
              : -1;
  rl_tensor *tmp[2] = {y, gc};
  return rl_grad_one(gin, dx, rc, 2, tmp);
}

/* softmax over the last dim of a contiguous tensor */
static rl_tensor *softmax_last(rl_tensor *x, bool log) {
  rl_tensor *out = rl_empty(x->ndim, x->size, x->dtype, rl_dev(x));
  int64_t cols = x->ndim ? x->size[x->ndim - 1] : 1;
  int64_t rows = cols ? rl_numel(x) / cols : 0;
  if (!out || RL_BE(x)->softmax(x->dtype, rl_data(x), rows, cols, log, rl_data(out))) {
    if (out) rl_release(out);
    return NULL;
  }
  rl_node *n = rl_record(log ? "log_softmax" : "softmax", softmax_bwd, out, 1, &x);
  if (n) {
    n->ip[0] = log;
    if (rl_node_save(n, out)) {
      rl_release(out);
      return NULL;
    }
  }
  return out;
}

rl_tensor *rl_softmax(rl_tensor *x, int dim, bool log) {
  const char *op = log ? "log_softmax" : "softmax";
  if (rl_check_float(op, x)) return NULL;
  int nd = x->ndim ? x->ndim : 1;
  int d = rl_wrap_dim(op, dim, nd);
  if (d < 0) return NULL;
  bool moved = x->ndim > 0 && d != x->ndim - 1;
  rl_tensor *t = moved ? rl_transpose(x, d, -1) : (rl_retain(x), x);
  rl_tensor *c = t ? rl_contiguous(t) : NULL;
  rl_tensor *y = c ? softmax_last(c, log) : NULL;
  rl_tensor *r = y && moved ? rl_transpose(y, d, -1) : (y ? (rl_retain(y), y) : NULL);
  rl_tensor *tmp[3] = {t, c, y};
  rl_release_all(3, tmp);
  if (!r) rl_err_prefix(op);
  return r;
}

/* ---- reductions of a loss ------------------------------------------------------ */

static rl_tensor *reduce_loss(rl_tensor *v, rl_reduction r, int64_t batch) {
  switch (r) {
  case RL_RED_NONE: rl_retain(v); return v;
  case RL_RED_SUM_: return rl_sum(v, 0, NULL, false);
  case RL_RED_MEAN_: return rl_mean(v, 0, NULL, false);
  default: {
    rl_tensor *s = rl_sum(v, 0, NULL, false);
    rl_tensor *m = s ? rl_mul_scalar(s, 1.0 / (double)(batch ? batch : 1)) : NULL;
    if (s) rl_release(s);
    return m;
  }
  }
}

/* ---- nll / cross entropy -------------------------------------------------------- */

static int nll_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *m = &n->meta[0];
  rl_tensor *t = rl_node_saved(n, 0), *gc = t ? rl_as_contig(g) : NULL;
  rl_tensor *dx = gc ? rl_empty(m->ndim, m->size, m->dtype, m->dev) : NULL;
  int rc = dx ? m->dev->be->nll_bwd(m->dtype, rl_data(gc), 1, rl_data(t), m->size[0],
                                    m->size[1], rl_data(dx))
              : -1;
  rl_tensor *tmp[2] = {t, gc};
  return rl_grad_one(gin, dx, rc, 2, tmp);
}

/* The CPU kernel checks each target as it reads it; a GPU kernel cannot
 * raise, so on other devices the targets' range is checked here (a read
 * back to the host, which waits for the queued work). */
static int check_targets_on_device(rl_tensor *t, int64_t cols) {
  int64_t lo, hi;
  if (rl_dev(t)->type == RL_CPU || rl_numel(t) == 0) return 0;
  if (rl_index_bounds(t, &lo, &hi)) return -1;
  if (lo < 0 || hi >= cols)
    return rl_err("nll_loss: target %lld is out of range for %lld classes (targets are "
                  "0-based)",
                  (long long)(lo < 0 ? lo : hi), (long long)cols);
  return 0;
}

/* per-sample -logp[i, t[i]] for logp [N, C] */
static rl_tensor *nll_per_sample(rl_tensor *logp, rl_tensor *target) {
  if (check_targets_on_device(target, logp->size[1])) return NULL;
  rl_tensor *lc = rl_contiguous(logp), *tc = lc ? rl_as_contig(target) : NULL;
  rl_tensor *out = tc ? rl_empty(1, logp->size, logp->dtype, rl_dev(logp)) : NULL;
  if (!out || RL_BE(logp)->nll(logp->dtype, rl_data(lc), rl_data(tc), logp->size[0],
                               logp->size[1], rl_data(out))) {
    rl_tensor *tmp[3] = {lc, tc, out};
    rl_release_all(3, tmp);
    return NULL;
  }
  rl_node *n = rl_record("nll_loss", nll_bwd, out, 1, &lc);
  if (n && rl_node_save(n, tc)) {
    rl_release(out);
    out = NULL;
  }
  rl_release(lc);
  rl_release(tc);
  return out;
}

static int check_class_input(const char *op, const rl_tensor *x, const rl_tensor *target) {
  if (x->ndim != 2)
    return rl_err("%s: expects [N, classes] scores, got %s", op, rl_shape_str(x));
  if (rl_check_float(op, x)) return -1;
  if (target->dtype != RL_I64)
    return rl_err("%s: targets must be i64 class indices (0-based), got %s", op,
                  rl_dtype_name(target->dtype));
  if (target->ndim != 1 || target->size[0] != x->size[0])
    return rl_err("%s: targets of shape %s do not match %lld samples (input %s)", op,
                  rl_shape_str(target), (long long)x->size[0], rl_shape_str(x));
  if (rl_dev(x) != rl_dev(target))
    return rl_err("%s: input on %s but targets on %s", op, rl_dev(x)->name,
                  rl_dev(target)->name);
  return 0;
}

rl_tensor *rl_nll_loss(rl_tensor *logp, rl_tensor *target, rl_reduction r) {
  if (check_class_input("nll_loss", logp, target)) return NULL;
  rl_tensor *v = nll_per_sample(logp, target);
  rl_tensor *out = v ? reduce_loss(v, r, logp->size[0]) : NULL;
  if (v) rl_release(v);
  if (!out) rl_err_prefix("nll_loss");
  return out;
}

rl_tensor *rl_cross_entropy(rl_tensor *logits, rl_tensor *target, rl_reduction r) {
  if (check_class_input("cross_entropy", logits, target)) return NULL;
  rl_tensor *lp = rl_softmax(logits, 1, true);
  rl_tensor *v = lp ? nll_per_sample(lp, target) : NULL;
  rl_tensor *out = v ? reduce_loss(v, r, logits->size[0]) : NULL;
  if (lp) rl_release(lp);
  if (v) rl_release(v);
  if (!out) rl_err_prefix("cross_entropy");
  return out;
}

/* ---- kl_div / mse ----------------------------------------------------------------- */

rl_tensor *rl_kl_div(rl_tensor *logq, rl_tensor *target, rl_reduction r, bool log_target) {
  if (!rl_same_shape(logq, target)) {
    rl_err("kl_div: input %s and target %s must have one shape", rl_shape_str(logq),
           rl_shape_str(target));
    return NULL;
  }
  rl_tensor *v = NULL;
  if (log_target) { /* exp(lt) * (lt - logq) */
    rl_tensor *p = rl_unary(RL_UN_EXP, target, 0, 0), *d = p ? rl_sub(target, logq) : NULL;
    v = d ? rl_mul(p, d) : NULL;
    if (p) rl_release(p);
    if (d) rl_release(d);
  } else { /* p * (log p - logq), taken as 0 where p == 0 */
    rl_tensor *pos = rl_unary(RL_UN_GT_S, target, 0, 0);
    rl_tensor *one = pos ? rl_ones(0, NULL, target->dtype, rl_dev(target)) : NULL;
    rl_tensor *safe = one ? rl_where(pos, target, one) : NULL;
    rl_tensor *lp = safe ? rl_unary(RL_UN_LOG, safe, 0, 0) : NULL;
    rl_tensor *d = lp ? rl_sub(lp, logq) : NULL;
    v = d ? rl_mul(target, d) : NULL;
    rl_tensor *tmp[5] = {pos, one, safe, lp, d};
    rl_release_all(5, tmp);
  }
  rl_tensor *out = v ? reduce_loss(v, r, logq->ndim ? logq->size[0] : 1) : NULL;
  if (v) rl_release(v);
  if (!out) rl_err_prefix("kl_div");
  return out;
}

/* a and b of one shape: broadcasting [3] against [3, 1] gave a 3x3 of
 * differences and a wrong mean, silently (PyTorch only warns) */
rl_tensor *rl_mse_loss(rl_tensor *a, rl_tensor *b, rl_reduction r) {
  if (!rl_same_shape(a, b)) {
    rl_err("mse_loss: input %s and target %s must have one shape", rl_shape_str(a), rl_shape_str(b));
    return NULL;
  }
  rl_tensor *d = rl_sub(a, b), *sq = d ? rl_unary(RL_UN_SQUARE, d, 0, 0) : NULL;
  rl_tensor *out = sq ? reduce_loss(sq, r, a->ndim ? a->size[0] : 1) : NULL;
  if (d) rl_release(d);
  if (sq) rl_release(sq);
  if (!out) rl_err_prefix("mse_loss");
  return out;
}
