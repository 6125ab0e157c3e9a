/* cuda_pointwise.cu - fill, copy/convert, unary, binary and ternary ops
 * over the strided, broadcasting iterator of backend.h.
 *
 * One kernel template walks the iterator (a thread per element; offsets
 * from the linear index, in 32-bit arithmetic when the sizes allow), and a
 * functor per (op family, dtype) does the loads, the math and the store.
 * The op is a uniform run-time switch inside the functor: one kernel per
 * dtype instead of one per (op, dtype) keeps the build short, and costs a
 * jump per element in a loop bound by memory.  The expressions are those of
 * engine/cpu/cpu_pointwise.c, so both backends compute the same thing.
 *
 * The half types (bf16, f16) are uint16_t bits, converted only by core.h's
 * functions, the CPU's own.  Copies move or convert them; elementwise ops
 * on them widen each element to f32 (exactly), evaluate the f32 formula
 * below and round the result once: the value the ops layer's path through
 * f32 copies gives (engine/ops_pointwise.c says which ops it sends here in
 * a half type, and why their gradients agree too).  A few ops pass a bf16
 * element's bits through as the CPU's own bf16 loops do, named below. */
#include "cuda_common.cuh"

/* ---- the iterator ------------------------------------------------------- */

template <int N> struct Ew {
  int ndim;
  int64_t numel;
  int64_t size[RL_MAX_DIMS];
  int64_t stride[N][RL_MAX_DIMS];
  char *data[N];
};

template <int N> static Ew<N> ew_of(const rl_iter *it) {
  Ew<N> e = {}; /* dims past ndim zero, not stack bytes copied to the GPU */
  e.ndim = it->ndim;
  e.numel = it->numel;
  for (int d = 0; d < it->ndim; d++) {
    e.size[d] = it->size[d];
    for (int a = 0; a < N; a++) e.stride[a][d] = it->stride[a][d];
  }
  for (int a = 0; a < N; a++) e.data[a] = it->data[a];
  return e;
}

/* Element offsets of linear position i in every operand (dims are ordered
 * outermost first; the outermost needs no division). */
template <int N, typename IT>
__device__ __forceinline__ void ew_offsets(const Ew<N> &e, IT i, int64_t *off) {
#pragma unroll
  for (int a = 0; a < N; a++) off[a] = 0;
  for (int d = e.ndim - 1; d > 0; d--) {
    IT s = (IT)e.size[d];
    IT c = i % s;
    i /= s;
#pragma unroll
    for (int a = 0; a < N; a++) off[a] += (int64_t)c * e.stride[a][d];
  }
#pragma unroll
  for (int a = 0; a < N; a++) off[a] += (int64_t)i * e.stride[a][0];
}

template <int N, typename IT, typename F> __global__ void ew_kernel(Ew<N> e, F f) {
  char *d[N]; /* in registers: passing e.data itself would copy it to local memory */
#pragma unroll
  for (int a = 0; a < N; a++) d[a] = e.data[a];
  IT n = (IT)e.numel;
  for (IT i = (IT)(blockIdx.x * blockDim.x + threadIdx.x); i < n;
       i += (IT)(gridDim.x * blockDim.x)) {
    int64_t off[N];
    ew_offsets<N, IT>(e, i, off);
    f(d, off);
  }
}

/* One dim (contiguous operands, or broadcast ones of stride 0): no division. */
template <int N> struct Ew1 {
  int64_t numel;
  int64_t stride[N];
  char *data[N];
};

template <int N, typename IT, typename F> __global__ void ew_kernel_1d(Ew1<N> e, F f) {
  char *d[N];
  int64_t s[N];
#pragma unroll
  for (int a = 0; a < N; a++) {
    d[a] = e.data[a];
    s[a] = e.stride[a];
  }
  IT n = (IT)e.numel;
  for (IT i = (IT)(blockIdx.x * blockDim.x + threadIdx.x); i < n;
       i += (IT)(gridDim.x * blockDim.x)) {
    int64_t off[N];
#pragma unroll
    for (int a = 0; a < N; a++) off[a] = (int64_t)i * s[a];
    f(d, off);
  }
}

