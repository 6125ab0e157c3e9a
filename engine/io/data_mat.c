/* data_mat.c - SVHN cropped digits from MATLAB v5 .mat files.
 *
 * Layout (little-endian files only; SVHN's are): a 128-byte header whose
 * last four bytes are the version 0x0100 and the endian mark "IM", then
 * data elements.  An element is an 8-byte tag (u32 type, u32 byte count;
 * or the "small" form: byte count in the high half of the first word and
 * up to 4 bytes of data in the second) and its data padded to 8 bytes.
 * miCOMPRESSED holds one zlib-compressed element; miMATRIX holds the array
 * flags (class), dimensions, name and real part of one variable, whose
 * storage type may be narrower than its class (MATLAB stores a double
 * array of small integers as miUINT8).  We keep X (uint8, H x W x C x N,
 * column-major) and y (N labels) and ignore other variables. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data.h"

enum { MI_INT8 = 1, MI_UINT8, MI_INT16, MI_UINT16, MI_INT32, MI_UINT32, MI_SINGLE,
       MI_DOUBLE = 9, MI_INT64 = 12, MI_UINT64, MI_MATRIX, MI_COMPRESSED };
enum { MX_UINT8_CLASS = 9 };
#define MAT_HEADER 128

/* A byte range being parsed: the file, or one decompressed element. */
typedef struct {
  const char *path;
  const uint8_t *b;
  size_t len;
  bool inflated;
  size_t origin; /* for an inflated buffer: the file offset of its element */
} mat_buf;

typedef struct {
  uint32_t type, nbytes;
  size_t data, next; /* offsets of the data and of the following element */
} mat_tag;

/* What the variables found so far gave. */
typedef struct {
  rl_tensor *x;
  int64_t *y, ny;
} mat_out;

