/* cuda_igemm.cu - bf16 convolution as an implicit GEMM on the tensor cores:
 * the backend's conv_implicit entry (engine/conv_gemm.c's implicit path).
 *
 * y [N, Co, OH, OW] = W [Co, K] @ col [K, P], K = Ci*kh*kw and P = N*OH*OW,
 * as im2col + GEMM computes it, but col is never written: each block
 * gathers the 32 x 128 slice of col it needs from x [N, Ci, H, W] into
 * shared memory, beside the 128 x 32 slice of W, and multiplies them with
 * mma.sync m16n8k16 (bf16 operands, f32 sums).  im2col writes col (9 times
 * x's bytes for a 3x3 layer) and the GEMM reads it back; here x is read
 * from L2 instead, which is where a bf16 convolution spends its time once
 * its GEMM runs on the tensor cores.
 *
 * A block: 128 output channels x 128 output pixels, 8 warps of 64 x 32;
 * the k loop in steps of 32, double-buffered (the next slice is loaded into
 * registers while the current one is multiplied).  A slice's k -> (channel,
 * tap) decomposition is a table that 32 threads fill once per slice.
 *
 * Flipped (an input gradient of a stride-1, undilated convolution): x is
 * dy [N, O, OH, OW], padded by k - 1 - p, and the weight [O, C, kh, kw] is
 * read with its in and out channels swapped and each kernel rotated by 180
 * degrees, so that the result is dx [N, C, H, W].
 *
 * Each output is its f32 sum (in the tensor cores' order), plus the bf16
 * bias, rounded once to bf16.  No atomics: the same bits every run. */
#include "cuda_common.cuh"

#define IG_BM 128 /* output channels per block */
#define IG_BN 128 /* output pixels per block */
#define IG_BK 32  /* k per slice */
/* a shared row: 32 bf16 of k as 16 words, padded to 20 so that the
 * fragment loads (8 rows x 4 words) fall in 32 different banks */
#define IG_ROW 20
#define IG_THREADS 256

/* d += a @ b on a warp: m16n8k16, bf16 in, f32 sums. */
__device__ __forceinline__ void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(RL_CUDA_EMU)
  rl_emu::mma_bf16_16816(d, a, b, __FILE__, __LINE__);
#elif defined(__CUDA_ARCH__)
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

struct IgGeom {
  int Ci, H, W, Co, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw;
  int K;    /* Ci * kh * kw */
  int flip; /* an input gradient: the weight read as described above */
  long long P; /* N * OH * OW */
};

/* Where k of a slice reads from: x at (its pixel's base) + xoff, valid
 * when the row and column offsets (roff, soff) keep it inside the image;
 * W at (row m) * am + woff, woff < 0 past K. */
struct KTab {
  int xoff[IG_BK], roff[IG_BK], soff[IG_BK], woff[IG_BK];
};

__device__ __forceinline__ void ktab_fill(KTab &t, const IgGeom &g, int k0, int tid) {
  if (tid >= IG_BK) return;
  int k = k0 + tid, khw = g.kh * g.kw;
  if (k < g.K) {
    int c = k / khw, rs = k - c * khw, r = rs / g.kw, s = rs - r * g.kw;
    t.roff[tid] = r * g.dh;
    t.soff[tid] = s * g.dw;
    t.xoff[tid] = c * g.H * g.W + r * g.dh * g.W + s * g.dw;
    /* flipped: W'[m][c, r, s] = w[c][m][kh-1-r][kw-1-s] */
    t.woff[tid] = g.flip ? c * g.Co * khw + (khw - 1 - rs) : k;
  } else {
    t.roff[tid] = -(1 << 29); /* outside every image: reads 0 */
    t.soff[tid] = 0;
    t.xoff[tid] = 0;
    t.woff[tid] = -1;
  }
}

