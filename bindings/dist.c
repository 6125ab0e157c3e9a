/* dist.c - rl.nearest_other: the nearest point of another class, exactly.
 *
 *   dist, arg = rl.nearest_other(q, qlab, r, rlab, [{p = 'inf', skip_self = false}])
 *
 * q [Nq, ...] and r [Nr, ...] are u8 images (rows of equal size), qlab and
 * rlab i64 labels.  p is 'inf' (or math.huge) for l-inf, 2 for l2.  Both
 * results are i64 [Nq] in raw pixel units: dist is max |q - r| (0..255) for
 * l-inf and the sum of squares for l2; arg is the 0-based ref index.  A
 * query with no ref of another label gets -1 in both.  skip_self leaves ref
 * i out for query i (train against itself).  lua/rl/separation.lua turns
 * these into [0, 1] distances and summaries.
 *
 *   n = rl.nearest_other_work()
 *
 * Pixel pairs the last CPU call compared (for speed reports). */
#include <math.h>
#include <string.h>

#include "dist.h"
#include "lrl.h"

/* opts.p: 'inf' / math.huge -> 0 (the kernel's l-inf), 2 / 'l2' -> 2 */
static int p_opt(lua_State *L, int opts) {
  if (lua_isnoneornil(L, opts)) return 0;
  int ty = lua_getfield(L, opts, "p"), p = -1;
  if (ty == LUA_TNIL) {
    p = 0;
  } else if (ty == LUA_TNUMBER) {
    double v = lua_tonumber(L, -1);
    p = isinf(v) && v > 0 ? 0 : v == 2 ? 2 : -1;
  } else if (ty == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    p = !strcmp(s, "inf") || !strcmp(s, "linf") ? 0 : !strcmp(s, "2") || !strcmp(s, "l2") ? 2 : -1;
  }
  if (p < 0) {
    const char *shown = luaL_tolstring(L, -1, NULL);
    return luaL_error(L, "nearest_other: option p must be 'inf' (or math.huge) or 2, got %s",
                      shown);
  }
  lua_pop(L, 1);
  return p;
}

static bool bool_opt(lua_State *L, int opts, const char *key) {
  if (lua_isnoneornil(L, opts)) return false;
  int ty = lua_getfield(L, opts, key);
  if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
    luaL_error(L, "nearest_other: option %s must be a boolean, got %s", key,
               lua_typename(L, ty));
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* rl.nearest_other(q, qlab, r, rlab, [opts]) -> dist, arg */
static int l_nearest_other(lua_State *L) {
  rl_tensor *q = lrl_check(L, 1), *qlab = lrl_check(L, 2);
  rl_tensor *r = lrl_check(L, 3), *rlab = lrl_check(L, 4);
  if (!lua_isnoneornil(L, 5)) luaL_checktype(L, 5, LUA_TTABLE);
  int p = p_opt(L, 5);
  bool skip_self = bool_opt(L, 5, "skip_self");
  int bd = lrl_newbox(L), ba = lrl_newbox(L);
  rl_tensor *dist, *arg;
  if (rl_nearest_other(q, qlab, r, rlab, p, skip_self, &dist, &arg)) return lrl_error(L);
  lrl_fill(L, bd, dist);
  lrl_fill(L, ba, arg);
  return 2;
}

/* rl.nearest_other_work() -> pixel pairs compared by the last CPU call */
static int l_nearest_other_work(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)rl_cpu_nearest_other_work());
  return 1;
}

void lrl_open_dist(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"nearest_other", l_nearest_other},
      {"nearest_other_work", l_nearest_other_work},
      {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
}
