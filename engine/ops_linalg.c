/* ops_linalg.c - matmul, linear and dot, through the backend's GEMM.
 *
 * Every product goes through one batched GEMM on [B, m, k] x [B, k, n]
 * operands.  A transposed operand (stride 1 along its rows) is passed to
 * BLAS as transposed instead of being copied, and a batch broadcast from a
 * single matrix is passed with batch stride 0, so x @ w:t() and the
 * gradients of matmul copy nothing. */
#include <omp.h>
#include <string.h>

#include "internal.h"

#ifdef RL_HAVE_OPENBLAS_THREADS
void openblas_set_num_threads(int n);
#endif



void rl_set_num_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
#ifdef RL_HAVE_OPENBLAS_THREADS
  openblas_set_num_threads(n);
#endif
}

int rl_get_num_threads(void) { return omp_get_max_threads(); }

int rl_gemm(const rl_device *dev, rl_dtype dt, rl_dtype ct, bool ta, bool tb, int64_t m, int64_t n,
            int64_t k, double alpha, const void *a, int64_t lda, int64_t sa,
            const void *b, int64_t ldb, int64_t sb, double beta, void *c, int64_t ldc,
            int64_t sc, int64_t batch) {
  rl_counter.gemm_calls++;
  rl_counter.gemm_flops += (uint64_t)(2 * m * n * k * batch);
  if (m == 0 || n == 0 || batch == 0) return 0;
  return dev->be->gemm(dt, ct, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc,
                       sc, batch);
}

/* How a 3-D [B, r, c] tensor is passed to GEMM. */
typedef struct {
  bool trans;
  int64_t ld, bstride;
  const void *data;
} mat_arg;

static bool mat_desc(const rl_tensor *t, mat_arg *m) {
  int64_t r = t->size[1], c = t->size[2], s1 = t->stride[1], s2 = t->stride[2];
  int64_t rmin = r > 1 ? r : 1, cmin = c > 1 ? c : 1;
  m->bstride = t->size[0] == 1 ? 0 : t->stride[0];
  m->data = rl_data(t);
  /* rows with unit steps (a single column may step any way) */
  if (s2 == 1 || c == 1) {
    int64_t ld = r == 1 ? cmin : s1;
    if (ld >= cmin) {
      m->trans = false;
      m->ld = ld;
      return true;
    }
  }
  /* the transpose of such a matrix */
  if (s1 == 1 || r == 1) {
    int64_t ld = c == 1 ? rmin : s2;
    if (ld >= rmin) {
      m->trans = true;
      m->ld = ld;
      return true;
    }
  }
  return false;
}

/* out[B, m, n] (contiguous) = a[B, m, k] @ b[B, k, n] (+ beta * out). */
static int bmm_into(rl_tensor *out, rl_tensor *a, rl_tensor *b, double beta) {
  mat_arg ma, mb;
  rl_tensor *ac = NULL, *bc = NULL;
  if (!mat_desc(a, &ma)) {
    if (!(ac = rl_as_contig(a))) return -1;
    mat_desc(ac, &ma);
  }
  if (!mat_desc(b, &mb)) {
    if (!(bc = rl_as_contig(b))) {
      if (ac) rl_release(ac);
      return -1;
    }
    mat_desc(bc, &mb);
  }
  int64_t B = out->size[0], m = out->size[1], n = out->size[2], k = a->size[2];
  int rc;
  if (mb.bstride == 0 && ma.bstride != 0 && !ma.trans && ma.ld == k && B > 1 &&
      ma.bstride == m * k) {
    /* a shared right operand: fold the batch into the rows, one GEMM */
    rc = rl_gemm(rl_dev(out), out->dtype, out->dtype, false, mb.trans, B * m, n, k, 1.0, ma.data,
                 ma.ld, 0, mb.data, mb.ld, 0, beta, rl_data(out), n, 0, 1);
  } else {
    rc = rl_gemm(rl_dev(out), out->dtype, out->dtype, ma.trans, mb.trans, m, n, k, 1.0, ma.data,
                 ma.ld, ma.bstride, mb.data, mb.ld, mb.bstride, beta, rl_data(out), n, m * n, B);
  }
  if (ac) rl_release(ac);
  if (bc) rl_release(bc);
  return rc ? rl_err_prefix("matmul") : 0;
}

