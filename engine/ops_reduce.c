/* ops_reduce.c - reductions over one or several dims, and their gradients.
 *
 * Sums of integers give i64 (as PyTorch); mean, norm, var and std of
 * integers compute in f32.  The max/min of a whole tensor sends its
 * gradient evenly to every element that ties for the extreme, as PyTorch
 * does; max/min along a dim sends it to the returned index. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* A half t (bf16, f16) is reduced in f32 and the result rounded back once:
 * return expr (which reads the f32 copy as f_) that way. */
#define HALF_IN_F32(t, expr)                                                    \
  do {                                                                          \
    if (rl_dtype_is_half((t)->dtype)) {                                         \
      rl_tensor *f_ = rl_in_f32(t), *r_ = f_ ? (expr) : NULL;                   \
      rl_release(f_);                                                           \
      return rl_out_half(r_, (t)->dtype);                                       \
    }                                                                           \
  } while (0)

static const char *const reduce_name[RL_RED_COUNT] = {
    "sum", "prod", "max", "min", "norm", "norm", "norm", "any", "all"};

_Static_assert(sizeof reduce_name / sizeof *reduce_name == RL_RED_COUNT, "reduce names");

/* Which dims of t are reduced.  0 dims means all.  A 0-dim tensor accepts
 * dim 0 or -1 and reduces nothing. */
static int parse_dims(const char *op, const rl_tensor *t, int ndims, const int *dims,
                      bool *red) {
  for (int d = 0; d < RL_MAX_DIMS; d++) red[d] = ndims == 0;
  if (ndims < 0 || ndims > RL_MAX_DIMS) return rl_err("%s: too many dims (%d)", op, ndims);
  for (int i = 0; i < ndims; i++) {
    if (t->ndim == 0) {
      if (dims[i] != 0 && dims[i] != -1)
        return rl_err("%s: dim %d out of range for a 0-dim tensor", op, dims[i] + 1);
      continue;
    }
    int d = rl_wrap_dim(op, dims[i], t->ndim);
    if (d < 0) return -1;
    if (red[d]) return rl_err("%s: dim %d appears twice in the dims to reduce", op, d + 1);
    red[d] = true;
  }
  return 0;
}

/* The output shape with reduced dims kept as 1. */
static void keep_shape(const rl_tensor *t, const bool *red, int64_t *size) {
  for (int d = 0; d < t->ndim; d++) size[d] = red[d] ? 1 : t->size[d];
}

/* The output shape as returned (reduced dims dropped unless keepdim). */
static int out_shape(const rl_tensor *t, const bool *red, bool keepdim, int64_t *size) {
  int nd = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (!red[d])
      size[nd++] = t->size[d];
    else if (keepdim)
      size[nd++] = 1;
  }
  return nd;
}

/* Run the reduction kernel: out (and idx) have the keepdim shape, contiguous. */
static int run_reduce(rl_reduce_op op, rl_tensor *t, const bool *red, rl_tensor *out,
                      rl_tensor *idx) {
  rl_rediter r;
  memset(&r, 0, sizeof r);
  int64_t ksize[RL_MAX_DIMS], kstride[RL_MAX_DIMS];
  keep_shape(t, red, ksize);
  rl_contiguous_strides(t->ndim, ksize, kstride);
  r.onumel = r.rnumel = 1;
  for (int d = 0; d < t->ndim; d++) {
    if (red[d]) {
      r.rsize[r.rndim] = t->size[d];
      r.rstride_in[r.rndim++] = t->stride[d];
      r.rnumel *= t->size[d];
    } else {
      r.osize[r.ondim] = t->size[d];
      r.ostride_in[r.ondim] = t->stride[d];
      r.ostride_out[r.ondim] = kstride[d];
      r.ostride_idx[r.ondim++] = kstride[d];
      r.onumel *= t->size[d];
    }
  }
  if (r.ondim == 0) { /* one output */
    r.osize[0] = 1;
    r.ondim = 1;
  }
  if (r.rndim == 0) { /* nothing reduced: one-element spans */
    r.rsize[0] = 1;
    r.rndim = 1;
  }
  r.in = rl_data(t);
  r.out = rl_data(out);
  r.idx = idx ? rl_data(idx) : NULL;
  r.in_dtype = t->dtype;
  r.out_dtype = out->dtype;
  if (r.onumel == 0) return 0;
  if (RL_BE(t)->reduce(op, &r)) return rl_err_prefix(reduce_name[op]);
  return 0;
}

