/* ops_view.c - views that share storage, and their backward rules. */
#include <string.h>

#include "internal.h"

static rl_tensor *make_view(rl_tensor *t, int ndim, const int64_t *size,
                            const int64_t *stride, int64_t offset) {
  return rl_view_of(t->st, t->dtype, ndim, size, stride, offset);
}

/* ---- backward rules ---------------------------------------------------- */

static int reshape_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  gin[0] = rl_reshape(g, n->meta[0].ndim, n->meta[0].size);
  return gin[0] ? 0 : -1;
}

static int transpose_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  gin[0] = rl_transpose(g, (int)n->ip[0], (int)n->ip[1]);
  return gin[0] ? 0 : -1;
}

static int permute_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  int inv[RL_MAX_DIMS];
  for (int i = 0; i < n->meta[0].ndim; i++) inv[n->ip[i]] = i;
  gin[0] = rl_permute(g, inv);
  return gin[0] ? 0 : -1;
}

/* narrow and select: the gradient lands in a zero tensor of the input's
 * shape at the same place */
static int slice_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  rl_tensor *z = rl_zeros_meta(&n->meta[0]);
  if (!z) return -1;
  rl_tensor *part = n->ip[3] ? rl_select(z, (int)n->ip[0], n->ip[1])
                             : rl_narrow(z, (int)n->ip[0], n->ip[1], n->ip[2]);
  int rc = part ? rl_copy_(part, g) : -1;
  rl_release(part);
  if (rc) {
    rl_release(z);
    return -1;
  }
  gin[0] = z;
  return 0;
}

static int expand_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  gin[0] = rl_sum_to(g, n->meta[0].ndim, n->meta[0].size);
  return gin[0] ? 0 : -1;
}

static rl_tensor *finish(rl_tensor *v, rl_tensor *t, const char *name, rl_backward_fn fn) {
  if (!v) return NULL;
  rl_node *n = rl_record(name, fn, v, 1, &t);
  (void)n;
  return v;
}

/* ---- view / reshape ---------------------------------------------------- */

/* Infer one -1 and check the element count. */
static int resolve_size(const char *op, const rl_tensor *t, int ndim, const int64_t *in,
                        int64_t *out) {
  if (ndim < 0 || ndim > RL_MAX_DIMS)
    return rl_err("%s: a tensor has at most %d dims, got %d", op, RL_MAX_DIMS, ndim);
  int infer = -1;
  int64_t known = 1, numel = rl_numel(t);
  for (int i = 0; i < ndim; i++) {
    out[i] = in[i];
    if (in[i] == -1) {
      if (infer >= 0) return rl_err("%s: only one dimension can be -1", op);
      infer = i;
    } else if (in[i] < 0) {
      return rl_err("%s: invalid size %lld in dim %d", op, (long long)in[i], i + 1);
    } else if (__builtin_mul_overflow(known, in[i], &known)) {
      /* said as it is: the wrapped product would make a misleading count */
      return rl_err("%s: shape %s is invalid: its sizes multiply past 2^63 (input size %s)",
                    op, rl_sizes_str(ndim, in), rl_shape_str(t));
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known)
      return rl_err("%s: shape %s is invalid for a tensor of %lld elements (size %s)", op,
                    rl_sizes_str(ndim, in), (long long)numel, rl_shape_str(t));
    out[infer] = numel / known;
  } else if (known != numel) {
    return rl_err("%s: shape %s is invalid for a tensor of %lld elements (size %s)", op,
                  rl_sizes_str(ndim, in), (long long)numel, rl_shape_str(t));
  }
  return 0;
}

/* Strides for viewing (osz, ost) as nsz without copying, if possible: each
 * run of old dims that is contiguous in memory may be re-split freely. */
static bool view_strides(int ond, const int64_t *osz, const int64_t *ost, int nnd,
                         const int64_t *nsz, int64_t *nst) {
  int64_t numel = 1;
  for (int i = 0; i < ond; i++) numel *= osz[i];
  if (numel == 0 || ond == 0) {
    rl_contiguous_strides(nnd, nsz, nst);
    return true;
  }
  int vd = nnd - 1;
  int64_t base = ost[ond - 1], tnum = 1, vnum = 1;
  for (int td = ond - 1; td >= 0; td--) {
    tnum *= osz[td];
    bool chunk_end = td == 0 || (osz[td - 1] != 1 && ost[td - 1] != tnum * base);
    if (!chunk_end) continue;
    while (vd >= 0 && (vnum < tnum || nsz[vd] == 1)) {
      nst[vd] = vnum * base;
      vnum *= nsz[vd];
      vd--;
    }
    if (vnum != tnum) return false;
    if (td > 0) {
      base = ost[td - 1];
      tnum = vnum = 1;
    }
  }
  return vd == -1;
}

