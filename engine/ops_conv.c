/* ops_conv.c - 2-D convolution on NCHW tensors, forward and backward.
 *
 * A backend with whole-convolution kernels (the CPU: engine/cpu/cpu_conv.c)
 * gets the contiguous tensors and does it all.  Otherwise (CUDA) conv2d is
 * im2col + GEMMs per chunk of images:
 *   col [K = C*kh*kw, nb*OH*OW]  (column = image * OH*OW + output pixel)
 *   y_n [O, OH*OW] = W [O, K] @ col_n   (one GEMM batched over the chunk's
 *                                         images, written into NCHW where it
 *                                         lies; y starts as the bias)
 * Backward, for the inputs that need it only:
 *   dcol_n = W^T @ dy_n (batched likewise), then col2im gathers it into dx
 *   dW += dYt @ col^T with dYt = dy laid out as [O, nb*OH*OW] (col
 *         recomputed from the saved input)
 *   db  = dy summed over N, H, W
 * Chunks keep col under RL_CONV_COL_BYTES_GPU. */
#include <string.h>

#include "internal.h"

/* On a GPU the cost is per launch, not per cache miss: one GEMM for as
 * many images as 256 MB of col allows. */
#define RL_CONV_COL_BYTES_GPU ((int64_t)256 << 20)

/* Images per chunk so that col stays under the byte budget. */
static int64_t chunk_images(int64_t N, int64_t K, int64_t ohw, rl_dtype dt) {
  int64_t per = K * ohw * (int64_t)rl_dtype_size(dt);
  int64_t nb = per > 0 ? RL_CONV_COL_BYTES_GPU / per : N;
  if (nb < 1) nb = 1;
  return nb < N ? nb : N;
}

/* ---- conv2d ---------------------------------------------------------------- */

static bool force_im2col;

bool rl_conv_set_im2col(bool on) {
  bool was = force_im2col;
  force_im2col = on;
  return was;
}

/* A backend's whole-convolution kernel counts as one GEMM per product it
 * forms (y, dx, dW), of the size the im2col formulation has. */
static void count_conv_products(int products, int64_t N, int64_t O, int64_t K, int64_t ohw) {
  rl_counter.gemm_calls += (uint64_t)products;
  rl_counter.gemm_flops += (uint64_t)products * (uint64_t)(2 * N * O * K * ohw);
}

/* dy[n0 : n0+nb] as dYt [O, nb*ohw] (a fresh contiguous tensor). */
static rl_tensor *dy_transposed(rl_tensor *dyc, int64_t n0, int64_t nb, int64_t O,
                                int64_t ohw) {
  int64_t tsize[3] = {O, nb, ohw};
  rl_tensor *dyt = rl_empty(3, tsize, dyc->dtype, rl_dev(dyc));
  if (!dyt) return NULL;
  int64_t vsize[3] = {nb, O, ohw}, vstride[3] = {ohw, nb * ohw, 1};
  rl_tensor *dst = rl_view_of(dyt->st, dyt->dtype, 3, vsize, vstride, 0);
  int64_t ssize[3] = {nb, O, ohw}, sstride[3] = {O * ohw, ohw, 1};
  rl_tensor *src = dst ? rl_view_of(dyc->st, dyc->dtype, 3, ssize, sstride,
                                    dyc->offset + n0 * O * ohw)
                       : NULL;
  int rc = src ? rl_copy_(dst, src) : -1;
  if (dst) rl_release(dst);
  if (src) rl_release(src);
  if (rc) {
    rl_release(dyt);
    return NULL;
  }
  return dyt;
}

