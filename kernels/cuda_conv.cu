/* cuda_conv.cu - CUDA's convolution: im2col / col2im on NCHW planes, and
 * the backend's conv entries, which run the composition of
 * engine/conv_gemm.c (Winograd or im2col on cuBLAS, or bf16's implicit
 * GEMM) with the figures measured on the GPU, each bf16 pass by the
 * algorithm measured fastest for its shape.
 *
 * col2im gathers: a thread owns one input element and sums what the windows
 * covering it contribute, taps in (i, j) order as the CPU backend adds
 * them, so the results are deterministic and equal the CPU's bits. */
#include "cuda_common.cuh"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "autograd.h"
#include "cuda.h"
#include "tune.h"
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
static void base_tuning(rl_conv_tuning *t) {
  t->work_bytes = (int64_t)256 << 20;
  t->wino_min_channels = 32;
  t->sms = rl_cuda_sms();
  t->implicit_bf16 = false;
}

/* ---- bf16: each pass's algorithm, measured (engine/tune.h) ----------------------
 *
 * A bf16 pass (the forward, dx, or dW with db) takes im2col + cuBLAS's
 * bf16 GEMM or the implicit GEMM (kernels/cuda_igemm.cu), whichever ran
 * faster on the shape's first use, as cuDNN's benchmark mode chooses:
 * each candidate runs three times, timed by CUDA events, and the best of
 * its last two runs counts.  Both round each output once from its f32
 * sum, in different orders, so the choice is kept for the GPU in the
 * book's file and every later run of a seed gets the same bits.
 * RL_CUDA_CONV=im2col|implicit forces one (where the implicit GEMM cannot
 * run a pass, im2col does).  f32 keeps its rule: Winograd F(2x2, 3x3) for
 * 3x3 stride-1 layers of 32 channels or more, else im2col (timed on an
 * H200, above). */
enum { CC_AUTO, CC_IM2COL, CC_IMPLICIT, CC_N };
static const char *const cc_names[CC_N] = {"auto", "im2col", "implicit"};

/* Bump when a candidate's kernels change enough to redo the choices. */
#define RL_CUDA_CONV_CACHE_VERSION 1

/* The GPU and the candidates: what makes a timing this machine's own.
 * Asked once a device is in use (rl_cuda_conv_cache_path), when its
 * multiprocessors are known. */
static void cuda_identity(char *id, size_t n) {
  char name[256] = "";
  int major = 0, minor = 0, dev = 0;
  cudaGetDevice(&dev);
  rl_cuda_device_name(dev, name, sizeof name, &major, &minor);
  snprintf(id, n, "%s|sm%d%d|%lld SMs|runtime %d|v%d", name, major, minor,
           (long long)rl_cuda_sms(), CUDART_VERSION, RL_CUDA_CONV_CACHE_VERSION);
}

static rl_tune_book book = {"cuda-conv", "RL_CUDA_CONV", "RL_CUDA_CONV_CACHE", cc_names, CC_N,
                            cuda_identity, PTHREAD_MUTEX_INITIALIZER};

extern "C" rl_tune_book *rl_cuda_conv_book(void) { return &book; }

extern "C" const char *rl_cuda_conv_cache_path(void) {
  return rl_cuda_sms() > 0 ? rl_tune_path(&book) : "";
}

/* One pass of a convolution: the forward (y set), or a backward part. */
struct ConvPass {
  const int64_t *geom;
  rl_tensor *x, *w, *b, *y;   /* forward */
  rl_tensor *dy, *dx, *dw, *db; /* backward: dx alone, or dw and db */
};

static int run_pass(const ConvPass *p, int alg) {
  rl_conv_tuning t;
  base_tuning(&t);
  t.implicit_bf16 = alg == CC_IMPLICIT;
  return p->y ? rl_conv_gemm(&t, p->geom, p->x, p->w, p->b, p->y)
              : rl_conv_gemm_bwd(&t, p->geom, p->x, p->w, p->dy, p->dx, p->dw, p->db);
}

/* x's [N, C, H, W] and the output channels, whichever tensors the pass
 * has (a weight gradient's w may be absent). */
static void pass_dims(const ConvPass *p, int64_t d[5]) {
  const rl_tensor *in = p->x ? p->x : p->dx;
  for (int i = 0; i < 4; i++) d[i] = in->size[i];
  d[4] = p->y ? p->w->size[0] : p->dy->size[1];
}

static bool cc_fits(int alg, void *ctx) {
  const ConvPass *p = (const ConvPass *)ctx;
  if (alg == CC_IM2COL) return true;
  if (alg != CC_IMPLICIT) return false;
  int64_t d[5];
  pass_dims(p, d);
  const rl_tensor *out = p->y ? p->y : p->dy;
  return rl_conv_implicit_fits(rl_dev(out)->be, out->dtype, p->geom, p->dx != NULL, d[1], d[2],
                               d[3], d[4]);
}

