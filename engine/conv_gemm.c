/* conv_gemm.c - 2-D convolution composed from a backend's GEMM and
 * helpers: CUDA's convolution (kernels/cuda_conv.cu points its conv entries
 * here), and the CPU's when a spec forces a path (rl_conv_set_path).
 *
 * Images go in chunks that keep each workspace under the device's
 * work_bytes (rl_conv_tuning):
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
 * - bf16 (rl.autocast's convolutions) takes the im2col path with bf16 x,
 *   w and col, its GEMMs summing in f32 (cuBLAS's bf16 GEMM with an f32
 *   compute type).  The forward GEMM adds its f32 sums to the bf16 bias
 *   and rounds once into y itself; dcol is f32, and col2im sums its taps
 *   in f32 and rounds once into dx; dW's chunks are added in an f32
 *   workspace, rounded into dw at the end.  Each result is rounded to bf16
 *   once, as the f32 convolution of the bf16 operands would be.
 * - bf16 on the implicit path (forced, or the device's choice): the
 *   backend's conv_implicit forms y without col, gathering what it needs
 *   of x tile by tile (CUDA: mma.sync, kernels/cuda_igemm.cu), each output
 *   its f32 sum plus the bias, rounded once.  The input gradient of a
 *   stride-1, undilated layer is the same kind of convolution (dy padded
 *   by k - 1 - p, the kernels rotated, channels swapped: conv_implicit's
 *   flip); other layers' dx take im2col.  dW is conv_implicit_dw: the same
 *   gathers, its sum over the pixels cut into chunks added in order.
 *   bf16's Winograd, taken only when rl_conv_set_path forces it, keeps x,
 *   w, V, U, dM and the results bf16, the transforms computed in f32 and
 *   rounded once, and M and dU (the GEMMs' sums) f32: the rounded tiles
 *   put it a few bf16 steps from the f32 convolution, where im2col stays
 *   within one. */
#include "conv_gemm.h"

#include <string.h>

#include "internal.h"

/* ---- the forced path ------------------------------------------------------- */

static rl_conv_path conv_path = RL_CONV_AUTO;
static int64_t work_cap; /* bytes per workspace; 0: the device's work_bytes */

rl_conv_path rl_conv_set_path(rl_conv_path p, int64_t chunk_bytes) {
  rl_conv_path was = conv_path;
  conv_path = p;
  work_cap = chunk_bytes > 0 ? chunk_bytes : 0;
  return was;
}

bool rl_conv_gemm_forced(void) { return conv_path != RL_CONV_AUTO; }

/* ---- chunks of images, and Winograd ------------------------------------------ */

/* Images per chunk so that a workspace of `per_image` bytes per image stays
 * under the cap. */
static int64_t chunk_images(const rl_conv_tuning *t, int64_t N, int64_t per_image) {
  int64_t cap = work_cap ? work_cap : t->work_bytes;
  int64_t nb = per_image > 0 ? cap / per_image : N;
  if (nb < 1) nb = 1;
  return nb < N ? nb : N;
}

/* Whether a convolution from C to O channels of this geometry goes through
 * the Winograd path. */
static bool winograd_fits(const rl_conv_tuning *t, const rl_backend *be, rl_dtype dt,
                          const int64_t *g, int64_t C, int64_t O) {
  if (!be->wino_weight || !be->wino_input || !be->wino_output || !be->wino_doutput ||
      !be->wino_dweight || conv_path == RL_CONV_IM2COL)
    return false;
  if (g[G_KH] != 3 || g[G_KW] != 3 || g[G_SH] != 1 || g[G_SW] != 1 || g[G_DH] != 1 ||
      g[G_DW] != 1 || g[G_PH] > 2 || g[G_PW] > 2)
    return false;
  if (conv_path == RL_CONV_WINOGRAD) return true;
  /* bf16 takes im2col unless forced: its Winograd rounds the transformed
   * tiles to bf16, a few bf16 steps from the f32 convolution where
   * im2col's result is within one (see the top of the file) */
  return dt == RL_F32 && C >= t->wino_min_channels && O >= t->wino_min_channels;
}

