/* cpu_pointwise.c - fill, copy/convert, unary, binary and ternary loops.
 *
 * Each (op, dtype) pair is one small loop function with a contiguous fast
 * path the compiler vectorises; the iterator driver walks the outer dims
 * and splits large iterations across OpenMP threads. */
#include <string.h>

#include "cpu.h"

/* ---- the driver -------------------------------------------------------- */

/* Process linear positions [begin, end) of the iteration. */
static void run_range(const rl_iter *it, rl_loop_fn fn, const double *p, int64_t begin,
                      int64_t end) {
  int nd = it->ndim, na = it->nargs;
  int64_t inner = it->size[nd - 1];
  int64_t idx[RL_MAX_DIMS] = {0};
  int64_t bstride[RL_ITER_MAX_ARGS], esz[RL_ITER_MAX_ARGS];
  char *ptr[RL_ITER_MAX_ARGS];
  for (int a = 0; a < na; a++) {
    esz[a] = (int64_t)rl_dtype_size(it->dtype[a]);
    bstride[a] = it->stride[a][nd - 1] * esz[a];
  }
  /* decode begin into (outer index, inner position) */
  int64_t o = begin / inner, i0 = begin % inner;
  for (int d = nd - 2; d >= 0; d--) {
    idx[d] = o % it->size[d];
    o /= it->size[d];
  }
  while (begin < end) {
    for (int a = 0; a < na; a++) {
      int64_t off = i0 * it->stride[a][nd - 1];
      for (int d = 0; d < nd - 1; d++) off += idx[d] * it->stride[a][d];
      ptr[a] = it->data[a] + off * esz[a];
    }
    int64_t n = inner - i0;
    if (n > end - begin) n = end - begin;
    fn(ptr, bstride, n, p);
    begin += n;
    i0 = 0;
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < it->size[d]) break;
      idx[d] = 0;
    }
  }
}

void rl_cpu_iter_run(const rl_iter *it, rl_loop_fn fn, const double *p) {
  int64_t n = it->numel;
  if (n == 0) return;
  int nth = omp_get_max_threads();
  if (n < RL_CPU_GRAIN || nth <= 1) {
    run_range(it, fn, p, 0, n);
    return;
  }
#pragma omp parallel
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    /* chunks aligned to 16 elements keep threads off each other's lines */
    int64_t chunk = ((n + nt - 1) / nt + 15) & ~(int64_t)15;
    int64_t b = (int64_t)t * chunk, e = b + chunk < n ? b + chunk : n;
    if (b < e) run_range(it, fn, p, b, e);
  }
}

/* ---- loop templates ---------------------------------------------------- */

#define AT(T, k, i) (*(T *)(d[k] + (i) * s[k]))

/* out (TO) = EXPR(a) */
#define LOOP1(name, T, TO, EXPR)                                                \
  static void name(char **d, const int64_t *s, int64_t n, const double *p) {    \
    (void)p;                                                                    \
    if (s[0] == sizeof(TO) && s[1] == sizeof(T)) {                              \
      TO *o = (TO *)d[0];                                                       \
      const T *x = (const T *)d[1];                                             \
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                     \
        T a = x[i];                                                             \
        o[i] = (TO)(EXPR);                                                      \
      }                                                                         \
    } else {                                                                    \
      for (int64_t i = 0; i < n; i++) {                                         \
        T a = AT(T, 1, i);                                                      \
        AT(TO, 0, i) = (TO)(EXPR);                                              \
      }                                                                         \
    }                                                                           \
  }

/* out (TO) = EXPR(a, b); fast paths for contiguous and scalar b */
#define LOOP2(name, T, TO, EXPR)                                                \
  static void name(char **d, const int64_t *s, int64_t n, const double *p) {    \
    (void)p;                                                                    \
    if (s[0] == sizeof(TO) && s[1] == sizeof(T) && s[2] == sizeof(T)) {         \
      TO *o = (TO *)d[0];                                                       \
      const T *x = (const T *)d[1], *y = (const T *)d[2];                       \
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                     \
        T a = x[i], b = y[i];                                                   \
        o[i] = (TO)(EXPR);                                                      \
      }                                                                         \
    } else if (s[0] == sizeof(TO) && s[1] == sizeof(T) && s[2] == 0) {          \
      TO *o = (TO *)d[0];                                                       \
      const T *x = (const T *)d[1];                                             \
      const T b = *(const T *)d[2];                                             \
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                     \
        T a = x[i];                                                             \
        o[i] = (TO)(EXPR);                                                      \
      }                                                                         \
    } else {                                                                    \
      for (int64_t i = 0; i < n; i++) {                                         \
        T a = AT(T, 1, i), b = AT(T, 2, i);                                     \
        AT(TO, 0, i) = (TO)(EXPR);                                              \
      }                                                                         \
    }                                                                           \
  }