template <int N, typename F> static int ew_launch(const rl_iter *it, const F &f) {
  if (it->numel == 0) return 0;
  unsigned nb = rl_blocks(it->numel);
  bool small = it->numel < ((int64_t)1 << 31) - (int64_t)nb * RL_THREADS;
  if (it->ndim == 1) {
    Ew1<N> e;
    e.numel = it->numel;
    for (int a = 0; a < N; a++) {
      e.stride[a] = it->stride[a][0];
      e.data[a] = it->data[a];
    }
    if (small) ew_kernel_1d<N, uint32_t, F><<<nb, RL_THREADS>>>(e, f);
    else ew_kernel_1d<N, int64_t, F><<<nb, RL_THREADS>>>(e, f);
  } else {
    Ew<N> e = ew_of<N>(it);
    if (small) ew_kernel<N, uint32_t, F><<<nb, RL_THREADS>>>(e, f);
    else ew_kernel<N, int64_t, F><<<nb, RL_THREADS>>>(e, f);
  }
  LAUNCH_CHECK("an elementwise kernel");
  return 0;
}

#define LD(T, k) (((const T *)d[k])[off[k]])
#define ST(T, k) (((T *)d[k])[off[k]])

/* ---- the expressions (as cpu_pointwise.c) ------------------------------- */

#define SGN(a) (((a) > 0) - ((a) < 0))
#define IMOD(a, b) ((b) == 0 || (b) == -1 ? 0 : (a) % (b))
#define IREM(a, b) (IMOD(a, b) != 0 && ((IMOD(a, b) < 0) != ((b) < 0)) ? IMOD(a, b) + (b) : IMOD(a, b))
#define MAXN(a, b) (((a) > (b) || (a) != (a)) ? (a) : (b))
#define MINN(a, b) (((a) < (b) || (a) != (a)) ? (a) : (b))

template <typename T> __device__ __forceinline__ T frem(T a, T b) {
  T m = fmod(a, b);
  return m != 0 && ((m < 0) != (b < 0)) ? m + b : m;
}

/* ---- fill ----------------------------------------------------------------- */

template <typename T> struct FillF {
  T v;
  __device__ void operator()(char **d, const int64_t *off) const { ST(T, 0) = v; }
};

/* A half type is filled with v rounded once, on the host, as the CPU does;
 * an integer type with v converted as tensors are (rl_i64_of_f64). */
int rl_cuda_fill(const rl_iter *it, double v) {
  rl_dtype dt = it->dtype[0];
  if (dt == RL_BF16) return ew_launch<1>(it, FillF<uint16_t>{rl_bf16_of_f64(v)});
  if (dt == RL_F16) return ew_launch<1>(it, FillF<uint16_t>{rl_f16_of_f64(v)});
  RL_DISPATCH_ALL(dt, return ew_launch<1>(it, FillF<T>{is_real<T>::value ? (T)v : (T)rl_i64_of_f64(v)}));
  return 0;
}

/* ---- copy with conversion -------------------------------------------------- */

/* Floats become integers toward zero through int64, saturating
 * (rl_i64_of_f64 of core.h, the CPU's conversion). */
template <typename TO, typename TI> struct CopyF {
  __device__ void operator()(char **d, const int64_t *off) const {
    TI a = LD(TI, 1);
    if (is_real<TI>::value && !is_real<TO>::value) ST(TO, 0) = (TO)rl_i64_of_f64((double)a);
    else ST(TO, 0) = (TO)a;
  }
};

/* A same-type copy between strided operands: the elements as they are
 * (a half type's bits included). */
template <typename T> struct MoveF {
  __device__ void operator()(char **d, const int64_t *off) const { ST(T, 0) = LD(T, 1); }
};

/* To the half type H, rounded to nearest even by core.h's narrowing for
 * the source type: once from f32, f64 (rounding to odd first) and i64
 * (through its sticky f64); u8 through f32, exact. */
template <rl_dtype H> __device__ __forceinline__ uint16_t half_of(float a) {
  return rl_half_of_f32(H, a);
}
template <rl_dtype H> __device__ __forceinline__ uint16_t half_of(double a) {
  return H == RL_BF16 ? rl_bf16_of_f64(a) : rl_f16_of_f64(a);
}
template <rl_dtype H> __device__ __forceinline__ uint16_t half_of(int64_t a) {
  return H == RL_BF16 ? rl_bf16_of_i64(a) : rl_f16_of_i64(a);
}
template <rl_dtype H> __device__ __forceinline__ uint16_t half_of(uint8_t a) {
  return rl_half_of_f32(H, (float)a);
}

