/* ops.c - tensor methods (x:op(...)) and the arithmetic metamethods.
 *
 * Each wrapper converts Lua arguments (1-based dims, numbers as scalars,
 * option tables) and calls one engine function; a failing engine call
 * raises its message.  Comparisons are methods (x:lt(y)) because Lua turns
 * the result of __lt/__le/__eq into a boolean.
 *
 * The order in each wrapper is fixed by STYLE rule 1: read every argument
 * (anything that can raise) first, then make the result's box (lrl_newbox),
 * then the temporaries, and release them before raising an engine error. */
#include <math.h>
#include <string.h>

#include "lrl.h"

/* ---- unary ---------------------------------------------------------------- */

/* UNARY_1 defines x:name() and x:name_() for every unary op whose row in
 * backend.h's RL_UNARY_OPS has lua = 1; UNARY_0 defines nothing. */
#define UNARY_0(E, name)
/* x:op() -> a new tensor, and x:op_() -> x, changed in place, for op = neg,
 * abs, sign, square, relu (max(x, 0)), exp, expm1 (exp(x) - 1), log, log1p
 * (log(1 + x)), sqrt, rsqrt (1 / sqrt(x)), reciprocal (1 / x), sigmoid,
 * tanh, sin, cos, floor, ceil, round (halves to even) and logical_not.
 * Elementwise; the result has x's shape.  neg, abs, sign, square and relu
 * give i64 for an i64 or u8 x; the others compute an integer x in f32.
 * logical_not takes a u8 x and gives u8: 1 where x is 0, else 0.
 * x:op_() needs an f32 or f64 x (i64 also for neg_, abs_, sign_, square_
 * and relu_; u8 for logical_not_), and is refused on an x that requires
 * grad while grad mode is on.  Gradients flow through x:op(); those of
 * sign, floor, ceil and round are 0. */
#define UNARY_1(E, name)                                                         \
  static int t_##name(lua_State *L) {                                           \
    rl_tensor *t = lrl_check(L, 1);                                              \
    int b = lrl_newbox(L);                                                       \
    return lrl_fill(L, b, rl_unary(RL_UN_##E, t, 0, 0));                        \
  }                                                                              \
  static int t_##name##_(lua_State *L) {                                        \
    lrl_check_rc(L, rl_unary_(RL_UN_##E, lrl_check(L, 1), 0, 0));              \
    lua_settop(L, 1);                                                            \
    return 1;                                                                    \
  }
#define UNARY(E, name, lua) UNARY_##lua(E, name)
RL_UNARY_OPS(UNARY)
#undef UNARY

/* x:isnan(): a new u8 tensor of x's shape, 1 where x is NaN and 0
 * elsewhere; x must be f32 or f64. */
static int t_isnan(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_unary(RL_UN_ISNAN, t, 0, 0));
}

/* Whether the argument at i is a number with a fraction (what makes an
 * integer tensor's op compute in f32, as make_operand in lrl.c). */
static bool is_fraction(lua_State *L, int i) {
  if (lua_type(L, i) != LUA_TNUMBER || lua_isinteger(L, i)) return false;
  double v = lua_tonumber(L, i);
  return v != floor(v);
}

/* x:clamp(lo, hi), x:clamp_(lo, hi): either bound may be nil; tensor
 * bounds broadcast.  A fractional bound makes an integer x's result f32,
 * as PyTorch (clamp_ then refuses, the result not fitting x). */
static int clamp(lua_State *L, bool inplace) {
  rl_tensor *t = lrl_check(L, 1);
  if (lrl_test(L, 2) || lrl_test(L, 3)) {
    if (lua_isnoneornil(L, 2) || lua_isnoneornil(L, 3))
      return luaL_error(L, "clamp: tensor bounds need both lo and hi");
    int b = inplace ? 0 : lrl_newbox(L);
    rl_tensor *lo, *hi, *tmp[2];
    lrl_operands(L, 2, 3, t, &lo, &hi, tmp);
    int rc = 0;
    rl_tensor *r = NULL;
    if (inplace) rc = rl_ternary_(RL_TER_CLAMP, t, lo, hi, NULL);
    else r = rl_ternary(RL_TER_CLAMP, t, lo, hi, NULL);
    if (tmp[0]) rl_release(tmp[0]);
    if (tmp[1]) rl_release(tmp[1]);
    if (inplace) {
      lrl_check_rc(L, rc);
      lua_settop(L, 1);
      return 1;
    }
    return lrl_fill(L, b, r);
  }
  bool has_lo = !lua_isnoneornil(L, 2), has_hi = !lua_isnoneornil(L, 3);
  if (!has_lo && !has_hi) return luaL_error(L, "clamp: give lo, hi or both");
  double lo = has_lo ? luaL_checknumber(L, 2) : -INFINITY;
  double hi = has_hi ? luaL_checknumber(L, 3) : INFINITY;
  rl_unary_op op = has_lo && has_hi ? RL_UN_CLAMP : (has_lo ? RL_UN_MAXS : RL_UN_MINS);
  double p0 = op == RL_UN_MINS ? hi : lo;
  bool to_f32 = !rl_dtype_is_floating(t->dtype) && (is_fraction(L, 2) || is_fraction(L, 3));
  if (inplace) {
    if (to_f32)
      return luaL_error(L, "clamp_: the result type f32 cannot be stored in place in a %s "
                           "tensor, got a fractional bound", rl_dtype_name(t->dtype));
    lrl_check_rc(L, rl_unary_(op, t, p0, hi));
    lua_settop(L, 1);
    return 1;
  }
  int b = lrl_newbox(L);
  rl_tensor *f = to_f32 ? rl_to_dtype(t, RL_F32) : NULL;
  rl_tensor *r = rl_unary(op, to_f32 ? f : t, p0, hi); /* NULL f: NULL, f's error kept */
  if (f) rl_release(f);
  return lrl_fill(L, b, r);
}
static int t_clamp(lua_State *L) { return clamp(L, false); }
static int t_clamp_(lua_State *L) { return clamp(L, true); }

/* ---- binary --------------------------------------------------------------- */


/* r, computed with a number operand that was made an f32 tensor (so in
 * f32), as the half type of the tensor operand t when t is bf16 or f16: a
 * half tensor with a number gives its own type, as with another such
 * tensor, the f32 result rounded once.  r is consumed. */
static rl_tensor *back_to_half(rl_tensor *r, const rl_tensor *t) {
  if (!r || !rl_dtype_is_half(t->dtype) || r->dtype != RL_F32) return r;
  rl_tensor *h = rl_to_dtype(r, t->dtype);
  rl_release(r);
  return h;
}
/* op(a, b) where either may be a number; scalar forms use the unary table so
 * that x + 1 allocates no scalar tensor and keeps x's dtype. */
static rl_tensor *binop(lua_State *L, rl_binary_op op, int ia, int ib, double alpha) {
  rl_tensor *a = lrl_test(L, ia), *b = lrl_test(L, ib);
  if (a && lua_type(L, ib) == LUA_TNUMBER && rl_dtype_is_floating(a->dtype)) {
    double s = lua_tonumber(L, ib);
    switch (op) {
    case RL_BIN_ADD: return rl_unary(RL_UN_AFFINE, a, 1, alpha * s);
    case RL_BIN_SUB: return rl_unary(RL_UN_AFFINE, a, 1, -alpha * s);
    case RL_BIN_MUL: return rl_unary(RL_UN_AFFINE, a, s, 0);
    /* x / s divides (x * (1/s) would differ in the last place) */
    case RL_BIN_POW: return rl_unary(RL_UN_POW, a, s, 0);
    case RL_BIN_REMAINDER: return rl_unary(RL_UN_REMS, a, s, 0);
    case RL_BIN_FMOD: return rl_unary(RL_UN_FMOD, a, s, 0);
    default: break;
    }
  }
  if (b && lua_type(L, ia) == LUA_TNUMBER && rl_dtype_is_floating(b->dtype)) {
    double s = lua_tonumber(L, ia);
    switch (op) {
    case RL_BIN_ADD: return rl_unary(RL_UN_AFFINE, b, alpha, s);
    case RL_BIN_SUB: return rl_unary(RL_UN_AFFINE, b, -alpha, s);
    case RL_BIN_MUL: return rl_unary(RL_UN_AFFINE, b, s, 0);
    case RL_BIN_DIV: return rl_unary(RL_UN_RDIV, b, s, 0);
    case RL_BIN_POW: return rl_unary(RL_UN_RPOW, b, s, 0);
    default: break;
    }
  }
  if (!a && !b) {
    luaL_error(L, "%s: expected a tensor operand", "binary op");
    return NULL;
  }
  /* checked here: as a u8 scalar, the engine would see -1 as 255 */
  if (op == RL_BIN_POW && a && !rl_dtype_is_floating(a->dtype) &&
      lua_type(L, ib) == LUA_TNUMBER && !is_fraction(L, ib) && lua_tonumber(L, ib) < 0) {
    luaL_error(L, "pow: integers to negative integer powers are not allowed, got exponent %s",
               luaL_tolstring(L, ib, NULL));
    return NULL;
  }
  rl_tensor *ta, *tb;
  rl_tensor *x = lrl_operand(L, ia, b, &ta);
  rl_tensor *y = lrl_operand(L, ib, x, &tb);
  rl_tensor *r = rl_binary(op, x, y, alpha);
  if (ta || tb) r = back_to_half(r, a ? a : b);
  if (ta) rl_release(ta);
  if (tb) rl_release(tb);
  return r;
}

static double alpha_arg(lua_State *L, int i) { return luaL_optnumber(L, i, 1.0); }

/* x:op(y, [alpha]) for op = add, sub, mul, div, pow, maximum, minimum, fmod,
 * remainder, eq, ne, lt, le, gt, ge, logical_and, logical_or: y a tensor or a
 * number, broadcast as NumPy; add and sub scale y by alpha (1).
 * Comparisons give u8 tensors. */
#define BINARY(name, OP)                                                         \
  static int t_##name(lua_State *L) {                                           \
    lrl_check(L, 1);                                                             \
    double alpha = alpha_arg(L, 3);                                              \
    int box = lrl_newbox(L);                                                     \
    return lrl_fill(L, box, binop(L, OP, 1, 2, alpha));                         \
  }