static int conv2d_bwd(rl_node *n, rl_tensor *g, rl_tensor **gin) {
  const rl_meta *mx = &n->meta[0], *mw = &n->meta[1];
  int64_t geom[G_N];
  for (int i = 0; i < G_N; i++) geom[i] = n->ip[i];
  int64_t N = mx->size[0], C = mx->size[1], H = mx->size[2], W = mx->size[3];
  int64_t O = mw->size[0], K = C * geom[G_KH] * geom[G_KW], ohw = geom[G_OH] * geom[G_OW];
  rl_dtype dt = mx->dtype;
  const rl_device *dev = mx->dev;
  const rl_backend *be = dev->be;
  bool need_x = n->need[0], need_w = n->need[1];
  bool need_b = n->ninputs > 2 && n->need[2];
  rl_tensor *x = need_w ? rl_node_saved(n, 0) : NULL;
  rl_tensor *w = need_x ? rl_node_saved(n, 1) : NULL;
  rl_tensor *dyc = rl_as_contig(g), *xc = x ? rl_as_contig(x) : NULL;
  rl_tensor *wc = w ? rl_as_contig(w) : NULL;
  rl_tensor *dx = NULL, *dw = NULL, *col = NULL;
  int rc = -1;
  /* nothing to multiply (an empty batch, no output channels or pixels, no
   * input channels): zero gradients, and the bias's is dy summed */
  bool empty = N * O * ohw == 0 || K == 0;
  bool fused = be->conv2d_bwd && !force_im2col && !empty;
  if (!dyc || (need_w && !xc) || (need_x && !wc)) goto out;
  if (need_x && !(dx = empty ? rl_zeros(mx->ndim, mx->size, dt, dev)
                             : rl_empty(mx->ndim, mx->size, dt, dev)))
    goto out;
  if (need_w && !(dw = fused ? rl_empty(mw->ndim, mw->size, dt, dev)
                             : rl_zeros(mw->ndim, mw->size, dt, dev)))
    goto out;
  if (empty) goto bias;
  if (fused) {
    if (need_b && !(gin[2] = rl_empty(1, &O, dt, dev))) goto out;
    if (be->conv2d_bwd(dt, xc ? rl_data(xc) : NULL, wc ? rl_data(wc) : NULL, rl_data(dyc),
                       N, C, H, W, O, geom, dx ? rl_data(dx) : NULL,
                       dw ? rl_data(dw) : NULL, need_b ? rl_data(gin[2]) : NULL))
      goto out;
    count_conv_products(need_x + need_w, N, O, K, ohw);
    goto done;
  }
  int64_t nbmax = chunk_images(N, K, ohw, dt);
  int64_t csize[2] = {K, nbmax * ohw};
  if (!(col = rl_empty(2, csize, dt, dev))) goto out;
  size_t es = rl_dtype_size(dt);
  for (int64_t n0 = 0; n0 < N; n0 += nbmax) {
    int64_t nb = N - n0 < nbmax ? N - n0 : nbmax, ncols = nb * ohw;
    int r = 0;
    if (need_w) { /* dW += dYt [O, ncols] @ col^T [ncols, K] */
      rl_tensor *dyt = dy_transposed(dyc, n0, nb, O, ohw);
      if (!dyt) goto out;
      r = be->im2col(dt, (char *)rl_data(xc) + n0 * C * H * W * es, nb, C, H, W, geom,
                     rl_data(col));
      if (!r)
        r = rl_gemm(dev, dt, false, true, O, K, ncols, 1.0, rl_data(dyt), ncols, 0,
                    rl_data(col), ncols, 0, 1.0, rl_data(dw), K, 0, 1);
      rl_release(dyt);
    }
    if (!r && need_x) {
      /* per image, dcol_n [K, ohw] = W^T [K, O] @ dy_n [O, ohw]: one batched
       * GEMM reading dy where it lies; col2im into dx */
      r = rl_gemm(dev, dt, true, false, K, ohw, O, 1.0, rl_data(wc), K, 0,
                  (char *)rl_data(dyc) + n0 * O * ohw * es, ohw, O * ohw, 0.0, rl_data(col),
                  ncols, ohw, nb);
      if (!r)
        r = be->col2im(dt, rl_data(col), nb, C, H, W, geom,
                       (char *)rl_data(dx) + n0 * C * H * W * es);
    }
    if (r) goto out;
  }
bias:
  if (need_b) {
    int dims[3] = {0, 2, 3};
    if (!(gin[2] = rl_sum(g, 3, dims, false))) goto out;
  }
done:
  gin[0] = dx;
  gin[1] = dw;
  dx = dw = NULL;
  rc = 0;
out:
  if (rc) rl_err_prefix("conv2d backward");
  rl_tensor *tmp[7] = {x, w, dyc, xc, wc, dx, dw};
  rl_release_all(7, tmp);
  if (col) rl_release(col);
  return rc;
}

