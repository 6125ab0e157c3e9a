/* cuda_winograd.cu - the transforms of Winograd F(2x2, 3x3) for the
 * Winograd path of engine/conv_gemm.c (3x3 stride-1 convolutions).
 *
 * The engine forms M[xi] = U[xi] @ V[xi] for the 16 tile positions xi with
 * one strided-batched cuBLAS GEMM (and the weight gradient's dU[xi] =
 * dM[xi] @ V[xi]^T likewise); these kernels make U, V and dM, and turn M
 * into the output and dU into dw.  A thread owns one tile (one column of V or M) of one
 * channel and does the 4x4 arithmetic of engine/winograd.h in registers;
 * consecutive threads take consecutive tiles, so every write of V and every
 * read of M is coalesced.  Nothing is accumulated across threads: the
 * results do not depend on scheduling. */
#include "cuda_common.cuh"

#include "winograd.h"

/* The values the engine passes (x, w, U, V, dy, dM, y, b, dw) are stored
 * as S and computed as T: S = T for f32 and f64; for bf16, S = uint16_t
 * (bf16 bits) and T = float, read by bf_load and each transform's result
 * rounded once by bf_store (cuda_common.cuh).  M and dU, the GEMMs' sums,
 * are T. */

/* U [16, O, C] (flipped: [16, C, O], each kernel rotated by 180 degrees)
 * from w [O, C, 3, 3]: a thread per (o, c). */
template <typename T, typename S>
__global__ void wino_weight_kernel(const S *w, int64_t O, int64_t C, bool flip, S *U) {
  GRID_STRIDE(e, O * C) {
    const S *g = w + e * 9;
    T k[3][3], u[4][4];
#pragma unroll
    for (int i = 0; i < 3; i++)
#pragma unroll
      for (int j = 0; j < 3; j++) k[i][j] = bf_load(flip ? g + (2 - i) * 3 + 2 - j : g + i * 3 + j);
    RL_WINO_WEIGHT(T, k, u);
    int64_t o = e / C, c = e - o * C, at = flip ? c * O + o : e;
#pragma unroll
    for (int xi = 0; xi < 16; xi++) bf_store(U + xi * O * C + at, u[xi / 4][xi % 4]);
  }
}

/* Where tile p's 16 values go: chunk s = p / pc of [16, rows, pc] columns
 * (backend.h); the caller adds row * pc and steps by rows * pc. */
template <typename IT> __device__ __forceinline__ int64_t chunk_col(IT p, IT pc, IT rows) {
  IT s = p / pc;
  return (int64_t)s * 16 * rows * pc + (p - s * pc);
}

/* V (rows C, chunks of nbc images) from x [nb, C, H, W]: channel c along
 * grid y, tiles along x. */
template <typename T, typename S, typename IT>
__global__ void wino_input_kernel(const S *x, IT nb, IT C, IT H, IT W, IT ph, IT pw, IT TH,
                                  IT TW, IT nbc, S *V) {
  IT T2 = TH * TW, P = nb * T2, pc = nbc * T2;
  PLANES(cc, C) {
    IT c = (IT)cc;
    IN_PLANE(p, P) {
      IT n = p / T2, r = p - n * T2, th = r / TW, tw = r - th * TW;
      IT h0 = 2 * th - ph, w0 = 2 * tw - pw;
      const S *src = x + ((int64_t)n * C + c) * H * W;
      T d[4][4], v[4][4];
#pragma unroll
      for (int a = 0; a < 4; a++) {
        IT h = h0 + a;
        bool rin = h >= 0 && h < H;
#pragma unroll
        for (int b = 0; b < 4; b++) {
          IT w = w0 + b;
          d[a][b] = rin && w >= 0 && w < W ? bf_load(src + (int64_t)h * W + w) : (T)0;
        }
      }
      RL_WINO_INPUT(T, d, v);
      S *dst = V + chunk_col<IT>(p, pc, C) + (int64_t)c * pc;
      int64_t step = (int64_t)C * pc;
#pragma unroll
      for (int xi = 0; xi < 16; xi++) bf_store(dst + xi * step, v[xi / 4][xi % 4]);
    }
  }
}

/* y [nb, O, OH, OW] (+ b) from M [16, O, P]: channel o along grid y. */
template <typename T, typename S, typename IT>
__global__ void wino_output_kernel(const T *M, IT nb, IT O, IT OH, IT OW, IT TH, IT TW,
                                   const S *b, S *y) {
  IT T2 = TH * TW, P = nb * T2;
  PLANES(oo, O) {
    IT o = (IT)oo;
    T bias = b ? bf_load(b + o) : (T)0;
    IN_PLANE(p, P) {
      const T *src = M + (int64_t)o * P + p;
      int64_t step = (int64_t)O * P;
      T m[4][4], r[2][2];
#pragma unroll
      for (int xi = 0; xi < 16; xi++) m[xi / 4][xi % 4] = src[xi * step];
      RL_WINO_OUTPUT(T, m, r);
      IT n = p / T2, q = p - n * T2, th = q / TW, tw = q - th * TW;
      IT oh = 2 * th, ow = 2 * tw;
      S *dst = y + ((int64_t)n * O + o) * OH * OW + (int64_t)oh * OW + ow;
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
          if (oh + i < OH && ow + j < OW) bf_store(dst + i * OW + j, r[i][j] + bias);
    }
  }
}

/* dM (rows O, chunks of nbc images) from dy [nb, O, OH, OW]: channel o
 * along grid y, tiles along x; outputs past the edge count as zero. */
