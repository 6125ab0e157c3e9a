/* ops_index.c - joining (cat, stack) and indexing (index_select, index_add,
 * gather, scatter_add, masked_select), with their gradients.
 *
 * Index tensors are i64 and hold 0-based positions, as in PyTorch.  Every
 * index is checked against the size it indexes before a kernel runs, so a
 * bad index is an error naming the op, never a stray memory access. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* [outer, n, inner] around dim d of a shape. */
static void split3(int ndim, const int64_t *size, int d, int64_t *outer, int64_t *inner) {
  *outer = *inner = 1;
  for (int i = 0; i < d; i++) *outer *= size[i];
  for (int i = d + 1; i < ndim; i++) *inner *= size[i];
}

/* The bounds are two reductions read back to the host: one sync per
 * indexing op, the price of refusing a bad index before a kernel runs. */
int rl_index_bounds(rl_tensor *idx, int64_t *lo, int64_t *hi) {
  bool prev = rl_set_grad_enabled(false);
  rl_tensor *a = rl_reduce(RL_RED_MIN, idx, 0, NULL, false);
  rl_tensor *b = a ? rl_reduce(RL_RED_MAX, idx, 0, NULL, false) : NULL;
  rl_set_grad_enabled(prev);
  double va = 0, vb = 0;
  int rc = b && !rl_item(a, &va) && !rl_item(b, &vb) ? 0 : -1;
  rl_release(a);
  rl_release(b);
  *lo = (int64_t)va;
  *hi = (int64_t)vb;
  return rc;
}


/* Every value of idx lies in [0, n). */
static int check_range(const char *op, rl_tensor *idx, int64_t n, int dim) {
  int64_t lo, hi;
  if (rl_numel(idx) == 0) return 0;
  if (rl_index_bounds(idx, &lo, &hi)) return -1;
  if (lo < 0 || hi >= n)
    return rl_err("%s: index %lld is out of range for dim %d of size %lld (indices are "
                  "0-based)",
                  op, (long long)(lo < 0 ? lo : hi), dim + 1, (long long)n);
  return 0;
}

/* ---- cat / stack ---------------------------------------------------------- */

static int cat_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  int dim = (int)n->ip[0];
  int64_t off = 0;
  for (int i = 0; i < n->ninputs; i++) {
    int64_t len = n->meta[i].size[dim];
    if (n->need[i]) {
      rl_tensor *v = rl_narrow(g, dim, off, len);
      if (!v) return -1;
      gin[i] = v;
    }
    off += len;
  }
  return 0;
}

rl_tensor *rl_cat(int n, rl_tensor *const *ts, int dim) {
  if (n < 1) {
    rl_err("cat: needs at least one tensor");
    return NULL;
  }
  if (rl_check_same_device("cat", n, ts)) return NULL;
  const rl_tensor *t0 = ts[0];
  if (t0->ndim == 0) {
    rl_err("cat: 0-dim tensors cannot be joined (use stack)");
    return NULL;
  }
  int d = rl_wrap_dim("cat", dim, t0->ndim);
  if (d < 0) return NULL;
  rl_dtype dt = t0->dtype;
  int64_t size[RL_MAX_DIMS];
  memcpy(size, t0->size, sizeof size);
  size[d] = 0;
  for (int i = 0; i < n; i++) {
    const rl_tensor *t = ts[i];
    bool ok = t->ndim == t0->ndim;
    for (int k = 0; ok && k < t->ndim; k++) ok = k == d || t->size[k] == t0->size[k];
    if (!ok) {
      rl_err("cat: tensor %d has shape %s, which does not match %s except in dim %d", i + 1,
             rl_shape_str(t), rl_shape_str(t0), d + 1);
      return NULL;
    }
    size[d] += t->size[d];
    dt = rl_dtype_promote(dt, t->dtype);
  }
  /* mixed dtypes with gradients: convert first (differentiably), then join */
  bool mixed = false, grads = false;
  for (int i = 0; i < n; i++) {
    mixed = mixed || ts[i]->dtype != dt;
    grads = grads || ts[i]->requires_grad;
  }
  if (mixed && grads && rl_grad_enabled() && rl_dtype_is_floating(dt)) {
    rl_tensor **cv = calloc((size_t)n, sizeof *cv);
    rl_tensor *r = NULL;
    int i;
    for (i = 0; cv && i < n; i++)
      if (!(cv[i] = rl_to_dtype(ts[i], dt))) break;
    if (cv && i == n) r = rl_cat(n, cv, dim);
    if (cv) rl_release_all(n, cv);
    free(cv);
    if (!cv) rl_err("cat: out of memory");
    return r;
  }
  rl_tensor *out = rl_empty(t0->ndim, size, dt, rl_dev(t0));
  if (!out) return NULL;
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    rl_tensor *v = rl_narrow(out, d, off, ts[i]->size[d]);
    int rc = v ? rl_copy_(v, ts[i]) : -1;
    if (v) rl_release(v);
    if (rc) {
      rl_release(out);
      return NULL;
    }
    off += ts[i]->size[d];
  }
  if (rl_dtype_is_floating(dt) && !mixed) {
    rl_node *nd = rl_record("cat", cat_bwd, out, n, ts);
    if (nd) nd->ip[0] = d;
  }
  return out;
}

