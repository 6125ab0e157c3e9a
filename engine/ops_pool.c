/* ops_pool.c - 2-D pooling on NCHW tensors, forward and backward (the
 * window geometry, shared with convolution, is in window.c). */
#include "internal.h"

static int pool_geom(const char *op, const rl_tensor *x, const int64_t *kernel,
                     const int64_t *stride, const int64_t *padding, int64_t *g) {
  /* max pooling takes bf16 too (a selection: exact in any dtype) */
  bool bf16_ok = x->dtype == RL_BF16 && x->ndim == 4 && strcmp(op, "max_pool2d") == 0;
  if (!bf16_ok && rl_check_nchw(op, x)) return -1;
  int64_t s[2] = {stride ? stride[0] : kernel[0], stride ? stride[1] : kernel[1]};
  int64_t p[2] = {padding ? padding[0] : 0, padding ? padding[1] : 0};
  int64_t d[2] = {1, 1};
  for (int i = 0; i < 2; i++) {
    if (kernel[i] < 1)
      return rl_err("%s: kernel size must be >= 1, got %lld", op, (long long)kernel[i]);
    if (p[i] > kernel[i] / 2) /* not p * 2: p may be near 2^63 */
      return rl_err("%s: padding %lld must be at most half the kernel size %lld", op,
                    (long long)p[i], (long long)kernel[i]);
  }
  return rl_conv_geom(op, x, kernel[0], kernel[1], s, p, d, g);
}

/* The gradient of max pooling: dy added at each window's maximum.  bf16
 * adds in f32 (overlapping windows add more than one value) and rounds
 * once, as the path through f32 copies would. */
static int maxpool_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *m = &n->meta[0];
  int64_t geom[G_N];
  for (int i = 0; i < G_N; i++) geom[i] = n->ip[i];
  bool bf16 = m->dtype == RL_BF16;
  rl_dtype dt = bf16 ? RL_F32 : m->dtype;
  rl_tensor *idx = rl_node_saved(n, 0), *gf = idx ? rl_in_f32(g) : NULL;
  rl_tensor *gc = gf ? rl_as_contig(gf) : NULL;
  rl_release(gf);
  rl_tensor *dx = gc ? rl_empty(m->ndim, m->size, dt, m->dev) : NULL;
  int rc = dx ? m->dev->be->maxpool2d_bwd(dt, rl_data(gc), rl_data(idx),
                                          m->size[0] * m->size[1], m->size[2], m->size[3],
                                          geom, rl_data(dx))
              : -1;
  if (rc == 0 && bf16 && !(dx = rl_out_half(dx, RL_BF16))) rc = -1;
  rl_tensor *tmp[2] = {idx, gc};
  return rl_grad_one(gin, dx, rc, 2, tmp);
}

rl_tensor *rl_max_pool2d(rl_tensor *x, const int64_t *kernel, const int64_t *stride,
                         const int64_t *padding) {
  int64_t geom[G_N];
  if (pool_geom("max_pool2d", x, kernel, stride, padding, geom)) return NULL;
  int64_t osize[4] = {x->size[0], x->size[1], geom[G_OH], geom[G_OW]};
  rl_tensor *out = rl_empty(4, osize, x->dtype, rl_dev(x));
  rl_tensor *idx = out ? rl_empty(4, osize, RL_I64, rl_dev(x)) : NULL;
  rl_tensor *xc = idx ? rl_as_contig(x) : NULL;
  if (!xc || RL_BE(x)->maxpool2d(x->dtype, rl_data(xc), x->size[0] * x->size[1], x->size[2],
                                 x->size[3], geom, rl_data(out), rl_data(idx))) {
    rl_err_prefix("max_pool2d");
    rl_tensor *tmp[3] = {out, idx, xc};
    rl_release_all(3, tmp);
    return NULL;
  }
  rl_release(xc);
  rl_node *n = rl_record("max_pool2d", maxpool_bwd, out, 1, &x);
  if (n) {
    for (int i = 0; i < G_N; i++) n->ip[i] = geom[i];
    if (rl_node_save(n, idx)) {
      rl_release(out);
      out = NULL;
    }
  }
  rl_release(idx);
  return out;
}

static int avgpool_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *m = &n->meta[0];
  int64_t geom[G_N];
  for (int i = 0; i < G_N; i++) geom[i] = n->ip[i];
  rl_tensor *gc = rl_as_contig(g);
  rl_tensor *dx = gc ? rl_empty(m->ndim, m->size, m->dtype, m->dev) : NULL;
  int rc = dx ? m->dev->be->avgpool2d_bwd(m->dtype, rl_data(gc), m->size[0] * m->size[1],
                                          m->size[2], m->size[3], geom, n->ip[G_N] != 0,
                                          rl_data(dx))
              : -1;
  return rl_grad_one(gin, dx, rc, 1, &gc);
}

rl_tensor *rl_avg_pool2d(rl_tensor *x, const int64_t *kernel, const int64_t *stride,
                         const int64_t *padding, bool count_include_pad) {
  int64_t geom[G_N];
  if (pool_geom("avg_pool2d", x, kernel, stride, padding, geom)) return NULL;
  int64_t osize[4] = {x->size[0], x->size[1], geom[G_OH], geom[G_OW]};
  rl_tensor *out = rl_empty(4, osize, x->dtype, rl_dev(x));
  rl_tensor *xc = out ? rl_as_contig(x) : NULL;
  if (!xc || RL_BE(x)->avgpool2d(x->dtype, rl_data(xc), x->size[0] * x->size[1], x->size[2],
                                 x->size[3], geom, count_include_pad, rl_data(out))) {
    rl_err_prefix("avg_pool2d");
    if (out) rl_release(out);
    if (xc) rl_release(xc);
    return NULL;
  }
  rl_release(xc);
  rl_node *n = rl_record("avg_pool2d", avgpool_bwd, out, 1, &x);
  if (n) {
    for (int i = 0; i < G_N; i++) n->ip[i] = geom[i];
    n->ip[G_N] = count_include_pad;
  }
  return out;
}

rl_tensor *rl_adaptive_avg_pool2d_1(rl_tensor *x) {
  if (rl_check_nchw("adaptive_avg_pool2d", x)) return NULL;
  int dims[2] = {2, 3};
  return rl_mean(x, 2, dims, true);
}
