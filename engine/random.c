/* random.c - generators and random fills (stream layout in philox.h). */
#include <stdlib.h>

#include "internal.h"
#include "philox.h"

/* PyTorch's default CPU seed, so an unseeded script is reproducible. */
#define DEFAULT_SEED 67280421310721ULL

static rl_generator default_gen = {DEFAULT_SEED, 0};

rl_generator *rl_default_generator(void) { return &default_gen; }

void rl_manual_seed(uint64_t seed) {
  default_gen.seed = seed;
  default_gen.offset = 0;
}

uint64_t rl_generator_take(rl_generator *g, uint64_t n) {
  uint64_t o = g->offset;
  g->offset += n;
  return o;
}

uint64_t rl_rng_counters(int dist, rl_dtype dt, int64_t n) {
  int per = (dt == RL_F64 || dist == RL_RNG_RANDINT) ? 2 : 4;
  return (uint64_t)((n + per - 1) / per);
}

static int rng_into(const char *op, rl_tensor *t, rl_rng_dist dist, double p0, double p1,
                    rl_generator *g);

/* The largest value of the half type dt below hi. */
static float half_below(rl_dtype dt, double hi) {
  uint16_t h = dt == RL_BF16 ? rl_bf16_of_f64(hi) : rl_f16_of_f64(hi);
  if ((double)rl_f32_of_half(dt, h) >= hi) /* one step toward -inf */
    h = (h & 0x7fffu) == 0 ? (uint16_t)0x8001u : (h & 0x8000u) ? (uint16_t)(h + 1) : (uint16_t)(h - 1);
  return rl_f32_of_half(dt, h);
}

/* A half-type t gets the f32 draws (the same counters as an f32 tensor's),
 * rounded once; a uniform draw that rounds up to hi is the largest value
 * below it instead, so that [lo, hi) holds.  On the CPU one pass over the
 * draws does that; on a GPU, where they are not host memory, ops on the
 * device (none records a node: no operand requires a gradient). */
static int rng_half(const char *op, rl_tensor *t, rl_rng_dist dist, double p0, double p1,
                    rl_generator *g) {
  rl_tensor *f = rl_empty(t->ndim, t->size, RL_F32, rl_dev(t));
  int rc = f ? rng_into(op, f, dist, p0, p1, g) : -1;
  rl_tensor *h = NULL, *up = NULL;
  if (!rc && dist == RL_RNG_UNIFORM && rl_dev(t)->type == RL_CPU) {
    float top = half_below(t->dtype, p1), *v = rl_data(f); /* f is contiguous */
    for (int64_t i = 0, n = rl_numel(f); i < n; i++)
      if ((double)rl_f32_of_half(t->dtype, rl_half_of_f32(t->dtype, v[i])) >= p1) v[i] = top;
  } else if (!rc && dist == RL_RNG_UNIFORM) {
    h = rl_to_dtype(f, t->dtype);
    up = h ? rl_unary(RL_UN_GE_S, h, p1, 0) : NULL; /* the rounded draw against hi */
    rc = up ? rl_masked_fill_(h, up, half_below(t->dtype, p1)) : -1;
  }
  if (!rc) rc = rl_copy_(t, h ? h : f);
  rl_tensor *tmp[3] = {f, h, up};
  rl_release_all(3, tmp);
  return rc;
}

/* Fill t (any layout) with dist; contiguous tensors are filled directly. */
static int rng_into(const char *op, rl_tensor *t, rl_rng_dist dist, double p0, double p1,
                    rl_generator *g) {
  if (rl_dtype_is_half(t->dtype) && dist != RL_RNG_BERNOULLI && dist != RL_RNG_RANDINT)
    return rng_half(op, t, dist, p0, p1, g);
  if (!g) g = &default_gen;
  int64_t n = rl_numel(t);
  if (n == 0) return 0;
  rl_tensor *c = rl_is_contiguous(t) ? t : rl_empty_like(t);
  if (!c) return -1;
  uint64_t off = rl_generator_take(g, rl_rng_counters(dist, t->dtype, n));
  int rc = RL_BE(t)->rng_fill(t->dtype, rl_data(c), n, dist, g->seed, off, p0, p1);
  if (!rc && c != t) rc = rl_copy_(t, c);
  if (c != t) rl_release(c);
  if (rc) return rl_err_prefix(op);
  rl_bump_version(t);
  return 0;
}

/* Float tensors, the half types included (rng_half). */
static int check_floating(const char *op, const rl_tensor *t) {
  return rl_dtype_is_half(t->dtype) ? 0 : rl_check_float(op, t);
}

int rl_uniform_(rl_tensor *t, double lo, double hi, rl_generator *g) {
  if (rl_check_inplace("uniform_", t, NULL) || check_floating("uniform_", t)) return -1;
  if (!(lo <= hi)) /* NaN too */
    return rl_err("uniform_: the range [lo, hi) needs lo <= hi, got lo = %g, hi = %g", lo, hi);
  return rng_into("uniform_", t, RL_RNG_UNIFORM, lo, hi, g);
}

