/* cuda_conv.cu - im2col / col2im and 2-D pooling on NCHW planes.
 *
 * Every backward gathers: a thread owns one input element and sums what the
 * windows covering it contribute, in the order the CPU backend adds them
 * (taps in (i, j) order for col2im, outputs in row-major order for
 * pooling), so the results are deterministic and equal the CPU's bits. */
#include "cuda_common.cuh"

/* Geometry as plain values (the array of backend.h lives on the host),
 * in the index type of the launch: 32-bit whenever every offset fits, as
 * 64-bit division costs several times more on a GPU. */
template <typename IT> struct Geom {
  IT kh, kw, sh, sw, ph, pw, dh, dw, OH, OW;
};

template <typename IT> static Geom<IT> geom_of(const int64_t *g) {
  Geom<IT> q = {(IT)g[G_KH], (IT)g[G_KW], (IT)g[G_SH], (IT)g[G_SW], (IT)g[G_PH],
                (IT)g[G_PW], (IT)g[G_DH], (IT)g[G_DW], (IT)g[G_OH], (IT)g[G_OW]};
  return q;
}

template <typename IT> __device__ __forceinline__ IT ceil_div(IT a, IT b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

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
 * taps in (i, j) order, as the CPU adds them. */
template <typename T, typename IT>
__global__ void col2im_kernel(const T *col, IT nb, IT C, IT H, IT W, Geom<IT> g, T *x) {
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
      x[(int64_t)pl * H * W + hw] = acc;
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
  RL_DISPATCH_FLOAT("conv2d", dt,
                    RL_LAUNCH_IT(fits32(ncols, planes * H * W), (col2im_kernel<T, IT>),
                                 grid_walk(H * W, planes), (const T *)col, (IT)nb, (IT)C, (IT)H,
                                 (IT)W, geom_of<IT>(g), (T *)x));
  LAUNCH_CHECK("col2im_kernel");
  return 0;
}

/* ---- pooling --------------------------------------------------------------- */

/* Output positions [lo, hi) whose window (start o*s - p, size k) covers h. */
template <typename IT>
__device__ __forceinline__ void covering(IT h, IT k, IT s, IT p, IT O, IT *lo, IT *hi) {
  IT a = ceil_div<IT>(h + p - (k - 1), s), b = (h + p) / s + 1;
  *lo = a < 0 ? 0 : a;
  *hi = b > O ? O : b;
}

/* A thread per output, a plane per grid y: the window scanned row by row,
 * the first maximum kept, a NaN taking over from a number (as the CPU). */
template <typename T, typename IT>
__global__ void maxpool_kernel(const T *x, int64_t nc, IT H, IT W, Geom<IT> g, T *y,
                               int64_t *idx) {
  IT ohw = g.OH * g.OW;
  PLANES(pl, nc) {
    const T *src = x + pl * H * W;
    IN_PLANE(p, ohw) {
      IT oh = p / g.OW, ow = p - oh * g.OW;
      IT h0 = oh * g.sh - g.ph, hs = h0 < 0 ? 0 : h0, he = h0 + g.kh > H ? H : h0 + g.kh;
      IT w0 = ow * g.sw - g.pw, ws = w0 < 0 ? 0 : w0, we = w0 + g.kw > W ? W : w0 + g.kw;
      IT bi = hs * W + ws;
      T best = src[bi];
      for (IT h = hs; h < he; h++)
        for (IT w = ws; w < we; w++) {
          T v = src[h * W + w];
          if (v > best || (v != v && best == best)) {
            best = v;
            bi = h * W + w;
          }
        }
      y[pl * ohw + p] = best;
      idx[pl * ohw + p] = bi;
    }
  }
}

/* A thread per input element: the covering outputs whose maximum it was, in
 * output order (the order the CPU adds them). */
template <typename T, typename IT>
__global__ void maxpool_bwd_kernel(const T *dy, const int64_t *idx, int64_t nc, IT H, IT W,
                                   Geom<IT> g, T *dx) {
  IT ohw = g.OH * g.OW;
  PLANES(pl, nc) {
    const T *gy = dy + pl * ohw;
    const int64_t *ix = idx + pl * ohw;
    IN_PLANE(hw, H * W) {
      IT h = hw / W, w = hw - h * W, ohl, ohh, owl, owh;
      covering<IT>(h, g.kh, g.sh, g.ph, g.OH, &ohl, &ohh);
      covering<IT>(w, g.kw, g.sw, g.pw, g.OW, &owl, &owh);
      T acc = 0;
      for (IT oh = ohl; oh < ohh; oh++)
        for (IT ow = owl; ow < owh; ow++) {
          IT o = oh * g.OW + ow;
          if (ix[o] == hw) acc += gy[o];
        }
      dx[pl * H * W + hw] = acc;
    }
  }
}

template <typename T, typename IT>
__global__ void avgpool_kernel(const T *x, int64_t nc, IT H, IT W, Geom<IT> g, bool count_pad,
                               T *y) {
  IT ohw = g.OH * g.OW;
  PLANES(pl, nc) {
    const T *src = x + pl * H * W;
    IN_PLANE(p, ohw) {
      IT oh = p / g.OW, ow = p - oh * g.OW;
      IT h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
      double s = 0;
      IT cnt = 0;
      for (IT h = h0; h < h0 + g.kh; h++)
        for (IT w = w0; w < w0 + g.kw; w++)
          if (h >= 0 && h < H && w >= 0 && w < W) {
            s += src[h * W + w];
            cnt++;
          }
      IT div = count_pad ? g.kh * g.kw : (cnt ? cnt : 1);
      y[pl * ohw + p] = (T)(s / (double)div);
    }
  }
}

template <typename T, typename IT>
__global__ void avgpool_bwd_kernel(const T *dy, int64_t nc, IT H, IT W, Geom<IT> g,
                                   bool count_pad, T *dx) {
  PLANES(pl, nc) {
    const T *gy = dy + pl * g.OH * g.OW;
    IN_PLANE(hw, H * W) {
      IT h = hw / W, w = hw - h * W, ohl, ohh, owl, owh;
      covering<IT>(h, g.kh, g.sh, g.ph, g.OH, &ohl, &ohh);
      covering<IT>(w, g.kw, g.sw, g.pw, g.OW, &owl, &owh);
      double acc = 0;
      for (IT oh = ohl; oh < ohh; oh++)
        for (IT ow = owl; ow < owh; ow++) {
          IT div = g.kh * g.kw;
          if (!count_pad) {
            IT a0 = oh * g.sh - g.ph, b0 = ow * g.sw - g.pw;
            IT a1 = a0 + g.kh, b1 = b0 + g.kw;
            a0 = a0 < 0 ? 0 : a0;
            b0 = b0 < 0 ? 0 : b0;
            a1 = a1 > H ? H : a1;
            b1 = b1 > W ? W : b1;
            div = (a1 - a0) * (b1 - b0);
          }
          acc += (double)gy[oh * g.OW + ow] / (double)div;
        }
      dx[pl * H * W + hw] = (T)acc;
    }
  }
}

/* Launch KERNEL<T, IT> over `planes` planes of `per` positions, with 32-bit
 * index math when a plane's offsets fit. */
#define POOL_LAUNCH(opname, kname, per, planes, ...)                              \
  do {                                                                            \
    if ((per) * (planes) == 0) return 0;                                          \
    RL_DISPATCH_FLOAT(opname, dt,                                                 \
                      RL_LAUNCH_IT(fits32(H * W, g[G_OH] * g[G_OW] + H * W),      \
                                   (kname<T, IT>), grid2(per, planes), __VA_ARGS__)); \
    LAUNCH_CHECK(#kname);                                                         \
  } while (0)

int rl_cuda_maxpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                      const int64_t *g, void *y, int64_t *idx) {
  POOL_LAUNCH("max_pool2d", maxpool_kernel, g[G_OH] * g[G_OW], nc, (const T *)x, nc, (IT)H,
              (IT)W, geom_of<IT>(g), (T *)y, idx);
  return 0;
}

int rl_cuda_maxpool2d_bwd(rl_dtype dt, const void *dy, const int64_t *idx, int64_t nc,
                          int64_t H, int64_t W, const int64_t *g, void *dx) {
  POOL_LAUNCH("max_pool2d", maxpool_bwd_kernel, H * W, nc, (const T *)dy, idx, nc, (IT)H,
              (IT)W, geom_of<IT>(g), (T *)dx);
  return 0;
}

int rl_cuda_avgpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                      const int64_t *g, bool count_pad, void *y) {
  POOL_LAUNCH("avg_pool2d", avgpool_kernel, g[G_OH] * g[G_OW], nc, (const T *)x, nc, (IT)H,
              (IT)W, geom_of<IT>(g), count_pad, (T *)y);
  return 0;
}

int rl_cuda_avgpool2d_bwd(rl_dtype dt, const void *dy, int64_t nc, int64_t H, int64_t W,
                          const int64_t *g, bool count_pad, void *dx) {
  POOL_LAUNCH("avg_pool2d", avgpool_bwd_kernel, H * W, nc, (const T *)dy, nc, (IT)H, (IT)W,
              geom_of<IT>(g), count_pad, (T *)dx);
  return 0;
}