/* x:op_(y, [alpha]): the in-place form of x:op(y); x keeps its size and dtype. */
#define BINARY_INPLACE(name, OP)                                                 \
  static int t_##name##_(lua_State *L) {                                        \
    rl_tensor *a = lrl_check(L, 1), *tmp;                                        \
    double alpha = alpha_arg(L, 3);                                              \
    rl_tensor *b = lrl_operand(L, 2, a, &tmp);                                   \
    int rc = rl_binary_(OP, a, b, alpha);                                        \
    if (tmp) rl_release(tmp);                                                    \
    lrl_check_rc(L, rc);                                                         \
    lua_settop(L, 1);                                                            \
    return 1;                                                                    \
  }

BINARY(add, RL_BIN_ADD)
BINARY(sub, RL_BIN_SUB)
BINARY(mul, RL_BIN_MUL)
BINARY(div, RL_BIN_DIV)
BINARY(pow, RL_BIN_POW)
BINARY(maximum, RL_BIN_MAX)
BINARY(minimum, RL_BIN_MIN)
BINARY(fmod, RL_BIN_FMOD)
BINARY(remainder, RL_BIN_REMAINDER)
BINARY(eq, RL_BIN_EQ)
BINARY(ne, RL_BIN_NE)
BINARY(lt, RL_BIN_LT)
BINARY(le, RL_BIN_LE)
BINARY(gt, RL_BIN_GT)
BINARY(ge, RL_BIN_GE)
BINARY(logical_and, RL_BIN_AND)
BINARY(logical_or, RL_BIN_OR)
BINARY_INPLACE(add, RL_BIN_ADD)
BINARY_INPLACE(sub, RL_BIN_SUB)
BINARY_INPLACE(mul, RL_BIN_MUL)
BINARY_INPLACE(div, RL_BIN_DIV)
BINARY_INPLACE(pow, RL_BIN_POW)
BINARY_INPLACE(maximum, RL_BIN_MAX)
BINARY_INPLACE(minimum, RL_BIN_MIN)

/* metamethods: either operand may be the number */
#define META(name, OP)                                                           \
  static int m_##name(lua_State *L) {                                           \
    int b = lrl_newbox(L);                                                       \
    return lrl_fill(L, b, binop(L, OP, 1, 2, 1.0));                             \
  }