/* g (of the reduced shape) viewed with kept dims and expanded to the input. */
static rl_tensor *expand_back(rl_tensor *g, const rl_meta *m, const int64_t *kshape) {
  rl_tensor *v = rl_reshape(g, m->ndim, kshape);
  rl_tensor *e = v ? rl_expand(v, m->ndim, m->size) : NULL;
  rl_release(v);
  return e;
}

/* Gradient split evenly among the elements equal to the extreme y:
 * g * (a == y) / count(a == y) over the reduced dims.  `a` may be |x|. */
static rl_tensor *even_split(rl_tensor *g, rl_tensor *a, rl_tensor *y, const rl_meta *m,
                             const int64_t *kshape, const bool *red) {
  rl_tensor *ye = expand_back(y, m, kshape);
  rl_tensor *ge = ye ? expand_back(g, m, kshape) : NULL;
  rl_tensor *hit = ge ? rl_binary(RL_BIN_EQ, a, ye, 1) : NULL;
  rl_tensor *hitf = hit ? rl_to_dtype(hit, m->dtype) : NULL;
  int dims[RL_MAX_DIMS], nd = 0;
  for (int d = 0; d < m->ndim; d++)
    if (red[d]) dims[nd++] = d;
  rl_tensor *cnt = hitf ? rl_sum(hitf, nd, dims, true) : NULL;
  rl_tensor *share = cnt ? rl_div(ge, cnt) : NULL;
  rl_tensor *r = share ? rl_mul(share, hitf) : NULL;
  rl_tensor *tmp[6] = {ye, ge, hit, hitf, cnt, share};
  rl_release_all(6, tmp);
  return r;
}

/* d prod / d a_i is the product of the other elements of a_i's slice: y / a
 * where the slice holds no zero; with one zero, the product p of the rest
 * at the zero and 0 elsewhere; with several, 0 (PyTorch's prod_backward).
 * p is the product with the zeros taken as 1, so nothing divides by 0. */
static rl_tensor *prod_grad(rl_tensor *g, rl_tensor *a, const rl_meta *m,
                            const int64_t *kshape, const bool *red) {
  int dims[RL_MAX_DIMS], nd = 0;
  for (int d = 0; d < m->ndim; d++)
    if (red[d]) dims[nd++] = d;
  rl_tensor *one = rl_scalar(1, a->dtype, rl_dev(a)), *zero = rl_scalar(0, a->dtype, rl_dev(a));
  rl_tensor *z = one && zero ? rl_unary(RL_UN_EQ_S, a, 0, 0) : NULL;
  rl_tensor *a1 = z ? rl_where(z, one, a) : NULL;
  rl_tensor *p = a1 ? rl_reduce(RL_RED_PROD, a1, nd, dims, true) : NULL;
  rl_tensor *zf = p ? rl_to_dtype(z, a->dtype) : NULL;
  rl_tensor *nz = zf ? rl_sum(zf, nd, dims, true) : NULL; /* zeros per slice */
  rl_tensor *none = nz ? rl_unary(RL_UN_EQ_S, nz, 0, 0) : NULL;
  rl_tensor *once = none ? rl_unary(RL_UN_EQ_S, nz, 1, 0) : NULL;
  rl_tensor *at = once ? rl_binary(RL_BIN_AND, once, z, 1) : NULL; /* the lone zero */
  rl_tensor *q = at ? rl_div(p, a1) : NULL;
  rl_tensor *lone = q ? rl_where(at, p, zero) : NULL;
  rl_tensor *f = lone ? rl_where(none, q, lone) : NULL;
  rl_tensor *ge = f ? expand_back(g, m, kshape) : NULL;
  rl_tensor *r = ge ? rl_mul(ge, f) : NULL;
  rl_tensor *tmp[14] = {one, zero, z, a1, p, zf, nz, none, once, at, q, lone, f, ge};
  rl_release_all(14, tmp);
  return r;
}