static uint32_t le32(const uint8_t *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* An error at offset `at` of m, saying where that is in the file. */
__attribute__((format(printf, 3, 4))) static int mat_fail(const mat_buf *m, size_t at,
                                                          const char *fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (m->inflated)
    return rl_err("svhn: '%s': %s at byte %zu of the element decompressed from byte %zu",
                  m->path, what, at, m->origin);
  return rl_err("svhn: '%s': %s at byte %zu", m->path, what, at);
}

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* The tag at `at`, bounded by `end`. */
static int mat_tag_at(const mat_buf *m, size_t at, size_t end, mat_tag *t) {
  if (at + 8 > end) return mat_fail(m, at, "truncated data element tag");
  uint32_t w0 = le32(m->b + at);
  if (w0 >> 16) { /* small data element */
    t->type = w0 & 0xffff;
    t->nbytes = w0 >> 16;
    if (t->nbytes > 4) return mat_fail(m, at, "small data element of %" PRIu32 " bytes", t->nbytes);
    t->data = at + 4;
    t->next = at + 8;
    return 0;
  }
  t->type = w0;
  t->nbytes = le32(m->b + at + 4);
  t->data = at + 8;
  if (t->nbytes > end - t->data)
    return mat_fail(m, at, "truncated: element of type %" PRIu32 " needs %" PRIu32
                    " bytes, %zu are left", t->type, t->nbytes, end - t->data);
  size_t padded = t->type == MI_COMPRESSED ? t->nbytes : pad8(t->nbytes);
  t->next = t->data + padded < end ? t->data + padded : end;
  return 0;
}

/* Bytes per value of a numeric storage type, 0 for others. */
static int mi_size(uint32_t type) {
  switch (type) {
  case MI_INT8: case MI_UINT8: return 1;
  case MI_INT16: case MI_UINT16: return 2;
  case MI_INT32: case MI_UINT32: case MI_SINGLE: return 4;
  case MI_DOUBLE: case MI_INT64: case MI_UINT64: return 8;
  default: return 0;
  }
}

/* Value i of numeric storage type `type` at p, as a double. */
static double mi_value(uint32_t type, const uint8_t *p, size_t i) {
  union { int8_t i8; uint8_t u8; int16_t i16; uint16_t u16; int32_t i32; uint32_t u32;
          float f; double d; int64_t i64; uint64_t u64; } v;
  memcpy(&v, p + i * (size_t)mi_size(type), (size_t)mi_size(type));
  switch (type) {
  case MI_INT8: return v.i8;
  case MI_UINT8: return v.u8;
  case MI_INT16: return v.i16;
  case MI_UINT16: return v.u16;
  case MI_INT32: return v.i32;
  case MI_UINT32: return v.u32;
  case MI_SINGLE: return v.f;
  case MI_DOUBLE: return v.d;
  case MI_INT64: return (double)v.i64;
  default: return (double)v.u64;
  }
}

/* ---- variables --------------------------------------------------------- */

/* The parts of one miMATRIX. */
typedef struct {
  uint32_t cls;
  bool complex;
  int ndims;
  int64_t dims[RL_MAX_DIMS];
  char name[64];
  mat_tag real;
} mat_var;

static int read_flags(const mat_buf *m, const mat_tag *t, mat_var *v) {
  if (t->type != MI_UINT32 || t->nbytes != 8)
    return mat_fail(m, t->data - 8, "array flags must be 8 bytes of miUINT32");
  uint32_t w = le32(m->b + t->data);
  v->cls = w & 0xff;
  v->complex = (w >> 8) & 0x08;
  return 0;
}

static int read_dims(const mat_buf *m, const mat_tag *t, mat_var *v) {
  if (t->type != MI_INT32 || t->nbytes % 4 || t->nbytes < 8 || t->nbytes > 4 * RL_MAX_DIMS)
    return mat_fail(m, t->data - 8, "dimensions must be 2 to %d miINT32 values", RL_MAX_DIMS);
  v->ndims = (int)(t->nbytes / 4);
  for (int i = 0; i < v->ndims; i++) {
    int32_t d = (int32_t)le32(m->b + t->data + 4 * (size_t)i);
    if (d < 0) return mat_fail(m, t->data + 4 * (size_t)i, "negative dimension %d", (int)d);
    v->dims[i] = d;
  }
  return 0;
}

static int read_name(const mat_buf *m, const mat_tag *t, mat_var *v) {
  if (t->type != MI_INT8)
    return mat_fail(m, t->data - 8, "array name must be miINT8");
  size_t n = t->nbytes < sizeof v->name - 1 ? t->nbytes : sizeof v->name - 1;
  memcpy(v->name, m->b + t->data, n);
  v->name[n] = 0;
  return 0;
}

/* The parts of the miMATRIX described by t; v->real.type stays 0 for
 * classes without numeric data (cells, structs, chars, ...). */
static int parse_matrix(const mat_buf *m, const mat_tag *t, mat_var *v) {
  memset(v, 0, sizeof *v);
  size_t at = t->data, end = t->data + t->nbytes;
  if (t->nbytes == 0) return 0; /* an empty variable */
  mat_tag s;
  if (mat_tag_at(m, at, end, &s) || read_flags(m, &s, v)) return -1;
  if (mat_tag_at(m, s.next, end, &s) || read_dims(m, &s, v)) return -1;
  if (mat_tag_at(m, s.next, end, &s) || read_name(m, &s, v)) return -1;
  bool numeric = v->cls >= 6 && v->cls <= 15;
  if (!numeric) return 0;
  if (mat_tag_at(m, s.next, end, &v->real)) return -1;
  if (!mi_size(v->real.type))
    return mat_fail(m, v->real.data - 8, "variable '%s': real part has non-numeric type %" PRIu32,
                    v->name, v->real.type);
  if (v->complex) return mat_fail(m, t->data - 8, "variable '%s' is complex", v->name);
  return 0;
}

/* The number of values of v, or -1 when it exceeds what its data holds
 * (tested by division, so huge dims cannot overflow the product). */
static int64_t var_numel(const mat_var *v) {
  int64_t n = 1, limit = (int64_t)v->real.nbytes;
  for (int i = 0; i < v->ndims; i++)
    if (v->dims[i] == 0) return 0;
  for (int i = 0; i < v->ndims; i++) {
    if (n > limit / v->dims[i]) return -1;
    n *= v->dims[i];
  }
  return n;
}

/* X (uint8, H x W x C x N column-major) into x [N, C, H, W]. */
static int take_x(const mat_buf *m, const mat_var *v, mat_out *out) {
  size_t at = v->real.data - 8;
  if (out->x) return mat_fail(m, at, "a second variable 'X'");
  if (v->cls != MX_UINT8_CLASS || v->real.type != MI_UINT8)
    return mat_fail(m, at, "variable 'X' must be uint8 (class %" PRIu32 ", type %" PRIu32 ")",
                    v->cls, v->real.type);
  if (v->ndims < 3 || v->ndims > 4)
    return mat_fail(m, at, "variable 'X' has %d dims, expected H x W x C x N", v->ndims);
  int64_t h = v->dims[0], w = v->dims[1], c = v->dims[2], n = v->ndims == 4 ? v->dims[3] : 1;
  /* A zero side makes X hold 0 bytes whatever the other dims say, so the
   * size check below would pass and the copy would spin through n * c
   * empty planes (~1e15 for a 256-byte file).  With every side >= 1, the
   * size check bounds n * c * h * w by the bytes in the file. */
  if (h < 1 || w < 1 || c < 1)
    return mat_fail(m, at, "variable 'X' is %lldx%lldx%lldx%lld: height, width and channels "
                    "must be at least 1", (long long)h, (long long)w, (long long)c, (long long)n);
  int64_t numel = var_numel(v);
  if (numel != (int64_t)v->real.nbytes)
    return mat_fail(m, at, "variable 'X' is %lldx%lldx%lldx%lld but holds %" PRIu32 " bytes",
                    (long long)h, (long long)w, (long long)c, (long long)n, v->real.nbytes);
  int64_t size[4] = {n, c, h, w};
  if (!(out->x = rl_empty(4, size, RL_U8, rl_cpu()))) return -1;
  const uint8_t *src = m->b + v->real.data;
  uint8_t *dst = rl_data(out->x);
  int64_t plane = h * w;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < n * c; k++) /* one plane: column-major to row-major */
    for (int64_t j = 0; j < w; j++)
      for (int64_t i = 0; i < h; i++) dst[k * plane + i * w + j] = src[k * plane + j * h + i];
  return 0;
}

