/* nn.c - rl.F (functional neural-network ops), rl.grad, the grad mode and
 * the fused attack steps.  Options follow PyTorch's names: F.conv2d(x, w, b, {stride = 2,
 * padding = 1}); a pair may be given as one number or {h, w}. */
#include <stdio.h>
#include <string.h>

#include "lrl.h"

/* ---- options ------------------------------------------------------------- */

/* A pair from opts[key] (number or {a, b}), default d. */
static void opt_pair(lua_State *L, int opts, const char *key, int64_t d, int64_t *out) {
  out[0] = out[1] = d;
  if (lua_isnoneornil(L, opts)) return;
  luaL_checktype(L, opts, LUA_TTABLE);
  int ty = lua_getfield(L, opts, key);
  if (ty == LUA_TNUMBER) {
    out[0] = out[1] = (int64_t)luaL_checkinteger(L, -1);
  } else if (ty == LUA_TTABLE) {
    for (int i = 0; i < 2; i++) {
      lua_geti(L, -1, i + 1);
      int isnum;
      out[i] = (int64_t)lua_tointegerx(L, -1, &isnum);
      if (!isnum) luaL_error(L, "option '%s' must be an integer or a pair {h, w}", key);
      lua_pop(L, 1);
    }
  } else if (ty != LUA_TNIL) {
    luaL_error(L, "option '%s' must be an integer or a pair {h, w}, got %s", key,
               lua_typename(L, ty));
  }
  lua_pop(L, 1);
}

/* Kernel size at i: a number or a pair. */
static void pair_arg(lua_State *L, int i, int64_t *out) {
  if (lua_istable(L, i)) {
    for (int k = 0; k < 2; k++) {
      lua_geti(L, i, k + 1);
      out[k] = (int64_t)luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
  } else {
    out[0] = out[1] = (int64_t)luaL_checkinteger(L, i);
  }
}

static rl_reduction reduction_arg(lua_State *L, int i, const char *def) {
  rl_reduction r;
  if (rl_reduction_parse(luaL_optstring(L, i, def), &r)) lrl_error(L);
  return r;
}

static rl_tensor *opt_tensor(lua_State *L, int i) {
  return lua_isnoneornil(L, i) ? NULL : lrl_check(L, i);
}

/* ---- layers --------------------------------------------------------------- */

/* F.linear(x, w, [b]) */
static int f_linear(lua_State *L) {
  rl_tensor *x = lrl_check(L, 1), *w = lrl_check(L, 2), *b = opt_tensor(L, 3);
  int box = lrl_newbox(L);
  return lrl_fill(L, box, rl_linear(x, w, b));
}

/* F.conv2d(x, w, [b], [{stride, padding, dilation}]): each option a number or
 * a pair {h, w}; unknown options are refused (rl.base checks them). */
static int f_conv2d(lua_State *L) {
  rl_tensor *x = lrl_check(L, 1), *w = lrl_check(L, 2), *b = opt_tensor(L, 3);
  rl_conv_opts o;
  opt_pair(L, 4, "stride", 1, o.stride);
  opt_pair(L, 4, "padding", 0, o.padding);
  opt_pair(L, 4, "dilation", 1, o.dilation);
  int box = lrl_newbox(L);
  return lrl_fill(L, box, rl_conv2d(x, w, b, &o));
}

/* F.max_pool2d(x, kernel, [stride], [padding], [{stride, padding}]): stride
 * defaults to kernel; stride and padding may be positional, as PyTorch's.
 * F.avg_pool2d likewise, with the option count_include_pad (default true).
 * ceil_mode and dilation are refused (rl.base checks the arguments). */
static int pool(lua_State *L, bool is_max) {
  rl_tensor *x = lrl_check(L, 1);
  int64_t k[2], s[2], p[2];
  pair_arg(L, 2, k);
  opt_pair(L, 3, "stride", 0, s);
  opt_pair(L, 3, "padding", 0, p);
  if (s[0] == 0) s[0] = k[0];
  if (s[1] == 0) s[1] = k[1];
  bool count_pad = true;
  if (!is_max && lua_istable(L, 3)) {
    lua_getfield(L, 3, "count_include_pad");
    if (!lua_isnil(L, -1)) count_pad = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  int b = lrl_newbox(L);
  return lrl_fill(L, b, is_max ? rl_max_pool2d(x, k, s, p)
                               : rl_avg_pool2d(x, k, s, p, count_pad));
}
static int f_max_pool2d(lua_State *L) { return pool(L, true); }
static int f_avg_pool2d(lua_State *L) { return pool(L, false); }

/* F.adaptive_avg_pool2d(x, 1): only the 1x1 output the paper's nets use */
static int f_adaptive_avg_pool2d(lua_State *L) {
  rl_tensor *x = lrl_check(L, 1);
  int64_t o[2] = {1, 1};
  if (!lua_isnoneornil(L, 2)) pair_arg(L, 2, o);
  if (o[0] != 1 || o[1] != 1)
    return luaL_error(L, "adaptive_avg_pool2d: only a 1x1 output is supported, got %Ix%I",
                      (lua_Integer)o[0], (lua_Integer)o[1]);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_adaptive_avg_pool2d_1(x));
}

/* F.batch_norm(x, running_mean, running_var, [weight], [bias], training,
 *              [momentum = 0.1], [eps = 1e-5]) */
static int f_batch_norm(lua_State *L) {
  rl_tensor *x = lrl_check(L, 1);
  rl_tensor *rm = opt_tensor(L, 2), *rv = opt_tensor(L, 3);
  rl_tensor *w = opt_tensor(L, 4), *b = opt_tensor(L, 5);
  bool training = lua_toboolean(L, 6);
  double momentum = luaL_optnumber(L, 7, 0.1), eps = luaL_optnumber(L, 8, 1e-5);
  int box = lrl_newbox(L);
  return lrl_fill(L, box, rl_batch_norm(x, rm, rv, w, b, training, momentum, eps));
}

/* F.dropout(x, p, training, [generator]), F.dropout2d likewise */
static int dropout(lua_State *L, bool channelwise) {
  rl_tensor *x = lrl_check(L, 1);
  double p = luaL_optnumber(L, 2, 0.5);
  bool training = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3);
  rl_generator *g = lrl_generator_opt(L, 4);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_dropout(x, p, training, channelwise, g));
}
static int f_dropout(lua_State *L) { return dropout(L, false); }
static int f_dropout2d(lua_State *L) { return dropout(L, true); }

