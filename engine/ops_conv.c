/* ops_conv.c - 2-D convolution on NCHW tensors, forward and backward.
 *
 * A backend with whole-convolution kernels (the CPU: engine/cpu/cpu_conv.c)
 * gets the contiguous tensors and does it all.  Otherwise (CUDA) the engine
 * forms the convolution from the backend's GEMM and helpers, in chunks of
 * images that keep the workspace under RL_CONV_WORK_BYTES:
 *
 * - 3x3 stride-1 layers in f32 with enough channels: Winograd F(2x2, 3x3)
 *   (engine/winograd.h).  U [16, O, C] are the transformed kernels, V
 *   [16, C, P] the transformed 4x4 input tiles (P per chunk), and one GEMM
 *   batched over the 16 tile positions forms M[xi] = U[xi] @ V[xi], which
 *   becomes 2x2 outputs.  2.25 times fewer multiplies than im2col, and V
 *   holds 16 values per 4 outputs where col holds 9 per output.  The input
 *   gradient is the same kind of convolution: dy, padded by 2 - p, with the
 *   kernels rotated by 180 degrees and in and out channels swapped.  The
 *   weight gradient runs the transforms' adjoints: dU[xi] = dM[xi] @
 *   V[xi]^T, with dM from dy, and dw from dU.
 * - Everything else: im2col,
 *     col [K = C*kh*kw, nb*OH*OW]  (column = image * OH*OW + output pixel)
 *     y_n [O, OH*OW] = W [O, K] @ col_n  (one GEMM batched over the chunk's
 *                                         images, written into NCHW where it
 *                                         lies; y starts as the bias)
 *   and backward, for the inputs that need it only:
 *     dcol_n = W^T @ dy_n (batched likewise), then col2im gathers it into dx
 *     dW += dYt @ col^T with dYt = dy laid out as [O, nb*OH*OW] (col
 *           recomputed from the saved input)
 * - db = dy summed over N, H, W.
 *
 * Specs force either path (rl_conv_set_path) to check it on the CPU. */
#include <string.h>

#include "internal.h"

/* On a GPU the cost is per launch, not per cache miss: one GEMM for as
 * many images as 256 MB of col (or of V, or of M) allows. */
#define RL_CONV_WORK_BYTES ((int64_t)256 << 20)

/* Fewest channels, in and out, for Winograd to beat im2col on the engine's
 * path: below, its 16 GEMMs are too thin.  Measured on an H200, batch 128
 * at 32x32: 64->64 forward 0.49 -> 0.26 ms, forward + dx 0.99 -> 0.55 ms;
 * but 16->64 forward 0.14 -> 0.17 ms, forward + dx 0.30 -> 0.34 ms. */
#define RL_WINO_MIN_CHANNELS 32

static rl_conv_path conv_path = RL_CONV_AUTO;
static int64_t work_cap; /* bytes per workspace; 0: RL_CONV_WORK_BYTES */

rl_conv_path rl_conv_set_path(rl_conv_path p, int64_t chunk_bytes) {
  rl_conv_path was = conv_path;
  conv_path = p;
  work_cap = chunk_bytes > 0 ? chunk_bytes : 0;
  return was;
}

/* Images per chunk so that a workspace of `per_image` bytes per image stays
 * under the cap. */
static int64_t chunk_images(int64_t N, int64_t per_image) {
  int64_t cap = work_cap ? work_cap : RL_CONV_WORK_BYTES;
  int64_t nb = per_image > 0 ? cap / per_image : N;
  if (nb < 1) nb = 1;
  return nb < N ? nb : N;
}

/* Whether a convolution from C to O channels of this geometry goes through
 * the engine's Winograd path. */
static bool winograd_fits(const rl_backend *be, rl_dtype dt, const int64_t *g, int64_t C,
                          int64_t O) {
  if (!be->wino_weight || !be->wino_input || !be->wino_output || !be->wino_doutput ||
      !be->wino_dweight || conv_path == RL_CONV_IM2COL)
    return false;
  if (g[G_KH] != 3 || g[G_KW] != 3 || g[G_SH] != 1 || g[G_SW] != 1 || g[G_DH] != 1 ||
      g[G_DW] != 1 || g[G_PH] > 2 || g[G_PW] > 2)
    return false;
  if (conv_path == RL_CONV_WINOGRAD) return true;
  return dt == RL_F32 && C >= RL_WINO_MIN_CHANNELS && O >= RL_WINO_MIN_CHANNELS;
}

/* y [N, O, OH, OW] (+ b) = the 3x3 stride-1 correlation of x [N, C, H, W],
 * padded by (ph, pw), with w [O, C, 3, 3]; or, flipped (an input gradient),
 * with w [C, O, 3, 3] rotated by 180 degrees.  Winograd F(2x2, 3x3), per
 * chunk of images: V, one GEMM batched over the 16 tile positions, y. */