/* y (any numeric type, values 1..10; 0 accepted too) into 0-based labels. */
static int take_y(const mat_buf *m, const mat_var *v, mat_out *out) {
  size_t at = v->real.data - 8;
  if (out->y) return mat_fail(m, at, "a second variable 'y'");
  int64_t n = var_numel(v);
  int es = mi_size(v->real.type);
  if (n < 0 || (uint64_t)n * (uint64_t)es != v->real.nbytes)
    return mat_fail(m, at, "variable 'y' has %lld values but %" PRIu32 " bytes of data",
                    (long long)n, v->real.nbytes);
  out->y = malloc(sizeof *out->y * (size_t)(n ? n : 1));
  if (!out->y) return mat_fail(m, at, "out of memory for %lld labels", (long long)n);
  out->ny = n;
  for (int64_t i = 0; i < n; i++) {
    double d = mi_value(v->real.type, m->b + v->real.data, (size_t)i);
    if (!(d >= 0 && d <= 10) || d != (double)(int)d)
      return mat_fail(m, v->real.data + (size_t)i * (size_t)es,
                      "label %g (y[%lld]) is not an integer in 1..10", d, (long long)i + 1);
    out->y[i] = (int64_t)d % 10;
  }
  return 0;
}

static int parse_elements(const mat_buf *m, size_t at, size_t end, mat_out *out);

/* Inflate the miCOMPRESSED element t into a buffer holding one element and
 * parse that. */
