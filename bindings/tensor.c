/* tensor.c - the rl.Tensor type: its metatable (indexing, properties,
 * __gc/__close), its methods table, and the functions that make tensors
 * (rl.zeros, rl.tensor, ...).  The methods themselves are in ops.c and
 * print.c; the helpers every binding uses are in lrl.c.
 *
 * A userdata box holds one reference.  __gc drops it; __close (a Lua 5.4
 * `local x <close> = ...`) drops it early and leaves the box empty, so a
 * later use is an error ("tensor was closed"), never a dangling pointer. */
#include <string.h>

#include "lrl.h"

/* ---- creation ------------------------------------------------------------ */

/* Put a fresh tensor in box b (lrl_fill), then apply requires_grad from the
 * options; the box owns the tensor before anything can raise. */
static int fill_new(lua_State *L, int b, rl_tensor *t, const lrl_opts *o) {
  lrl_fill(L, b, t);
  if (o->requires_grad) {
    if (!rl_dtype_is_floating(t->dtype))
      return luaL_error(L, "requires_grad: only float tensors can require gradients");
    t->requires_grad = true;
  }
  return 1;
}

typedef enum { MK_ZEROS, MK_ONES, MK_EMPTY, MK_RAND, MK_RANDN } make_kind;

static rl_tensor *make(make_kind k, int nd, const int64_t *size, const lrl_opts *o) {
  switch (k) {
  case MK_ZEROS: return rl_zeros(nd, size, o->dtype, o->dev);
  case MK_ONES: return rl_ones(nd, size, o->dtype, o->dev);
  case MK_EMPTY: return rl_empty(nd, size, o->dtype, o->dev);
  case MK_RAND: return rl_rand(nd, size, o->dtype, o->dev, o->gen);
  default: return rl_randn(nd, size, o->dtype, o->dev, o->gen);
  }
}

static int create(lua_State *L, make_kind k, const char *name) {
  int64_t size[RL_MAX_DIMS];
  int next;
  int nd = lrl_sizes(L, 1, size, &next);
  lrl_opts o;
  if (k == MK_RAND || k == MK_RANDN) lrl_opts_read_random(L, next, &o, RL_F32);
  else lrl_opts_read(L, next, &o, RL_F32);
  if ((k == MK_RAND || k == MK_RANDN) && !rl_dtype_is_floating(o.dtype))
    return luaL_error(L, "%s: needs a float dtype (f32, f64, bf16, f16), got %s", name,
                      rl_dtype_name(o.dtype));
  int b = lrl_newbox(L);
  return fill_new(L, b, make(k, nd, size, &o), &o);
}

/* rl.zeros(sizes..., [opts]): a new tensor filled with 0.  The sizes are
 * numbers or one table: rl.zeros(2, 3) or rl.zeros({2, 3}); none gives a
 * 0-dim tensor.  opts is a dtype ('f32', the default, 'f64', 'i64', 'u8',
 * 'bf16' or 'f16') or a table {dtype, device, requires_grad}; a generator
 * is refused here (only the random creators, rl.rand, rl.randn, rl.randint
 * and rl.randperm, draw from one). */
static int l_zeros(lua_State *L) { return create(L, MK_ZEROS, "zeros"); }
/* rl.ones(sizes..., [opts]): as rl.zeros, filled with 1. */
static int l_ones(lua_State *L) { return create(L, MK_ONES, "ones"); }
/* rl.empty(sizes..., [opts]): as rl.zeros, but not filled: the values are
 * whatever the memory held.  For a tensor about to be overwritten. */
static int l_empty(lua_State *L) { return create(L, MK_EMPTY, "empty"); }
/* rl.rand(sizes..., [opts]): as rl.zeros, filled with samples drawn
 * uniformly from [0, 1).  The dtype must be a float one (bf16 and f16 get
 * the f32 draws rounded, below 1 still); opts may also give a generator
 * (an rl.Generator) to use instead of the global one. */
static int l_rand(lua_State *L) { return create(L, MK_RAND, "rand"); }
/* rl.randn(sizes..., [opts]): as rl.rand, with samples from the standard
 * normal distribution (mean 0, standard deviation 1). */