META(add, RL_BIN_ADD)
META(sub, RL_BIN_SUB)
META(mul, RL_BIN_MUL)
META(div, RL_BIN_DIV)
META(pow, RL_BIN_POW)
META(mod, RL_BIN_REMAINDER) /* x % y takes y's sign, as Lua and PyTorch */

static int m_unm(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_neg(t));
}

/* ---- fused multiply-adds ------------------------------------------------- */

/* x:addcmul(t1, t2, [value=1]) = x + value*t1*t2, addcdiv likewise with
 * t1/t2, x:lerp(y, w) = x + w*(y - x); each with an in-place form. */
static int fused(lua_State *L, rl_ternary_op op, bool inplace) {
  rl_tensor *x = lrl_check(L, 1), *t1, *t2, *tmp[2] = {NULL, NULL};
  double p[4] = {1, 0, 0, 0};
  bool lerp = op == RL_TER_LERP;
  if (lerp) {
    t1 = t2 = lrl_check(L, 2);
    p[0] = luaL_checknumber(L, 3);
  } else {
    p[0] = luaL_optnumber(L, 4, 1.0);
  }
  int b = inplace ? 0 : lrl_newbox(L);
  if (!lerp) lrl_operands(L, 2, 3, x, &t1, &t2, tmp);
  int rc = 0;
  rl_tensor *r = NULL;
  if (inplace) rc = rl_ternary_(op, x, t1, t2, p);
  else r = rl_ternary(op, x, t1, t2, p);
  if (tmp[0]) rl_release(tmp[0]);
  if (tmp[1]) rl_release(tmp[1]);
  if (inplace) {
    lrl_check_rc(L, rc);
    lua_settop(L, 1);
    return 1;
  }
  return lrl_fill(L, b, r);
}
static int t_addcmul(lua_State *L) { return fused(L, RL_TER_ADDCMUL, false); }
static int t_addcmul_(lua_State *L) { return fused(L, RL_TER_ADDCMUL, true); }
static int t_addcdiv(lua_State *L) { return fused(L, RL_TER_ADDCDIV, false); }
static int t_addcdiv_(lua_State *L) { return fused(L, RL_TER_ADDCDIV, true); }
static int t_lerp(lua_State *L) { return fused(L, RL_TER_LERP, false); }
static int t_lerp_(lua_State *L) { return fused(L, RL_TER_LERP, true); }

/* ---- where, masks --------------------------------------------------------- */

/* x:where(cond, y) as torch.where(cond, x, y); either x or y may be a
 * number (Tensor.where(1.5, cond, y) for a number x), which takes the
 * other's dtype, or f32 when it is fractional and the other integer, as in
 * arithmetic.  rl.where(cond, x, y) is defined in lua/rl/base.lua on top
 * of it. */
static int t_where(lua_State *L) {
  rl_tensor *cond = lrl_check(L, 2), *like = lrl_test(L, 1);
  if (!like) like = lrl_test(L, 3);
  if (!like && lua_type(L, 1) == LUA_TNUMBER && lua_type(L, 3) == LUA_TNUMBER)
    return luaL_error(L, "where: x or y must be a tensor, got two numbers");
  if (!like) lrl_check(L, lua_type(L, 1) == LUA_TNUMBER ? 3 : 1); /* raises */
  int b = lrl_newbox(L);
  rl_tensor *x, *y, *tmp[2];
  lrl_operands(L, 1, 3, like, &x, &y, tmp);
  rl_tensor *r = rl_where(cond, x, y);
  if (tmp[0] || tmp[1]) { /* a selection: rounding the result is rounding the number, as PyTorch */
    if (tmp[0]) rl_release(tmp[0]);
    if (tmp[1]) rl_release(tmp[1]);
    r = back_to_half(r, like);
  }
  return lrl_fill(L, b, r);
}

/* x:masked_fill(mask, value): value where the u8 mask (broadcast) is set. */
static int t_masked_fill(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1), *mask = lrl_check(L, 2);
  double v = luaL_checknumber(L, 3);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_masked_fill(t, mask, v));
}

static int t_masked_fill_(lua_State *L) {
  lrl_check_rc(L, rl_masked_fill_(lrl_check(L, 1), lrl_check(L, 2), luaL_checknumber(L, 3)));
  lua_settop(L, 1);
  return 1;
}

/* x:masked_select(mask): a new 1-D tensor of the elements of x where the
 * u8 mask is non-zero, in row-major order.  x and mask broadcast against
 * each other; gradients flow back to x. */
static int t_masked_select(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1), *mask = lrl_check(L, 2);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_masked_select(t, mask));
}

/* ---- fills and random fills ---------------------------------------------- */

/* x:fill_(value): sets every element of x to the number value, in place,
 * and returns x.  value is converted to x's dtype (an integer dtype drops
 * the fraction).  Refused on an expanded view, and on an x that requires
 * grad while grad mode is on. */
static int t_fill_(lua_State *L) {
  lrl_check_rc(L, rl_fill_(lrl_check(L, 1), luaL_checknumber(L, 2)));
  lua_settop(L, 1);
  return 1;
}

/* x:zero_(): x:fill_(0); returns x. */
static int t_zero_(lua_State *L) {
  lrl_check_rc(L, rl_zero_(lrl_check(L, 1)));
  lua_settop(L, 1);
  return 1;
}

/* x:uniform_([lo = 0], [hi = 1], [generator]): fills x in place with
 * samples drawn uniformly from [lo, hi) and returns x.  x must be f32 or
 * f64.  generator is an rl.Generator; without one, the global generator
 * (rl.manual_seed) is used. */
static int t_uniform_(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  double lo = luaL_optnumber(L, 2, 0), hi = luaL_optnumber(L, 3, 1);
  lrl_check_rc(L, rl_uniform_(t, lo, hi, lrl_generator_opt(L, 4)));
  lua_settop(L, 1);
  return 1;
}

/* x:normal_([mean = 0], [std = 1], [generator]): fills x in place with
 * samples from the normal distribution of that mean and standard deviation
 * and returns x.  x must be f32 or f64, and std >= 0; generator as for
 * x:uniform_. */
static int t_normal_(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  double m = luaL_optnumber(L, 2, 0), s = luaL_optnumber(L, 3, 1);
  lrl_check_rc(L, rl_normal_(t, m, s, lrl_generator_opt(L, 4)));
  lua_settop(L, 1);
  return 1;
}

/* x:bernoulli_([p = 0.5], [generator]): sets each element of x, in place,
 * to 1 with probability p and to 0 otherwise, and returns x.  Any dtype;
 * p must be in [0, 1]; generator as for x:uniform_. */