/* out = EXPR(a, b, c), a of type TA */
#define LOOP3(name, TA, T, EXPR)                                                \
  static void name(char **d, const int64_t *s, int64_t n, const double *p) {    \
    (void)p;                                                                    \
    if (s[0] == sizeof(T) && s[1] == sizeof(TA) && s[2] == sizeof(T) &&         \
        s[3] == sizeof(T)) {                                                    \
      T *o = (T *)d[0];                                                         \
      const TA *x = (const TA *)d[1];                                           \
      const T *y = (const T *)d[2], *z = (const T *)d[3];                       \
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                     \
        TA a = x[i];                                                            \
        T b = y[i], c = z[i];                                                   \
        (void)c;                                                                \
        o[i] = (T)(EXPR);                                                       \
      }                                                                         \
    } else {                                                                    \
      for (int64_t i = 0; i < n; i++) {                                         \
        TA a = AT(TA, 1, i);                                                    \
        T b = AT(T, 2, i), c = AT(T, 3, i);                                     \
        (void)c;                                                                \
        AT(T, 0, i) = (T)(EXPR);                                                \
      }                                                                         \
    }                                                                           \
  }

#define SGN(a) (((a) > 0) - ((a) < 0))

/* Integer % that cannot trap: x % 0 and x % -1 give 0 (the ops layer refuses
 * a zero divisor before the kernel runs). */
#define IMOD(a, b) ((b) == 0 || (b) == -1 ? 0 : (a) % (b))
/* remainder: the result takes the divisor's sign */
#define IREM(a, b) (IMOD(a, b) != 0 && ((IMOD(a, b) < 0) != ((b) < 0)) ? IMOD(a, b) + (b) : IMOD(a, b))
#define FREM(a, b) (RL_MATH2(fmod, a, b) != 0 && ((RL_MATH2(fmod, a, b) < 0) != ((b) < 0)) ? RL_MATH2(fmod, a, b) + (b) : RL_MATH2(fmod, a, b))
#define MAXN(a, b) (((a) > (b) || (a) != (a)) ? (a) : (b)) /* NaN propagates */
#define MINN(a, b) (((a) < (b) || (a) != (a)) ? (a) : (b))

/* ---- unary ------------------------------------------------------------- */

/* X(op, expr) for ops whose output type is the input type */
#define UNARY_FLOAT(X, T)                                                       \
  X(NEG, -a) X(ABS, RL_MATH(fabs, a)) X(SIGN, (T)SGN(a)) X(EXP, RL_MATH(exp, a))              \
  X(LOG, RL_MATH(log, a)) X(SQRT, RL_MATH(sqrt, a)) X(RSQRT, (T)1 / RL_MATH(sqrt, a))                \
  X(RELU, a > 0 ? a : (a != a ? a : (T)0)) X(SIGMOID, (T)1 / ((T)1 + RL_MATH(exp, -a))) \
  X(TANH, RL_MATH(tanh, a)) X(SQUARE, a * a) X(RECIP, (T)1 / a) X(FLOOR, RL_MATH(floor, a))    \
  X(CEIL, RL_MATH(ceil, a)) X(ROUND, RL_MATH(nearbyint, a)) X(LOG1P, RL_MATH(log1p, a))                   \
  X(EXPM1, RL_MATH(expm1, a)) X(SIN, RL_MATH(sin, a)) X(COS, RL_MATH(cos, a))                        \
  X(CLAMP, MINN(MAXN(a, (T)p[0]), (T)p[1])) X(AFFINE, a * (T)p[0] + (T)p[1])    \
  X(RDIV, (T)p[0] / a) X(POW, RL_MATH2(pow, a, (T)p[0])) X(RPOW, RL_MATH2(pow, (T)p[0], a))     \
  X(FMOD, RL_MATH2(fmod, a, (T)p[0])) X(MAXS, MAXN(a, (T)p[0])) X(MINS, MINN(a, (T)p[0]))  \
  X(REMS, FREM(a, (T)p[0]))

