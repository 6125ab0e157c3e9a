/* lrl.c - the helpers every binding file uses: the tensor box, checking
 * and pushing tensors, raising the engine's errors, and reading sizes,
 * dims and option tables (lrl.h).  Like Torch7's luaT.c it opens nothing;
 * init.c opens the module.
 *
 * A box is a full userdata holding one reference.  It is made empty (a
 * closed box) before the tensor it will own, as liolib makes a file's box
 * before opening the file: a memory error while making the box then leaks
 * nothing, and once filled the box's __gc frees the tensor whatever is
 * raised next. */
#include <math.h>

#include "lrl.h"

/* ---- the box ------------------------------------------------------------- */

/* The layout bindings/io.c also reads (one reference, NULL when closed). */
typedef struct {
  rl_tensor *t;
} box;

int lrl_error(lua_State *L) { return luaL_error(L, "%s", rl_errmsg()); }

void lrl_check_rc(lua_State *L, int rc) {
  if (rc) lrl_error(L);
}

/* Lua's collector sees a tensor as a small box and not the storage behind
 * it, so on its own it lets dead tensors pile up by the gigabyte (a CPU
 * training loop grew to 2.6 GB in 100 steps and spent a tenth of its time
 * faulting in fresh pages).  Instead, whenever the bytes held by live
 * storages pass twice what survived the last collection, collect: memory
 * stays within about twice the working set, and a collection (cheap: the
 * Lua heap is small) comes once per working set's worth of allocation. */
#define GC_FLOOR ((size_t)64 << 20)
static size_t gc_mark = GC_FLOOR;

static void pace_gc(lua_State *L) {
  if (rl_storage_live_bytes() <= gc_mark) return;
  lua_gc(L, LUA_GCCOLLECT);
  size_t live = rl_storage_live_bytes();
  gc_mark = live * 2 > GC_FLOOR ? live * 2 : GC_FLOOR;
}

int lrl_newbox(lua_State *L) {
  box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = NULL;
  luaL_setmetatable(L, LRL_TENSOR);
  return lua_gettop(L);
}

int lrl_fill(lua_State *L, int i, rl_tensor *t) {
  if (!t) return lrl_error(L); /* the empty box is left to the collector */
  box *b = lua_touserdata(L, i);
  b->t = t;
  /* the new tensor is owned now, so a collection here cannot lose it */
  pace_gc(L);
  return 1;
}

rl_tensor *lrl_test(lua_State *L, int i) {
  box *b = luaL_testudata(L, i, LRL_TENSOR);
  if (b && !b->t) luaL_argerror(L, i, "attempt to use a freed tensor (closed by <close>)");
  return b ? b->t : NULL;
}

rl_tensor *lrl_check(lua_State *L, int i) {
  box *b = luaL_testudata(L, i, LRL_TENSOR);
  if (!b) {
    luaL_typeerror(L, i, "tensor");
    return NULL;
  }
  if (!b->t) luaL_argerror(L, i, "attempt to use a freed tensor (closed by <close>)");
  return b->t;
}

/* Drop the box's reference now (for __gc and __close); safe to repeat. */
void lrl_close(lua_State *L, int i) {
  box *b = luaL_checkudata(L, i, LRL_TENSOR);
  if (b->t) rl_release(b->t);
  b->t = NULL;
}

/* The box's tensor, or NULL once closed, without raising. */
rl_tensor *lrl_peek(lua_State *L, int i) {
  box *b = luaL_checkudata(L, i, LRL_TENSOR);
  return b->t;
}

static bool is_number_operand(lua_State *L, int i) {
  return lua_type(L, i) == LUA_TNUMBER || lua_isboolean(L, i);
}

/* The operand at i, already checked: a number becomes a 0-dim tensor in
 * *tmp.  Returns NULL, with the engine's message and without raising,
 * only when making that scalar failed. */
static rl_tensor *make_operand(lua_State *L, int i, const rl_tensor *like, rl_tensor **tmp) {
  *tmp = NULL;
  if (!is_number_operand(L, i)) return lrl_check(L, i); /* checked: cannot raise */
  double v = lua_isboolean(L, i) ? lua_toboolean(L, i) : lua_tonumber(L, i);
  rl_dtype dt = like ? like->dtype : RL_F32;
  /* against bf16 or f16 the number stays unrounded: f32, the op's compute
   * type (the caller rounds an arithmetic result back to the half type) */
  if (rl_dtype_is_half(dt)) dt = RL_F32;
  /* a fractional number against an integer tensor computes in f32 */
  if (like && !rl_dtype_is_floating(dt) && lua_isnumber(L, i) && !lua_isinteger(L, i) &&
      v != floor(v))
    dt = RL_F32;
  *tmp = rl_scalar(v, dt, like ? rl_dev(like) : rl_cpu());
  return *tmp;
}