static int t_bernoulli_(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  double p = luaL_optnumber(L, 2, 0.5);
  if (!(p >= 0 && p <= 1)) return luaL_error(L, "bernoulli_: p must be in [0, 1], got %f", p);
  lrl_check_rc(L, rl_bernoulli_(t, p, lrl_generator_opt(L, 3)));
  lua_settop(L, 1);
  return 1;
}

/* ---- copies, dtypes, devices ---------------------------------------------- */

/* x:copy_(src): writes src's values into x, in place, and returns x.  src is
 * a number or a tensor, which is broadcast to x's shape, converted to x's
 * dtype and may live on another device.  x keeps its storage, so its views
 * see the new values.  No gradient is recorded: while grad mode is on, it
 * is refused when x or src requires grad. */
static int t_copy_(lua_State *L) {
  rl_tensor *dst = lrl_check(L, 1), *tmp;
  rl_tensor *src = lrl_operand(L, 2, dst, &tmp);
  int rc = rl_check_inplace("copy_", dst, src);
  if (rc == 0) {
    rl_tensor *s = rl_detach(src);
    rc = s ? rl_copy_(dst, s) : -1;
    if (s) rl_release(s);
    if (rc == 0) rl_bump_version(dst);
  }
  if (tmp) rl_release(tmp);
  lrl_check_rc(L, rc);
  lua_settop(L, 1);
  return 1;
}

/* x:clone(): a contiguous copy (gradients flow back to x). */
static int t_clone(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_clone(t));
}

/* x:contiguous(): x when contiguous, else a contiguous copy. */
static int t_contiguous(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_contiguous(t));
}

/* x:detach(): the same storage, cut from the autograd graph. */
static int t_detach(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_detach(t));
}

/* x:float(), x:double(), x:long(), x:byte(), x:bf16(), x:half() (also
 * x:f16()): x as f32, f64, i64, u8, bf16 or f16; x itself when it has that
 * dtype already, else a new tensor.  Floats become integers by truncation
 * toward zero, saturating at i64's ends, NaN to 0, on every device (u8 then
 * keeps the low 8 bits); bf16 and f16 are rounded to nearest, ties to even,
 * once (from f64 and i64 too).  Gradients flow through conversions between
 * the float types. */
static int to_dtype(lua_State *L, rl_dtype dt) {
  rl_tensor *t = lrl_check(L, 1);
  if (t->dtype == dt) {
    lua_settop(L, 1);
    return 1;
  }
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_to_dtype(t, dt));
}
static int t_float(lua_State *L) { return to_dtype(L, RL_F32); }
static int t_double(lua_State *L) { return to_dtype(L, RL_F64); }
static int t_long(lua_State *L) { return to_dtype(L, RL_I64); }
static int t_byte(lua_State *L) { return to_dtype(L, RL_U8); }
static int t_bf16(lua_State *L) { return to_dtype(L, RL_BF16); }
static int t_f16(lua_State *L) { return to_dtype(L, RL_F16); }

static int to_device(lua_State *L, const rl_device *dev) {
  rl_tensor *t = lrl_check(L, 1);
  if (rl_dev(t) == dev) {
    lua_settop(L, 1);
    return 1;
  }
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_to_device(t, dev));
}

/* x:to('f64'), x:to('cuda'), x:to{dtype=..., device=...} */
static int t_to(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    rl_dtype dt;
    const char *s = lua_tostring(L, 2);
    if (rl_dtype_parse(s, &dt) == 0) return to_dtype(L, dt);
    const rl_device *d = rl_device_parse(s);
    if (!d) /* neither: say both were tried */
      return luaL_argerror(L, 2, lua_pushfstring(L, "'%s' is neither a dtype (f32, f64, i64, u8, "
                                                  "bf16 or f16) nor a device: %s",
                                                  s, rl_errmsg()));
    return to_device(L, d);
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  lrl_opts o;
  lrl_opts_read(L, 2, &o, t->dtype);
  if (lua_getfield(L, 2, "device") == LUA_TNIL) o.dev = rl_dev(t);
  int b = lrl_newbox(L);
  rl_tensor *a = o.dtype == t->dtype ? (rl_retain(t), t) : rl_to_dtype(t, o.dtype);
  if (!a || rl_dev(a) == o.dev) return lrl_fill(L, b, a);
  rl_tensor *r = rl_to_device(a, o.dev);
  rl_release(a);
  return lrl_fill(L, b, r);
}

/* x:cuda([device = 0]): x on CUDA device number device (0-based, as in
 * 'cuda:0'): x itself when it is there already, else a copy, through which
 * gradients flow back to x.  Raises when that device cannot be used. */
static int t_cuda(lua_State *L) {
  const rl_device *d = rl_cuda_device((int)luaL_optinteger(L, 2, 0));
  if (!d) return lrl_error(L);
  return to_device(L, d);
}
/* x:cpu(): x in host memory: x itself when it is there already, else a
 * copy, through which gradients flow back to x. */
static int t_cpu(lua_State *L) { return to_device(L, rl_cpu()); }

/* type() names the tensor class as Torch; type(dtype) converts */
static int t_type(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lua_pushfstring(L, "rl.%s", rl_dtype_name(t->dtype));
    return 1;
  }
  return to_dtype(L, lrl_dtype_arg(L, 2));
}

/* ---- shape and views ------------------------------------------------------ */

/* size([d]) and stride([d]): one dim's value, or the list of all. */
static int dims_or_one(lua_State *L, const char *what, bool strides) {
  rl_tensor *t = lrl_check(L, 1);
  const int64_t *v = strides ? t->stride : t->size;
  if (!lua_isnoneornil(L, 2)) {
    int d = rl_wrap_dim(what, lrl_dim(L, 2), t->ndim);
    if (d < 0) return lrl_error(L);
    lua_pushinteger(L, v[d]);
    return 1;
  }
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, v[d]);
    lua_rawseti(L, -2, d + 1);
  }
  /* sizes print as rl.Size{2, 3}: the metatable lua/rl/base.lua registers */
  if (!strides && luaL_getmetatable(L, "rl.Size") == LUA_TTABLE)
    lua_setmetatable(L, -2);
  else if (!strides)
    lua_pop(L, 1);
  return 1;
}

