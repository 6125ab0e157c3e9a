/* cpu_random.c - Philox fills; the element-to-counter map is in philox.h. */
#include "../philox.h"
#include "cpu.h"

static void store(rl_dtype dt, void *dst, int64_t i, double v) {
  switch (dt) {
  case RL_F32: ((float *)dst)[i] = (float)v; break;
  case RL_F64: ((double *)dst)[i] = v; break;
  case RL_I64: ((int64_t *)dst)[i] = (int64_t)v; break;
  case RL_U8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
  case RL_BF16: ((uint16_t *)dst)[i] = rl_bf16_of_f64(v); break;
  case RL_F16: ((uint16_t *)dst)[i] = rl_f16_of_f64(v); break;
  default: break;
  }
}

int rl_cpu_rng_fill(rl_dtype dt, void *dst, int64_t n, rl_rng_dist dist, uint64_t seed,
                    uint64_t offset, double p0, double p1) {
  bool wide = dt == RL_F64 || dist == RL_RNG_RANDINT; /* two values per counter */
  int per = wide ? 2 : 4;
  int64_t nctr = (n + per - 1) / per;
  RL_PARALLEL_FOR(c, nctr, per * 8, {
    rl_u32x4 w = rl_philox(seed, offset + (uint64_t)c);
    for (int l = 0; l < per; l++) {
      int64_t i = c * per + l;
      if (i >= n) break;
      uint64_t w64 = rl_join64(w.v[(2 * l) & 3], w.v[(2 * l + 1) & 3]);
      switch (dist) {
      case RL_RNG_UNIFORM:
        /* explicit fused multiply-adds: the CUDA kernels use the same, so
         * the streams agree bit for bit whatever the compiler contracts */
        if (wide) store(dt, dst, i, fma(p1 - p0, rl_u64_to_unit_d(w64), p0));
        else store(dt, dst, i, fmaf((float)p1 - (float)p0, rl_u32_to_unit_f(w.v[l]), (float)p0));
        break;
      case RL_RNG_NORMAL: {
        double z;
        if (wide) z = rl_box_muller_d(rl_join64(w.v[0], w.v[1]), rl_join64(w.v[2], w.v[3]), l & 1);
        else z = (double)rl_box_muller_f(w.v[l & 2], w.v[(l & 2) + 1], l & 1);
        store(dt, dst, i, wide ? fma(p1, z, p0) : (double)fmaf((float)p1, (float)z, (float)p0));
        break;
      }
      case RL_RNG_BERNOULLI:
        store(dt, dst, i, (double)w.v[wide ? 2 * l : l] * (1.0 / 4294967296.0) < p0 ? 1 : 0);
        break;
      case RL_RNG_RANDINT: {
        /* in uint64_t: hi - lo may pass INT64_MAX, as in randint(math.mininteger, 2^53) */
        uint64_t lo = (uint64_t)(int64_t)p0, range = (uint64_t)(int64_t)p1 - lo;
        int64_t v = (int64_t)(lo + rl_mulhi64(w64, range));
        if (dt == RL_I64) ((int64_t *)dst)[i] = v;
        else store(dt, dst, i, (double)v);
        break;
      }
      }
    }
  });
  return 0;
}
