/* tensor.c - errors, dtypes, devices, storages and tensor headers. */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "backend.h"

/* ---- errors ------------------------------------------------------------ */

static _Thread_local char errbuf[1024];

int rl_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return -1;
}

int rl_err_prefix(const char *op) {
  size_t n = strlen(op);
  if (strncmp(errbuf, op, n) == 0 && errbuf[n] == ':') return -1;
  char tmp[sizeof errbuf];
  size_t have = strlen(errbuf);
  if (n + 2 + have >= sizeof tmp) have = sizeof tmp - n - 3; /* keep the op's name */
  memcpy(tmp, op, n);
  memcpy(tmp + n, ": ", 2);
  memcpy(tmp + n + 2, errbuf, have);
  tmp[n + 2 + have] = 0;
  memcpy(errbuf, tmp, sizeof errbuf);
  return -1;
}

const char *rl_errmsg(void) { return errbuf[0] ? errbuf : "unknown error"; }

/* ---- dtypes ------------------------------------------------------------ */

static const size_t dtype_size[RL_NDTYPES] = {4, 8, 8, 1, 2, 2};
static const char *const dtype_name[RL_NDTYPES] = {"f32", "f64", "i64", "u8", "bf16", "f16"};

size_t rl_dtype_size(rl_dtype dt) { return dtype_size[dt]; }
const char *rl_dtype_name(rl_dtype dt) { return dtype_name[dt]; }

int rl_dtype_parse(const char *s, rl_dtype *out) {
  static const struct { const char *name; rl_dtype dt; } names[] = {
      {"f32", RL_F32},     {"float32", RL_F32}, {"float", RL_F32},
      {"f64", RL_F64},     {"float64", RL_F64}, {"double", RL_F64},
      {"i64", RL_I64},     {"int64", RL_I64},   {"long", RL_I64},
      {"u8", RL_U8},       {"uint8", RL_U8},    {"byte", RL_U8},
      {"bool", RL_U8},     {"bf16", RL_BF16},   {"bfloat16", RL_BF16},
      {"f16", RL_F16},     {"float16", RL_F16}, {"half", RL_F16},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(s, names[i].name) == 0) {
      *out = names[i].dt;
      return 0;
    }
  return rl_err("unknown dtype '%s' (expected f32, f64, i64, u8, bf16 or f16)", s);
}

rl_dtype rl_dtype_promote(rl_dtype a, rl_dtype b) {
  if (a == b) return a;
  if (a == RL_F64 || b == RL_F64) return RL_F64;
  if (a == RL_F32 || b == RL_F32) return RL_F32;
  if (rl_dtype_is_half(a) && rl_dtype_is_half(b)) return RL_F32; /* bf16 with f16 */
  if (rl_dtype_is_half(a)) return a; /* a half type with an integer */
  if (rl_dtype_is_half(b)) return b;
  return RL_I64; /* i64 with u8 */
}

/* ---- devices ----------------------------------------------------------- */

static rl_device cpu_device = {RL_CPU, 0, &rl_cpu_backend, "cpu"};
#define MAX_CUDA 16
static rl_device cuda_devices[MAX_CUDA];
static int cuda_count = -1; /* -1: not probed */
static char cuda_why[256];

const rl_device *rl_cpu(void) { return &cpu_device; }

static void probe_cuda(void) {
  if (cuda_count >= 0) return;
  int n = 0;
  if (rl_cuda_probe(&n) != 0) {
    snprintf(cuda_why, sizeof cuda_why, "%s", rl_errmsg());
    n = 0;
  } else if (n == 0) {
    snprintf(cuda_why, sizeof cuda_why, "no CUDA device");
  }
  if (n > MAX_CUDA) n = MAX_CUDA;
  for (int i = 0; i < n; i++) {
    cuda_devices[i].type = RL_CUDA;
    cuda_devices[i].index = i;
    cuda_devices[i].be = rl_cuda_backend();
    snprintf(cuda_devices[i].name, sizeof cuda_devices[i].name, "cuda:%d", i);
  }
  cuda_count = n;
}

