/* cuda_pool.cu - 2-D max and average pooling on NCHW planes, forward and
 * backward.
 *
 * Every backward gathers: a thread owns one input element and sums what the
 * windows covering it contribute, outputs in row-major order as the CPU
 * backend adds them, so the results are deterministic and equal the CPU's
 * bits. */
#include "cuda_common.cuh"

/* a / b rounded up, for either sign of a (b > 0) */
template <typename IT> __device__ __forceinline__ IT ceil_div(IT a, IT b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/* Output positions [lo, hi) whose window (start o*s - p, size k) covers h. */
template <typename IT>
__device__ __forceinline__ void covering(IT h, IT k, IT s, IT p, IT O, IT *lo, IT *hi) {
  IT a = ceil_div<IT>(h + p - (k - 1), s), b = (h + p) / s + 1;
  *lo = a < 0 ? 0 : a;
  *hi = b > O ? O : b;
}

/* Max pooling stores S and compares in wide_of<S>::type: f32 and f64 as
 * they are; bf16 (uint16_t) widened to f32 exactly, the maximum rounded
 * back (exact: it was bf16; a signalling NaN comes out quiet), as the CPU's
 * maxpool_bf16: the bits f32 pooling of the widened input gives. */

/* A thread per output, a plane per grid y: the window scanned row by row,
 * the first maximum kept, a NaN taking over from a number (as the CPU). */
template <typename S, typename IT>
__global__ void maxpool_kernel(const S *x, int64_t nc, IT H, IT W, Geom<IT> g, S *y,
                               int64_t *idx) {
  typedef typename wide_of<S>::type T;
  IT ohw = g.OH * g.OW;
  PLANES(pl, nc) {
    const S *src = x + pl * H * W;
    IN_PLANE(p, ohw) {
      IT oh = p / g.OW, ow = p - oh * g.OW;
      IT h0 = oh * g.sh - g.ph, hs = h0 < 0 ? 0 : h0, he = h0 + g.kh > H ? H : h0 + g.kh;
      IT w0 = ow * g.sw - g.pw, ws = w0 < 0 ? 0 : w0, we = w0 + g.kw > W ? W : w0 + g.kw;
      IT bi = hs * W + ws;
      T best = bf_load(&src[bi]);
      for (IT h = hs; h < he; h++)
        for (IT w = ws; w < we; w++) {
          T v = bf_load(&src[h * W + w]);
          if (v > best || (v != v && best == best)) {
            best = v;
            bi = h * W + w;
          }
        }
      bf_store(&y[pl * ohw + p], best);
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

/* bf16 max pooling (ops_pool.c lets bf16 through to max pooling only; its
 * backward runs in f32).  f16 and the other ops refuse the half types. */
int rl_cuda_maxpool2d(rl_dtype dt, const void *x, int64_t nc, int64_t H, int64_t W,
                      const int64_t *g, void *y, int64_t *idx) {
  if (dt == RL_BF16) {
    if (g[G_OH] * g[G_OW] * nc == 0) return 0;
    RL_LAUNCH_IT(fits32(H * W, g[G_OH] * g[G_OW] + H * W), (maxpool_kernel<uint16_t, IT>),
                 grid2(g[G_OH] * g[G_OW], nc), (const uint16_t *)x, nc, (IT)H, (IT)W,
                 geom_of<IT>(g), (uint16_t *)y, idx);
    LAUNCH_CHECK("maxpool_kernel");
    return 0;
  }
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
