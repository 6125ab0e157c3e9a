/* print.c - tensors as text (__tostring) and as Lua values (tolist, item).
 *
 * lrl_tostring renders a tensor the way PyTorch's repr renders its values,
 * followed by one line that names the dtype, the shape and the device:
 *
 *   tensor([[ 0.1235, -1.2000,  3.0000],
 *           [ 2.0000,  3.0000,  4.5000]])
 *   [f32 tensor of size 2x3 on cpu]
 *
 * The rules are those of torch/_tensor_str.py with its default print
 * options (precision 4, threshold 1000, edgeitems 3, linewidth 80):
 *
 *   - Floats print in one of three modes, chosen from the nonzero finite
 *     values that are printed: "int mode" (`1.`, `-2.`) when all of them
 *     are whole numbers, scientific (`%.4e`) when max/min > 1000 or
 *     max > 1e8 (or, outside int mode, min < 1e-4), fixed (`%.4f`)
 *     otherwise.  nan and inf print as nan, inf, -inf.
 *   - Integers (i64, u8) print as plain integers.
 *   - Every entry is right-aligned to the widest nonzero finite entry.
 *   - Above 1000 elements, every dim longer than 6 shows its first and last
 *     3 entries with "..." between them.  The summary is built on the
 *     tensor's device by narrow + cat, so a big tensor is never copied to
 *     the host whole.
 *   - The last dim wraps at 80 columns; the rows of a matrix go on separate
 *     lines aligned under the first '[', and each further dim adds one
 *     blank line between its blocks.
 *
 * The values are gathered into a Lua userdata rather than malloc'ed memory,
 * so no Lua error raised while the text is built (out of memory included)
 * can leak them; engine references are all released before anything in
 * Lua can raise. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lrl.h"

#define EDGE_ITEMS 3     /* entries kept at each end of a summarized dim */
#define THRESHOLD 1000   /* summarize tensors with more elements than this */
#define LINE_WIDTH 80    /* where the last dim wraps */
#define PRECISION 4      /* digits after the point */
#define PREFIX "tensor("

/* ---- the values to print ------------------------------------------------- */

/* The tensor's values on the host (all of them, or the summary), row-major
 * in the shape `size`.  Floats are held as double, integers as int64. */
typedef struct values {
  int ndim;
  int64_t size[RL_MAX_DIMS]; /* the shape of the host copy */
  bool cut[RL_MAX_DIMS];     /* summarized: "..." after EDGE_ITEMS entries */
  int64_t n;                 /* elements in the host copy */
  bool is_float;
  const double *f; /* is_float */
  const int64_t *i; /* otherwise */
} values;

/* Decide which dims get summarized and the shape of the host copy. */
static void values_plan(const rl_tensor *t, values *v) {
  bool summarize = rl_numel(t) > THRESHOLD;
  v->ndim = t->ndim;
  v->n = 1;
  v->is_float = rl_dtype_is_floating(t->dtype);
  v->f = NULL;
  v->i = NULL;
  for (int k = 0; k < t->ndim; k++) {
    v->cut[k] = summarize && t->size[k] > 2 * EDGE_ITEMS;
    v->size[k] = v->cut[k] ? 2 * EDGE_ITEMS : t->size[k];
    v->n *= v->size[k];
  }
}

/* The first and last EDGE_ITEMS entries of s along dim, joined. */
static rl_tensor *cut_dim(rl_tensor *s, int dim) {
  rl_tensor *part[2];
  part[0] = rl_narrow(s, dim, 0, EDGE_ITEMS);
  if (!part[0]) return NULL;
  part[1] = rl_narrow(s, dim, s->size[dim] - EDGE_ITEMS, EDGE_ITEMS);
  rl_tensor *out = part[1] ? rl_cat(2, part, dim) : NULL;
  rl_release(part[0]);
  rl_release(part[1]);
  return out;
}

/* t with every summarized dim cut down (a new reference), or NULL. */
static rl_tensor *summary_of(rl_tensor *t, const values *v) {
  rl_tensor *s = t;
  rl_retain(s);
  for (int k = 0; k < v->ndim && s; k++) {
    if (!v->cut[k]) continue;
    rl_tensor *c = cut_dim(s, k);
    rl_release(s);
    s = c;
  }
  return s;
}

/* Fill host (v->n 8-byte slots) with the values to print; 0 or -1. */
static int values_gather(rl_tensor *t, values *v, void *host) {
  bool prev = rl_set_grad_enabled(false);
  rl_tensor *s = summary_of(t, v);
  rl_tensor *c = s ? rl_to_dtype(s, v->is_float ? RL_F64 : RL_I64) : NULL;
  int rc = c ? rl_to_host(c, host) : -1;
  rl_release(c);
  rl_release(s);
  rl_set_grad_enabled(prev);
  if (v->is_float) v->f = host;
  else v->i = host;
  return rc;
}

/* ---- formatting one entry ------------------------------------------------ */