int rl_cuda_device_count(void) {
  probe_cuda();
  return cuda_count;
}

const rl_device *rl_cuda_device(int index) {
  probe_cuda();
  if (cuda_count == 0) {
    rl_err("CUDA is not available: %s", cuda_why);
    return NULL;
  }
  if (index < 0 || index >= cuda_count) {
    rl_err("cuda:%d out of range (%d device%s)", index, cuda_count,
           cuda_count == 1 ? "" : "s");
    return NULL;
  }
  return &cuda_devices[index];
}

const rl_device *rl_device_parse(const char *s) {
  if (strcmp(s, "cpu") == 0) return rl_cpu();
  if (strncmp(s, "cuda", 4) == 0) {
    if (s[4] == 0) return rl_cuda_device(0);
    if (s[4] == ':') {
      char *end;
      long i = strtol(s + 5, &end, 10);
      if (end != s + 5 && *end == 0) return rl_cuda_device((int)i);
    }
  }
  rl_err("unknown device '%s' (expected 'cpu', 'cuda' or 'cuda:N')", s);
  return NULL;
}

/* ---- storage ----------------------------------------------------------- */

/* Bytes held by live storages, on every device together. */
static size_t live_bytes;

size_t rl_storage_live_bytes(void) { return live_bytes; }

rl_storage *rl_storage_new(const rl_device *dev, size_t nbytes) {
  rl_storage *s = malloc(sizeof *s);
  if (!s) {
    rl_err("out of memory allocating a storage header");
    return NULL;
  }
  s->data = dev->be->alloc(dev, nbytes);
  if (!s->data) {
    free(s);
    return NULL;
  }
  s->nbytes = nbytes;
  live_bytes += nbytes;
  s->dev = dev;
  s->refcount = 1;
  s->version = 0;
  return s;
}

void rl_storage_retain(rl_storage *s) { s->refcount++; }

void rl_storage_release(rl_storage *s) {
  if (!s || --s->refcount > 0) return;
  live_bytes -= s->nbytes;
  s->dev->be->free(s->dev, s->data, s->nbytes);
  free(s);
}

/* ---- tensor headers ---------------------------------------------------- */

int64_t rl_numel(const rl_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->size[i];
  return n;
}

size_t rl_nbytes(const rl_tensor *t) { return (size_t)rl_numel(t) * rl_dtype_size(t->dtype); }

bool rl_is_contiguous(const rl_tensor *t) {
  int64_t expect = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->size[i] == 1) continue;
    if (t->stride[i] != expect) return false;
    expect *= t->size[i];
  }
  return true;
}

bool rl_same_shape(const rl_tensor *a, const rl_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->size[i] != b->size[i]) return false;
  return true;
}

const char *rl_sizes_str(int ndim, const int64_t *size) {
  static _Thread_local char buf[4][160];
  static _Thread_local int slot;
  char *b = buf[slot];
  slot = (slot + 1) % 4;
  if (ndim == 0) return strcpy(b, "scalar");
  size_t n = 0;
  b[0] = 0;
  for (int i = 0; i < ndim && n < 140; i++)
    n += (size_t)snprintf(b + n, 160 - n, i ? "x%lld" : "%lld", (long long)size[i]);
  return b;
}

const char *rl_shape_str(const rl_tensor *t) { return rl_sizes_str(t->ndim, t->size); }

void rl_contiguous_strides(int ndim, const int64_t *size, int64_t *stride) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    stride[i] = s;
    s *= size[i] > 0 ? size[i] : 1;
  }
}

int rl_wrap_dim(const char *op, int dim, int ndim) {
  int n = ndim > 0 ? ndim : 1;
  if (dim < -n || dim >= n)
    return rl_err("%s: dim %d out of range for a tensor of %d dim%s (valid: 1..%d or "
                  "-%d..-1)",
                  op, dim < 0 ? dim : dim + 1, ndim, ndim == 1 ? "" : "s", n, n);
  return dim < 0 ? dim + n : dim;
}

static rl_tensor *header_new(void) {
  rl_tensor *t = calloc(1, sizeof *t);
  if (!t) rl_err("out of memory allocating a tensor header");
  else t->refcount = 1;
  return t;
}