/* F.relu(x): max(x, 0) elementwise, a new tensor (the same as x:relu()).
 * An i64 x stays i64 (u8 gives i64); the gradient passes where x > 0. */
static int f_relu(lua_State *L) {
  rl_tensor *x = lrl_check(L, 1);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_relu(x));
}

/* F.softmax(x, dim) and F.log_softmax(x, dim): exp(x) scaled to sum to 1
 * along dim (1-based, required; -1 for the last), or the log of that,
 * computed directly, which is more accurate than F.softmax(x, dim):log().
 * x must be f32 or f64; the result has x's shape and gradients flow. */
static int softmax(lua_State *L, bool log) {
  rl_tensor *x = lrl_check(L, 1);
  int d = lrl_dim(L, 2);
  int b = lrl_newbox(L);
  return lrl_fill(L, b, rl_softmax(x, d, log));
}
static int f_softmax(lua_State *L) { return softmax(L, false); }
static int f_log_softmax(lua_State *L) { return softmax(L, true); }

/* ---- losses ---------------------------------------------------------------- */

typedef enum { LOSS_NLL, LOSS_CROSS_ENTROPY, LOSS_KL_DIV, LOSS_MSE } loss_kind;

/* F.<loss>(input, target, [reduction = 'mean']): 'none', 'mean' or 'sum'
 * ('batchmean' too for kl_div); kl_div also takes [log_target = false] as
 * F.kl_div(log_q, p, reduction, log_target).  rl.base checks both. */