static int l_randn(lua_State *L) { return create(L, MK_RANDN, "randn"); }

/* x_like(t, [opts]): t's shape, dtype and device unless the options say. */
static int create_like(lua_State *L, make_kind k) {
  rl_tensor *t = lrl_check(L, 1);
  lrl_opts o;
  lrl_opts_read_like(L, 2, &o, t, k == MK_RAND || k == MK_RANDN);
  if ((k == MK_RAND || k == MK_RANDN) && !rl_dtype_is_floating(o.dtype))
    return luaL_error(L, "%s_like: needs a float dtype (f32, f64, bf16, f16), got %s",
                      k == MK_RAND ? "rand" : "randn", rl_dtype_name(o.dtype));
  int b = lrl_newbox(L);
  return fill_new(L, b, make(k, t->ndim, t->size, &o), &o);
}

static int l_zeros_like(lua_State *L) { return create_like(L, MK_ZEROS); }
static int l_ones_like(lua_State *L) { return create_like(L, MK_ONES); }
static int l_empty_like(lua_State *L) { return create_like(L, MK_EMPTY); }
static int l_rand_like(lua_State *L) { return create_like(L, MK_RAND); }
static int l_randn_like(lua_State *L) { return create_like(L, MK_RANDN); }

/* full(sizes..., value, [opts]) or full({sizes}, value, [opts]) */
static int l_full(lua_State *L) {
  int64_t size[RL_MAX_DIMS];
  int vi, nd;
  if (lua_istable(L, 1)) {
    nd = lrl_sizes(L, 1, size, &vi);
  } else { /* numbers: every one but the last is a size */
    int n = 0;
    while (lua_type(L, n + 1) == LUA_TNUMBER) n++;
    if (n == 0) return luaL_error(L, "full: expected sizes and a value");
    if (n - 1 > RL_MAX_DIMS) return luaL_error(L, "full: too many dims (%d)", n - 1);
    for (nd = 0; nd < n - 1; nd++) {
      lua_Integer v = luaL_checkinteger(L, nd + 1);
      if (v < 0) return luaL_error(L, "full: negative size %I", v);
      size[nd] = v;
    }
    vi = n;
  }
  double v = luaL_checknumber(L, vi);
  lrl_opts o;
  lrl_opts_read(L, vi + 1, &o, lua_isinteger(L, vi) ? RL_I64 : RL_F32);
  int b = lrl_newbox(L);
  return fill_new(L, b, rl_full(nd, size, v, o.dtype, o.dev), &o);
}

/* rl.full_like(t, value, [opts]): a new tensor of t's shape filled with
 * value, in t's dtype and on t's device unless opts (a dtype or {dtype,
 * device, requires_grad}; a generator is refused, as by rl.zeros) gives
 * them. */
static int l_full_like(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  double v = luaL_checknumber(L, 2);
  lrl_opts o;
  lrl_opts_read_like(L, 3, &o, t, false);
  int b = lrl_newbox(L);
  return fill_new(L, b, rl_full(t->ndim, t->size, v, o.dtype, o.dev), &o);
}

/* arange(end) | arange(start, end, [step]) ; integers give i64 as PyTorch */
static int l_arange(lua_State *L) {
  int nnum = 0;
  while (nnum < 3 && lua_type(L, nnum + 1) == LUA_TNUMBER) nnum++;
  if (nnum == 0) return luaL_error(L, "arange: expected arange(end) or arange(start, end[, step])");
  double start = 0, end, step = 1;
  bool allint = true;
  for (int i = 1; i <= nnum; i++) allint = allint && lua_isinteger(L, i);
  if (nnum == 1) {
    end = lua_tonumber(L, 1);
  } else {
    start = lua_tonumber(L, 1);
    end = lua_tonumber(L, 2);
    if (nnum == 3) step = lua_tonumber(L, 3);
  }
  lrl_opts o;
  lrl_opts_read(L, nnum + 1, &o, allint ? RL_I64 : RL_F32);
  int b = lrl_newbox(L);
  return fill_new(L, b, rl_arange(start, end, step, o.dtype, o.dev), &o);
}