rl_tensor *rl_stack(int n, rl_tensor *const *ts, int dim) {
  if (n < 1) {
    rl_err("stack: needs at least one tensor");
    return NULL;
  }
  for (int i = 1; i < n; i++)
    if (!rl_same_shape(ts[i], ts[0])) {
      rl_err("stack: tensor %d has shape %s but tensor 1 has %s (all must match)", i + 1,
             rl_shape_str(ts[i]), rl_shape_str(ts[0]));
      return NULL;
    }
  int d = rl_wrap_dim("stack", dim, ts[0]->ndim + 1);
  if (d < 0) return NULL;
  rl_tensor **u = calloc((size_t)n, sizeof *u);
  if (!u) {
    rl_err("stack: out of memory");
    return NULL;
  }
  rl_tensor *out = NULL;
  int i;
  for (i = 0; i < n; i++)
    if (!(u[i] = rl_unsqueeze(ts[i], d))) break;
  if (i == n) out = rl_cat(n, u, d);
  rl_release_all(n, u);
  free(u);
  return out;
}

/* ---- index_select --------------------------------------------------------- */

/* y[:, idx[j], :] += src[:, j, :] along d, in index order: y and idx
 * contiguous, src any layout, shapes checked by the caller. */
static int index_add_into(rl_tensor *y, int d, rl_tensor *idx, rl_tensor *src) {
  rl_tensor *sc = rl_as_contig(src);
  if (!sc) return -1;
  int64_t outer, inner;
  split3(y->ndim, y->size, d, &outer, &inner);
  int rc = RL_BE(y)->index_add(y->dtype, rl_data(sc), outer, rl_numel(idx), inner, rl_data(idx),
                               y->ndim ? y->size[d] : 1, rl_data(y));
  rl_release(sc);
  return rc;
}

static int index_select_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *m = &n->meta[0];
  rl_tensor *idx = rl_node_saved(n, 0);
  rl_tensor *z = idx ? rl_zeros_meta(m) : NULL;
  int rc = z ? index_add_into(z, (int)n->ip[0], idx, g) : -1;
  if (idx) rl_release(idx);
  if (rc) {
    if (z) rl_release(z);
    return -1;
  }
  gin[0] = z;
  return 0;
}

rl_tensor *rl_index_select(rl_tensor *t, int dim, rl_tensor *idx) {
  int d = rl_wrap_dim("index_select", dim, t->ndim > 0 ? t->ndim : 1);
  if (d < 0) return NULL;
  rl_tensor *ti[2] = {t, idx};
  if (rl_check_same_device("index_select", 2, ti) ||
      rl_check_dtype("index_select", "index", idx, RL_I64))
    return NULL;
  if (idx->ndim > 1) {
    rl_err("index_select: the index must be 1-D, got %s", rl_shape_str(idx));
    return NULL;
  }
  int64_t n = t->ndim ? t->size[d] : 1;
  if (t->ndim == 0 && rl_numel(idx) != 1) {
    rl_err("index_select: a 0-d input takes an index of one element, got %lld",
           (long long)rl_numel(idx));
    return NULL;
  }
  if (check_range("index_select", idx, n, d)) return NULL;
  rl_tensor *x = rl_as_contig(t), *ic = x ? rl_as_contig(idx) : NULL;
  rl_tensor *out = NULL;
  if (!ic) goto done;
  int64_t size[RL_MAX_DIMS], outer, inner, k = rl_numel(idx);
  memcpy(size, t->size, sizeof size);
  if (t->ndim) size[d] = k;
  split3(t->ndim, t->size, d, &outer, &inner);
  out = rl_empty(t->ndim, size, t->dtype, rl_dev(t));
  if (!out) goto done;
  if (RL_BE(t)->index_select(t->dtype, rl_data(x), outer, n, inner, rl_data(ic), k,
                             rl_data(out))) {
    rl_err_prefix("index_select");
    rl_release(out);
    out = NULL;
    goto done;
  }
  rl_node *nd = rl_record("index_select", index_select_bwd, out, 1, &t);
  if (nd) {
    nd->ip[0] = d;
    if (rl_node_save(nd, ic)) {
      rl_release(out);
      out = NULL;
    }
  }
done:
  if (x) rl_release(x);
  if (ic) rl_release(ic);
  return out;
}