void rl_retain(rl_tensor *t) { t->refcount++; }

void rl_release(rl_tensor *t) {
  if (!t || --t->refcount > 0) return;
  rl_storage_release(t->st);
  if (t->grad) rl_release(t->grad);
  if (t->grad_fn) rl_node_release(t->grad_fn);
  free(t);
}

int rl_check_sizes(const char *op, int ndim, const int64_t *size) {
  if (ndim < 0 || ndim > RL_MAX_DIMS)
    return rl_err("%s: a tensor has at most %d dims, got %d", op, RL_MAX_DIMS, ndim);
  int64_t nonzero = 1; /* product of the non-zero dims */
  for (int i = 0; i < ndim; i++) {
    if (size[i] < 0)
      return rl_err("%s: negative size %lld in dim %d (size %s)", op, (long long)size[i],
                    i + 1, rl_sizes_str(ndim, size));
    if (size[i] > RL_MAX_DIM_SIZE)
      return rl_err("%s: size %s is too large: dim %d is %lld, above 2^40", op,
                    rl_sizes_str(ndim, size), i + 1, (long long)size[i]);
    if (size[i] > 0 && nonzero > RL_MAX_ELEMS / size[i])
      return rl_err("%s: size %s is too large: its non-zero dims make more than 2^59 "
                    "elements",
                    op, rl_sizes_str(ndim, size));
    if (size[i] > 0) nonzero *= size[i];
  }
  bool empty = false;
  for (int i = 0; i < ndim; i++) empty = empty || size[i] == 0;
  if (empty && nonzero >= RL_MAX_EMPTY_LATENT)
    return rl_err("%s: size %s is refused: an empty tensor's other dims may hold at most "
                  "2^32 - 1 elements (%lld here), which a reduction over its zero dim would "
                  "allocate",
                  op, rl_sizes_str(ndim, size), (long long)nonzero);
  return 0;
}

rl_tensor *rl_empty(int ndim, const int64_t *size, rl_dtype dt, const rl_device *dev) {
  if (rl_check_sizes("tensor", ndim, size)) return NULL;
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= size[i];
  rl_tensor *t = header_new();
  if (!t) return NULL;
  t->st = rl_storage_new(dev, (size_t)n * rl_dtype_size(dt));
  if (!t->st) {
    free(t);
    return NULL;
  }
  t->ndim = ndim;
  t->dtype = dt;
  if (ndim) memcpy(t->size, size, sizeof(int64_t) * (size_t)ndim);
  rl_contiguous_strides(ndim, size, t->stride);
  return t;
}

rl_tensor *rl_empty_like(const rl_tensor *t) {
  return rl_empty(t->ndim, t->size, t->dtype, rl_dev(t));
}

rl_tensor *rl_view_of(rl_storage *st, rl_dtype dt, int ndim, const int64_t *size,
                      const int64_t *stride, int64_t offset) {
  if (rl_check_sizes("view", ndim, size)) return NULL;
  int64_t last = offset, numel = 1;
  for (int i = 0; i < ndim; i++) {
    numel *= size[i];
    if (size[i] > 0) last += (size[i] - 1) * stride[i];
  }
  if (numel > 0 && (offset < 0 || (size_t)(last + 1) * rl_dtype_size(dt) > st->nbytes)) {
    rl_err("view of size %s at offset %lld is out of bounds for a storage of %zu bytes",
           rl_sizes_str(ndim, size), (long long)offset, st->nbytes);
    return NULL;
  }
  rl_tensor *t = header_new();
  if (!t) return NULL;
  t->ndim = ndim;
  t->dtype = dt;
  if (ndim) memcpy(t->size, size, sizeof(int64_t) * (size_t)ndim);
  memcpy(t->stride, stride, sizeof(int64_t) * (size_t)ndim);
  t->offset = offset;
  t->st = st;
  rl_storage_retain(st);
  return t;
}

rl_tensor *rl_alias(const rl_tensor *t) {
  return rl_view_of(t->st, t->dtype, t->ndim, t->size, t->stride, t->offset);
}
