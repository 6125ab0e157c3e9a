/* nn.c - rl.F (functional neural-network ops), rl.grad and the fused attack
 * steps.  Options follow PyTorch's names: F.conv2d(x, w, b, {stride = 2,
 * padding = 1}); a pair may be given as one number or {h, w}. */
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
  return lrl_push(L, rl_linear(lrl_check(L, 1), lrl_check(L, 2), opt_tensor(L, 3)));
}

/* F.conv2d(x, w, [b], [{stride, padding, dilation}]) */
static int f_conv2d(lua_State *L) {
  rl_tensor *x = lrl_check(L, 1), *w = lrl_check(L, 2), *b = opt_tensor(L, 3);
  rl_conv_opts o;
  opt_pair(L, 4, "stride", 1, o.stride);
  opt_pair(L, 4, "padding", 0, o.padding);
  opt_pair(L, 4, "dilation", 1, o.dilation);
  return lrl_push(L, rl_conv2d(x, w, b, &o));
}

/* F.max_pool2d(x, kernel, [{stride, padding}]) ; stride defaults to kernel */
static int pool(lua_State *L, bool is_max) {
  rl_tensor *x = lrl_check(L, 1);
  int64_t k[2], s[2], p[2];
  pair_arg(L, 2, k);
  opt_pair(L, 3, "stride", 0, s);
  opt_pair(L, 3, "padding", 0, p);
  if (s[0] == 0) s[0] = k[0];
  if (s[1] == 0) s[1] = k[1];
  if (is_max) return lrl_push(L, rl_max_pool2d(x, k, s, p));
  bool count_pad = true;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "count_include_pad");
    if (!lua_isnil(L, -1)) count_pad = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return lrl_push(L, rl_avg_pool2d(x, k, s, p, count_pad));
}
static int f_max_pool2d(lua_State *L) { return pool(L, true); }
static int f_avg_pool2d(lua_State *L) { return pool(L, false); }

/* F.adaptive_avg_pool2d(x, 1): only the 1x1 output the paper's nets use */
static int f_adaptive_avg_pool2d(lua_State *L) {
  rl_tensor *x = lrl_check(L, 1);
  int64_t o[2] = {1, 1};
  if (!lua_isnoneornil(L, 2)) pair_arg(L, 2, o);
  if (o[0] != 1 || o[1] != 1)
    return luaL_error(L, "adaptive_avg_pool2d: only a 1x1 output is supported, got %dx%d",
                      (int)o[0], (int)o[1]);
  return lrl_push(L, rl_adaptive_avg_pool2d_1(x));
}

/* F.batch_norm(x, running_mean, running_var, [weight], [bias], training,
 *              [momentum = 0.1], [eps = 1e-5]) */
static int f_batch_norm(lua_State *L) {
  rl_tensor *x = lrl_check(L, 1);
  rl_tensor *rm = opt_tensor(L, 2), *rv = opt_tensor(L, 3);
  rl_tensor *w = opt_tensor(L, 4), *b = opt_tensor(L, 5);
  bool training = lua_toboolean(L, 6);
  double momentum = luaL_optnumber(L, 7, 0.1), eps = luaL_optnumber(L, 8, 1e-5);
  return lrl_push(L, rl_batch_norm(x, rm, rv, w, b, training, momentum, eps));
}

/* F.dropout(x, p, training, [generator]), F.dropout2d likewise */
static int dropout(lua_State *L, bool channelwise) {
  rl_tensor *x = lrl_check(L, 1);
  double p = luaL_optnumber(L, 2, 0.5);
  bool training = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3);
  return lrl_push(L, rl_dropout(x, p, training, channelwise, lrl_generator_opt(L, 4)));
}
static int f_dropout(lua_State *L) { return dropout(L, false); }
static int f_dropout2d(lua_State *L) { return dropout(L, true); }

static int f_relu(lua_State *L) { return lrl_push(L, rl_relu(lrl_check(L, 1))); }

static int f_softmax(lua_State *L) {
  return lrl_push(L, rl_softmax(lrl_check(L, 1), lrl_dim(L, 2), false));
}

static int f_log_softmax(lua_State *L) {
  return lrl_push(L, rl_softmax(lrl_check(L, 1), lrl_dim(L, 2), true));
}

/* ---- losses ---------------------------------------------------------------- */

static int f_nll_loss(lua_State *L) {
  return lrl_push(L, rl_nll_loss(lrl_check(L, 1), lrl_check(L, 2), reduction_arg(L, 3, "mean")));
}

static int f_cross_entropy(lua_State *L) {
  return lrl_push(
      L, rl_cross_entropy(lrl_check(L, 1), lrl_check(L, 2), reduction_arg(L, 3, "mean")));
}

/* F.kl_div(log_q, p, [reduction = 'mean'], [log_target = false]) */
static int f_kl_div(lua_State *L) {
  return lrl_push(L, rl_kl_div(lrl_check(L, 1), lrl_check(L, 2), reduction_arg(L, 3, "mean"),
                               lua_toboolean(L, 4)));
}

static int f_mse_loss(lua_State *L) {
  return lrl_push(L, rl_mse_loss(lrl_check(L, 1), lrl_check(L, 2), reduction_arg(L, 3, "mean")));
}

/* ---- attack steps ------------------------------------------------------------ */

/* F.linf_step_(x_adv, grad, x, step, eps, [lo = 0], [hi = 1]) */
static int f_linf_step_(lua_State *L) {
  lrl_check_rc(L, rl_linf_step_(lrl_check(L, 1), lrl_check(L, 2), lrl_check(L, 3),
                                luaL_checknumber(L, 4), luaL_checknumber(L, 5),
                                luaL_optnumber(L, 6, 0), luaL_optnumber(L, 7, 1)));
  lua_settop(L, 1);
  return 1;
}

static int f_l2_step_(lua_State *L) {
  lrl_check_rc(L, rl_l2_step_(lrl_check(L, 1), lrl_check(L, 2), lrl_check(L, 3),
                              luaL_checknumber(L, 4), luaL_checknumber(L, 5),
                              luaL_optnumber(L, 6, 0), luaL_optnumber(L, 7, 1)));
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
  *n = (int)luaL_len(L, i);
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

/* rl.grad(outputs, inputs, [grad_outputs], [{retain_graph, allow_unused}]) */
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
  lrl_check_rc(L, rl_grad(nout, outs, gos, nin, ins, retain, allow_unused, res));
  bool single = lrl_test(L, 2) != NULL;
  if (single) {
    if (res[0]) return lrl_push(L, res[0]);
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, nin, 0);
  for (int k = 0; k < nin; k++) {
    if (res[k]) {
      lrl_push(L, res[k]);
      lua_rawseti(L, -2, k + 1);
    }
  }
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
  lua_pushcfunction(L, l_grad);
  lua_setfield(L, -2, "grad");
}