static int inflate_element(const mat_buf *m, const mat_tag *t, mat_out *out) {
  if (m->inflated) return mat_fail(m, t->data - 8, "nested miCOMPRESSED element");
  mat_buf in = {m->path, NULL, 0, true, t->data - 8};
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit(&z) != Z_OK) return mat_fail(m, t->data, "zlib cannot start");
  uint8_t head[8];
  z.next_in = (uint8_t *)(m->b + t->data);
  z.avail_in = t->nbytes;
  z.next_out = head;
  z.avail_out = 8;
  int r = inflate(&z, Z_SYNC_FLUSH);
  int rc = 0;
  if (z.avail_out) {
    rc = r == Z_DATA_ERROR ? mat_fail(m, t->data, "corrupt compressed element (%s)", z.msg)
                           : mat_fail(m, t->data, "compressed element ends after %lu bytes",
                                      (unsigned long)z.total_out);
  } else {
    uint32_t w0 = le32(head);
    in.len = w0 >> 16 ? 8 : 8 + (size_t)le32(head + 4);
    /* zlib cannot expand data more than about 1032 times */
    if (in.len > 1100 * (size_t)t->nbytes + 64)
      rc = mat_fail(m, t->data, "compressed element claims %zu bytes", in.len);
  }
  uint8_t *buf = rc ? NULL : malloc(in.len);
  if (!rc && !buf) rc = mat_fail(m, t->data, "out of memory for %zu bytes", in.len);
  if (!rc) {
    memcpy(buf, head, 8);
    z.next_out = buf + 8;
    z.avail_out = (uInt)(in.len - 8);
    r = z.avail_out ? inflate(&z, Z_FINISH) : Z_STREAM_END;
    if (r == Z_DATA_ERROR)
      rc = mat_fail(m, t->data, "corrupt compressed element (%s)", z.msg);
    else if (z.avail_out)
      rc = mat_fail(m, t->data, "truncated compressed element: it ends after %lu of %zu bytes",
                    (unsigned long)z.total_out, in.len);
  }
  inflateEnd(&z);
  in.b = buf;
  if (!rc) rc = parse_elements(&in, 0, in.len, out);
  free(buf);
  return rc;
}

static int parse_elements(const mat_buf *m, size_t at, size_t end, mat_out *out) {
  while (at < end) {
    mat_tag t;
    if (mat_tag_at(m, at, end, &t)) return -1;
    if (t.type == MI_COMPRESSED) {
      if (inflate_element(m, &t, out)) return -1;
    } else if (t.type == MI_MATRIX) {
      mat_var v;
      if (parse_matrix(m, &t, &v)) return -1;
      if (v.real.type && !strcmp(v.name, "X") && take_x(m, &v, out)) return -1;
      if (v.real.type && !strcmp(v.name, "y") && take_y(m, &v, out)) return -1;
    }
    at = t.next;
  }
  return 0;
}

static int check_header(const mat_buf *m) {
  if (m->len < MAT_HEADER)
    return mat_fail(m, m->len, "truncated: a MAT-file header is %d bytes", MAT_HEADER);
  const uint8_t *h = m->b + 124;
  if (h[2] == 'M' && h[3] == 'I')
    return mat_fail(m, 126, "big-endian MAT-files are not supported");
  if (h[2] != 'I' || h[3] != 'M')
    return mat_fail(m, 126, "not a MAT-file (no endian mark 'IM')");
  if (h[0] != 0x00 || h[1] != 0x01)
    return mat_fail(m, 124, "MAT-file version 0x%02x%02x is not 5 (v7.3 HDF5 files are not "
                    "supported; save with -v7)", h[1], h[0]);
  return 0;
}

int rl_read_svhn_mat(const char *path, rl_tensor **x, rl_tensor **y) {
  *x = *y = NULL;
  mat_buf m = {path, NULL, 0, false, 0};
  uint8_t *buf;
  if (rl_data_slurp("svhn", path, &buf, &m.len)) return -1;
  m.b = buf;
  mat_out out = {NULL, NULL, 0};
  int rc = check_header(&m) || parse_elements(&m, MAT_HEADER, m.len, &out) ? -1 : 0;
  free(buf);
  if (!rc && (!out.x || !out.y))
    rc = rl_err("svhn: '%s': no variable '%s' in the file", path, out.x ? "y" : "X");
  if (!rc && out.ny != out.x->size[0])
    rc = rl_err("svhn: '%s': X holds %lld images but y %lld labels", path,
                (long long)out.x->size[0], (long long)out.ny);
  if (!rc && !(*y = rl_from_host(1, &out.ny, RL_I64, out.y, rl_cpu()))) rc = -1;
  if (!rc) {
    *x = out.x;
    out.x = NULL;
  }
  if (out.x) rl_release(out.x);
  free(out.y);
  return rc;
}