static int reduce_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  rl_reduce_op op = (rl_reduce_op)n->ip[0];
  const rl_meta *m = &n->meta[0];
  bool red[RL_MAX_DIMS];
  int64_t kshape[RL_MAX_DIMS];
  for (int d = 0; d < m->ndim; d++) {
    red[d] = (n->ip[1] >> d) & 1;
    kshape[d] = red[d] ? 1 : m->size[d];
  }
  rl_tensor *a = rl_node_saved(n, 0), *y = rl_node_saved(n, 1);
  rl_tensor *r = NULL;
  if (!a || !y) goto out;
  switch (op) {
  case RL_RED_SUM: r = expand_back(g, m, kshape); break;
  case RL_RED_PROD: r = prod_grad(g, a, m, kshape, red); break;
  case RL_RED_MAX: case RL_RED_MIN: r = even_split(g, a, y, m, kshape, red); break;
  default: rl_err("%s: no gradient", reduce_name[op]); break;
  }
out:
  rl_release(a);
  rl_release(y);
  gin[0] = r;
  return r ? 0 : -1;
}

static rl_dtype reduce_out_dtype(rl_reduce_op op, rl_dtype in) {
  if (op == RL_RED_ANY || op == RL_RED_ALL) return RL_U8;
  if ((op == RL_RED_SUM || op == RL_RED_PROD) && !rl_dtype_is_float(in)) return RL_I64;
  return in;
}

rl_tensor *rl_reduce(rl_reduce_op op, rl_tensor *t, int ndims, const int *dims,
                     bool keepdim) {
  if (!t) return NULL;
  if ((int)op < 0 || op >= RL_RED_COUNT) {
    rl_err("reduce: unknown op %d", (int)op);
    return NULL;
  }
  const char *name = reduce_name[op];
  bool red[RL_MAX_DIMS];
  if (parse_dims(name, t, ndims, dims, red)) return NULL;
  if (op != RL_RED_ANY && op != RL_RED_ALL) HALF_IN_F32(t, rl_reduce(op, f_, ndims, dims, keepdim));
  rl_tensor *x = t;
  bool real = op == RL_RED_ABSSUM || op == RL_RED_SQSUM || op == RL_RED_ABSMAX;
  if ((op == RL_RED_ANY || op == RL_RED_ALL) && t->dtype != RL_U8) {
    x = rl_unary(RL_UN_NE_S, t, 0, 0); /* any/all look at nonzero */
  } else if (real && !rl_dtype_is_float(t->dtype)) {
    x = rl_to_dtype(t, RL_F32);
  } else {
    rl_retain(x);
  }
  if (!x) return NULL;
  if (op == RL_RED_MAX || op == RL_RED_MIN) {
    for (int d = 0; d < x->ndim; d++)
      if (red[d] && x->size[d] == 0) {
        rl_release(x);
        rl_err("%s: cannot reduce over dim %d of size 0 (input %s)", name, d + 1,
               rl_shape_str(t));
        return NULL;
      }
  }
  int64_t ksize[RL_MAX_DIMS], osize[RL_MAX_DIMS];
  keep_shape(x, red, ksize);
  int ond = out_shape(x, red, keepdim, osize);
  rl_tensor *out = rl_empty(x->ndim, ksize, reduce_out_dtype(op, x->dtype), rl_dev(x));
  if (!out || run_reduce(op, x, red, out, NULL)) {
    rl_release(out);
    rl_release(x);
    return NULL;
  }
  if (!keepdim) { /* a view with the reduced dims dropped */
    int64_t st[RL_MAX_DIMS];
    rl_contiguous_strides(ond, osize, st);
    rl_tensor *v = rl_view_of(out->st, out->dtype, ond, osize, st, 0);
    rl_release(out);
    out = v;
    if (!out) {
      rl_release(x);
      return NULL;
    }
  }
  bool differentiable = op == RL_RED_SUM || op == RL_RED_PROD || op == RL_RED_MAX ||
                        op == RL_RED_MIN;
  if (differentiable && rl_dtype_is_float(out->dtype)) {
    rl_node *n = rl_record(name, reduce_bwd, out, 1, &x);
    if (n) {
      n->ip[0] = op;
      n->ip[1] = 0;
      for (int d = 0; d < x->ndim; d++)
        if (red[d]) n->ip[1] |= (int64_t)1 << d;
      if (rl_node_save(n, x) || rl_node_save(n, out)) {
        rl_release(out);
        out = NULL;
      }
    }
  }
  rl_release(x);
  return out;
}