bool rl_conv_implicit_fits(const rl_backend *be, rl_dtype dt, const int64_t *g, bool flip,
                           int64_t C, int64_t H, int64_t W, int64_t O) {
  if (dt != RL_BF16 || !be->conv_implicit) return false;
  /* its kernels index an image, and the weight, with int */
  const int64_t most = (int64_t)1 << 29;
  if (C * H * W >= most || O * g[G_OH] * g[G_OW] >= most || O * C * g[G_KH] * g[G_KW] >= most)
    return false;
  /* dx as a convolution of dy: stride 1, no dilation, padding below k */
  return !flip || (g[G_SH] == 1 && g[G_SW] == 1 && g[G_DH] == 1 && g[G_DW] == 1 &&
                   g[G_PH] < g[G_KH] && g[G_PW] < g[G_KW]);
}

/* Whether a bf16 convolution takes the implicit GEMM for its forward or
 * weight gradient (or, flip, its input gradient): forced, or the device's
 * choice, where it can. */
static bool implicit_fits(const rl_conv_tuning *t, const rl_backend *be, rl_dtype dt,
                          const int64_t *g, bool flip, int64_t C, int64_t H, int64_t W,
                          int64_t O) {
  if (conv_path != RL_CONV_IMPLICIT && !(conv_path == RL_CONV_AUTO && t->implicit_bf16))
    return false;
  return rl_conv_implicit_fits(be, dt, g, flip, C, H, W, O);
}

/* y [N, O, OH, OW] (+ b) = the 3x3 stride-1 correlation of x [N, C, H, W],
 * padded by (ph, pw), with w [O, C, 3, 3]; or, flipped (an input gradient),
 * with w [C, O, 3, 3] rotated by 180 degrees.  Winograd F(2x2, 3x3), per
 * chunk of images: V, one GEMM batched over the 16 tile positions, y. */