static rl_tensor *bmm(rl_tensor *a, rl_tensor *b);

static int bmm_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  rl_tensor *a = n->need[1] ? rl_node_saved(n, 0) : NULL;
  rl_tensor *b = n->need[0] ? rl_node_saved(n, 1) : NULL;
  int rc = 0;
  if (n->need[0]) { /* g @ b^T, summed over a broadcast batch */
    rl_tensor *bt = b ? rl_transpose(b, 1, 2) : NULL;
    rl_tensor *r = bt ? bmm(g, bt) : NULL;
    gin[0] = r ? rl_sum_to(r, 3, n->meta[0].size) : NULL;
    rl_release(bt);
    rl_release(r);
    if (!gin[0]) rc = -1;
  }
  if (n->need[1]) {
    rl_tensor *at = a ? rl_transpose(a, 1, 2) : NULL;
    rl_tensor *r = at ? bmm(at, g) : NULL;
    gin[1] = r ? rl_sum_to(r, 3, n->meta[1].size) : NULL;
    rl_release(at);
    rl_release(r);
    if (!gin[1]) rc = -1;
  }
  rl_release(a);
  rl_release(b);
  return rc;
}

/* [Ba, m, k] x [Bb, k, n] with Ba, Bb equal or 1. */
static rl_tensor *bmm(rl_tensor *a, rl_tensor *b) {
  int64_t B = a->size[0] > b->size[0] ? a->size[0] : b->size[0];
  int64_t size[3] = {B, a->size[1], b->size[2]};
  rl_tensor *out = rl_empty(3, size, a->dtype, rl_dev(a));
  if (!out) return NULL;
  if (a->size[2] == 0) {
    if (rl_fill_(out, 0)) goto fail;
  } else if (bmm_into(out, a, b, 0.0)) {
    goto fail;
  }
  rl_tensor *in[2] = {a, b};
  rl_node *n = rl_record("matmul", bmm_bwd, out, 2, in);
  if (n && (rl_node_save(n, a) || rl_node_save(n, b))) goto fail;
  return out;
fail:
  rl_release(out);
  return NULL;
}

/* Operands as [B..., r, c] with the batch flattened to one dim. */
static rl_tensor *as3(rl_tensor *t, int nbatch, const int64_t *bsize) {
  int64_t full[RL_MAX_DIMS];
  memcpy(full, bsize, sizeof(int64_t) * (size_t)nbatch);
  full[nbatch] = t->size[t->ndim - 2];
  full[nbatch + 1] = t->size[t->ndim - 1];
  int64_t B = 1;
  for (int i = 0; i < nbatch; i++) B *= bsize[i];
  /* an operand without a batch of its own stays a single shared matrix */
  bool own = false;
  for (int i = 0; i < t->ndim - 2; i++) own = own || t->size[i] != 1;
  int64_t s3[3] = {own ? B : 1, full[nbatch], full[nbatch + 1]};
  if (!own) return rl_reshape(t, 3, s3);
  rl_tensor *e = rl_expand(t, nbatch + 2, full);
  rl_tensor *r = e ? rl_reshape(e, 3, s3) : NULL;
  rl_release(e);
  return r;
}

/* u8 products are computed in i64. */
static rl_dtype matmul_dtype(rl_tensor *a, rl_tensor *b) {
  rl_dtype dt = rl_dtype_promote(a->dtype, b->dtype);
  return dt == RL_U8 ? RL_I64 : dt;
}