rl_tensor *rl_sum(rl_tensor *t, int ndims, const int *dims, bool keepdim) {
  return rl_reduce(RL_RED_SUM, t, ndims, dims, keepdim);
}

/* Number of elements the reduction over dims combines. */
static int64_t reduced_count(const rl_tensor *t, int ndims, const int *dims) {
  if (ndims == 0) return rl_numel(t);
  int64_t c = 1;
  for (int i = 0; i < ndims; i++) {
    int d = t->ndim == 0 ? -1 : rl_wrap_dim("mean", dims[i], t->ndim);
    if (d >= 0) c *= t->size[d];
  }
  return c;
}

rl_tensor *rl_mean(rl_tensor *t, int ndims, const int *dims, bool keepdim) {
  if (!t) return NULL;
  HALF_IN_F32(t, rl_mean(f_, ndims, dims, keepdim));
  rl_tensor *x = rl_dtype_is_float(t->dtype) ? (rl_retain(t), t) : rl_to_dtype(t, RL_F32);
  rl_tensor *s = x ? rl_sum(x, ndims, dims, keepdim) : NULL;
  rl_tensor *r = NULL;
  if (s) {
    int64_t c = reduced_count(x, ndims, dims);
    r = rl_mul_scalar(s, c ? 1.0 / (double)c : NAN);
  }
  if (!r) rl_err_prefix("mean");
  rl_release(x);
  rl_release(s);
  return r;
}

/* ---- norm ---------------------------------------------------------------- */

static int norm_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *m = &n->meta[0];
  double p = n->p[0];
  bool red[RL_MAX_DIMS];
  int64_t kshape[RL_MAX_DIMS];
  for (int d = 0; d < m->ndim; d++) {
    red[d] = (n->ip[1] >> d) & 1;
    kshape[d] = red[d] ? 1 : m->size[d];
  }
  rl_tensor *a = rl_node_saved(n, 0), *y = rl_node_saved(n, 1), *r = NULL;
  if (!a || !y) goto out;
  if (p == 1) {
    rl_tensor *ge = expand_back(g, m, kshape);
    r = ge ? rl_binary(RL_BIN_SIGN_MUL, ge, a, 1) : NULL;
    rl_release(ge);
  } else if (isinf(p)) {
    rl_tensor *abs = rl_unary(RL_UN_ABS, a, 0, 0);
    rl_tensor *s = abs ? even_split(g, abs, y, m, kshape, red) : NULL;
    r = s ? rl_binary(RL_BIN_SIGN_MUL, s, a, 1) : NULL;
    rl_release(abs);
    rl_release(s);
  } else {
    /* g * a |a|^(p-2) / y^(p-1), zero where the norm is zero */
    rl_tensor *yp = rl_unary(RL_UN_POW, y, p - 1, 0);
    rl_tensor *q = yp ? rl_div(g, yp) : NULL;
    rl_tensor *z = q ? rl_unary(RL_UN_EQ_S, y, 0, 0) : NULL;
    if (z && rl_masked_fill_(q, z, 0)) {
      rl_release(q);
      q = NULL;
    }
    rl_tensor *qe = q ? expand_back(q, m, kshape) : NULL;
    rl_tensor *f = NULL;
    if (qe && p == 2) {
      rl_retain(a);
      f = a;
    } else if (qe) {
      rl_tensor *abs = rl_unary(RL_UN_ABS, a, 0, 0);
      rl_tensor *ap = abs ? rl_unary(RL_UN_POW, abs, p - 2, 0) : NULL;
      f = ap ? rl_mul(a, ap) : NULL;
      rl_release(abs);
      rl_release(ap);
    }
    r = f ? rl_mul(qe, f) : NULL;
    rl_tensor *tmp[5] = {yp, q, z, qe, f};
    rl_release_all(5, tmp);
  }
