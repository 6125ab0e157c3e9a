/* core.h - dtypes, devices, storages, tensors and the error model.
 *
 * Errors are values: a function that can fail returns NULL (for a new
 * tensor) or a negative status, after writing a message into a per-thread
 * buffer read back with rl_errmsg().  Nothing in engine/ calls exit, abort
 * or longjmp, and nothing here includes lua.h or a CUDA header. */
#ifndef RL_CORE_H
#define RL_CORE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RL_MAX_DIMS 8

/* The dtype helpers and half-type conversions below are compiled for the
 * GPU too (kernels/ include this header under nvcc), so both backends
 * round with the same code. */
#ifdef __CUDACC__
#define RL_HOSTDEV __host__ __device__
#else
#define RL_HOSTDEV
#endif

/* ---- errors ------------------------------------------------------------ */

/* Format a message into the thread's error buffer; always returns -1 so that
 * `return rl_err(...)` reads as a failing status. */
int rl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current message with "op: " unless it already names an op. */
int rl_err_prefix(const char *op);
const char *rl_errmsg(void);

/* ---- dtypes ------------------------------------------------------------ */

/* bf16 (bfloat16: f32's sign and exponent, 7 bits of mantissa) and f16
 * (IEEE binary16: 5 exponent bits, 10 of mantissa) are the half types:
 * storage types on both devices.  Conversion, fill, copy, indexing and
 * views run on them directly; elementwise ops and reductions compute in
 * f32 and round the result to the half type once (ops_pointwise.c,
 * ops_reduce.c).  bf16 is also rl.autocast's compute type: conv2d, linear,
 * matmul and max pooling take bf16 operands and sum in f32 (cpu/cpu_conv.c,
 * cpu/cpu_blas.c, cpu/cpu_pool.c; conv_gemm.c and kernels/ on CUDA).  The
 * other ops refuse the half types by name. */
typedef enum { RL_F32, RL_F64, RL_I64, RL_U8, RL_BF16, RL_F16, RL_NDTYPES } rl_dtype;

size_t rl_dtype_size(rl_dtype dt);
const char *rl_dtype_name(rl_dtype dt); /* "f32", "f64", "i64", "u8", "bf16", "f16" */
int rl_dtype_parse(const char *name, rl_dtype *out); /* accepts torch names too */
/* f32 or f64: the types the kernels compute in. */
RL_HOSTDEV static inline bool rl_dtype_is_float(rl_dtype dt) {
  return dt == RL_F32 || dt == RL_F64;
}
/* bf16 or f16: stored in 16 bits, computed in f32. */
RL_HOSTDEV static inline bool rl_dtype_is_half(rl_dtype dt) {
  return dt == RL_BF16 || dt == RL_F16;
}
/* A floating-point type, the half types included: what may require a gradient. */
RL_HOSTDEV static inline bool rl_dtype_is_floating(rl_dtype dt) {
  return rl_dtype_is_float(dt) || rl_dtype_is_half(dt);
}

/* ---- half-type conversion ------------------------------------------------ */

/* Every narrowing rounds to nearest, ties to even; NaN stays a quiet NaN of
 * its sign (the top bits of its payload kept, as the hardware converts),
 * and values past the largest finite one become infinities. */