static int winograd_conv(const rl_conv_tuning *t, const rl_device *dev, rl_dtype dt,
                         const char *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t ph,
                         int64_t pw, const void *w, bool flip, int64_t O, const void *b,
                         char *y) {
  const rl_backend *be = dev->be;
  int64_t es = (int64_t)rl_dtype_size(dt);
  int64_t OH = H + 2 * ph - 2, OW = W + 2 * pw - 2, TH = (OH + 1) / 2, TW = (OW + 1) / 2;
  rl_dtype mt = dt == RL_BF16 ? RL_F32 : dt; /* M, the GEMM's sums */
  int64_t ms = (int64_t)rl_dtype_size(mt);
  int64_t T = TH * TW, nbmax = chunk_images(t, N, 16 * (C > O ? C : O) * T * ms);
  int64_t usize[3] = {16, O, C}, vsize[3] = {16, C, nbmax * T}, msize[3] = {16, O, nbmax * T};
  rl_tensor *U = rl_empty(3, usize, dt, dev);
  rl_tensor *V = U ? rl_empty(3, vsize, dt, dev) : NULL;
  rl_tensor *M = V ? rl_empty(3, msize, mt, dev) : NULL;
  int rc = M ? be->wino_weight(dt, w, flip ? C : O, flip ? O : C, flip, rl_data(U)) : -1;
  for (int64_t n0 = 0; !rc && n0 < N; n0 += nbmax) {
    int64_t nb = N - n0 < nbmax ? N - n0 : nbmax, P = nb * T;
    rc = be->wino_input(dt, x + n0 * C * H * W * es, nb, C, H, W, ph, pw, TH, TW, nb,
                        rl_data(V));
    if (!rc)
      rc = rl_gemm(dev, dt, mt, false, false, O, P, C, 1.0, rl_data(U), C, O * C, rl_data(V), P,
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
static int64_t dw_chunk_images(const rl_conv_tuning *t, int64_t N, int64_t T, int64_t O,
                               int64_t C, int64_t per_image) {
  int64_t S = rl_split_k_chunks(t->sms, 16 * ((O + 127) / 128) * ((C + 127) / 128), N * T);
  int64_t nb = (N + S - 1) / S, cap = chunk_images(t, N, per_image);
  return nb < cap ? nb : cap;
}

/* dw [O, C, 3, 3] for the 3x3 stride-1 correlation of x [N, C, H, W],
 * padded by (ph, pw), whose output has the gradient dy [N, O, OH, OW]:
 * dU[xi] = dM[xi] @ V[xi]^T over the tiles, per chunk of images, and dw =
 * G^T (dU summed over the chunks) G.  The chunks' V and dM are made a pass
 * of several chunks at a time (as many as the workspace cap allows), and
 * multiplied in one GEMM batched over (chunk, xi); a last, shorter chunk
 * takes a GEMM of its own. */
static int winograd_dw(const rl_conv_tuning *t, const rl_device *dev, rl_dtype dt,
                       const char *x, const char *dy, int64_t N, int64_t C, int64_t H,
                       int64_t W, int64_t ph, int64_t pw, int64_t O, void *dw) {
  const rl_backend *be = dev->be;
  int64_t es = (int64_t)rl_dtype_size(dt);
  int64_t OH = H + 2 * ph - 2, OW = W + 2 * pw - 2, TH = (OH + 1) / 2, TW = (OW + 1) / 2;
  rl_dtype ut = dt == RL_BF16 ? RL_F32 : dt; /* dU, the GEMM's sums */
  int64_t us = (int64_t)rl_dtype_size(ut);
  int64_t T = TH * TW, per_image = 16 * (C > O ? C : O) * T * es;
  int64_t nbc = dw_chunk_images(t, N, T, O, C, per_image), S = (N + nbc - 1) / nbc;
  int64_t pc = nbc * T, per_pass = chunk_images(t, S, per_image * nbc);
  int64_t vsize[4] = {per_pass, 16, C, pc}, msize[4] = {per_pass, 16, O, pc};
  int64_t usize[4] = {S, 16, O, C};
  rl_tensor *V = rl_empty(4, vsize, dt, dev);
  rl_tensor *dM = V ? rl_empty(4, msize, dt, dev) : NULL;
  rl_tensor *dU = dM ? rl_empty(4, usize, ut, dev) : NULL;
  int rc = dU ? 0 : -1;
  for (int64_t s0 = 0; !rc && s0 < S; s0 += per_pass) {
    int64_t n0 = s0 * nbc, nb = N - n0 < per_pass * nbc ? N - n0 : per_pass * nbc;
    int64_t full = nb / nbc, rest = nb - full * nbc;
    char *vd = rl_data(V), *md = rl_data(dM), *ud = (char *)rl_data(dU) + s0 * 16 * O * C * us;
    rc = be->wino_input(dt, x + n0 * C * H * W * es, nb, C, H, W, ph, pw, TH, TW, nbc, vd);
    if (!rc)
      rc = be->wino_doutput(dt, dy + n0 * O * OH * OW * es, nb, O, OH, OW, TH, TW, nbc, md);
    if (!rc && full)
      rc = rl_gemm(dev, dt, ut, false, true, O, C, pc, 1.0, md, pc, O * pc, vd, pc, C * pc, 0.0,
                   ud, C, O * C, full * 16);
    if (!rc && rest)
      rc = rl_gemm(dev, dt, ut, false, true, O, C, rest * T, 1.0, md + full * 16 * O * pc * es, pc,
                   O * pc, vd + full * 16 * C * pc * es, pc, C * pc, 0.0,
                   ud + full * 16 * O * C * us, C, O * C, 16);
  }
  if (!rc) rc = be->wino_dweight(dt, rl_data(dU), S, O, C, dw);
  rl_tensor *tmp[3] = {V, dM, dU};
  rl_release_all(3, tmp);
  return rc;
}

/* ---- im2col ------------------------------------------------------------------ */

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

/* ---- the implicit GEMM's weight gradient --------------------------------------- */

/* dw by the backend's conv_implicit_dw: the sum over the pixels cut into
 * chunks as a GEMM's long k is (rl_split_k_chunks, for its few 128 x 128
 * blocks of output), no more of them than the workspace cap holds. */
static int implicit_dw(const rl_conv_tuning *t, const rl_device *dev, rl_tensor *x,
                       rl_tensor *dy, const int64_t *geom, rl_tensor *dw) {
  int64_t N = x->size[0], C = x->size[1], H = x->size[2], W = x->size[3], O = dy->size[1];
  int64_t K = C * geom[G_KH] * geom[G_KW], P = N * geom[G_OH] * geom[G_OW];
  int64_t S = rl_split_k_chunks(t->sms, ((O + 127) / 128) * ((K + 127) / 128), P);
  int64_t cap = work_cap ? work_cap : t->work_bytes, most = cap / (O * K * 4);
  if (S > most) S = most > 1 ? most : 1;
  int64_t wsize[3] = {S, O, K};
  rl_tensor *ws = rl_empty(3, wsize, RL_F32, dev);
  if (!ws) return -1;
  rl_counter.implicit_convs++;
  int rc = dev->be->conv_implicit_dw(x->dtype, rl_data(x), rl_data(dy), N, C, H, W, geom, O, S,
                                     rl_data(ws), rl_data(dw));
  rl_release(ws);
  return rc;
}

/* ---- the entries ---------------------------------------------------------------- */

int rl_conv_gemm(const rl_conv_tuning *t, const int64_t *geom, rl_tensor *x, rl_tensor *w,
                 rl_tensor *b, rl_tensor *y) {
  int64_t N = x->size[0], C = x->size[1], H = x->size[2], W = x->size[3], O = w->size[0];
  int64_t K = C * geom[G_KH] * geom[G_KW], ohw = geom[G_OH] * geom[G_OW];
  rl_dtype dt = x->dtype;
  const rl_device *dev = rl_dev(x);
  if (implicit_fits(t, dev->be, dt, geom, false, C, H, W, O)) {
    rl_counter.implicit_convs++;
    return dev->be->conv_implicit(dt, rl_data(x), N, C, H, W, geom, rl_data(w), false, O,
                                  b ? rl_data(b) : NULL, rl_data(y));
  }
  if (winograd_fits(t, dev->be, dt, geom, C, O))
    return winograd_conv(t, dev, dt, rl_data(x), N, C, H, W, geom[G_PH], geom[G_PW],
                         rl_data(w), false, O, b ? rl_data(b) : NULL, rl_data(y));
  size_t es = rl_dtype_size(dt);
  int64_t nbmax = chunk_images(t, N, K * ohw * (int64_t)es);
  int64_t csize[2] = {K, nbmax * ohw};
  rl_tensor *col = rl_empty(2, csize, dt, dev);
  /* y starts as the bias; the GEMMs add W @ col to it (a bf16 y: the bias
   * is bf16, the sum is formed in f32 and rounded once, by the GEMM) */
  int rc = !col || (b && fill_bias(y, b)) ? -1 : 0;
  for (int64_t n0 = 0; !rc && n0 < N; n0 += nbmax) {
    int64_t nb = N - n0 < nbmax ? N - n0 : nbmax, ncols = nb * ohw;
    rc = dev->be->im2col(dt, (char *)rl_data(x) + n0 * C * H * W * es, nb, C, H, W, geom,
                         rl_data(col));
    /* per image, y_n [O, ohw] (+)= W [O, K] @ col_n [K, ohw]: one batched
     * GEMM writing the NCHW output where it lies */
    if (!rc)
      rc = rl_gemm(dev, dt, dt, false, false, O, ohw, K, 1.0, rl_data(w), K, 0, rl_data(col),
                   ncols, ohw, b ? 1.0 : 0.0, (char *)rl_data(y) + n0 * O * ohw * es, ohw,
                   O * ohw, nb);
  }
  if (col) rl_release(col);
  return rc;
}

/* db [O] = dy summed over N, H, W. */
static int bias_grad(rl_tensor *dy, rl_tensor *db) {
  int dims[3] = {0, 2, 3};
  rl_tensor *s = rl_sum(dy, 3, dims, false);
  int rc = s ? rl_copy_(db, s) : -1;
  if (s) rl_release(s);
  return rc;
}

int rl_conv_gemm_bwd(const rl_conv_tuning *t, const int64_t *geom, rl_tensor *x, rl_tensor *w,
                     rl_tensor *dy, rl_tensor *dx, rl_tensor *dw, rl_tensor *db) {
  if (db && bias_grad(dy, db)) return -1;
  if (!dx && !dw) return 0;
  rl_tensor *in = dx ? dx : x; /* [N, C, H, W] */
  int64_t N = in->size[0], C = in->size[1], H = in->size[2], W = in->size[3];
  int64_t O = dy->size[1], K = C * geom[G_KH] * geom[G_KW], ohw = geom[G_OH] * geom[G_OW];
  rl_dtype dt = dy->dtype;
  const rl_device *dev = rl_dev(dy);
  const rl_backend *be = dev->be;
  /* dx by Winograd: a convolution from O to C channels */
  bool wino_dx = dx && winograd_fits(t, be, dt, geom, O, C);
  bool wino_dw = dw && winograd_fits(t, be, dt, geom, C, O);
  if (wino_dx && winograd_conv(t, dev, dt, rl_data(dy), N, O, geom[G_OH], geom[G_OW],
                               2 - geom[G_PH], 2 - geom[G_PW], rl_data(w), true, C, NULL,
                               rl_data(dx)))
    return -1;
  if (wino_dw && winograd_dw(t, dev, dt, rl_data(x), rl_data(dy), N, C, H, W, geom[G_PH],
                             geom[G_PW], O, rl_data(dw)))
    return -1;
  /* dx by the implicit GEMM: a convolution of dy, from O to C channels,
   * with dx's height and width */
  bool imp_dx = dx && !wino_dx && implicit_fits(t, be, dt, geom, true, C, H, W, O);
  if (imp_dx) {
    int64_t fg[G_N];
    memcpy(fg, geom, sizeof fg);
    fg[G_PH] = geom[G_KH] - 1 - geom[G_PH];
    fg[G_PW] = geom[G_KW] - 1 - geom[G_PW];
    fg[G_OH] = H;
    fg[G_OW] = W;
    rl_counter.implicit_convs++;
    if (be->conv_implicit(dt, rl_data(dy), N, O, geom[G_OH], geom[G_OW], fg, rl_data(w), true,
                          C, NULL, rl_data(dx)))
      return -1;
  }
  bool imp_dw = dw && !wino_dw && implicit_fits(t, be, dt, geom, false, C, H, W, O);
  if (imp_dw && implicit_dw(t, dev, x, dy, geom, dw)) return -1;
  bool col_dx = dx && !wino_dx && !imp_dx, col_dw = dw && !wino_dw && !imp_dw;
  if (!col_dw && !col_dx) return 0;
  /* bf16: dW's chunks are summed in an f32 dwf (rounded into dw at the
   * end); dcol is f32, and col2im gathers it into dx, rounding each sum once */
  bool low = dt == RL_BF16;
  size_t es = rl_dtype_size(dt);
  /* per image: col, and for a bf16 dx an f32 dcol beside it */
  int64_t per_image = K * ohw * (int64_t)(es + (low && col_dx ? 4 : 0));
  int64_t nbmax = chunk_images(t, N, per_image);
  int64_t csize[2] = {K, nbmax * ohw};
  rl_tensor *col = rl_empty(2, csize, dt, dev);
  rl_tensor *dwf = low && col_dw && col ? rl_empty(dw->ndim, dw->size, RL_F32, dev) : NULL;
  rl_tensor *dcol = low && col_dx && col ? rl_empty(2, csize, RL_F32, dev) : col;
  int rc = !col || (low && col_dw && !dwf) || !dcol ? -1 : 0;
  rl_tensor *sum_dw = low ? dwf : dw;
  /* im2col's dW is summed over the chunks */
  if (!rc && col_dw && rl_zero_(sum_dw)) rc = -1;
  for (int64_t n0 = 0; !rc && n0 < N; n0 += nbmax) {
    int64_t nb = N - n0 < nbmax ? N - n0 : nbmax, ncols = nb * ohw;
    if (col_dw) { /* dW += dYt [O, ncols] @ col^T [ncols, K] */
      rl_tensor *dyt = dy_transposed(dy, n0, nb, O, ohw);
      rc = dyt ? be->im2col(dt, (char *)rl_data(x) + n0 * C * H * W * es, nb, C, H, W, geom,
                            rl_data(col))
               : -1;
      if (!rc)
        rc = rl_gemm(dev, dt, sum_dw->dtype, false, true, O, K, ncols, 1.0, rl_data(dyt), ncols,
                     0, rl_data(col), ncols, 0, 1.0, rl_data(sum_dw), K, 0, 1);
      if (dyt) rl_release(dyt);
    }
    if (!rc && col_dx) {
      /* per image, dcol_n [K, ohw] = W^T [K, O] @ dy_n [O, ohw]: one batched
       * GEMM reading dy where it lies; col2im into dx */
      rc = rl_gemm(dev, dt, dcol->dtype, true, false, K, ohw, O, 1.0, rl_data(w), K, 0,
                   (char *)rl_data(dy) + n0 * O * ohw * es, ohw, O * ohw, 0.0, rl_data(dcol),
                   ncols, ohw, nb);
      if (!rc)
        rc = be->col2im(dt, rl_data(dcol), nb, C, H, W, geom,
                        (char *)rl_data(dx) + n0 * C * H * W * es);
    }
  }
  if (!rc && low && col_dw) rc = rl_copy_(dw, dwf);
  if (dcol && dcol != col) rl_release(dcol);
  rl_tensor *tmp[2] = {col, dwf};
  rl_release_all(2, tmp);
  return rc;
}