/* rl_tune_choose's timing: each candidate's best time of its last two of
 * three runs, in ms, by CUDA events; a candidate that fails (out of memory
 * for its workspace, say) drops out with its time 0, and -1 only when both
 * do or the timing itself fails.  (rl_tune_choose keeps the timed runs
 * out of rl.counters.) */
static int time_algs(double *ms, rl_tune_fits_fn fits, void *ctx) {
  const ConvPass *p = (const ConvPass *)ctx;
  cudaEvent_t ev[2];
  cudaError_t e = cudaEventCreate(&ev[0]);
  if (e != cudaSuccess) return rl_cuda_fail("cudaEventCreate", e);
  if ((e = cudaEventCreate(&ev[1])) != cudaSuccess) {
    cudaEventDestroy(ev[0]);
    return rl_cuda_fail("cudaEventCreate", e);
  }
  bool out[CC_N] = {false};
  int rc = 0;
  for (int round = 0; round < 3 && !rc; round++)
    for (int a = CC_IM2COL; a < CC_N && !rc; a++) {
      if (out[a] || !fits(a, ctx)) continue;
      float t = 0;
      if ((e = cudaEventRecord(ev[0], 0)) != cudaSuccess) {
        rc = rl_cuda_fail("cudaEventRecord", e);
        break;
      }
      if (run_pass(p, a)) { /* its error, if the other fails too */
        out[a] = true;
        ms[a] = 0;
        rc = out[CC_IM2COL] && out[CC_IMPLICIT] ? -1 : 0;
        continue;
      }
      if ((e = cudaEventRecord(ev[1], 0)) != cudaSuccess ||
          (e = cudaEventSynchronize(ev[1])) != cudaSuccess ||
          (e = cudaEventElapsedTime(&t, ev[0], ev[1])) != cudaSuccess) {
        rc = rl_cuda_fail("timing a convolution (CUDA events)", e);
        break;
      }
      if (round > 0 && (ms[a] == 0 || t < ms[a])) ms[a] = t > 0 ? t : 1e-6;
    }
  cudaEventDestroy(ev[0]);
  cudaEventDestroy(ev[1]);
  return rc;
}

/* Run a bf16 pass by the algorithm chosen for its shape (rl_tune_choose):
 * im2col where the implicit GEMM cannot run it, else the faster. */
static int run_chosen(const ConvPass *p, const char *pass) {
  int64_t d[5];
  pass_dims(p, d);
  char key[128];
  rl_tune_conv_key(key, sizeof key, RL_BF16, pass, d[0], d[1], d[2], d[3], d[4], p->geom);
  int alg = rl_tune_choose(&book, key, CC_IM2COL, true, cc_fits, time_algs, (void *)p);
  return alg < 0 ? -1 : run_pass(p, alg);
}

/* The forced composition of a spec (rl._conv_path), and every dtype but
 * bf16, run as engine/conv_gemm.c decides. */
static bool chosen_per_pass(const rl_tensor *out) {
  return out->dtype == RL_BF16 && !rl_conv_gemm_forced();
}

/* A misspelt RL_CUDA_CONV fails every convolution, f32 ones included. */
int rl_cuda_conv2d(const int64_t *geom, rl_tensor *x, rl_tensor *w, rl_tensor *b, rl_tensor *y) {
  if (rl_tune_forced(&book) < 0) return -1;
  if (chosen_per_pass(y)) {
    ConvPass p = {geom, x, w, b, y, NULL, NULL, NULL, NULL};
    return run_chosen(&p, "fwd");
  }
  rl_conv_tuning t;
  base_tuning(&t);
  return rl_conv_gemm(&t, geom, x, w, b, y);
}

/* bf16: dx, then dW and db, each by the algorithm chosen for it. */
int rl_cuda_conv2d_bwd(const int64_t *geom, rl_tensor *x, rl_tensor *w, rl_tensor *dy,
                       rl_tensor *dx, rl_tensor *dw, rl_tensor *db) {
  if (rl_tune_forced(&book) < 0) return -1;
  if (chosen_per_pass(dy)) {
    if (dx) {
      ConvPass p = {geom, x, w, NULL, NULL, dy, dx, NULL, NULL};
      if (run_chosen(&p, "bwd-dx")) return -1;
    }
    if (dw) {
      ConvPass p = {geom, x, w, NULL, NULL, dy, NULL, dw, db};
      return run_chosen(&p, "bwd-dw-db");
    }
    dx = NULL; /* formed above; db alone is a sum, with nothing to choose */
  }
  rl_conv_tuning t;
  base_tuning(&t);
  return rl_conv_gemm_bwd(&t, geom, x, w, dy, dx, dw, db);
}