/* out [N, O, OH, OW] = b[o] everywhere. */
static int fill_bias(rl_tensor *out, rl_tensor *b) {
  int64_t N = out->size[0], O = out->size[1], ohw = out->size[2] * out->size[3];
  int64_t bs[3] = {N, O, ohw}, bst[3] = {0, b->stride[0], 0}, ost[3] = {O * ohw, ohw, 1};
  rl_tensor *bv = rl_view_of(b->st, b->dtype, 3, bs, bst, b->offset);
  rl_tensor *ov = bv ? rl_view_of(out->st, out->dtype, 3, bs, ost, out->offset) : NULL;
  int rc = ov ? rl_copy_(ov, bv) : -1;
  if (bv) rl_release(bv);
  if (ov) rl_release(ov);
  return rc;
}

rl_tensor *rl_conv2d(rl_tensor *x, rl_tensor *w, rl_tensor *b, const rl_conv_opts *o) {
  const char *op = "conv2d";
  if (rl_check_nchw(op, x)) return NULL;
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
  int64_t N = x->size[0], C = x->size[1], H = x->size[2], W = x->size[3], O = w->size[0];
  int64_t K = C * geom[G_KH] * geom[G_KW], ohw = geom[G_OH] * geom[G_OW];
  rl_dtype dt = x->dtype;
  const rl_device *dev = rl_dev(x);
  int64_t osize[4] = {N, O, geom[G_OH], geom[G_OW]};
  rl_tensor *out = rl_empty(4, osize, dt, dev);
  rl_tensor *xc = out ? rl_as_contig(x) : NULL, *wc = xc ? rl_as_contig(w) : NULL;
  rl_tensor *col = NULL;
  if (wc && (N * O * ohw == 0 || K == 0)) { /* nothing to multiply: y is the bias */
    if (N * O * ohw > 0 && (b ? fill_bias(out, b) : rl_fill_(out, 0.0))) goto fail;
    goto record;
  }
  if (wc && dev->be->conv2d && !force_im2col) {
    rl_tensor *bc = b ? rl_as_contig(b) : NULL;
    int rc = (b && !bc) ||
             dev->be->conv2d(dt, rl_data(xc), rl_data(wc), bc ? rl_data(bc) : NULL, N, C, H,
                             W, O, geom, rl_data(out));
    if (bc) rl_release(bc);
    if (rc) goto fail;
    count_conv_products(1, N, O, K, ohw);
    goto record;
  }
  int64_t nbmax = chunk_images(N, K, ohw, dt);
  int64_t csize[2] = {K, nbmax * ohw};
  if (!wc || !(col = rl_empty(2, csize, dt, dev))) goto fail;
  /* out starts as the bias; the GEMMs add W @ col to it */
  if (b && fill_bias(out, b)) goto fail;
  size_t es = rl_dtype_size(dt);
  for (int64_t n0 = 0; n0 < N; n0 += nbmax) {
    int64_t nb = N - n0 < nbmax ? N - n0 : nbmax, ncols = nb * ohw;
    if (RL_BE(x)->im2col(dt, (char *)rl_data(xc) + n0 * C * H * W * es, nb, C, H, W, geom,
                         rl_data(col)))
      goto fail;
    /* per image, out_n [O, ohw] (+)= W [O, K] @ col_n [K, ohw]: one batched
     * GEMM writing the NCHW output where it lies */
    if (rl_gemm(dev, dt, false, false, O, ohw, K, 1.0, rl_data(wc), K, 0, rl_data(col), ncols,
                ohw, b ? 1.0 : 0.0, (char *)rl_data(out) + n0 * O * ohw * es, ohw, O * ohw, nb))
      goto fail;
  }
  rl_release(col);
record:
  rl_release(xc);
  rl_release(wc);
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
  rl_tensor *tmp[4] = {out, xc, wc, col};
  rl_release_all(4, tmp);
  return NULL;
}