template <rl_dtype H, typename TI> struct ToHalfF {
  __device__ void operator()(char **d, const int64_t *off) const {
    ST(uint16_t, 0) = half_of<H>(LD(TI, 1));
  }
};

/* From the half type H: widened to f32 exactly, then as from f32 (to an
 * integer through rl_i64_of_f64). */
template <typename TO, rl_dtype H> struct FromHalfF {
  __device__ void operator()(char **d, const int64_t *off) const {
    float a = rl_f32_of_half(H, LD(uint16_t, 1));
    if (!is_real<TO>::value) ST(TO, 0) = (TO)rl_i64_of_f64(a);
    else ST(TO, 0) = (TO)a;
  }
};

/* bf16 <-> f16 through f32 (exact from either), so each rounds once. */
template <rl_dtype HO, rl_dtype HI> struct HalfToHalfF {
  __device__ void operator()(char **d, const int64_t *off) const {
    ST(uint16_t, 0) = rl_half_of_f32(HO, rl_f32_of_half(HI, LD(uint16_t, 1)));
  }
};

template <typename TO> static int copy_to(const rl_iter *it) {
  switch (it->dtype[1]) {
  case RL_F32: return ew_launch<2>(it, CopyF<TO, float>());
  case RL_F64: return ew_launch<2>(it, CopyF<TO, double>());
  case RL_I64: return ew_launch<2>(it, CopyF<TO, int64_t>());
  case RL_U8: return ew_launch<2>(it, CopyF<TO, uint8_t>());
  case RL_BF16: return ew_launch<2>(it, FromHalfF<TO, RL_BF16>());
  case RL_F16: return ew_launch<2>(it, FromHalfF<TO, RL_F16>());
  default: return rl_err("copy: not defined from dtype %d", (int)it->dtype[1]);
  }
}

template <rl_dtype H> static int copy_to_half(const rl_iter *it) {
  switch (it->dtype[1]) {
  case RL_F32: return ew_launch<2>(it, ToHalfF<H, float>());
  case RL_F64: return ew_launch<2>(it, ToHalfF<H, double>());
  case RL_I64: return ew_launch<2>(it, ToHalfF<H, int64_t>());
  case RL_U8: return ew_launch<2>(it, ToHalfF<H, uint8_t>());
  case RL_BF16: return ew_launch<2>(it, HalfToHalfF<H, RL_BF16>());
  case RL_F16: return ew_launch<2>(it, HalfToHalfF<H, RL_F16>());
  default: return rl_err("copy: not defined from dtype %d", (int)it->dtype[1]);
  }
}

/* A same-type copy between two contiguous ranges is a memcpy on the stream. */
static bool plain_copy(const rl_iter *it) {
  if (it->dtype[0] != it->dtype[1] || it->ndim != 1) return false;
  return it->stride[0][0] == 1 && it->stride[1][0] == 1;
}

int rl_cuda_copy(const rl_iter *it) {
  if (it->numel == 0) return 0;
  rl_dtype to = it->dtype[0];
  if (plain_copy(it)) {
    CUDA_TRY(cudaMemcpyAsync(it->data[0], it->data[1], (size_t)it->numel * rl_dtype_size(to),
                             cudaMemcpyDeviceToDevice, 0));
    return 0;
  }
  if (to == it->dtype[1]) {
    RL_DISPATCH_MOVE("copy", to, return ew_launch<2>(it, MoveF<T>()));
  }
  if (to == RL_BF16) return copy_to_half<RL_BF16>(it);
  if (to == RL_F16) return copy_to_half<RL_F16>(it);
  RL_DISPATCH_ALL(to, return copy_to<T>(it));
  return 0;
}

/* ---- unary ----------------------------------------------------------------- */

/* Which (op, dtype) pairs exist: the CPU backend's, and on the half types
 * every op f32 has (the CPU's are relu on bf16 only: engine/ops_pointwise.c
 * sends a GPU more of them). */
