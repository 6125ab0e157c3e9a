/* cuda_igemm.cu - bf16 convolution as an implicit GEMM on the tensor cores:
 * the backend's conv_implicit and conv_implicit_dw entries (engine/
 * conv_gemm.c's implicit path).
 *
 * y [N, Co, OH, OW] = W [Co, K] @ col [K, P], K = Ci*kh*kw and P = N*OH*OW,
 * as im2col + GEMM computes it, but col is never written: each block
 * gathers the 32 x 128 slice of col it needs from x [N, Ci, H, W] into
 * shared memory, beside the 128 x 32 slice of W, and multiplies them with
 * mma.sync m16n8k16 (bf16 operands, f32 sums), its fragments read from
 * shared memory by ldmatrix (x4: four 8x8 matrices an instruction).
 * im2col writes col (9 times x's bytes for a 3x3 layer) and the GEMM reads
 * it back; here x is read from L2 instead.  By the bytes each moves, col's traffic is most of a
 * bf16 convolution's time once its GEMM runs on the tensor cores (an
 * estimate: no GPU has timed this kernel yet; kernels/cuda_conv.cu times
 * it against im2col on each shape's first use and takes the faster).
 *
 * A block: 128 output channels x 128 output pixels, 8 warps of 64 x 32;
 * the k loop in steps of 32, double-buffered (the next slice is loaded into
 * registers while the current one is multiplied).  A slice's k -> (channel,
 * tap) decomposition is a table that 32 threads fill once per slice.  A
 * thread's 16 values of A (W's row, or dy's for dW) come in two 16-byte
 * loads where they lie contiguous and aligned (K a multiple of 8; 16
 * pixels of one image), else one by one; B's are gathered one by one.
 *
 * Flipped (an input gradient of a stride-1, undilated convolution): x is
 * dy [N, O, OH, OW], padded by k - 1 - p, and the weight [O, C, kh, kw] is
 * read with its in and out channels swapped and each kernel rotated by 180
 * degrees, so that the result is dx [N, C, H, W].
 *
 * The weight gradient is the same loop with other loads: dW [O, K] = dy
 * [O, P] @ col [K, P]^T, the sum over pixels cut into chunks (below).
 *
 * Each output is its f32 sum (in the tensor cores' order), plus the bf16
 * bias, rounded once to bf16.  No atomics: the same bits every run. */
#include "cuda_common.cuh"
#include "cuda_mma.cuh"

#define IG_BM 128 /* output channels per block */
#define IG_BN 128 /* output pixels per block */
#define IG_BK 32  /* k per slice */
/* a shared row: 32 bf16 of k as 16 words, padded to 20 (80 bytes, five
 * times ldmatrix's 16) so that the 8 rows an ldmatrix phase reads, 16
 * bytes each, fall in 32 different banks */
#define IG_ROW 20
#define IG_THREADS 256

struct IgGeom {
  int Ci, H, W, Co, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw;
  int K;    /* Ci * kh * kw */
  int flip; /* an input gradient: the weight read as described above */
  long long P; /* N * OH * OW */
};

typedef uint32_t IgTile[IG_BM][IG_ROW]; /* IG_BM == IG_BN: one type for both */
static_assert(IG_BM == 128 && IG_BN == 128 && IG_BK == 32 && IG_THREADS == 256,
              "IgRegs::place gives each of 256 threads a row of 128 and half of 32");

/* The slice loop of a block, shared by both kernels: L (a loader) fills
 * its table of slice s into buffer b (table(b, s), threads 0..31), loads a
 * slice into registers by a table (load(b)) and stores those into the
 * shared tiles (store(A, B)): A's rows are the GEMM's m, B's its n, both
 * along the sum's index in pairs of bf16.  acc: the warp's 64 x 32. */