rl_tensor *lrl_operand(lua_State *L, int i, const rl_tensor *like, rl_tensor **tmp) {
  if (!is_number_operand(L, i)) lrl_check(L, i);
  rl_tensor *t = make_operand(L, i, like, tmp);
  if (!t) lrl_error(L);
  return t;
}

void lrl_operands(lua_State *L, int i, int j, const rl_tensor *like, rl_tensor **a,
                  rl_tensor **b, rl_tensor *tmp[2]) {
  if (!is_number_operand(L, i)) lrl_check(L, i);
  if (!is_number_operand(L, j)) lrl_check(L, j);
  *a = make_operand(L, i, like, &tmp[0]);
  if (!*a) lrl_error(L);
  *b = make_operand(L, j, like, &tmp[1]);
  if (!*b) {
    if (tmp[0]) rl_release(tmp[0]);
    lrl_error(L);
  }
}

/* ---- arguments ----------------------------------------------------------- */

/* The size on top of the stack, the k-th of argument argi; errors name the
 * function through luaL_argerror ("bad argument #1 to 'zeros' (...)"). */
static int64_t size_value(lua_State *L, int argi, int k) {
  int isnum;
  lua_Integer v = lua_tointegerx(L, -1, &isnum);
  if (!isnum)
    luaL_argerror(L, argi, lua_pushfstring(L, "size %d must be an integer, got %s", k,
                                           luaL_typename(L, -1)));
  if (v < 0) luaL_argerror(L, argi, lua_pushfstring(L, "size %d is negative (%I)", k, v));
  return (int64_t)v;
}

int lrl_sizes(lua_State *L, int first, int64_t *size, int *next) {
  int n = 0;
  if (lua_istable(L, first)) {
    int len = (int)luaL_len(L, first);
    if (len > RL_MAX_DIMS) luaL_error(L, "too many dims (%d, at most %d)", len, RL_MAX_DIMS);
    for (int k = 1; k <= len; k++) {
      lua_geti(L, first, k);
      size[n++] = size_value(L, first, k);
      lua_pop(L, 1);
    }
    if (next) *next = first + 1;
    return n;
  }
  int i = first;
  while (lua_type(L, i) == LUA_TNUMBER) {
    if (n == RL_MAX_DIMS) luaL_error(L, "too many dims (at most %d)", RL_MAX_DIMS);
    lua_pushvalue(L, i);
    size[n] = size_value(L, i, n + 1);
    n++;
    lua_pop(L, 1);
    i++;
  }
  if (next) *next = i;
  return n;
}

int lrl_dim_value(lua_State *L, lua_Integer d, int argi) {
  if (d == 0)
    luaL_argerror(L, argi, "dim 0 is invalid: dims are 1-based (use -1 for the last)");
  /* checked before the cast to int, so that 2^32 + 1 is not taken for 1; the
   * engine checks the dim against the tensor's */
  if (d > RL_MAX_DIMS || d < -RL_MAX_DIMS)
    luaL_argerror(L, argi, lua_pushfstring(L, "dim %I is out of range (a tensor has at most "
                                              "%d dims)", d, RL_MAX_DIMS));
  return d > 0 ? (int)d - 1 : (int)d;
}

int lrl_dim(lua_State *L, int i) { return lrl_dim_value(L, luaL_checkinteger(L, i), i); }

int lrl_dims(lua_State *L, int i, int *dims) {
  if (lua_isnoneornil(L, i)) return 0;
  if (lua_istable(L, i)) {
    int n = (int)luaL_len(L, i);
    if (n > RL_MAX_DIMS) luaL_argerror(L, i, "too many dims");
    for (int k = 1; k <= n; k++) {
      lua_geti(L, i, k);
      int isnum;
      lua_Integer d = lua_tointegerx(L, -1, &isnum);
      if (!isnum) luaL_argerror(L, i, "dims must be integers");
      dims[k - 1] = lrl_dim_value(L, d, i);
      lua_pop(L, 1);
    }
    if (n == 0) luaL_argerror(L, i, "empty table of dims");
    return n;
  }
  dims[0] = lrl_dim(L, i);
  return 1;
}