static bool unary_defined(rl_unary_op op, rl_dtype dt) {
  if (op >= RL_UN_EQ_S && op <= RL_UN_GE_S) return true;
  switch (dt) {
  case RL_F32: case RL_F64: return op != RL_UN_NOT;
  case RL_I64:
    return op == RL_UN_NEG || op == RL_UN_ABS || op == RL_UN_SIGN || op == RL_UN_SQUARE ||
           op == RL_UN_RELU || op == RL_UN_CLAMP || op == RL_UN_AFFINE || op == RL_UN_MAXS ||
           op == RL_UN_MINS || op == RL_UN_FMOD || op == RL_UN_REMS;
  case RL_U8:
    return op == RL_UN_CLAMP || op == RL_UN_AFFINE || op == RL_UN_MAXS || op == RL_UN_MINS ||
           op == RL_UN_NOT;
  case RL_BF16: case RL_F16: return op != RL_UN_NOT; /* in f32, as f32 */
  default: return false;
  }
}

template <typename T> __device__ __forceinline__ T un_real(int op, T a, T p0, T p1) {
  switch (op) {
  case RL_UN_NEG: return -a;
  case RL_UN_ABS: return fabs(a);
  case RL_UN_SIGN: return (T)SGN(a);
  case RL_UN_EXP: return exp(a);
  case RL_UN_LOG: return log(a);
  case RL_UN_SQRT: return sqrt(a);
  case RL_UN_RSQRT: return (T)1 / sqrt(a);
  case RL_UN_RELU: return a > 0 ? a : (a != a ? a : (T)0);
  case RL_UN_SIGMOID: return (T)1 / ((T)1 + exp(-a));
  case RL_UN_TANH: return tanh(a);
  case RL_UN_SQUARE: return a * a;
  case RL_UN_RECIP: return (T)1 / a;
  case RL_UN_FLOOR: return floor(a);
  case RL_UN_CEIL: return ceil(a);
  case RL_UN_ROUND: return rint(a);
  case RL_UN_LOG1P: return log1p(a);
  case RL_UN_EXPM1: return expm1(a);
  case RL_UN_SIN: return sin(a);
  case RL_UN_COS: return cos(a);
  case RL_UN_CLAMP: return MINN(MAXN(a, p0), p1);
  case RL_UN_AFFINE: return a * p0 + p1;
  case RL_UN_RDIV: return p0 / a;
  case RL_UN_POW: return pow(a, p0);
  case RL_UN_RPOW: return pow(p0, a);
  case RL_UN_FMOD: return fmod(a, p0);
  case RL_UN_MAXS: return MAXN(a, p0);
  case RL_UN_MINS: return MINN(a, p0);
  case RL_UN_REMS: return frem(a, p0);
  default: return a;
  }
}

__device__ __forceinline__ int64_t un_i64(int op, int64_t a, int64_t p0, int64_t p1) {
  switch (op) {
  case RL_UN_NEG: return WRAP(0 - U64(a));
  case RL_UN_ABS: return a < 0 ? WRAP(0 - U64(a)) : a;
  case RL_UN_SIGN: return SGN(a);
  case RL_UN_SQUARE: return WRAP(U64(a) * U64(a));
  case RL_UN_RELU: return a > 0 ? a : 0;
  case RL_UN_CLAMP: return a < p0 ? p0 : (a > p1 ? p1 : a);
  case RL_UN_AFFINE: return WRAP(U64(a) * U64(p0) + U64(p1));
  case RL_UN_MAXS: return a > p0 ? a : p0;
  case RL_UN_MINS: return a < p0 ? a : p0;
  case RL_UN_FMOD: return IMOD(a, p0);
  case RL_UN_REMS: return IREM(a, p0);
  default: return a;
  }
}

__device__ __forceinline__ uint8_t un_u8(int op, uint8_t a, uint8_t p0, uint8_t p1) {
  switch (op) {
  case RL_UN_CLAMP: return a < p0 ? p0 : (a > p1 ? p1 : a);
  case RL_UN_AFFINE: return (uint8_t)(a * p0 + p1);
  case RL_UN_MAXS: return a > p0 ? a : p0;
  case RL_UN_MINS: return a < p0 ? a : p0;
  case RL_UN_NOT: return !a;
  default: return a;
  }
}