typedef struct format {
  bool is_float;
  bool int_mode; /* floats that are all whole: "1." */
  bool sci;      /* floats in %.4e */
  int width;     /* every entry is padded to this */
} format;

/* snprintf's length, clamped to what fits in cap. */
static int clamp_len(int len, size_t cap) {
  if (len < 0) return 0;
  return (size_t)len < cap ? len : (int)cap - 1;
}

static int float_text(const format *f, double x, char *out, size_t cap) {
  int len;
  if (isnan(x)) len = snprintf(out, cap, "nan");
  else if (isinf(x)) len = snprintf(out, cap, x < 0 ? "-inf" : "inf");
  else if (f->sci) len = snprintf(out, cap, "%.*e", PRECISION, x);
  else if (f->int_mode) len = snprintf(out, cap, "%.0f.", x);
  else len = snprintf(out, cap, "%.*f", PRECISION, x);
  return clamp_len(len, cap);
}

static int int_text(int64_t x, char *out, size_t cap) {
  return clamp_len(snprintf(out, cap, "%lld", (long long)x), cap);
}

/* The text of entry k of v (unpadded); returns its length. */
static int entry_text(const format *f, const values *v, int64_t k, char *out,
                      size_t cap) {
  if (v->is_float) return float_text(f, v->f[k], out, cap);
  return int_text(v->i[k], out, cap);
}

static bool nonzero_finite(double x) { return isfinite(x) && x != 0; }

/* Pick the float mode from the nonzero finite values, as PyTorch does. */
static void float_mode(format *f, const double *x, int64_t n, bool *any) {
  double lo = INFINITY, hi = 0;
  *any = false;
  f->int_mode = true;
  for (int64_t k = 0; k < n; k++) {
    if (!nonzero_finite(x[k])) continue;
    *any = true;
    lo = fmin(lo, fabs(x[k]));
    hi = fmax(hi, fabs(x[k]));
    if (x[k] != ceil(x[k])) f->int_mode = false;
  }
  if (*any)
    f->sci = hi / lo > 1000.0 || hi > 1.0e8 || (!f->int_mode && lo < 1.0e-4);
}

/* The common width: over the nonzero finite floats, or over all integers. */
static void format_scan(format *f, const values *v) {
  char s[64];
  bool any = true;
  f->is_float = v->is_float;
  f->int_mode = false;
  f->sci = false;
  f->width = 1;
  if (v->is_float) float_mode(f, v->f, v->n, &any);
  for (int64_t k = 0; any && k < v->n; k++) {
    if (v->is_float && !nonzero_finite(v->f[k])) continue;
    int len = entry_text(f, v, k, s, sizeof s);
    if (len > f->width) f->width = len;
  }
}

/* ---- the nested brackets ------------------------------------------------- */

typedef struct printer {
  luaL_Buffer *b;
  const values *v;
  format f;
  int64_t pos; /* the next entry to print */
} printer;

static void put_spaces(luaL_Buffer *b, int n) {
  for (int k = 0; k < n; k++) luaL_addchar(b, ' ');
}

/* The next entry, right-aligned to the common width. */
static void put_entry(printer *p) {
  char s[64];
  int len = entry_text(&p->f, p->v, p->pos++, s, sizeof s);
  put_spaces(p->b, p->f.width - len);
  luaL_addlstring(p->b, s, (size_t)len);
}

/* The last dim: entries joined by ", ", wrapped at LINE_WIDTH. */
static void put_vector(printer *p, int dim, int indent) {
  bool cut = p->v->cut[dim];
  int64_t items = p->v->size[dim] + (cut ? 1 : 0);
  int per_line = (LINE_WIDTH - indent) / (p->f.width + 2);
  if (per_line < 1) per_line = 1;
  luaL_addchar(p->b, '[');
  for (int64_t k = 0; k < items; k++) {
    if (k > 0 && k % per_line == 0) {
      luaL_addstring(p->b, ",\n");
      put_spaces(p->b, indent + 1);
    } else if (k > 0) {
      luaL_addstring(p->b, ", ");
    }
    if (cut && k == EDGE_ITEMS) luaL_addstring(p->b, " ...");
    else put_entry(p);
  }
  luaL_addchar(p->b, ']');
}

/* Between two blocks of dim: a comma, one newline per dim below it
 * (a blank line between matrices), then the indentation. */
static void put_separator(printer *p, int dim, int indent) {
  luaL_addchar(p->b, ',');
  for (int k = dim + 1; k < p->v->ndim; k++) luaL_addchar(p->b, '\n');
  put_spaces(p->b, indent + 1);
}

static void put_block(printer *p, int dim, int indent) {
  if (dim == p->v->ndim - 1) {
    put_vector(p, dim, indent);
    return;
  }
  luaL_addchar(p->b, '[');
  for (int64_t k = 0; k < p->v->size[dim]; k++) {
    if (k > 0) put_separator(p, dim, indent);
    if (p->v->cut[dim] && k == EDGE_ITEMS) {
      luaL_addstring(p->b, "...");
      put_separator(p, dim, indent);
    }
    put_block(p, dim + 1, indent + 1);
  }
  luaL_addchar(p->b, ']');
}