/* i64 arithmetic wraps (WRAP in cpu.h) */
#define UNARY_INT(X, T)                                                         \
  X(NEG, WRAP(0 - U64(a))) X(ABS, a < 0 ? WRAP(0 - U64(a)) : a) X(SIGN, (T)SGN(a)) \
  X(SQUARE, WRAP(U64(a) * U64(a)))                                              \
  X(RELU, a > 0 ? a : 0) X(CLAMP, a < (T)p[0] ? (T)p[0] : (a > (T)p[1] ? (T)p[1] : a)) \
  X(AFFINE, WRAP(U64(a) * U64((T)p[0]) + U64((T)p[1])))                         \
  X(MAXS, a > (T)p[0] ? a : (T)p[0])                                            \
  X(MINS, a < (T)p[0] ? a : (T)p[0]) X(FMOD, IMOD(a, (T)p[0]))                  \
  X(REMS, IREM(a, (T)p[0]))

#define UNARY_U8(X, T)                                                          \
  X(CLAMP, a < (T)p[0] ? (T)p[0] : (a > (T)p[1] ? (T)p[1] : a))                 \
  X(AFFINE, a * (T)p[0] + (T)p[1]) X(MAXS, a > (T)p[0] ? a : (T)p[0])            \
  X(MINS, a < (T)p[0] ? a : (T)p[0]) X(NOT, !a)

/* comparisons with a scalar, u8 output, every type */
#define UNARY_CMP(X, T)                                                         \
  X(EQ_S, (double)a == p[0]) X(NE_S, (double)a != p[0]) X(LT_S, (double)a < p[0]) \
  X(LE_S, (double)a <= p[0]) X(GT_S, (double)a > p[0]) X(GE_S, (double)a >= p[0])

/* One definer per dtype: naming the type in the macro name keeps it greppable. */
#define DEF_UN_F32(op, e) LOOP1(un_##op##_f32, float, float, e)
#define DEF_UN_F64(op, e) LOOP1(un_##op##_f64, double, double, e)
#define DEF_UN_I64(op, e) LOOP1(un_##op##_i64, int64_t, int64_t, e)
#define DEF_UN_U8(op, e) LOOP1(un_##op##_u8, uint8_t, uint8_t, e)
#define DEF_CMP_F32(op, e) LOOP1(un_##op##_f32, float, uint8_t, e)
#define DEF_CMP_F64(op, e) LOOP1(un_##op##_f64, double, uint8_t, e)
#define DEF_CMP_I64(op, e) LOOP1(un_##op##_i64, int64_t, uint8_t, e)
#define DEF_CMP_U8(op, e) LOOP1(un_##op##_u8, uint8_t, uint8_t, e)

UNARY_FLOAT(DEF_UN_F32, float)
UNARY_CMP(DEF_CMP_F32, float)
LOOP1(un_ISNAN_f32, float, uint8_t, a != a)
UNARY_FLOAT(DEF_UN_F64, double)
UNARY_CMP(DEF_CMP_F64, double)
LOOP1(un_ISNAN_f64, double, uint8_t, a != a)
UNARY_INT(DEF_UN_I64, int64_t)
UNARY_CMP(DEF_CMP_I64, int64_t)
UNARY_U8(DEF_UN_U8, uint8_t)
UNARY_CMP(DEF_CMP_U8, uint8_t)

/* Half on half, for the ops ops_pointwise.c runs natively
 * (half_native_*): each element widened to f32, computed, rounded once.
 * relu and its gradient pass the bits through (a NaN included), as f32
 * would. */