rl_tensor *rl_matmul(rl_tensor *a, rl_tensor *b) {
  if (!a || !b) return NULL;
  rl_tensor *ab[2] = {a, b};
  if (rl_check_same_device("matmul", 2, ab)) return NULL;
  if (a->ndim == 0 || b->ndim == 0) {
    rl_err("matmul: both arguments need at least 1 dim, got %s and %s", rl_shape_str(a),
           rl_shape_str(b));
    return NULL;
  }
  int64_t ka = a->size[a->ndim - 1], kb = b->size[b->ndim > 1 ? b->ndim - 2 : 0];
  if (ka != kb) {
    rl_err("matmul: sizes %s and %s do not match (%lld vs %lld in the contracted dim)",
           rl_shape_str(a), rl_shape_str(b), (long long)ka, (long long)kb);
    return NULL;
  }
  rl_dtype dt = matmul_dtype(a, b);
  rl_tensor *x = rl_as_dtype(a, dt), *y = x ? rl_as_dtype(b, dt) : NULL;
  rl_tensor *xa = NULL, *yb = NULL, *r3 = NULL, *out = NULL;
  if (!y) goto done;
  /* 1-D operands become matrices and lose that dim again at the end */
  xa = x->ndim == 1 ? rl_unsqueeze(x, 0) : (rl_retain(x), x);
  yb = xa && y->ndim == 1 ? rl_unsqueeze(y, 1) : (y->ndim == 1 ? NULL : (rl_retain(y), y));
  if (!xa || !yb) goto done;
  /* broadcast the batch dims */
  int na = xa->ndim - 2, nb = yb->ndim - 2, nbatch = na > nb ? na : nb;
  int64_t bsize[RL_MAX_DIMS];
  for (int i = 0; i < nbatch; i++) {
    int ia = i - (nbatch - na), ib = i - (nbatch - nb);
    int64_t sa = ia >= 0 ? xa->size[ia] : 1, sb = ib >= 0 ? yb->size[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      rl_err("matmul: batch dims of %s and %s do not broadcast", rl_shape_str(a),
             rl_shape_str(b));
      goto done;
    }
    bsize[i] = sa > sb ? sa : (sb > sa ? sb : sa);
  }
  rl_tensor *a3 = as3(xa, nbatch, bsize), *b3 = a3 ? as3(yb, nbatch, bsize) : NULL;
  r3 = b3 ? bmm(a3, b3) : NULL;
  if (a3) rl_release(a3);
  if (b3) rl_release(b3);
  if (!r3) goto done;
  int64_t osize[RL_MAX_DIMS];
  int ond = 0;
  for (int i = 0; i < nbatch; i++) osize[ond++] = bsize[i];
  if (a->ndim > 1) osize[ond++] = xa->size[xa->ndim - 2];
  if (b->ndim > 1) osize[ond++] = yb->size[yb->ndim - 1];
  out = rl_reshape(r3, ond, osize);
done:
  if (!out) rl_err_prefix("matmul");
  rl_tensor *tmp[5] = {x, y, xa, yb, r3};
  rl_release_all(5, tmp);
  return out;
}

rl_tensor *rl_dot(rl_tensor *a, rl_tensor *b) {
  if (a->ndim != 1 || b->ndim != 1 || a->size[0] != b->size[0]) {
    rl_err("dot: needs two 1-D tensors of one length, got %s and %s", rl_shape_str(a),
           rl_shape_str(b));
    return NULL;
  }
  return rl_matmul(a, b);
}

/* ---- linear -------------------------------------------------------------- */

static rl_tensor *linear2(rl_tensor *x, rl_tensor *w, rl_tensor *b);

static int linear_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  rl_tensor *x = n->need[1] ? rl_node_saved(n, 0) : NULL;
  rl_tensor *w = n->need[0] ? rl_node_saved(n, 1) : NULL;
  int rc = 0;
  if (n->need[0]) { /* gx = g @ w */
    gin[0] = w ? rl_matmul(g, w) : NULL;
    if (!gin[0]) rc = -1;
  }
  if (n->need[1]) { /* gw = g^T @ x */
    rl_tensor *gt = x ? rl_transpose(g, 0, 1) : NULL;
    gin[1] = gt ? rl_matmul(gt, x) : NULL;
    rl_release(gt);
    if (!gin[1]) rc = -1;
  }
  if (n->ninputs > 2 && n->need[2]) {
    int d0 = 0;
    gin[2] = rl_sum(g, 1, &d0, false);
    if (!gin[2]) rc = -1;
  }
  rl_release(x);
  rl_release(w);
  return rc;
}