static int loss(lua_State *L, loss_kind k) {
  rl_tensor *x = lrl_check(L, 1), *y = lrl_check(L, 2);
  rl_reduction red = reduction_arg(L, 3, "mean");
  bool log_target = lua_toboolean(L, 4);
  int b = lrl_newbox(L);
  switch (k) {
  case LOSS_NLL: return lrl_fill(L, b, rl_nll_loss(x, y, red));
  case LOSS_CROSS_ENTROPY: return lrl_fill(L, b, rl_cross_entropy(x, y, red));
  case LOSS_KL_DIV: return lrl_fill(L, b, rl_kl_div(x, y, red, log_target));
  default: return lrl_fill(L, b, rl_mse_loss(x, y, red));
  }
}
static int f_nll_loss(lua_State *L) { return loss(L, LOSS_NLL); }
static int f_cross_entropy(lua_State *L) { return loss(L, LOSS_CROSS_ENTROPY); }
static int f_kl_div(lua_State *L) { return loss(L, LOSS_KL_DIV); }
static int f_mse_loss(lua_State *L) { return loss(L, LOSS_MSE); }

/* ---- attack steps ------------------------------------------------------------ */

/* The eps and box of an attack step: eps >= 0 and lo below hi. */
static void step_args(lua_State *L, const char *who, double *eps, double *lo, double *hi) {
  *eps = luaL_checknumber(L, 5);
  *lo = luaL_optnumber(L, 6, 0);
  *hi = luaL_optnumber(L, 7, 1);
  char msg[128]; /* lua_pushfstring has no %g: 1 would read 1.0 */
  if (!(*eps >= 0)) snprintf(msg, sizeof msg, "%s: eps must be >= 0, got %g", who, *eps);
  else if (!(*lo < *hi)) snprintf(msg, sizeof msg, "%s: lo (%g) must be below hi (%g)", who, *lo, *hi);
  else return;
  luaL_error(L, "%s", msg);
}

/* F.linf_step_(x_adv, grad, x, step, eps, [lo = 0], [hi = 1]): eps >= 0, lo < hi */
static int f_linf_step_(lua_State *L) {
  double eps, lo, hi;
  step_args(L, "linf_step_", &eps, &lo, &hi);
  lrl_check_rc(L, rl_linf_step_(lrl_check(L, 1), lrl_check(L, 2), lrl_check(L, 3),
                                luaL_checknumber(L, 4), eps, lo, hi));
  lua_settop(L, 1);
  return 1;
}

/* F.l2_step_(x_adv, grad, x, step, eps, [lo = 0], [hi = 1]): one l2 PGD
 * step, in place on x_adv, sample by sample along dim 1: x_adv moves by
 * step along grad / ||grad|| (not at all where grad is 0), is projected
 * back into the l2 ball of radius eps (>= 0) around x, then clamped to
 * [lo, hi] (lo below hi).
 * Returns x_adv.  The three have one shape [B, ...], one float dtype and
 * one device, and x_adv must be contiguous.  No autograd: while grad mode
 * is on, it is refused when x_adv or grad requires grad. */
static int f_l2_step_(lua_State *L) {
  double eps, lo, hi;
  step_args(L, "l2_step_", &eps, &lo, &hi);
  lrl_check_rc(L, rl_l2_step_(lrl_check(L, 1), lrl_check(L, 2), lrl_check(L, 3),
                              luaL_checknumber(L, 4), eps, lo, hi));
  lua_settop(L, 1);
  return 1;
}

/* ---- rl.grad ------------------------------------------------------------------ */