/* f32 -> bf16: subnormals round like any other value. */
RL_HOSTDEV static inline uint16_t rl_bf16_of_f32(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
RL_HOSTDEV static inline float rl_f32_of_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* f32 -> f16.  A normal result: the 13 bits below f16's mantissa rounded
 * off, the exponent rebiased (a carry out of the mantissa steps the
 * exponent, up to infinity).  Below 2^-14 the result is a multiple of
 * 2^-24: adding 0.5, whose f32 ulp is 2^-24, makes the f32 adder round
 * |f| to that multiple, to nearest even; the bits above 0.5's are the
 * f16 encoding (1024, f16's smallest normal, included). */
RL_HOSTDEV static inline uint16_t rl_f16_of_f32(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520: rounds past 65504 */
  if (a >= 0x38800000u) /* >= 2^-14 */
    return (uint16_t)(sign | ((a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u) >> 13));
  float r = fabsf(f) + 0.5f;
  uint32_t ur;
  memcpy(&ur, &r, 4);
  return (uint16_t)(sign | (ur - 0x3f000000u));
}
/* f16 -> f32, exactly, without branches (selects, so that a loop of them
 * vectorises): a normal value's fields moved into place with the exponent
 * rebiased by 112; the top exponent (inf, NaN) rebiased to f32's top; a
 * subnormal or zero is m * 2^-24 (an integer conversion: exact, and blind
 * to a denormals-are-zero mode).  The choices are masks, not branches. */
RL_HOSTDEV static inline float rl_f32_of_f16(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = h & 0x7c00u;
  uint32_t norm = ((uint32_t)(h & 0x7fffu) << 13) + 0x38000000u;
  float sub = (float)(h & 0x3ffu) * 0x1p-24f;
  uint32_t us;
  memcpy(&us, &sub, 4);
  uint32_t top = 0u - (uint32_t)(e == 0x7c00u), low = 0u - (uint32_t)(e == 0);
  uint32_t u = ((norm + (top & 0x38000000u)) & ~low) | (us & low) | sign;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* f64 -> f32 rounding to odd: an inexact result gets its last bit set.
 * Rounding that to a type of at most 22 bits of precision gives the f64's
 * own correctly rounded value (the set bit is the sticky bit that f32's
 * spare bits would otherwise lose), so f64 -> half rounds once. */
RL_HOSTDEV static inline float rl_f32_odd_of_f64(double d) {
  float f = (float)d;
  if (f == f && (double)f != d && f > -INFINITY && f < INFINITY) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if (!(u & 1u)) { /* even: the other neighbour of d, one ulp toward it, is odd */
      u += fabs(d) > fabs((double)f) ? 1u : (uint32_t)-1;
      memcpy(&f, &u, 4);
    }
  }
  return f;
}
RL_HOSTDEV static inline uint16_t rl_bf16_of_f64(double d) {
  return rl_bf16_of_f32(rl_f32_odd_of_f64(d));
}
RL_HOSTDEV static inline uint16_t rl_f16_of_f64(double d) {
  return rl_f16_of_f32(rl_f32_odd_of_f64(d));
}

/* A float -> i64 toward zero, saturating: NaN gives 0, and a value past
 * i64's range the nearest end of it.  That is what a GPU's conversion
 * does; C leaves these cases undefined and x86 gives INT64_MIN for all of
 * them, so both backends convert tensors through this (u8 then wraps the
 * i64, as PyTorch's conversion of in-range values does). */
RL_HOSTDEV static inline int64_t rl_i64_of_f64(double d) {
  if (d != d) return 0;
  if (d >= 9223372036854775808.0) return INT64_MAX;
  if (d <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)d;
}

/* a^e for integers, exact modulo 2^64 (wrapping as the other integer ops;
 * u8 keeps the low byte), by squaring: both backends' integer pow.  The
 * ops layer refuses e < 0; here it gives 1 / a^-e toward zero. */
RL_HOSTDEV static inline int64_t rl_ipow(int64_t a, int64_t e) {
  if (e < 0) return a == 1 ? 1 : (a == -1 ? ((e & 1) ? -1 : 1) : 0);
  uint64_t r = 1, b = (uint64_t)a;
  for (uint64_t k = (uint64_t)e; k; k >>= 1) {
    if (k & 1) r *= b;
    b *= b;
  }
  return (int64_t)r;
}

/* i64 -> f64 with the bits shifted out beyond 2^53 kept as one sticky bit:
 * exact, or rounding to any narrower type as v itself would. */
RL_HOSTDEV static inline double rl_f64_sticky_of_i64(int64_t v) {
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  int s = 0;
  while ((u >> s) >= ((uint64_t)1 << 53)) s++;
  uint64_t m = (u >> s) | (s && (u & (((uint64_t)1 << s) - 1)) ? 1 : 0);
  double d = ldexp((double)m, s);
  return v < 0 ? -d : d;
}
RL_HOSTDEV static inline uint16_t rl_bf16_of_i64(int64_t v) {
  return rl_bf16_of_f64(rl_f64_sticky_of_i64(v));
}
RL_HOSTDEV static inline uint16_t rl_f16_of_i64(int64_t v) {
  return rl_f16_of_f64(rl_f64_sticky_of_i64(v));
}

/* A half value (bits h of dtype dt, bf16 or f16) widened to f32, exactly;
 * and an f32 rounded to dt. */
RL_HOSTDEV static inline float rl_f32_of_half(rl_dtype dt, uint16_t h) {
  return dt == RL_BF16 ? rl_f32_of_bf16(h) : rl_f32_of_f16(h);
}
RL_HOSTDEV static inline uint16_t rl_half_of_f32(rl_dtype dt, float f) {
  return dt == RL_BF16 ? rl_bf16_of_f32(f) : rl_f16_of_f32(f);
}
/* The largest integer m such that every integer in [-m, m] ([0, m] for u8)
 * is a value of dt: what randint and randperm may produce in it; 0 for
 * i64 (any). */
RL_HOSTDEV static inline double rl_dtype_exact_int(rl_dtype dt) {
  switch (dt) {
  case RL_U8: return 255;
  case RL_BF16: return 256;
  case RL_F16: return 2048;
  case RL_F32: return 0x1p24;
  case RL_F64: return 0x1p53;
  default: return 0;
  }
}

/* The type both operands are computed in, as PyTorch promotes them. */
rl_dtype rl_dtype_promote(rl_dtype a, rl_dtype b);

/* ---- devices ----------------------------------------------------------- */

typedef enum { RL_CPU, RL_CUDA } rl_devtype;
typedef struct rl_backend rl_backend;

typedef struct rl_device {
  rl_devtype type;
  int index;
  const rl_backend *be;
  char name[16]; /* "cpu", "cuda:0" */
} rl_device;

const rl_device *rl_cpu(void);
/* The CUDA device `index`, or NULL with a message ("CUDA backend not built",
 * "no CUDA device", "cuda:3 out of range (2 devices)"). */
const rl_device *rl_cuda_device(int index);
int rl_cuda_device_count(void); /* 0 when unavailable */
/* Parses "cpu", "cuda", "cuda:1". */
const rl_device *rl_device_parse(const char *name);

/* ---- storage ----------------------------------------------------------- */

typedef struct rl_storage {
  void *data;
  size_t nbytes;
  const rl_device *dev;
  int refcount;
  /* Bumped by every in-place write; autograd compares it with the version a
   * saved tensor had when it was saved. */
  uint64_t version;
} rl_storage;

rl_storage *rl_storage_new(const rl_device *dev, size_t nbytes);
void rl_storage_retain(rl_storage *s);
void rl_storage_release(rl_storage *s);
/* Bytes held by all live storages (host and devices): the bindings pace
 * Lua's garbage collector with it. */
size_t rl_storage_live_bytes(void);

/* ---- tensors ----------------------------------------------------------- */

struct rl_node;

typedef struct rl_tensor {
  int ndim;
  int64_t size[RL_MAX_DIMS];
  int64_t stride[RL_MAX_DIMS]; /* in elements */
  int64_t offset;              /* in elements, into st->data */
  rl_dtype dtype;
  rl_storage *st;
  int refcount;
  /* autograd */
  bool requires_grad;
  struct rl_tensor *grad;  /* owned; accumulated by backward on leaves */
  struct rl_node *grad_fn; /* owned; NULL for leaves */
} rl_tensor;

static inline const rl_device *rl_dev(const rl_tensor *t) { return t->st->dev; }
static inline void *rl_data(const rl_tensor *t) {
  return (char *)t->st->data + t->offset * (int64_t)rl_dtype_size(t->dtype);
}
int64_t rl_numel(const rl_tensor *t);
bool rl_is_contiguous(const rl_tensor *t);
size_t rl_nbytes(const rl_tensor *t); /* numel * element size */
bool rl_same_shape(const rl_tensor *a, const rl_tensor *b);
/* "2x3x4" (or "scalar") into a static per-thread buffer; two slots rotate so
 * two shapes can appear in one message. */
const char *rl_shape_str(const rl_tensor *t);
const char *rl_sizes_str(int ndim, const int64_t *size);

void rl_retain(rl_tensor *t);
void rl_release(rl_tensor *t);

/* The largest size one dim may have (2^40): far beyond any real tensor,
 * and small enough that a product of dims checked one at a time against
 * RL_MAX_ELEMS never overflows int64. */
#define RL_MAX_DIM_SIZE ((int64_t)1 << 40)
/* The largest element count: its bytes in the widest dtype (8) still fit in
 * an int64 with room to spare. */
#define RL_MAX_ELEMS (INT64_MAX / 16)
/* An empty tensor's non-zero dims may hold fewer elements than this (2^32).
 * Nothing else bounds them, since nothing is allocated: an 80-byte file
 * could declare [2^32+1, 0], whose sum over dim 2 then allocates 17 GB. */
#define RL_MAX_EMPTY_LATENT ((int64_t)1 << 32)
/* 0 when ndim and size make a valid shape, else -1 with a message naming op
 * and the shape: a negative dim, a dim above RL_MAX_DIM_SIZE, non-zero dims
 * whose product is above RL_MAX_ELEMS, or an empty shape whose non-zero dims
 * reach RL_MAX_EMPTY_LATENT.  Every tensor header goes through it. */
int rl_check_sizes(const char *op, int ndim, const int64_t *size);

/* New uninitialised contiguous tensor. */
rl_tensor *rl_empty(int ndim, const int64_t *size, rl_dtype dt, const rl_device *dev);
rl_tensor *rl_empty_like(const rl_tensor *t);
/* A header over existing storage (retained). Checks bounds. */
rl_tensor *rl_view_of(rl_storage *st, rl_dtype dt, int ndim, const int64_t *size,
                      const int64_t *stride, int64_t offset);
/* A new header sharing t's storage, shape and strides, with no autograd
 * history (what detach returns and what autograd saves). */
rl_tensor *rl_alias(const rl_tensor *t);

/* Contiguous strides for a shape. */
void rl_contiguous_strides(int ndim, const int64_t *size, int64_t *stride);
/* Normalise a 0-based dim that may be negative; -1 with a message if out of
 * range.  `op` names the caller for the message. */
int rl_wrap_dim(const char *op, int dim, int ndim);

/* Bump the version counter after an in-place write. */
static inline void rl_bump_version(rl_tensor *t) { t->st->version++; }

/* Set the number of CPU threads used by OpenMP loops and OpenBLAS. */
void rl_set_num_threads(int n);
int rl_get_num_threads(void);

#endif
