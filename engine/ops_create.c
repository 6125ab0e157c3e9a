/* ops_create.c - creation, copies, dtype and device conversion. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- fill and creation ------------------------------------------------- */

static int fill_raw(rl_tensor *t, double v) {
  rl_iter it;
  rl_iter_build(&it, 1, &t);
  if (it.numel == 0) return 0;
  return RL_BE(t)->fill(&it, v);
}

int rl_fill_(rl_tensor *t, double v) {
  if (rl_check_inplace("fill_", t, NULL)) return -1;
  if (fill_raw(t, v)) return rl_err_prefix("fill_");
  rl_bump_version(t);
  return 0;
}

int rl_zero_(rl_tensor *t) { return rl_fill_(t, 0); }

rl_tensor *rl_full(int ndim, const int64_t *size, double v, rl_dtype dt,
                   const rl_device *dev) {
  rl_tensor *t = rl_empty(ndim, size, dt, dev);
  if (t && fill_raw(t, v)) {
    rl_release(t);
    return NULL;
  }
  return t;
}

rl_tensor *rl_zeros(int ndim, const int64_t *size, rl_dtype dt, const rl_device *dev) {
  return rl_full(ndim, size, 0, dt, dev);
}

rl_tensor *rl_ones(int ndim, const int64_t *size, rl_dtype dt, const rl_device *dev) {
  return rl_full(ndim, size, 1, dt, dev);
}

rl_tensor *rl_scalar(double v, rl_dtype dt, const rl_device *dev) {
  return rl_full(0, NULL, v, dt, dev);
}

rl_tensor *rl_from_host(int ndim, const int64_t *size, rl_dtype dt, const void *host,
                        const rl_device *dev) {
  rl_tensor *t = rl_empty(ndim, size, dt, dev);
  if (!t) return NULL;
  size_t nb = rl_nbytes(t);
  if (nb == 0) return t;
  if (dev->type == RL_CPU) {
    memcpy(rl_data(t), host, nb);
  } else if (dev->be->from_host(dev, rl_data(t), host, nb)) {
    rl_release(t);
    return NULL;
  }
  return t;
}

/* Values computed on the host, then moved where they belong. */
static rl_tensor *from_doubles(int64_t n, const double *v, rl_dtype dt,
                               const rl_device *dev) {
  rl_tensor *h = rl_from_host(1, &n, RL_F64, v, rl_cpu());
  if (!h) return NULL;
  rl_tensor *t = rl_empty(1, &n, dt, dev);
  if (t && rl_copy_(t, h)) {
    rl_release(t);
    t = NULL;
  }
  rl_release(h);
  return t;
}

rl_tensor *rl_arange(double start, double end, double step, rl_dtype dt,
                     const rl_device *dev) {
  if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
    rl_err("arange: step must be non-zero and bounds finite (start %g, end %g, step %g)",
           start, end, step);
    return NULL;
  }
  double len = ceil((end - start) / step);
  if (len < 0) len = 0;
  if (len > 1e10) {
    rl_err("arange: %.0f elements is too many", len);
    return NULL;
  }
  int64_t n = (int64_t)len;
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (!v) {
    rl_err("arange: out of memory");
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) v[i] = start + (double)i * step;
  rl_tensor *t = from_doubles(n, v, dt, dev);
  free(v);
  return t;
}

rl_tensor *rl_linspace(double start, double end, int64_t n, rl_dtype dt,
                       const rl_device *dev) {
  if (n < 0) {
    rl_err("linspace: number of steps must be non-negative, got %lld", (long long)n);
    return NULL;
  }
  if (rl_check_sizes("linspace", 1, &n)) return NULL; /* before n doubles are allocated */
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (!v) {
    rl_err("linspace: out of memory");
    return NULL;
  }
  double step = n > 1 ? (end - start) / (double)(n - 1) : 0;
  /* symmetric, as PyTorch: the second half counts back from the end; one
   * step is the start, as in PyTorch and NumPy */
  for (int64_t i = 0; i < n; i++)
    v[i] = i < n / 2 || n == 1 ? start + step * (double)i : end - step * (double)(n - 1 - i);
  rl_tensor *t = from_doubles(n, v, dt, dev);
  free(v);
  return t;
}

rl_tensor *rl_eye(int64_t n, int64_t m, rl_dtype dt, const rl_device *dev) {
  int64_t size[2] = {n, m};
  rl_tensor *t = rl_zeros(2, size, dt, dev);
  if (!t) return NULL;
  /* the diagonal is a strided view with stride m + 1 */
  int64_t k = n < m ? n : m, st = m + 1;
  rl_tensor *d = rl_view_of(t->st, dt, 1, &k, &st, 0);
  if (!d || fill_raw(d, 1)) {
    rl_release(d);
    rl_release(t);
    return NULL;
  }
  rl_release(d);
  return t;
}

/* ---- copies ------------------------------------------------------------ */

/* A contiguous copy of t on its device (retained t when already). */
rl_tensor *rl_as_contig(rl_tensor *t) {
  if (rl_is_contiguous(t)) {
    rl_retain(t);
    return t;
  }
  rl_tensor *c = rl_empty_like(t);
  if (c && rl_copy_(c, t)) {
    rl_release(c);
    return NULL;
  }
  return c;
}

static int copy_same_device(rl_tensor *dst, const rl_tensor *src) {
  rl_tensor *args[2] = {dst, (rl_tensor *)src};
  rl_iter it;
  rl_iter_build(&it, 2, args);
  if (it.numel == 0) return 0;
  return RL_BE(dst)->copy(&it);
}

