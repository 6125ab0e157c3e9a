/* cuda_conv.cu - CUDA's convolution: im2col / col2im on NCHW planes, and
 * the backend's conv entries, which run the composition of
 * engine/conv_gemm.c (Winograd or im2col on cuBLAS) with the figures
 * measured on the GPU.
 *
 * col2im gathers: a thread owns one input element and sums what the windows
 * covering it contribute, taps in (i, j) order as the CPU backend adds
 * them, so the results are deterministic and equal the CPU's bits. */
#include "cuda_common.cuh"

/* ---- im2col / col2im ------------------------------------------------------- */

/* A grid-stride loop over the positions [start, n) of a row, each position
 * also kept as (outer, row, column) of a [*, R, Q] layout and advanced by
 * adds and carries: integer division costs some twenty instructions on a
 * GPU, and did dominate im2col (0.6 ms of a 0.9 ms WRN convolution). */
template <typename IT> struct Walk {
  IT sn, sr, sq; /* the step as (outer, rows, columns) */
  IT n, r, q;    /* the current position */
  IT R, Q;
  __device__ Walk(IT start, IT step, IT R_, IT Q_) : R(R_), Q(Q_) {
    IT rq = R * Q;
    sn = step / rq;
    IT rem = step - sn * rq;
    sr = rem / Q;
    sq = rem - sr * Q;
    n = start / rq;
    rem = start - n * rq;
    r = rem / Q;
    q = rem - r * Q;
  }
  __device__ __forceinline__ void next() {
    q += sq;
    if (q >= Q) q -= Q, r++;
    r += sr;
    if (r >= R) r -= R, n++;
    n += sn;
  }
};

/* x [nb, C, H, W] -> col [C*kh*kw, nb*OH*OW]: a row of col (one channel and
 * tap) per grid y, its columns along x, so a warp writes one run. */
template <typename T, typename IT>
__global__ void im2col_kernel(const T *x, IT nb, IT C, IT H, IT W, Geom<IT> g, T *col) {
  IT ohw = g.OH * g.OW, ncols = nb * ohw, khw = g.kh * g.kw;
  IT start = (IT)(blockIdx.x * blockDim.x + threadIdx.x), step = (IT)(gridDim.x * blockDim.x);
  if (start >= ncols) return;
  PLANES(rw, (int64_t)C * khw) {
    IT row = (IT)rw, c = row / khw, i = (row / g.kw) % g.kh, j = row % g.kw;
    IT h0 = i * g.dh - g.ph, w0 = j * g.dw - g.pw;
    T *dst = col + (int64_t)row * ncols;
    Walk<IT> at(start, step, g.OH, g.OW); /* (image, oh, ow) */
    for (IT cc = start; cc < ncols; cc += step, at.next()) {
      IT h = at.r * g.sh + h0, w = at.q * g.sw + w0;
      dst[cc] = (h >= 0 && h < H && w >= 0 && w < W) ? x[((at.n * C + c) * H + h) * W + w] : (T)0;
    }
  }
}

/* col -> x: a (image, channel) plane per grid y; each element gathers its
 * taps in (i, j) order, as the CPU adds them.  X is x's storage: T, or
 * uint16_t for bf16 from an f32 col (the sum rounded once). */
template <typename T, typename X, typename IT>
__global__ void col2im_kernel(const T *col, IT nb, IT C, IT H, IT W, Geom<IT> g, X *x) {
  IT ohw = g.OH * g.OW, ncols = nb * ohw;
  IT start = (IT)(blockIdx.x * blockDim.x + threadIdx.x), step = (IT)(gridDim.x * blockDim.x);
  if (start >= H * W) return;
  PLANES(pl, (int64_t)nb * C) {
    IT n = (IT)pl / C, c = (IT)pl % C;
    Walk<IT> at(start, step, H, W); /* (0, h, w) */
    for (IT hw = start; hw < H * W; hw += step, at.next()) {
      IT h = at.r, w = at.q;
      T acc = 0;
      for (IT i = 0; i < g.kh; i++) {
        IT th = h + g.ph - i * g.dh;
        if (th < 0) break; /* th only falls as i grows */
        IT oh = g.sh == 1 ? th : th / g.sh;
        if (oh * g.sh != th || oh >= g.OH) continue;
        const T *src = col + ((int64_t)(c * g.kh + i) * g.kw) * ncols + n * ohw + oh * g.OW;
        for (IT j = 0; j < g.kw; j++) {
          IT tw = w + g.pw - j * g.dw;
          if (tw < 0) break;
          IT ow = g.sw == 1 ? tw : tw / g.sw;
          if (ow * g.sw != tw || ow >= g.OW) continue;
          acc += src[(int64_t)j * ncols + ow];
        }
      }
      bf_store(x + (int64_t)pl * H * W + hw, acc);
    }
  }
}

/* Blocks along x for runs of `per_plane` positions, each thread taking about
 * eight (so that the set-up of its walk is paid once for several). */