/* rl.linspace(start, stop, n, [opts]): a 1-D tensor of n (>= 0) evenly
 * spaced values from start to stop, both included (n = 1 gives {start});
 * f32 unless opts (a dtype or {dtype, device, requires_grad}; a generator
 * is refused, as by rl.zeros) says otherwise. */
static int l_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  lrl_opts o;
  lrl_opts_read(L, 4, &o, RL_F32);
  int box = lrl_newbox(L);
  return fill_new(L, box, rl_linspace(a, b, n, o.dtype, o.dev), &o);
}

/* rl.eye(n, [m = n], [opts]): an n x m tensor with 1 on the main diagonal
 * and 0 elsewhere; f32 unless opts (a dtype or {dtype, device,
 * requires_grad}; a generator is refused, as by rl.zeros) says otherwise. */
static int l_eye(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  int oi = 2;
  lua_Integer m = n;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    m = luaL_checkinteger(L, 2);
    oi = 3;
  }
  lrl_opts o;
  lrl_opts_read(L, oi, &o, RL_F32);
  int b = lrl_newbox(L);
  return fill_new(L, b, rl_eye(n, m, o.dtype, o.dev), &o);
}

/* rl.randint(lo, hi, [sizes...], [opts]): integers drawn uniformly from
 * [lo, hi) (hi excluded; lo < hi required), sizes as for rl.zeros (none:
 * a 0-dim tensor).  i64 unless opts gives a dtype; opts may also give a
 * device and a generator (an rl.Generator, instead of the global one). */
static int l_randint(lua_State *L) {
  lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
  int64_t size[RL_MAX_DIMS];
  int next;
  int nd = lrl_sizes(L, 3, size, &next);
  lrl_opts o;
  lrl_opts_read_random(L, next, &o, RL_I64);
  int b = lrl_newbox(L);
  return fill_new(L, b, rl_randint(lo, hi, nd, size, o.dtype, o.dev, o.gen), &o);
}

/* rl.randperm(n, [opts]): a random permutation of 0, 1, ..., n - 1 as a
 * 1-D tensor, i64 unless opts gives a dtype (as PyTorch) that holds n - 1
 * exactly (u8: n <= 256; bf16: n <= 257; f16: n <= 2049; f32: n <= 2^24 + 1).
 * opts may give a device and a generator; the permutation does not depend
 * on the device or the dtype. */
static int l_randperm(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  lrl_opts o;
  lrl_opts_read_random(L, 2, &o, RL_I64);
  double most = rl_dtype_exact_int(o.dtype);
  if (most > 0 && n - 1 > most)
    return luaL_error(L, "randperm: n = %I is too large for %s (its values must be exact)", n,
                      rl_dtype_name(o.dtype));
  int b = lrl_newbox(L);
  rl_tensor *p = rl_randperm(n, o.dev, o.gen), *r = p;
  if (p && o.dtype != RL_I64) {
    r = rl_to_dtype(p, o.dtype);
    rl_release(p);
  }
  return fill_new(L, b, r, &o);
}

/* ---- rl.tensor(nested table) -------------------------------------------- */

typedef struct {
  int ndim;
  int64_t size[RL_MAX_DIMS];
  double *vals;
  int64_t *ivals; /* the same values as integers, exact for i64 */
  int64_t n;
  bool allint, anybool;
} nest;