static int t_size(lua_State *L) { return dims_or_one(L, "size", false); }
static int t_stride(lua_State *L) { return dims_or_one(L, "stride", true); }

/* x:dim(), also x:ndimension(): the number of dims of x (0 for a 0-dim
 * tensor), the same as x.ndim. */
static int t_dim(lua_State *L) {
  lua_pushinteger(L, lrl_check(L, 1)->ndim);
  return 1;
}

/* x:numel(), also x:nelement(): the number of elements of x, the product
 * of its sizes (1 for a 0-dim tensor). */
static int t_numel(lua_State *L) {
  lua_pushinteger(L, rl_numel(lrl_check(L, 1)));
  return 1;
}

/* x:is_contiguous(): whether x's elements lie in row-major order without
 * gaps in its storage (dims of size 1 aside), as x:view needs; a transpose
 * or a narrowed column is not. */
static int t_is_contiguous(lua_State *L) {
  lua_pushboolean(L, rl_is_contiguous(lrl_check(L, 1)));
  return 1;
}

/* x:storage_offset(): the position of x's first element in its storage,
 * counted in elements from 0; non-zero for a view that starts past the
 * beginning, such as x:narrow(1, 2, 1). */
static int t_storage_offset(lua_State *L) {
  lua_pushinteger(L, lrl_check(L, 1)->offset);
  return 1;
}

/* Whether two tensors share storage (views of one another). */
static int t_is_view_of(lua_State *L) {
  lua_pushboolean(L, lrl_check(L, 1)->st == lrl_check(L, 2)->st);
  return 1;
}

/* x:version(): the count of in-place writes to x's storage (through x or
 * any view sharing it), as PyTorch's x._version.  A value computed from x
 * stays valid while this count is unchanged. */
static int t_version(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lrl_check(L, 1)->st->version);
  return 1;
}

/* x:data_ptr(): the address of x's first element (the storage offset
 * included) as an integer; a device address for a CUDA tensor.  For
 * telling storages apart and for debugging: Lua cannot read through it. */
static int t_data_ptr(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  lua_pushinteger(L, (lua_Integer)(intptr_t)rl_data(t));
  return 1;
}

/* sizes for view/reshape: -1 is allowed once */
static int view_sizes(lua_State *L, int64_t *size) {
  int n = 0;
  if (lua_istable(L, 2)) {
    int len = (int)luaL_len(L, 2);
    if (len > RL_MAX_DIMS) luaL_error(L, "view: too many dims (%d)", len);
    for (int k = 1; k <= len; k++) {
      lua_geti(L, 2, k);
      size[n++] = (int64_t)luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
    return n;
  }
  for (int k = 2; !lua_isnoneornil(L, k); k++) {
    if (n == RL_MAX_DIMS) luaL_error(L, "view: too many dims");
    size[n++] = (int64_t)luaL_checkinteger(L, k);
  }
  return n;
}

/* x:view(sizes...) or x:view({sizes}): the same storage seen with other
 * sizes (-1 once: inferred); x must be contiguous, else use reshape. */
static int t_view_(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int64_t size[RL_MAX_DIMS];
  int nd = view_sizes(L, size);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_view(t, nd, size));
}

/* x:reshape(sizes...): x:view(sizes...) when x is contiguous, else a copy. */
static int t_reshape(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int64_t size[RL_MAX_DIMS];
  int nd = view_sizes(L, size);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_reshape(t, nd, size));
}

/* x:view_as(other): x:view(other's sizes). */
static int t_view_as(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1), *o = lrl_check(L, 2);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_view(t, o->ndim, o->size));
}

/* x:flatten([first = 1], [last = -1]): dims first..last merged into one. */
static int t_flatten(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int s = lua_isnoneornil(L, 2) ? 0 : lrl_dim(L, 2);
  int e = lua_isnoneornil(L, 3) ? -1 : lrl_dim(L, 3);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_flatten(t, s, e));
}

/* x:transpose(d1, d2): a view with dims d1 and d2 swapped. */
static int t_transpose(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int d0 = lrl_dim(L, 2), d1 = lrl_dim(L, 3);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_transpose(t, d0, d1));
}

/* x:t(): the transpose of a 2-D tensor (a view). */
static int t_t(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  if (t->ndim > 2)
    return luaL_error(L, "t: expects a tensor with at most 2 dims, got %s (use transpose)",
                      rl_shape_str(t));
  if (t->ndim < 2) {
    lua_settop(L, 1);
    return 1;
  }
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_transpose(t, 0, 1));
}

/* x:permute(dims...): a view with the dims in the given order (1-based). */
static int t_permute(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int perm[RL_MAX_DIMS], n = 0;
  if (lua_istable(L, 2)) {
    n = lrl_dims(L, 2, perm);
  } else {
    for (int k = 2; !lua_isnoneornil(L, k) && n < RL_MAX_DIMS; k++) perm[n++] = lrl_dim(L, k);
  }
  if (n != t->ndim)
    return luaL_error(L, "permute: got %d dims for a tensor of %d dims (size %s)", n, t->ndim,
                      rl_shape_str(t));
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_permute(t, perm));
}

/* narrow(dim, start, len), start 1-based (negative from the end) */
static int t_narrow(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int d = lrl_dim(L, 2);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  int dd = rl_wrap_dim("narrow", d, t->ndim);
  if (dd < 0) return lrl_error(L);
  if (start == 0) return luaL_argerror(L, 3, "start 0 is invalid: positions are 1-based");
  int64_t s0 = start > 0 ? start - 1 : t->size[dd] + start;
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_narrow(t, d, s0, len));
}

/* x:select(dim, i): the slice at position i of dim (1-based), one dim fewer. */
static int t_select(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int d = lrl_dim(L, 2);
  lua_Integer i = luaL_checkinteger(L, 3);
  int dd = rl_wrap_dim("select", d, t->ndim);
  if (dd < 0) return lrl_error(L);
  if (i == 0) return luaL_argerror(L, 3, "index 0 is invalid: positions are 1-based");
  int64_t i0 = i > 0 ? i - 1 : t->size[dd] + i;
  if (i0 < 0 || i0 >= t->size[dd])
    return luaL_error(L, "select: index %I is out of range for dim %d of size %I (1-based)",
                      i, dd + 1, (lua_Integer)t->size[dd]);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_select(t, d, i0));
}

