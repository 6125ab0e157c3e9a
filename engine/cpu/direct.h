/* direct.h - the f32 register-blocked loop shared by the CPU convolutions
 * (engine/cpu/direct.c). */
#ifndef RL_CPU_DIRECT_H
#define RL_CPU_DIRECT_H

#include <stdint.h>

#if defined(__AVX512F__)
#define CONV_VL 16
#define CONV_OB 8
#define CONV_QV 2
#else
#define CONV_VL 8
#define CONV_OB 4
#define CONV_QV 3
#endif
#define CONV_QB (CONV_VL * CONV_QV)
typedef float conv_vec __attribute__((vector_size(CONV_VL * sizeof(float))));

/* Floats read past the end of its input by the loop's last block of positions. */
#define CONV_SLACK (CONV_QB + 16)

/* out [nout rows of ld] at positions [0, n) = b + sum over taps t and input
 * rows k of wk * in[k*ld + toff[t] + q].  wk is [taps][nout/OB][nin][OB]
 * (rows past nout zero); in is read up to CONV_SLACK past its last row. */
void rl_cpu_direct_conv(const float *in, int64_t ld, int64_t nin, int64_t nout, int64_t n,
                        const int64_t *toff, int64_t taps, const float *wk, const float *b,
                        float *out);

#endif