static void nest_shape(lua_State *L, int idx, nest *s) {
  /* walk first elements to find the shape */
  lua_pushvalue(L, idx);
  s->ndim = 0;
  while (lua_istable(L, -1)) {
    if (s->ndim == RL_MAX_DIMS) luaL_error(L, "tensor: too deeply nested (at most %d dims)", RL_MAX_DIMS);
    s->size[s->ndim++] = (int64_t)luaL_len(L, -1);
    if (s->size[s->ndim - 1] == 0) break;
    lua_geti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
}

static void nest_fill(lua_State *L, int idx, nest *s, int d, char *path, size_t plen) {
  int64_t len = (int64_t)luaL_len(L, idx);
  if (len != s->size[d])
    luaL_error(L, "tensor: ragged nested table: element%s has %I entries, expected %I",
               plen ? path : "s at the top level", (lua_Integer)len, (lua_Integer)s->size[d]);
  /* a list and nothing else: {[1] = 1, [3] = 3} gave [1] and {a = 1} an
   * empty tensor, the other entries dropped silently */
  int64_t keys = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    keys++;
  }
  if (keys != len)
    luaL_error(L, "tensor: the table%s%s is not a list: it has %I entries besides [1]..[%I] (holes or named "
               "fields)", plen ? " at " : "", plen ? path : "", (lua_Integer)(keys - len), (lua_Integer)len);
  for (int64_t k = 1; k <= len; k++) {
    int ty = lua_geti(L, idx, k);
    size_t pl = plen + (size_t)snprintf(path + plen, 256 - plen < 24 ? 1 : 24, "[%lld]",
                                        (long long)k);
    if (d + 1 < s->ndim) {
      if (ty != LUA_TTABLE)
        luaL_error(L, "tensor: element %s is a %s, expected a table", path, lua_typename(L, ty));
      nest_fill(L, lua_gettop(L), s, d + 1, path, pl);
    } else {
      double v;
      int64_t iv = 0;
      if (ty == LUA_TNUMBER) {
        v = lua_tonumber(L, -1);
        if (lua_isinteger(L, -1)) iv = lua_tointeger(L, -1);
        else s->allint = false;
      } else if (ty == LUA_TBOOLEAN) {
        v = lua_toboolean(L, -1);
        iv = (int64_t)v;
        s->anybool = true;
      } else {
        luaL_error(L, "tensor: element %s is a %s, expected a number", path, lua_typename(L, ty));
        return;
      }
      s->ivals[s->n] = iv;
      s->vals[s->n++] = v;
    }
    path[plen] = 0;
    lua_pop(L, 1);
  }
}

/* rl.tensor(data, [opts]): a new tensor holding data, a number or boolean
 * (a 0-dim tensor) or nested tables of them, every row of one length:
 * rl.tensor{{1, 2}, {3, 4}}.  The dtype is opts' when it gives one, else
 * f32 when a value is a float (2.5 or 2.0, not 2) or the table is empty,
 * else u8 when a value is a boolean, else i64.  rl.tensor(t, [opts])
 * copies the tensor t without its autograd history, in t's dtype and on
 * t's device unless opts says.  opts: a dtype or {dtype, device,
 * requires_grad} (a generator is refused, as by rl.zeros). */
static int l_tensor(lua_State *L) {
  if (lrl_test(L, 1)) { /* rl.tensor(t): a copy */
    lrl_opts o;
    rl_tensor *t = lrl_check(L, 1);
    lrl_opts_read_like(L, 2, &o, t, false);
    int b = lrl_newbox(L);
    rl_tensor *d = rl_detach(t), *c = d ? rl_to_dtype(d, o.dtype) : NULL;
    rl_tensor *r = c && rl_dev(c) != o.dev ? rl_to_device(c, o.dev) : (c ? rl_clone(c) : NULL);
    if (d) rl_release(d);
    if (c) rl_release(c);
    return fill_new(L, b, r, &o);
  }
  lrl_opts o;
  lrl_opts_read(L, 2, &o, RL_F32);
  lua_settop(L, 1);
  int b = lrl_newbox(L); /* at 2, below the scratch buffer */
  nest s = {0};
  s.allint = true;
  if (lua_type(L, 1) == LUA_TNUMBER || lua_isboolean(L, 1)) {
    s.ndim = 0;
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    nest_shape(L, 1, &s);
    /* a __len may claim any length: checked before the buffer is sized */
    if (rl_check_sizes("tensor", s.ndim, s.size)) return lrl_error(L);
  }
  int64_t numel = 1;
  for (int d = 0; d < s.ndim; d++) numel *= s.size[d];
  /* a userdata buffer is freed by the GC even when an error is raised */
  size_t cap = (size_t)(numel ? numel : 1);
  s.vals = lua_newuserdatauv(L, (sizeof(double) + sizeof(int64_t)) * cap, 0);
  s.ivals = (int64_t *)(s.vals + cap);
  char path[256] = "";
  if (s.ndim == 0) {
    s.vals[0] = lua_isboolean(L, 1) ? lua_toboolean(L, 1) : lua_tonumber(L, 1);
    /* no cast of a float: 1e300 has no int64 (only used when allint anyway) */
    s.ivals[0] = lua_isinteger(L, 1) ? lua_tointeger(L, 1) : lua_toboolean(L, 1);
    s.allint = lua_isinteger(L, 1) || lua_isboolean(L, 1);
    s.anybool = lua_isboolean(L, 1);
  } else {
    nest_fill(L, 1, &s, 0, path, 0); /* an empty one too: {a = 1} is no list */
  }
  if (!o.has_dtype) o.dtype = s.anybool && s.allint ? RL_U8 : (s.allint && numel ? RL_I64 : RL_F32);
  rl_tensor *t = s.allint ? rl_from_host(s.ndim, s.size, RL_I64, s.ivals, rl_cpu())
                         : rl_from_host(s.ndim, s.size, RL_F64, s.vals, rl_cpu());
  rl_tensor *r = NULL;
  if (t) {
    rl_tensor *c = rl_to_dtype(t, o.dtype);
    r = c && o.dev != rl_cpu() ? rl_to_device(c, o.dev) : c;
    if (c && r != c) rl_release(c);
    rl_release(t);
  }
  lua_settop(L, b); /* drop the scratch buffer */
  return fill_new(L, b, r, &o);
}