/* x:unsqueeze(dim): a view with a new dim of size 1 at dim. */
static int t_unsqueeze(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int d = lrl_dim(L, 2); /* among ndim+1 positions: rl_unsqueeze checks that */
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_unsqueeze(t, d));
}

/* x:squeeze([dim]): a view without dims of size 1 (or only dim). */
static int t_squeeze(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int d = lua_isnoneornil(L, 2) ? INT32_MIN : lrl_dim(L, 2);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_squeeze(t, d));
}

/* x:expand(sizes...): a view broadcast to sizes (-1 keeps a dim); no copy. */
static int t_expand(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int64_t size[RL_MAX_DIMS];
  int nd = view_sizes(L, size);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_expand(t, nd, size));
}

/* x:expand_as(other): x:expand(other's sizes). */
static int t_expand_as(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1), *o = lrl_check(L, 2);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_expand(t, o->ndim, o->size));
}

/* ---- reductions ----------------------------------------------------------- */

/* keepdim at i: none or nil (false), a boolean, or {keepdim = boolean};
 * anything else is an error (a table or 0 read as true kept the dim) */
static bool keepdim_arg(lua_State *L, int i) {
  if (lua_isnoneornil(L, i)) return false;
  if (lua_isboolean(L, i)) return lua_toboolean(L, i);
  if (lua_istable(L, i)) {
    static const char *const keys[] = {"keepdim"};
    lrl_known_keys(L, i, keys, 1, " (the one option is keepdim)");
    lua_getfield(L, i, "keepdim");
    bool keep = lua_toboolean(L, -1);
    if (!lua_isnoneornil(L, -1) && !lua_isboolean(L, -1))
      luaL_argerror(L, i, lua_pushfstring(L, "keepdim must be a boolean, got %s", luaL_typename(L, -1)));
    lua_pop(L, 1);
    return keep;
  }
  return luaL_argerror(L, i, lua_pushfstring(L, "keepdim must be a boolean (or {keepdim = boolean}), got %s",
                                             luaL_typename(L, i)));
}

/* (dims, keepdim) at i, i+1 */
static int red_args(lua_State *L, int i, int *dims, bool *keepdim) {
  int n = lrl_dims(L, i, dims);
  *keepdim = keepdim_arg(L, i + 1);
  return n;
}

/* x:op([dims], [keepdim]) for op = sum, mean, prod, any, all: over one dim
 * or a list of dims (1-based; none: all of them); keepdim a boolean or
 * {keepdim = boolean}, false by default (so for max, argmax, norm, std). */
#define REDUCE(name, CALL)                                                       \
  static int t_##name(lua_State *L) {                                           \
    rl_tensor *t = lrl_check(L, 1);                                              \
    int dims[RL_MAX_DIMS];                                                       \
    bool keep;                                                                   \
    int nd = red_args(L, 2, dims, &keep);                                        \
    int b = lrl_newbox(L);                                                       \
    return lrl_fill(L, b, CALL);                                                 \
  }
REDUCE(sum, rl_sum(t, nd, dims, keep))
REDUCE(mean, rl_mean(t, nd, dims, keep))
REDUCE(prod, rl_reduce(RL_RED_PROD, t, nd, dims, keep))
REDUCE(any, rl_reduce(RL_RED_ANY, t, nd, dims, keep))
REDUCE(all, rl_reduce(RL_RED_ALL, t, nd, dims, keep))

/* max() / max(dim, [keepdim]) -> values, indices / max(other) elementwise */
static int maxmin(lua_State *L, bool is_min) {
  rl_tensor *t = lrl_check(L, 1);
  if (lua_isnoneornil(L, 2)) {
    int b = lrl_newbox(L);
    return lrl_fill(L, b, rl_reduce(is_min ? RL_RED_MIN : RL_RED_MAX, t, 0, NULL, false));
  }
  if (lrl_test(L, 2)) {
    int b = lrl_newbox(L);
    return lrl_fill(L, b, binop(L, is_min ? RL_BIN_MIN : RL_BIN_MAX, 1, 2, 1.0));
  }
  int d = lrl_dim(L, 2);
  bool keep = keepdim_arg(L, 3);
  int bv = lrl_newbox(L), bi = lrl_newbox(L);
  rl_tensor *v, *ix;
  lrl_check_rc(L, rl_max_dim(t, d, keep, is_min, &v, &ix)); /* both or neither */
  lrl_fill(L, bv, v);
  lrl_fill(L, bi, ix);
  return 2;
}
static int t_max(lua_State *L) { return maxmin(L, false); }
static int t_min(lua_State *L) { return maxmin(L, true); }

/* x:argmax([dim], [keepdim = false]) and x:argmin: a new i64 tensor of
 * the 0-based positions of the largest (smallest) values along dim
 * (1-based), the first one on ties.  Without dim: the 0-based index into
 * all of x's elements in row-major order, as a 0-dim tensor (every dim of
 * size 1 with keepdim).  An empty x is an error. */
static int argmaxmin(lua_State *L, bool is_min) {
  rl_tensor *t = lrl_check(L, 1);
  int d = lua_isnoneornil(L, 2) ? INT32_MIN : lrl_dim(L, 2);
  bool keep = keepdim_arg(L, 3);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_argmax(t, d, keep, is_min));
}
static int t_argmax(lua_State *L) { return argmaxmin(L, false); }
static int t_argmin(lua_State *L) { return argmaxmin(L, true); }

/* norm([p=2], [dims], [keepdim]); p may be math.huge or 'inf' */
static int t_norm(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  double p = 2;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *s = lua_tostring(L, 2);
    if (strcmp(s, "inf") && strcmp(s, "fro"))
      return luaL_argerror(L, 2, "p must be a number, 'inf' or 'fro'");
    p = s[0] == 'i' ? INFINITY : 2;
  } else if (!lua_isnoneornil(L, 2)) {
    p = luaL_checknumber(L, 2);
  }
  int dims[RL_MAX_DIMS];
  bool keep;
  int nd = red_args(L, 3, dims, &keep);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_norm(t, p, nd, dims, keep));
}

/* Whether the argument at i is an option table: a table with keys but no
 * list part, which a table of dims has. */
static bool is_options(lua_State *L, int i) {
  if (!lua_istable(L, i) || luaL_len(L, i) != 0) return false;
  lua_pushnil(L);
  if (!lua_next(L, i)) return false;
  lua_pop(L, 2);
  return true;
}

/* The option table of var and std at i: {correction = integer, unbiased =
 * boolean, keepdim = boolean}, each optional; a misspelt key is an error. */