template <typename T> __device__ __forceinline__ T un_any(int op, T a, T p0, T p1);
template <> __device__ __forceinline__ float un_any(int op, float a, float p0, float p1) {
  return un_real(op, a, p0, p1);
}
template <> __device__ __forceinline__ double un_any(int op, double a, double p0, double p1) {
  return un_real(op, a, p0, p1);
}
template <> __device__ __forceinline__ int64_t un_any(int op, int64_t a, int64_t p0, int64_t p1) {
  return un_i64(op, a, p0, p1);
}
template <> __device__ __forceinline__ uint8_t un_any(int op, uint8_t a, uint8_t p0, uint8_t p1) {
  return un_u8(op, a, p0, p1);
}

template <typename T> struct UnaryF {
  int op;
  T p0, p1;
  __device__ void operator()(char **d, const int64_t *off) const {
    ST(T, 0) = un_any<T>(op, LD(T, 1), p0, p1);
  }
};

/* The half type H: the f32 formula on the widened element, rounded once.
 * bf16's relu passes the element's bits through (a NaN's included), as the
 * CPU's bf16 loop does (engine/cpu/cpu_pointwise.c, un_RELU_bf16). */
template <rl_dtype H> struct UnaryHalfF {
  int op;
  float p0, p1;
  __device__ void operator()(char **d, const int64_t *off) const {
    uint16_t h = LD(uint16_t, 1);
    float a = rl_f32_of_half(H, h);
    if (H == RL_BF16 && op == RL_UN_RELU) ST(uint16_t, 0) = a > 0 || a != a ? h : (uint16_t)0;
    else ST(uint16_t, 0) = rl_half_of_f32(H, un_real<float>(op, a, p0, p1));
  }
};

/* comparisons with a scalar (in double, as the CPU) and isnan: u8 out */
__device__ __forceinline__ uint8_t un_cmp(int op, double x, double p0) {
  switch (op) {
  case RL_UN_EQ_S: return x == p0;
  case RL_UN_NE_S: return x != p0;
  case RL_UN_LT_S: return x < p0;
  case RL_UN_LE_S: return x <= p0;
  case RL_UN_GT_S: return x > p0;
  case RL_UN_GE_S: return x >= p0;
  default: return x != x; /* RL_UN_ISNAN (floats only: exact in double) */
  }
}

template <typename T> struct UnaryCmpF {
  int op;
  double p0;
  __device__ void operator()(char **d, const int64_t *off) const {
    ST(uint8_t, 0) = un_cmp(op, (double)LD(T, 1), p0);
  }
};

/* a half element compares as its f32 widening does (exactly, in double) */
template <rl_dtype H> struct UnaryCmpHalfF {
  int op;
  double p0;
  __device__ void operator()(char **d, const int64_t *off) const {
    ST(uint8_t, 0) = un_cmp(op, (double)rl_f32_of_half(H, LD(uint16_t, 1)), p0);
  }
};

/* Half operands of one type in, that type (or u8) out: the ops layer sends
 * nothing else, and anything else would be written at the wrong width. */
static int half_operands(const char *what, int op, const rl_iter *it, int first, bool u8_out) {
  rl_dtype dt = it->dtype[first];
  bool ok = it->dtype[0] == (u8_out ? RL_U8 : dt);
  for (int a = first + 1; a < it->nargs; a++) ok = ok && it->dtype[a] == dt;
  if (!ok)
    return rl_err("%s op %d: operands of mixed dtypes with %s (output %s)", what, op,
                  rl_dtype_name(dt), rl_dtype_name(it->dtype[0]));
  return 0;
}