out:
  rl_release(a);
  rl_release(y);
  gin[0] = r;
  return r ? 0 : -1;
}

rl_tensor *rl_norm(rl_tensor *t, double p, int ndims, const int *dims, bool keepdim) {
  if (!t) return NULL;
  if (!(p > 0)) {
    rl_err("norm: p must be positive (1, 2, inf or any p > 0), got %g", p);
    return NULL;
  }
  bool red[RL_MAX_DIMS];
  if (parse_dims("norm", t, ndims, dims, red)) return NULL;
  HALF_IN_F32(t, rl_norm(f_, p, ndims, dims, keepdim));
  rl_tensor *x = rl_dtype_is_float(t->dtype) ? (rl_retain(t), t) : rl_to_dtype(t, RL_F32);
  if (!x) return NULL;
  bool prev = rl_set_grad_enabled(false);
  rl_tensor *out = NULL;
  if (p == 1) {
    out = rl_reduce(RL_RED_ABSSUM, x, ndims, dims, keepdim);
  } else if (p == 2) {
    rl_tensor *s = rl_reduce(RL_RED_SQSUM, x, ndims, dims, keepdim);
    out = s ? rl_unary(RL_UN_SQRT, s, 0, 0) : NULL;
    rl_release(s);
  } else if (isinf(p)) {
    out = rl_reduce(RL_RED_ABSMAX, x, ndims, dims, keepdim);
  } else {
    rl_tensor *abs = rl_unary(RL_UN_ABS, x, 0, 0);
    rl_tensor *ap = abs ? rl_unary(RL_UN_POW, abs, p, 0) : NULL;
    rl_tensor *s = ap ? rl_sum(ap, ndims, dims, keepdim) : NULL;
    out = s ? rl_unary(RL_UN_POW, s, 1 / p, 0) : NULL;
    rl_release(abs);
    rl_release(ap);
    rl_release(s);
  }
  rl_set_grad_enabled(prev);
  if (out) {
    rl_node *n = rl_record("norm", norm_bwd, out, 1, &x);
    if (n) {
      n->p[0] = p;
      n->ip[1] = 0;
      for (int d = 0; d < x->ndim; d++)
        if (red[d]) n->ip[1] |= (int64_t)1 << d;
      if (rl_node_save(n, x) || rl_node_save(n, out)) {
        rl_release(out);
        out = NULL;
      }
    }
  }
  rl_release(x);
  return out;
}

/* ---- var / std ----------------------------------------------------------- */

rl_tensor *rl_var(rl_tensor *t, int ndims, const int *dims, int correction, bool keepdim) {
  if (!t) return NULL;
  bool red[RL_MAX_DIMS];
  if (parse_dims("var", t, ndims, dims, red)) return NULL;
  HALF_IN_F32(t, rl_var(f_, ndims, dims, correction, keepdim));
  rl_tensor *x = rl_dtype_is_float(t->dtype) ? (rl_retain(t), t) : rl_to_dtype(t, RL_F32);
  if (!x) return NULL;
  int64_t cnt = reduced_count(x, ndims, dims);
  rl_tensor *mu = rl_mean(x, ndims, dims, true);
  rl_tensor *d = mu ? rl_sub(x, mu) : NULL;
  rl_tensor *d2 = d ? rl_unary(RL_UN_SQUARE, d, 0, 0) : NULL;
  rl_tensor *s = d2 ? rl_sum(d2, ndims, dims, keepdim) : NULL;
  double denom = (double)(cnt - correction);
  rl_tensor *r = s ? rl_mul_scalar(s, denom > 0 ? 1.0 / denom : NAN) : NULL;
  rl_tensor *tmp[5] = {x, mu, d, d2, s};
  rl_release_all(5, tmp);
  if (!r) rl_err_prefix("var");
  return r;
}

/* std = sqrt(var), whose gradient g / (2 std) is taken as 0 where the std
 * is 0 (a constant slice), as PyTorch: sqrt's own rule would give inf
 * there, and inf times var's zero gradient NaN.  Input: var; saved: std. */