#define BF(a) rl_f32_of_bf16(a)
#define HF(a) rl_f32_of_f16(a)
LOOP1(un_RELU_bf16, uint16_t, uint16_t, BF(a) > 0 || BF(a) != BF(a) ? a : 0)
LOOP1(un_RELU_f16, uint16_t, uint16_t, HF(a) > 0 || HF(a) != HF(a) ? a : 0)
LOOP2(bin_ADD_bf16, uint16_t, uint16_t, rl_bf16_of_f32(BF(a) + (float)p[0] * BF(b)))
LOOP2(bin_SUB_bf16, uint16_t, uint16_t, rl_bf16_of_f32(BF(a) - (float)p[0] * BF(b)))
LOOP2(bin_RELU_BWD_bf16, uint16_t, uint16_t, BF(b) > 0 ? a : 0)
LOOP2(bin_RELU_BWD_f16, uint16_t, uint16_t, HF(b) > 0 ? a : 0)

#define REG_UN_F32(op, e) [RL_UN_##op][RL_F32] = un_##op##_f32,
#define REG_UN_F64(op, e) [RL_UN_##op][RL_F64] = un_##op##_f64,
#define REG_UN_I64(op, e) [RL_UN_##op][RL_I64] = un_##op##_i64,
#define REG_UN_U8(op, e) [RL_UN_##op][RL_U8] = un_##op##_u8,

static const rl_loop_fn unary_tab[RL_UN_COUNT][RL_NDTYPES] = {
    UNARY_FLOAT(REG_UN_F32, float) UNARY_CMP(REG_UN_F32, float)
    UNARY_FLOAT(REG_UN_F64, double) UNARY_CMP(REG_UN_F64, double)
    UNARY_INT(REG_UN_I64, int64_t) UNARY_CMP(REG_UN_I64, int64_t)
    UNARY_U8(REG_UN_U8, uint8_t) UNARY_CMP(REG_UN_U8, uint8_t)
    [RL_UN_ISNAN][RL_F32] = un_ISNAN_f32,
    [RL_UN_ISNAN][RL_F64] = un_ISNAN_f64,
    [RL_UN_RELU][RL_BF16] = un_RELU_bf16,
    [RL_UN_RELU][RL_F16] = un_RELU_f16,
};

int rl_cpu_unary(rl_unary_op op, const rl_iter *it, const double *p) {
  rl_loop_fn fn = unary_tab[op][it->dtype[1]];
  if (!fn) return rl_err("unary op %d is not defined for %s", (int)op, rl_dtype_name(it->dtype[1]));
  rl_cpu_iter_run(it, fn, p);
  return 0;
}

/* ---- binary ------------------------------------------------------------ */

#define BINARY_ARITH(X, T)                                                      \
  X(ADD, a + (T)p[0] * b) X(SUB, a - (T)p[0] * b) X(MUL, a * b)                  \
  X(MAX, MAXN(a, b)) X(MIN, MINN(a, b))
#define BINARY_FLOAT(X, T)                                                      \
  BINARY_ARITH(X, T) X(DIV, a / b) X(POW, RL_MATH2(pow, a, b)) X(FMOD, RL_MATH2(fmod, a, b))     \
  X(REMAINDER, FREM(a, b))                                                      \
  X(RELU_BWD, b > 0 ? a : (T)0) X(SIGMOID_BWD, a * b * ((T)1 - b))               \
  X(TANH_BWD, a * ((T)1 - b * b)) X(SIGN_MUL, a * (T)SGN(b))
#define BINARY_INT(X, T)                                                        \
  X(ADD, WRAP(U64(a) + U64((T)p[0]) * U64(b)))                                  \
  X(SUB, WRAP(U64(a) - U64((T)p[0]) * U64(b))) X(MUL, WRAP(U64(a) * U64(b)))      \
  X(MAX, MAXN(a, b)) X(MIN, MINN(a, b)) X(FMOD, IMOD(a, b)) X(REMAINDER, IREM(a, b)) \
  X(POW, rl_ipow(a, b))
#define BINARY_U8(X, T)                                                         \
  BINARY_ARITH(X, T) X(AND, a && b) X(OR, a || b) X(POW, (T)rl_ipow(a, b))
#define BINARY_CMP(X, T)                                                        \
  X(EQ, a == b) X(NE, a != b) X(LT, a < b) X(LE, a <= b) X(GT, a > b) X(GE, a >= b)

