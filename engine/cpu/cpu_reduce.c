/* cpu_reduce.c - reductions along any set of dims.
 *
 * Floats accumulate in double, integers in int64 (wrapping, as PyTorch's).  When there are many
 * outputs each thread owns whole outputs; when there are few, the reduced
 * range is cut into fixed chunks whose partial results are combined in
 * order, so the result does not depend on the number of threads. */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

#define RED_CHUNK 65536

typedef struct {
  double f;
  int64_t i;   /* integer accumulator */
  int64_t arg; /* position of the max/min */
} acc_t;

static bool is_argop(rl_reduce_op op) {
  return op == RL_RED_MAX || op == RL_RED_MIN;
}

static acc_t acc_init(rl_reduce_op op, bool isfloat) {
  acc_t a = {0, 0, -1};
  switch (op) {
  case RL_RED_PROD: a.f = 1; a.i = 1; break;
  case RL_RED_MAX: a.f = -INFINITY; a.i = INT64_MIN; break;
  case RL_RED_MIN: a.f = INFINITY; a.i = INT64_MAX; break;
  case RL_RED_ALL: a.i = 1; break;
  default: break;
  }
  (void)isfloat;
  return a;
}

/* Combine a later partial `b` into `a` (a covers earlier positions). */
static void acc_combine(rl_reduce_op op, acc_t *a, const acc_t *b, bool isfloat) {
  switch (op) {
  case RL_RED_SUM: case RL_RED_ABSSUM: case RL_RED_SQSUM:
    a->f += b->f; a->i = WRAP(U64(a->i) + U64(b->i)); break;
  case RL_RED_PROD: a->f *= b->f; a->i = WRAP(U64(a->i) * U64(b->i)); break;
  case RL_RED_MAX:
    if (b->arg < 0) break;
    if (a->arg < 0 || (isfloat ? (b->f > a->f || (b->f != b->f && a->f == a->f)) : b->i > a->i)) *a = *b;
    break;
  case RL_RED_MIN:
    if (b->arg < 0) break;
    if (a->arg < 0 || (isfloat ? (b->f < a->f || (b->f != b->f && a->f == a->f)) : b->i < a->i)) *a = *b;
    break;
  case RL_RED_ABSMAX:
    if (b->f > a->f || b->f != b->f) a->f = b->f;
    if (b->i > a->i) a->i = b->i;
    break;
  case RL_RED_ANY: a->i = a->i || b->i; break;
  case RL_RED_ALL: a->i = a->i && b->i; break;
  default: break;
  }
}

/* Visit reduced positions [b, e) of the input block at `base`, with x the
 * element value (as ACC type) and j its flat reduced index. */
#define SPAN(T, CONV, BODY)                                                       \
  do {                                                                            \
    int nd = r->rndim;                                                            \
    int64_t inner = r->rsize[nd - 1], ist = r->rstride_in[nd - 1];                \
    int64_t idx[RL_MAX_DIMS];                                                     \
    int64_t q = b / inner, i0 = b % inner, j = b;                                 \
    for (int d = nd - 2; d >= 0; d--) { idx[d] = q % r->rsize[d]; q /= r->rsize[d]; } \
    while (j < e) {                                                               \
      const T *p = (const T *)base;                                               \
      for (int d = 0; d < nd - 1; d++) p += idx[d] * r->rstride_in[d];            \
      int64_t n = inner - i0;                                                     \
      if (n > e - j) n = e - j;                                                   \
      p += i0 * ist;                                                              \
      BODY;                                                                       \
      j += n;                                                                     \
      i0 = 0;                                                                     \
      for (int d = nd - 2; d >= 0; d--) { if (++idx[d] < r->rsize[d]) break; idx[d] = 0; } \
    }                                                                             \
  } while (0)

/* Sum-like loops over one run of n elements at p with stride ist. */
#define RUN_SUM(EXPR)                                                             \
  if (ist == 1) {                                                                 \
    double s = 0;                                                                 \
    _Pragma("omp simd reduction(+ : s)") for (int64_t k = 0; k < n; k++) {        \
      double x = (double)p[k];                                                    \
      s += (EXPR);                                                                \
    }                                                                             \
    acc->f += s;                                                                  \
  } else {                                                                        \
    for (int64_t k = 0; k < n; k++) {                                             \
      double x = (double)p[k * ist];                                              \
      acc->f += (EXPR);                                                           \
    }                                                                             \
  }