/* ---- index_add ------------------------------------------------------------- */

/* The backward of index_add and scatter_add (out = t + src placed at idx
 * along dim ip[0]): g for t, and for src g read back at idx, by
 * index_select (ip[1] = 1, index_add) or gather (scatter_add). */
static int add_at_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  if (n->need[0]) {
    rl_retain(g);
    gin[0] = g;
  }
  if (n->need[1]) {
    rl_tensor *idx = rl_node_saved(n, 0);
    int d = (int)n->ip[0];
    gin[1] = !idx ? NULL : n->ip[1] ? rl_index_select(g, d, idx) : rl_gather(g, d, idx);
    if (idx) rl_release(idx);
    if (!gin[1]) return -1;
  }
  return 0;
}

rl_tensor *rl_index_add(rl_tensor *t, int dim, rl_tensor *idx, rl_tensor *src) {
  if (t->ndim == 0) {
    rl_err("index_add: the input must have at least 1 dim");
    return NULL;
  }
  int d = rl_wrap_dim("index_add", dim, t->ndim);
  rl_tensor *ts[3] = {t, idx, src};
  if (d < 0 || rl_check_same_device("index_add", 3, ts) ||
      rl_check_dtype("index_add", "index", idx, RL_I64))
    return NULL;
  if (idx->ndim > 1) {
    rl_err("index_add: the index must be 1-D, got %s", rl_shape_str(idx));
    return NULL;
  }
  if (check_range("index_add", idx, t->size[d], d)) return NULL;
  bool ok = src->ndim == t->ndim;
  for (int k = 0; ok && k < t->ndim; k++)
    ok = src->size[k] == (k == d ? rl_numel(idx) : t->size[k]);
  if (!ok) {
    rl_err("index_add: source of shape %s must have the input's shape %s with %lld in dim %d "
           "(the index's length)",
           rl_shape_str(src), rl_shape_str(t), (long long)rl_numel(idx), d + 1);
    return NULL;
  }
  if (src->dtype != t->dtype) {
    rl_err("index_add: source dtype %s differs from the input's %s", rl_dtype_name(src->dtype),
           rl_dtype_name(t->dtype));
    return NULL;
  }
  rl_tensor *d0 = rl_detach(t);
  rl_tensor *out = d0 ? rl_clone(d0) : NULL, *ic = out ? rl_as_contig(idx) : NULL;
  if (d0) rl_release(d0);
  if (!ic || index_add_into(out, d, ic, src)) {
    if (ic) rl_err_prefix("index_add");
    goto fail;
  }
  rl_tensor *in[2] = {t, src};
  rl_node *nd = rl_record("index_add", add_at_bwd, out, 2, in);
  if (nd) {
    nd->ip[0] = d;
    nd->ip[1] = 1;
    if (rl_node_save(nd, ic)) goto fail;
  }
  rl_release(ic);
  return out;
fail:
  if (out) rl_release(out);
  if (ic) rl_release(ic);
  return NULL;
}

/* ---- gather / scatter_add ------------------------------------------------- */

/* idx must have t's shape except along d. */
static int check_index_shape(const char *op, const rl_tensor *t, const rl_tensor *idx, int d) {
  bool ok = idx->ndim == t->ndim;
  for (int k = 0; ok && k < t->ndim; k++) ok = k == d || idx->size[k] == t->size[k];
  if (!ok)
    return rl_err("%s: index of shape %s must match the input's shape %s except in dim %d",
                  op, rl_shape_str(idx), rl_shape_str(t), d + 1);
  return 0;
}

static int gather_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  rl_tensor *idx = rl_node_saved(n, 0);
  rl_tensor *z = idx ? rl_zeros_meta(&n->meta[0]) : NULL;
  gin[0] = z ? rl_scatter_add(z, (int)n->ip[0], idx, g) : NULL;
  if (idx) rl_release(idx);
  if (z) rl_release(z);
  return gin[0] ? 0 : -1;
}

rl_tensor *rl_gather(rl_tensor *t, int dim, rl_tensor *idx) {
  if (t->ndim == 0) {
    rl_err("gather: the input must have at least 1 dim");
    return NULL;
  }
  int d = rl_wrap_dim("gather", dim, t->ndim);
  rl_tensor *ti[2] = {t, idx};
  if (d < 0 || rl_check_same_device("gather", 2, ti) ||
      rl_check_dtype("gather", "index", idx, RL_I64) || check_index_shape("gather", t, idx, d) ||
      check_range("gather", idx, t->size[d], d))
    return NULL;
  rl_tensor *x = rl_as_contig(t), *ic = x ? rl_as_contig(idx) : NULL;
  rl_tensor *out = ic ? rl_empty(idx->ndim, idx->size, t->dtype, rl_dev(t)) : NULL;
  if (out) {
    int64_t outer, inner;
    split3(t->ndim, t->size, d, &outer, &inner);
    if (RL_BE(t)->gather(t->dtype, rl_data(x), outer, t->size[d], inner, rl_data(ic),
                         idx->size[d], rl_data(out))) {
      rl_err_prefix("gather");
      rl_release(out);
      out = NULL;
    }
  }
  if (out) {
    rl_node *nd = rl_record("gather", gather_bwd, out, 1, &t);
    if (nd) {
      nd->ip[0] = d;
      if (rl_node_save(nd, ic)) {
        rl_release(out);
        out = NULL;
      }
    }
  }
  if (x) rl_release(x);
  if (ic) rl_release(ic);
  return out;
}