#define DEF_BIN_F32(op, e) LOOP2(bin_##op##_f32, float, float, e)
#define DEF_BIN_F64(op, e) LOOP2(bin_##op##_f64, double, double, e)
#define DEF_BIN_I64(op, e) LOOP2(bin_##op##_i64, int64_t, int64_t, e)
#define DEF_BIN_U8(op, e) LOOP2(bin_##op##_u8, uint8_t, uint8_t, e)
#define DEF_BCMP_F32(op, e) LOOP2(bin_##op##_f32, float, uint8_t, e)
#define DEF_BCMP_F64(op, e) LOOP2(bin_##op##_f64, double, uint8_t, e)
#define DEF_BCMP_I64(op, e) LOOP2(bin_##op##_i64, int64_t, uint8_t, e)

BINARY_FLOAT(DEF_BIN_F32, float)
BINARY_CMP(DEF_BCMP_F32, float)
BINARY_FLOAT(DEF_BIN_F64, double)
BINARY_CMP(DEF_BCMP_F64, double)
BINARY_INT(DEF_BIN_I64, int64_t)
BINARY_CMP(DEF_BCMP_I64, int64_t)
BINARY_U8(DEF_BIN_U8, uint8_t)
BINARY_CMP(DEF_BIN_U8, uint8_t)

#define REG_BIN_F32(op, e) [RL_BIN_##op][RL_F32] = bin_##op##_f32,
#define REG_BIN_F64(op, e) [RL_BIN_##op][RL_F64] = bin_##op##_f64,
#define REG_BIN_I64(op, e) [RL_BIN_##op][RL_I64] = bin_##op##_i64,
#define REG_BIN_U8(op, e) [RL_BIN_##op][RL_U8] = bin_##op##_u8,

static const rl_loop_fn binary_tab[RL_BIN_COUNT][RL_NDTYPES] = {
    BINARY_FLOAT(REG_BIN_F32, float) BINARY_CMP(REG_BIN_F32, float)
    BINARY_FLOAT(REG_BIN_F64, double) BINARY_CMP(REG_BIN_F64, double)
    BINARY_INT(REG_BIN_I64, int64_t) BINARY_CMP(REG_BIN_I64, int64_t)
    BINARY_U8(REG_BIN_U8, uint8_t) BINARY_CMP(REG_BIN_U8, uint8_t)
    [RL_BIN_ADD][RL_BF16] = bin_ADD_bf16, [RL_BIN_SUB][RL_BF16] = bin_SUB_bf16,
    [RL_BIN_RELU_BWD][RL_BF16] = bin_RELU_BWD_bf16,
    [RL_BIN_RELU_BWD][RL_F16] = bin_RELU_BWD_f16,
};

int rl_cpu_binary(rl_binary_op op, const rl_iter *it, double p0) {
  rl_loop_fn fn = binary_tab[op][it->dtype[1]];
  if (!fn) return rl_err("binary op %d is not defined for %s", (int)op, rl_dtype_name(it->dtype[1]));
  rl_cpu_iter_run(it, fn, &p0);
  return 0;
}

/* ---- ternary ----------------------------------------------------------- */

#define TERNARY_FLOAT(X, T)                                                     \
  X(FMA, a * b + c) X(ADDCMUL, a + (T)p[0] * b * c) X(ADDCDIV, a + (T)p[0] * b / c) \
  X(LERP, a + (T)p[0] * (b - a)) X(CLAMP, MINN(MAXN(a, b), c))
#define TERNARY_INT(X, T) X(CLAMP, a < b ? b : (a > c ? c : a))

#define DEF_TER_F32(op, e) LOOP3(ter_##op##_f32, float, float, e)
#define DEF_TER_F64(op, e) LOOP3(ter_##op##_f64, double, double, e)
#define DEF_TER_I64(op, e) LOOP3(ter_##op##_i64, int64_t, int64_t, e)
#define DEF_TER_U8(op, e) LOOP3(ter_##op##_u8, uint8_t, uint8_t, e)
TERNARY_FLOAT(DEF_TER_F32, float)
TERNARY_FLOAT(DEF_TER_F64, double)
TERNARY_INT(DEF_TER_I64, int64_t)
TERNARY_INT(DEF_TER_U8, uint8_t)
LOOP3(ter_WHERE_f32, uint8_t, float, a ? b : c)
LOOP3(ter_WHERE_f64, uint8_t, double, a ? b : c)
LOOP3(ter_WHERE_i64, uint8_t, int64_t, a ? b : c)
LOOP3(ter_WHERE_u8, uint8_t, uint8_t, a ? b : c)