static void varstd_opts(lua_State *L, int i, int *correction, bool *keep) {
  static const char *const keys[] = {"correction", "unbiased", "keepdim"};
  lrl_known_keys(L, i, keys, 3, " (the options are correction, unbiased and keepdim)");
  int top = lua_gettop(L);
  bool has_c = lua_getfield(L, i, "correction") != LUA_TNIL;
  if (has_c) {
    int isnum = 0;
    lua_Integer c = lua_type(L, top + 1) == LUA_TNUMBER ? lua_tointegerx(L, top + 1, &isnum) : 0;
    if (!isnum || c != (int)c)
      luaL_argerror(L, i, lua_pushfstring(L, "correction must be an integer, got %s",
                                          luaL_tolstring(L, top + 1, NULL)));
    *correction = (int)c;
  }
  if (lua_getfield(L, i, "unbiased") != LUA_TNIL) {
    if (!lua_isboolean(L, top + 2))
      luaL_argerror(L, i, lua_pushfstring(L, "unbiased must be a boolean, got %s",
                                          luaL_typename(L, top + 2)));
    if (has_c) luaL_argerror(L, i, "give correction or unbiased, not both");
    *correction = lua_toboolean(L, top + 2) ? 1 : 0;
  }
  if (lua_getfield(L, i, "keepdim") != LUA_TNIL && !lua_isboolean(L, top + 3))
    luaL_argerror(L, i, lua_pushfstring(L, "keepdim must be a boolean, got %s",
                                        luaL_typename(L, top + 3)));
  *keep = lua_toboolean(L, top + 3);
  lua_settop(L, top);
}

/* x:var([dims], [unbiased = true], [keepdim = false]), or
 * x:var([dims], {correction = 1, unbiased = true, keepdim = false}): the
 * variance over dims (one dim or a list, 1-based; none: all of them),
 * the squared deviations summed and divided by N - correction (unbiased =
 * false is correction 0).  The dims may be left out before the options:
 * x:var({correction = 0}).  x:std likewise gives its square root, whose
 * gradient is 0 where the std is 0. */
static int varstd(lua_State *L, bool is_std) {
  rl_tensor *t = lrl_check(L, 1);
  int dims[RL_MAX_DIMS], nd = 0, oi = 3; /* oi: where the options (or unbiased) are */
  int correction = 1;
  bool keep = false;
  if (is_options(L, 2)) oi = 2;
  else nd = lrl_dims(L, 2, dims);
  if (lua_istable(L, oi)) {
    varstd_opts(L, oi, &correction, &keep);
    if (!lua_isnoneornil(L, oi + 1))
      luaL_argerror(L, oi + 1, lua_pushfstring(L, "nothing may follow the options, got %s",
                                               luaL_typename(L, oi + 1)));
  } else {
    if (!lua_isnoneornil(L, 3)) {
      luaL_checktype(L, 3, LUA_TBOOLEAN); /* unbiased */
      correction = lua_toboolean(L, 3) ? 1 : 0;
    }
    keep = keepdim_arg(L, 4);
  }
  int b = lrl_newbox(L);
  return lrl_fill(L, b, is_std ? rl_std(t, nd, dims, correction, keep)
                               : rl_var(t, nd, dims, correction, keep));
}
static int t_var(lua_State *L) { return varstd(L, false); }
static int t_std(lua_State *L) { return varstd(L, true); }

/* x:logsumexp(dim, [keepdim = false]): log(sum(exp(x))) along dim (1-based,
 * required), computed with the largest value factored out so that large
 * inputs do not overflow.  An integer x gives f32; gradients flow. */
static int t_logsumexp(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int d = lrl_dim(L, 2);
  bool keep = keepdim_arg(L, 3);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_logsumexp(t, d, keep));
}

/* ---- linear algebra ------------------------------------------------------- */

/* x:matmul(y): the matrix product, as torch.matmul.  Two 1-D tensors give
 * their dot product (0-dim); [n, k] by [k, m] gives [n, m]; a 1-D x acts
 * as a row and a 1-D y as a column, that dim being dropped from the
 * result; beyond 2 dims the leading (batch) dims broadcast: [B, n, k] by
 * [k, m] gives [B, n, m].  Mixed dtypes promote (i64 with f32 gives f32);
 * gradients flow to both. */
static int t_matmul(lua_State *L) {
  rl_tensor *a = lrl_check(L, 1), *b = lrl_check(L, 2);
  int box = lrl_newbox(L);
  return lrl_fill(L, box, rl_matmul(a, b));
}

/* x:mm(y): the product of two 2-D tensors, [n, k] by [k, m] giving [n, m]:
 * x:matmul(y) restricted to matrices (other ranks are an error). */
static int t_mm(lua_State *L) {
  rl_tensor *a = lrl_check(L, 1), *b = lrl_check(L, 2);
  if (a->ndim != 2 || b->ndim != 2)
    return luaL_error(L, "mm: needs two 2-D tensors, got %s and %s", rl_shape_str(a),
                      rl_shape_str(b));
  int box = lrl_newbox(L);
  return lrl_fill(L, box, rl_matmul(a, b));
}

/* x:bmm(y): batched matrix product of two 3-D tensors with one batch size,
 * [B, n, k] by [B, k, m] giving [B, n, m]; no broadcasting (matmul has it). */
static int t_bmm(lua_State *L) {
  rl_tensor *a = lrl_check(L, 1), *b = lrl_check(L, 2);
  if (a->ndim != 3 || b->ndim != 3 || a->size[0] != b->size[0])
    return luaL_error(L, "bmm: needs two 3-D tensors with one batch size, got %s and %s",
                      rl_shape_str(a), rl_shape_str(b));
  int box = lrl_newbox(L);
  return lrl_fill(L, box, rl_matmul(a, b));
}

/* x:dot(y): the inner product of two 1-D tensors of one length, as a 0-dim
 * tensor; gradients flow to both. */
static int t_dot(lua_State *L) {
  rl_tensor *a = lrl_check(L, 1), *b = lrl_check(L, 2);
  int box = lrl_newbox(L);
  return lrl_fill(L, box, rl_dot(a, b));
}

/* ---- indexing ------------------------------------------------------------- */

