/* direct.c - the CPU convolutions' f32 inner loop, without BLAS.
 *
 * The taps' GEMMs each read and write the whole wide output and pack their
 * operands; a direct loop keeps a block of outputs (CONV_OB channels times
 * CONV_QB positions) in registers through all taps and input channels, and
 * reads the staged input where it lies.  Weights go as [taps][O/OB][C][OB],
 * so the OB weights of one (tap, channel) sit side by side.  GCC's vector
 * extension keeps it portable: 512-bit vectors where AVX-512 is on, 256-bit
 * otherwise, in blocks that fit the register file (16 accumulators of 32
 * zmm registers; 12 of 16 ymm). */

#include <string.h>

#include "cpu.h"
#include "direct.h"

/* out [nout rows of ld] at positions [0, n) = b + sum over taps t and input
 * rows k of wk * in[k*ld + toff[t] + q] (in is read up to CONV_SLACK past
 * its last row). */
void rl_cpu_direct_conv(const float *in, int64_t ld, int64_t nin, int64_t nout, int64_t n,
                        const int64_t *toff, int64_t taps, const float *wk, const float *b,
                        float *out) {
  int64_t nob = (nout + CONV_OB - 1) / CONV_OB;
  for (int64_t ob = 0; ob < nob; ob++) {
    int64_t orows = nout - ob * CONV_OB < CONV_OB ? nout - ob * CONV_OB : CONV_OB;
    for (int64_t q0 = 0; q0 < n; q0 += CONV_QB) {
      conv_vec acc[CONV_OB][CONV_QV];
#pragma GCC unroll 16
      for (int oi = 0; oi < CONV_OB; oi++) {
        float v = b && oi < orows ? b[ob * CONV_OB + oi] : 0.0f;
#pragma GCC unroll 4
        for (int k = 0; k < CONV_QV; k++) acc[oi][k] = (conv_vec){0} + v;
      }
      for (int64_t t = 0; t < taps; t++) {
        const float *it = in + toff[t] + q0;
        const float *wt = wk + (t * nob + ob) * nin * CONV_OB;
        for (int64_t r = 0; r < nin; r++) {
          conv_vec xv[CONV_QV];
#pragma GCC unroll 4
          for (int k = 0; k < CONV_QV; k++) memcpy(&xv[k], it + r * ld + k * CONV_VL, sizeof xv[k]);
          const float *wr = wt + r * CONV_OB;
#pragma GCC unroll 16
          for (int oi = 0; oi < CONV_OB; oi++) {
            conv_vec wv = (conv_vec){0} + wr[oi];
#pragma GCC unroll 4
            for (int k = 0; k < CONV_QV; k++) acc[oi][k] += wv * xv[k];
          }
        }
      }
      int64_t m = n - q0 < CONV_QB ? n - q0 : CONV_QB;
      for (int oi = 0; oi < orows; oi++) {
        float *row = out + (ob * CONV_OB + oi) * ld + q0;
        if (m == CONV_QB) {
          for (int k = 0; k < CONV_QV; k++) memcpy(row + k * CONV_VL, &acc[oi][k], sizeof acc[oi][k]);
        } else {
          float tmp[CONV_QB];
          for (int k = 0; k < CONV_QV; k++) memcpy(tmp + k * CONV_VL, &acc[oi][k], sizeof acc[oi][k]);
          memcpy(row, tmp, sizeof(float) * (size_t)m);
        }
      }
    }
  }
}