rl_dtype lrl_dtype_arg(lua_State *L, int i) {
  const char *s = luaL_checkstring(L, i);
  rl_dtype dt;
  if (rl_dtype_parse(s, &dt)) luaL_argerror(L, i, rl_errmsg());
  return dt;
}

const rl_device *lrl_device_arg(lua_State *L, int i) {
  const char *s = luaL_checkstring(L, i);
  const rl_device *d = rl_device_parse(s);
  if (!d) lrl_error(L);
  return d;
}

rl_generator *lrl_generator_opt(lua_State *L, int i) {
  if (lua_isnoneornil(L, i)) return NULL;
  return luaL_checkudata(L, i, LRL_GENERATOR);
}

void lrl_known_keys(lua_State *L, int i, const char *const *keys, size_t n, const char *tail) {
  lua_pushnil(L);
  while (lua_next(L, i)) {
    lua_pop(L, 1);
    bool known = false;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (size_t k = 0; k < n; k++) known = known || strcmp(lua_tostring(L, -1), keys[k]) == 0;
    if (!known)
      luaL_argerror(L, i, lua_pushfstring(L, "unknown option '%s'%s", luaL_tolstring(L, -1, NULL), tail));
  }
}

static void opts_read(lua_State *L, int i, lrl_opts *o, rl_dtype default_dtype, bool random) {
  o->dtype = default_dtype;
  o->has_dtype = false;
  o->dev = rl_cpu();
  o->has_dev = false;
  o->gen = NULL;
  o->requires_grad = false;
  if (lua_isnoneornil(L, i)) return;
  if (lua_type(L, i) == LUA_TSTRING) { /* a bare dtype */
    o->dtype = lrl_dtype_arg(L, i);
    o->has_dtype = true;
    return;
  }
  luaL_checktype(L, i, LUA_TTABLE);
  /* a key that is no option (a misspelt "dtyp") is an error, not ignored */
  static const char *const keys[] = {"dtype", "device", "requires_grad", "generator"};
  lrl_known_keys(L, i, keys, 4,
                 random ? " (the options are dtype, device, generator and requires_grad)"
                        : " (the options are dtype, device, requires_grad)");
  if (!random) {
    if (lua_getfield(L, i, "generator") != LUA_TNIL)
      luaL_argerror(L, i, "generator is for the random creators (rl.rand, rl.randn, rl.randint, "
                          "rl.randperm and their _like forms): nothing here is drawn");
    lua_pop(L, 1);
  }
  int top = lua_gettop(L);
  if (lua_getfield(L, i, "dtype") != LUA_TNIL) {
    rl_dtype dt;
    if (lua_type(L, top + 1) != LUA_TSTRING)
      luaL_argerror(L, i, lua_pushfstring(L, "dtype must be a string, got %s", luaL_typename(L, top + 1)));
    if (rl_dtype_parse(lua_tostring(L, top + 1), &dt)) luaL_argerror(L, i, rl_errmsg());
    o->dtype = dt;
    o->has_dtype = true;
  }
  if (lua_getfield(L, i, "device") != LUA_TNIL) {
    o->dev = lrl_device_arg(L, top + 2);
    o->has_dev = true;
  }
  if (lua_getfield(L, i, "generator") != LUA_TNIL) o->gen = lrl_generator_opt(L, top + 3);
  if (lua_getfield(L, i, "requires_grad") != LUA_TNIL && !lua_isboolean(L, top + 4))
    luaL_argerror(L, i, lua_pushfstring(L, "requires_grad must be a boolean, got %s",
                                        luaL_typename(L, top + 4)));
  o->requires_grad = lua_toboolean(L, top + 4);
  lua_settop(L, top);
}

void lrl_opts_read(lua_State *L, int i, lrl_opts *o, rl_dtype default_dtype) {
  opts_read(L, i, o, default_dtype, false);
}

void lrl_opts_read_random(lua_State *L, int i, lrl_opts *o, rl_dtype default_dtype) {
  opts_read(L, i, o, default_dtype, true);
}

void lrl_opts_read_like(lua_State *L, int i, lrl_opts *o, const rl_tensor *t, bool random) {
  opts_read(L, i, o, t->dtype, random);
  if (!o->has_dev) o->dev = rl_dev(t);
}