static int std_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  rl_tensor *y = rl_node_saved(n, 0);
  rl_tensor *q = y ? rl_unary(RL_UN_RDIV, y, 0.5, 0) : NULL;
  rl_tensor *z = q ? rl_unary(RL_UN_EQ_S, y, 0, 0) : NULL;
  rl_tensor *dv = z && !rl_masked_fill_(q, z, 0) ? rl_mul(g, q) : NULL;
  rl_tensor *tmp[3] = {y, q, z};
  return rl_grad_one(gin, dv, dv ? 0 : -1, 3, tmp);
}

rl_tensor *rl_std(rl_tensor *t, int ndims, const int *dims, int correction, bool keepdim) {
  if (!t) return NULL;
  HALF_IN_F32(t, rl_std(f_, ndims, dims, correction, keepdim));
  rl_tensor *v = rl_var(t, ndims, dims, correction, keepdim);
  if (!v) return NULL;
  bool prev = rl_set_grad_enabled(false);
  rl_tensor *r = rl_unary(RL_UN_SQRT, v, 0, 0);
  rl_set_grad_enabled(prev);
  rl_node *n = r ? rl_record("std", std_bwd, r, 1, &v) : NULL;
  if (n && rl_node_save(n, r)) {
    rl_release(r);
    r = NULL;
  }
  rl_release(v);
  return r;
}

/* ---- max/min along a dim, argmax ---------------------------------------- */

static int max_dim_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *m = &n->meta[0];
  int dim = (int)n->ip[0];
  int64_t kshape[RL_MAX_DIMS];
  for (int d = 0; d < m->ndim; d++) kshape[d] = d == dim ? 1 : m->size[d];
  rl_tensor *idx = rl_node_saved(n, 0);
  rl_tensor *gk = idx ? rl_reshape(g, m->ndim, kshape) : NULL;
  rl_tensor *ik = gk ? rl_reshape(idx, m->ndim, kshape) : NULL;
  rl_tensor *z = ik ? rl_zeros_meta(m) : NULL;
  gin[0] = z ? rl_scatter_add(z, dim, ik, gk) : NULL;
  rl_tensor *tmp[4] = {idx, gk, ik, z};
  rl_release_all(4, tmp);
  return gin[0] ? 0 : -1;
}

/* max/min along dim; name is the op the errors name (argmax's own, so its
 * messages do not read "argmax: max: ..."). */
static int max_dim_named(const char *name, rl_tensor *t, int dim, bool keepdim, bool is_min,
                         rl_tensor **values, rl_tensor **indices) {
  *values = *indices = NULL;
  if (rl_dtype_is_half(t->dtype)) { /* exact in f32; the values rounded back are t's own */
    rl_tensor *f = rl_in_f32(t);
    int rc = f ? max_dim_named(name, f, dim, keepdim, is_min, values, indices) : -1;
    rl_release(f);
    if (rc == 0 && !(*values = rl_out_half(*values, t->dtype))) {
      rl_release(*indices);
      *indices = NULL;
      rc = -1;
    }
    return rc;
  }
  if (t->ndim == 0) {
    if (dim != 0 && dim != -1)
      return rl_err("%s: dim %d out of range for a 0-dim tensor", name, dim + 1);
    *values = rl_clone(t);
    *indices = *values ? rl_zeros(0, NULL, RL_I64, rl_dev(t)) : NULL;
    if (*indices) return 0;
    if (*values) rl_release(*values); /* both or neither */
    *values = NULL;
    return -1;
  }
  int d = rl_wrap_dim(name, dim, t->ndim);
  if (d < 0) return -1;
  if (t->size[d] == 0)
    return rl_err("%s: cannot reduce over dim %d of size 0 (input %s)", name, d + 1,
                  rl_shape_str(t));
  bool red[RL_MAX_DIMS] = {false};
  red[d] = true;
  int64_t ksize[RL_MAX_DIMS], osize[RL_MAX_DIMS];
  keep_shape(t, red, ksize);
  int ond = out_shape(t, red, keepdim, osize);
  rl_tensor *v = rl_empty(t->ndim, ksize, t->dtype, rl_dev(t));
  rl_tensor *ix = v ? rl_empty(t->ndim, ksize, RL_I64, rl_dev(t)) : NULL;
  if (!ix || run_reduce(is_min ? RL_RED_MIN : RL_RED_MAX, t, red, v, ix)) goto fail;
  int64_t st[RL_MAX_DIMS];
  rl_contiguous_strides(ond, osize, st);
  *values = rl_view_of(v->st, v->dtype, ond, osize, st, 0);
  *indices = rl_view_of(ix->st, RL_I64, ond, osize, st, 0);
  rl_release(v);
  rl_release(ix);
  if (!*values || !*indices) goto fail2;
  if (rl_dtype_is_float(t->dtype)) {
    rl_node *n = rl_record(name, max_dim_bwd, *values, 1, &t);
    if (n) {
      n->ip[0] = d;
      if (rl_node_save(n, *indices)) goto fail2;
    }
  }
  return 0;
fail:
  rl_release(v);
  rl_release(ix);
  return -1;
fail2:
  if (*values) rl_release(*values);
  if (*indices) rl_release(*indices);
  *values = *indices = NULL;
  return -1;
}