#define REG_TER_F32(op, e) [RL_TER_##op][RL_F32] = ter_##op##_f32,
#define REG_TER_F64(op, e) [RL_TER_##op][RL_F64] = ter_##op##_f64,
#define REG_TER_I64(op, e) [RL_TER_##op][RL_I64] = ter_##op##_i64,
#define REG_TER_U8(op, e) [RL_TER_##op][RL_U8] = ter_##op##_u8,

static const rl_loop_fn ternary_tab[RL_TER_COUNT][RL_NDTYPES] = {
    TERNARY_FLOAT(REG_TER_F32, float) TERNARY_FLOAT(REG_TER_F64, double)
    TERNARY_INT(REG_TER_I64, int64_t) TERNARY_INT(REG_TER_U8, uint8_t)
    [RL_TER_WHERE][RL_F32] = ter_WHERE_f32, [RL_TER_WHERE][RL_F64] = ter_WHERE_f64,
    [RL_TER_WHERE][RL_I64] = ter_WHERE_i64, [RL_TER_WHERE][RL_U8] = ter_WHERE_u8,
};

int rl_cpu_ternary(rl_ternary_op op, const rl_iter *it, const double *p) {
  rl_dtype dt = it->dtype[0];
  rl_loop_fn fn = ternary_tab[op][dt];
  if (!fn) return rl_err("ternary op %d is not defined for %s", (int)op, rl_dtype_name(dt));
  rl_cpu_iter_run(it, fn, p);
  return 0;
}

/* ---- copy with conversion ---------------------------------------------- */

/* Floats become integers toward zero through int64, saturating (NaN to 0:
 * rl_i64_of_f64 of core.h, as the GPU converts). */
#define CONV(TO, TI, name) LOOP1(name, TI, TO, a)
#define CONVF2I(TO, TI, name) LOOP1(name, TI, TO, rl_i64_of_f64(a))
CONV(float, float, cp_f32_f32)
CONV(float, double, cp_f32_f64)
CONV(float, int64_t, cp_f32_i64)
CONV(float, uint8_t, cp_f32_u8)
CONV(double, float, cp_f64_f32)
CONV(double, double, cp_f64_f64)
CONV(double, int64_t, cp_f64_i64)
CONV(double, uint8_t, cp_f64_u8)
CONVF2I(int64_t, float, cp_i64_f32)
CONVF2I(int64_t, double, cp_i64_f64)
CONV(int64_t, int64_t, cp_i64_i64)
CONV(int64_t, uint8_t, cp_i64_u8)
CONVF2I(uint8_t, float, cp_u8_f32)
CONVF2I(uint8_t, double, cp_u8_f64)
CONV(uint8_t, int64_t, cp_u8_i64)
CONV(uint8_t, uint8_t, cp_u8_u8)

/* The half types (uint16_t bits), each through its core.h conversions: to
 * it by rounding to nearest even (from f64 and i64 rounded once); from it
 * exactly, then as from f32.  H names the type (cp_<to>_<from>), OF the
 * narrowing (OF##_f32, _f64, _i64) and W the widening. */