/* ---- metamethods and properties ----------------------------------------- */

/* Both __gc and __close: idempotent, as liolib's io_fclose. */
static int l_gc(lua_State *L) {
  lrl_close(L, 1);
  return 0;
}

static int l_len(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  if (t->ndim == 0) return luaL_error(L, "len: a 0-dim tensor has no length");
  lua_pushinteger(L, t->size[0]);
  return 1;
}

static int l_tostring(lua_State *L) {
  rl_tensor *t = lrl_peek(L, 1);
  if (!t) {
    lua_pushstring(L, "[closed tensor]");
    return 1;
  }
  return lrl_tostring(L, t);
}

static void push_shape(lua_State *L, const rl_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->size[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

/* The methods table (x:op(...)), which __index falls back to. */
static int methods_ref = LUA_NOREF;

/* The 0-based row of x[i] (i at stack index 2: 1-based, negative from the
 * end), or a Lua error. */
static int64_t row_index(lua_State *L, const rl_tensor *t) {
  if (t->ndim == 0) luaL_error(L, "index: a 0-dim tensor cannot be indexed");
  lua_Integer i = luaL_checkinteger(L, 2);
  if (i == 0 || i > t->size[0] || i < -t->size[0])
    luaL_error(L, "index: %I is out of range for dim 1 of size %I (1-based)", i,
               (lua_Integer)t->size[0]);
  return i > 0 ? i - 1 : t->size[0] + i;
}

/* x[i] selects along dim 1 (1-based, negative from the end); other keys are
 * properties or methods.  x[#x + 1] is nil, the end of a Lua sequence, so
 * that ipairs(x) walks dim 1 (every other index out of range is an error). */
static int l_index(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    if (t->ndim > 0 && lua_isinteger(L, 2) && lua_tointeger(L, 2) == t->size[0] + 1) {
      lua_pushnil(L);
      return 1;
    }
    int64_t row = row_index(L, t);
    int b = lrl_newbox(L);
    return lrl_fill(L, b, rl_select(t, 0, row));
  }
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "shape")) {
    push_shape(L, t);
  } else if (!strcmp(k, "dtype")) {
    lua_pushstring(L, rl_dtype_name(t->dtype));
  } else if (!strcmp(k, "device")) {
    lua_pushstring(L, rl_dev(t)->name);
  } else if (!strcmp(k, "ndim")) {
    lua_pushinteger(L, t->ndim);
  } else if (!strcmp(k, "requires_grad")) {
    lua_pushboolean(L, t->requires_grad);
  } else if (!strcmp(k, "is_leaf")) {
    lua_pushboolean(L, t->grad_fn == NULL);
  } else if (!strcmp(k, "grad")) {
    if (!t->grad) {
      lua_pushnil(L);
    } else {
      int b = lrl_newbox(L);
      rl_retain(t->grad);
      lrl_fill(L, b, t->grad);
    }
  } else if (!strcmp(k, "storage_refs")) { /* tensors sharing the storage (views), for rl.help */
    lua_pushinteger(L, t->st->refcount);
  } else if (!strcmp(k, "storage_nbytes")) {
    lua_pushinteger(L, (lua_Integer)t->st->nbytes);
  } else if (!strcmp(k, "grad_fn")) {
    if (t->grad_fn) lua_pushstring(L, t->grad_fn->name);
    else lua_pushnil(L);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, methods_ref);
    lua_getfield(L, -1, k);
  }
  return 1;
}