#define DEFINE_SPAN_FLOAT(name, T)                                                \
  static void name(rl_reduce_op op, const char *base, const rl_rediter *r,       \
                   int64_t b, int64_t e, acc_t *acc) {                           \
    switch (op) {                                                                 \
    case RL_RED_SUM: SPAN(T, double, RUN_SUM(x)); break;                          \
    case RL_RED_ABSSUM: SPAN(T, double, RUN_SUM(fabs(x))); break;                 \
    case RL_RED_SQSUM: SPAN(T, double, RUN_SUM(x * x)); break;                    \
    case RL_RED_PROD:                                                             \
      SPAN(T, double, for (int64_t k = 0; k < n; k++) acc->f *= (double)p[k * ist]); \
      break;                                                                      \
    case RL_RED_ABSMAX:                                                           \
      SPAN(T, double, for (int64_t k = 0; k < n; k++) {                           \
        double x = fabs((double)p[k * ist]);                                      \
        if (x > acc->f || x != x) acc->f = x;                                     \
      });                                                                         \
      break;                                                                      \
    case RL_RED_MAX:                                                              \
      SPAN(T, double, for (int64_t k = 0; k < n; k++) {                           \
        double x = (double)p[k * ist];                                            \
        if (acc->arg < 0 || (acc->f == acc->f && (x > acc->f || x != x))) {       \
          acc->f = x; acc->arg = j + k;                                           \
        }                                                                         \
      });                                                                         \
      break;                                                                      \
    case RL_RED_MIN:                                                              \
      SPAN(T, double, for (int64_t k = 0; k < n; k++) {                           \
        double x = (double)p[k * ist];                                            \
        if (acc->arg < 0 || (acc->f == acc->f && (x < acc->f || x != x))) {       \
          acc->f = x; acc->arg = j + k;                                           \
        }                                                                         \
      });                                                                         \
      break;                                                                      \
    case RL_RED_ANY:                                                              \
      SPAN(T, double, for (int64_t k = 0; k < n; k++) acc->i |= p[k * ist] != 0); \
      break;                                                                      \
    case RL_RED_ALL:                                                              \
      SPAN(T, double, for (int64_t k = 0; k < n; k++) acc->i &= p[k * ist] != 0); \
      break;                                                                      \
    default: break;                                                               \
    }                                                                             \
  }

#define DEFINE_SPAN_INT(name, T)                                                  \
  static void name(rl_reduce_op op, const char *base, const rl_rediter *r,       \
                   int64_t b, int64_t e, acc_t *acc) {                           \
    switch (op) {                                                                 \
    case RL_RED_SUM:                                                              \
      SPAN(T, int64_t, for (int64_t k = 0; k < n; k++)                            \
        acc->i = WRAP(U64(acc->i) + U64(p[k * ist])));                            \
      break;                                                                      \
    case RL_RED_ABSSUM:                                                           \
      SPAN(T, int64_t, for (int64_t k = 0; k < n; k++) {                          \
        int64_t x = (int64_t)p[k * ist];                                          \
        acc->i = WRAP(U64(acc->i) + (x < 0 ? 0 - U64(x) : U64(x))); });           \
      break;                                                                      \
    case RL_RED_SQSUM:                                                            \
      SPAN(T, int64_t, for (int64_t k = 0; k < n; k++) {                          \
        int64_t x = (int64_t)p[k * ist];                                          \
        acc->i = WRAP(U64(acc->i) + U64(x) * U64(x)); });                         \
      break;                                                                      \
    case RL_RED_PROD:                                                             \
      SPAN(T, int64_t, for (int64_t k = 0; k < n; k++)                            \
        acc->i = WRAP(U64(acc->i) * U64(p[k * ist])));                            \
      break;                                                                      \
    case RL_RED_ABSMAX:                                                           \
      SPAN(T, int64_t, for (int64_t k = 0; k < n; k++) {                          \
        int64_t x = (int64_t)p[k * ist]; x = x < 0 ? WRAP(0 - U64(x)) : x;        \
        if (x > acc->i) acc->i = x; });                                           \
      break;                                                                      \
    case RL_RED_MAX:                                                              \
      SPAN(T, int64_t, for (int64_t k = 0; k < n; k++) {                          \
        int64_t x = (int64_t)p[k * ist];                                          \
        if (acc->arg < 0 || x > acc->i) { acc->i = x; acc->arg = j + k; } });     \
      break;                                                                      \
    case RL_RED_MIN:                                                              \
      SPAN(T, int64_t, for (int64_t k = 0; k < n; k++) {                          \
        int64_t x = (int64_t)p[k * ist];                                          \
        if (acc->arg < 0 || x < acc->i) { acc->i = x; acc->arg = j + k; } });     \
      break;                                                                      \
    case RL_RED_ANY:                                                              \
      SPAN(T, int64_t, for (int64_t k = 0; k < n; k++) acc->i |= p[k * ist] != 0); \
      break;                                                                      \
    case RL_RED_ALL:                                                              \
      SPAN(T, int64_t, for (int64_t k = 0; k < n; k++) acc->i &= p[k * ist] != 0); \
      break;                                                                      \
    default: break;                                                               \
    }                                                                             \
  }

DEFINE_SPAN_FLOAT(span_f32, float)
DEFINE_SPAN_FLOAT(span_f64, double)
DEFINE_SPAN_INT(span_i64, int64_t)
DEFINE_SPAN_INT(span_u8, uint8_t)