#define HALF_COPIES(H, OF, W)                                                  \
  LOOP1(cp_##H##_f32, float, uint16_t, OF##_f32(a))                            \
  LOOP1(cp_##H##_f64, double, uint16_t, OF##_f64(a))                           \
  LOOP1(cp_##H##_i64, int64_t, uint16_t, OF##_i64(a))                          \
  LOOP1(cp_##H##_u8, uint8_t, uint16_t, OF##_f32((float)a))                    \
  LOOP1(cp_##H##_##H, uint16_t, uint16_t, a)                                   \
  LOOP1(cp_f32_##H, uint16_t, float, W(a))                                     \
  LOOP1(cp_f64_##H, uint16_t, double, W(a))                                    \
  LOOP1(cp_i64_##H, uint16_t, int64_t, rl_i64_of_f64(W(a)))                    \
  LOOP1(cp_u8_##H, uint16_t, uint8_t, rl_i64_of_f64(W(a)))
HALF_COPIES(bf16, rl_bf16_of, rl_f32_of_bf16)
HALF_COPIES(f16, rl_f16_of, rl_f32_of_f16)
/* between the two through f32 (exact from either, so each rounds once) */
LOOP1(cp_bf16_f16, uint16_t, uint16_t, rl_bf16_of_f32(rl_f32_of_f16(a)))
LOOP1(cp_f16_bf16, uint16_t, uint16_t, rl_f16_of_f32(rl_f32_of_bf16(a)))

static const rl_loop_fn copy_tab[RL_NDTYPES][RL_NDTYPES] = {
    [RL_F32] = {cp_f32_f32, cp_f32_f64, cp_f32_i64, cp_f32_u8, cp_f32_bf16, cp_f32_f16},
    [RL_F64] = {cp_f64_f32, cp_f64_f64, cp_f64_i64, cp_f64_u8, cp_f64_bf16, cp_f64_f16},
    [RL_I64] = {cp_i64_f32, cp_i64_f64, cp_i64_i64, cp_i64_u8, cp_i64_bf16, cp_i64_f16},
    [RL_U8] = {cp_u8_f32, cp_u8_f64, cp_u8_i64, cp_u8_u8, cp_u8_bf16, cp_u8_f16},
    [RL_BF16] = {cp_bf16_f32, cp_bf16_f64, cp_bf16_i64, cp_bf16_u8, cp_bf16_bf16, cp_bf16_f16},
    [RL_F16] = {cp_f16_f32, cp_f16_f64, cp_f16_i64, cp_f16_u8, cp_f16_bf16, cp_f16_f16},
};

static void copy_bytes(char **d, const int64_t *s, int64_t n, const double *p) {
  (void)p;
  memcpy(d[0], d[1], (size_t)(n * s[0]));
}

int rl_cpu_copy(const rl_iter *it) {
  rl_dtype to = it->dtype[0], from = it->dtype[1];
  if (to == from && it->stride[0][it->ndim - 1] == 1 && it->stride[1][it->ndim - 1] == 1) {
    rl_cpu_iter_run(it, copy_bytes, NULL); /* same type, contiguous runs */
    return 0;
  }
  rl_cpu_iter_run(it, copy_tab[to][from], NULL);
  return 0;
}

/* ---- fill -------------------------------------------------------------- */

/* A float value into an integer tensor converts as tensors do (core.h's
 * rl_i64_of_f64: toward zero, saturating, NaN to 0). */
#define FILL_VALUE(T, x) (_Generic((T)0, float: (T)(x), double: (T)(x), default: (T)rl_i64_of_f64(x)))
#define FILL(name, T)                                                           \
  static void name(char **d, const int64_t *s, int64_t n, const double *p) {    \
    T v = FILL_VALUE(T, p[0]);                                                  \
    if (s[0] == sizeof(T)) {                                                    \
      T *o = (T *)d[0];                                                         \
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) o[i] = v;             \
    } else {                                                                    \
      for (int64_t i = 0; i < n; i++) AT(T, 0, i) = v;                          \
    }                                                                           \
  }
FILL(fill_f32, float)
FILL(fill_f64, double)
FILL(fill_i64, int64_t)
FILL(fill_u8, uint8_t)
static void fill_u16(char **d, const int64_t *s, int64_t n, uint16_t v) {
  for (int64_t i = 0; i < n; i++) AT(uint16_t, 0, i) = v;
}
static void fill_bf16(char **d, const int64_t *s, int64_t n, const double *p) {
  fill_u16(d, s, n, rl_bf16_of_f64(p[0]));
}
static void fill_f16(char **d, const int64_t *s, int64_t n, const double *p) {
  fill_u16(d, s, n, rl_f16_of_f64(p[0]));
}
static const rl_loop_fn fill_tab[RL_NDTYPES] = {fill_f32, fill_f64,  fill_i64,
                                                fill_u8,  fill_bf16, fill_f16};

int rl_cpu_fill(const rl_iter *it, double v) {
  rl_cpu_iter_run(it, fill_tab[it->dtype[0]], &v);
  return 0;
}