static int l_newindex(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    /* everything that can raise comes before the row view is made; the
     * row has t's dtype and device, so t stands in for it as the like */
    int64_t row = row_index(L, t);
    rl_tensor *tmp;
    rl_tensor *src = lrl_operand(L, 3, t, &tmp);
    rl_tensor *v = rl_select(t, 0, row);
    if (!v) {
      if (tmp) rl_release(tmp);
      return lrl_error(L);
    }
    int rc = rl_check_inplace("index assignment", t, src);
    if (rc == 0) rc = rl_copy_(v, src);
    if (rc == 0) rl_bump_version(t);
    rl_release(v);
    if (tmp) rl_release(tmp);
    lrl_check_rc(L, rc);
    return 0;
  }
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "requires_grad")) {
    bool on = lua_toboolean(L, 3);
    if (on && !rl_dtype_is_floating(t->dtype))
      return luaL_error(L, "requires_grad: only float tensors can require gradients (got %s)",
                        rl_dtype_name(t->dtype));
    if (t->grad_fn && !on)
      return luaL_error(L, "requires_grad: cannot turn off for a non-leaf; use detach()");
    t->requires_grad = on;
    return 0;
  }
  if (!strcmp(k, "grad")) {
    rl_tensor *g = lua_isnil(L, 3) ? NULL : lrl_check(L, 3);
    if (g && !rl_same_shape(g, t))
      return luaL_error(L, "grad: shape %s does not match the tensor's %s", rl_shape_str(g),
                        rl_shape_str(t));
    if (g) rl_retain(g);
    if (t->grad) rl_release(t->grad);
    t->grad = g;
    return 0;
  }
  return luaL_error(L, "cannot set field '%s' of a tensor", k);
}

/* ---- the type ----------------------------------------------------------- */

/* rl.is_tensor(v): true when v is an rl tensor, false for any other value. */
static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, LRL_TENSOR) != NULL);
  return 1;
}

static const luaL_Reg module_fns[] = {
    {"tensor", l_tensor},
    {"zeros", l_zeros},
    {"ones", l_ones},
    {"empty", l_empty},
    {"full", l_full},
    {"rand", l_rand},
    {"randn", l_randn},
    {"randint", l_randint},
    {"randperm", l_randperm},
    {"arange", l_arange},
    {"linspace", l_linspace},
    {"eye", l_eye},
    {"zeros_like", l_zeros_like},
    {"ones_like", l_ones_like},
    {"empty_like", l_empty_like},
    {"full_like", l_full_like},
    {"rand_like", l_rand_like},
    {"randn_like", l_randn_like},
    {"is_tensor", l_is_tensor},
    {NULL, NULL},
};

static const luaL_Reg tensor_meta[] = {
    {"__gc", l_gc},
    {"__close", l_gc},
    {"__len", l_len},
    {"__tostring", l_tostring},
    {"__index", l_index},
    {"__newindex", l_newindex},
    {NULL, NULL},
};

void lrl_open_tensor(lua_State *L) {
  luaL_newmetatable(L, LRL_TENSOR);
  luaL_setfuncs(L, tensor_meta, 0);
  lua_pushliteral(L, "rl.Tensor");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  luaL_setfuncs(L, module_fns, 0);
}

void lrl_open_methods(lua_State *L) {
  lua_newtable(L);
  lua_pushvalue(L, -1);
  methods_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}