/* "tensor(...)" */
static void put_values(luaL_Buffer *b, const values *v) {
  printer p = {b, v, {false, false, false, 1}, 0};
  luaL_addstring(b, PREFIX);
  if (v->n == 0) {
    luaL_addstring(b, "[]");
  } else {
    format_scan(&p.f, v);
    if (v->ndim == 0) put_entry(&p);
    else put_block(&p, 0, (int)strlen(PREFIX));
  }
  luaL_addchar(b, ')');
}

/* "\n[f32 tensor of size 2x3 on cpu, requires_grad]"; "[f32 scalar on cpu]" */
static void put_trailer(luaL_Buffer *b, const rl_tensor *t) {
  luaL_addstring(b, "\n[");
  luaL_addstring(b, rl_dtype_name(t->dtype));
  if (t->ndim == 0) {
    luaL_addstring(b, " scalar");
  } else {
    luaL_addstring(b, " tensor of size ");
    luaL_addstring(b, rl_shape_str(t));
  }
  luaL_addstring(b, " on ");
  luaL_addstring(b, rl_dev(t)->name);
  if (t->requires_grad) luaL_addstring(b, ", requires_grad");
  luaL_addchar(b, ']');
}

int lrl_tostring(lua_State *L, rl_tensor *t) {
  values v;
  luaL_Buffer b;
  luaL_checkstack(L, 4, "tostring: stack overflow");
  values_plan(t, &v);
  /* The host copy lives in a userdata (slot of 8 bytes per entry), so the
   * collector frees it whatever happens below. */
  void *host = lua_newuserdatauv(L, (size_t)v.n * sizeof(double), 0);
  if (v.n > 0 && values_gather(t, &v, host)) return lrl_error(L);
  luaL_buffinit(L, &b);
  put_values(&b, &v);
  put_trailer(&b, t);
  luaL_pushresult(&b);
  lua_remove(L, -2); /* the host copy */
  return 1;
}

/* ---- tolist and item ----------------------------------------------------- */

/* Entry k of a host copy in the tensor's own dtype, as a Lua number. */
static void push_entry(lua_State *L, rl_dtype dt, const void *host, int64_t k) {
  switch (dt) {
  case RL_F32: lua_pushnumber(L, ((const float *)host)[k]); break;
  case RL_F64: lua_pushnumber(L, ((const double *)host)[k]); break;
  case RL_I64: lua_pushinteger(L, ((const int64_t *)host)[k]); break;
  case RL_BF16: lua_pushnumber(L, rl_f32_of_bf16(((const uint16_t *)host)[k])); break;
  case RL_F16: lua_pushnumber(L, rl_f32_of_f16(((const uint16_t *)host)[k])); break;
  default: lua_pushinteger(L, ((const uint8_t *)host)[k]); break;
  }
}

/* The sub-tensor at *pos of dims dim.. as nested Lua arrays. */
static void push_list(lua_State *L, const rl_tensor *t, const void *host, int dim,
                      int64_t *pos) {
  int64_t n = t->size[dim];
  luaL_checkstack(L, 2, "tolist: stack overflow");
  lua_createtable(L, n < INT_MAX ? (int)n : 0, 0);
  for (int64_t k = 0; k < n; k++) {
    if (dim == t->ndim - 1) push_entry(L, t->dtype, host, (*pos)++);
    else push_list(L, t, host, dim + 1, pos);
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
}

/* x:tolist() -> nested tables (a number for a 0-dim tensor). */
static int m_tolist(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int64_t pos = 0;
  void *host = lua_newuserdatauv(L, rl_nbytes(t), 0);
  if (rl_to_host(t, host)) return lrl_error(L);
  if (t->ndim == 0) push_entry(L, t->dtype, host, 0);
  else push_list(L, t, host, 0, &pos);
  return 1;
}

/* The one value of an i64 or u8 tensor, exactly. */
static int int_item(const rl_tensor *t, lua_Integer *out) {
  union {
    int64_t i;
    uint8_t u;
  } x;
  if (rl_to_host(t, &x)) return -1;
  *out = t->dtype == RL_I64 ? (lua_Integer)x.i : (lua_Integer)x.u;
  return 0;
}

/* x:item() -> the number held by a one-element tensor. */
static int m_item(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int64_t n = rl_numel(t);
  if (n != 1)
    return luaL_error(L, "item: the tensor has %I elements, expected 1 (size %s)",
                      (lua_Integer)n, rl_shape_str(t));
  if (rl_dtype_is_floating(t->dtype)) {
    double d;
    if (rl_item(t, &d)) return lrl_error(L);
    lua_pushnumber(L, d);
  } else {
    lua_Integer i;
    if (int_item(t, &i)) return lrl_error(L);
    lua_pushinteger(L, i);
  }
  return 1;
}

void lrl_open_print(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"tolist", m_tolist},
      {"item", m_item},
      {NULL, NULL},
  };
  luaL_setfuncs(L, methods, 0);
}