template <class L>
__device__ __forceinline__ void igemm_loop(L &ld, IgTile *As, IgTile *Bs, int nk,
                                           float (&acc)[4][4][4]) {
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int wm = (warp & 1) * 64, wn = (warp >> 1) * 32;
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;
  if (nk <= 0) return;
  ld.table(0, 0);
  __syncthreads();
  ld.load(0);
  ld.store(As[0], Bs[0]);
  if (nk > 1) ld.table(1, 1);
  __syncthreads();
  for (int s = 0; s < nk; s++) {
    int cur = s & 1, nxt = cur ^ 1;
    if (s + 1 < nk) ld.load(nxt);
#pragma unroll
    for (int ks = 0; ks < IG_BK / 16; ks++) {
      int kw0 = ks * 8; /* words */
      uint32_t fa[4][4], fb[4][2];
      /* A's fragment i: rows wm + 16 i .. + 15 by k words kw0 .. + 7, as
       * four 8x8 matrices (rows + 0 and + 8, words + 0 and + 4): lane l
       * points at row l % 16, words + 4 (l / 16) */
#pragma unroll
      for (int i = 0; i < 4; i++)
        rl_ldmatrix_x4(fa[i], &As[cur][wm + i * 16 + (lane & 15)][kw0 + 4 * (lane >> 4)]);
      /* B's fragments j and j + 1: columns wn + 8 j .. + 15 by the same k,
       * matrices (j, + 0), (j, + 4), (j + 1, + 0), (j + 1, + 4) */
#pragma unroll
      for (int j = 0; j < 4; j += 2) {
        uint32_t r[4];
        int c = wn + j * 8 + (lane & 7) + 8 * (lane >> 4);
        rl_ldmatrix_x4(r, &Bs[cur][c][kw0 + 4 * (lane >> 3 & 1)]);
        fb[j][0] = r[0], fb[j][1] = r[1], fb[j + 1][0] = r[2], fb[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) rl_mma_16816(acc[i][j], fa[i], fb[j]);
    }
    if (s + 1 < nk) ld.store(As[nxt], Bs[nxt]);
    /* table cur served this slice's loads, one iteration ago */
    if (s + 2 < nk) ld.table(cur, s + 2);
    __syncthreads();
  }
}

/* A thread's share of a slice, held in registers between load and store:
 * 16 bf16 of A's row arow (sum index acol .. acol + 15) and 16 of B's row
 * brow (sum index 2 bw .. 2 bw + 15), as pairs packed low index first.
 * Thread t takes row t % 128 of both and the half t / 128 of the sum's
 * 32: a warp's loads of one index run along 32 rows (B's: 32 pixels, or
 * 32 k of dW's col), and its 16-byte stores into shared memory, 8 rows a
 * phase at 80 bytes apart, hit every bank once. */
struct IgRegs {
  int arow, acol, brow, bw;
  uint32_t ra[8], rb[8];

  __device__ __forceinline__ void place(int tid) {
    arow = brow = tid & (IG_BM - 1);
    acol = (tid >> 7) * 16;
    bw = (tid >> 7) * 8;
  }

  /* ra from the elements a(index) of the sum, rb likewise from b(index) */
  template <class FA> __device__ __forceinline__ void gather_a(FA a) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
      int j = acol + 2 * i;
      ra[i] = a(j) | a(j + 1) << 16;
    }
  }
  template <class FB> __device__ __forceinline__ void gather_b(FB b) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
      int j = 2 * (bw + i);
      rb[i] = b(j) | b(j + 1) << 16;
    }
  }
  /* ra from 16 bf16 in a row at p, 16-byte aligned: two vector loads,
   * whose little-endian words are the pairs gather_a packs */
  __device__ __forceinline__ void load_a16(const uint16_t *p) {
    const uint4 *v = reinterpret_cast<const uint4 *>(p);
    uint4 v0 = v[0], v1 = v[1];
    ra[0] = v0.x, ra[1] = v0.y, ra[2] = v0.z, ra[3] = v0.w;
    ra[4] = v1.x, ra[5] = v1.y, ra[6] = v1.z, ra[7] = v1.w;
  }
  /* two 16-byte stores each: rows are 80 bytes, acol / 2 and bw 0 or 8 words */
  __device__ __forceinline__ void store(IgTile &A, IgTile &B) {
    uint4 *a = reinterpret_cast<uint4 *>(&A[arow][acol / 2]);
    uint4 *b = reinterpret_cast<uint4 *>(&B[brow][bw]);
    a[0] = uint4{ra[0], ra[1], ra[2], ra[3]};
    a[1] = uint4{ra[4], ra[5], ra[6], ra[7]};
    b[0] = uint4{rb[0], rb[1], rb[2], rb[3]};
    b[1] = uint4{rb[4], rb[5], rb[6], rb[7]};
  }
};

/* Where k of a slice reads from: x at (its pixel's base) + xoff, valid
 * when the row and column offsets (roff, soff) keep it inside the image;
 * W at (row m) * am + woff, woff < 0 past K. */