rl_tensor *rl_view(rl_tensor *t, int ndim, const int64_t *size) {
  int64_t sz[RL_MAX_DIMS], st[RL_MAX_DIMS];
  if (resolve_size("view", t, ndim, size, sz)) return NULL;
  if (!view_strides(t->ndim, t->size, t->stride, ndim, sz, st)) {
    rl_err("view: size %s is not compatible with the strides of the input (size %s, not "
           "contiguous); use reshape, or contiguous() first",
           rl_sizes_str(ndim, sz), rl_shape_str(t));
    return NULL;
  }
  return finish(make_view(t, ndim, sz, st, t->offset), t, "view", reshape_bwd);
}

rl_tensor *rl_reshape(rl_tensor *t, int ndim, const int64_t *size) {
  int64_t sz[RL_MAX_DIMS], st[RL_MAX_DIMS];
  if (resolve_size("reshape", t, ndim, size, sz)) return NULL;
  if (view_strides(t->ndim, t->size, t->stride, ndim, sz, st))
    return finish(make_view(t, ndim, sz, st, t->offset), t, "reshape", reshape_bwd);
  rl_tensor *c = rl_contiguous(t);
  if (!c) return NULL;
  rl_tensor *v = rl_view(c, ndim, sz);
  rl_release(c);
  return v;
}

rl_tensor *rl_flatten(rl_tensor *t, int start, int end) {
  if (t->ndim == 0) return rl_reshape(t, 1, (int64_t[]){1});
  if ((start = rl_wrap_dim("flatten", start, t->ndim)) < 0) return NULL;
  if ((end = rl_wrap_dim("flatten", end, t->ndim)) < 0) return NULL;
  if (start > end) {
    rl_err("flatten: start dim %d comes after end dim %d", start + 1, end + 1);
    return NULL;
  }
  int64_t sz[RL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < start; i++) sz[nd++] = t->size[i];
  int64_t m = 1;
  for (int i = start; i <= end; i++) m *= t->size[i];
  sz[nd++] = m;
  for (int i = end + 1; i < t->ndim; i++) sz[nd++] = t->size[i];
  return rl_reshape(t, nd, sz);
}

/* ---- transpose / permute ----------------------------------------------- */

rl_tensor *rl_transpose(rl_tensor *t, int d0, int d1) {
  if ((d0 = rl_wrap_dim("transpose", d0, t->ndim)) < 0) return NULL;
  if ((d1 = rl_wrap_dim("transpose", d1, t->ndim)) < 0) return NULL;
  int64_t sz[RL_MAX_DIMS], st[RL_MAX_DIMS];
  memcpy(sz, t->size, sizeof sz);
  memcpy(st, t->stride, sizeof st);
  if (t->ndim > 0) {
    sz[d0] = t->size[d1];
    sz[d1] = t->size[d0];
    st[d0] = t->stride[d1];
    st[d1] = t->stride[d0];
  }
  rl_tensor *v = make_view(t, t->ndim, sz, st, t->offset);
  if (!v) return NULL;
  rl_node *n = rl_record("transpose", transpose_bwd, v, 1, &t);
  if (n) {
    n->ip[0] = d0;
    n->ip[1] = d1;
  }
  return v;
}

rl_tensor *rl_permute(rl_tensor *t, const int *perm) {
  int64_t sz[RL_MAX_DIMS], st[RL_MAX_DIMS];
  bool seen[RL_MAX_DIMS] = {0};
  int p[RL_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++) {
    int d = rl_wrap_dim("permute", perm[i], t->ndim);
    if (d < 0) return NULL;
    if (seen[d]) {
      rl_err("permute: dim %d appears twice", d + 1);
      return NULL;
    }
    seen[d] = true;
    p[i] = d;
    sz[i] = t->size[d];
    st[i] = t->stride[d];
  }
  rl_tensor *v = make_view(t, t->ndim, sz, st, t->offset);
  if (!v) return NULL;
  rl_node *n = rl_record("permute", permute_bwd, v, 1, &t);
  if (n)
    for (int i = 0; i < t->ndim; i++) n->ip[i] = p[i];
  return v;
}

/* ---- narrow / select --------------------------------------------------- */

rl_tensor *rl_narrow(rl_tensor *t, int dim, int64_t start, int64_t len) {
  if (t->ndim == 0) {
    rl_err("narrow: cannot narrow a 0-dim tensor");
    return NULL;
  }
  if ((dim = rl_wrap_dim("narrow", dim, t->ndim)) < 0) return NULL;
  if (start < 0) start += t->size[dim];
  if (start < 0 || len < 0 || len > t->size[dim] - start) { /* start + len may overflow */
    rl_err("narrow: start %lld and length %lld are out of range for dim %d of size %lld "
           "(tensor size %s)",
           (long long)start + 1, (long long)len, dim + 1, (long long)t->size[dim],
           rl_shape_str(t));
    return NULL;
  }
  int64_t sz[RL_MAX_DIMS];
  memcpy(sz, t->size, sizeof sz);
  sz[dim] = len;
  rl_tensor *v = make_view(t, t->ndim, sz, t->stride, t->offset + start * t->stride[dim]);
  if (!v) return NULL;
  rl_node *n = rl_record("narrow", slice_bwd, v, 1, &t);
  if (n) {
    n->ip[0] = dim;
    n->ip[1] = start;
    n->ip[2] = len;
    n->ip[3] = 0;
  }
  return v;
}

