/* cuda_random.cu - Philox fills: a thread per counter, so every element
 * comes from the same counter and lane as on the CPU (engine/philox.h).
 *
 * The affine maps are written as explicit fused multiply-adds: the CPU
 * backend is built with -march=native, where gcc contracts lo + range * u
 * into one FMA, and an explicit fma here makes the device round the same
 * way.  Normals go through Box-Muller in double with CUDA's log, sin and
 * cos, which may differ from glibc's in the last bit of a double: f32
 * normals (rounded from double) match the CPU's bits all but never, f64
 * normals agree to a few ulps.
 *
 * The half types are filled here for bernoulli and randint (engine/random.c
 * draws uniform and normal half tensors in f32 and converts): each value
 * rounded once from its double, as the CPU's store() does. */
#include "cuda_common.cuh"

extern "C" {
#include "philox.h"
}

/* Storing a draw v (a double) as the CPU's store(): a C conversion to T,
 * or for the half type H rounded once (rl_bf16_of_f64, rl_f16_of_f64). */
template <typename T> struct Put {
  typedef T S;
  static const bool i64 = sizeof(T) == 8 && !is_real<T>::value;
  __device__ __forceinline__ void operator()(T *dst, int64_t i, double v) const {
    dst[i] = (T)v;
  }
};
template <rl_dtype H> struct PutHalf {
  typedef uint16_t S;
  static const bool i64 = false;
  __device__ __forceinline__ void operator()(uint16_t *dst, int64_t i, double v) const {
    dst[i] = H == RL_BF16 ? rl_bf16_of_f64(v) : rl_f16_of_f64(v);
  }
};

template <typename P>
__global__ void rng_kernel(typename P::S *dst, int64_t n, int dist, uint64_t seed,
                           uint64_t offset, double p0, double p1, bool wide) {
  P put;
  int per = wide ? 2 : 4;
  int64_t nctr = (n + per - 1) / per;
  GRID_STRIDE(c, nctr) {
    rl_u32x4 w = rl_philox(seed, offset + (uint64_t)c);
    for (int l = 0; l < per; l++) {
      int64_t i = c * per + l;
      if (i >= n) break;
      uint64_t w64 = rl_join64(w.v[(2 * l) & 3], w.v[(2 * l + 1) & 3]);
      switch (dist) {
      case RL_RNG_UNIFORM:
        if (wide) put(dst, i, fma(p1 - p0, rl_u64_to_unit_d(w64), p0));
        else put(dst, i, (double)fmaf((float)p1 - (float)p0, rl_u32_to_unit_f(w.v[l]), (float)p0));
        break;
      case RL_RNG_NORMAL: {
        double z;
        if (wide)
          z = rl_box_muller_d(rl_join64(w.v[0], w.v[1]), rl_join64(w.v[2], w.v[3]), l & 1);
        else
          z = (double)rl_box_muller_f(w.v[l & 2], w.v[(l & 2) + 1], l & 1);
        put(dst, i, wide ? fma(p1, z, p0) : (double)fmaf((float)p1, (float)z, (float)p0));
        break;
      }
      case RL_RNG_BERNOULLI:
        put(dst, i, (double)w.v[wide ? 2 * l : l] * (1.0 / 4294967296.0) < p0 ? 1.0 : 0.0);
        break;
      default: { /* RL_RNG_RANDINT */
        /* in uint64_t: hi - lo may pass INT64_MAX, as in randint(math.mininteger, 2^53) */
        uint64_t lo = (uint64_t)(int64_t)p0, range = (uint64_t)(int64_t)p1 - lo;
        int64_t v = (int64_t)(lo + rl_mulhi64(w64, range));
        if (P::i64) dst[i] = (typename P::S)v; /* exactly, beyond 2^53 too */
        else put(dst, i, (double)v);
      }
      }
    }
  }
}

int rl_cuda_rng_fill(rl_dtype dt, void *dst, int64_t n, rl_rng_dist dist, uint64_t seed,
                     uint64_t offset, double p0, double p1) {
  if (n == 0) return 0;
  bool wide = dt == RL_F64 || dist == RL_RNG_RANDINT; /* two values per counter */
  int64_t nctr = (n + (wide ? 2 : 4) - 1) / (wide ? 2 : 4);
  unsigned nb = rl_blocks(nctr);
#define RNG_CASE_(D, P)                                                        \
  case D:                                                                      \
    rng_kernel<P><<<nb, RL_THREADS>>>((P::S *)dst, n, (int)dist, seed, offset, p0, p1, wide); \
    break;
  switch (dt) {
    RNG_CASE_(RL_F32, Put<float>)
    RNG_CASE_(RL_F64, Put<double>)
    RNG_CASE_(RL_I64, Put<int64_t>)
    RNG_CASE_(RL_U8, Put<uint8_t>)
    RNG_CASE_(RL_BF16, PutHalf<RL_BF16>)
    RNG_CASE_(RL_F16, PutHalf<RL_F16>)
  default: return rl_err("random fill: not defined for dtype %d", (int)dt);
  }
#undef RNG_CASE_
  LAUNCH_CHECK("rng_kernel");
  return 0;
}