static int winograd_conv(const rl_device *dev, rl_dtype dt, const char *x, int64_t N,
                         int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw,
                         const void *w, bool flip, int64_t O, const void *b, char *y) {
  const rl_backend *be = dev->be;
  int64_t es = (int64_t)rl_dtype_size(dt);
  int64_t OH = H + 2 * ph - 2, OW = W + 2 * pw - 2, TH = (OH + 1) / 2, TW = (OW + 1) / 2;
  int64_t T = TH * TW, nbmax = chunk_images(N, 16 * (C > O ? C : O) * T * es);
  int64_t usize[3] = {16, O, C}, vsize[3] = {16, C, nbmax * T}, msize[3] = {16, O, nbmax * T};
  rl_tensor *U = rl_empty(3, usize, dt, dev);
  rl_tensor *V = U ? rl_empty(3, vsize, dt, dev) : NULL;
  rl_tensor *M = V ? rl_empty(3, msize, dt, dev) : NULL;
  int rc = M ? be->wino_weight(dt, w, flip ? C : O, flip ? O : C, flip, rl_data(U)) : -1;
  for (int64_t n0 = 0; !rc && n0 < N; n0 += nbmax) {
    int64_t nb = N - n0 < nbmax ? N - n0 : nbmax, P = nb * T;
    rc = be->wino_input(dt, x + n0 * C * H * W * es, nb, C, H, W, ph, pw, TH, TW, nb,
                        rl_data(V));
    if (!rc)
      rc = rl_gemm(dev, dt, false, false, O, P, C, 1.0, rl_data(U), C, O * C, rl_data(V), P,
                   C * P, 0.0, rl_data(M), P, O * P, 16);
    if (!rc)
      rc = be->wino_output(dt, rl_data(M), nb, O, OH, OW, TH, TW, b,
                           y + n0 * O * OH * OW * es);
  }
  rl_tensor *tmp[3] = {U, V, M};
  rl_release_all(3, tmp);
  return rc;
}

/* Images per chunk of the weight gradient's k.  Its 16 products are small
 * (O x C) and their k (the tiles) long, which in one GEMM would leave most
 * of a GPU idle: k is cut into chunks (rl_split_k_chunks), each a GEMM of
 * its own in one batched call, their partial products summed in order
 * afterwards; and no chunk has more images than the workspace cap allows
 * in V or dM (per_image bytes each). */
static int64_t dw_chunk_images(int64_t N, int64_t T, int64_t O, int64_t C, int64_t per_image) {
  int64_t S = rl_split_k_chunks(16 * ((O + 127) / 128) * ((C + 127) / 128), N * T);
  int64_t nb = (N + S - 1) / S, cap = chunk_images(N, per_image);
  return nb < cap ? nb : cap;
}

/* dw [O, C, 3, 3] for the 3x3 stride-1 correlation of x [N, C, H, W],
 * padded by (ph, pw), whose output has the gradient dy [N, O, OH, OW]:
 * dU[xi] = dM[xi] @ V[xi]^T over the tiles, per chunk of images, and dw =
 * G^T (dU summed over the chunks) G.  The chunks' V and dM are made a pass
 * of several chunks at a time (as many as the workspace cap allows), and
 * multiplied in one GEMM batched over (chunk, xi); a last, shorter chunk
 * takes a GEMM of its own. */
static int winograd_dw(const rl_device *dev, rl_dtype dt, const char *x, const char *dy,
                       int64_t N, int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw,
                       int64_t O, void *dw) {
  const rl_backend *be = dev->be;
  int64_t es = (int64_t)rl_dtype_size(dt);
  int64_t OH = H + 2 * ph - 2, OW = W + 2 * pw - 2, TH = (OH + 1) / 2, TW = (OW + 1) / 2;
  int64_t T = TH * TW, per_image = 16 * (C > O ? C : O) * T * es;
  int64_t nbc = dw_chunk_images(N, T, O, C, per_image), S = (N + nbc - 1) / nbc;
  int64_t pc = nbc * T, per_pass = chunk_images(S, per_image * nbc);
  int64_t vsize[4] = {per_pass, 16, C, pc}, msize[4] = {per_pass, 16, O, pc};
  int64_t usize[4] = {S, 16, O, C};
  rl_tensor *V = rl_empty(4, vsize, dt, dev);
  rl_tensor *dM = V ? rl_empty(4, msize, dt, dev) : NULL;
  rl_tensor *dU = dM ? rl_empty(4, usize, dt, dev) : NULL;
  int rc = dU ? 0 : -1;
  for (int64_t s0 = 0; !rc && s0 < S; s0 += per_pass) {
    int64_t n0 = s0 * nbc, nb = N - n0 < per_pass * nbc ? N - n0 : per_pass * nbc;
    int64_t full = nb / nbc, rest = nb - full * nbc;
    char *vd = rl_data(V), *md = rl_data(dM), *ud = (char *)rl_data(dU) + s0 * 16 * O * C * es;
    rc = be->wino_input(dt, x + n0 * C * H * W * es, nb, C, H, W, ph, pw, TH, TW, nbc, vd);
    if (!rc)
      rc = be->wino_doutput(dt, dy + n0 * O * OH * OW * es, nb, O, OH, OW, TH, TW, nbc, md);
    if (!rc && full)
      rc = rl_gemm(dev, dt, false, true, O, C, pc, 1.0, md, pc, O * pc, vd, pc, C * pc, 0.0,
                   ud, C, O * C, full * 16);
    if (!rc && rest)
      rc = rl_gemm(dev, dt, false, true, O, C, rest * T, 1.0, md + full * 16 * O * pc * es, pc,
                   O * pc, vd + full * 16 * C * pc * es, pc, C * pc, 0.0,
                   ud + full * 16 * O * C * es, C, O * C, 16);
  }
  if (!rc) rc = be->wino_dweight(dt, rl_data(dU), S, O, C, dw);
  rl_tensor *tmp[3] = {V, dM, dU};
  rl_release_all(3, tmp);
  return rc;
}

