/* ops_conv.c - 2-D convolution on NCHW tensors, forward and backward: the
 * shape checks, the outputs and autograd.  The arithmetic is the backend's
 * (its conv2d and conv2d_bwd entries): the CPU's own kernels
 * (engine/cpu/cpu_conv.c), CUDA's composition of GEMMs (engine/conv_gemm.c).
 * f32, f64 and bf16 (the dtype rl.autocast gives convolutions) on both:
 * bf16 by oneDNN or the f32 kernels on widened operands on the CPU, by the
 * composition's bf16 GEMMs summing in f32 on CUDA.
 * Only a convolution with nothing to multiply (an empty batch, no output
 * channels or pixels, no input channels) is done here. */
#include "internal.h"

/* The GEMMs a convolution forms, for the op counter: a backend that forms
 * them without rl_gemm (the CPU's kernels) is counted one GEMM per product
 * (y, dx, dW), of the size the im2col formulation has. */
static void count_conv_products(uint64_t calls_before, int products, int64_t N, int64_t O,
                                int64_t K, int64_t ohw) {
  if (rl_counter.gemm_calls != calls_before) return; /* counted by rl_gemm */
  rl_counter.gemm_calls += (uint64_t)products;
  rl_counter.gemm_flops += (uint64_t)products * (uint64_t)(2 * N * O * K * ohw);
}

static int conv2d_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *mx = &n->meta[0], *mw = &n->meta[1];
  int64_t geom[G_N];
  for (int i = 0; i < G_N; i++) geom[i] = n->ip[i];
  int64_t N = mx->size[0], C = mx->size[1];
  int64_t O = mw->size[0], K = C * geom[G_KH] * geom[G_KW], ohw = geom[G_OH] * geom[G_OW];
  rl_dtype dt = mx->dtype;
  const rl_device *dev = mx->dev;
  bool need_x = n->need[0], need_w = n->need[1];
  bool need_b = n->ninputs > 2 && n->need[2];
  /* x for dW, and for the sizes a bias-only gradient needs */
  rl_tensor *x = need_w || need_b ? rl_node_saved(n, 0) : NULL;
  rl_tensor *w = need_x ? rl_node_saved(n, 1) : NULL;
  rl_tensor *dyc = rl_as_contig(g), *xc = x ? rl_as_contig(x) : NULL;
  rl_tensor *wc = w ? rl_as_contig(w) : NULL;
  rl_tensor *dx = NULL, *dw = NULL, *db = NULL;
  int rc = -1;
  /* nothing to multiply: zero gradients, and the bias's is dy summed */
  bool empty = N * O * ohw == 0 || K == 0;
  if (!dyc || (x && !xc) || (need_x && !wc)) goto out;
  if (need_x && !(dx = empty ? rl_zeros(mx->ndim, mx->size, dt, dev)
                             : rl_empty(mx->ndim, mx->size, dt, dev)))
    goto out;
  if (need_w && !(dw = empty ? rl_zeros(mw->ndim, mw->size, dt, dev)
                             : rl_empty(mw->ndim, mw->size, dt, dev)))
    goto out;
  if (empty) {
    int dims[3] = {0, 2, 3};
    if (need_b && !(db = rl_sum(g, 3, dims, false))) goto out;
  } else {
    if (need_b && !(db = rl_empty(1, &O, dt, dev))) goto out;
    uint64_t calls = rl_counter.gemm_calls;
    if (dev->be->conv2d_bwd(geom, xc, wc, dyc, dx, dw, db)) goto out;
    count_conv_products(calls, need_x + need_w, N, O, K, ohw);
  }
  gin[0] = dx;
  gin[1] = dw;
  if (need_b) gin[2] = db;
  dx = dw = db = NULL;
  rc = 0;
out:
  if (rc) rl_err_prefix("conv2d backward");
  rl_tensor *tmp[8] = {x, w, dyc, xc, wc, dx, dw, db};
  rl_release_all(8, tmp);
  return rc;
}