/* x [N, in], w [out, in], b [out] or NULL: y = b + x w^T in one GEMM. */
static rl_tensor *linear2(rl_tensor *x, rl_tensor *w, rl_tensor *b) {
  int64_t size[2] = {x->size[0], w->size[0]};
  rl_tensor *out = rl_empty(2, size, x->dtype, rl_dev(x));
  if (!out) return NULL;
  int rc = b ? rl_copy_(out, b) : 0;
  if (rc == 0 && x->size[1] == 0 && !b) rc = rl_fill_(out, 0);
  if (rc == 0 && x->size[1] > 0) {
    rl_tensor *x3 = rl_unsqueeze(x, 0), *wt = rl_transpose(w, 0, 1);
    rl_tensor *w3 = wt ? rl_unsqueeze(wt, 0) : NULL, *o3 = rl_unsqueeze(out, 0);
    bool prev = rl_set_grad_enabled(false);
    rc = x3 && w3 && o3 ? bmm_into(o3, x3, w3, b ? 1.0 : 0.0) : -1;
    rl_set_grad_enabled(prev);
    rl_tensor *tmp[4] = {x3, wt, w3, o3};
    rl_release_all(4, tmp);
  }
  if (rc) {
    rl_release(out);
    return NULL;
  }
  rl_tensor *in[3] = {x, w, b};
  rl_node *n = rl_record("linear", linear_bwd, out, b ? 3 : 2, in);
  if (n && (rl_node_save(n, x) || rl_node_save(n, w))) {
    rl_release(out);
    return NULL;
  }
  return out;
}

rl_tensor *rl_linear(rl_tensor *x, rl_tensor *w, rl_tensor *b) {
  if (!x || !w) return NULL;
  rl_tensor *ts[3] = {x, w, b};
  if (rl_check_same_device("linear", b ? 3 : 2, ts)) return NULL;
  if (w->ndim != 2 || x->ndim < 1 || x->size[x->ndim - 1] != w->size[1]) {
    rl_err("linear: input %s does not match weight %s (need [..., %lld])", rl_shape_str(x),
           rl_shape_str(w), (long long)(w->ndim == 2 ? w->size[1] : -1));
    return NULL;
  }
  if (b && (b->ndim != 1 || b->size[0] != w->size[0])) {
    rl_err("linear: bias %s does not match weight %s (need [%lld])", rl_shape_str(b),
           rl_shape_str(w), (long long)w->size[0]);
    return NULL;
  }
  /* bf16 too (rl.autocast's linear: f32 sums, rounded once) */
  bool bf16_ok = x->dtype == RL_BF16;
  if (!bf16_ok && rl_dtype_is_half(x->dtype) && x->dtype == w->dtype) {
    rl_check_float("linear", x); /* f16 */
    return NULL;
  }
  if (!(rl_dtype_is_float(x->dtype) || bf16_ok) || x->dtype != w->dtype ||
      (b && b->dtype != x->dtype)) {
    rl_err("linear: input, weight and bias need one float dtype, got %s, %s%s%s",
           rl_dtype_name(x->dtype), rl_dtype_name(w->dtype), b ? ", " : "",
           b ? rl_dtype_name(b->dtype) : "");
    return NULL;
  }
  int64_t rows[2] = {-1, x->size[x->ndim - 1]};
  rl_tensor *x2 = rl_reshape(x, 2, rows);
  rl_tensor *y2 = x2 ? linear2(x2, w, b) : NULL;
  rl_release(x2);
  if (!y2 || x->ndim == 2) return y2;
  int64_t osize[RL_MAX_DIMS];
  memcpy(osize, x->size, sizeof(int64_t) * (size_t)x->ndim);
  osize[x->ndim - 1] = w->size[0];
  rl_tensor *y = rl_reshape(y2, x->ndim, osize);
  rl_release(y2);
  return y;
}