template <typename T, typename S, typename IT>
__global__ void wino_doutput_kernel(const S *dy, IT nb, IT O, IT OH, IT OW, IT TH, IT TW,
                                    IT nbc, S *dM) {
  IT T2 = TH * TW, P = nb * T2, pc = nbc * T2;
  PLANES(oo, O) {
    IT o = (IT)oo;
    IN_PLANE(p, P) {
      IT n = p / T2, q = p - n * T2, th = q / TW, tw = q - th * TW;
      IT oh = 2 * th, ow = 2 * tw;
      const S *src = dy + ((int64_t)n * O + o) * OH * OW + (int64_t)oh * OW + ow;
      T g[2][2], m[4][4];
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
          g[i][j] = oh + i < OH && ow + j < OW ? bf_load(src + i * OW + j) : (T)0;
      RL_WINO_DOUTPUT(T, g, m);
      S *dst = dM + chunk_col<IT>(p, pc, O) + (int64_t)o * pc;
      int64_t step = (int64_t)O * pc;
#pragma unroll
      for (int xi = 0; xi < 16; xi++) bf_store(dst + xi * step, m[xi / 4][xi % 4]);
    }
  }
}

/* dw [O, C, 3, 3] from dU [S, 16, O, C], summed over s in order: a thread
 * per (o, c). */
template <typename T, typename S>
__global__ void wino_dweight_kernel(const T *dU, int64_t nS, int64_t O, int64_t C, S *dw) {
  GRID_STRIDE(e, O * C) {
    T u[4][4], k[3][3];
#pragma unroll
    for (int xi = 0; xi < 16; xi++) {
      T acc = 0;
      for (int64_t s = 0; s < nS; s++) acc += dU[(s * 16 + xi) * O * C + e];
      u[xi / 4][xi % 4] = acc;
    }
    RL_WINO_DWEIGHT(T, u, k);
#pragma unroll
    for (int i = 0; i < 9; i++) bf_store(dw + e * 9 + i, k[i / 3][i % 3]);
  }
}

/* Dispatch on dt: BODY sees the compute type T and the storage type S. */
#define WINO_DISPATCH(dt, ...)                                                \
  switch (dt) {                                                               \
  case RL_F32: { typedef float T; typedef float S; __VA_ARGS__; } break;      \
  case RL_F64: { typedef double T; typedef double S; __VA_ARGS__; } break;    \
  case RL_BF16: { typedef float T; typedef uint16_t S; __VA_ARGS__; } break;  \
  default: return rl_err("conv2d (Winograd): not defined for %s", rl_dtype_name(dt)); \
  }

int rl_cuda_wino_weight(rl_dtype dt, const void *w, int64_t O, int64_t C, bool flip, void *U) {
  if (O * C == 0) return 0;
  WINO_DISPATCH(dt, wino_weight_kernel<T, S><<<rl_blocks(O * C), RL_THREADS>>>(
                        (const S *)w, O, C, flip, (S *)U));
  LAUNCH_CHECK("wino_weight_kernel");
  return 0;
}

int rl_cuda_wino_input(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H,
                       int64_t W, int64_t ph, int64_t pw, int64_t TH, int64_t TW, int64_t nbc,
                       void *V) {
  int64_t P = nb * TH * TW, S_ = (nb + nbc - 1) / nbc;
  if (P * C == 0) return 0;
  WINO_DISPATCH(dt, RL_LAUNCH_IT(fits32(16 * C * S_ * nbc * TH * TW, nb * C * H * W),
                                 (wino_input_kernel<T, S, IT>), grid2(P, C), (const S *)x,
                                 (IT)nb, (IT)C, (IT)H, (IT)W, (IT)ph, (IT)pw, (IT)TH, (IT)TW,
                                 (IT)nbc, (S *)V));
  LAUNCH_CHECK("wino_input_kernel");
  return 0;
}

int rl_cuda_wino_output(rl_dtype dt, const void *M, int64_t nb, int64_t O, int64_t OH,
                        int64_t OW, int64_t TH, int64_t TW, const void *b, void *y) {
  int64_t P = nb * TH * TW;
  if (P * O == 0) return 0;
  WINO_DISPATCH(dt, RL_LAUNCH_IT(fits32(16 * O * P, nb * O * OH * OW),
                                 (wino_output_kernel<T, S, IT>), grid2(P, O), (const T *)M,
                                 (IT)nb, (IT)O, (IT)OH, (IT)OW, (IT)TH, (IT)TW, (const S *)b,
                                 (S *)y));
  LAUNCH_CHECK("wino_output_kernel");
  return 0;
}

int rl_cuda_wino_doutput(rl_dtype dt, const void *dy, int64_t nb, int64_t O, int64_t OH,
                         int64_t OW, int64_t TH, int64_t TW, int64_t nbc, void *dM) {
  int64_t P = nb * TH * TW, S_ = (nb + nbc - 1) / nbc;
  if (P * O == 0) return 0;
  WINO_DISPATCH(dt, RL_LAUNCH_IT(fits32(16 * O * S_ * nbc * TH * TW, nb * O * OH * OW),
                                 (wino_doutput_kernel<T, S, IT>), grid2(P, O), (const S *)dy,
                                 (IT)nb, (IT)O, (IT)OH, (IT)OW, (IT)TH, (IT)TW, (IT)nbc,
                                 (S *)dM));
  LAUNCH_CHECK("wino_doutput_kernel");
  return 0;
}

int rl_cuda_wino_dweight(rl_dtype dt, const void *dU, int64_t S_, int64_t O, int64_t C,
                         void *dw) {
  if (O * C == 0) return 0;
  WINO_DISPATCH(dt, wino_dweight_kernel<T, S><<<rl_blocks(O * C), RL_THREADS>>>(
                        (const T *)dU, S_, O, C, (S *)dw));
  LAUNCH_CHECK("wino_dweight_kernel");
  return 0;
}