/* x:index_select(dim, idx): a new tensor of the slices of x along dim
 * (1-based) at the positions in idx, a 1-D i64 tensor of 0-based values
 * (repeats allowed), in idx's order: its size along dim is idx:numel(),
 * x's elsewhere.  An index out of range is an error; gradients flow back
 * to x. */
static int t_index_select(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int d = lrl_dim(L, 2);
  rl_tensor *idx = lrl_check(L, 3);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_index_select(t, d, idx));
}

/* x:gather(dim, idx): out[i][j] = x[i][idx[i][j]] along dim (idx i64,
 * 0-based values), as torch.gather. */
static int t_gather(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int d = lrl_dim(L, 2);
  rl_tensor *idx = lrl_check(L, 3);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_gather(t, d, idx));
}

/* x:index_add(dim, idx, src): a copy of x with slice j of src (along dim)
 * added to slice idx[j] of x; for dim = 1, out[idx[j]] += src[j], the
 * values of idx 0-based.  idx is a 1-D i64 tensor; src has x's shape with
 * #idx along dim, and x's dtype.  Repeated positions accumulate, in index
 * order; x is unchanged; gradients flow to x and src.  The adjoint of
 * x:index_select, as torch.Tensor.index_add. */
static int t_index_add(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int d = lrl_dim(L, 2);
  rl_tensor *idx = lrl_check(L, 3), *src = lrl_check(L, 4);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_index_add(t, d, idx, src));
}

/* x:scatter_add(dim, idx, src): a copy of x with each element of src added
 * at the position idx gives along dim (1-based); for dim = 2,
 * out[i][idx[i][j]] += src[i][j], the values of idx 0-based.  idx is i64
 * with x's shape except along dim; src has idx's shape and x's dtype.
 * Repeated positions accumulate; x is unchanged; gradients flow to x and
 * src.  The adjoint of x:gather. */
static int t_scatter_add(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  int d = lrl_dim(L, 2);
  rl_tensor *idx = lrl_check(L, 3), *src = lrl_check(L, 4);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_scatter_add(t, d, idx, src));
}

/* cat/stack take a Lua list of tensors */
static int join(lua_State *L, bool stack) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)luaL_len(L, 1);
  if (n == 0) return luaL_error(L, "%s: the list of tensors is empty", stack ? "stack" : "cat");
  int dim = lua_isnoneornil(L, 2) ? 0 : lrl_dim(L, 2);
  rl_tensor **ts = lua_newuserdatauv(L, sizeof(rl_tensor *) * (size_t)n, 0);
  for (int k = 1; k <= n; k++) {
    lua_geti(L, 1, k);
    ts[k - 1] = lrl_test(L, -1);
    if (!ts[k - 1])
      return luaL_error(L, "%s: element %d of the list is a %s, expected a tensor",
                        stack ? "stack" : "cat", k, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  int b = lrl_newbox(L);
  return lrl_fill(L, b, stack ? rl_stack(n, ts, dim) : rl_cat(n, ts, dim));
}
static int t_cat(lua_State *L) { return join(L, false); }
static int t_stack(lua_State *L) { return join(L, true); }

/* ---- autograd ------------------------------------------------------------- */

/* x:requires_grad_([on = true]): sets whether autograd records the
 * operations on x, so that backward fills x.grad, and returns x.  Only
 * float tensors (f32, f64, bf16, f16) can require grad. */
static int t_requires_grad_(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  bool on = lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2);
  if (on && !rl_dtype_is_floating(t->dtype))
    return luaL_error(L, "requires_grad_: only float tensors can require gradients (got %s)",
                      rl_dtype_name(t->dtype));
  t->requires_grad = on;
  lua_settop(L, 1);
  return 1;
}

/* x:backward([grad], [retain_graph]) */
static int t_backward(lua_State *L) {
  rl_tensor *t = lrl_check(L, 1);
  rl_tensor *g = lua_isnoneornil(L, 2) ? NULL : lrl_check(L, 2);
  lrl_check_rc(L, rl_backward_all(1, &t, &g, lua_toboolean(L, 3)));
  return 0;
}

static const luaL_Reg methods[] = {
#define UNARY_REG_0(name)
#define UNARY_REG_1(name) {#name, t_##name}, {#name "_", t_##name##_},
#define UNARY(E, name, lua) UNARY_REG_##lua(name)
    RL_UNARY_OPS(UNARY)
#undef UNARY
#define R(n) {#n, t_##n}, {#n "_", t_##n##_}
    R(clamp), R(add), R(sub), R(mul), R(div), R(pow),
    R(maximum), R(minimum), R(masked_fill), R(addcmul), R(addcdiv), R(lerp),
#undef R
#define R(n) {#n, t_##n}
    R(isnan), R(fmod), R(remainder), R(eq), R(ne), R(lt), R(le), R(gt), R(ge), R(logical_and),
    R(logical_or), R(where), R(masked_select), R(fill_), R(zero_), R(uniform_), R(normal_),
    R(bernoulli_), R(copy_), R(clone), R(contiguous), R(detach), R(float), R(double),
    R(long), R(byte), R(bf16), R(f16), {"half", t_f16}, R(to), R(cuda), R(cpu), R(type), R(size),
    R(stride), R(dim),
    R(numel), R(is_contiguous), R(storage_offset), R(is_view_of), R(data_ptr), R(version),
    R(reshape), R(view_as), R(flatten), R(transpose), R(t), R(permute), R(narrow),
    R(select), R(unsqueeze), R(squeeze), R(expand), R(expand_as), R(sum), R(mean), R(prod),
    R(any), R(all), R(max), R(min), R(argmax), R(argmin), R(norm), R(var), R(std),
    R(logsumexp), R(matmul), R(mm), R(bmm), R(dot), R(index_select), R(gather),
    R(index_add), R(scatter_add), R(cat), R(stack), R(requires_grad_), R(backward),
#undef R
    {"view", t_view_},
    {"nelement", t_numel},
    {"ndimension", t_dim},
    {NULL, NULL},
};

static const luaL_Reg meta[] = {
    {"__add", m_add}, {"__sub", m_sub}, {"__mul", m_mul}, {"__div", m_div},
    {"__pow", m_pow}, {"__mod", m_mod}, {"__unm", m_unm}, {NULL, NULL},
};

void lrl_open_ops(lua_State *L) {
  luaL_setfuncs(L, methods, 0);
  luaL_getmetatable(L, LRL_TENSOR);
  luaL_setfuncs(L, meta, 0);
  lua_pop(L, 1);
}
