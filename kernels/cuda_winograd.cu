/* cuda_winograd.cu - the transforms of Winograd F(2x2, 3x3) for the
 * engine's path of 3x3 stride-1 convolutions (engine/ops_conv.c).
 *
 * The engine forms M[xi] = U[xi] @ V[xi] for the 16 tile positions xi with
 * one strided-batched cuBLAS GEMM; these kernels make U and V and turn M
 * into the output.  A thread owns one tile (one column of V or M) of one
 * channel and does the 4x4 arithmetic of engine/winograd.h in registers;
 * consecutive threads take consecutive tiles, so every write of V and every
 * read of M is coalesced.  Nothing is accumulated across threads: the
 * results do not depend on scheduling. */
#include "cuda_common.cuh"

#include "winograd.h"

/* U [16, O, C] (flipped: [16, C, O], each kernel rotated by 180 degrees)
 * from w [O, C, 3, 3]: a thread per (o, c). */
template <typename T>
__global__ void wino_weight_kernel(const T *w, int64_t O, int64_t C, bool flip, T *U) {
  GRID_STRIDE(e, O * C) {
    const T *g = w + e * 9;
    T k[3][3], u[4][4];
#pragma unroll
    for (int i = 0; i < 3; i++)
#pragma unroll
      for (int j = 0; j < 3; j++) k[i][j] = flip ? g[(2 - i) * 3 + 2 - j] : g[i * 3 + j];
    RL_WINO_WEIGHT(T, k, u);
    int64_t o = e / C, c = e - o * C, at = flip ? c * O + o : e;
#pragma unroll
    for (int xi = 0; xi < 16; xi++) U[xi * O * C + at] = u[xi / 4][xi % 4];
  }
}

/* V [16, C, P] from x [nb, C, H, W]: channel c along grid y, tiles along x. */
template <typename T, typename IT>
__global__ void wino_input_kernel(const T *x, IT nb, IT C, IT H, IT W, IT ph, IT pw, IT TH,
                                  IT TW, T *V) {
  IT T2 = TH * TW, P = nb * T2;
  PLANES(cc, C) {
    IT c = (IT)cc;
    IN_PLANE(p, P) {
      IT n = p / T2, r = p - n * T2, th = r / TW, tw = r - th * TW;
      IT h0 = 2 * th - ph, w0 = 2 * tw - pw;
      const T *src = x + ((int64_t)n * C + c) * H * W;
      T d[4][4], v[4][4];
#pragma unroll
      for (int a = 0; a < 4; a++) {
        IT h = h0 + a;
        bool rin = h >= 0 && h < H;
#pragma unroll
        for (int b = 0; b < 4; b++) {
          IT w = w0 + b;
          d[a][b] = rin && w >= 0 && w < W ? src[(int64_t)h * W + w] : (T)0;
        }
      }
      RL_WINO_INPUT(T, d, v);
      T *dst = V + (int64_t)c * P + p;
      int64_t step = (int64_t)C * P;
#pragma unroll
      for (int xi = 0; xi < 16; xi++) dst[xi * step] = v[xi / 4][xi % 4];
    }
  }
}

/* y [nb, O, OH, OW] (+ b) from M [16, O, P]: channel o along grid y. */
template <typename T, typename IT>
__global__ void wino_output_kernel(const T *M, IT nb, IT O, IT OH, IT OW, IT TH, IT TW,
                                   const T *b, T *y) {
  IT T2 = TH * TW, P = nb * T2;
  PLANES(oo, O) {
    IT o = (IT)oo;
    T bias = b ? b[o] : (T)0;
    IN_PLANE(p, P) {
      const T *src = M + (int64_t)o * P + p;
      int64_t step = (int64_t)O * P;
      T m[4][4], r[2][2];
#pragma unroll
      for (int xi = 0; xi < 16; xi++) m[xi / 4][xi % 4] = src[xi * step];
      RL_WINO_OUTPUT(T, m, r);
      IT n = p / T2, q = p - n * T2, th = q / TW, tw = q - th * TW;
      IT oh = 2 * th, ow = 2 * tw;
      T *dst = y + ((int64_t)n * O + o) * OH * OW + (int64_t)oh * OW + ow;
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
          if (oh + i < OH && ow + j < OW) dst[i * OW + j] = r[i][j] + bias;
    }
  }
}

int rl_cuda_wino_weight(rl_dtype dt, const void *w, int64_t O, int64_t C, bool flip, void *U) {
  if (O * C == 0) return 0;
  RL_DISPATCH_FLOAT("conv2d (Winograd)", dt,
                    wino_weight_kernel<T><<<rl_blocks(O * C), RL_THREADS>>>(
                        (const T *)w, O, C, flip, (T *)U));
  LAUNCH_CHECK("wino_weight_kernel");
  return 0;
}

int rl_cuda_wino_input(rl_dtype dt, const void *x, int64_t nb, int64_t C, int64_t H,
                       int64_t W, int64_t ph, int64_t pw, int64_t TH, int64_t TW, void *V) {
  int64_t P = nb * TH * TW;
  if (P * C == 0) return 0;
  dim3 grid = grid2(P, C);
  if (fits32(16 * C * P, nb * C * H * W)) {
    typedef int32_t IT;
    RL_DISPATCH_FLOAT("conv2d (Winograd)", dt,
                      wino_input_kernel<T, IT><<<grid, RL_THREADS>>>(
                          (const T *)x, (IT)nb, (IT)C, (IT)H, (IT)W, (IT)ph, (IT)pw, (IT)TH,
                          (IT)TW, (T *)V));
  } else {
    typedef int64_t IT;
    RL_DISPATCH_FLOAT("conv2d (Winograd)", dt,
                      wino_input_kernel<T, IT><<<grid, RL_THREADS>>>(
                          (const T *)x, nb, C, H, W, ph, pw, TH, TW, (T *)V));
  }
  LAUNCH_CHECK("wino_input_kernel");
  return 0;
}

int rl_cuda_wino_output(rl_dtype dt, const void *M, int64_t nb, int64_t O, int64_t OH,
                        int64_t OW, int64_t TH, int64_t TW, const void *b, void *y) {
  int64_t P = nb * TH * TW;
  if (P * O == 0) return 0;
  dim3 grid = grid2(P, O);
  if (fits32(16 * O * P, nb * O * OH * OW)) {
    typedef int32_t IT;
    RL_DISPATCH_FLOAT("conv2d (Winograd)", dt,
                      wino_output_kernel<T, IT><<<grid, RL_THREADS>>>(
                          (const T *)M, (IT)nb, (IT)O, (IT)OH, (IT)OW, (IT)TH, (IT)TW,
                          (const T *)b, (T *)y));
  } else {
    typedef int64_t IT;
    RL_DISPATCH_FLOAT("conv2d (Winograd)", dt,
                      wino_output_kernel<T, IT><<<grid, RL_THREADS>>>(
                          (const T *)M, nb, O, OH, OW, TH, TW, (const T *)b, (T *)y));
  }
  LAUNCH_CHECK("wino_output_kernel");
  return 0;
}