rl_tensor *rl_scatter_add(rl_tensor *t, int dim, rl_tensor *idx, rl_tensor *src) {
  if (t->ndim == 0) {
    rl_err("scatter_add: the input must have at least 1 dim");
    return NULL;
  }
  int d = rl_wrap_dim("scatter_add", dim, t->ndim);
  rl_tensor *ts[3] = {t, idx, src};
  if (d < 0 || rl_check_same_device("scatter_add", 3, ts) ||
      rl_check_dtype("scatter_add", "index", idx, RL_I64) ||
      check_index_shape("scatter_add", t, idx, d) ||
      check_range("scatter_add", idx, t->size[d], d))
    return NULL;
  if (!rl_same_shape(idx, src)) {
    rl_err("scatter_add: source of shape %s must have the index's shape %s",
           rl_shape_str(src), rl_shape_str(idx));
    return NULL;
  }
  if (src->dtype != t->dtype) {
    rl_err("scatter_add: source dtype %s differs from the input's %s",
           rl_dtype_name(src->dtype), rl_dtype_name(t->dtype));
    return NULL;
  }
  rl_tensor *out = NULL, *ic = NULL, *sc = NULL;
  {
    rl_tensor *d0 = rl_detach(t);
    out = d0 ? rl_clone(d0) : NULL;
    if (d0) rl_release(d0);
  }
  ic = out ? rl_as_contig(idx) : NULL;
  sc = ic ? rl_as_contig(src) : NULL;
  if (!sc) goto fail;
  int64_t outer, inner;
  split3(t->ndim, t->size, d, &outer, &inner);
  if (RL_BE(t)->scatter_add(t->dtype, rl_data(sc), outer, idx->size[d], inner, rl_data(ic),
                            t->size[d], rl_data(out))) {
    rl_err_prefix("scatter_add");
    goto fail;
  }
  rl_tensor *in[2] = {t, src};
  rl_node *nd = rl_record("scatter_add", add_at_bwd, out, 2, in);
  if (nd) {
    nd->ip[0] = d;
    nd->ip[1] = 0;
    if (rl_node_save(nd, ic)) goto fail;
  }
  rl_release(ic);
  rl_release(sc);
  return out;
fail:
  if (out) rl_release(out);
  if (ic) rl_release(ic);
  if (sc) rl_release(sc);
  return NULL;
}

/* ---- masked_select -------------------------------------------------------- */

rl_tensor *rl_masked_select(rl_tensor *t, rl_tensor *mask) {
  rl_tensor *tm[2] = {t, mask};
  int nd;
  int64_t size[RL_MAX_DIMS];
  if (rl_check_dtype("masked_select", "mask", mask, RL_U8) ||
      rl_check_same_device("masked_select", 2, tm) ||
      rl_broadcast_shape("masked_select", 2, tm, &nd, size))
    return NULL;
  /* the positions of the set mask bits, found on the host */
  rl_tensor *me = rl_expand(mask, nd, size);
  rl_tensor *mc = me ? rl_contiguous(me) : NULL;
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= size[i];
  uint8_t *bits = mc ? malloc((size_t)n + 1) : NULL;
  int64_t *pos = bits ? malloc(sizeof(int64_t) * (size_t)(n + 1)) : NULL;
  rl_tensor *out = NULL, *te = NULL, *flat = NULL, *idx = NULL;
  if (!pos) {
    if (mc) rl_err("masked_select: out of memory");
    goto done;
  }
  if (rl_to_host(mc, bits)) goto done;
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++)
    if (bits[i]) pos[k++] = i;
  idx = rl_from_host(1, &k, RL_I64, pos, rl_dev(t));
  te = idx ? rl_expand(t, nd, size) : NULL;
  flat = te ? rl_reshape(te, 1, &n) : NULL;
  out = flat ? rl_index_select(flat, 0, idx) : NULL;
done:
  free(bits);
  free(pos);
  rl_tensor *tmp[5] = {me, mc, te, flat, idx};
  rl_release_all(5, tmp);
  return out;
}