rl_tensor *rl_select(rl_tensor *t, int dim, int64_t index) {
  if (t->ndim == 0) {
    rl_err("select: cannot index a 0-dim tensor");
    return NULL;
  }
  if ((dim = rl_wrap_dim("select", dim, t->ndim)) < 0) return NULL;
  int64_t n0 = t->size[dim];
  if (index < 0) index += n0;
  if (index < 0 || index >= n0) {
    rl_err("select: index %lld is out of range for dim %d of size %lld (tensor size %s)",
           (long long)(index >= 0 ? index + 1 : index - n0), dim + 1, (long long)n0,
           rl_shape_str(t));
    return NULL;
  }
  int64_t sz[RL_MAX_DIMS], st[RL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i != dim) {
      sz[nd] = t->size[i];
      st[nd++] = t->stride[i];
    }
  rl_tensor *v = make_view(t, nd, sz, st, t->offset + index * t->stride[dim]);
  if (!v) return NULL;
  rl_node *n = rl_record("select", slice_bwd, v, 1, &t);
  if (n) {
    n->ip[0] = dim;
    n->ip[1] = index;
    n->ip[3] = 1;
  }
  return v;
}

/* ---- unsqueeze / squeeze / expand -------------------------------------- */

rl_tensor *rl_unsqueeze(rl_tensor *t, int dim) {
  if (t->ndim >= RL_MAX_DIMS) {
    rl_err("unsqueeze: a tensor has at most %d dims", RL_MAX_DIMS);
    return NULL;
  }
  if ((dim = rl_wrap_dim("unsqueeze", dim, t->ndim + 1)) < 0) return NULL;
  int64_t sz[RL_MAX_DIMS], st[RL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i <= t->ndim; i++) {
    if (i == dim) {
      sz[nd] = 1;
      st[nd++] = i < t->ndim ? t->stride[i] * t->size[i] : 1;
    }
    if (i < t->ndim) {
      sz[nd] = t->size[i];
      st[nd++] = t->stride[i];
    }
  }
  return finish(make_view(t, nd, sz, st, t->offset), t, "unsqueeze", reshape_bwd);
}

rl_tensor *rl_squeeze(rl_tensor *t, int dim) {
  bool all = dim == INT32_MIN;
  if (!all && t->ndim > 0 && (dim = rl_wrap_dim("squeeze", dim, t->ndim)) < 0) return NULL;
  int64_t sz[RL_MAX_DIMS], st[RL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (t->size[i] == 1 && (all || i == dim)) continue;
    sz[nd] = t->size[i];
    st[nd++] = t->stride[i];
  }
  return finish(make_view(t, nd, sz, st, t->offset), t, "squeeze", reshape_bwd);
}

rl_tensor *rl_expand(rl_tensor *t, int ndim, const int64_t *size) {
  if (ndim < t->ndim || ndim > RL_MAX_DIMS) {
    rl_err("expand: cannot expand size %s to %s (fewer dims)", rl_shape_str(t),
           rl_sizes_str(ndim, size));
    return NULL;
  }
  int64_t sz[RL_MAX_DIMS], st[RL_MAX_DIMS];
  int off = ndim - t->ndim;
  for (int i = 0; i < ndim; i++) {
    int ti = i - off;
    int64_t want = size[i];
    if (ti < 0) {
      if (want < 0) {
        rl_err("expand: -1 is not allowed in a new leading dim %d", i + 1);
        return NULL;
      }
      sz[i] = want;
      st[i] = 0;
      continue;
    }
    int64_t have = t->size[ti];
    if (want == -1) want = have;
    if (have == want) {
      sz[i] = have;
      st[i] = t->stride[ti];
    } else if (have == 1) {
      sz[i] = want;
      st[i] = 0;
    } else {
      rl_err("expand: size %s cannot be expanded to %s (dim %d: %lld is not 1)",
             rl_shape_str(t), rl_sizes_str(ndim, size), i + 1, (long long)have);
      return NULL;
    }
  }
  return finish(make_view(t, ndim, sz, st, t->offset), t, "expand", expand_bwd);
}

rl_tensor *rl_sum_to(rl_tensor *t, int ndim, const int64_t *size) {
  int off = t->ndim - ndim;
  if (off < 0) {
    rl_err("sum_to: size %s has fewer dims than target %s", rl_shape_str(t),
           rl_sizes_str(ndim, size));
    return NULL;
  }
  int dims[RL_MAX_DIMS], nd = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i < off || (size[i - off] == 1 && t->size[i] != 1)) dims[nd++] = i;
  if (nd == 0) {
    if (t->ndim == ndim) {
      rl_retain(t);
      return t;
    }
    return rl_reshape(t, ndim, size);
  }
  rl_tensor *s = rl_sum(t, nd, dims, true);
  if (!s) return NULL;
  rl_tensor *r = rl_reshape(s, ndim, size);
  rl_release(s);
  return r;
}