typedef void (*span_fn)(rl_reduce_op, const char *, const rl_rediter *, int64_t, int64_t,
                        acc_t *);
static const span_fn span_tab[RL_NDTYPES] = {span_f32, span_f64, span_i64, span_u8};

static void store(const rl_rediter *r, rl_reduce_op op, char *out, int64_t *idx,
                  const acc_t *a, bool isfloat) {
  double v = isfloat ? a->f : (double)a->i;
  if (!isfloat && is_argop(op) && a->arg < 0) v = 0;
  switch (r->out_dtype) {
  case RL_F32: *(float *)out = (float)v; break;
  case RL_F64: *(double *)out = v; break;
  case RL_I64: *(int64_t *)out = isfloat ? rl_i64_of_f64(v) : a->i; break;
  case RL_U8: *(uint8_t *)out = (uint8_t)(isfloat ? rl_i64_of_f64(v) : a->i); break;
  case RL_BF16: *(uint16_t *)out = rl_bf16_of_f64(v); break;
  case RL_F16: *(uint16_t *)out = rl_f16_of_f64(v); break;
  default: break;
  }
  if (idx) *idx = a->arg < 0 ? 0 : a->arg;
}

/* Offset (in elements) of output o in the input, output and index arrays. */
static void out_offsets(const rl_rediter *r, int64_t o, int64_t *in, int64_t *out,
                        int64_t *ix) {
  *in = *out = *ix = 0;
  for (int d = r->ondim - 1; d >= 0; d--) {
    int64_t c = o % r->osize[d];
    o /= r->osize[d];
    *in += c * r->ostride_in[d];
    *out += c * r->ostride_out[d];
    *ix += c * r->ostride_idx[d];
  }
}

int rl_cpu_reduce(rl_reduce_op op, const rl_rediter *r) {
  bool isfloat = rl_dtype_is_float(r->in_dtype);
  span_fn span = span_tab[r->in_dtype];
  if (!span) /* bf16, f16: ops_reduce.c reduces them in f32 */
    return rl_err("reduction: not defined for %s", rl_dtype_name(r->in_dtype));
  size_t ies = rl_dtype_size(r->in_dtype), oes = rl_dtype_size(r->out_dtype);
  int nth = omp_get_max_threads();
  int64_t onumel = r->onumel, rnumel = r->rnumel;

  if (rnumel == 0) { /* empty reductions give the identity */
    for (int64_t o = 0; o < onumel; o++) {
      int64_t io, oo, xo;
      out_offsets(r, o, &io, &oo, &xo);
      acc_t a = acc_init(op, isfloat);
      store(r, op, r->out + oo * (int64_t)oes, r->idx ? (int64_t *)r->idx + xo : NULL, &a,
            isfloat);
    }
    return 0;
  }

  if (onumel >= 4 * nth || rnumel < 2 * RED_CHUNK || nth == 1) {
    RL_PARALLEL_FOR(o, onumel, rnumel, {
      int64_t io, oo, xo;
      out_offsets(r, o, &io, &oo, &xo);
      acc_t a = acc_init(op, isfloat);
      /* the same chunks, combined in the same order, as the parallel path
       * below: a result never depends on the number of threads */
      for (int64_t c0 = 0; c0 < rnumel; c0 += RED_CHUNK) {
        acc_t part = acc_init(op, isfloat);
        span(op, r->in + io * (int64_t)ies, r, c0,
             c0 + RED_CHUNK < rnumel ? c0 + RED_CHUNK : rnumel, &part);
        if (c0 == 0) a = part;
        else acc_combine(op, &a, &part, isfloat);
      }
      store(r, op, r->out + oo * (int64_t)oes, r->idx ? (int64_t *)r->idx + xo : NULL, &a,
            isfloat);
    });
    return 0;
  }

  /* Few outputs, long reductions: fixed chunks in parallel, combined in order. */
  int64_t nchunks = (rnumel + RED_CHUNK - 1) / RED_CHUNK;
  acc_t *part = malloc(sizeof(acc_t) * (size_t)nchunks);
  if (!part) return rl_err("out of memory in a reduction");
  for (int64_t o = 0; o < onumel; o++) {
    int64_t io, oo, xo;
    out_offsets(r, o, &io, &oo, &xo);
    const char *base = r->in + io * (int64_t)ies;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
      int64_t b = c * RED_CHUNK, e = b + RED_CHUNK < rnumel ? b + RED_CHUNK : rnumel;
      part[c] = acc_init(op, isfloat);
      span(op, base, r, b, e, &part[c]);
    }
    acc_t a = part[0];
    for (int64_t c = 1; c < nchunks; c++) acc_combine(op, &a, &part[c], isfloat);
    store(r, op, r->out + oo * (int64_t)oes, r->idx ? (int64_t *)r->idx + xo : NULL, &a,
          isfloat);
  }
  free(part);
  return 0;
}