int rl_cuda_unary(rl_unary_op op, const rl_iter *it, const double *p) {
  rl_dtype dt = it->dtype[1];
  bool cmp = (op >= RL_UN_EQ_S && op <= RL_UN_GE_S) || op == RL_UN_ISNAN;
  if (op == RL_UN_ISNAN ? !rl_dtype_is_floating(dt) : !unary_defined(op, dt))
    return rl_err("unary op %d is not defined for %s", (int)op, rl_dtype_name(dt));
  if (rl_dtype_is_half(dt)) {
    if (half_operands("unary", (int)op, it, 1, cmp)) return -1;
    if (cmp && dt == RL_BF16) return ew_launch<2>(it, UnaryCmpHalfF<RL_BF16>{(int)op, p[0]});
    if (cmp) return ew_launch<2>(it, UnaryCmpHalfF<RL_F16>{(int)op, p[0]});
    /* the parameters in f32, as the f32 op takes them */
    if (dt == RL_BF16)
      return ew_launch<2>(it, UnaryHalfF<RL_BF16>{(int)op, (float)p[0], (float)p[1]});
    return ew_launch<2>(it, UnaryHalfF<RL_F16>{(int)op, (float)p[0], (float)p[1]});
  }
  if (cmp) {
    RL_DISPATCH_ALL(dt, return ew_launch<2>(it, UnaryCmpF<T>{(int)op, p[0]}));
  }
  RL_DISPATCH_ALL(dt, return ew_launch<2>(it, UnaryF<T>{(int)op, (T)p[0], (T)p[1]}));
  return 0;
}

/* ---- binary ---------------------------------------------------------------- */

static bool binary_defined(rl_binary_op op, rl_dtype dt) {
  if (op >= RL_BIN_EQ && op <= RL_BIN_GE) return true;
  bool arith = op == RL_BIN_ADD || op == RL_BIN_SUB || op == RL_BIN_MUL || op == RL_BIN_MAX ||
               op == RL_BIN_MIN;
  switch (dt) {
  case RL_F32: case RL_F64: return op != RL_BIN_AND && op != RL_BIN_OR;
  case RL_I64: return arith || op == RL_BIN_FMOD || op == RL_BIN_REMAINDER || op == RL_BIN_POW;
  case RL_U8: return arith || op == RL_BIN_AND || op == RL_BIN_OR || op == RL_BIN_POW;
  case RL_BF16: case RL_F16: return op != RL_BIN_AND && op != RL_BIN_OR; /* in f32, as f32 */
  default: return false;
  }
}

template <typename T> __device__ __forceinline__ T bin_real(int op, T a, T b, T p0) {
  switch (op) {
  case RL_BIN_ADD: return a + p0 * b;
  case RL_BIN_SUB: return a - p0 * b;
  case RL_BIN_MUL: return a * b;
  case RL_BIN_MAX: return MAXN(a, b);
  case RL_BIN_MIN: return MINN(a, b);
  case RL_BIN_DIV: return a / b;
  case RL_BIN_POW: return pow(a, b);
  case RL_BIN_FMOD: return fmod(a, b);
  case RL_BIN_REMAINDER: return frem(a, b);
  case RL_BIN_RELU_BWD: return b > 0 ? a : (T)0;
  case RL_BIN_SIGMOID_BWD: return a * b * ((T)1 - b);
  case RL_BIN_TANH_BWD: return a * ((T)1 - b * b);
  case RL_BIN_SIGN_MUL: return a * (T)SGN(b);
  default: return a;
  }
}

__device__ __forceinline__ int64_t bin_i64(int op, int64_t a, int64_t b, int64_t p0) {
  switch (op) {
  case RL_BIN_ADD: return WRAP(U64(a) + U64(p0) * U64(b));
  case RL_BIN_SUB: return WRAP(U64(a) - U64(p0) * U64(b));
  case RL_BIN_MUL: return WRAP(U64(a) * U64(b));
  case RL_BIN_MAX: return a > b ? a : b;
  case RL_BIN_MIN: return a < b ? a : b;
  case RL_BIN_FMOD: return IMOD(a, b);
  case RL_BIN_REMAINDER: return IREM(a, b);
  case RL_BIN_POW: return rl_ipow(a, b);
  default: return a;
  }
}

__device__ __forceinline__ uint8_t bin_u8(int op, uint8_t a, uint8_t b, uint8_t p0) {
  switch (op) {
  case RL_BIN_ADD: return (uint8_t)(a + p0 * b);
  case RL_BIN_SUB: return (uint8_t)(a - p0 * b);
  case RL_BIN_MUL: return (uint8_t)(a * b);
  case RL_BIN_MAX: return a > b ? a : b;
  case RL_BIN_MIN: return a < b ? a : b;
  case RL_BIN_AND: return a && b;
  case RL_BIN_OR: return a || b;
  case RL_BIN_POW: return (uint8_t)rl_ipow(a, b);
  default: return a;
  }
}

