/* philox.h - Philox-4x32-10 (Salmon et al., SC'11), shared by the CPU
 * backend and the CUDA kernels so both produce the same streams.
 *
 * How a fill maps to counters.  A generator is (seed, offset); the key is
 * (lo32(seed), hi32(seed)).  A fill of N values starting at generator offset
 * `off` uses the counter c = off + i / per for element i, with the 128-bit
 * counter word (lo32(c), hi32(c), 0, 0), and then advances the offset by
 * ceil(N / per):
 *
 *   dist                     per   element i takes
 *   uniform f32, bernoulli    4    lane i % 4, u = (lane >> 8) * 2^-24
 *   normal f32                4    lanes (0,1) for i%4 in {0,1}, (2,3) else;
 *                                  Box-Muller in double, rounded to f32:
 *                                  even i%4 -> r cos(t), odd -> r sin(t)
 *   uniform f64, randint      2    lanes (2(i%2), 2(i%2)+1) as a 64-bit word
 *   normal f64                2    u1 from lanes (0,1), u2 from lanes (2,3);
 *                                  even i -> r cos(t), odd -> r sin(t)
 *
 * Box-Muller: u1 = (w + 1) * 2^-b in (0, 1], u2 = w' * 2^-b in [0, 1),
 * r = sqrt(-2 ln u1), t = 2 pi u2.  randint(lo, hi) = lo + mulhi64(w, hi-lo).
 * Each counter is independent, so a CUDA thread per counter reproduces the
 * CPU stream exactly. */
#ifndef RL_PHILOX_H
#define RL_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define RL_HD __host__ __device__ __forceinline__
#else
#define RL_HD static inline
#endif

typedef struct rl_u32x4 { uint32_t v[4]; } rl_u32x4;

RL_HD rl_u32x4 rl_philox(uint64_t seed, uint64_t counter) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  rl_u32x4 out = {{c0, c1, c2, c3}};
  return out;
}

RL_HD float rl_u32_to_unit_f(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }
RL_HD double rl_u64_to_unit_d(uint64_t x) { return (double)(x >> 11) * (1.0 / 9007199254740992.0); }
RL_HD uint64_t rl_join64(uint32_t hi, uint32_t lo) { return ((uint64_t)hi << 32) | lo; }

RL_HD uint64_t rl_mulhi64(uint64_t a, uint64_t b) {
#ifdef __CUDA_ARCH__
  return __umul64hi(a, b);
#else
  return (uint64_t)(((unsigned __int128)a * b) >> 64);
#endif
}

#define RL_TWO_PI 6.283185307179586476925286766559

/* Box-Muller in double on two 32-bit lanes, rounded to float. */
RL_HD float rl_box_muller_f(uint32_t a, uint32_t b, int sine) {
  double u1 = ((double)a + 1.0) * (1.0 / 4294967296.0);
  double u2 = (double)b * (1.0 / 4294967296.0);
  double r = sqrt(-2.0 * log(u1)), t = RL_TWO_PI * u2;
  return (float)(sine ? r * sin(t) : r * cos(t));
}

/* Box-Muller on two 64-bit words (53 bits each). */
RL_HD double rl_box_muller_d(uint64_t a, uint64_t b, int sine) {
  double u1 = ((double)(a >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  double u2 = (double)(b >> 11) * (1.0 / 9007199254740992.0);
  double r = sqrt(-2.0 * log(u1)), t = RL_TWO_PI * u2;
  return sine ? r * sin(t) : r * cos(t);
}

#endif