int rl_max_dim(rl_tensor *t, int dim, bool keepdim, bool is_min, rl_tensor **values,
               rl_tensor **indices) {
  return max_dim_named(is_min ? "min" : "max", t, dim, keepdim, is_min, values, indices);
}

rl_tensor *rl_argmax(rl_tensor *t, int dim, bool keepdim, bool is_min) {
  const char *name = is_min ? "argmin" : "argmax";
  rl_tensor *v = NULL, *ix = NULL;
  bool prev = rl_set_grad_enabled(false);
  if (dim == INT32_MIN) {
    int64_t n = rl_numel(t);
    rl_tensor *flat = rl_reshape(t, 1, &n);
    if (flat && n == 0) {
      rl_err("%s: the input is empty", name);
    } else if (flat && max_dim_named(name, flat, 0, false, is_min, &v, &ix) == 0 && keepdim) {
      int64_t ones[RL_MAX_DIMS];
      for (int d = 0; d < t->ndim; d++) ones[d] = 1;
      rl_tensor *r = rl_reshape(ix, t->ndim, ones);
      rl_release(ix);
      ix = r;
    }
    if (flat) rl_release(flat);
  } else {
    max_dim_named(name, t, dim, keepdim, is_min, &v, &ix);
  }
  rl_set_grad_enabled(prev);
  if (v) rl_release(v);
  if (!ix) rl_err_prefix(name); /* for a failure below the reduction (memory) */
  return ix;
}

rl_tensor *rl_logsumexp(rl_tensor *t, int dim, bool keepdim) {
  if (rl_wrap_dim("logsumexp", dim, t->ndim) < 0) return NULL;
  HALF_IN_F32(t, rl_logsumexp(f_, dim, keepdim));
  rl_tensor *mv = NULL, *mi = NULL;
  bool prev = rl_set_grad_enabled(false);
  int rc = rl_max_dim(t, dim, true, false, &mv, &mi);
  rl_tensor *inf = mv ? rl_unary(RL_UN_ABS, mv, 0, 0) : NULL;
  rl_tensor *isinf_ = inf ? rl_unary(RL_UN_EQ_S, inf, INFINITY, 0) : NULL;
  if (isinf_ && rl_masked_fill_(mv, isinf_, 0)) rc = -1;
  rl_set_grad_enabled(prev);
  rl_tensor *r = NULL;
  if (rc == 0 && isinf_) {
    int d = rl_wrap_dim("logsumexp", dim, t->ndim);
    rl_tensor *sh = rl_sub(t, mv);
    rl_tensor *e = sh ? rl_unary(RL_UN_EXP, sh, 0, 0) : NULL;
    rl_tensor *s = e ? rl_sum(e, 1, &d, true) : NULL;
    rl_tensor *l = s ? rl_unary(RL_UN_LOG, s, 0, 0) : NULL;
    rl_tensor *k = l ? rl_add(l, mv) : NULL;
    r = k && !keepdim ? rl_squeeze(k, d) : (k ? (rl_retain(k), k) : NULL);
    rl_tensor *tmp[5] = {sh, e, s, l, k};
    rl_release_all(5, tmp);
  }
  rl_tensor *tmp[4] = {mv, mi, inf, isinf_};
  rl_release_all(4, tmp);
  return r;
}