template <typename T> __device__ __forceinline__ T bin_any(int op, T a, T b, T p0);
template <> __device__ __forceinline__ float bin_any(int op, float a, float b, float p0) {
  return bin_real(op, a, b, p0);
}
template <> __device__ __forceinline__ double bin_any(int op, double a, double b, double p0) {
  return bin_real(op, a, b, p0);
}
template <> __device__ __forceinline__ int64_t bin_any(int op, int64_t a, int64_t b, int64_t p0) {
  return bin_i64(op, a, b, p0);
}
template <> __device__ __forceinline__ uint8_t bin_any(int op, uint8_t a, uint8_t b, uint8_t p0) {
  return bin_u8(op, a, b, p0);
}

template <typename T> struct BinaryF {
  int op;
  T p0;
  __device__ void operator()(char **d, const int64_t *off) const {
    ST(T, 0) = bin_any<T>(op, LD(T, 1), LD(T, 2), p0);
  }
};

/* bf16's relu_backward passes the gradient's bits through, as the CPU's
 * bf16 loop does (bin_RELU_BWD_bf16); the rest as UnaryHalfF. */
template <rl_dtype H> struct BinaryHalfF {
  int op;
  float p0;
  __device__ void operator()(char **d, const int64_t *off) const {
    uint16_t ha = LD(uint16_t, 1);
    float a = rl_f32_of_half(H, ha), b = rl_f32_of_half(H, LD(uint16_t, 2));
    if (H == RL_BF16 && op == RL_BIN_RELU_BWD) ST(uint16_t, 0) = b > 0 ? ha : (uint16_t)0;
    else ST(uint16_t, 0) = rl_half_of_f32(H, bin_real<float>(op, a, b, p0));
  }
};

template <typename T> __device__ __forceinline__ uint8_t bin_cmp(int op, T a, T b) {
  switch (op) {
  case RL_BIN_EQ: return a == b;
  case RL_BIN_NE: return a != b;
  case RL_BIN_LT: return a < b;
  case RL_BIN_LE: return a <= b;
  case RL_BIN_GT: return a > b;
  default: return a >= b;
  }
}

template <typename T> struct BinaryCmpF {
  int op;
  __device__ void operator()(char **d, const int64_t *off) const {
    ST(uint8_t, 0) = bin_cmp<T>(op, LD(T, 1), LD(T, 2));
  }
};

template <rl_dtype H> struct BinaryCmpHalfF {
  int op;
  __device__ void operator()(char **d, const int64_t *off) const {
    ST(uint8_t, 0) = bin_cmp<float>(op, rl_f32_of_half(H, LD(uint16_t, 1)),
                                    rl_f32_of_half(H, LD(uint16_t, 2)));
  }
};

int rl_cuda_binary(rl_binary_op op, const rl_iter *it, double p0) {
  rl_dtype dt = it->dtype[1];
  bool cmp = op >= RL_BIN_EQ && op <= RL_BIN_GE;
  if (!binary_defined(op, dt))
    return rl_err("binary op %d is not defined for %s", (int)op, rl_dtype_name(dt));
  if (rl_dtype_is_half(dt)) {
    if (half_operands("binary", (int)op, it, 1, cmp)) return -1;
    if (cmp && dt == RL_BF16) return ew_launch<3>(it, BinaryCmpHalfF<RL_BF16>{(int)op});
    if (cmp) return ew_launch<3>(it, BinaryCmpHalfF<RL_F16>{(int)op});
    if (dt == RL_BF16) return ew_launch<3>(it, BinaryHalfF<RL_BF16>{(int)op, (float)p0});
    return ew_launch<3>(it, BinaryHalfF<RL_F16>{(int)op, (float)p0});
  }
  if (cmp) {
    RL_DISPATCH_ALL(dt, return ew_launch<3>(it, BinaryCmpF<T>{(int)op}));
  }
  RL_DISPATCH_ALL(dt, return ew_launch<3>(it, BinaryF<T>{(int)op, (T)p0}));
  return 0;
}