struct KTab {
  int xoff[IG_BK], roff[IG_BK], soff[IG_BK], woff[IG_BK];
  int k0; /* the slice's first k */
};

/* The forward's loader: A = W [Co, K] (or the flipped weight), B = col
 * [K, P] gathered from x. */
struct FwdLoad : IgRegs {
  const uint16_t *x, *wrow;
  IgGeom g;
  KTab *kt;
  int ih0, iw0;
  bool arow_ok, p_ok;
  bool avec; /* A's row is W's, contiguous along k and 16-byte aligned */
  long long xbase;

  __device__ __forceinline__ void table(int b, int slice) {
    int tid = threadIdx.x;
    if (tid >= IG_BK) return;
    KTab &t = kt[b];
    int k = slice * IG_BK + tid, khw = g.kh * g.kw;
    if (tid == 0) t.k0 = slice * IG_BK;
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
  __device__ __forceinline__ void load(int b) {
    const KTab &t = kt[b];
    if (avec && t.k0 + acol + 16 <= g.K)
      load_a16(wrow + t.k0 + acol); /* the slice's k are W's columns */
    else
      gather_a([&](int kk) -> uint32_t {
        int wo = t.woff[kk];
        return arow_ok && wo >= 0 ? wrow[wo] : 0;
      });
    gather_b([&](int kk) -> uint32_t {
      int ih = ih0 + t.roff[kk], iw = iw0 + t.soff[kk];
      return p_ok && (unsigned)ih < (unsigned)g.H && (unsigned)iw < (unsigned)g.W
                 ? x[xbase + t.xoff[kk]]
                 : 0;
    });
  }
};

__global__ __launch_bounds__(IG_THREADS) void igemm_bf16_kernel(const uint16_t *x,
                                                                const uint16_t *w,
                                                                const uint16_t *bias,
                                                                uint16_t *y, IgGeom g) {
  __shared__ __align__(16) IgTile As[2]; /* ldmatrix reads rows of 16 bytes */
  __shared__ __align__(16) IgTile Bs[2];
  __shared__ KTab kt[2];
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int m0 = blockIdx.y * IG_BM;
  long long p0 = (long long)blockIdx.x * IG_BN;

  FwdLoad ld;
  ld.x = x;
  ld.g = g;
  ld.kt = kt;
  ld.place(tid); /* A: W's row m0 + arow; B: pixel p0 + brow */
  ld.arow_ok = m0 + ld.arow < g.Co;
  ld.wrow = w + (long long)(m0 + ld.arow) * (g.flip ? g.kh * g.kw : g.K);
  ld.avec = ld.arow_ok && !g.flip && g.K % 8 == 0 && ((uintptr_t)w & 15) == 0;
  long long p = p0 + ld.brow;
  ld.p_ok = p < g.P;
  ld.ih0 = ld.iw0 = 0;
  ld.xbase = 0;
  if (ld.p_ok) {
    long long ohw = (long long)g.OH * g.OW;
    long long n = p / ohw;
    int pix = (int)(p - n * ohw), oh = pix / g.OW, ow = pix - oh * g.OW;
    ld.ih0 = oh * g.sh - g.ph;
    ld.iw0 = ow * g.sw - g.pw;
    ld.xbase = n * g.Ci * g.H * g.W + (long long)ld.ih0 * g.W + ld.iw0;
  }

  float acc[4][4][4];
  igemm_loop(ld, As, Bs, (g.K + IG_BK - 1) / IG_BK, acc);

  /* y[n, m, pix] = bf16(acc + bias[m]) */
  int wm = (warp & 1) * 64, wn = (warp >> 1) * 32, gr = lane >> 2, tq = lane & 3;
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

/* ---- the weight gradient -------------------------------------------------------
 *
 * dW [O, K] = dy [O, P] @ col [K, P]^T, the sum over the pixels P cut into
 * S chunks (grid z) so that the small output keeps the GPU busy: each
 * block sums its chunk's slices of 32 pixels into ws [S, O, K] (f32), and
 * dw = bf16(ws summed over the chunks in order): deterministic. */

/* Where pixel j of a slice is: dy at dyoff + o * OH*OW, x at xb + (the
 * tap's offset), its window's corner (ih0, iw0); ih0 far outside every
 * image and dyoff < 0 past the chunk. */
struct PTab {
  long long dyoff[IG_BK], xb[IG_BK];
  int ih0[IG_BK], iw0[IG_BK];
};

struct DwLoad : IgRegs {
  const uint16_t *x, *dy;
  IgGeom g;
  PTab *pt;
  long long pstart, pend; /* the block's chunk of pixels */
  long long orow;         /* dy's offset of A's row: its channel o times OH*OW */
  int O, xoff, roff, soff;
  bool arow_ok, k_ok;
  bool avec; /* A's row is dy's, 16-byte aligned */

  __device__ __forceinline__ void table(int b, int slice) {
    int tid = threadIdx.x;
    if (tid >= IG_BK) return;
    PTab &t = pt[b];
    long long p = pstart + (long long)slice * IG_BK + tid;
    if (p < pend) {
      long long ohw = (long long)g.OH * g.OW, n = p / ohw;
      int pix = (int)(p - n * ohw), oh = pix / g.OW, ow = pix - oh * g.OW;
      t.ih0[tid] = oh * g.sh - g.ph;
      t.iw0[tid] = ow * g.sw - g.pw;
      t.dyoff[tid] = n * O * ohw + pix;
      t.xb[tid] = n * g.Ci * g.H * g.W + (long long)t.ih0[tid] * g.W + t.iw0[tid];
    } else {
      t.ih0[tid] = -(1 << 29);
      t.iw0[tid] = 0;
      t.dyoff[tid] = -1;
      t.xb[tid] = 0;
    }
  }
  __device__ __forceinline__ void load(int b) {
    const PTab &t = pt[b];
    /* dyoff rises by at least 1 a pixel (and is -1 past the chunk): 15
     * over the 16 pixels means one run of them, inside one image */
    long long d0 = t.dyoff[acol];
    if (avec && d0 >= 0 && t.dyoff[acol + 15] == d0 + 15 && ((d0 + orow) & 7) == 0)
      load_a16(dy + d0 + orow);
    else
      gather_a([&](int j) -> uint32_t {
        long long d = t.dyoff[j];
        return arow_ok && d >= 0 ? dy[d + orow] : 0;
      });
    gather_b([&](int j) -> uint32_t {
      int ih = t.ih0[j] + roff, iw = t.iw0[j] + soff;
      return k_ok && (unsigned)ih < (unsigned)g.H && (unsigned)iw < (unsigned)g.W
                 ? x[t.xb[j] + xoff]
                 : 0;
    });
  }
};

__global__ __launch_bounds__(IG_THREADS) void igemm_dw_bf16_kernel(const uint16_t *x,
                                                                   const uint16_t *dy,
                                                                   float *ws, IgGeom g,
                                                                   long long chunk) {
  __shared__ __align__(16) IgTile As[2];
  __shared__ __align__(16) IgTile Bs[2];
  __shared__ PTab pt[2];
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int O = g.Co, m0 = blockIdx.y * IG_BM, k0 = blockIdx.x * IG_BN;
  long long pstart = (long long)blockIdx.z * chunk;
  long long pend = pstart + chunk < g.P ? pstart + chunk : g.P;

  DwLoad ld;
  ld.x = x;
  ld.dy = dy;
  ld.g = g;
  ld.pt = pt;
  ld.pstart = pstart;
  ld.pend = pend;
  ld.O = O;
  ld.place(tid); /* A: dy's row o = m0 + arow; B: col's row k = k0 + brow */
  ld.arow_ok = m0 + ld.arow < O;
  ld.orow = (long long)(m0 + ld.arow) * g.OH * g.OW;
  ld.avec = ld.arow_ok && ((uintptr_t)dy & 15) == 0;
  int k = k0 + ld.brow, khw = g.kh * g.kw;
  ld.k_ok = k < g.K;
  ld.xoff = ld.roff = ld.soff = 0;
  if (ld.k_ok) {
    int c = k / khw, rs = k - c * khw, r = rs / g.kw, s = rs - r * g.kw;
    ld.roff = r * g.dh;
    ld.soff = s * g.dw;
    ld.xoff = c * g.H * g.W + r * g.dh * g.W + s * g.dw;
  }

  float acc[4][4][4];
  igemm_loop(ld, As, Bs, (int)((pend - pstart + IG_BK - 1) / IG_BK), acc);

  int wm = (warp & 1) * 64, wn = (warp >> 1) * 32, gr = lane >> 2, tq = lane & 3;
  float *out = ws + (long long)blockIdx.z * O * g.K;
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      int m = m0 + wm + i * 16 + gr + 8 * h;
      if (m >= O) continue;
#pragma unroll
      for (int j = 0; j < 4; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          int kk = k0 + wn + j * 8 + 2 * tq + e;
          if (kk < g.K) out[(long long)m * g.K + kk] = acc[i][j][2 * h + e];
        }
    }
}

/* dw[i] = bf16(sum over s of ws[s][i]), s in order. */
__global__ void igemm_dw_sum_kernel(const float *ws, long long n, int S, uint16_t *dw) {
  GRID_STRIDE(i, n) {
    float v = 0.f;
    for (int s = 0; s < S; s++) v += ws[s * n + i];
    dw[i] = rl_bf16_of_f32(v);
  }
}

/* The geometry of a convolution for the kernels; false (with an error
 * set) when its offsets do not fit int. */
static bool ig_geom(int64_t N, int64_t C, int64_t H, int64_t W, const int64_t *geom, int64_t O,
                    bool flip, IgGeom *g) {
  int64_t khw = geom[G_KH] * geom[G_KW];
  /* offsets within an image and within W are int */
  if (!fits32(C * H * W, O * geom[G_OH] * geom[G_OW]) || !fits32(C * khw * O, khw)) {
    rl_err("conv2d: an image of %lld x %lld x %lld is too large for the implicit GEMM",
           (long long)C, (long long)H, (long long)W);
    return false;
  }
  *g = {(int)C, (int)H, (int)W, (int)O, (int)geom[G_OH], (int)geom[G_OW],
        (int)geom[G_KH], (int)geom[G_KW], (int)geom[G_SH], (int)geom[G_SW],
        (int)geom[G_PH], (int)geom[G_PW], (int)geom[G_DH], (int)geom[G_DW],
        (int)(C * khw), flip ? 1 : 0, (long long)(N * geom[G_OH] * geom[G_OW])};
  return true;
}

int rl_cuda_conv_implicit(rl_dtype dt, const void *x, int64_t N, int64_t C, int64_t H,
                          int64_t W, const int64_t *geom, const void *w, bool flip, int64_t O,
                          const void *b, void *y) {
  if (dt != RL_BF16) return rl_err("conv2d: the implicit GEMM takes bf16, not %s", rl_dtype_name(dt));
  IgGeom g;
  if (!ig_geom(N, C, H, W, geom, O, flip, &g)) return -1;
  if (g.P == 0 || O == 0) return 0;
  int64_t gx = (g.P + IG_BN - 1) / IG_BN, gy = (O + IG_BM - 1) / IG_BM;
  if (gx > 0x7fffffff || gy > 65535)
    return rl_err("conv2d: %lld output pixels are too many for the implicit GEMM", (long long)g.P);
  igemm_bf16_kernel<<<dim3((unsigned)gx, (unsigned)gy), IG_THREADS>>>(
      (const uint16_t *)x, (const uint16_t *)w, (const uint16_t *)b, (uint16_t *)y, g);
  LAUNCH_CHECK("igemm_bf16_kernel");
  return 0;
}

int rl_cuda_conv_implicit_dw(rl_dtype dt, const void *x, const void *dy, int64_t N, int64_t C,
                             int64_t H, int64_t W, const int64_t *geom, int64_t O, int64_t S,
                             float *ws, void *dw) {
  if (dt != RL_BF16) return rl_err("conv2d: the implicit GEMM takes bf16, not %s", rl_dtype_name(dt));
  IgGeom g;
  if (!ig_geom(N, C, H, W, geom, O, false, &g)) return -1;
  int64_t n = O * g.K, chunk = rl_implicit_dw_chunk(g.P, S);
  int64_t gx = (g.K + IG_BN - 1) / IG_BN, gy = (O + IG_BM - 1) / IG_BM;
  if (gx > 0x7fffffff || gy > 65535 || S > 65535)
    return rl_err("conv2d: a weight of %lld x %lld is too large for the implicit GEMM",
                  (long long)O, (long long)g.K);
  igemm_dw_bf16_kernel<<<dim3((unsigned)gx, (unsigned)gy, (unsigned)S), IG_THREADS>>>(
      (const uint16_t *)x, (const uint16_t *)dy, ws, g, (long long)chunk);
  LAUNCH_CHECK("igemm_dw_bf16_kernel");
  igemm_dw_sum_kernel<<<rl_blocks(n), RL_THREADS>>>(ws, (long long)n, (int)S, (uint16_t *)dw);
  LAUNCH_CHECK("igemm_dw_sum_kernel");
  return 0;
}