__global__ __launch_bounds__(IG_THREADS) void igemm_bf16_kernel(const uint16_t *x,
                                                                const uint16_t *w,
                                                                const uint16_t *bias,
                                                                uint16_t *y, IgGeom g) {
  __shared__ uint32_t As[2][IG_BM][IG_ROW], Bs[2][IG_BN][IG_ROW];
  __shared__ KTab kt[2];
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int m0 = blockIdx.y * IG_BM;
  long long p0 = (long long)blockIdx.x * IG_BN;
  int am = g.flip ? g.kh * g.kw : g.K; /* W's row stride */

  /* A's loads: row tid / 2, k 16 * (tid % 2) .. + 15 */
  int arow = tid >> 1, acol = (tid & 1) * 16;
  bool arow_ok = m0 + arow < g.Co;
  const uint16_t *wrow = w + (long long)(m0 + arow) * am;
  /* B's loads: pixel tid % 128, k pairs tid / 128 + 2 i */
  int bp = tid & (IG_BN - 1), bk = tid >> 7;
  long long p = p0 + bp;
  bool p_ok = p < g.P;
  int ih0 = 0, iw0 = 0;
  long long xbase = 0;
  if (p_ok) {
    long long ohw = (long long)g.OH * g.OW;
    long long n = p / ohw;
    int pix = (int)(p - n * ohw), oh = pix / g.OW, ow = pix - oh * g.OW;
    ih0 = oh * g.sh - g.ph;
    iw0 = ow * g.sw - g.pw;
    xbase = n * g.Ci * g.H * g.W + (long long)ih0 * g.W + iw0;
  }

  uint32_t ra[8], rb[8];
  auto load = [&](const KTab &t) {
    #pragma unroll
    for (int i = 0; i < 8; i++) {
      uint32_t v[2];
      #pragma unroll
      for (int h = 0; h < 2; h++) {
        int kk = acol + 2 * i + h, wo = t.woff[kk];
        v[h] = arow_ok && wo >= 0 ? wrow[wo] : 0;
      }
      ra[i] = v[0] | v[1] << 16;
    }
    #pragma unroll
    for (int i = 0; i < 8; i++) {
      uint32_t v[2];
      #pragma unroll
      for (int h = 0; h < 2; h++) {
        int kk = 2 * (bk + 2 * i) + h;
        int ih = ih0 + t.roff[kk], iw = iw0 + t.soff[kk];
        v[h] = p_ok && (unsigned)ih < (unsigned)g.H && (unsigned)iw < (unsigned)g.W
                   ? x[xbase + t.xoff[kk]]
                   : 0;
      }
      rb[i] = v[0] | v[1] << 16;
    }
  };
  auto store = [&](int buf) {
    #pragma unroll
    for (int i = 0; i < 8; i++) As[buf][arow][acol / 2 + i] = ra[i];
    #pragma unroll
    for (int i = 0; i < 8; i++) Bs[buf][bp][bk + 2 * i] = rb[i];
  };

  /* the warp's 64 x 32 of the block: 4 x 4 tiles of m16 n8 */
  int wm = (warp & 1) * 64, wn = (warp >> 1) * 32, gr = lane >> 2, tq = lane & 3;
  float acc[4][4][4];
  #pragma unroll
  for (int i = 0; i < 4; i++)
    #pragma unroll
    for (int j = 0; j < 4; j++)
      #pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

  int nk = (g.K + IG_BK - 1) / IG_BK;
  ktab_fill(kt[0], g, 0, tid);
  __syncthreads();
  load(kt[0]);
  store(0);
  if (nk > 1) ktab_fill(kt[1], g, IG_BK, tid);
  __syncthreads();
  for (int s = 0; s < nk; s++) {
    int cur = s & 1, nxt = cur ^ 1;
    if (s + 1 < nk) load(kt[nxt]);
    #pragma unroll
    for (int ks = 0; ks < IG_BK / 16; ks++) {
      int kw0 = ks * 8; /* words */
      uint32_t fa[4][4], fb[4][2];
      #pragma unroll
      for (int i = 0; i < 4; i++) {
        int r = wm + i * 16 + gr;
        fa[i][0] = As[cur][r][kw0 + tq];
        fa[i][1] = As[cur][r + 8][kw0 + tq];
        fa[i][2] = As[cur][r][kw0 + 4 + tq];
        fa[i][3] = As[cur][r + 8][kw0 + 4 + tq];
      }
      #pragma unroll
      for (int j = 0; j < 4; j++) {
        int c = wn + j * 8 + gr;
        fb[j][0] = Bs[cur][c][kw0 + tq];
        fb[j][1] = Bs[cur][c][kw0 + 4 + tq];
      }
      #pragma unroll
      for (int i = 0; i < 4; i++)
        #pragma unroll
        for (int j = 0; j < 4; j++) mma_16816(acc[i][j], fa[i], fb[j]);
    }
    if (s + 1 < nk) store(nxt);
    /* kt[cur] served this slice's loads, one iteration ago */
    if (s + 2 < nk) ktab_fill(kt[cur], g, (s + 2) * IG_BK, tid);
    __syncthreads();
  }

  /* y[n, m, pix] = bf16(acc + bias[m]) */
  long long ohw = (long long)g.OH * g.OW;
  #pragma unroll
  for (int j = 0; j < 4; j++)
    #pragma unroll
    for (int e = 0; e < 2; e++) {
      long long q = p0 + wn + j * 8 + 2 * tq + e;
      if (q >= g.P) continue;
      long long n = q / ohw, base = n * g.Co * ohw + (q - n * ohw);
      #pragma unroll
      for (int i = 0; i < 4; i++)
        #pragma unroll
        for (int h = 0; h < 2; h++) {
          int m = m0 + wm + i * 16 + gr + 8 * h;
          if (m >= g.Co) continue;
          float v = acc[i][j][2 * h + e];
          if (bias) v += rl_f32_of_bf16(bias[m]);
          y[base + (long long)m * ohw] = rl_bf16_of_f32(v);
        }
    }
}