/* ---- ternary --------------------------------------------------------------- */

template <typename T> __device__ __forceinline__ T ter_real(int op, T a, T b, T c, T p0) {
  switch (op) {
  case RL_TER_FMA: return a * b + c;
  case RL_TER_ADDCMUL: return a + p0 * b * c;
  case RL_TER_ADDCDIV: return a + p0 * b / c;
  case RL_TER_LERP: return a + p0 * (b - a);
  default: return MINN(MAXN(a, b), c); /* RL_TER_CLAMP */
  }
}

template <typename T> struct TernaryRealF {
  int op;
  double p0_;
  __device__ void operator()(char **d, const int64_t *off) const {
    ST(T, 0) = ter_real<T>(op, LD(T, 1), LD(T, 2), LD(T, 3), (T)p0_);
  }
};

/* p0 in f32, as the f32 op takes it */
template <rl_dtype H> struct TernaryHalfF {
  int op;
  float p0;
  __device__ void operator()(char **d, const int64_t *off) const {
    float a = rl_f32_of_half(H, LD(uint16_t, 1)), b = rl_f32_of_half(H, LD(uint16_t, 2)),
          c = rl_f32_of_half(H, LD(uint16_t, 3));
    ST(uint16_t, 0) = rl_half_of_f32(H, ter_real<float>(op, a, b, c, p0));
  }
};

template <typename T> struct TernaryClampIntF {
  __device__ void operator()(char **d, const int64_t *off) const {
    T a = LD(T, 1), b = LD(T, 2), c = LD(T, 3);
    ST(T, 0) = a < b ? b : (a > c ? c : a);
  }
};

template <typename T> struct WhereF {
  __device__ void operator()(char **d, const int64_t *off) const {
    ST(T, 0) = LD(uint8_t, 1) ? LD(T, 2) : LD(T, 3);
  }
};

/* where on a half type selects the element and stores it as the path
 * through f32 does, widened and rounded back: its own bits, except that a
 * signalling NaN comes out quiet, exactly as the CPU's where gives it. */
template <rl_dtype H> struct WhereHalfF {
  __device__ void operator()(char **d, const int64_t *off) const {
    uint16_t h = LD(uint8_t, 1) ? LD(uint16_t, 2) : LD(uint16_t, 3);
    ST(uint16_t, 0) = rl_half_of_f32(H, rl_f32_of_half(H, h));
  }
};

int rl_cuda_ternary(rl_ternary_op op, const rl_iter *it, const double *p) {
  rl_dtype dt = it->dtype[0];
  double p0 = p ? p[0] : 0;
  if (rl_dtype_is_half(dt)) {
    bool ok = it->dtype[1] == (op == RL_TER_WHERE ? RL_U8 : dt) && it->dtype[2] == dt &&
              it->dtype[3] == dt;
    if (!ok)
      return rl_err("ternary op %d: operands of mixed dtypes with a %s result", (int)op,
                    rl_dtype_name(dt));
    if (op == RL_TER_WHERE)
      return dt == RL_BF16 ? ew_launch<4>(it, WhereHalfF<RL_BF16>())
                           : ew_launch<4>(it, WhereHalfF<RL_F16>());
    return dt == RL_BF16 ? ew_launch<4>(it, TernaryHalfF<RL_BF16>{(int)op, (float)p0})
                         : ew_launch<4>(it, TernaryHalfF<RL_F16>{(int)op, (float)p0});
  }
  if (op == RL_TER_WHERE) {
    RL_DISPATCH_ALL(dt, return ew_launch<4>(it, WhereF<T>()));
  }
  if (rl_dtype_is_float(dt)) {
    if (dt == RL_F32) return ew_launch<4>(it, TernaryRealF<float>{(int)op, p0});
    return ew_launch<4>(it, TernaryRealF<double>{(int)op, p0});
  }
  if (op == RL_TER_CLAMP) {
    if (dt == RL_I64) return ew_launch<4>(it, TernaryClampIntF<int64_t>());
    if (dt == RL_U8) return ew_launch<4>(it, TernaryClampIntF<uint8_t>());
  }
  return rl_err("ternary op %d is not defined for %s", (int)op, rl_dtype_name(dt));
}