/* A tensor or a list of tensors at i into a userdata array (kept on the stack). */
static rl_tensor **tensor_list(lua_State *L, int i, int *n, const char *what) {
  if (lrl_test(L, i)) {
    rl_tensor **a = lua_newuserdatauv(L, sizeof(rl_tensor *), 0);
    a[0] = lrl_check(L, i);
    *n = 1;
    return a;
  }
  if (!lua_istable(L, i))
    luaL_error(L, "grad: %s must be a tensor or a list of tensors, got %s", what,
               luaL_typename(L, i));
  lua_Integer len = luaL_len(L, i); /* a __len may say anything */
  if (len < 0 || len > INT32_MAX) luaL_error(L, "grad: %s has length %I", what, len);
  *n = (int)len;
  rl_tensor **a = lua_newuserdatauv(L, sizeof(rl_tensor *) * (size_t)(*n ? *n : 1), 0);
  for (int k = 1; k <= *n; k++) {
    lua_geti(L, i, k);
    a[k - 1] = lrl_test(L, -1);
    if (!a[k - 1])
      luaL_error(L, "grad: %s[%d] is a %s, expected a tensor", what, k, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return a;
}

/* rl.grad(outputs, inputs, [grad_outputs], [{retain_graph, allow_unused}]):
 * the gradients, which do not require grad (create_graph = true is refused:
 * no higher-order gradients).  rl.base checks the options. */
static int l_grad(lua_State *L) {
  lua_settop(L, 4); /* the lists below are pushed above the arguments */
  int nout, nin, ngo = 0;
  rl_tensor **outs = tensor_list(L, 1, &nout, "outputs");
  rl_tensor **ins = tensor_list(L, 2, &nin, "inputs");
  rl_tensor **gos = NULL;
  if (!lua_isnil(L, 3)) {
    gos = tensor_list(L, 3, &ngo, "grad_outputs");
    if (ngo != nout)
      return luaL_error(L, "grad: %d outputs but %d grad_outputs", nout, ngo);
  }
  bool retain = false, allow_unused = false;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "retain_graph");
    retain = lua_toboolean(L, -1);
    lua_getfield(L, 4, "allow_unused");
    allow_unused = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  rl_tensor **res = lua_newuserdatauv(L, sizeof(rl_tensor *) * (size_t)(nin ? nin : 1), 0);
  /* the list of results and a box for each come first (lrl.h), so that
   * nothing allocated after rl_grad can strand a gradient */
  lua_createtable(L, nin, 0);
  int list = lua_gettop(L);
  for (int k = 0; k < nin; k++) {
    lrl_newbox(L);
    lua_rawseti(L, list, k + 1);
  }
  lrl_check_rc(L, rl_grad(nout, outs, gos, nin, ins, retain, allow_unused, res));
  for (int k = 0; k < nin; k++) {
    if (res[k]) {
      lua_rawgeti(L, list, k + 1);
      lrl_fill(L, lua_gettop(L), res[k]);
      lua_pop(L, 1);
    } else { /* an unused input: its entry is nil */
      lua_pushnil(L);
      lua_rawseti(L, list, k + 1);
    }
  }
  if (lrl_test(L, 2)) lua_rawgeti(L, list, 1); /* one input: its gradient or nil */
  return 1;
}

/* rl.set_grad_enabled(on) -> the previous mode (a boolean; nil counts as
 * false).  While off, operations record no autograd graph and in-place
 * operations on tensors that require grad are allowed; rl.no_grad(fn) runs
 * fn with it off. */
static int l_set_grad_enabled(lua_State *L) {
  lua_pushboolean(L, rl_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}

/* rl.is_grad_enabled(): whether autograd records operations: true unless
 * rl.set_grad_enabled(false) turned it off, as inside rl.no_grad. */
static int l_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, rl_grad_enabled());
  return 1;
}

static const luaL_Reg F_fns[] = {
    {"linear", f_linear},
    {"conv2d", f_conv2d},
    {"max_pool2d", f_max_pool2d},
    {"avg_pool2d", f_avg_pool2d},
    {"adaptive_avg_pool2d", f_adaptive_avg_pool2d},
    {"batch_norm", f_batch_norm},
    {"dropout", f_dropout},
    {"dropout2d", f_dropout2d},
    {"relu", f_relu},
    {"softmax", f_softmax},
    {"log_softmax", f_log_softmax},
    {"nll_loss", f_nll_loss},
    {"cross_entropy", f_cross_entropy},
    {"kl_div", f_kl_div},
    {"mse_loss", f_mse_loss},
    {"linf_step_", f_linf_step_},
    {"l2_step_", f_l2_step_},
    {NULL, NULL},
};

void lrl_open_nn(lua_State *L) {
  lua_newtable(L);
  luaL_setfuncs(L, F_fns, 0);
  lua_setfield(L, -2, "F");
  static const luaL_Reg autograd_fns[] = {
      {"grad", l_grad},
      {"set_grad_enabled", l_set_grad_enabled},
      {"is_grad_enabled", l_is_grad_enabled},
      {NULL, NULL},
  };
  luaL_setfuncs(L, autograd_fns, 0);
}