int rl_cuda_conv_implicit(rl_dtype dt, const void *x, int64_t N, int64_t C, int64_t H,
                          int64_t W, const int64_t *geom, const void *w, bool flip, int64_t O,
                          const void *b, void *y) {
  if (dt != RL_BF16) return rl_err("conv2d: the implicit GEMM takes bf16, not %s", rl_dtype_name(dt));
  int64_t khw = geom[G_KH] * geom[G_KW], P = N * geom[G_OH] * geom[G_OW];
  /* offsets within an image and within W are int */
  if (!fits32(C * H * W, O * geom[G_OH] * geom[G_OW]) || !fits32(C * khw * O, khw))
    return rl_err("conv2d: an image of %lld x %lld x %lld is too large for the implicit GEMM",
                  (long long)C, (long long)H, (long long)W);
  if (P == 0 || O == 0) return 0;
  IgGeom g = {(int)C, (int)H, (int)W, (int)O, (int)geom[G_OH], (int)geom[G_OW],
              (int)geom[G_KH], (int)geom[G_KW], (int)geom[G_SH], (int)geom[G_SW],
              (int)geom[G_PH], (int)geom[G_PW], (int)geom[G_DH], (int)geom[G_DW],
              (int)(C * khw), flip ? 1 : 0, (long long)P};
  int64_t gx = (P + IG_BN - 1) / IG_BN, gy = (O + IG_BM - 1) / IG_BM;
  if (gx > 0x7fffffff || gy > 65535)
    return rl_err("conv2d: %lld output pixels are too many for the implicit GEMM", (long long)P);
  igemm_bf16_kernel<<<dim3((unsigned)gx, (unsigned)gy), IG_THREADS>>>(
      (const uint16_t *)x, (const uint16_t *)w, (const uint16_t *)b, (uint16_t *)y, g);
  LAUNCH_CHECK("igemm_bf16_kernel");
  return 0;
}