/* ---- conv2d ---------------------------------------------------------------- */

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
  bool fused = be->conv2d_bwd && conv_path == RL_CONV_AUTO && !empty;
  /* dx by Winograd: a convolution from O to C channels */
  bool wino_dx = need_x && !fused && !empty && winograd_fits(be, dt, geom, O, C);
  bool wino_dw = need_w && !fused && !empty && winograd_fits(be, dt, geom, C, O);
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
  if (wino_dx && winograd_conv(dev, dt, rl_data(dyc), N, O, geom[G_OH], geom[G_OW],
                               2 - geom[G_PH], 2 - geom[G_PW], rl_data(wc), true, C, NULL,
                               rl_data(dx)))
    goto out;
  if (wino_dw && winograd_dw(dev, dt, rl_data(xc), rl_data(dyc), N, C, H, W, geom[G_PH],
                            geom[G_PW], O, rl_data(dw)))
    goto out;
  bool col_dx = need_x && !wino_dx, col_dw = need_w && !wino_dw;
  if (!col_dw && !col_dx) goto bias;
  size_t es = rl_dtype_size(dt);
  int64_t nbmax = chunk_images(N, K * ohw * (int64_t)es);
  int64_t csize[2] = {K, nbmax * ohw};
  if (!(col = rl_empty(2, csize, dt, dev))) goto out;
  for (int64_t n0 = 0; n0 < N; n0 += nbmax) {
    int64_t nb = N - n0 < nbmax ? N - n0 : nbmax, ncols = nb * ohw;
    int r = 0;
    if (col_dw) { /* dW += dYt [O, ncols] @ col^T [ncols, K] */
      rl_tensor *dyt = dy_transposed(dyc, n0, nb, O, ohw);
      if (!dyt) goto out;
      r = be->im2col(dt, (char *)rl_data(xc) + n0 * C * H * W * es, nb, C, H, W, geom,
                     rl_data(col));
      if (!r)
        r = rl_gemm(dev, dt, false, true, O, K, ncols, 1.0, rl_data(dyt), ncols, 0,
                    rl_data(col), ncols, 0, 1.0, rl_data(dw), K, 0, 1);
      rl_release(dyt);
    }
    if (!r && col_dx) {
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
  bool own = dev->be->conv2d && conv_path == RL_CONV_AUTO;
  if (wc && (own || winograd_fits(dev->be, dt, geom, C, O))) {
    rl_tensor *bc = b ? rl_as_contig(b) : NULL;
    const void *bd = bc ? rl_data(bc) : NULL;
    int rc = (b && !bc) ||
             (own ? dev->be->conv2d(dt, rl_data(xc), rl_data(wc), bd, N, C, H, W, O, geom,
                                    rl_data(out))
                  : winograd_conv(dev, dt, rl_data(xc), N, C, H, W, geom[G_PH], geom[G_PW],
                                  rl_data(wc), false, O, bd, rl_data(out)));
    if (bc) rl_release(bc);
    if (rc) goto fail;
    if (own) count_conv_products(1, N, O, K, ohw);
    goto record;
  }
  size_t es = rl_dtype_size(dt);
  int64_t nbmax = chunk_images(N, K * ohw * (int64_t)es);
  int64_t csize[2] = {K, nbmax * ohw};
  if (!wc || !(col = rl_empty(2, csize, dt, dev))) goto fail;
  /* out starts as the bias; the GEMMs add W @ col to it */
  if (b && fill_bias(out, b)) goto fail;
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