int rl_normal_(rl_tensor *t, double mean, double std, rl_generator *g) {
  if (rl_check_inplace("normal_", t, NULL) || check_floating("normal_", t)) return -1;
  if (std < 0) return rl_err("normal_: std must be >= 0, got %g", std);
  return rng_into("normal_", t, RL_RNG_NORMAL, mean, std, g);
}

int rl_bernoulli_(rl_tensor *t, double p, rl_generator *g) {
  if (rl_check_inplace("bernoulli_", t, NULL)) return -1;
  if (!(p >= 0 && p <= 1)) return rl_err("bernoulli_: p must be in [0, 1], got %g", p);
  return rng_into("bernoulli_", t, RL_RNG_BERNOULLI, p, 0, g);
}

static rl_tensor *make(const char *op, int ndim, const int64_t *size, rl_dtype dt,
                       const rl_device *dev, rl_rng_dist dist, double p0, double p1,
                       rl_generator *g) {
  rl_tensor *t = rl_empty(ndim, size, dt, dev);
  if (t && rng_into(op, t, dist, p0, p1, g)) {
    rl_release(t);
    return NULL;
  }
  if (t) t->st->version = 0;
  return t;
}

rl_tensor *rl_rand(int ndim, const int64_t *size, rl_dtype dt, const rl_device *dev,
                   rl_generator *g) {
  if (!rl_dtype_is_floating(dt)) {
    rl_err("rand: dtype must be a float one (f32, f64, bf16, f16), got %s", rl_dtype_name(dt));
    return NULL;
  }
  return make("rand", ndim, size, dt, dev, RL_RNG_UNIFORM, 0, 1, g);
}

rl_tensor *rl_randn(int ndim, const int64_t *size, rl_dtype dt, const rl_device *dev,
                    rl_generator *g) {
  if (!rl_dtype_is_floating(dt)) {
    rl_err("randn: dtype must be a float one (f32, f64, bf16, f16), got %s", rl_dtype_name(dt));
    return NULL;
  }
  return make("randn", ndim, size, dt, dev, RL_RNG_NORMAL, 0, 1, g);
}

/* The backends take randint's bounds as doubles: true of every integer up
 * to 2^53 and of some beyond (math.mininteger), not of math.maxinteger,
 * whose double (2^63) would not even convert back. */
static bool exact_as_double(int64_t v) {
  double d = (double)v;
  return d < 9223372036854775808.0 && (int64_t)d == v;
}

rl_tensor *rl_randint(int64_t lo, int64_t hi, int ndim, const int64_t *size, rl_dtype dt,
                      const rl_device *dev, rl_generator *g) {
  if (hi <= lo) {
    rl_err("randint: empty range [%lld, %lld)", (long long)lo, (long long)hi);
    return NULL;
  }
  if (!exact_as_double(lo) || !exact_as_double(hi)) {
    rl_err("randint: bound %lld is not exactly a double (integers up to 2^53 are)",
           (long long)(exact_as_double(lo) ? hi : lo));
    return NULL;
  }
  double most = rl_dtype_exact_int(dt), least = dt == RL_U8 ? 0 : -most;
  if (most > 0 && ((double)lo < least || (double)hi - 1 > most)) {
    rl_err("randint: [%lld, %lld) does not fit %s (its integers are exact in [%.0f, %.0f])",
           (long long)lo, (long long)hi, rl_dtype_name(dt), least, most);
    return NULL;
  }
  return make("randint", ndim, size, dt, dev, RL_RNG_RANDINT, (double)lo, (double)hi, g);
}

/* Fisher-Yates driven by one 64-bit Philox word per position, computed on
 * the host so every device gets the same permutation. */
rl_tensor *rl_randperm(int64_t n, const rl_device *dev, rl_generator *g) {
  if (!g) g = &default_gen;
  if (n < 0) {
    rl_err("randperm: n must be non-negative, got %lld", (long long)n);
    return NULL;
  }
  int64_t *p = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!p) {
    rl_err("randperm: out of memory");
    return NULL;
  }
  uint64_t off = rl_generator_take(g, (uint64_t)((n + 1) / 2));
  for (int64_t i = 0; i < n; i++) p[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    rl_u32x4 w = rl_philox(g->seed, off + (uint64_t)(i / 2));
    int l = (int)(i % 2);
    uint64_t key = rl_join64(w.v[2 * l], w.v[2 * l + 1]);
    int64_t j = (int64_t)rl_mulhi64(key, (uint64_t)(i + 1));
    int64_t tmp = p[i];
    p[i] = p[j];
    p[j] = tmp;
  }
  rl_tensor *t = rl_from_host(1, &n, RL_I64, p, dev);
  free(p);
  return t;
}