/* out [N, O, OH, OW] = b[o] everywhere (b contiguous). */
static int fill_bias(rl_tensor *out, rl_tensor *b) {
  int64_t size[3] = {b->size[0], 1, 1}, stride[3] = {1, 1, 1};
  rl_tensor *bv = rl_view_of(b->st, b->dtype, 3, size, stride, b->offset);
  int rc = bv ? rl_copy_(out, bv) : -1;
  if (bv) rl_release(bv);
  return rc;
}

rl_tensor *rl_conv2d(rl_tensor *x, rl_tensor *w, rl_tensor *b, const rl_conv_opts *o) {
  const char *op = "conv2d";
  /* bf16 too (rl.autocast's convolutions: bf16 operands, f32 sums) */
  if (!(x->dtype == RL_BF16 && x->ndim == 4) && rl_check_nchw(op, x)) {
    return NULL;
  }
  if (w->ndim != 4) {
    rl_err("conv2d: weight must be 4-D [out, in, kh, kw], got %s", rl_shape_str(w));
    return NULL;
  }
  if (w->size[1] != x->size[1]) {
    rl_err("conv2d: input has %lld channels, weight expects %lld (input %s, weight %s)",
           (long long)x->size[1], (long long)w->size[1], rl_shape_str(x), rl_shape_str(w));
    return NULL;
  }
  if (b && (b->ndim != 1 || b->size[0] != w->size[0])) {
    rl_err("conv2d: bias %s does not match %lld output channels", rl_shape_str(b),
           (long long)w->size[0]);
    return NULL;
  }
  if (w->dtype != x->dtype || (b && b->dtype != x->dtype)) {
    rl_err("conv2d: input, weight and bias need one dtype, got %s, %s%s%s",
           rl_dtype_name(x->dtype), rl_dtype_name(w->dtype), b ? ", " : "",
           b ? rl_dtype_name(b->dtype) : "");
    return NULL;
  }
  rl_tensor *ts[3] = {x, w, b};
  if (rl_check_same_device(op, b ? 3 : 2, ts)) return NULL;
  int64_t geom[G_N];
  if (rl_conv_geom(op, x, w->size[2], w->size[3], o->stride, o->padding, o->dilation, geom))
    return NULL;
  int64_t N = x->size[0], C = x->size[1], O = w->size[0];
  int64_t K = C * geom[G_KH] * geom[G_KW], ohw = geom[G_OH] * geom[G_OW];
  rl_dtype dt = x->dtype;
  const rl_device *dev = rl_dev(x);
  int64_t osize[4] = {N, O, geom[G_OH], geom[G_OW]};
  rl_tensor *out = rl_empty(4, osize, dt, dev);
  rl_tensor *xc = out ? rl_as_contig(x) : NULL, *wc = xc ? rl_as_contig(w) : NULL;
  rl_tensor *bc = wc && b ? rl_as_contig(b) : NULL;
  if (!wc || (b && !bc)) goto fail;
  if (N * O * ohw == 0 || K == 0) { /* nothing to multiply: y is the bias */
    if (N * O * ohw > 0 && (b ? fill_bias(out, bc) : rl_fill_(out, 0.0))) goto fail;
  } else {
    uint64_t calls = rl_counter.gemm_calls;
    if (dev->be->conv2d(geom, xc, wc, bc, out)) goto fail;
    count_conv_products(calls, 1, N, O, K, ohw);
  }
  rl_tensor *tmp[3] = {xc, wc, bc};
  rl_release_all(3, tmp);
  rl_node *n = rl_record(op, conv2d_bwd, out, b ? 3 : 2, ts);
  if (n) {
    for (int i = 0; i < G_N; i++) n->ip[i] = geom[i];
    if (rl_node_save(n, x) || rl_node_save(n, w)) {
      rl_release(out);
      return NULL;
    }
  }
  return out;
fail:
  rl_err_prefix(op);
  rl_tensor *all[4] = {out, xc, wc, bc};
  rl_release_all(4, all);
  return NULL;
}