int rl_copy_(rl_tensor *dst, const rl_tensor *src) {
  int nd;
  int64_t size[RL_MAX_DIMS];
  rl_tensor *pair[2] = {dst, (rl_tensor *)src};
  if (rl_broadcast_shape("copy_", 2, pair, &nd, size)) return -1;
  if (nd != dst->ndim || memcmp(size, dst->size, sizeof(int64_t) * (size_t)nd))
    return rl_err("copy_: source of size %s does not broadcast to destination size %s",
                  rl_shape_str(src), rl_shape_str(dst));
  if (rl_dev(dst) == rl_dev(src)) {
    if (copy_same_device(dst, src)) return rl_err_prefix("copy_");
    rl_bump_version(dst);
    return 0;
  }
  /* Across devices: make the source contiguous where it lives, move the
   * bytes, then convert/broadcast on the destination device. */
  int rc = -1;
  rl_tensor *c = rl_as_contig((rl_tensor *)src), *moved = NULL;
  if (!c) return -1;
  moved = rl_empty(c->ndim, c->size, c->dtype, rl_dev(dst));
  if (!moved) goto out;
  size_t nb = rl_nbytes(c);
  if (nb) {
    if (rl_dev(c)->type == RL_CPU) {
      if (rl_dev(moved)->be->from_host(rl_dev(moved), rl_data(moved), rl_data(c), nb)) goto out;
    } else if (rl_dev(moved)->type == RL_CPU) {
      if (rl_dev(c)->be->to_host(rl_dev(c), rl_data(moved), rl_data(c), nb)) goto out;
    } else {
      /* device to device through the host */
      void *h = malloc(nb);
      if (!h) {
        rl_err("copy_: out of memory staging %zu bytes", nb);
        goto out;
      }
      int e = rl_dev(c)->be->to_host(rl_dev(c), h, rl_data(c), nb) ||
              rl_dev(moved)->be->from_host(rl_dev(moved), rl_data(moved), h, nb);
      free(h);
      if (e) goto out;
    }
  }
  if (copy_same_device(dst, moved)) goto out;
  rl_bump_version(dst);
  rc = 0;
out:
  rl_release(c);
  rl_release(moved);
  return rc ? rl_err_prefix("copy_") : 0;
}

int rl_to_host(const rl_tensor *t, void *host) {
  rl_tensor *c = rl_as_contig((rl_tensor *)t);
  if (!c) return -1;
  size_t nb = rl_nbytes(c);
  int rc = 0;
  if (nb) {
    if (rl_dev(c)->type == RL_CPU) memcpy(host, rl_data(c), nb);
    else rc = rl_dev(c)->be->to_host(rl_dev(c), host, rl_data(c), nb);
  }
  rl_release(c);
  return rc;
}

int rl_item(const rl_tensor *t, double *v) {
  if (rl_numel(t) != 1)
    return rl_err("item: only a tensor with one element converts to a number; this one "
                  "has size %s",
                  rl_shape_str(t));
  char buf[8];
  if (rl_to_host(t, buf)) return -1;
  switch (t->dtype) {
  case RL_F32: *v = *(float *)buf; break;
  case RL_F64: *v = *(double *)buf; break;
  case RL_I64: *v = (double)*(int64_t *)buf; break;
  case RL_U8: *v = *(uint8_t *)buf; break;
  case RL_BF16: *v = rl_f32_of_bf16(*(uint16_t *)buf); break;
  case RL_F16: *v = rl_f32_of_f16(*(uint16_t *)buf); break;
  default: return rl_err("item: bad dtype");
  }
  return 0;
}

/* ---- differentiable copies ---------------------------------------------- */

static int identity_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  (void)n;
  rl_retain(g);
  gin[0] = g;
  return 0;
}

static int to_dtype_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  gin[0] = rl_to_dtype(g, n->meta[0].dtype);
  return gin[0] ? 0 : -1;
}

static int to_device_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  gin[0] = rl_to_device(g, n->meta[0].dev);
  return gin[0] ? 0 : -1;
}

/* A copy of t with dtype dt on dev, recorded with backward fn `bwd`. */
static rl_tensor *copy_as(const char *name, rl_tensor *t, rl_dtype dt, const rl_device *dev,
                          rl_backward_fn bwd) {
  rl_tensor *o = rl_empty(t->ndim, t->size, dt, dev);
  if (!o) return NULL;
  if (rl_copy_(o, t)) {
    rl_release(o);
    return NULL;
  }
  o->st->version = 0;
  bool diff = rl_dtype_is_floating(t->dtype) && rl_dtype_is_floating(dt);
  if (diff) rl_record(name, bwd, o, 1, &t);
  return o;
}

rl_tensor *rl_clone(rl_tensor *t) { return copy_as("clone", t, t->dtype, rl_dev(t), identity_bwd); }

rl_tensor *rl_contiguous(rl_tensor *t) {
  if (rl_is_contiguous(t)) {
    rl_retain(t);
    return t;
  }
  return copy_as("contiguous", t, t->dtype, rl_dev(t), identity_bwd);
}

rl_tensor *rl_to_dtype(rl_tensor *t, rl_dtype dt) {
  if (t->dtype == dt) {
    rl_retain(t);
    return t;
  }
  return copy_as("to_dtype", t, dt, rl_dev(t), to_dtype_bwd);
}

rl_tensor *rl_as_dtype(rl_tensor *t, rl_dtype dt) { return rl_to_dtype(t, dt); }

rl_tensor *rl_to_device(rl_tensor *t, const rl_device *dev) {
  if (rl_dev(t) == dev) {
    rl_retain(t);
    return t;
  }
  return copy_as("to_device", t, t->dtype, dev, to_device_bwd);
}

rl_tensor *rl_detach(const rl_tensor *t) { return rl_alias(t); }
