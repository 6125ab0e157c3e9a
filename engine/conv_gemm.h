/* conv_gemm.h - convolution composed from a backend's GEMM, im2col /
 * col2im and Winograd tile transforms (engine/conv_gemm.c).
 *
 * CUDA's conv entries run it (kernels/cuda_conv.cu), with the figures of
 * rl_conv_tuning measured on the GPU; the CPU's run it only when
 * rl_conv_set_path (ops.h) forces a path, so that the specs gradcheck the
 * GPU's arithmetic on the CPU. */
#ifndef RL_CONV_GEMM_H
#define RL_CONV_GEMM_H

#include "backend.h"

/* The figures a device runs the composition with. */
typedef struct rl_conv_tuning {
  int64_t work_bytes;        /* largest workspace (col, V or M) per chunk of images */
  int64_t wino_min_channels; /* AUTO: fewest channels, in and out, for Winograd (f32) */
  int64_t sms;               /* multiprocessors to keep busy (rl_split_k_chunks) */
  bool implicit_bf16;        /* AUTO: bf16 takes the implicit GEMM where it fits (the
                              * device chooses per pass: kernels/cuda_conv.cu) */
} rl_conv_tuning;

/* The conv2d and conv2d_bwd entries of backend.h, tuned by t. */
int rl_conv_gemm(const rl_conv_tuning *t, const int64_t *geom, rl_tensor *x, rl_tensor *w,
                 rl_tensor *b, rl_tensor *y);
int rl_conv_gemm_bwd(const rl_conv_tuning *t, const int64_t *geom, rl_tensor *x, rl_tensor *w,
                     rl_tensor *dy, rl_tensor *dx, rl_tensor *dw, rl_tensor *db);

/* Whether the backend's implicit GEMM can run a bf16 convolution from C
 * to O channels of geometry g, x [*, C, H, W]: its forward or weight
 * gradient, or (flip) its input gradient, which it forms as a convolution
 * of dy and so only for stride 1, no dilation and padding below k. */
bool rl_conv_implicit_fits(const rl_backend *be, rl_dtype dt, const int64_t *g, bool flip,
                           int64_t C, int64_t H, int64_t W, int64_t O);

/* Whether rl_conv_set_path forces the composition (IM2COL, WINOGRAD or
 * IMPLICIT). */
bool rl_conv_gemm_forced(void);

/* How many chunks to cut the depth k of a GEMM into when its output is
 * only `blocks` 128x128 blocks (a weight gradient: a small output, a long
 * sum over pixels), so that the chunks' partial products, formed side by
 * side and then added in order, keep a GPU of `sms` multiprocessors busy:
 * about 4 waves of blocks, chunks of at least 2048, at most 64 of them; 1
 * means do not cut.  The CUDA GEMM (kernels/cuda_blas.cu) and the Winograd
 * weight gradient here both use it. */
static inline int64_t rl_split_k_chunks(int64_t sms, int64_t blocks, int64_t k) {
  int64_t S = (4 * sms + blocks - 1) / blocks;
  if (S > k / 2048) S = k / 2048;
  if (S > 64) S = 64;
  return S < 1 ? 1 : S;
}

/* The pixels per chunk of the implicit weight gradient's S chunks (whole
 * slices of 32; the last chunks may be short or empty).  Both backends'
 * conv_implicit_dw cut the sum so. */
static inline int64_t rl_implicit_dw_chunk(int64_t P, int64_t S) {
  int64_t c = (P + S - 1) / S;
  return (c + 31) / 32 * 32;
}

#endif
