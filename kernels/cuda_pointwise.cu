/* cuda_pointwise.cu - fill, copy/convert, unary, binary and ternary ops
 * over the strided, broadcasting iterator of backend.h.
 *
 * One kernel template walks the iterator (a thread per element; offsets
 * from the linear index, in 32-bit arithmetic when the sizes allow), and a
 * functor per (op family, dtype) does the loads, the math and the store.
 * The op is a uniform run-time switch inside the functor: one kernel per
 * dtype instead of one per (op, dtype) keeps the build short, and costs a
 * jump per element in a loop bound by memory.  The expressions are those of
 * engine/cpu/cpu_pointwise.c, so both backends compute the same thing. */
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
  Ew<N> e;
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

int rl_cuda_fill(const rl_iter *it, double v) {
  RL_DISPATCH_ALL(it->dtype[0], return ew_launch<1>(it, FillF<T>{(T)v}));
  return 0;
}

/* ---- copy with conversion -------------------------------------------------- */

/* Floats become integers by truncation through int64, as a C cast would. */
template <typename TO, typename TI> struct CopyF {
  __device__ void operator()(char **d, const int64_t *off) const {
    TI a = LD(TI, 1);
    if (is_real<TI>::value && !is_real<TO>::value) ST(TO, 0) = (TO)(int64_t)a;
    else ST(TO, 0) = (TO)a;
  }
};

template <typename TO> static int copy_to(const rl_iter *it) {
  switch (it->dtype[1]) {
  case RL_F32: return ew_launch<2>(it, CopyF<TO, float>());
  case RL_F64: return ew_launch<2>(it, CopyF<TO, double>());
  case RL_I64: return ew_launch<2>(it, CopyF<TO, int64_t>());
  case RL_U8: return ew_launch<2>(it, CopyF<TO, uint8_t>());
  default: return rl_err("copy: unknown dtype");
  }
}

/* A same-type copy between two contiguous ranges is a memcpy on the stream. */
static bool plain_copy(const rl_iter *it) {
  if (it->dtype[0] != it->dtype[1] || it->ndim != 1) return false;
  return it->stride[0][0] == 1 && it->stride[1][0] == 1;
}

int rl_cuda_copy(const rl_iter *it) {
  if (it->numel == 0) return 0;
  if (plain_copy(it)) {
    CUDA_TRY(cudaMemcpyAsync(it->data[0], it->data[1],
                             (size_t)it->numel * rl_dtype_size(it->dtype[0]),
                             cudaMemcpyDeviceToDevice, 0));
    return 0;
  }
  RL_DISPATCH_ALL(it->dtype[0], return copy_to<T>(it));
  return 0;
}

/* ---- unary ----------------------------------------------------------------- */

/* Which (op, dtype) pairs exist: exactly the CPU backend's. */
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

/* comparisons with a scalar (in double, as the CPU) and isnan: u8 out */
template <typename T> struct UnaryCmpF {
  int op;
  double p0;
  __device__ void operator()(char **d, const int64_t *off) const {
    T a = LD(T, 1);
    double x = (double)a;
    uint8_t r;
    switch (op) {
    case RL_UN_EQ_S: r = x == p0; break;
    case RL_UN_NE_S: r = x != p0; break;
    case RL_UN_LT_S: r = x < p0; break;
    case RL_UN_LE_S: r = x <= p0; break;
    case RL_UN_GT_S: r = x > p0; break;
    case RL_UN_GE_S: r = x >= p0; break;
    default: r = a != a; break; /* RL_UN_ISNAN */
    }
    ST(uint8_t, 0) = r;
  }
};

int rl_cuda_unary(rl_unary_op op, const rl_iter *it, const double *p) {
  rl_dtype dt = it->dtype[1];
  bool cmp = (op >= RL_UN_EQ_S && op <= RL_UN_GE_S) || op == RL_UN_ISNAN;
  if (op == RL_UN_ISNAN ? !rl_dtype_is_float(dt) : !unary_defined(op, dt))
    return rl_err("unary op %d is not defined for %s", (int)op, rl_dtype_name(dt));
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
  case RL_I64: return arith || op == RL_BIN_FMOD || op == RL_BIN_REMAINDER;
  case RL_U8: return arith || op == RL_BIN_AND || op == RL_BIN_OR;
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

template <typename T> struct BinaryCmpF {
  int op;
  __device__ void operator()(char **d, const int64_t *off) const {
    T a = LD(T, 1), b = LD(T, 2);
    uint8_t r;
    switch (op) {
    case RL_BIN_EQ: r = a == b; break;
    case RL_BIN_NE: r = a != b; break;
    case RL_BIN_LT: r = a < b; break;
    case RL_BIN_LE: r = a <= b; break;
    case RL_BIN_GT: r = a > b; break;
    default: r = a >= b; break;
    }
    ST(uint8_t, 0) = r;
  }
};

int rl_cuda_binary(rl_binary_op op, const rl_iter *it, double p0) {
  rl_dtype dt = it->dtype[1];
  if (!binary_defined(op, dt))
    return rl_err("binary op %d is not defined for %s", (int)op, rl_dtype_name(dt));
  if (op >= RL_BIN_EQ && op <= RL_BIN_GE) {
    RL_DISPATCH_ALL(dt, return ew_launch<3>(it, BinaryCmpF<T>{(int)op}));
  }
  RL_DISPATCH_ALL(dt, return ew_launch<3>(it, BinaryF<T>{(int)op, (T)p0}));
  return 0;
}

/* ---- ternary --------------------------------------------------------------- */

template <typename T> struct TernaryRealF {
  int op;
  double p0_;
  __device__ void operator()(char **d, const int64_t *off) const {
    T a = LD(T, 1), b = LD(T, 2), c = LD(T, 3), p0 = (T)p0_, r;
    switch (op) {
    case RL_TER_FMA: r = a * b + c; break;
    case RL_TER_ADDCMUL: r = a + p0 * b * c; break;
    case RL_TER_ADDCDIV: r = a + p0 * b / c; break;
    case RL_TER_LERP: r = a + p0 * (b - a); break;
    default: r = MINN(MAXN(a, b), c); break; /* RL_TER_CLAMP */
    }
    ST(T, 0) = r;
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

int rl_cuda_ternary(rl_ternary_op op, const rl_iter *it, const double *p) {
  rl_dtype dt = it->dtype[0];
  if (op == RL_TER_WHERE) {
    RL_DISPATCH_ALL(dt, return ew_launch<4>(it, WhereF<T>()));
  }
  if (rl_dtype_is_float(dt)) {
    double p0 = p ? p[0] : 0;
    if (dt == RL_F32) return ew_launch<4>(it, TernaryRealF<float>{(int)op, p0});
    return ew_launch<4>(it, TernaryRealF<double>{(int)op, p0});
  }
  if (op == RL_TER_CLAMP) {
    if (dt == RL_I64) return ew_launch<4>(it, TernaryClampIntF<int64_t>());
    if (dt == RL_U8) return ew_launch<4>(it, TernaryClampIntF<uint8_t>());
  }
  return rl_err("ternary op %d is not defined for %s", (int)op, rl_dtype_name(dt));
}