static dim3 grid_walk(int64_t per_plane, int64_t planes) {
  int64_t bx = (per_plane + RL_THREADS * 8 - 1) / (RL_THREADS * 8);
  if (bx > 65535) bx = 65535;
  if (bx < 1) bx = 1;
  return dim3((unsigned)bx, (unsigned)(planes < 65535 ? (planes > 0 ? planes : 1) : 65535));
}

int rl_cuda_im2col(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H, int64_t W,
                   const int64_t *g, void *col) {
  int64_t rows = C * g[G_KH] * g[G_KW], ncols = nb * g[G_OH] * g[G_OW];
  if (rows * ncols == 0) return 0;
  if (dt == RL_BF16) { /* a bf16 convolution's col: bits moved, 0 is +0 */
    RL_LAUNCH_IT(fits32(ncols, nb * C * H * W), (im2col_kernel<uint16_t, IT>),
                 grid_walk(ncols, rows), (const uint16_t *)x, (IT)nb, (IT)C, (IT)H, (IT)W,
                 geom_of<IT>(g), (uint16_t *)col);
    LAUNCH_CHECK("im2col_kernel");
    return 0;
  }
  RL_DISPATCH_FLOAT("conv2d", dt,
                    RL_LAUNCH_IT(fits32(ncols, nb * C * H * W), (im2col_kernel<T, IT>),
                                 grid_walk(ncols, rows), (const T *)x, (IT)nb, (IT)C, (IT)H,
                                 (IT)W, geom_of<IT>(g), (T *)col));
  LAUNCH_CHECK("im2col_kernel");
  return 0;
}

int rl_cuda_col2im(rl_dtype dt, const void *col, int64_t nb, int64_t C, int64_t H, int64_t W,
                   const int64_t *g, void *x) {
  int64_t planes = nb * C, ncols = nb * g[G_OH] * g[G_OW];
  if (planes * H * W == 0) return 0;
  if (dt == RL_BF16) { /* an f32 col, rounded once into bf16 x */
    RL_LAUNCH_IT(fits32(ncols, planes * H * W), (col2im_kernel<float, uint16_t, IT>),
                 grid_walk(H * W, planes), (const float *)col, (IT)nb, (IT)C, (IT)H, (IT)W,
                 geom_of<IT>(g), (uint16_t *)x);
    LAUNCH_CHECK("col2im_kernel");
    return 0;
  }
  RL_DISPATCH_FLOAT("conv2d", dt,
                    RL_LAUNCH_IT(fits32(ncols, planes * H * W), (col2im_kernel<T, T, IT>),
                                 grid_walk(H * W, planes), (const T *)col, (IT)nb, (IT)C, (IT)H,
                                 (IT)W, geom_of<IT>(g), (T *)x));
  LAUNCH_CHECK("col2im_kernel");
  return 0;
}

/* ---- the conv entries -------------------------------------------------------- */

/* The figures engine/conv_gemm.c runs with on the GPU.  On a GPU the cost
 * is per launch, not per cache miss: one GEMM for as many images as 256 MB
 * of col (or of V, or of M) allows.  Winograd needs 32+ channels, in and
 * out, to beat im2col: below, its 16 GEMMs are too thin.  Measured on an
 * H200, batch 128 at 32x32: 64->64 forward 0.49 -> 0.26 ms, forward + dx
 * 0.99 -> 0.55 ms; but 16->64 forward 0.14 -> 0.17 ms, forward + dx 0.30 ->
 * 0.34 ms. */
/* bf16's implicit GEMM (kernels/cuda_igemm.cu) replaces im2col for the
 * forward, dW and stride-1 dx only where RL_CUDA_CONV=implicit
 * asks: it has not yet been timed against im2col + cuBLAS on a GPU
 * (scripts/bench_conv.lua --device cuda --dtype bf16 shows both). */
static int cuda_conv_tuning(rl_conv_tuning *t) {
  static const char *env; /* read once; a bad value fails every convolution */
  static int implicit = -1;
  if (implicit < 0) {
    env = getenv("RL_CUDA_CONV");
    implicit = env && *env && strcmp(env, "implicit") && strcmp(env, "im2col") ? 2
               : env && !strcmp(env, "implicit");
  }
  if (implicit == 2)
    return rl_err("RL_CUDA_CONV must be 'implicit' or 'im2col', not '%s'", env);
  t->work_bytes = (int64_t)256 << 20;
  t->wino_min_channels = 32;
  t->sms = rl_cuda_sms();
  t->implicit_bf16 = implicit == 1;
  return 0;
}

int rl_cuda_conv2d(const int64_t *geom, rl_tensor *x, rl_tensor *w, rl_tensor *b, rl_tensor *y) {
  rl_conv_tuning t;
  return cuda_conv_tuning(&t) ? -1 : rl_conv_gemm(&t, geom, x, w, b, y);
}

int rl_cuda_conv2d_bwd(const int64_t *geom, rl_tensor *x, rl_tensor *w, rl_tensor *dy,
                       rl_tensor *dx, rl_tensor *dw, rl_tensor *db) {
  rl_conv_tuning t;
  return cuda_conv_tuning(&t) ? -1 : rl_conv_gemm_bwd(&t, geom, x, w, dy, dx, dw, db);
}
